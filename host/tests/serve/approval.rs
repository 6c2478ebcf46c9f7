//! `approval: forks`: a pull request from a fork waits, with a `pending` status saying how to
//! approve it, while one from the repository itself runs at once; only the API token approves
//! it, and then it runs.

use reqwest::Method;

use super::runs::{api, ended, status_api, wait_for};
use super::*;

const GATED: &str = "name: gated\napproval: forks\ntriggers:\n  - type: pull_request\n    events: [opened]\nsteps:\n  - name: build\n    type: run_command\n    config:\n      command: echo built {{ head_sha }}\n";

/// GitHub's `pull_request.opened` fixture as pull request `number`, its head in another
/// repository when `fork`, signed for the server.
fn opened(number: u64, fork: bool, delivery: &str) -> (Vec<u8>, BTreeMap<String, String>) {
    let (body, headers) = fixture("github", "pull_request.opened");
    let mut event: Value = serde_json::from_slice(&body).unwrap();
    event["number"] = number.into();
    event["pull_request"]["number"] = number.into();
    if fork {
        let head = &mut event["pull_request"]["head"]["repo"];
        head["id"] = 999_999.into();
        head["full_name"] = "stranger/Hello-World".into();
    }
    let body = serde_json::to_vec(&event).unwrap();
    let mut headers = with_delivery(&headers, delivery);
    headers.retain(|k, _| k != "X-Hub-Signature");
    headers.insert(
        "X-Hub-Signature-256".into(),
        format!("sha256={}", hex_hmac_sha256(SECRET.as_bytes(), &body)),
    );
    (body, headers)
}

/// The `powernode/gated` statuses the fake forge got, as `(state, description)`.
fn gated(seen: &Mutex<Vec<Value>>) -> Vec<(String, String)> {
    seen.lock()
        .unwrap()
        .iter()
        .filter(|s| s["context"] == "powernode/gated")
        .map(|s| {
            (
                s["state"].as_str().unwrap().into(),
                s["description"].as_str().unwrap().into(),
            )
        })
        .collect()
}

/// Sends [`opened`] to the server and returns the id of the `gated` run it started.
async fn gated_run(server: &Server, number: u64, fork: bool, delivery: &str) -> String {
    let (body, headers) = opened(number, fork, delivery);
    let (status, answer) = post(&format!("{}/webhooks/forge", server.url), &body, &headers).await;
    assert_eq!(status, 202, "{answer}");
    answer["runs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["pipeline"] == "gated")
        .map(|r| r["id"].as_str().unwrap().to_owned())
        .expect("the pull request started a `gated` run")
}

async fn approve(server: &Server, id: &str, token: &str) -> (u16, Value) {
    let resp = client()
        .post(format!("{}/api/runs/{id}/approve", server.url))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    (resp.status().as_u16(), resp.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn a_fork_pull_request_waits_for_approval_and_runs_after_it() {
    let dir = tempfile::tempdir().unwrap();
    let (url, seen) = status_api().await;
    std::fs::create_dir_all(dir.path().join("pipelines")).unwrap();
    std::fs::write(dir.path().join("pipelines/gated.yml"), GATED).unwrap();
    let server = super::runs::start(dir.path(), &url, "'true'");
    let fork = gated_run(&server, 2, true, "fork-pr-1").await;
    let own = gated_run(&server, 3, false, "own-pr-1").await;

    // The repository's own pull request runs at once; the fork's still waits after it ended.
    let own_run = wait_for(&server, &own, "ended", ended).await;
    assert_eq!(own_run["state"], "success", "{own_run}");
    let (_, waiting) = api(&server, Method::GET, &format!("/runs/{fork}"), None).await;
    assert_eq!(waiting["state"], "waiting_approval", "{waiting}");
    assert_eq!(waiting["steps"], serde_json::json!([]), "{waiting}");
    let (_, listed) = api(&server, Method::GET, "/runs?status=waiting_approval", None).await;
    assert_eq!(listed["runs"].as_array().unwrap().len(), 1, "{listed}");
    assert_eq!(listed["runs"][0]["id"], fork.as_str());
    until(
        Duration::from_secs(30),
        || format!("{:?}", gated(&seen)),
        || gated(&seen).iter().any(|(_, d)| d.contains("waiting for approval")),
    )
    .await;
    let first = seen
        .lock()
        .unwrap()
        .iter()
        .find(|s| s["context"] == "powernode/gated")
        .cloned()
        .unwrap();
    assert_eq!(first["state"], "pending", "{first}");
    assert_eq!(
        first["description"],
        format!("waiting for approval: POST /api/runs/{fork}/approve")
    );
    assert!(
        first["target_url"]
            .as_str()
            .unwrap()
            .ends_with(&format!("/runs/{fork}")),
        "{first}"
    );

    // Only the API token approves.
    for token in ["", "wrong-token"] {
        let (status, answer) = approve(&server, &fork, token).await;
        assert_eq!(status, 401, "{answer}");
    }
    let (_, still) = api(&server, Method::GET, &format!("/runs/{fork}"), None).await;
    assert_eq!(still["state"], "waiting_approval", "{still}");
    let (status, answer) = approve(&server, &fork, API_TOKEN).await;
    assert_eq!((status, answer["state"].as_str()), (200, Some("queued")), "{answer}");
    let done = wait_for(&server, &fork, "ended", ended).await;
    assert_eq!(done["state"], "success", "{done}");
    assert!(done["approved_at_ms"].as_u64().is_some(), "{done}");
    assert_eq!(
        done["steps"][0]["raw_output"],
        "built ec26c3e57ca3a959ca5aad62de7213c562f8c821\n"
    );
    let (status, answer) = approve(&server, &fork, API_TOKEN).await;
    assert_eq!(status, 409, "{answer}");
    assert!(
        answer["error"]
            .as_str()
            .unwrap()
            .contains("not waiting for approval (it is success)"),
        "{answer}"
    );
    let (status, _) = approve(&server, "no-such-run", API_TOKEN).await;
    assert_eq!(status, 404);

    // Pending while waiting, pending when queued and started, then success.
    until(
        Duration::from_secs(30),
        || format!("{:?}", gated(&seen)),
        || gated(&seen).iter().filter(|(s, _)| s == "success").count() == 2,
    )
    .await;
    let fork_states: Vec<String> = seen
        .lock()
        .unwrap()
        .iter()
        .filter(|s| s["context"] == "powernode/gated" && s["target_url"].as_str().unwrap().ends_with(&fork))
        .map(|s| s["state"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(fork_states, ["pending", "pending", "pending", "success"]);
    server.stop();
}

#[tokio::test]
async fn a_waiting_run_can_be_cancelled_and_is_then_never_run() {
    let dir = tempfile::tempdir().unwrap();
    let (url, _seen) = status_api().await;
    std::fs::create_dir_all(dir.path().join("pipelines")).unwrap();
    std::fs::write(dir.path().join("pipelines/gated.yml"), GATED.replace("forks", "always")).unwrap();
    let server = super::runs::start(dir.path(), &url, "'true'");
    // `always` holds even the repository's own pull request.
    let id = gated_run(&server, 3, false, "own-pr-2").await;
    wait_for(&server, &id, "held", |r| r["state"] == "waiting_approval").await;
    let (status, answer) = api(&server, Method::POST, &format!("/runs/{id}/cancel"), None).await;
    assert_eq!((status, answer["state"].as_str()), (200, Some("cancelled")), "{answer}");
    let (status, answer) = approve(&server, &id, API_TOKEN).await;
    assert_eq!(status, 409, "{answer}");

    // The dashboard's run page has an Approve button for a held run; it needs the session's
    // CSRF token.
    let held = gated_run(&server, 3, false, "own-pr-3").await;
    wait_for(&server, &held, "held", |r| r["state"] == "waiting_approval").await;
    let browser = no_redirects();
    let (cookie, _) = sign_in(&browser, &server, API_TOKEN).await;
    let page = page_as(&browser, &server, &format!("/runs/{held}"), &cookie).await;
    assert!(page.contains("id=\"approve\""), "{page}");
    let csrf = csrf_of(&page);
    let approve_url = format!("{}/runs/{held}/approve", server.url);
    for (token, status) in [("guessed", 403), (csrf.as_str(), 303)] {
        let answer = browser
            .post(&approve_url)
            .header("cookie", &cookie)
            .form(&[("csrf", token)])
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), status, "csrf {token}");
    }
    let done = wait_for(&server, &held, "ended", ended).await;
    assert_eq!(done["state"], "success", "{done}");

    // A run started through the API is never held: its starter holds the token.
    let event = r#"{"event": "pull_request", "head_sha": "0123abc"}"#;
    let (status, answer) = api(&server, Method::POST, "/pipelines/gated/runs", Some(event)).await;
    assert_eq!(status, 201, "{answer}");
    let manual = wait_for(&server, answer["id"].as_str().unwrap(), "ended", ended).await;
    assert_eq!(manual["state"], "success", "{manual}");
    server.stop();
}
