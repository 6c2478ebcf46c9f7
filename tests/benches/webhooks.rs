//! Webhook intake under load: verified, durably stored deliveries per second and latency
//! percentiles, on a real GitHub pull_request payload with a fresh delivery id per request,
//! driven by wrk on loopback — side by side, in the same run, with a bare axum handler that
//! reads the body and does no work.
//!
//! `cargo bench -p powernode-tests --bench webhooks` (needs `wrk`: `apt-get install wrk`).
//! WEBHOOK_BENCH_SECS (default 10) and WEBHOOK_BENCH_CONNECTIONS (default 64) tune it.

use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::routing::post;
use powernode::catalog::Catalog;
use powernode::config::Config;
use powernode::intake::Intake;
use powernode::policy::Grants;
use powernode::registry::Registry;
use powernode::runtime::{Runtime, RuntimeConfig};
use powernode::scheduler::{Scheduler, SchedulerConfig};
use powernode::server::{AppState, app};
use powernode::services::Services;
use powernode::store::SledStore;
use powernode::store::inbox::Inbox;

/// The same allocator as the `powernode` binary, so the figures are the server's.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

const FIXTURE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../host/src/webhook/fixtures/github/pull_request.opened"
);
const LIMIT: usize = 25 << 20;

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return; // `cargo test --benches` asks for a list; there are no criterion cases here.
    }
    let secs: u64 = std::env::var("WEBHOOK_BENCH_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10);
    let conns: u32 = std::env::var("WEBHOOK_BENCH_CONNECTIONS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(64);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let body = std::fs::read(format!("{FIXTURE}.json")).unwrap();
    let headers: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(&std::fs::read(format!("{FIXTURE}.headers.json")).unwrap()).unwrap();
    std::fs::write(dir.path().join("body.json"), &body).unwrap();
    std::fs::write(dir.path().join("wrk.lua"), lua(&headers, &dir.path().join("body.json"))).unwrap();

    let bare = rt.block_on(serve(
        Router::new()
            .route(
                "/webhooks/{source}",
                post(|_body: Bytes| async { StatusCode::ACCEPTED }),
            )
            .layer(DefaultBodyLimit::max(LIMIT)),
    ));
    let config = Config::parse(
        std::path::Path::new("bench.toml"),
        "[[sources]]\nid = \"github\"\nkind = \"github\"\napi_url = \"https://api.github.com\"\ntoken = \"t\"\nwebhook_secret = \"It's a Secret to Everybody\"\n",
        &|_| None,
    )
    .unwrap();
    let store = Arc::new(SledStore::open(&dir.path().join("data")).unwrap());
    let registry = Registry::load(
        &dir.path().join("pipelines"),
        vec!["run_command".into()],
        None,
        store.clone(),
    )
    .unwrap();
    registry
        .put(
            "review",
            "name: review\ntriggers:\n  - type: pull_request\n    events: [opened]\nsteps:\n  - name: s\n    type: run_command\n    config:\n      command: 'true'\n",
        )
        .unwrap();
    let inbox = Inbox::open(&dir.path().join("inbox")).unwrap();
    let intake = Arc::new(Intake::new(&config.sources, registry.active(), inbox));
    // The scheduler is there as in the server, but not started: this measures the intake.
    let services = Arc::new(Services { store: store.clone() });
    let runtime = Arc::new(Runtime::new(RuntimeConfig::default(), services).unwrap());
    let scheduler = Scheduler::new(
        Arc::new(store.runs().unwrap()),
        Arc::new(Catalog::new(runtime, Grants::default(), None)),
        registry.active(),
        config.sources.clone(),
        Default::default(),
        SchedulerConfig {
            max_concurrent_runs: 1,
            workspaces: dir.path().join("workspaces"),
            keep_failed_workspaces: false,
            public_url: "http://127.0.0.1".into(),
            node: "bench".into(),
            lease: Duration::from_secs(30),
        },
    );
    let state = AppState {
        intake: intake.clone(),
        ready: Arc::new(AtomicBool::new(true)),
        registry: Arc::new(registry),
        api_token: None,
        scheduler,
        store,
    };
    let powernode = rt.block_on(serve(app(state, LIMIT)));

    println!(
        "payload: GitHub pull_request opened, {} bytes; wrk -t2 -c{conns} -d{secs}s",
        body.len()
    );
    breakdown(&body, &headers);
    let base = wrk(&dir, &format!("http://{bare}/webhooks/github"), secs, conns);
    let ours = wrk(&dir, &format!("http://{powernode}/webhooks/github"), secs, conns);
    println!(
        "{:<34} {:>12} {:>9} {:>9} {:>9} {:>8}",
        "server", "requests/s", "p50", "p90", "p99", "non-2xx"
    );
    for (name, r) in [
        ("bare axum handler (reads body)", &base),
        ("powernode: verify+normalize+fsync", &ours),
    ] {
        println!(
            "{name:<34} {:>12.0} {:>9} {:>9} {:>9} {:>8}",
            r.rps, r.p50, r.p90, r.p99, r.errors
        );
    }
    println!("ratio to the bare handler: {:.2}", ours.rps / base.rps);
    println!(
        "deliveries stored: {} (batches: {:?})",
        intake.inbox().len(),
        intake.inbox().stats()
    );
}

/// CPU per delivery of the pure steps, on one core, before the load test: where the time goes.
fn breakdown(body: &[u8], headers: &serde_json::Map<String, serde_json::Value>) {
    let mut map = axum::http::HeaderMap::new();
    for (k, v) in headers {
        map.insert(
            axum::http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
            v.as_str().unwrap().parse().unwrap(),
        );
    }
    let provider = powernode::webhook::detect(&map).unwrap();
    let n = 2000u32;
    let time = |f: &dyn Fn()| {
        let start = std::time::Instant::now();
        for _ in 0..n {
            f();
        }
        start.elapsed() / n
    };
    let verify =
        time(&|| powernode::webhook::verify(provider, &map, body, Some("It's a Secret to Everybody")).unwrap());
    let normalize = time(&|| {
        std::hint::black_box(powernode::webhook::normalize(provider, &map, body).unwrap());
    });
    let parse = time(&|| {
        std::hint::black_box(serde_json::from_slice::<serde_json::Value>(body).unwrap());
    });
    println!(
        "per delivery, one core: verify {verify:?}, normalize {normalize:?} (a serde_json::Value parse alone: {parse:?})"
    );
}

async fn serve(router: Router) -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    addr
}

/// A wrk script posting the payload with the forge's headers and a fresh delivery id.
fn lua(headers: &serde_json::Map<String, serde_json::Value>, body: &std::path::Path) -> String {
    let mut script = format!(
        "local f = io.open({:?}, \"rb\")\nwrk.body = f:read(\"*a\")\nf:close()\nwrk.method = \"POST\"\n",
        body.display().to_string()
    );
    for (k, v) in headers {
        script.push_str(&format!("wrk.headers[{:?}] = {:?}\n", k, v.as_str().unwrap()));
    }
    script.push_str(
        r#"local n = 0
local id = tostring(math.random(1, 1e9))
function setup(thread) thread:set("tid", tostring(math.random(1, 1e9))) end
function request()
  n = n + 1
  wrk.headers["X-GitHub-Delivery"] = (tid or id) .. "-" .. n
  return wrk.format()
end
"#,
    );
    script
}

struct Figures {
    rps: f64,
    p50: String,
    p90: String,
    p99: String,
    errors: u64,
}

fn wrk(dir: &tempfile::TempDir, url: &str, secs: u64, conns: u32) -> Figures {
    let out = Command::new("wrk")
        .args(["-t2", &format!("-c{conns}"), &format!("-d{secs}s"), "--latency", "-s"])
        .arg(dir.path().join("wrk.lua"))
        .arg(url)
        .output()
        .expect("wrk is needed: apt-get install wrk");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let field = |prefix: &str| {
        text.lines()
            .find_map(|l| l.trim().strip_prefix(prefix).map(|v| v.trim().to_string()))
            .unwrap_or_else(|| panic!("no `{prefix}` in wrk output:\n{text}"))
    };
    Figures {
        rps: field("Requests/sec:").parse().unwrap(),
        p50: field("50%"),
        p90: field("90%"),
        p99: field("99%"),
        errors: text
            .lines()
            .find_map(|l| {
                l.trim()
                    .strip_prefix("Non-2xx or 3xx responses:")
                    .map(|v| v.trim().parse().unwrap())
            })
            .unwrap_or(0),
    }
}
