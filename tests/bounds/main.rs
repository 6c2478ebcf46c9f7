//! Every hostile guest, one after the other, in one host process with the default limits,
//! then a normal step: the process's peak RSS stays under a bound and the data directory
//! under its quotas. A binary of its own, so no other test shares the process it measures.

#[path = "../it/harness.rs"]
#[allow(dead_code)]
mod harness;

use std::path::Path;
use std::time::Duration;

use harness::Harness;
use powernode::policy::{Capability, GrantConfig};
use powernode::runtime::{HostLimits, RuntimeConfig};
use serde_json::json;

/// Peak resident memory the whole process may reach.
const MAX_RSS: u64 = 600 << 20;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_guests_leave_the_host_within_its_bounds() {
    let limits = HostLimits::default();
    let h = Harness::with_config(RuntimeConfig {
        max_concurrent_steps: 4,
        host: limits,
        ..RuntimeConfig::default()
    });
    let grant = GrantConfig {
        interfaces: vec![Capability::Artifacts, Capability::Kv],
        http: vec!["api.example.com".into()],
        ..Default::default()
    };
    let hostile = h.load_ok(powernode_tests::HOSTILE, "hostile", grant).await;
    let attacks = [
        "sparse_artifact",
        "kv_flood",
        "dir_streams",
        "open_files",
        "http_fields",
        "http_handles",
        "escape_link",
        "shadow_stack",
        "terminal_escapes",
    ];
    for attack in attacks {
        let report = h
            .run(&hostile, json!({ "attack": attack }), Duration::from_secs(120))
            .await;
        let outcome = match &report.outcome {
            Ok(out) => format!("ok: {}", out.raw_output),
            Err(e) => e.to_string(),
        };
        println!("{attack:>16}: {outcome}");
        if attack != "escape_link" && attack != "terminal_escapes" {
            assert!(report.outcome.is_err(), "{attack} was not stopped: {outcome}");
        }
    }
    h.assert_still_works().await;

    let peak = peak_rss();
    let data = dir_size(h.data_dir());
    println!(
        "peak RSS {} MiB (bound {} MiB); data directory {} MiB",
        peak >> 20,
        MAX_RSS >> 20,
        data >> 20
    );
    assert!(peak < MAX_RSS, "peak RSS {peak} bytes is over {MAX_RSS}");
    // sled keeps values with some overhead (storage.md: 352 MB of values took 474 MB).
    let data_bound = limits.kv.max_bytes * 2 + limits.max_artifact_bytes.min(64 << 20);
    assert!(
        data <= data_bound,
        "data directory holds {data} bytes, over {data_bound}"
    );
}

/// `VmHWM` of this process, in bytes.
fn peak_rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    let kb: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kb << 10
}

fn dir_size(dir: &Path) -> u64 {
    let mut total = 0;
    let mut dirs = vec![dir.to_path_buf()];
    while let Some(d) = dirs.pop() {
        for entry in std::fs::read_dir(d).unwrap().flatten() {
            let meta = entry.metadata().unwrap();
            if meta.is_dir() {
                dirs.push(entry.path());
            } else {
                total += std::os::unix::fs::MetadataExt::blocks(&meta) * 512;
            }
        }
    }
    total
}
