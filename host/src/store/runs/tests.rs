//! The behaviour every [`RunStore`] must have; run against each backend.

use super::*;

fn new_run(id: &str, pipeline: &str, repo: &str) -> NewRun {
    let mut trigger = TriggerContext::default();
    trigger.repository.full_name = repo.into();
    NewRun {
        id: id.into(),
        pipeline: pipeline.into(),
        source: None,
        trigger,
        queued_at_ms: 1,
        group: Some(format!("{pipeline}-group")),
        needs_approval: false,
    }
}

fn step(name: &str, state: RunState) -> StepRecord {
    StepRecord {
        name: name.into(),
        step_type: "run_command".into(),
        state,
        started_at_ms: Some(2),
        finished_at_ms: None,
        error: None,
        raw_output: None,
        outputs: BTreeMap::new(),
    }
}

/// Runs every check against a fresh store from `open`.
pub(crate) async fn conformance<F, Fut>(open: F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Box<dyn RunStore>>,
{
    creating_twice_changes_nothing(&*open().await).await;
    claims_are_oldest_first_and_exclusive(&*open().await).await;
    a_lease_is_renewed_only_by_its_node(&*open().await).await;
    cancel_by_state(&*open().await).await;
    a_run_waiting_for_approval_is_claimed_only_once_approved(&*open().await).await;
    an_interrupted_run_is_retried_once_then_failed(&*open().await).await;
    lists_are_newest_first_filtered_and_paged(&*open().await).await;
    logs_keep_their_order_per_run(&*open().await).await;
    old_finished_runs_are_pruned_with_their_logs(&*open().await).await;
}

async fn old_finished_runs_are_pruned_with_their_logs(store: &dyn RunStore) {
    store.create(new_run("01", "p", "o/r")).await.unwrap();
    store.create(new_run("02", "p", "o/r")).await.unwrap();
    store.create(new_run("03", "p", "o/r")).await.unwrap();
    store.claim("a", 10, 100).await.unwrap();
    store.claim("a", 10, 100).await.unwrap();
    store.finish("01", "a", RunState::Success, None, 50).await.unwrap();
    store.finish("02", "a", RunState::Failure, None, 500).await.unwrap();
    store.append_log("01", &["old".into()]).await.unwrap();
    assert_eq!(
        store.prune(100).await.unwrap(),
        ["01"],
        "only runs that ended before the cutoff"
    );
    assert_eq!(store.get("01").await.unwrap(), None);
    assert_eq!(store.log("01", None).await.unwrap(), vec![]);
    assert!(store.get("02").await.unwrap().is_some());
    assert_eq!(
        store.prune(u64::MAX).await.unwrap(),
        ["02"],
        "a queued run is never pruned"
    );
    assert!(store.get("03").await.unwrap().is_some());
}

async fn logs_keep_their_order_per_run(store: &dyn RunStore) {
    store.append_log("01", &["a".into(), "b".into()]).await.unwrap();
    store.append_log("02", &["other".into()]).await.unwrap();
    store.append_log("01", &["c".into()]).await.unwrap();
    let lines = |all: Vec<(u64, String)>| -> Vec<String> { all.into_iter().map(|(_, l)| l).collect() };
    assert_eq!(lines(store.log("01", None).await.unwrap()), ["a", "b", "c"]);
    let first = store.log("01", None).await.unwrap()[0].0;
    assert_eq!(
        lines(store.log("01", Some(first)).await.unwrap()),
        ["b", "c"],
        "only the lines after a position"
    );
    assert_eq!(
        store.log("0", None).await.unwrap(),
        vec![],
        "a prefix of an id is another run"
    );
}

async fn creating_twice_changes_nothing(store: &dyn RunStore) {
    assert!(store.create(new_run("01", "p", "o/r")).await.unwrap());
    assert!(!store.create(new_run("01", "other", "o/r")).await.unwrap());
    let run = store.get("01").await.unwrap().unwrap();
    assert_eq!(
        (run.pipeline.as_str(), run.state, run.attempt),
        ("p", RunState::Queued, 1)
    );
}

async fn claims_are_oldest_first_and_exclusive(store: &dyn RunStore) {
    store.create(new_run("02", "p", "o/r")).await.unwrap();
    store.create(new_run("01", "p", "o/r")).await.unwrap();
    assert_eq!(store.queued().await.unwrap(), 2);
    let first = store.claim("a", 10, 100).await.unwrap().unwrap();
    assert_eq!((first.id.as_str(), first.state), ("01", RunState::Running));
    assert_eq!(first.lease.as_ref().unwrap().node, "a");
    assert_eq!(store.claim("b", 10, 100).await.unwrap().unwrap().id, "02");
    assert_eq!(store.claim("c", 10, 100).await.unwrap(), None);
    store.put_step("01", 0, step("build", RunState::Running)).await.unwrap();
    let mut done = step("build", RunState::Success);
    done.finished_at_ms = Some(5);
    store.put_step("01", 0, done.clone()).await.unwrap();
    // Only the holder finishes it.
    store.finish("01", "b", RunState::Failure, None, 20).await.unwrap();
    assert_eq!(store.get("01").await.unwrap().unwrap().state, RunState::Running);
    store.finish("01", "a", RunState::Success, None, 20).await.unwrap();
    let run = store.get("01").await.unwrap().unwrap();
    assert_eq!(
        (run.state, run.finished_at_ms, run.lease),
        (RunState::Success, Some(20), None)
    );
    assert_eq!(run.steps, vec![done]);
}

async fn a_lease_is_renewed_only_by_its_node(store: &dyn RunStore) {
    store.create(new_run("01", "p", "o/r")).await.unwrap();
    store.claim("a", 10, 100).await.unwrap().unwrap();
    assert!(store.heartbeat("01", "a", 200).await.unwrap());
    assert!(!store.heartbeat("01", "b", 300).await.unwrap());
    assert_eq!(store.get("01").await.unwrap().unwrap().lease.unwrap().until_ms, 200);
    // Not expired yet: recovery leaves it alone.
    assert_eq!(store.recover(150).await.unwrap(), Recovered::default());
}

async fn cancel_by_state(store: &dyn RunStore) {
    store.create(new_run("01", "p", "o/r")).await.unwrap();
    store.create(new_run("02", "p", "o/r")).await.unwrap();
    assert_eq!(store.cancel("01", 5).await.unwrap(), Some(Cancelled::WasQueued));
    assert_eq!(
        store.claim("a", 10, 100).await.unwrap().unwrap().id,
        "02",
        "a cancelled run is not claimed"
    );
    assert_eq!(store.cancel("02", 11).await.unwrap(), Some(Cancelled::Requested));
    assert!(store.get("02").await.unwrap().unwrap().cancel_requested);
    store
        .finish("02", "a", RunState::Cancelled, Some("cancelled".into()), 12)
        .await
        .unwrap();
    assert_eq!(
        store.cancel("02", 13).await.unwrap(),
        Some(Cancelled::AlreadyFinal(RunState::Cancelled))
    );
    assert_eq!(store.cancel("nope", 13).await.unwrap(), None);
}

async fn a_run_waiting_for_approval_is_claimed_only_once_approved(store: &dyn RunStore) {
    let waiting = |id: &str| NewRun {
        needs_approval: true,
        ..new_run(id, "p", "o/r")
    };
    store.create(waiting("01")).await.unwrap();
    store.create(waiting("02")).await.unwrap();
    assert_eq!(store.get("01").await.unwrap().unwrap().state, RunState::WaitingApproval);
    assert_eq!(store.queued().await.unwrap(), 0, "a waiting run is not queued");
    assert_eq!(store.claim("a", 2, 100).await.unwrap(), None);
    let filter = RunFilter {
        state: Some(RunState::WaitingApproval),
        ..RunFilter::default()
    };
    assert_eq!(store.list(&filter, None, 10).await.unwrap().runs.len(), 2);

    assert_eq!(store.approve("01", 3).await.unwrap(), Some(Approved::Queued));
    let approved = store.get("01").await.unwrap().unwrap();
    assert_eq!((approved.state, approved.approved_at_ms), (RunState::Queued, Some(3)));
    assert_eq!(store.queued().await.unwrap(), 1);
    assert_eq!(
        store.approve("01", 4).await.unwrap(),
        Some(Approved::NotWaiting(RunState::Queued)),
        "approving twice changes nothing"
    );
    let claimed = store.claim("a", 5, 100).await.unwrap().unwrap();
    assert_eq!(claimed.id, "01");
    assert_eq!(store.claim("a", 5, 100).await.unwrap(), None, "the other still waits");
    store.finish("01", "a", RunState::Success, None, 5).await.unwrap();

    assert_eq!(store.cancel("02", 6).await.unwrap(), Some(Cancelled::WasQueued));
    let cancelled = store.get("02").await.unwrap().unwrap();
    assert_eq!(
        (cancelled.state, cancelled.finished_at_ms),
        (RunState::Cancelled, Some(6))
    );
    assert_eq!(
        store.approve("02", 7).await.unwrap(),
        Some(Approved::NotWaiting(RunState::Cancelled)),
        "a cancelled run cannot be approved"
    );
    assert_eq!(store.claim("a", 8, 100).await.unwrap(), None);
    assert_eq!(store.approve("nope", 8).await.unwrap(), None);
    // Waiting is not running: recovery and pruning leave it alone.
    store.create(waiting("03")).await.unwrap();
    assert_eq!(store.recover(u64::MAX).await.unwrap(), Recovered::default());
    assert!(!store.prune(u64::MAX).await.unwrap().contains(&"03".to_string()));
}

async fn an_interrupted_run_is_retried_once_then_failed(store: &dyn RunStore) {
    store.create(new_run("01", "p", "o/r")).await.unwrap();
    store.claim("a", 10, 100).await.unwrap().unwrap();
    store.put_step("01", 0, step("build", RunState::Running)).await.unwrap();
    let recovered = store.recover(101).await.unwrap();
    assert_eq!(recovered.requeued, ["01"]);
    let run = store.get("01").await.unwrap().unwrap();
    assert_eq!((run.state, run.attempt), (RunState::Queued, 2));
    assert!(run.steps.is_empty());
    let past = &run.previous_attempts[0];
    assert_eq!((past.attempt, past.error.as_str()), (1, INTERRUPTED));
    assert_eq!(past.steps[0].state, RunState::Failure);
    let again = store.claim("b", 110, 200).await.unwrap().unwrap();
    assert_eq!((again.id.as_str(), again.attempt), ("01", 2));
    let recovered = store.recover(201).await.unwrap();
    assert_eq!(recovered.failed, ["01"]);
    let run = store.get("01").await.unwrap().unwrap();
    assert_eq!(
        (run.state, run.error.as_deref()),
        (RunState::Failure, Some(INTERRUPTED))
    );
    assert_eq!(store.claim("c", 210, 300).await.unwrap(), None, "never a third attempt");
}

async fn lists_are_newest_first_filtered_and_paged(store: &dyn RunStore) {
    for (id, pipeline, repo) in [
        ("01", "a", "o/x"),
        ("02", "b", "o/x"),
        ("03", "a", "o/y"),
        ("04", "a", "o/x"),
    ] {
        store.create(new_run(id, pipeline, repo)).await.unwrap();
    }
    let ids = |page: &Page| page.runs.iter().map(|r| r.id.clone()).collect::<Vec<_>>();
    let all = store.list(&RunFilter::default(), None, 3).await.unwrap();
    assert_eq!(ids(&all), ["04", "03", "02"]);
    assert_eq!(all.next.as_deref(), Some("02"));
    let rest = store.list(&RunFilter::default(), all.next.as_deref(), 3).await.unwrap();
    assert_eq!((ids(&rest), rest.next), (vec!["01".to_string()], None));
    let filter = RunFilter {
        pipeline: Some("a".into()),
        repository: Some("o/x".into()),
        state: Some(RunState::Queued),
        group: None,
    };
    assert_eq!(ids(&store.list(&filter, None, 10).await.unwrap()), ["04", "01"]);
    let group = RunFilter {
        group: Some("b-group".into()),
        ..RunFilter::default()
    };
    assert_eq!(ids(&store.list(&group, None, 10).await.unwrap()), ["02"]);
}

#[tokio::test]
async fn sled_runs_conform() {
    conformance(|| async {
        let dir = tempfile::tempdir().unwrap();
        let db = sled::Config::new()
            .temporary(true)
            .path(dir.path().join("db"))
            .open()
            .unwrap();
        Box::new(SledRuns::open(&db).unwrap()) as Box<dyn RunStore>
    })
    .await;
}
