//! Three nodes on one PostgreSQL database, in one process: each with its own pools, intake,
//! feeder and scheduler workers, as three `powernode serve` would have. Every delivery is
//! sent to two nodes at once; each is stored once and each run executes exactly once. A run
//! held by a node that died is taken back by the others once its lease runs out, and a
//! cancel recorded in the database stops a run on the node running it.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use powernode::catalog::Catalog;
use powernode::config::Config;
use powernode::intake::Intake;
use powernode::pipeline::StepTypes;
use powernode::policy::Grants;
use powernode::registry::Registry;
use powernode::scheduler::{Scheduler, SchedulerConfig, feed_deliveries, now_ms};
use powernode::store::SledStore;
use powernode::store::deliveries::Deliveries;
use powernode::store::pg::{PgDeliveries, PgRuns, connect, throwaway};
use powernode::store::runs::{NewRun, RunFilter, RunRecord, RunState, RunStore};

use crate::harness::Harness;

const FIXTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../host/src/webhook/fixtures/github/push");
const DELIVERIES: usize = 300;

struct Node {
    intake: Arc<Intake>,
    _data: tempfile::TempDir,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deliveries_sent_twice_to_three_nodes_run_exactly_once() {
    let cluster = throwaway::Cluster::start().unwrap();
    let pg = cluster.config("cluster", 6).await.unwrap();
    let h = Harness::new();
    let catalog = Arc::new(Catalog::new(h.runtime.clone(), Grants::default(), None));
    let ran = tempfile::tempdir().unwrap();
    let ran_log = ran.path().join("ran.log");
    let config = Config::parse(
        std::path::Path::new("cluster.toml"),
        "[[sources]]\nid = \"github\"\nkind = \"github\"\napi_url = \"http://127.0.0.1:9\"\ntoken = \"t\"\nwebhook_secret = \"It's a Secret to Everybody\"\n",
        &|_| None,
    )
    .unwrap();
    let pipeline = format!(
        "name: build\nreport_status: false\ntriggers:\n  - type: push\nsteps:\n  - name: mark\n    type: run_command\n    config:\n      command: echo {{{{ run_id }}}} $PWD >> {}\n",
        ran_log.display()
    );
    let runs = Arc::new(PgRuns::new(connect(&pg).await.unwrap()));
    // A node that claimed a run and died: its lease runs out in half a second.
    runs.create(ghost_run()).await.unwrap();
    let claimed = runs
        .claim("dead-node", now_ms(), now_ms() + 500)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(claimed.id, "00000000-ghost");
    let mut nodes = Vec::new();
    for n in 0..3 {
        let data = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(data.path().join("pipelines")).unwrap();
        std::fs::write(data.path().join("pipelines/build.yml"), &pipeline).unwrap();
        std::fs::write(
            data.path().join("pipelines/slow.yml"),
            "name: slow\nsteps:\n  - name: wait\n    type: run_command\n    config:\n      command: sleep 300\n",
        )
        .unwrap();
        let store = Arc::new(SledStore::open(&data.path().join("data")).unwrap());
        let registry = Registry::load(
            &data.path().join("pipelines"),
            StepTypes::new(["run_command"]),
            None,
            store,
        )
        .await
        .unwrap();
        let deliveries: Arc<dyn Deliveries> = Arc::new(PgDeliveries::new(connect(&pg).await.unwrap()));
        let node_runs: Arc<dyn RunStore> = Arc::new(PgRuns::new(connect(&pg).await.unwrap()));
        let intake =
            Arc::new(Intake::new(&config.sources, registry.active(), deliveries.clone()).with_runs(node_runs.clone()));
        let scheduler = Scheduler::new(
            node_runs,
            catalog.clone(),
            registry.active(),
            config.sources.clone(),
            BTreeMap::new(),
            SchedulerConfig {
                max_concurrent_runs: 2,
                workspaces: data.path().join("workspaces"),
                keep_failed_workspaces: false,
                public_url: "http://127.0.0.1:9".into(),
                node: format!("node-{n}"),
                lease: Duration::from_secs(2),
                shared: true,
            },
        );
        scheduler.start().await.unwrap();
        tokio::spawn(feed_deliveries(deliveries, scheduler, intake.stored()));
        nodes.push(Node { intake, _data: data });
    }

    let body = std::fs::read(format!("{FIXTURE}.json")).unwrap();
    let fixture: BTreeMap<String, String> =
        serde_json::from_slice(&std::fs::read(format!("{FIXTURE}.headers.json")).unwrap()).unwrap();
    let mut sends = Vec::new();
    for i in 0..DELIVERIES {
        let mut headers = axum::http::HeaderMap::new();
        for (k, v) in &fixture {
            headers.insert(
                axum::http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        headers.insert("x-github-delivery", format!("delivery-{i}").parse().unwrap());
        // The same delivery to two different nodes, at once.
        for node in [&nodes[i % 3], &nodes[(i + 1) % 3]] {
            let (intake, headers, body) = (node.intake.clone(), headers.clone(), body.clone());
            sends.push(tokio::spawn(async move {
                intake.receive("github", &headers, &body).await.unwrap()
            }));
        }
    }
    let mut answers: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for send in sends {
        let reply = send.await.unwrap();
        assert_eq!(reply.status, 202, "{}", reply.body);
        let delivery = reply.body["delivery"].as_str().unwrap().to_owned();
        let run = reply.body["runs"][0]["id"].as_str().unwrap().to_owned();
        answers.entry(delivery).or_default().push(run);
    }
    assert_eq!(answers.len(), DELIVERIES);
    for (delivery, ids) in &answers {
        assert_eq!(ids[0], ids[1], "both nodes answered {delivery} with the same run");
    }

    // Every run ends, on whichever node took it.
    let deadline = Instant::now() + Duration::from_secs(300);
    let all = loop {
        let mut all = Vec::new();
        let mut before: Option<String> = None;
        loop {
            let page = runs.list(&RunFilter::default(), before.as_deref(), 100).await.unwrap();
            all.extend(page.runs);
            match page.next {
                Some(next) => before = Some(next),
                None => break,
            }
        }
        if all.len() == DELIVERIES + 1 && all.iter().all(|r| r.state.is_final()) {
            break all;
        }
        assert!(
            Instant::now() < deadline,
            "{} runs, {} ended",
            all.len(),
            all.iter().filter(|r| r.state.is_final()).count()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(all.iter().all(|r| r.state == RunState::Success), "{all:?}");
    let ghost = all.iter().find(|r| r.id == "00000000-ghost").unwrap();
    assert_eq!(ghost.attempt, 2, "the dead node's run ran again as a new attempt");
    assert!(all.iter().filter(|r| r.id != ghost.id).all(|r| r.attempt == 1));
    let log = std::fs::read_to_string(&ran_log).unwrap();
    let mut executed: Vec<&str> = log.lines().filter_map(|l| l.split(' ').next()).collect();
    executed.sort();
    // Each line names the workspace, under its node's data directory.
    let nodes_used: std::collections::BTreeSet<&str> = log
        .lines()
        .filter_map(|l| l.split(' ').nth(1)?.split("/data/workspaces/").next())
        .collect();
    assert!(
        nodes_used.len() > 1,
        "the runs were spread over the nodes: {nodes_used:?}"
    );
    let mut expected: Vec<&str> = answers.values().map(|ids| ids[0].as_str()).collect();
    expected.push("00000000-ghost");
    expected.sort();
    assert_eq!(executed, expected, "each run executed exactly once");

    // A cancel recorded through the store (as any node's API does) stops the run on the node
    // that runs it.
    let slow = NewRun {
        id: "zzzzzzzz-slow".into(),
        pipeline: "slow".into(),
        ..ghost_run()
    };
    runs.create(slow).await.unwrap();
    let started = wait(&*runs, "zzzzzzzz-slow", |r| {
        r.steps.first().is_some_and(|s| s.state == RunState::Running)
    })
    .await;
    let node = started.lease.unwrap().node;
    runs.cancel("zzzzzzzz-slow", now_ms()).await.unwrap();
    let ended = wait(&*runs, "zzzzzzzz-slow", |r| r.state.is_final()).await;
    assert_eq!(ended.state, RunState::Cancelled, "on {node}: {ended:?}");
}

fn ghost_run() -> NewRun {
    NewRun {
        id: "00000000-ghost".into(),
        pipeline: "build".into(),
        source: None,
        trigger: Default::default(),
        queued_at_ms: 1,
        group: None,
        needs_approval: false,
    }
}

/// Polls run `id` until `done` holds; fails after a minute (`sleep 300` is far longer).
async fn wait(runs: &dyn RunStore, id: &str, done: impl Fn(&RunRecord) -> bool) -> RunRecord {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let run = runs.get(id).await.unwrap().unwrap();
        if done(&run) {
            return run;
        }
        assert!(Instant::now() < deadline, "{run:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
