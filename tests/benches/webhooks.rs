//! Webhook intake under load: verified, durably stored deliveries per second and latency
//! percentiles, on a real GitHub pull_request payload with a fresh delivery id per request,
//! driven by wrk on loopback — side by side, in the same run, with a bare axum handler that
//! reads the body and does no work. Then latency at a fixed rate below capacity, open loop
//! (`open_loop.rs`), which wrk's closed loop cannot show. It fails if any answer was not 2xx
//! or if fewer deliveries were stored than were answered.
//!
//! `cargo bench -p powernode-tests --bench webhooks` (needs `wrk`: `apt-get install wrk`).
//! WEBHOOK_BENCH_SECS (default 10) and WEBHOOK_BENCH_CONNECTIONS (default 64) tune the wrk
//! runs, WEBHOOK_BENCH_RATE (default 5000 requests/s, for WEBHOOK_BENCH_SECS) the open loop.

#[path = "webhooks/open_loop.rs"]
mod open_loop;

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
use powernode::store::deliveries::EmbeddedDeliveries;
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
    let env = |name: &str, default: u64| {
        std::env::var(name)
            .ok()
            .map(|s| s.parse().unwrap_or_else(|_| panic!("{name}={s} is not a number")))
            .unwrap_or(default)
    };
    let secs = env("WEBHOOK_BENCH_SECS", 10);
    let conns = env("WEBHOOK_BENCH_CONNECTIONS", 64);
    let rate = env("WEBHOOK_BENCH_RATE", 5000) as u32;
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
        "[[sources]]\nid = \"github\"\nkind = \"github\"\napi_url = \"http://127.0.0.1:9\"\ntoken = \"t\"\nwebhook_secret = \"It's a Secret to Everybody\"\n",
        &|_| None,
    )
    .unwrap();
    let store = Arc::new(SledStore::open(&dir.path().join("data")).unwrap());
    let registry = rt
        .block_on(Registry::load(
            &dir.path().join("pipelines"),
            powernode::pipeline::StepTypes::new(["run_command"]),
            None,
            store.clone(),
        ))
        .unwrap();
    rt.block_on(registry
        .put(
            "review",
            "name: review\nreport_status: false\ntriggers:\n  - type: pull_request\n    events: [opened]\nsteps:\n  - name: s\n    type: run_command\n    config:\n      command: 'true'\n",
        ))
        .unwrap();
    let inbox = Inbox::open(&dir.path().join("inbox")).unwrap();
    let runs = Arc::new(store.runs().unwrap());
    let deliveries = Arc::new(EmbeddedDeliveries::new(inbox.clone(), runs.clone()));
    let intake = Arc::new(Intake::new(&config.sources, registry.active(), deliveries));
    // The scheduler is there as in the server, but not started: this measures the intake.
    let services = Arc::new(Services::new(store.clone()));
    let runtime = Arc::new(Runtime::new(RuntimeConfig::default(), services).unwrap());
    let scheduler = Scheduler::new(
        runs,
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
            shared: false,
        },
    );
    let state = AppState {
        intake: intake.clone(),
        ready: Arc::new(AtomicBool::new(true)),
        registry: Arc::new(registry),
        api_token: None,
        scheduler,
        store,
        dashboard: Arc::default(),
    };
    let powernode = rt.block_on(serve(app(state, LIMIT)));

    println!(
        "payload: GitHub pull_request opened, {} bytes; wrk -t2 -c{conns} -d{secs}s",
        body.len()
    );
    breakdown(&body, &headers);
    let base = wrk(&dir, &format!("http://{bare}/webhooks/github"), secs, conns);
    let ours = wrk(&dir, &format!("http://{powernode}/webhooks/github"), secs, conns);
    let stored_closed = inbox.len();
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
        "deliveries answered 2xx: {}, stored: {stored_closed} (batches: {:?})",
        ours.requests - ours.errors,
        inbox.stats()
    );
    // The figures mean nothing unless every request was answered 2xx and stored.
    for (name, r) in [("bare handler", &base), ("powernode", &ours)] {
        assert!(
            r.errors == 0 && r.socket_errors.is_none(),
            "{name} under wrk: {} answers of status 400 or more, socket errors: {:?}",
            r.errors,
            r.socket_errors
        );
    }
    assert!(
        stored_closed as u64 >= ours.requests - ours.errors,
        "wrk got {} 2xx answers from powernode but only {stored_closed} deliveries were stored",
        ours.requests - ours.errors
    );

    println!("open loop: {rate} requests/s for {secs}s each, latency from each request's due time");
    let headers: Vec<(String, String)> = headers
        .iter()
        .filter(|(k, _)| !k.eq_ignore_ascii_case("X-GitHub-Delivery"))
        .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
        .collect();
    let open_base = open_loop::run(
        &format!("http://{bare}/webhooks/github"),
        &headers,
        body.clone(),
        "open",
        rate,
        secs,
    );
    let open = open_loop::run(
        &format!("http://{powernode}/webhooks/github"),
        &headers,
        body,
        "open",
        rate,
        secs,
    );
    let stored_open = inbox.len() - stored_closed;
    println!(
        "{:<34} {:>12} {:>9} {:>9} {:>9} {:>9} {:>9} {:>8}",
        "server", "requests/s", "p50", "p90", "p99", "p99.9", "max", "non-2xx"
    );
    for (name, r) in [
        ("bare axum handler (reads body)", &open_base),
        ("powernode: verify+normalize+fsync", &open),
    ] {
        let ms = |p| format!("{:.2}ms", open_loop::ms(&r.latencies, p));
        println!(
            "{name:<34} {:>12.0} {:>9} {:>9} {:>9} {:>9} {:>9} {:>8}",
            r.sent as f64 / r.elapsed.as_secs_f64(),
            ms(0.5),
            ms(0.9),
            ms(0.99),
            ms(0.999),
            ms(1.0),
            r.sent - r.ok
        );
        println!(
            "  the generator's own lateness: p99 {:.2}ms, max {:.2}ms",
            open_loop::ms(&r.send_delays, 0.99),
            open_loop::ms(&r.send_delays, 1.0)
        );
    }
    println!(
        "deliveries answered 2xx: {}, stored: {stored_open} (batches: {:?})",
        open.ok,
        inbox.stats()
    );
    // Likewise for the open loop.
    for (name, r) in [("bare handler", &open_base), ("powernode", &open)] {
        assert!(
            r.ok == r.sent,
            "{name}, open loop: {} of {} requests not answered 2xx, e.g. {:?}",
            r.sent - r.ok,
            r.sent,
            r.failures
        );
    }
    assert!(
        stored_open >= open.ok,
        "open loop: {} 2xx answers from powernode but only {stored_open} deliveries stored",
        open.ok
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
    /// Requests answered (wrk's "N requests in").
    requests: u64,
    /// Answers with status 400 or more: wrk's "Non-2xx or 3xx responses". This server sends no
    /// 1xx or 3xx; if it did, the stored-count check would catch them.
    errors: u64,
    /// wrk's "Socket errors" line (connect, read, write, timeout), if any.
    socket_errors: Option<String>,
}

fn wrk(dir: &tempfile::TempDir, url: &str, secs: u64, conns: u64) -> Figures {
    let out = Command::new("wrk")
        .args(["-t2", &format!("-c{conns}"), &format!("-d{secs}s"), "--latency", "-s"])
        .arg(dir.path().join("wrk.lua"))
        .arg(url)
        .output()
        .expect("wrk is needed: apt-get install wrk");
    assert!(
        out.status.success(),
        "wrk failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let field = |prefix: &str| {
        text.lines()
            .find_map(|l| l.trim().strip_prefix(prefix).map(|v| v.trim().to_string()))
            .unwrap_or_else(|| panic!("no `{prefix}` in wrk output:\n{text}"))
    };
    let requests = text
        .lines()
        .find_map(|l| l.trim().split_once(" requests in ").map(|(n, _)| n.parse().unwrap()))
        .unwrap_or_else(|| panic!("no request count in wrk output:\n{text}"));
    Figures {
        rps: field("Requests/sec:").parse().unwrap(),
        p50: field("50%"),
        p90: field("90%"),
        p99: field("99%"),
        requests,
        socket_errors: text
            .lines()
            .find_map(|l| l.trim().strip_prefix("Socket errors:").map(|v| v.trim().to_string())),
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
