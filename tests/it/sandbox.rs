//! Adversarial guests: each fails its step with a named error within its limit, and the
//! same host then runs a normal step.

use std::io::{Read, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use powernode::policy::GrantConfig;
use powernode::runtime::{LogLimits, RuntimeConfig, StepFailure};
use serde_json::json;

use crate::harness::{Harness, log_text};

const SHORT: Duration = Duration::from_millis(500);

#[tokio::test]
async fn infinite_loop_is_stopped_at_its_time_limit() {
    let h = Harness::new();
    let p = h
        .load_ok(powernode_tests::SPIN_LOOP, "spin_loop", GrantConfig::default())
        .await;
    let report = h.run(&p, json!({}), SHORT).await;
    assert_eq!(report.outcome, Err(StepFailure::Timeout(SHORT)));
    h.assert_still_works().await;
}

#[tokio::test]
async fn memory_bomb_hits_the_memory_cap() {
    let h = Harness::with_config(RuntimeConfig {
        memory_limit: 64 << 20,
        ..RuntimeConfig::default()
    });
    let p = h
        .load_ok(powernode_tests::MEMORY_BOMB, "memory_bomb", GrantConfig::default())
        .await;
    let report = h.run(&p, json!({}), Duration::from_secs(30)).await;
    match report.outcome {
        Err(StepFailure::MemoryLimit(m)) => assert!(m.contains("the limit is 67108864 bytes"), "{m}"),
        other => panic!("expected a memory limit failure, got {other:?}"),
    }
    h.assert_still_works().await;
}

/// Regression: below a plugin's own minimum memory the pooling allocator refused it in its
/// own words ("memory has a minimum byte size of ..."); now every cap says `memory limit`.
#[tokio::test]
async fn a_cap_below_the_plugins_starting_memory_is_the_memory_limit_error() {
    for cap in [64 << 10, 1 << 20] {
        let h = Harness::with_config(RuntimeConfig {
            memory_limit: cap,
            ..RuntimeConfig::default()
        });
        let err = h
            .load(powernode_tests::HELLO, "hello", GrantConfig::default())
            .await
            .unwrap_err();
        let message = err.to_string();
        assert!(message.starts_with("memory limit: `"), "cap {cap}: {message}");
        assert!(
            message.contains(&format!("the limit is {cap} bytes (raise `[limits] memory_mb`)")),
            "{message}"
        );
        assert!(!message.contains("minimum byte size"), "{message}");
    }
}

#[tokio::test]
async fn deep_recursion_overflows_the_wasm_stack() {
    let h = Harness::new();
    let p = h
        .load_ok(
            powernode_tests::DEEP_RECURSION,
            "deep_recursion",
            GrantConfig::default(),
        )
        .await;
    let report = h.run(&p, json!({}), Duration::from_secs(30)).await;
    assert_eq!(report.outcome, Err(StepFailure::StackOverflow));
    h.assert_still_works().await;
}

#[tokio::test]
async fn guest_cannot_read_outside_the_workspace() {
    let h = Harness::new();
    let p = h
        .load_ok(powernode_tests::FS_ESCAPE, "fs_escape", GrantConfig::default())
        .await;
    let report = h.run(&p, json!({}), Duration::from_secs(30)).await;
    match report.outcome {
        Err(StepFailure::Failed(m)) => {
            assert!(m.contains("/etc/passwd"), "{m}");
            assert!(!m.contains("root:"), "{m}");
        }
        other => panic!("the guest read a file outside its workspace: {other:?}"),
    }
    h.assert_still_works().await;
}

#[tokio::test]
async fn guest_sees_no_environment() {
    assert!(std::env::var_os("PATH").is_some());
    let h = Harness::new();
    let p = h
        .load_ok(powernode_tests::READ_ENV, "read_env", GrantConfig::default())
        .await;
    let report = h.run(&p, json!({}), Duration::from_secs(30)).await;
    assert_eq!(
        report.outcome,
        Err(StepFailure::Failed("no environment visible".into()))
    );
    h.assert_still_works().await;
}

#[tokio::test]
async fn panic_is_reported_with_its_message() {
    let h = Harness::new();
    let p = h.load_ok(powernode_tests::PANIC, "panic", GrantConfig::default()).await;
    let report = h.run(&p, json!({}), Duration::from_secs(30)).await;
    match report.outcome {
        Err(StepFailure::Panic(m)) => assert!(m.contains("deliberate panic in guest"), "{m}"),
        other => panic!("expected a panic, got {other:?}"),
    }
    h.assert_still_works().await;
}

fn small_log() -> RuntimeConfig {
    RuntimeConfig {
        log_limits: LogLimits {
            kept_bytes: 64 << 10,
            flood_bytes: 4 << 20,
        },
        ..RuntimeConfig::default()
    }
}

#[tokio::test]
async fn log_flood_is_bounded_and_stopped() {
    let h = Harness::with_config(small_log());
    let p = h
        .load_ok(powernode_tests::LOG_FLOOD, "log_flood", GrantConfig::default())
        .await;
    let report = h.run(&p, json!({}), Duration::from_secs(60)).await;
    assert!(
        matches!(&report.outcome, Err(StepFailure::LogFlood(m)) if m.contains("4194304 bytes")),
        "{:?}",
        report.outcome
    );
    let kept: usize = report.log.iter().map(|l| l.message.len() + 1).sum();
    assert!(kept < (64 << 10) + 1024, "log kept {kept} bytes");
    assert!(report.log.last().unwrap().message.starts_with("log truncated:"));
    h.assert_still_works().await;
}

#[tokio::test]
async fn stdout_flood_is_bounded_and_stopped() {
    let h = Harness::with_config(small_log());
    let p = h
        .load_ok(powernode_tests::STDOUT_FLOOD, "stdout_flood", GrantConfig::default())
        .await;
    let report = h.run(&p, json!({}), Duration::from_secs(60)).await;
    assert!(
        matches!(&report.outcome, Err(StepFailure::LogFlood(_))),
        "{:?}",
        report.outcome
    );
    let kept: usize = report.log.iter().map(|l| l.message.len() + 1).sum();
    assert!(kept < (64 << 10) + 1024, "log kept {kept} bytes");
    h.assert_still_works().await;
}

/// A one-shot HTTP server on loopback answering 200 "pong" to every request.
fn pong_server() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { break };
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf);
            let _ = s.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 4\r\nconnection: close\r\n\r\npong");
        }
    });
    port
}

/// Runs the `http-get` guest allowed to reach only `allow`, fetching `url`.
async fn http_get(h: &Harness, allow: &str, url: String) -> powernode::runtime::StepReport {
    let grant = GrantConfig {
        interfaces: vec![],
        http: vec![allow.to_string()],
        ..Default::default()
    };
    let p = h.load_ok(powernode_tests::HTTP_GET, "http_get", grant).await;
    h.run(&p, json!({ "url": url }), Duration::from_secs(30)).await
}

fn assert_denied(report: &powernode::runtime::StepReport, reason: &str) {
    assert!(
        matches!(&report.outcome, Err(StepFailure::Failed(m)) if m.contains("HttpRequestDenied")),
        "expected the request to be denied, got {:?}",
        report.outcome
    );
    assert!(log_text(report).contains(reason), "{}", log_text(report));
}

#[tokio::test]
async fn http_to_a_host_not_allowed_is_denied() {
    let port = pong_server();
    let h = Harness::new();
    let report = http_get(&h, "api.example.com", format!("http://127.0.0.1:{port}/ping")).await;
    assert_denied(
        &report,
        &format!("`127.0.0.1:{port}` is not in this plugin's http allow-list"),
    );
    h.assert_still_works().await;
}

#[tokio::test]
async fn loopback_listed_by_name_is_still_denied() {
    let port = pong_server();
    let h = Harness::new();
    let report = http_get(&h, "localhost", format!("http://localhost:{port}/ping")).await;
    assert_denied(&report, "not a public address (loopback");
}

#[tokio::test]
async fn http_to_an_explicitly_listed_loopback_address_works() {
    let port = pong_server();
    let h = Harness::new();
    let report = http_get(
        &h,
        &format!("127.0.0.1:{port}"),
        format!("http://127.0.0.1:{port}/ping"),
    )
    .await;
    let out = report.outcome.unwrap_or_else(|e| panic!("{e}"));
    assert!(out.raw_output.contains("pong"), "{}", out.raw_output);
}

/// A server on `ip` that answers `who` to every request, counting them.
fn named_server(ip: &str, port: u16, who: &'static str, hits: Arc<AtomicUsize>) {
    let listener = std::net::TcpListener::bind((ip, port)).unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { continue };
            hits.fetch_add(1, Ordering::SeqCst);
            let mut buf = [0u8; 1024];
            let _ = s.read(&mut buf);
            let answer = format!(
                "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{who}",
                who.len()
            );
            let _ = s.write_all(answer.as_bytes());
        }
    });
}

#[tokio::test]
async fn a_name_that_rebinds_to_loopback_after_the_check_cannot_reach_loopback() {
    // 127.0.0.2 stands for an allowed address, 127.0.0.1 for the loopback the second answer
    // of a rebinding name points at; both on one port.
    let probe = std::net::TcpListener::bind("127.0.0.2:0").unwrap();
    let port = probe.local_addr().unwrap().port();
    drop(probe);
    let (allowed_hits, loopback_hits) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    named_server("127.0.0.2", port, "allowed", allowed_hits.clone());
    named_server("127.0.0.1", port, "loopback", loopback_hits.clone());
    // The first lookup answers the allowed address, every later one loopback.
    let lookups = Arc::new(AtomicUsize::new(0));
    let counter = lookups.clone();
    let resolver = powernode::runtime::Resolver(Arc::new(move |_host: String, port: u16| {
        let n = counter.fetch_add(1, Ordering::SeqCst);
        let ip = if n == 0 { "127.0.0.2" } else { "127.0.0.1" };
        Box::pin(async move { Ok(vec![std::net::SocketAddr::new(ip.parse().unwrap(), port)]) })
    }));
    let h = Harness::with_config(powernode::runtime::RuntimeConfig {
        resolver,
        ..powernode::runtime::RuntimeConfig::default()
    });
    let grant = GrantConfig {
        http: vec!["rebind.test".into(), "127.0.0.2".into()],
        ..Default::default()
    };
    let p = h.load_ok(powernode_tests::HTTP_GET, "http_get", grant).await;
    let report = h
        .run(
            &p,
            json!({ "url": format!("http://rebind.test:{port}/") }),
            Duration::from_secs(30),
        )
        .await;
    let out = report.outcome.unwrap_or_else(|e| panic!("{e}"));
    assert!(out.raw_output.ends_with("allowed"), "{}", out.raw_output);
    assert_eq!(lookups.load(Ordering::SeqCst), 1, "the name is looked up once");
    assert_eq!(loopback_hits.load(Ordering::SeqCst), 0, "loopback was reached");
    assert_eq!(allowed_hits.load(Ordering::SeqCst), 1);
}
