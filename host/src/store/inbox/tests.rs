//! Inbox tests: dedupe, replay, torn tails, a SIGKILL crash test against a child process (the
//! page cache survives it; `durability_tests.rs` crashes without it), and an ignored throughput
//! bench (`cargo test --release -- --ignored inbox_bench --nocapture`).

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::*;

/// A delivery from `github` with id `id` and a raw body of `body_len` bytes.
pub(super) fn delivery(id: &str, body_len: usize) -> NewDelivery {
    NewDelivery {
        source: "github".into(),
        delivery_id: id.into(),
        event_json: format!(r#"{{"kind":"push","id":"{id}"}}"#).into_bytes(),
        raw_body: (0..body_len)
            .map(|i| b"0123456789abcdef"[(i * 7 + id.len()) % 16])
            .collect(),
        answer: Answer {
            status: 202,
            body: serde_json::json!({ "delivery": id, "runs": 1 }),
        },
        runs: vec![EnqueuedRun {
            run_id: format!("run-{id}"),
            pipeline: "ci".into(),
        }],
    }
}

fn segment_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .collect();
    files.sort();
    files
}

fn log_bytes(dir: &Path) -> u64 {
    segment_files(dir)
        .iter()
        .map(|p| std::fs::metadata(p).unwrap().len())
        .sum()
}

#[tokio::test]
async fn accept_then_get() {
    let dir = tempfile::tempdir().unwrap();
    let inbox = Inbox::open(dir.path()).unwrap();
    assert!(inbox.is_empty());
    let d = delivery("d1", 1000);
    assert_eq!(inbox.accept(d.clone()).await.unwrap(), Accepted::New { seq: 0 });
    let got = inbox.get("github", "d1").unwrap().unwrap();
    assert_eq!(
        (got.seq, got.source.as_str(), got.delivery_id.as_str()),
        (0, "github", "d1")
    );
    assert_eq!(
        (got.event_json, got.raw_body, got.answer, got.runs),
        (d.event_json, d.raw_body, d.answer, d.runs)
    );
    assert!(got.received_at_ms > 1_600_000_000_000);
    assert_eq!(inbox.get("github", "nope").unwrap(), None);
    assert_eq!(inbox.get("gitlab", "d1").unwrap(), None);
    assert_eq!(inbox.len(), 1);
}

#[tokio::test]
async fn duplicate_returns_first_answer_and_appends_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let inbox = Inbox::open(dir.path()).unwrap();
    let first = delivery("d1", 500);
    inbox.accept(first.clone()).await.unwrap();
    let size = log_bytes(dir.path());
    let mut again = delivery("d1", 900);
    again.answer = Answer {
        status: 500,
        body: serde_json::json!("different"),
    };
    let got = inbox.accept(again).await.unwrap();
    assert_eq!(
        got,
        Accepted::Duplicate {
            seq: 0,
            answer: first.answer.clone()
        }
    );
    assert_eq!(log_bytes(dir.path()), size);
    assert_eq!(inbox.len(), 1);
    // Same id from another source is a different delivery.
    let mut other = delivery("d1", 10);
    other.source = "gitea".into();
    assert_eq!(inbox.accept(other).await.unwrap(), Accepted::New { seq: 1 });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_same_id_accepts_exactly_one() {
    let dir = tempfile::tempdir().unwrap();
    let inbox = Inbox::open(dir.path()).unwrap();
    for round in 0..20 {
        let id = format!("same-{round}");
        let tasks: Vec<_> = (0..16)
            .map(|i| {
                let inbox = inbox.clone();
                let mut d = delivery(&id, 2000);
                d.answer.body = serde_json::json!({ "task": i });
                tokio::spawn(async move { (i, inbox.accept(d).await.unwrap()) })
            })
            .collect();
        let mut winner = None;
        let mut answers = Vec::new();
        for t in tasks {
            match t.await.unwrap() {
                (i, Accepted::New { .. }) => assert!(winner.replace(i).is_none(), "two New for {id}"),
                (_, Accepted::Duplicate { answer, .. }) => answers.push(answer),
            }
        }
        let winner = winner.expect("one New");
        assert_eq!(answers.len(), 15);
        assert!(answers.iter().all(|a| a.body == serde_json::json!({ "task": winner })));
    }
    assert_eq!(inbox.len(), 20);
}

#[tokio::test]
async fn reopen_replays_and_keeps_dedupe() {
    let dir = tempfile::tempdir().unwrap();
    {
        let inbox = Inbox::open(dir.path()).unwrap();
        for i in 0..50 {
            inbox.accept(delivery(&format!("d{i}"), 3000)).await.unwrap();
        }
        assert_eq!(inbox.stopped(), None);
        inbox.shutdown().await;
        assert!(matches!(
            inbox.accept(delivery("late", 1)).await,
            Err(InboxError::Closed)
        ));
        assert_eq!(inbox.stopped().as_deref(), Some("the inbox writer stopped"));
        assert!(
            inbox.get("github", "d3").unwrap().is_some(),
            "reads work after shutdown"
        );
    }
    let inbox = Inbox::open(dir.path()).unwrap();
    assert_eq!(
        inbox.recovery(),
        Recovery {
            segments: 1,
            records: 50,
            truncated_bytes: 0
        }
    );
    assert_eq!(inbox.len(), 50);
    let all: Vec<_> = inbox.iter().map(Result::unwrap).collect();
    assert_eq!(all.len(), 50);
    for (i, d) in all.iter().enumerate() {
        assert_eq!((d.seq, d.delivery_id.clone()), (i as u64, format!("d{i}")));
    }
    assert!(matches!(
        inbox.accept(delivery("d7", 1)).await.unwrap(),
        Accepted::Duplicate { seq: 7, .. }
    ));
    assert_eq!(
        inbox.accept(delivery("d50", 1)).await.unwrap(),
        Accepted::New { seq: 50 }
    );
    assert_eq!(
        inbox.iter_from(48).map(|d| d.unwrap().seq).collect::<Vec<_>>(),
        vec![48, 49, 50]
    );
}

#[tokio::test]
async fn torn_tail_is_truncated_and_appends_continue() {
    let dir = tempfile::tempdir().unwrap();
    {
        let inbox = Inbox::open(dir.path()).unwrap();
        for i in 0..3 {
            inbox.accept(delivery(&format!("d{i}"), 5000)).await.unwrap();
        }
        inbox.shutdown().await;
    }
    let seg = segment_files(dir.path()).pop().unwrap();
    let full = std::fs::metadata(&seg).unwrap().len();
    // Cut the last record in the middle of its body.
    std::fs::OpenOptions::new()
        .write(true)
        .open(&seg)
        .unwrap()
        .set_len(full - 2000)
        .unwrap();
    {
        let inbox = Inbox::open(dir.path()).unwrap();
        let r = inbox.recovery();
        assert_eq!(r.records, 2);
        assert!(r.truncated_bytes > 3000, "{r:?}");
        assert!(inbox.get("github", "d2").unwrap().is_none());
        // The lost delivery was never acknowledged, so its redelivery is new.
        assert_eq!(
            inbox.accept(delivery("d2", 5000)).await.unwrap(),
            Accepted::New { seq: 2 }
        );
        assert_eq!(
            inbox.accept(delivery("d3", 5000)).await.unwrap(),
            Accepted::New { seq: 3 }
        );
        inbox.shutdown().await;
    }
    let inbox = Inbox::open(dir.path()).unwrap();
    assert_eq!(inbox.recovery().truncated_bytes, 0);
    assert_eq!(
        inbox.iter().map(|d| d.unwrap().delivery_id).collect::<Vec<_>>(),
        ["d0", "d1", "d2", "d3"]
    );
}

#[tokio::test]
async fn garbage_tail_and_partial_header_are_dropped() {
    let dir = tempfile::tempdir().unwrap();
    {
        let inbox = Inbox::open(dir.path()).unwrap();
        inbox.accept(delivery("d0", 100)).await.unwrap();
    }
    let seg = segment_files(dir.path()).pop().unwrap();
    let good = std::fs::metadata(&seg).unwrap().len();
    for garbage in [
        &b"\x01\x02\x03"[..],
        &[0u8; 4096][..],
        &[0xffu8; 100][..],
        b"\x10\x00\x00\x00abcdabcdabcdabcdabcd",
    ] {
        std::fs::OpenOptions::new()
            .append(true)
            .open(&seg)
            .unwrap()
            .write_all(garbage)
            .unwrap();
        let inbox = Inbox::open(dir.path()).unwrap();
        assert_eq!(inbox.recovery().truncated_bytes, garbage.len() as u64);
        assert_eq!(inbox.len(), 1);
        assert_eq!(std::fs::metadata(&seg).unwrap().len(), good);
    }
    let inbox = Inbox::open(dir.path()).unwrap();
    inbox.accept(delivery("d1", 100)).await.unwrap();
    drop(inbox);
    let inbox = Inbox::open(dir.path()).unwrap();
    assert_eq!(inbox.len(), 2);
    assert_eq!(inbox.get("github", "d1").unwrap().unwrap().seq, 1);
}

#[tokio::test]
async fn segments_roll_over_and_damage_before_the_tail_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let options = InboxOptions { segment_bytes: 20_000 };
    {
        let inbox = Inbox::open_with(dir.path(), options).unwrap();
        for i in 0..20 {
            inbox.accept(delivery(&format!("d{i}"), 6000)).await.unwrap();
        }
        inbox.shutdown().await;
    }
    let segs = segment_files(dir.path());
    assert!(segs.len() >= 5, "{segs:?}");
    {
        let inbox = Inbox::open_with(dir.path(), options).unwrap();
        assert_eq!(inbox.recovery().segments, segs.len());
        let ids: Vec<_> = inbox.iter().map(|d| d.unwrap().delivery_id).collect();
        assert_eq!(ids, (0..20).map(|i| format!("d{i}")).collect::<Vec<_>>());
    }
    // Flip a byte in the first segment: acknowledged data, so refuse to open rather than cut.
    let mut bytes = std::fs::read(&segs[0]).unwrap();
    bytes[100] ^= 0x40;
    std::fs::write(&segs[0], &bytes).unwrap();
    match Inbox::open_with(dir.path(), options) {
        Err(InboxError::Corrupt { path, offset: 0, .. }) => assert_eq!(path, segs[0]),
        other => panic!("expected Corrupt, got {:?}", other.map(|_| ())),
    }
}

#[tokio::test]
async fn prune_drops_whole_old_segments_and_their_dedupe_entries() {
    let dir = tempfile::tempdir().unwrap();
    let options = InboxOptions { segment_bytes: 20_000 };
    let inbox = Inbox::open_with(dir.path(), options).unwrap();
    for i in 0..30 {
        inbox.accept(delivery(&format!("d{i}"), 6000)).await.unwrap();
    }
    let before = segment_files(dir.path()).len();
    assert_eq!(inbox.prune_before(0).unwrap(), 0);
    let dropped = inbox.prune_before(15).unwrap();
    let kept = inbox.seq_range();
    assert_eq!(kept.start, dropped);
    assert!((10..=15).contains(&kept.start), "{kept:?}");
    assert_eq!(kept.end, 30);
    assert_eq!(inbox.len() as u64, 30 - dropped);
    assert!(segment_files(dir.path()).len() < before);
    assert!(inbox.get("github", "d0").unwrap().is_none());
    assert!(inbox.get_seq(0).unwrap().is_none());
    assert_eq!(inbox.get("github", "d29").unwrap().unwrap().seq, 29);
    let ids: Vec<_> = inbox.iter().map(|d| d.unwrap().seq).collect();
    assert_eq!(ids, (kept.start..30).collect::<Vec<_>>());
    // Forgotten: a redelivery of a pruned id is new; a kept one is still a duplicate.
    assert_eq!(
        inbox.accept(delivery("d0", 10)).await.unwrap(),
        Accepted::New { seq: 30 }
    );
    assert!(matches!(
        inbox.accept(delivery("d20", 10)).await.unwrap(),
        Accepted::Duplicate { seq: 20, .. }
    ));
    // The segment being written is never removed.
    inbox.prune_before(u64::MAX).unwrap();
    assert_eq!(segment_files(dir.path()).len(), 1);
    assert!(inbox.get("github", "d0").unwrap().is_some());
    let range = inbox.seq_range();
    inbox.shutdown().await;
    drop(inbox);
    let inbox = Inbox::open_with(dir.path(), options).unwrap();
    assert_eq!(inbox.seq_range(), range);
    assert_eq!(
        inbox.accept(delivery("d31", 10)).await.unwrap(),
        Accepted::New { seq: 31 }
    );
}

#[tokio::test]
async fn one_open_inbox_per_directory() {
    let dir = tempfile::tempdir().unwrap();
    let inbox = Inbox::open(dir.path()).unwrap();
    assert!(matches!(Inbox::open(dir.path()), Err(InboxError::Busy(_))));
    let clone = inbox.clone();
    drop(inbox);
    assert!(
        matches!(Inbox::open(dir.path()), Err(InboxError::Busy(_))),
        "a clone still holds it"
    );
    clone.accept(delivery("d0", 10)).await.unwrap();
    drop(clone);
    assert_eq!(Inbox::open(dir.path()).unwrap().len(), 1);
}

#[tokio::test]
async fn read_only_snapshot_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    assert!(
        Inbox::open_read_only(dir.path()).unwrap().is_empty(),
        "an empty directory is an empty inbox"
    );
    let inbox = Inbox::open(dir.path()).unwrap();
    for i in 0..3 {
        inbox.accept(delivery(&format!("d{i}"), 5000)).await.unwrap();
    }
    let snapshot = Inbox::open_read_only(dir.path()).unwrap();
    assert_eq!(snapshot.len(), 3);
    assert_eq!(snapshot.get("github", "d1").unwrap().unwrap().raw_body.len(), 5000);
    assert!(matches!(
        snapshot.accept(delivery("d9", 1)).await,
        Err(InboxError::Closed)
    ));
    assert!(matches!(snapshot.prune_before(10), Err(InboxError::Closed)));
    snapshot.shutdown().await;
    drop(inbox);
    let seg = segment_files(dir.path()).pop().unwrap();
    let cut = std::fs::metadata(&seg).unwrap().len() - 100;
    std::fs::OpenOptions::new()
        .write(true)
        .open(&seg)
        .unwrap()
        .set_len(cut)
        .unwrap();
    let snapshot = Inbox::open_read_only(dir.path()).unwrap();
    assert_eq!((snapshot.len(), snapshot.recovery().truncated_bytes > 0), (2, true));
    assert_eq!(
        std::fs::metadata(&seg).unwrap().len(),
        cut,
        "read-only leaves the tail alone"
    );
    let inbox = Inbox::open(dir.path()).unwrap();
    assert_eq!(inbox.len(), 2);
    assert!(std::fs::metadata(&seg).unwrap().len() < cut);
}

#[tokio::test]
async fn invalid_deliveries_are_refused_without_a_trace() {
    let dir = tempfile::tempdir().unwrap();
    let inbox = Inbox::open(dir.path()).unwrap();
    let mut d = delivery("", 10);
    assert!(matches!(inbox.accept(d.clone()).await, Err(InboxError::Invalid(_))));
    d.delivery_id = "x".repeat(2000);
    assert!(matches!(inbox.accept(d.clone()).await, Err(InboxError::Invalid(_))));
    d.delivery_id = "ok".into();
    d.runs[0].pipeline = "p".repeat(70_000);
    assert!(matches!(inbox.accept(d.clone()).await, Err(InboxError::Invalid(_))));
    // The refused claim on "ok" was released.
    assert_eq!(
        inbox.accept(delivery("ok", 10)).await.unwrap(),
        Accepted::New { seq: 0 }
    );
    assert_eq!(inbox.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelled_accept_releases_or_completes_its_claim() {
    let dir = tempfile::tempdir().unwrap();
    let inbox = Inbox::open(dir.path()).unwrap();
    for i in 0..200 {
        let id = format!("c{i}");
        let fut = inbox.accept(delivery(&id, 20_000));
        // Drop it at some point (or never start it); a redelivery must then not hang.
        let _ = tokio::time::timeout(Duration::from_micros(i * 5), fut).await;
        let again = tokio::time::timeout(Duration::from_secs(5), inbox.accept(delivery(&id, 10))).await;
        assert!(again.expect("redelivery hung").is_ok());
    }
    assert_eq!(inbox.len(), 200);
}

// ---- crash test ----------------------------------------------------------------------------

const CHILD_DIR: &str = "POWERNODE_INBOX_CRASH_CHILD_DIR";
const CHILD_ROUND: &str = "POWERNODE_INBOX_CRASH_CHILD_ROUND";
/// Longest a child may take to acknowledge the deliveries it is killed after.
const CHILD_DEADLINE: Duration = Duration::from_secs(120);

fn this_test(name: &str) -> String {
    let module = module_path!();
    let without_crate = module.split_once("::").map_or(module, |(_, rest)| rest);
    format!("{without_crate}::{name}")
}

/// The child side of `sigkill_loses_no_acknowledged_delivery`; a no-op in a normal test run.
#[test]
fn crash_child() {
    let Ok(dir) = std::env::var(CHILD_DIR) else { return };
    let round = std::env::var(CHILD_ROUND).unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let inbox = Inbox::open(Path::new(&dir)).unwrap();
        let tasks: Vec<_> = (0..16)
            .map(|t| {
                let inbox = inbox.clone();
                let round = round.clone();
                tokio::spawn(async move {
                    for n in 0u64.. {
                        let id = format!("r{round}-t{t}-{n}");
                        let got = inbox.accept(delivery(&id, 22_000)).await.unwrap();
                        assert!(matches!(got, Accepted::New { .. }), "{id}: {got:?}");
                        {
                            let mut out = std::io::stdout().lock();
                            writeln!(out, "ACK {id}").unwrap();
                            out.flush().unwrap();
                        }
                        if n % 10 == 9 {
                            let old = format!("r{round}-t{t}-{}", n - 5);
                            let got = inbox.accept(delivery(&old, 10)).await.unwrap();
                            assert!(matches!(got, Accepted::Duplicate { .. }), "{old}: {got:?}");
                        }
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
    });
}

/// Runs the child until it has acknowledged at least `acks` deliveries, SIGKILLs it, and
/// returns every id it acknowledged. Fails if that takes longer than [`CHILD_DEADLINE`].
fn run_child_and_kill(dir: &Path, round: u32, acks: usize) -> Vec<String> {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([&this_test("crash_child"), "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_DIR, dir)
        .env(CHILD_ROUND, round.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    // A child that stops acknowledging must not hang the test: past the deadline, kill it.
    let (stop_watchdog, stopped) = std::sync::mpsc::channel::<()>();
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    let watchdog = std::thread::spawn(move || {
        let late = matches!(
            stopped.recv_timeout(CHILD_DEADLINE),
            Err(std::sync::mpsc::RecvTimeoutError::Timeout)
        );
        if late {
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
        }
        late
    });
    let mut acked = Vec::new();
    let mut line = Vec::new();
    let mut killed = false;
    loop {
        line.clear();
        if out.read_until(b'\n', &mut line).unwrap() == 0 {
            break;
        }
        // A line cut short by the kill has no newline and was not fully printed: not counted.
        if let Some(id) = line.strip_prefix(b"ACK ").and_then(|l| l.strip_suffix(b"\n")) {
            acked.push(String::from_utf8(id.to_vec()).unwrap());
        }
        if !killed && acked.len() >= acks {
            child.kill().unwrap(); // SIGKILL
            killed = true;
        }
    }
    // Stop the watchdog before reaping the child, so its pid cannot have been reused.
    let _ = stop_watchdog.send(());
    let late = watchdog.join().unwrap();
    let status = child.wait().unwrap();
    assert!(
        !late,
        "waited {CHILD_DEADLINE:?} for {acks} acknowledgements from the child, got {}; killed it",
        acked.len()
    );
    assert!(killed, "child exited on its own ({status}) after {} acks", acked.len());
    acked
}

#[test]
fn sigkill_loses_no_acknowledged_delivery() {
    if std::env::var_os(CHILD_DIR).is_some() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut acked = Vec::new();
    for (round, target) in [(0, 1500), (1, 2300)] {
        acked.extend(run_child_and_kill(dir.path(), round, target));
        let inbox = Inbox::open(dir.path()).unwrap();
        let mut count: HashMap<(String, String), usize> = HashMap::new();
        for d in inbox.iter() {
            let d = d.unwrap();
            assert_eq!(d.raw_body.len(), 22_000);
            *count.entry((d.source, d.delivery_id)).or_default() += 1;
        }
        assert!(count.values().all(|&n| n == 1), "a delivery was stored twice");
        for id in &acked {
            assert_eq!(
                count.get(&("github".to_string(), id.clone())),
                Some(&1),
                "acknowledged {id} lost"
            );
        }
        eprintln!(
            "round {round}: {} acknowledged, {} stored, recovery {:?}",
            acked.len(),
            inbox.len(),
            inbox.recovery()
        );
    }
}

// ---- bench ---------------------------------------------------------------------------------

/// Deliveries/s and latency of `accept` with 22 KB bodies from 64 tasks on a 2-worker runtime.
/// `INBOX_BENCH_DIR` picks the disk (default: the temp dir), `INBOX_BENCH_SECS` the duration;
/// `INBOX_BENCH_RATE` (deliveries/s) paces the tasks open-loop, latency then counted from each
/// delivery's scheduled time; unset, every task sends as fast as it is answered.
#[test]
#[ignore = "benchmark; run with --release -- --ignored --nocapture"]
fn inbox_bench() {
    let base = std::env::var_os("INBOX_BENCH_DIR").map_or_else(std::env::temp_dir, PathBuf::from);
    let secs: u64 = std::env::var("INBOX_BENCH_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5);
    let rate: Option<f64> = std::env::var("INBOX_BENCH_RATE").ok().and_then(|s| s.parse().ok());
    let dir = tempfile::tempdir_in(base).unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let body: Vec<u8> = (0..22 * 1024)
        .map(|i| b"{\"abcdefghijklmnop\":0123456789}"[i % 30])
        .collect();
    let event = vec![b'e'; 1500];
    let (lat, elapsed, stats) = rt.block_on(async {
        let inbox = Inbox::open(dir.path()).unwrap();
        let start = Instant::now();
        let deadline = start + Duration::from_secs(secs);
        let tasks: Vec<_> = (0..64)
            .map(|t: u64| {
                let (inbox, body, event) = (inbox.clone(), body.clone(), event.clone());
                tokio::spawn(async move {
                    let mut lat = Vec::new();
                    let mut n = 0u64;
                    loop {
                        let t0 = match rate {
                            Some(rate) => {
                                let at = start + Duration::from_secs_f64((n * 64 + t) as f64 / rate);
                                tokio::time::sleep_until(at.into()).await;
                                at
                            }
                            None => Instant::now(),
                        };
                        if t0 >= deadline {
                            break;
                        }
                        let d = NewDelivery {
                            source: "github".into(),
                            delivery_id: format!("{t}-{n}"),
                            event_json: event.clone(),
                            raw_body: body.clone(),
                            answer: Answer {
                                status: 202,
                                body: serde_json::json!({ "runs": ["r"] }),
                            },
                            runs: vec![EnqueuedRun {
                                run_id: format!("run-{t}-{n}"),
                                pipeline: "ci".into(),
                            }],
                        };
                        let called = Instant::now();
                        inbox.accept(d).await.unwrap();
                        lat.push((t0.elapsed(), called.elapsed()));
                        n += 1;
                    }
                    lat
                })
            })
            .collect();
        let mut lat = Vec::new();
        for t in tasks {
            lat.extend(t.await.unwrap());
        }
        let elapsed = start.elapsed();
        inbox.shutdown().await;
        (lat, elapsed, inbox.stats())
    });
    let (mut lat, mut inner): (Vec<Duration>, Vec<Duration>) = lat.into_iter().unzip();
    lat.sort();
    inner.sort();
    let pick = |v: &[Duration], p: f64| v[((v.len() as f64 * p) as usize).min(v.len() - 1)].as_secs_f64() * 1e3;
    let pct = |p: f64| pick(&lat, p);
    let rate = lat.len() as f64 / elapsed.as_secs_f64();
    println!(
        "inbox_bench: {} deliveries in {:.1}s = {:.0}/s ({:.0} MB/s); latency ms p50 {:.2} p90 {:.2} p99 {:.2} \
         p99.9 {:.2} max {:.2} (inside accept: p50 {:.2} p99 {:.2} p99.9 {:.2} max {:.2}); {} batches, \
         {:.1} deliveries/batch",
        lat.len(),
        elapsed.as_secs_f64(),
        rate,
        rate * (body.len() + event.len()) as f64 / 1e6,
        pct(0.5),
        pct(0.9),
        pct(0.99),
        pct(0.999),
        pct(1.0),
        pick(&inner, 0.5),
        pick(&inner, 0.99),
        pick(&inner, 0.999),
        pick(&inner, 1.0),
        stats.batches,
        stats.records as f64 / stats.batches.max(1) as f64,
    );
}
