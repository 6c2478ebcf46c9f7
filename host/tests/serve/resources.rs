//! Plugins, prompt templates and run artifacts over the API of the real server.

use reqwest::Method;

use super::*;

async fn call(server: &Server, method: Method, path: &str, body: Option<&str>) -> (u16, String) {
    api_text(server, method, path, body).await
}

fn json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or(Value::Null)
}

#[tokio::test]
async fn templates_are_stored_listed_replaced_and_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    let (status, _) = call(&server, Method::PUT, "/templates/review", Some("Review {{ title }}")).await;
    assert_eq!(status, 201);
    let (status, _) = call(
        &server,
        Method::PUT,
        "/templates/review",
        Some("Review {{ title }} again"),
    )
    .await;
    assert_eq!(status, 200);
    let (status, body) = call(&server, Method::GET, "/templates/review", None).await;
    assert_eq!(
        (status, json(&body)["text"].as_str()),
        (200, Some("Review {{ title }} again"))
    );
    let (_, body) = call(&server, Method::GET, "/templates", None).await;
    assert_eq!(json(&body), serde_json::json!([{"id": "review"}]));
    let (status, body) = call(&server, Method::PUT, "/templates/..%2Fx", Some("x")).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(call(&server, Method::DELETE, "/templates/review", None).await.0, 204);
    let (status, body) = call(&server, Method::DELETE, "/templates/review", None).await;
    assert_eq!(status, 404, "{body}");
    assert!(json(&body)["error"].as_str().unwrap().contains("no template `review`"));
    server.stop();
}

#[tokio::test]
async fn plugins_are_listed_with_their_grants_and_refusals() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("plugins")).unwrap();
    std::fs::write(dir.path().join("plugins/broken.wasm"), b"not wasm").unwrap();
    std::fs::write(dir.path().join("plugins/deploy.wasm"), b"posing as a built-in").unwrap();
    let server = Server::start(dir.path());
    let (status, body) = call(&server, Method::GET, "/plugins", None).await;
    assert_eq!(status, 200, "{body}");
    let plugins = json(&body);
    let find = |name: &str| {
        plugins
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == name)
            .cloned()
            .unwrap()
    };
    let run_command = find("run_command");
    assert_eq!(run_command["grants"], serde_json::json!(["log", "process"]));
    assert!(
        run_command["imports"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i == "powernode:step/process@0.1.3")
    );
    assert_eq!(run_command["replaces_builtin"], false);
    assert_eq!(
        (&run_command["pinned"], &run_command["signed_by"]),
        (&serde_json::json!(false), &Value::Null)
    );
    let deploy = find("deploy");
    assert!(
        deploy["refused"]
            .as_str()
            .unwrap()
            .contains("would replace the built-in step `deploy`, and the config does not approve that"),
        "{deploy}"
    );
    let broken = find("broken");
    assert!(
        broken["refused"]
            .as_str()
            .unwrap()
            .contains("is not a loadable WebAssembly component"),
        "{broken}"
    );
    server.stop();
}

#[tokio::test]
async fn a_runs_artifacts_are_listed_and_downloaded() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("pipelines")).unwrap();
    std::fs::write(
        dir.path().join("pipelines/package.yml"),
        "name: package\nsteps:\n  - name: build\n    type: run_command\n    config:\n      command: mkdir -p dist && printf 'binary bytes' > dist/app.bin\n  - name: keep\n    type: upload_artifact\n    config:\n      path: dist/app.bin\n",
    )
    .unwrap();
    let server = Server::start(dir.path());
    let (status, body) = call(&server, Method::POST, "/pipelines/package/runs", None).await;
    assert_eq!(status, 201, "{body}");
    let id = json(&body)["id"].as_str().unwrap().to_owned();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (_, run) = call(&server, Method::GET, &format!("/runs/{id}"), None).await;
        let state = json(&run)["state"].as_str().unwrap_or_default().to_owned();
        if state == "success" {
            break;
        }
        assert!(state == "queued" || state == "running", "{run}");
        assert!(Instant::now() < deadline, "the run never ended: {run}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (status, body) = call(&server, Method::GET, &format!("/runs/{id}/artifacts"), None).await;
    assert_eq!(status, 200, "{body}");
    let listed = json(&body);
    assert_eq!(listed[0]["name"], "dist/app.bin");
    assert_eq!(listed[0]["size"], 12);
    let (status, bytes) = call(
        &server,
        Method::GET,
        &format!("/runs/{id}/artifacts/dist/app.bin"),
        None,
    )
    .await;
    assert_eq!((status, bytes.as_str()), (200, "binary bytes"));
    let (status, body) = call(&server, Method::GET, &format!("/runs/{id}/artifacts/nope"), None).await;
    assert_eq!(status, 404, "{body}");
    let (status, _) = call(&server, Method::GET, "/runs/nope/artifacts", None).await;
    assert_eq!(status, 404);
    server.stop();
}

#[tokio::test]
async fn stored_deliveries_are_listed_newest_first_with_their_runs() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    let hook = format!("{}/webhooks/github", server.url);
    for (name, delivery) in [("pull_request.opened", "ev-pr-1"), ("push", "ev-push-1")] {
        let (body, headers) = fixture("github", name);
        let (status, answer) = post(&hook, &body, &with_delivery(&headers, delivery)).await;
        assert_eq!(status, 202, "{answer}");
    }
    let (status, body) = call(&server, Method::GET, "/events", None).await;
    assert_eq!(status, 200, "{body}");
    let events = json(&body)["events"].clone();
    assert_eq!(events[0]["delivery"], "ev-push-1");
    assert_eq!(events[0]["event"], "push");
    assert_eq!(events[0]["runs"], serde_json::json!([]));
    assert_eq!(events[1]["delivery"], "ev-pr-1");
    assert_eq!(events[1]["action"], "opened");
    assert_eq!(events[1]["runs"][0]["pipeline"], "review");
    let (_, body) = call(&server, Method::GET, "/events?limit=1", None).await;
    let page = json(&body);
    assert_eq!(page["events"].as_array().unwrap().len(), 1);
    let next = page["next"].as_u64().expect("a cursor to the older event");
    let (_, body) = call(&server, Method::GET, &format!("/events?limit=1&before={next}"), None).await;
    assert_eq!(json(&body)["events"][0]["delivery"], "ev-pr-1");
    let id = events[1]["id"].as_u64().unwrap();
    let (status, body) = call(&server, Method::GET, &format!("/events/{id}"), None).await;
    assert_eq!(status, 200, "{body}");
    let one = json(&body);
    assert_eq!(one["event"]["repository"]["full_name"], "Codertocat/Hello-World");
    assert_eq!(one["answer"]["status"], "accepted");
    assert_eq!(call(&server, Method::GET, "/events/999", None).await.0, 404);
    assert_eq!(call(&server, Method::GET, "/events?limit=0", None).await.0, 400);
    server.stop();
}

#[tokio::test]
async fn pipeline_files_added_changed_or_removed_take_effect_without_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    let names = |body: &str| -> Vec<String> {
        json(body)
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["name"].as_str().unwrap().to_owned())
            .collect()
    };
    let wait_until = |want: &'static str, present: bool| {
        let server = &server;
        async move {
            let deadline = Instant::now() + Duration::from_secs(60);
            loop {
                let (_, body) = call(server, Method::GET, "/pipelines", None).await;
                if names(&body).iter().any(|n| n == want) == present {
                    return;
                }
                assert!(
                    Instant::now() < deadline,
                    "`{want}` never became present={present}: {body}"
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    };
    let file = dir.path().join("pipelines/nightly.yml");
    std::fs::write(
        &file,
        "name: nightly\nsteps:\n  - name: a\n    type: run_command\n    config:\n      command: echo one\n",
    )
    .unwrap();
    wait_until("nightly", true).await;
    std::fs::write(
        &file,
        "name: nightly\nsteps:\n  - name: a\n    type: run_command\n    config:\n      command: echo two\n",
    )
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (_, body) = call(&server, Method::GET, "/pipelines/nightly", None).await;
        if json(&body)["text"].as_str().unwrap_or_default().contains("echo two") {
            break;
        }
        assert!(Instant::now() < deadline, "the change was never read: {body}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    std::fs::remove_file(&file).unwrap();
    wait_until("nightly", false).await;
    server.stop();
}

#[tokio::test]
async fn the_openapi_document_has_every_route_and_every_route_in_it_answers() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    let (status, body) = call(&server, Method::GET, "/openapi.json", None).await;
    assert_eq!(status, 200, "{body}");
    let doc = json(&body);
    assert_eq!(doc["openapi"].as_str().map(|v| &v[..2]), Some("3."), "{doc}");
    let mut documented: Vec<(String, String)> = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            documented.push((method.to_uppercase(), path.clone()));
        }
    }
    documented.sort();
    let expected = [
        "DELETE /api/pipelines/{name}",
        "DELETE /api/templates/{id}",
        "GET /api/events",
        "GET /api/events/{id}",
        "GET /api/openapi.json",
        "GET /api/pipelines",
        "GET /api/pipelines/{name}",
        "GET /api/plugins",
        "GET /api/runs",
        "GET /api/runs/{id}",
        "GET /api/runs/{id}/artifacts",
        "GET /api/runs/{id}/artifacts/{name}",
        "GET /api/runs/{id}/logs",
        "GET /api/templates",
        "GET /api/templates/{id}",
        "POST /api/pipelines/{name}/runs",
        "POST /api/runs/{id}/approve",
        "POST /api/runs/{id}/cancel",
        "POST /api/runs/{id}/rerun",
        "POST /webhooks/{source}",
        "PUT /api/pipelines/{name}",
        "PUT /api/templates/{id}",
    ];
    let got: Vec<String> = documented.iter().map(|(m, p)| format!("{m} {p}")).collect();
    assert_eq!(got, expected);
    assert!(doc["components"]["securitySchemes"]["bearer"].is_object(), "{doc}");
    // Each documented route is served: a made-up id gets the handler's JSON answer, never
    // the router's bare 404 or 405.
    for (method, path) in &documented {
        let concrete = path
            .replace("{name}", "no-such")
            .replace("{id}", "no-such")
            .replace("{source}", "no-such");
        let mut req = reqwest::Client::new()
            .request(method.parse().unwrap(), format!("{}{concrete}", server.url))
            .bearer_auth(API_TOKEN)
            .header("content-type", "application/json")
            .body("{}");
        if method == "PUT" {
            req = req.body("name: no-such\nsteps: []\n");
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        assert_ne!(status, 405, "{method} {path}");
        assert!(
            status != 404 || json(&text)["error"].is_string(),
            "{method} {path}: the router's own 404"
        );
    }
    server.stop();
}

#[tokio::test]
async fn array_lists_page_with_limit_and_a_next_link() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    for id in ["a", "b", "c"] {
        assert_eq!(
            call(&server, Method::PUT, &format!("/templates/{id}"), Some("x"))
                .await
                .0,
            201
        );
    }
    let resp = reqwest::Client::new()
        .get(format!("{}/api/templates?limit=2", server.url))
        .bearer_auth(API_TOKEN)
        .send()
        .await
        .unwrap();
    let link = resp.headers()["link"].to_str().unwrap().to_owned();
    assert_eq!(
        json(&resp.text().await.unwrap()),
        serde_json::json!([{"id": "a"}, {"id": "b"}])
    );
    assert_eq!(link, "</api/templates?limit=2&after=b>; rel=\"next\"");
    let next = link.trim_start_matches('<').split('>').next().unwrap();
    let resp = reqwest::Client::new()
        .get(format!("{}{next}", server.url))
        .bearer_auth(API_TOKEN)
        .send()
        .await
        .unwrap();
    assert!(resp.headers().get("link").is_none(), "the last page links nowhere");
    assert_eq!(json(&resp.text().await.unwrap()), serde_json::json!([{"id": "c"}]));
    let (status, body) = call(&server, Method::GET, "/pipelines?limit=0", None).await;
    assert_eq!(status, 400, "{body}");
    server.stop();
}
