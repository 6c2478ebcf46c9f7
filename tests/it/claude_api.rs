//! `claude_execute` with `backend: api` against a stand-in Messages API on loopback that
//! answers as Anthropic's does: `message` objects with `content` blocks and `usage`, and
//! `{"type":"error","error":{...}}` bodies with 401 for a bad key and 529 when overloaded.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use powernode::catalog::Catalog;
use powernode::policy::{Capability, GrantConfig, Grants};
use powernode::runtime::StepReport;
use serde_json::{Value, json};

use crate::harness::{Harness, log_text};

const KEY: &str = "sk-ant-test-key-4242";

#[derive(Default)]
struct Api {
    /// Requests answered 529 before the first success.
    overloaded_for: AtomicUsize,
    /// Every request: (when, headers of interest, body).
    seen: Mutex<Vec<(Instant, Value)>>,
}

async fn messages(State(api): State<Arc<Api>>, headers: HeaderMap, body: String) -> (StatusCode, HeaderMap, String) {
    let body: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
    let n = {
        let mut seen = api.seen.lock().unwrap();
        seen.push((Instant::now(), body.clone()));
        seen.len()
    };
    let error = |status: StatusCode, kind: &str, message: &str| {
        let body = json!({"type": "error", "error": {"type": kind, "message": message}});
        (status, HeaderMap::new(), body.to_string())
    };
    if headers.get("x-api-key").and_then(|v| v.to_str().ok()) != Some(KEY) {
        return error(StatusCode::UNAUTHORIZED, "authentication_error", "invalid x-api-key");
    }
    if headers.get("anthropic-version").is_none() {
        return error(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            "anthropic-version header is required",
        );
    }
    if n <= api.overloaded_for.load(Ordering::SeqCst) {
        let (status, mut headers, body) = error(StatusCode::from_u16(529).unwrap(), "overloaded_error", "Overloaded");
        headers.insert("retry-after", "1".parse().unwrap());
        return (status, headers, body);
    }
    let text = "Here is the plan.\n```json\n{\"verdict\": \"approve\", \"score\": 9}\n```";
    let answer = json!({
        "id": "msg_01XFDUDYJgAACzvnptvVoYEL", "type": "message", "role": "assistant",
        "model": body["model"], "stop_reason": "end_turn", "stop_sequence": null,
        "content": [{"type": "text", "text": text}],
        "usage": {"input_tokens": 12, "output_tokens": 34},
    });
    (StatusCode::OK, HeaderMap::new(), answer.to_string())
}

async fn start() -> (String, Arc<Api>) {
    let api = Arc::new(Api::default());
    let app = Router::new()
        .route("/v1/messages", post(messages))
        .with_state(api.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, api)
}

async fn run(url: &str, key: &str) -> StepReport {
    let h = Harness::new();
    let grant = GrantConfig {
        interfaces: vec![
            Capability::Process,
            Capability::Kv,
            Capability::Templates,
            Capability::Http,
        ],
        http: vec!["127.0.0.1".into()],
        ..Default::default()
    };
    let grants = Grants::new(&[("claude_execute".to_string(), grant)].into()).unwrap();
    let catalog = Catalog::new(h.runtime.clone(), grants, None);
    let plugin = catalog.get("claude_execute").await.unwrap();
    let config = json!({"backend": "api", "api_url": url, "api_key": key, "prompt": "Plan the fix",
        "model": "claude-sonnet-4-5", "max_tokens": 256});
    let report = h.run(&plugin, config, Duration::from_secs(60)).await;
    assert!(!log_text(&report).contains(key), "the key reached the log");
    report
}

#[tokio::test]
async fn an_overloaded_answer_is_retried_after_its_retry_after_then_the_json_is_parsed() {
    let (url, api) = start().await;
    api.overloaded_for.store(1, Ordering::SeqCst);
    let report = run(&url, KEY).await;
    let out = report.outcome.unwrap_or_else(|e| panic!("{e}"));
    assert!(out.raw_output.starts_with("Here is the plan."), "{}", out.raw_output);
    assert_eq!(out.outputs["verdict"], "approve");
    assert_eq!(out.outputs["score"], "9");
    assert_eq!(out.outputs["input_tokens"], "12");
    assert_eq!(out.outputs["backend"], "api");
    let seen = api.seen.lock().unwrap();
    assert_eq!(seen.len(), 2, "one 529, then the answer");
    assert!(
        seen[1].0 - seen[0].0 >= Duration::from_millis(900),
        "retry-after was not honoured"
    );
    assert_eq!(
        seen[1].1["messages"],
        json!([{"role": "user", "content": "Plan the fix"}])
    );
    assert_eq!(seen[1].1["model"], "claude-sonnet-4-5");
}

#[tokio::test]
async fn a_refused_key_fails_the_step_saying_so_without_printing_it() {
    let (url, api) = start().await;
    let wrong = "sk-ant-wrong-key-0000";
    let report = run(&url, wrong).await;
    let error = report.outcome.unwrap_err().to_string();
    assert!(error.contains("refused the API key"), "{error}");
    assert!(error.contains("authentication_error"), "{error}");
    assert!(!error.contains(wrong), "{error}");
    assert_eq!(api.seen.lock().unwrap().len(), 1, "a refused key is not retried");
}
