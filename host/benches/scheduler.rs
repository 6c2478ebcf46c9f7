//! The scheduler's figures, on the real `powernode serve` binary on loopback:
//! restart to ready with a cold and a warm compile cache, RSS idle with every built-in loaded,
//! runs/s and host overhead per step for a 3-step pipeline whose plugins only log (the SDK's
//! `hello`), peak RSS with 200 runs in flight, and webhook → final commit status of a 5-step
//! pipeline on a fake GitHub. Run: `cargo bench -p powernode --bench scheduler`.
//! It fails when a run or a status is not what it reports.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

const TOKEN: &str = "bench-token-0123456789";
const SECRET: &str = "bench-webhook-secret";
const RUNS: usize = 200;
const WEBHOOK_RUNS: usize = 20;

fn main() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(bench());
}

/// Builds the SDK's example step, which logs one line: the plugin of these pipelines.
fn hello_wasm(work: &Path) -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args([
            "build",
            "--release",
            "--quiet",
            "--target",
            "wasm32-wasip2",
            "--manifest-path",
        ])
        .arg(root.join("sdk/examples/hello/Cargo.toml"))
        .arg("--target-dir")
        .arg(work.join("hello-target"))
        .status()
        .unwrap();
    assert!(status.success(), "building sdk/examples/hello failed");
    work.join("hello-target/wasm32-wasip2/release/hello.wasm")
}

struct Server {
    child: Child,
    url: String,
}

impl Server {
    /// SIGTERM, then waits for the graceful exit.
    fn stop(mut self) {
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
        assert!(self.child.wait().unwrap().success());
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    /// Starts the server and returns it with the time from spawn to `/readyz` answering 200.
    async fn start(dir: &Path) -> (Server, Duration) {
        let started = Instant::now();
        let mut child = Command::new(env!("CARGO_BIN_EXE_powernode"))
            .args(["serve", "--config"])
            .arg(dir.join("powernode.toml"))
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let url = line
            .split_whitespace()
            .find(|w| w.starts_with("http://"))
            .unwrap()
            .to_string();
        let client = reqwest::Client::new();
        loop {
            if let Ok(r) = client.get(format!("{url}/readyz")).send().await
                && r.status().is_success()
            {
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "the server never became ready"
            );
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        (Server { child, url }, started.elapsed())
    }

    fn rss(&self, field: &str) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        let line = status.lines().find(|l| l.starts_with(field)).unwrap();
        line.split_whitespace().nth(1).unwrap().parse::<u64>().unwrap() << 10
    }

    async fn api(&self, method: reqwest::Method, path: &str) -> Value {
        let resp = reqwest::Client::new()
            .request(method, format!("{}/api{path}", self.url))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap();
        assert!(resp.status().is_success(), "{path}: {}", resp.status());
        resp.json().await.unwrap()
    }
}

/// A GitHub on loopback that takes commit statuses and notes when each arrived.
async fn fake_forge() -> (String, Arc<Mutex<Vec<(Instant, Value)>>>) {
    let seen: Arc<Mutex<Vec<(Instant, Value)>>> = Arc::default();
    let record = seen.clone();
    let statuses = move |axum::extract::Path((_o, _r, sha)): axum::extract::Path<(String, String, String)>,
                         axum::Json(mut body): axum::Json<Value>| {
        let record = record.clone();
        async move {
            body["sha"] = Value::String(sha);
            record.lock().unwrap().push((Instant::now(), body.clone()));
            (axum::http::StatusCode::CREATED, axum::Json(body))
        }
    };
    let app = axum::Router::new().route("/repos/{o}/{r}/statuses/{sha}", axum::routing::post(statuses));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, seen)
}

fn steps(n: usize) -> String {
    (0..n)
        .map(|i| format!("  - name: s{i}\n    type: hello\n    config:\n      name: step{i}\n"))
        .collect()
}

fn setup(dir: &Path, forge: &str) {
    std::fs::create_dir_all(dir.join("plugins")).unwrap();
    std::fs::copy(hello_wasm(dir), dir.join("plugins/hello.wasm")).unwrap();
    std::fs::create_dir_all(dir.join("pipelines")).unwrap();
    std::fs::write(
        dir.join("pipelines/three.yml"),
        format!("name: three\nsteps:\n{}", steps(3)),
    )
    .unwrap();
    std::fs::write(
        dir.join("pipelines/five.yml"),
        format!("name: five\ntriggers:\n  - type: push\nsteps:\n{}", steps(5)),
    )
    .unwrap();
    let config = format!(
        "listen = \"127.0.0.1:0\"\ndata_dir = \"{d}/data\"\npipelines_dir = \"{d}/pipelines\"\nplugins_dir = \"{d}/plugins\"\napi_token = \"{TOKEN}\"\nmax_concurrent_runs = 4\n\n[[sources]]\nid = \"forge\"\nkind = \"github\"\napi_url = \"{forge}\"\ntoken = \"t\"\nwebhook_secret = \"{SECRET}\"\nbot_login = \"powernode-bot\"\n",
        d = dir.display()
    );
    std::fs::write(dir.join("powernode.toml"), config).unwrap();
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

async fn bench() {
    let dir = tempfile::tempdir().unwrap();
    let (forge, seen) = fake_forge().await;
    setup(dir.path(), &forge);

    let (cold, cold_ready) = Server::start(dir.path()).await;
    cold.api(reqwest::Method::GET, "/plugins").await;
    cold.stop();
    let (server, warm_ready) = Server::start(dir.path()).await;
    let before_plugins = server.rss("VmRSS:");
    let plugins = server.api(reqwest::Method::GET, "/plugins").await;
    assert!(
        plugins.as_array().unwrap().iter().all(|p| p["refused"].is_null()),
        "{plugins}"
    );
    let idle = server.rss("VmRSS:");

    // Throughput: 200 runs queued at once through the API, 4 executing at a time.
    let started = Instant::now();
    let mut ids = Vec::new();
    for _ in 0..RUNS {
        let created = server.api(reqwest::Method::POST, "/pipelines/three/runs").await;
        ids.push(created["id"].as_str().unwrap().to_string());
    }
    let mut overheads = Vec::new();
    for id in &ids {
        loop {
            let run = server.api(reqwest::Method::GET, &format!("/runs/{id}")).await;
            match run["state"].as_str() {
                Some("success") => {
                    let ms = run["duration_ms"].as_u64().unwrap() as f64;
                    overheads.push(ms / 3.0);
                    break;
                }
                Some("queued" | "running") => tokio::time::sleep(Duration::from_millis(5)).await,
                other => panic!("run {id} ended {other:?}: {run}"),
            }
        }
    }
    let elapsed = started.elapsed();
    let peak = server.rss("VmHWM:");

    // Webhook to final status: signed pushes, one at a time.
    let body = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/src/webhook/fixtures/github/push.json"
    ))
    .unwrap();
    let signature = format!(
        "sha256={}",
        powernode::webhook::hex_hmac_sha256(SECRET.as_bytes(), &body)
    );
    let mut latencies = Vec::new();
    for i in 0..WEBHOOK_RUNS {
        let before = seen.lock().unwrap().len();
        let sent = Instant::now();
        let resp = reqwest::Client::new()
            .post(format!("{}/webhooks/forge", server.url))
            .header("content-type", "application/json")
            .header("x-github-event", "push")
            .header("x-github-delivery", format!("bench-{i}"))
            .header("x-hub-signature-256", &signature)
            .body(body.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 202);
        let deadline = Instant::now() + Duration::from_secs(30);
        let at = loop {
            let done = seen.lock().unwrap()[before..]
                .iter()
                .find(|(_, s)| s["state"] == "success" && s["context"] == "powernode/five")
                .map(|(at, _)| *at);
            if let Some(at) = done {
                break at;
            }
            assert!(Instant::now() < deadline, "no final status for delivery {i}");
            tokio::time::sleep(Duration::from_micros(200)).await;
        };
        latencies.push(at.duration_since(sent).as_secs_f64() * 1000.0);
    }

    let mb = |b: u64| b as f64 / (1 << 20) as f64;
    println!("| what | figure | target |");
    println!("|---|---|---|");
    println!(
        "| start to ready, compile cache cold | {:.0} ms | |",
        cold_ready.as_secs_f64() * 1000.0
    );
    println!(
        "| restart to ready, compile cache warm | {:.0} ms | ≤ 300 ms |",
        warm_ready.as_secs_f64() * 1000.0
    );
    println!("| RSS idle, nothing loaded yet | {:.1} MB | |", mb(before_plugins));
    println!(
        "| RSS idle, every built-in and `hello` loaded (warm cache) | {:.1} MB | ≤ 60 MB |",
        mb(idle)
    );
    println!(
        "| peak RSS with {RUNS} runs queued and 4 executing | {:.1} MB | ≤ 400 MB |",
        mb(peak)
    );
    println!(
        "| 3-step runs (plugins that only log), 4 at a time | {:.0} runs/s | |",
        RUNS as f64 / elapsed.as_secs_f64()
    );
    println!(
        "| host overhead per step (run time / 3), median | {:.2} ms | < 1 ms |",
        median(overheads)
    );
    println!(
        "| signed push → final commit status of a 5-step run, median of {WEBHOOK_RUNS} | {:.1} ms | ≤ 25 ms |",
        median(latencies)
    );
}
