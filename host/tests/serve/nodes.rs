//! Three `powernode serve` processes on one PostgreSQL database (a real throwaway cluster):
//! every delivery, sent to two nodes at once, is stored once and run once; a node killed
//! with SIGKILL mid-run loses nothing (another node takes its runs after their lease); a
//! database restart under load loses no acknowledged delivery; an artifact one node stored
//! (in a real S3-compatible server) is downloaded from every node.

use std::collections::BTreeMap;

use reqwest::Method;

use super::runs::{api, ended};
use super::*;
use powernode::store::pg::throwaway::Cluster;
use powernode::store::throwaway_s3::S3Server;

/// Deliveries in the first phase; `NODES_TEST_DELIVERIES` changes it.
fn deliveries() -> usize {
    std::env::var("NODES_TEST_DELIVERIES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(3000)
}

/// Each execution of a step appends `<run id> <node>` to `marker`: only an unconfined command
/// can write there (what is tested here is the queue, not the sandbox).
fn node_config(url: &str, artifacts: &str, node: usize) -> String {
    format!(
        "process_sandbox = \"off\"\nmax_concurrent_runs = 4\n\n[secrets]\nNODE = \"node{node}\"\n\n\
         [store]\nkind = \"postgres\"\nurl = \"{url}\"\npool_size = 8\nlease_secs = 2\n\n{artifacts}"
    )
}

fn pipelines(dir: &Path, marker: &Path) {
    std::fs::create_dir_all(dir.join("pipelines")).unwrap();
    let step = |name: &str, trigger: &str, sleep: &str| {
        format!(
            "name: {name}\nreport_status: false\n{trigger}steps:\n  - name: mark\n    type: run_command\n    config:\n      command: echo {{{{ run_id }}}} ${{NODE}} >> {}{sleep}\n",
            marker.display()
        )
    };
    std::fs::write(
        dir.join("pipelines/build.yml"),
        step("build", "triggers:\n  - type: push\n", ""),
    )
    .unwrap();
    std::fs::write(
        dir.join("pipelines/slow.yml"),
        step("slow", "", "; echo napping; sleep 3"),
    )
    .unwrap();
    std::fs::write(
        dir.join("pipelines/package.yml"),
        "name: package\nreport_status: false\nsteps:\n  - name: build\n    type: run_command\n    config:\n      \
         command: mkdir -p dist && echo {{ run_id }} built on ${NODE} > dist/app.bin\n  - name: keep\n    \
         type: upload_artifact\n    config:\n      path: dist/app.bin\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("pipelines/long.yml"),
        step("long", "", "; echo napping; sleep 120"),
    )
    .unwrap();
}

/// How many times each run id was executed, and on which nodes.
fn executions(marker: &Path) -> BTreeMap<String, Vec<String>> {
    let mut seen: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for line in std::fs::read_to_string(marker).unwrap_or_default().lines() {
        let (id, node) = line.split_once(' ').unwrap();
        seen.entry(id.to_owned()).or_default().push(node.to_owned());
    }
    seen
}

/// Waits for every run of `ids` to end, asking the nodes in turn; returns them by id.
async fn all_ended(nodes: &[&Server], ids: &[String], within: Duration) -> BTreeMap<String, Value> {
    let deadline = Instant::now() + within;
    let mut done = BTreeMap::new();
    for (i, id) in ids.iter().enumerate() {
        loop {
            let (status, run) = api(nodes[i % nodes.len()], Method::GET, &format!("/runs/{id}"), None).await;
            if status == 200 && ended(&run) {
                done.insert(id.clone(), run);
                break;
            }
            assert!(Instant::now() < deadline, "run {id} never ended: {status} {run}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    done
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_on_one_database_run_each_delivery_once_and_lose_nothing() {
    let mut cluster = Cluster::start().unwrap();
    let url = cluster.database("nodes").await.unwrap();
    let shared = tempfile::tempdir().unwrap();
    let marker = shared.path().join("ran");
    let s3 = S3Server::start().unwrap();
    s3.bucket("artifacts").unwrap();
    let mut servers = Vec::new();
    for n in 0..3 {
        let dir = shared.path().join(format!("node{n}"));
        pipelines(&dir, &marker);
        let config = node_config(&url, &s3.config("artifacts"), n);
        servers.push(Some(Server::start_with_sources(&dir, &config)));
    }
    let node = |servers: &[Option<Server>], n: usize| -> String { servers[n].as_ref().unwrap().url.clone() };

    // Every delivery to two nodes at once, round-robin; both answer with the same run.
    let (body, headers) = fixture("github", "push");
    let count = deliveries();
    let began = Instant::now();
    let mut sends = tokio::task::JoinSet::new();
    let limit = Arc::new(tokio::sync::Semaphore::new(32));
    for i in 0..count {
        for n in [i % 3, (i + 1) % 3] {
            let (hook, body) = (format!("{}/webhooks/github", node(&servers, n)), body.clone());
            let (headers, limit) = (with_delivery(&headers, &format!("nodes-{i}")), limit.clone());
            sends.spawn(async move {
                let _permit = limit.acquire_owned().await.unwrap();
                (i, post(&hook, &body, &headers).await)
            });
        }
    }
    let mut answers: BTreeMap<usize, Vec<String>> = BTreeMap::new();
    while let Some(sent) = sends.join_next().await {
        let (i, (status, answer)) = sent.unwrap();
        assert_eq!(status, 202, "{answer}");
        answers
            .entry(i)
            .or_default()
            .push(answer["runs"][0]["id"].as_str().unwrap().to_owned());
    }
    let accepted = began.elapsed();
    let mut ids = Vec::new();
    for (i, runs) in &answers {
        assert_eq!(runs.len(), 2);
        assert_eq!(runs[0], runs[1], "both nodes answered delivery {i} with the same run");
        ids.push(runs[0].clone());
    }
    let live: Vec<&Server> = servers.iter().flatten().collect();
    let runs = all_ended(&live, &ids, Duration::from_secs(900)).await;
    eprintln!(
        "{count} deliveries sent twice accepted in {accepted:?}; all {} runs ended after {:?}",
        runs.len(),
        began.elapsed()
    );
    let ran = executions(&marker);
    let mut per_node: BTreeMap<&str, usize> = BTreeMap::new();
    for (id, run) in &runs {
        assert_eq!(
            (run["state"].as_str(), run["attempt"].as_u64()),
            (Some("success"), Some(1)),
            "{run}"
        );
        let on = &ran[id];
        assert_eq!(on.len(), 1, "run {id} executed once: {on:?}");
        *per_node.entry(on[0].as_str()).or_default() += 1;
    }
    assert_eq!(ran.len(), count, "nothing else ran");
    assert_eq!(per_node.len(), 3, "every node ran some: {per_node:?}");

    // A run on one node: its log followed from another, cancelled from a third.
    let (status, long) = api(live[0], Method::POST, "/pipelines/long/runs", None).await;
    assert_eq!(status, 201, "{long}");
    let long = long["id"].as_str().unwrap().to_owned();
    let runner = loop {
        if let Some(on) = executions(&marker).get(&long) {
            break on[0].trim_start_matches("node").parse::<usize>().unwrap();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let (follower, canceller) = (live[(runner + 1) % 3], live[(runner + 2) % 3]);
    let mut followed = client()
        .get(format!("{}/api/runs/{long}/logs?follow=true", follower.url))
        .bearer_auth(API_TOKEN)
        .send()
        .await
        .unwrap();
    let mut text = String::new();
    while !text.contains("napping") {
        let chunk = tokio::time::timeout(Duration::from_secs(30), followed.chunk()).await;
        text.push_str(&String::from_utf8_lossy(
            &chunk.expect("a line within 30 s").unwrap().unwrap(),
        ));
    }
    let asked = Instant::now();
    let (status, answer) = api(canceller, Method::POST, &format!("/runs/{long}/cancel"), None).await;
    assert_eq!(status, 202, "{answer}");
    while !text.contains("event: end") {
        let chunk = tokio::time::timeout(Duration::from_secs(30), followed.chunk()).await;
        text.push_str(&String::from_utf8_lossy(
            &chunk.expect("the end within 30 s").unwrap().unwrap(),
        ));
    }
    let stopped = asked.elapsed();
    assert!(text.contains("data: cancelled"), "{text}");
    assert!(
        stopped < Duration::from_secs(5),
        "the cancel took {stopped:?} to reach node{runner}"
    );
    eprintln!("a cancel sent to another node stopped the run in {stopped:?}");

    // An artifact stored by whichever node ran the step is served by every node.
    let (status, package) = api(live[0], Method::POST, "/pipelines/package/runs", None).await;
    assert_eq!(status, 201, "{package}");
    let package = package["id"].as_str().unwrap().to_owned();
    let run = &all_ended(&live, std::slice::from_ref(&package), Duration::from_secs(60)).await[&package];
    assert_eq!(run["state"], "success", "{run}");
    for node in &live {
        let got = client()
            .get(format!("{}/api/runs/{package}/artifacts/dist/app.bin", node.url))
            .bearer_auth(API_TOKEN)
            .send()
            .await
            .unwrap();
        assert_eq!(got.status(), 200, "{}", node.url);
        let text = got.text().await.unwrap();
        assert!(
            text.starts_with(&format!("{package} built on node")),
            "{}: {text:?}",
            node.url
        );
    }

    // SIGKILL node 0 while it runs steps: its runs are taken over after their lease.
    let mut slow = Vec::new();
    for _ in 0..6 {
        let (status, run) = api(live[0], Method::POST, "/pipelines/slow/runs", None).await;
        assert_eq!(status, 201, "{run}");
        slow.push(run["id"].as_str().unwrap().to_owned());
    }
    until(
        Duration::from_secs(60),
        || "node0 running a slow run".into(),
        || {
            executions(&marker)
                .iter()
                .any(|(id, on)| slow.contains(id) && on == &["node0"])
        },
    )
    .await;
    let on_node0: Vec<String> = executions(&marker)
        .into_iter()
        .filter(|(id, on)| slow.contains(id) && on == &["node0"])
        .map(|(id, _)| id)
        .collect();
    drop(live);
    servers[0].take().unwrap().kill();
    let live: Vec<&Server> = servers.iter().flatten().collect();
    let runs = all_ended(&live, &slow, Duration::from_secs(120)).await;
    let ran = executions(&marker);
    for (id, run) in &runs {
        assert_eq!(run["state"], "success", "{run}");
        let attempts = run["attempt"].as_u64().unwrap() as usize;
        // An attempt the kill cut short may not have reached its step; the attempt that
        // ended ran it once, on a live node.
        let on = &ran[id];
        let live_runs = on.iter().filter(|n| *n != "node0").count();
        assert!(on.len() <= attempts && live_runs <= 1, "run {id}: {on:?} {run}");
        if on_node0.contains(id) {
            assert_eq!(attempts, 2, "a run of the killed node is run again: {run}");
            assert_eq!(live_runs, 1, "by a live node: {on:?}");
            assert_eq!(
                run["previous_attempts"][0]["error"], "interrupted by a restart",
                "{run}"
            );
        }
        if attempts == 2 {
            // Never twice at once: the second attempt starts after the first one's lease ran out.
            let ended = run["previous_attempts"][0]["ended_at_ms"].as_u64().unwrap();
            assert!(run["started_at_ms"].as_u64().unwrap() >= ended, "{run}");
        }
    }

    // Restart the database while deliveries arrive: each one answered 2xx is stored and
    // run; the others were refused with a 5xx (the forge sends them again).
    let mut sends = tokio::task::JoinSet::new();
    for i in 0..200 {
        let hook = format!("{}/webhooks/github", live[i % 2].url);
        let (headers, body) = (with_delivery(&headers, &format!("restart-{i}")), body.clone());
        sends.spawn(async move {
            tokio::time::sleep(Duration::from_millis(10 * i as u64)).await;
            (i, post(&hook, &body, &headers).await)
        });
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let restarted = tokio::task::spawn_blocking(move || {
        cluster.restart().unwrap();
        cluster
    });
    let _cluster = restarted.await.unwrap();
    let (mut acked, mut refused) = (Vec::new(), Vec::new());
    while let Some(sent) = sends.join_next().await {
        let (i, (status, answer)) = sent.unwrap();
        match status {
            202 => acked.push(answer["runs"][0]["id"].as_str().unwrap().to_owned()),
            500..=599 => refused.push(i),
            other => panic!("delivery restart-{i}: {other} {answer}"),
        }
    }
    eprintln!(
        "during the database restart: {} acknowledged, {} refused with a 5xx",
        acked.len(),
        refused.len()
    );
    // The forge sends the refused ones again: now they are taken.
    for i in refused {
        let hook = format!("{}/webhooks/github", live[i % 2].url);
        let (status, answer) = post(&hook, &body, &with_delivery(&headers, &format!("restart-{i}"))).await;
        assert_eq!(status, 202, "restart-{i} sent again: {answer}");
        acked.push(answer["runs"][0]["id"].as_str().unwrap().to_owned());
    }
    let runs = all_ended(&live, &acked, Duration::from_secs(300)).await;
    assert!(
        runs.values().all(|r| r["state"] == "success"),
        "every acknowledged delivery ran"
    );
}
