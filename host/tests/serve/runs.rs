//! Runs executing in the real server: a signed push runs its pipeline to the end, with
//! commit statuses on a fake GitHub on loopback; a failing step, a manual run, a cancel, a
//! SIGKILL mid-run and bad input to the runs API.

use std::time::Instant;

use reqwest::Method;

use super::*;

const BUILD: &str = "name: build\ntriggers:\n  - type: push\n    branches: [main]\nsteps:\n  - name: compile\n    type: run_command\n    config:\n      command: echo compiled {{ head_sha }}\n  - name: check\n    type: run_command\n    config:\n      command: __CHECK__\n";

/// A GitHub API on loopback that takes commit statuses as GitHub does (201 with the
/// status) and records each as `(sha, state, context, target_url)`.
pub(super) async fn status_api() -> (String, Arc<Mutex<Vec<Value>>>) {
    use axum::extract::Path as UrlPath;
    let seen: Arc<Mutex<Vec<Value>>> = Arc::default();
    let record = seen.clone();
    let statuses = move |UrlPath((owner, repo, sha)): UrlPath<(String, String, String)>,
                         axum::Json(body): axum::Json<Value>| {
        let record = record.clone();
        async move {
            let mut entry = body.clone();
            entry["sha"] = Value::String(sha);
            entry["repo"] = Value::String(format!("{owner}/{repo}"));
            record.lock().unwrap().push(entry);
            (axum::http::StatusCode::CREATED, axum::Json(body))
        }
    };
    let app = axum::Router::new().route("/repos/{owner}/{repo}/statuses/{sha}", axum::routing::post(statuses));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, seen)
}

/// A server whose `forge` source is the fake GitHub at `api`, with `build` checking `check`.
pub(super) fn start(dir: &Path, api: &str, check: &str) -> Server {
    start_with(dir, api, check, "")
}

/// [`start`] with top-level config keys `top` (TOML) added.
fn start_with(dir: &Path, api: &str, check: &str, top: &str) -> Server {
    std::fs::create_dir_all(dir.join("pipelines")).unwrap();
    std::fs::write(dir.join("pipelines/build.yml"), BUILD.replace("__CHECK__", check)).unwrap();
    let source = format!(
        "{top}\n[[sources]]\nid = \"forge\"\nkind = \"github\"\napi_url = \"{api}\"\ntoken = \"t0ken-for-the-fake\"\nwebhook_secret = \"{SECRET}\"\nbot_login = \"powernode-bot\"\n"
    );
    Server::start_with_sources(dir, &source)
}

pub(super) async fn api(server: &Server, method: Method, path: &str, body: Option<&str>) -> (u16, Value) {
    let (status, text) = api_text(server, method, path, body).await;
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// Sends the push fixture (to `main` of woodpecker-ci/woodpecker) and returns the run's id.
async fn push(server: &Server, delivery: &str) -> String {
    let (body, headers) = fixture("github", "push");
    let hook = format!("{}/webhooks/forge", server.url);
    let (status, answer) = post(&hook, &body, &with_delivery(&headers, delivery)).await;
    assert_eq!(status, 202, "{answer}");
    answer["runs"][0]["id"]
        .as_str()
        .expect("the push started a run")
        .to_owned()
}

/// Polls the run until `done` says so, failing with the last answer after a minute.
pub(super) async fn wait_for(server: &Server, id: &str, what: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (status, run) = api(server, Method::GET, &format!("/runs/{id}"), None).await;
        if status == 200 && done(&run) {
            return run;
        }
        assert!(Instant::now() < deadline, "run {id} never {what}: {status} {run}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub(super) fn ended(run: &Value) -> bool {
    !matches!(run["state"].as_str(), Some("waiting_approval" | "queued" | "running"))
}

async fn logs(server: &Server, id: &str) -> String {
    let resp = reqwest::Client::new()
        .get(format!("{}/api/runs/{id}/logs", server.url))
        .bearer_auth(API_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    resp.text().await.unwrap()
}

fn states(seen: &Mutex<Vec<Value>>) -> Vec<String> {
    seen.lock()
        .unwrap()
        .iter()
        .map(|s| s["state"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn a_push_runs_its_pipeline_and_reports_statuses_on_the_forge() {
    let dir = tempfile::tempdir().unwrap();
    let (url, seen) = status_api().await;
    let server = start(dir.path(), &url, "echo checked");
    let id = push(&server, "run-push-1").await;
    let run = wait_for(&server, &id, "ended", ended).await;
    assert_eq!(run["state"], "success", "{run}");
    assert_eq!(run["attempt"], 1);
    assert_eq!(run["pipeline"], "build");
    assert_eq!(run["trigger"]["repository"]["full_name"], "woodpecker-ci/woodpecker");
    let steps = run["steps"].as_array().unwrap();
    assert_eq!(steps.len(), 2, "{run}");
    assert!(steps.iter().all(|s| s["state"] == "success"), "{run}");
    assert_eq!(
        steps[0]["raw_output"],
        "compiled 366701fde727cb7a9e7f21eb88264f59f6f9b89c\n"
    );
    let log = logs(&server, &id).await;
    assert!(log.contains("[check] checked") || log.contains("checked"), "{log}");
    // The end status is set before the run is recorded as ended... or just after: wait for it.
    let deadline = Instant::now() + Duration::from_secs(30);
    while states(&seen).last().map(String::as_str) != Some("success") {
        assert!(Instant::now() < deadline, "statuses: {:?}", seen.lock().unwrap());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // GitHub has no `running`: queued and started are both `pending`.
    assert_eq!(states(&seen), ["pending", "pending", "success"]);
    let last = seen.lock().unwrap().last().unwrap().clone();
    assert_eq!(last["context"], "powernode/build");
    assert_eq!(last["sha"], "366701fde727cb7a9e7f21eb88264f59f6f9b89c");
    assert_eq!(last["repo"], "woodpecker-ci/woodpecker");
    assert!(
        last["target_url"].as_str().unwrap().ends_with(&format!("/runs/{id}")),
        "{last}"
    );
    server.stop();
}

#[tokio::test]
async fn a_failing_step_fails_the_run_and_its_status() {
    let dir = tempfile::tempdir().unwrap();
    let (url, seen) = status_api().await;
    let server = start(dir.path(), &url, "echo broken >&2; exit 3");
    let id = push(&server, "run-fail-1").await;
    let run = wait_for(&server, &id, "ended", ended).await;
    assert_eq!(run["state"], "failure", "{run}");
    assert!(run["error"].as_str().unwrap().contains("step `check` failed"), "{run}");
    assert_eq!(run["steps"][1]["state"], "failure");
    let deadline = Instant::now() + Duration::from_secs(30);
    while states(&seen).last().map(String::as_str) != Some("failure") {
        assert!(Instant::now() < deadline, "statuses: {:?}", seen.lock().unwrap());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    server.stop();
}

#[tokio::test]
async fn a_manual_run_through_the_api_runs_and_is_listed() {
    let dir = tempfile::tempdir().unwrap();
    let (url, _seen) = status_api().await;
    let server = start(dir.path(), &url, "echo manual");
    let (status, created) = api(
        &server,
        Method::POST,
        "/pipelines/build/runs",
        Some(r#"{"event": "manual", "head_sha": "abc123"}"#),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().unwrap();
    let run = wait_for(&server, id, "ended", ended).await;
    assert_eq!(run["state"], "success", "{run}");
    assert_eq!(run["steps"][0]["raw_output"], "compiled abc123\n");
    let (status, list) = api(&server, Method::GET, "/runs?pipeline=build&status=success", None).await;
    assert_eq!(status, 200, "{list}");
    assert_eq!(list["runs"][0]["id"], id);
    let (status, again) = api(&server, Method::POST, &format!("/runs/{id}/rerun"), None).await;
    assert_eq!(status, 201, "{again}");
    assert_eq!(again["rerun_of"], id);
    let rerun = wait_for(&server, again["id"].as_str().unwrap(), "ended", ended).await;
    assert_eq!(rerun["state"], "success", "{rerun}");
    assert_eq!(rerun["trigger"], run["trigger"], "the same trigger");
    server.stop();
}

#[tokio::test]
async fn a_running_run_is_cancelled_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let (url, seen) = status_api().await;
    let server = start(dir.path(), &url, "sleep 300");
    let id = push(&server, "run-cancel-1").await;
    wait_for(&server, &id, "reached its second step", |r| {
        r["steps"][1]["state"] == "running"
    })
    .await;
    let (status, answer) = api(&server, Method::POST, &format!("/runs/{id}/cancel"), None).await;
    assert_eq!(status, 202, "{answer}");
    let run = wait_for(&server, &id, "ended", ended).await;
    assert_eq!(run["state"], "cancelled", "{run}");
    let (status, answer) = api(&server, Method::POST, &format!("/runs/{id}/cancel"), None).await;
    assert_eq!(status, 409, "{answer}");
    let deadline = Instant::now() + Duration::from_secs(30);
    while states(&seen).last().map(String::as_str) != Some("error") {
        assert!(Instant::now() < deadline, "statuses: {:?}", seen.lock().unwrap());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    server.stop();
}

#[tokio::test]
async fn a_run_interrupted_by_sigkill_runs_again_as_attempt_two() {
    let dir = tempfile::tempdir().unwrap();
    let (url, _seen) = status_api().await;
    let marker = dir.path().join("attempts");
    let check = format!("echo x >> {}; sleep 3", marker.display());
    // The step counts its attempts in a file outside its workspace: only an unconfined
    // command can (the restart is what is tested here, not the sandbox).
    let unconfined = "process_sandbox = \"off\"";
    let server = start_with(dir.path(), &url, &check, unconfined);
    let id = push(&server, "run-kill-1").await;
    wait_for(&server, &id, "reached its second step", |r| {
        r["steps"][1]["state"] == "running"
    })
    .await;
    server.kill();
    let server = start_with(dir.path(), &url, &check, unconfined);
    let run = wait_for(&server, &id, "ended", ended).await;
    assert_eq!(run["state"], "success", "{run}");
    assert_eq!(run["attempt"], 2, "{run}");
    let past = &run["previous_attempts"][0];
    assert_eq!(past["attempt"], 1);
    assert_eq!(past["error"], "interrupted by a restart");
    assert_eq!(
        std::fs::read_to_string(&marker).unwrap(),
        "x\nx\n",
        "the step ran once per attempt"
    );
    server.stop();
}

#[tokio::test]
async fn bad_requests_to_the_runs_api_are_json_errors() {
    let dir = tempfile::tempdir().unwrap();
    let (url, _seen) = status_api().await;
    let server = start(dir.path(), &url, "'true'");
    for (method, path, body, status, says) in [
        (Method::GET, "/runs/nope", None, 404, "no run `nope`"),
        (Method::POST, "/runs/nope/cancel", None, 404, "no run `nope`"),
        (Method::POST, "/runs/nope/rerun", None, 404, "no run `nope`"),
        (Method::GET, "/runs/nope/logs", None, 404, "no run `nope`"),
        (
            Method::GET,
            "/runs?limit=0",
            None,
            400,
            "`limit` must be a number from 1 to 100",
        ),
        (
            Method::GET,
            "/runs?limit=1000",
            None,
            400,
            "`limit` must be a number from 1 to 100",
        ),
        (Method::GET, "/runs?status=done", None, 400, "unknown `status` `done`"),
        (Method::POST, "/pipelines/nope/runs", None, 404, "no pipeline `nope`"),
        (
            Method::POST,
            "/pipelines/build/runs",
            Some(r#"{"numbr": 1}"#),
            400,
            "unknown field `numbr`",
        ),
        (
            Method::POST,
            "/pipelines/build/runs?source=elsewhere",
            None,
            400,
            "no [[sources]] entry `elsewhere`",
        ),
    ] {
        let (got, answer) = api(&server, method.clone(), path, body).await;
        assert_eq!(got, status, "{method} {path}: {answer}");
        assert!(
            answer["error"].as_str().unwrap().contains(says),
            "{method} {path}: {answer}"
        );
    }
    let (_, list) = api(&server, Method::GET, "/runs", None).await;
    assert_eq!(list["runs"], serde_json::json!([]), "bad requests started nothing");
    server.stop();
}

#[tokio::test]
async fn no_secret_reaches_the_data_directory_the_log_or_the_api() {
    use base64::Engine;
    let dir = tempfile::tempdir().unwrap();
    let (url, _seen) = status_api().await;
    let token = "tok-3f9a7c1e5b";
    let key = "-----BEGIN TEST KEY-----\nMIIEvQIBADANBgkqhkiG9w0\nAQEFAASCBKcwggSjAgEAAo\n-----END TEST KEY-----";
    // Printed as is, line by line, in base64, and split by colour codes: each form must come
    // out masked.
    let check = "echo \"$${TOKEN}\"; echo \"$${KEY}\"; printf %s \"$${TOKEN}\" | base64; echo ${TOKEN} >&2; \
                 printf \"\\033[1m%.5s\\033[31m%s\\033[0m colour\\n\" \"$${TOKEN}\" \"$${TOKEN#?????}\"; exit 1";
    std::fs::create_dir_all(dir.path().join("pipelines")).unwrap();
    let pipeline = format!(
        "name: build\ntriggers:\n  - type: push\nsteps:\n  - name: leak\n    type: run_command\n    config:\n      command: '{check}'\n      env:\n        TOKEN: ${{TOKEN}}\n        KEY: ${{KEY}}\n"
    );
    std::fs::write(dir.path().join("pipelines/build.yml"), pipeline).unwrap();
    let sources = format!(
        "\n[secrets]\nTOKEN = \"{token}\"\nKEY = \"\"\"{key}\"\"\"\n\n[[sources]]\nid = \"forge\"\nkind = \"github\"\napi_url = \"{url}\"\ntoken = \"t0ken-for-the-fake\"\nwebhook_secret = \"{SECRET}\"\nbot_login = \"powernode-bot\"\n"
    );
    let server = Server::start_with_sources(dir.path(), &sources);
    let id = push(&server, "run-secrets-1").await;
    let run = wait_for(&server, &id, "ended", ended).await;
    assert_eq!(run["state"], "failure", "{run}");
    let log = logs(&server, &id).await;
    assert!(log.contains("***"), "the secrets were printed and masked: {log}");
    assert!(
        log.contains("\u{1b}[1m***\u{1b}[31m\u{1b}[0m colour"),
        "the colours stay, the secret between them is masked: {log:?}"
    );
    let (_, list) = api(&server, Method::GET, "/runs", None).await;
    server.stop();
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    let mut forbidden: Vec<String> = vec![token.into(), b64(token), "t0ken-for-the-fake".into()];
    forbidden.extend(key.lines().filter(|l| !l.starts_with("-----")).map(String::from));
    let mut haystacks = vec![
        ("the run".to_string(), run.to_string()),
        ("the run list".to_string(), list.to_string()),
        (
            "the run log without its colours".to_string(),
            log.replace("\u{1b}[1m", "").replace("\u{1b}[31m", ""),
        ),
        ("the run log".to_string(), log),
        (
            "the server log".to_string(),
            std::fs::read_to_string(dir.path().join("stderr.log")).unwrap(),
        ),
    ];
    let mut files = vec![dir.path().join("data")];
    while let Some(path) = files.pop() {
        if path.is_dir() {
            files.extend(std::fs::read_dir(&path).unwrap().map(|e| e.unwrap().path()));
        } else {
            let bytes = std::fs::read(&path).unwrap();
            haystacks.push((path.display().to_string(), String::from_utf8_lossy(&bytes).into_owned()));
        }
    }
    for (place, text) in &haystacks {
        for secret in &forbidden {
            assert!(!text.contains(secret.as_str()), "`{secret}` found in {place}");
        }
    }
}

#[tokio::test]
async fn a_new_push_to_a_pull_request_cancels_its_earlier_run() {
    let dir = tempfile::tempdir().unwrap();
    let (url, seen) = status_api().await;
    std::fs::create_dir_all(dir.path().join("pipelines")).unwrap();
    std::fs::write(
        dir.path().join("pipelines/slow.yml"),
        "name: slow\nreport_status: false\ntriggers:\n  - type: pull_request\n    events: [opened, synchronize]\nsteps:\n  - name: wait\n    type: run_command\n    config:\n      command: sleep 300\n",
    )
    .unwrap();
    let server = start(dir.path(), &url, "'true'");
    let hook = format!("{}/webhooks/forge", server.url);
    let mut ids = Vec::new();
    for (fixture_name, delivery) in [
        ("pull_request.opened", "pr-opened-1"),
        ("pull_request.synchronize", "pr-sync-1"),
    ] {
        let (body, headers) = fixture("github", fixture_name);
        let (status, answer) = post(&hook, &body, &with_delivery(&headers, delivery)).await;
        assert_eq!(status, 202, "{answer}");
        let run = answer["runs"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["pipeline"] == "slow")
            .unwrap();
        ids.push(run["id"].as_str().unwrap().to_owned());
        if ids.len() == 1 {
            wait_for(&server, &ids[0], "started", |r| r["steps"][0]["state"] == "running").await;
        }
    }
    let first = wait_for(&server, &ids[0], "ended", ended).await;
    assert_eq!(first["state"], "cancelled", "{first}");
    assert_eq!(first["group"], "slow/Codertocat/Hello-World/pull/2");
    let second = wait_for(&server, &ids[1], "started", |r| r["steps"][0]["state"] == "running").await;
    assert_eq!(second["state"], "running", "{second}");
    let (status, _) = api(&server, Method::POST, &format!("/runs/{}/cancel", ids[1]), None).await;
    assert_eq!(status, 202);
    wait_for(&server, &ids[1], "ended", ended).await;
    let reported: Vec<Value> = seen
        .lock()
        .unwrap()
        .iter()
        .filter(|s| s["context"] == "powernode/slow")
        .cloned()
        .collect();
    assert_eq!(reported, Vec::<Value>::new(), "report_status: false sets no status");
    server.stop();
}

#[tokio::test]
async fn a_followed_log_streams_lines_while_the_run_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let (url, _seen) = status_api().await;
    let server = start(dir.path(), &url, "sleep 2; echo checked");
    let id = push(&server, "run-follow-1").await;
    // The inbox feeder queues the run a moment after the webhook's answer.
    wait_for(&server, &id, "queued", |_| true).await;
    let mut resp = reqwest::Client::new()
        .get(format!("{}/api/runs/{id}/logs?follow=true", server.url))
        .bearer_auth(API_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(resp.headers()["content-type"], "text/event-stream");
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut text = String::new();
    let mut state_when_first_line = None;
    while !text.contains("event: end") {
        let left = deadline.saturating_duration_since(Instant::now());
        let chunk = tokio::time::timeout(left, resp.chunk())
            .await
            .unwrap_or_else(|_| panic!("the stream never ended; got:\n{text}"))
            .unwrap()
            .expect("the stream ends only after the end event");
        text.push_str(&String::from_utf8_lossy(&chunk));
        if state_when_first_line.is_none() && text.contains("data: [compile] compiled") {
            let (_, run) = api(&server, Method::GET, &format!("/runs/{id}"), None).await;
            state_when_first_line = Some(run["state"].as_str().unwrap().to_owned());
        }
    }
    assert_eq!(
        state_when_first_line.as_deref(),
        Some("running"),
        "the first line came while the run went on:\n{text}"
    );
    let compiled = text.find("data: [compile] compiled").unwrap();
    let checked = text.find("data: [check] checked").expect("the second step's line");
    assert!(compiled < checked, "{text}");
    assert!(text.contains("event: end\ndata: success"), "{text}");
    server.stop();
}

#[tokio::test]
async fn metrics_count_deliveries_runs_and_steps() {
    let dir = tempfile::tempdir().unwrap();
    let (url, _seen) = status_api().await;
    let server = start(dir.path(), &url, "echo ok");
    let id = push(&server, "run-metrics-1").await;
    wait_for(&server, &id, "ended", ended).await;
    let (body, headers) = fixture("github", "push");
    let (status, _) = post(
        &format!("{}/webhooks/made-up-{}", server.url, "x".repeat(50)),
        &body,
        &headers,
    )
    .await;
    assert_eq!(status, 404);
    let resp = reqwest::get(format!("{}/metrics", server.url)).await.unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let text = resp.text().await.unwrap();
    for line in [
        r#"powernode_webhook_deliveries_total{source="forge",outcome="accepted"} 1"#,
        r#"powernode_webhook_deliveries_total{source="unknown",outcome="404"} 1"#,
        r#"powernode_runs_finished_total{state="success"} 1"#,
        r#"powernode_step_duration_seconds_count{step_type="run_command",outcome="success"} 2"#,
        "powernode_runs_queued 0",
        "powernode_runs_running 0",
    ] {
        assert!(text.lines().any(|l| l == line), "no `{line}` in:\n{text}");
    }
    assert!(
        text.contains("powernode_plugin_load_seconds_count{plugin=\"run_command\""),
        "{text}"
    );
    assert!(
        text.lines()
            .any(|l| l == r#"powernode_plugin_instantiate_seconds_count{plugin="run_command"} 2"#),
        "{text}"
    );
    assert!(!text.contains("made-up"), "a sender's path never becomes a label");
    server.stop();
}

#[tokio::test]
async fn a_forge_that_never_answers_delays_statuses_not_runs() {
    let hung = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", hung.local_addr().unwrap());
    // Takes connections and never answers them.
    let held = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((socket, _)) = hung.accept().await {
            open.push(socket);
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), &url, "echo ok");
    let id = push(&server, "run-hung-forge-1").await;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (_, run) = api(&server, Method::GET, &format!("/runs/{id}"), None).await;
        if run["state"] == "success" {
            break;
        }
        assert!(Instant::now() < deadline, "the run waited for the forge: {run}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    server.stop();
    held.abort();
}
