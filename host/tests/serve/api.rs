//! The pipelines API against the real server: its bearer token, pipelines added through it
//! starting runs (also after a restart), and bad pipelines refused with the reason.

use reqwest::Method;

use super::*;

const TRIAGE: &str = "name: triage\ntriggers:\n  - type: pull_request\n    events: [opened]\nsteps:\n  - name: hello\n    type: run_command\n    config:\n      command: echo hi\n";

/// One API call: status, JSON body (`Null` when empty), headers.
async fn call(
    server: &Server,
    method: Method,
    path: &str,
    token: Option<&str>,
    body: Option<&str>,
) -> (u16, Value, reqwest::header::HeaderMap) {
    let mut req = client().request(method, format!("{}/api{path}", server.url));
    if let Some(token) = token {
        req = req.bearer_auth(token);
    }
    if let Some(body) = body {
        req = req.header("content-type", "application/yaml").body(body.to_owned());
    }
    let resp = req.send().await.unwrap();
    let (status, headers) = (resp.status().as_u16(), resp.headers().clone());
    (status, resp.json().await.unwrap_or(Value::Null), headers)
}

async fn authed(server: &Server, method: Method, path: &str, body: Option<&str>) -> (u16, Value) {
    let (status, value, _) = call(server, method, path, Some(API_TOKEN), body).await;
    (status, value)
}

/// The pipelines a fresh pull request delivery starts, by name.
async fn runs_for_new_pull_request(server: &Server, delivery: &str) -> Vec<String> {
    let (body, headers) = fixture("github", "pull_request.opened");
    let hook = format!("{}/webhooks/github", server.url);
    let (status, answer) = post(&hook, &body, &with_delivery(&headers, delivery)).await;
    assert_eq!(status, 202, "{answer}");
    let mut names: Vec<String> = answer["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["pipeline"].as_str().unwrap().to_owned())
        .collect();
    names.sort();
    names
}

#[tokio::test]
async fn the_api_needs_the_bearer_token_and_is_closed_without_one() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    let (status, err, headers) = call(&server, Method::GET, "/pipelines", None, None).await;
    assert_eq!(status, 401, "{err}");
    assert_eq!(headers["www-authenticate"], "Bearer");
    assert!(
        err["error"].as_str().unwrap().contains("Authorization: Bearer"),
        "{err}"
    );
    let (status, err, _) = call(&server, Method::GET, "/pipelines", Some("not-the-token"), None).await;
    assert_eq!(status, 401, "{err}");
    let (status, err, _) = call(&server, Method::PUT, "/pipelines/triage", Some("x"), Some(TRIAGE)).await;
    assert_eq!(status, 401, "a refused write changes nothing: {err}");

    let (status, list) = authed(&server, Method::GET, "/pipelines", None).await;
    assert_eq!(status, 200);
    let lowercase = client()
        .get(format!("{}/api/pipelines", server.url))
        .header("authorization", format!("bearer {API_TOKEN}"))
        .send()
        .await
        .unwrap();
    assert_eq!(lowercase.status(), 200, "the scheme is case-insensitive");
    let dir_path = dir.path().display().to_string();
    assert_eq!(
        list,
        serde_json::json!([
            {"name": "deploy", "origin": "file", "path": format!("{dir_path}/pipelines/deploy.yml")},
            {"name": "review", "origin": "file", "path": format!("{dir_path}/pipelines/review.yml")},
        ])
    );
    server.stop();

    let closed = tempfile::tempdir().unwrap();
    let server = Server::start_with(closed.path(), None);
    let (status, err, _) = call(&server, Method::GET, "/pipelines", Some(API_TOKEN), None).await;
    assert_eq!(status, 403, "{err}");
    assert!(err["error"].as_str().unwrap().contains("set api_token"), "{err}");
    server.stop();
}

#[tokio::test]
async fn pipelines_added_through_the_api_start_runs_and_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    assert_eq!(runs_for_new_pull_request(&server, "d-1").await, ["review"]);

    let (status, created) = authed(&server, Method::PUT, "/pipelines/triage", Some(TRIAGE)).await;
    assert_eq!(
        (status, &created["status"]),
        (201, &Value::from("created")),
        "{created}"
    );
    let (status, replaced) = authed(&server, Method::PUT, "/pipelines/triage", Some(TRIAGE)).await;
    assert_eq!(
        (status, &replaced["status"]),
        (200, &Value::from("replaced")),
        "{replaced}"
    );
    let (status, one) = authed(&server, Method::GET, "/pipelines/triage", None).await;
    assert_eq!(status, 200);
    assert_eq!(
        (&one["origin"], &one["text"]),
        (&Value::from("api"), &Value::from(TRIAGE))
    );
    assert_eq!(runs_for_new_pull_request(&server, "d-2").await, ["review", "triage"]);

    server.stop();
    let server = Server::start(dir.path());
    let (_, list) = authed(&server, Method::GET, "/pipelines", None).await;
    assert!(
        list.as_array()
            .unwrap()
            .contains(&serde_json::json!({"name": "triage", "origin": "api"})),
        "{list}"
    );
    assert_eq!(runs_for_new_pull_request(&server, "d-3").await, ["review", "triage"]);

    let (status, _) = authed(&server, Method::DELETE, "/pipelines/triage", None).await;
    assert_eq!(status, 204);
    assert_eq!(runs_for_new_pull_request(&server, "d-4").await, ["review"]);
    let (status, err) = authed(&server, Method::DELETE, "/pipelines/triage", None).await;
    assert_eq!(status, 404, "{err}");
    let (status, err) = authed(&server, Method::GET, "/pipelines/triage", None).await;
    assert_eq!(status, 404, "{err}");
    server.stop();
}

#[tokio::test]
async fn bad_pipelines_are_refused_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    let (_, before) = authed(&server, Method::GET, "/pipelines", None).await;

    let refused = |body: &'static str, name: &'static str| {
        let server = &server;
        async move {
            let (status, err) = authed(server, Method::PUT, &format!("/pipelines/{name}"), Some(body)).await;
            (status, err["error"].as_str().unwrap_or_default().to_owned())
        }
    };
    let (status, err) = refused("name: bad\nsteps: [", "bad").await;
    assert_eq!(status, 400, "{err}");
    assert!(err.contains("api:bad:"), "the error points into the text: {err}");

    let (status, err) = refused(
        "name: bad\ntriggers:\n  - type: push\nsteps:\n  - name: s\n    type: no_such_step\n",
        "bad",
    )
    .await;
    assert_eq!(status, 400);
    assert!(err.contains("no_such_step"), "{err}");

    let (status, err) = refused(TRIAGE, "other").await;
    assert_eq!(status, 400);
    assert!(err.contains("`triage`") && err.contains("`other`"), "{err}");

    let secret = "name: s\ntriggers:\n  - type: push\nsteps:\n  - name: s\n    type: run_command\n    config:\n      command: echo ${NOT_CONFIGURED}\n";
    let (status, err) = refused(secret, "s").await;
    assert_eq!(status, 400);
    assert!(err.contains("NOT_CONFIGURED"), "{err}");

    let review = std::fs::read_to_string(dir.path().join("pipelines/review.yml")).unwrap();
    let (status, err) = authed(&server, Method::PUT, "/pipelines/review", Some(&review)).await;
    assert_eq!(status, 409, "{err}");
    assert!(err["error"].as_str().unwrap().contains("review.yml"), "{err}");
    let (status, err) = authed(&server, Method::DELETE, "/pipelines/review", None).await;
    assert_eq!(status, 409, "{err}");

    let (_, after) = authed(&server, Method::GET, "/pipelines", None).await;
    assert_eq!(before, after, "nothing refused was kept");
    server.stop();
}

/// Regression: the step types were a snapshot taken at start, so a plugin added later was an
/// `unknown step type` to the API until a restart.
#[tokio::test]
async fn a_plugin_added_while_serving_can_be_used_by_an_api_pipeline_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    let greet = "name: greet\nsteps:\n  - name: hello\n    type: hello_python\n    config:\n      name: Ada\n";
    let (status, err) = authed(&server, Method::PUT, "/pipelines/greet", Some(greet)).await;
    assert_eq!(status, 400, "{err}");
    assert!(err.to_string().contains("unknown step type `hello_python`"), "{err}");
    let build = tempfile::tempdir().unwrap();
    let wasm = common::python_step(build.path(), "hello_python");
    std::fs::create_dir_all(dir.path().join("plugins")).unwrap();
    std::fs::copy(&wasm, dir.path().join("plugins/hello_python.wasm")).unwrap();
    // Noticed within two seconds, then described (a first compile of a Python component).
    let deadline = std::time::Instant::now() + Duration::from_secs(180);
    loop {
        let (status, answer) = authed(&server, Method::PUT, "/pipelines/greet", Some(greet)).await;
        if status == 201 {
            break;
        }
        assert_eq!(status, 400, "{answer}");
        assert!(std::time::Instant::now() < deadline, "still refused: {answer}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    // Its schema is in force too: a config without `name` is refused, naming it.
    let nameless = greet.replace("      name: Ada\n", "      greeting: hi\n");
    let (status, err) = authed(&server, Method::PUT, "/pipelines/greet", Some(&nameless)).await;
    assert_eq!(status, 400, "{err}");
    assert!(err.to_string().contains("name"), "{err}");
    server.stop();
}
