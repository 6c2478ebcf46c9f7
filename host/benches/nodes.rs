//! Deliveries/s and runs/s of the real `powernode serve` on the embedded store, on
//! PostgreSQL with one node, and on PostgreSQL with three nodes sharing the database — in one
//! run, so the figures compare. Each delivery is a signed GitHub push starting a one-step
//! pipeline (`run_command: true` in the command sandbox); each setup also takes the same
//! deliveries once with no pipeline triggered, which shows what storing them costs alone. PostgreSQL is a throwaway cluster
//! on a unix socket, with `fsync` on (the embedded inbox fsyncs too). Run: `cargo bench -p powernode --bench nodes` (`NODES_BENCH_DELIVERIES`,
//! default 2000). It fails when a delivery is not accepted or a run does not succeed.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use powernode::store::pg::throwaway::Cluster;

const SECRET: &str = "It's a Secret to Everybody";
const FIXTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/src/webhook/fixtures/github/push");
/// Requests in flight at once, spread over the nodes.
const IN_FLIGHT: usize = 64;

fn main() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(bench());
}

struct Node {
    child: Child,
    url: String,
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Node {
    /// A node whose pipeline runs on every push (`runs`), or on none.
    fn start(dir: &Path, store: &str, runs: bool) -> Node {
        std::fs::create_dir_all(dir.join("pipelines")).unwrap();
        let trigger = if runs { "push" } else { "tag" };
        std::fs::write(
            dir.join("pipelines/build.yml"),
            format!("name: build\nreport_status: false\ntriggers:\n  - type: {trigger}\nsteps:\n  - name: check\n    type: run_command\n    config:\n      command: 'true'\n"),
        )
        .unwrap();
        std::fs::write(
            dir.join("powernode.toml"),
            format!(
                "listen = \"127.0.0.1:0\"\ndata_dir = \"{d}/data\"\npipelines_dir = \"{d}/pipelines\"\nplugins_dir = \"{d}/plugins\"\nmax_concurrent_runs = 8\n\n\
                 [[sources]]\nid = \"github\"\nkind = \"github\"\napi_url = \"http://127.0.0.1:9\"\ntoken = \"unused\"\nwebhook_secret = \"{SECRET}\"\nbot_login = \"powernode-bot\"\n{store}",
                d = dir.display()
            ),
        )
        .unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_powernode"))
            .args(["serve", "--config"])
            .arg(dir.join("powernode.toml"))
            .env(
                "POWERNODE_LOG",
                std::env::var("POWERNODE_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(dir.join("stderr.log")).unwrap())
            .spawn()
            .unwrap();
        let mut line = String::new();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        stdout.read_line(&mut line).unwrap();
        // Kept open: the server prints more, and a closed pipe would stop it.
        child.stdout = Some(stdout.into_inner());
        let url = line
            .split_whitespace()
            .find(|w| w.starts_with("http://"))
            .unwrap()
            .to_string();
        Node { child, url }
    }

    /// Sums of the metrics this bench reads: runs finished (by state), step seconds and count.
    async fn metrics(&self) -> BTreeMap<String, f64> {
        let text = reqwest::get(format!("{}/metrics", self.url))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let mut sums = BTreeMap::new();
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let Some((name, value)) = line.rsplit_once(' ') else {
                continue;
            };
            let (metric, labels) = name.split_once('{').unwrap_or((name, ""));
            let key = match metric {
                "powernode_runs_finished_total" if labels.contains("state=\"success\"") => "success",
                "powernode_runs_finished_total" => "other",
                "powernode_step_duration_seconds_sum" => "step_seconds",
                "powernode_step_duration_seconds_count" => "steps",
                _ => continue,
            };
            *sums.entry(key.to_string()).or_insert(0.0) += value.parse::<f64>().unwrap_or(0.0);
        }
        sums
    }
}

/// Sums `metrics` over every node.
async fn total(nodes: &[Node]) -> BTreeMap<String, f64> {
    let mut sums = BTreeMap::new();
    for node in nodes {
        for (k, v) in node.metrics().await {
            *sums.entry(k).or_insert(0.0) += v;
        }
    }
    sums
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

async fn bench() {
    let count: usize = std::env::var("NODES_BENCH_DELIVERIES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(2000);
    let cluster = Cluster::start_durable().unwrap();
    let work = tempfile::tempdir().unwrap();
    // As root, commands run as `nobody`, who must reach the run workspaces under it.
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(work.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let body = Arc::new(std::fs::read(format!("{FIXTURE}.json")).unwrap());
    let headers: BTreeMap<String, String> =
        serde_json::from_slice(&std::fs::read(format!("{FIXTURE}.headers.json")).unwrap()).unwrap();
    println!(
        "{count} deliveries per setup, {IN_FLIGHT} in flight, each starting one run of one `run_command` step (or none)\n"
    );
    println!("| setup | runs | deliveries/s | accept p50 | accept p99 | runs/s | mean step |");
    println!("|---|---|---|---|---|---|---|");
    for (setup, nodes, runs) in [
        ("embedded, 1 node", 0, false),
        ("embedded, 1 node", 0, true),
        ("PostgreSQL, 1 node", 1, false),
        ("PostgreSQL, 1 node", 1, true),
        ("PostgreSQL, 3 nodes", 3, false),
        ("PostgreSQL, 3 nodes", 3, true),
    ] {
        let label = format!("{setup}{}", if runs { "" } else { ", no runs" });
        let store = match nodes {
            0 => String::new(),
            n => format!(
                "\n[store]\nkind = \"postgres\"\nurl = \"{}\"\n",
                cluster.database(&format!("bench_{n}_{runs}")).await.unwrap()
            ),
        };
        let nodes: Vec<Node> = (0..nodes.max(1))
            .map(|n| {
                Node::start(
                    &work.path().join(format!("{label}-{n}").replace([' ', ','], "_")),
                    &store,
                    runs,
                )
            })
            .collect();
        let urls: Vec<String> = nodes.iter().map(|n| format!("{}/webhooks/github", n.url)).collect();
        let before = total(&nodes).await;
        let client = reqwest::Client::new();
        let limit = Arc::new(tokio::sync::Semaphore::new(IN_FLIGHT));
        let began = Instant::now();
        let mut sends = tokio::task::JoinSet::new();
        for i in 0..count {
            let (client, limit, body) = (client.clone(), limit.clone(), body.clone());
            let mut request = client.post(&urls[i % urls.len()]).body(body.to_vec());
            for (k, v) in headers
                .iter()
                .filter(|(k, _)| !k.eq_ignore_ascii_case("x-github-delivery"))
            {
                request = request.header(k, v);
            }
            let request = request.header("X-GitHub-Delivery", format!("bench-{label}-{i}"));
            sends.spawn(async move {
                let _permit = limit.acquire_owned().await.unwrap();
                let sent = Instant::now();
                let status = request.send().await.unwrap().status();
                assert_eq!(status, 202);
                sent.elapsed()
            });
        }
        let mut latencies = Vec::with_capacity(count);
        while let Some(sent) = sends.join_next().await {
            latencies.push(sent.unwrap());
        }
        let accepted = began.elapsed();
        latencies.sort();
        let (rate, p50, p99) = (
            count as f64 / accepted.as_secs_f64(),
            percentile(&latencies, 0.5).as_secs_f64() * 1e3,
            percentile(&latencies, 0.99).as_secs_f64() * 1e3,
        );
        if !runs {
            println!("| {setup} | none | {rate:.0} | {p50:.1} ms | {p99:.1} ms | — | — |");
            continue;
        }
        let after = loop {
            let now = total(&nodes).await;
            let done = now.get("success").unwrap_or(&0.0) - before.get("success").unwrap_or(&0.0);
            let failed = now.get("other").unwrap_or(&0.0) - before.get("other").unwrap_or(&0.0);
            assert_eq!(failed, 0.0, "a run did not succeed");
            if done as usize >= count {
                break now;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        let ran = began.elapsed();
        let steps = after["steps"] - before.get("steps").unwrap_or(&0.0);
        let step_seconds = after["step_seconds"] - before.get("step_seconds").unwrap_or(&0.0);
        println!(
            "| {setup} | one per delivery | {rate:.0} | {p50:.1} ms | {p99:.1} ms | {:.0} | {:.1} ms |",
            count as f64 / ran.as_secs_f64(),
            step_seconds / steps * 1e3,
        );
        drop(nodes);
    }
}
