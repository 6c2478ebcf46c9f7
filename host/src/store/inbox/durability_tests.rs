//! Durability on a disk that loses whatever was not synced (`lazy_disk.rs`): crashes at many
//! points lose no acknowledged delivery, and a failed `fdatasync` or write acknowledges nothing.
//! Unlike the SIGKILL test in `tests.rs`, these fail if the writer does not sync before it
//! acknowledges.

use std::collections::HashMap;

use super::lazy_disk::LazyDisk;
use super::tests::delivery;
use super::*;

/// Small segments, so some crashes land on the directory sync of a new segment.
const OPTIONS: InboxOptions = InboxOptions {
    segment_bytes: 32 << 10,
};

/// Sends from 8 tasks until each has sent `per_task` or got an error; returns the ids
/// acknowledged as stored.
async fn send_until_error(inbox: &Inbox, per_task: usize) -> Vec<String> {
    let tasks: Vec<_> = (0..8)
        .map(|t| {
            let inbox = inbox.clone();
            tokio::spawn(async move {
                let mut acked = Vec::new();
                for n in 0..per_task {
                    let id = format!("t{t}-{n}");
                    match inbox.accept(delivery(&id, 3000)).await {
                        Ok(Accepted::New { .. }) => acked.push(id),
                        Ok(other) => panic!("{id} is new, yet: {other:?}"),
                        Err(_) => break,
                    }
                }
                acked
            })
        })
        .collect();
    let mut acked = Vec::new();
    for t in tasks {
        acked.extend(t.await.unwrap());
    }
    acked
}

fn stored_ids(inbox: &Inbox) -> HashMap<String, usize> {
    let mut stored = HashMap::new();
    for d in inbox.iter() {
        *stored.entry(d.unwrap().delivery_id).or_default() += 1;
    }
    stored
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_that_empties_the_page_cache_loses_no_acknowledged_delivery() {
    // (successful syncs before the crash, unsynced bytes per file the kernel wrote back anyway)
    let points = [
        (0, 0),
        (1, 0),
        (2, 0),
        (3, 700),
        (5, 0),
        (8, 4000),
        (13, 0),
        (21, usize::MAX),
        (40, 0),
    ];
    let mut lost = 0;
    for (crash_after, keep) in points {
        let kept = if keep == usize::MAX {
            "all".to_string()
        } else {
            keep.to_string()
        };
        let at = format!("crash after {crash_after} syncs, {kept} unsynced bytes kept");
        let dir = tempfile::tempdir().unwrap();
        let disk = LazyDisk::new(dir.path());
        let inbox = Inbox::open_on(dir.path(), OPTIONS, disk.clone()).unwrap();
        disk.crash_after_syncs(crash_after);
        let acked = send_until_error(&inbox, 60).await;
        drop(inbox);
        let crashed = disk.crashed();
        let lost_now = disk.reboot(keep).unwrap();
        lost += lost_now;

        let inbox = Inbox::open_with(dir.path(), OPTIONS).unwrap();
        let stored = stored_ids(&inbox);
        eprintln!(
            "{at}: {} acknowledged, {} stored, {lost_now} bytes lost",
            acked.len(),
            stored.len()
        );
        for id in &acked {
            assert_eq!(stored.get(id), Some(&1), "acknowledged {id} lost ({at})");
        }
        assert!(stored.values().all(|&n| n == 1), "a delivery stored twice ({at})");
        assert!(crashed, "the crash never came ({at}): {} acknowledged", acked.len());
        assert_eq!(
            crash_after > 0,
            !acked.is_empty(),
            "({at}) acknowledged before the crash: {acked:?}"
        );
        assert!(
            matches!(inbox.accept(delivery("next", 10)).await, Ok(Accepted::New { .. })),
            "the log takes deliveries after the reboot ({at})"
        );
    }
    assert!(lost > 0, "no crash lost an unsynced byte, so none tested anything");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_fdatasync_acknowledges_nothing_and_stops_the_inbox() {
    let dir = tempfile::tempdir().unwrap();
    let disk = LazyDisk::new(dir.path());
    let inbox = Inbox::open_on(dir.path(), OPTIONS, disk.clone()).unwrap();
    assert_eq!(
        inbox.accept(delivery("before", 1000)).await.unwrap(),
        Accepted::New { seq: 0 }
    );
    assert_eq!(inbox.stopped(), None);
    disk.fail_next_fdatasync();
    // Each id twice at once: the second waits on the first's claim, then must fail too.
    let tasks: Vec<_> = (0..16)
        .map(|i| {
            let inbox = inbox.clone();
            let id = format!("f{}", i % 8);
            tokio::spawn(async move { (id.clone(), inbox.accept(delivery(&id, 1000)).await) })
        })
        .collect();
    for t in tasks {
        match t.await.unwrap() {
            (_, Err(InboxError::Failed(msg))) => assert!(msg.contains("fdatasync failed"), "{msg}"),
            (id, other) => panic!("{id}: its batch was not synced, yet: {other:?}"),
        }
    }
    // Linux reports a writeback error once: the next fdatasync would succeed although the
    // failed pages are gone. So nothing more is taken until a restart replays the disk.
    assert!(
        matches!(inbox.accept(delivery("after", 10)).await, Err(InboxError::Failed(_))),
        "accepted after a failed fdatasync"
    );
    assert_eq!(inbox.len(), 1);
    assert!(inbox.get("github", "f0").unwrap().is_none());
    // What `/readyz` tells the load balancer.
    let why = inbox.stopped().expect("the inbox says it stopped");
    assert!(why.contains("fdatasync failed"), "{why}");
    drop(inbox);

    disk.reboot(0).unwrap();
    let inbox = Inbox::open_with(dir.path(), OPTIONS).unwrap();
    assert_eq!(
        inbox.iter().map(|d| d.unwrap().delivery_id).collect::<Vec<_>>(),
        ["before"]
    );
    assert_eq!(
        inbox.accept(delivery("f0", 10)).await.unwrap(),
        Accepted::New { seq: 1 },
        "a delivery that was refused is new when sent again"
    );
}

#[tokio::test]
async fn a_write_that_fails_part_way_is_taken_back_and_the_inbox_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let disk = LazyDisk::new(dir.path());
    let inbox = Inbox::open_on(dir.path(), OPTIONS, disk.clone()).unwrap();
    inbox.accept(delivery("before", 1000)).await.unwrap();
    let segment = dir.path().join("00000000000000000000.log");
    let size = std::fs::metadata(&segment).unwrap().len();
    // The disk fills up in the middle of the next record.
    disk.set_space(Some(1500));
    match inbox.accept(delivery("full", 5000)).await {
        Err(InboxError::Write(msg)) => assert!(msg.contains("No space left"), "{msg}"),
        other => panic!("a failed write answered {other:?}"),
    }
    assert_eq!(
        std::fs::metadata(&segment).unwrap().len(),
        size,
        "the partial record was cut off"
    );
    disk.set_space(None);
    assert_eq!(
        inbox.accept(delivery("full", 5000)).await.unwrap(),
        Accepted::New { seq: 1 }
    );
    drop(inbox);

    let inbox = Inbox::open_with(dir.path(), OPTIONS).unwrap();
    assert_eq!(inbox.recovery().truncated_bytes, 0);
    assert_eq!(
        inbox.iter().map(|d| d.unwrap().delivery_id).collect::<Vec<_>>(),
        ["before", "full"]
    );
}
