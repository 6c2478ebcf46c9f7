//! The `deploy` step's four strategies against targets on loopback: a webhook receiver that
//! checks the `X-Signature-256` HMAC, a deployments API that checks the bearer token, a health
//! endpoint and smoke-test pages that can fail, the fake GitHub for workflow dispatches and
//! the `deploy/<environment>` commit statuses.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use powernode::catalog::Catalog;
use powernode::model::TriggerContext;
use powernode::policy::{Capability, GrantConfig, Grants};
use powernode::provider::RepoBinding;
use powernode::provider::github::GithubClient;
use powernode::provider::http::RetryPolicy;
use powernode::runtime::{Plugin, StepReport};
use powernode::secret::Secret;
use powernode::webhook::hex_hmac_sha256;
use serde_json::{Value, json};

use crate::fakes::FakeServer;
use crate::fakes::github::GithubFake;
use crate::harness::{Harness, log_text};

const TOKEN: &str = "ghp-deploy-test-9090";
const SECRET: &str = "deploy-webhook-secret-31";
const API_TOKEN: &str = "deploy-api-token-7272";
const REPO: &str = "octo/hello";

/// What the targets saw and how the health endpoint answers.
#[derive(Default)]
struct Target {
    /// Bodies the webhook and the API accepted.
    accepted: Mutex<Vec<Value>>,
    /// Health checks answered so far.
    health_calls: AtomicUsize,
    /// Health checks answered 503 before the first 200 (`usize::MAX`: never healthy).
    unhealthy_for: AtomicUsize,
}

async fn webhook(State(t): State<Arc<Target>>, headers: HeaderMap, body: Bytes) -> (StatusCode, String) {
    let expected = format!("sha256={}", hex_hmac_sha256(SECRET.as_bytes(), &body));
    if headers.get("x-signature-256").and_then(|v| v.to_str().ok()) != Some(expected.as_str()) {
        return (StatusCode::UNAUTHORIZED, "{\"error\":\"bad signature\"}".into());
    }
    t.accepted.lock().unwrap().push(serde_json::from_slice(&body).unwrap());
    (
        StatusCode::OK,
        json!({"url": "https://staging.example.test/"}).to_string(),
    )
}

async fn api(State(t): State<Arc<Target>>, headers: HeaderMap, body: Bytes) -> (StatusCode, String) {
    if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some(&format!("Bearer {API_TOKEN}")) {
        return (StatusCode::UNAUTHORIZED, "{\"message\":\"bad token\"}".into());
    }
    t.accepted.lock().unwrap().push(serde_json::from_slice(&body).unwrap());
    (
        StatusCode::CREATED,
        json!({"deployment_url": "https://prod.example.test/"}).to_string(),
    )
}

async fn health(State(t): State<Arc<Target>>) -> StatusCode {
    let n = t.health_calls.fetch_add(1, Ordering::SeqCst);
    match n < t.unhealthy_for.load(Ordering::SeqCst) {
        true => StatusCode::SERVICE_UNAVAILABLE,
        false => StatusCode::OK,
    }
}

struct World {
    h: Harness,
    plugin: Arc<Plugin>,
    target: Arc<Target>,
    url: String,
    fake: GithubFake,
    _api: FakeServer,
    binding: Arc<RepoBinding>,
    sha: String,
}

impl World {
    async fn start() -> World {
        let target = Arc::new(Target::default());
        let app = Router::new()
            .route("/trigger", post(webhook))
            .route("/deployments", post(api))
            .route("/health", get(health))
            .route("/smoke/ok", get(|| async { "welcome home" }))
            .route(
                "/smoke/broken",
                get(|| async { (StatusCode::INTERNAL_SERVER_ERROR, "oops") }),
            )
            .with_state(target.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

        let fake = GithubFake::new("", "powernode-bot", TOKEN, REPO);
        let sha = fake.state().repos[0].branches[0].1.clone();
        let api = FakeServer::start(fake.router()).await;
        let retry = RetryPolicy {
            max_attempts: 1,
            ..RetryPolicy::default()
        };
        let client = GithubClient::new(&api.base_url, TOKEN, retry).unwrap();
        let binding = Arc::new(RepoBinding::new(Arc::new(client), REPO, None, Secret::new(TOKEN)));
        let h = Harness::new();
        let grant = GrantConfig {
            interfaces: vec![Capability::Provider, Capability::Process, Capability::Http],
            http: vec!["127.0.0.1".into()],
            ..Default::default()
        };
        let grants = Grants::new(&[("deploy".to_string(), grant)].into()).unwrap();
        let catalog = Catalog::new(h.runtime.clone(), grants, None);
        let plugin = catalog.get("deploy").await.unwrap();
        World {
            h,
            plugin,
            target,
            url,
            fake,
            _api: api,
            binding,
            sha,
        }
    }

    async fn deploy(&self, config: Value) -> StepReport {
        let trigger = TriggerContext {
            event: "push".into(),
            git_ref: Some("refs/heads/main".into()),
            head_sha: Some(self.sha.clone()),
            repository: powernode::model::Repository {
                full_name: REPO.into(),
                default_branch: "main".into(),
                ..Default::default()
            },
            ..TriggerContext::default()
        };
        let report = self
            .h
            .run_triggered(
                &self.plugin,
                config,
                trigger,
                Duration::from_secs(60),
                Some(self.binding.clone()),
            )
            .await;
        let log = log_text(&report);
        for secret in [SECRET, API_TOKEN, TOKEN] {
            assert!(!log.contains(secret), "a secret reached the log: {log}");
        }
        report
    }

    /// The `deploy/<env>` statuses set, as (state, description).
    fn statuses(&self, environment: &str) -> Vec<(String, String)> {
        let context = format!("deploy/{environment}");
        self.fake
            .state()
            .statuses
            .iter()
            .filter(|(_, sha, b)| sha == &self.sha && b["context"] == context.as_str())
            .map(|(_, _, b)| {
                (
                    b["state"].as_str().unwrap().to_owned(),
                    b["description"].as_str().unwrap_or("").to_owned(),
                )
            })
            .collect()
    }
}

#[tokio::test]
async fn a_signed_webhook_deploy_waits_for_health_and_passes_its_smoke_tests() {
    let w = World::start().await;
    w.target.unhealthy_for.store(1, Ordering::SeqCst);
    let report = w
        .deploy(json!({
            "strategy": "webhook", "environment": "staging",
            "webhook_url": format!("{}/trigger", w.url), "webhook_secret": SECRET,
            "health_check_url": format!("{}/health", w.url), "health_check_retries": 3,
            "health_check_interval_seconds": 1,
            "smoke_tests": [{"url": format!("{}/smoke/ok", w.url), "expect_body_contains": "welcome"}],
        }))
        .await;
    let out = report.outcome.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(out.outputs["status"], "success");
    assert_eq!(out.outputs["deployment_url"], "https://staging.example.test/");
    assert_eq!(out.outputs["health_checks"], "2");
    let accepted = w.target.accepted.lock().unwrap().clone();
    assert_eq!(accepted.len(), 1);
    assert_eq!(accepted[0]["environment"], "staging");
    assert_eq!(accepted[0]["sha"], w.sha.as_str());
    assert_eq!(accepted[0]["repository"], REPO);
    let statuses = w.statuses("staging");
    assert_eq!(statuses.first().map(|s| s.0.as_str()), Some("pending"), "{statuses:?}");
    assert_eq!(statuses.last().map(|s| s.0.as_str()), Some("success"), "{statuses:?}");
}

#[tokio::test]
async fn a_wrong_webhook_secret_is_refused_by_the_receiver_and_fails_the_step() {
    let w = World::start().await;
    let report = w
        .deploy(json!({"strategy": "webhook", "environment": "staging",
            "webhook_url": format!("{}/trigger", w.url), "webhook_secret": "not-the-secret"}))
        .await;
    let error = report.outcome.unwrap_err().to_string();
    assert!(error.contains("401"), "{error}");
    assert!(w.target.accepted.lock().unwrap().is_empty());
    assert_eq!(w.statuses("staging").last().unwrap().0, "failure");
}

#[tokio::test]
async fn the_api_strategy_sends_the_bearer_token_and_reports_the_deployment_url() {
    let w = World::start().await;
    let report = w
        .deploy(json!({"strategy": "api", "environment": "production",
            "api_url": format!("{}/deployments", w.url), "api_token": API_TOKEN}))
        .await;
    let out = report.outcome.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(out.outputs["deployment_url"], "https://prod.example.test/");
    assert_eq!(w.target.accepted.lock().unwrap()[0]["strategy"], "api");
    assert_eq!(w.statuses("production").last().unwrap().0, "success");
}

#[tokio::test]
async fn the_workflow_strategy_dispatches_with_the_environment_among_the_inputs() {
    let w = World::start().await;
    let report = w
        .deploy(
            json!({"strategy": "workflow", "workflow": "ci.yml", "environment": "production",
            "inputs": {"target": "production-cluster"}}),
        )
        .await;
    report.outcome.unwrap_or_else(|e| panic!("{e}"));
    let dispatches = w.fake.state().dispatches.clone();
    assert_eq!(dispatches.len(), 1, "{dispatches:?}");
    assert_eq!(dispatches[0].1, "ci.yml");
    assert_eq!(dispatches[0].2["ref"], "main");
    assert_eq!(
        dispatches[0].2["inputs"],
        json!({"target": "production-cluster", "environment": "production"})
    );
}

#[tokio::test]
async fn the_command_strategy_runs_the_command_with_the_deploy_facts() {
    let w = World::start().await;
    let report = w
        .deploy(json!({"strategy": "command", "environment": "qa",
            "command": "echo deploying $DEPLOY_ENVIRONMENT at $DEPLOY_SHA", "timeout_minutes": 1}))
        .await;
    report.outcome.as_ref().unwrap_or_else(|e| panic!("{e}"));
    assert!(
        log_text(&report).contains(&format!("deploying qa at {}", w.sha)),
        "{}",
        log_text(&report)
    );
}

#[tokio::test]
async fn a_failing_health_check_fails_the_step_and_sets_the_failure_status() {
    let w = World::start().await;
    w.target.unhealthy_for.store(usize::MAX, Ordering::SeqCst);
    let report = w
        .deploy(json!({"strategy": "api", "environment": "production",
            "api_url": format!("{}/deployments", w.url), "api_token": API_TOKEN,
            "health_check_url": format!("{}/health", w.url), "health_check_retries": 2,
            "health_check_interval_seconds": 1}))
        .await;
    let error = report.outcome.unwrap_err().to_string();
    assert!(error.contains("health check") && error.contains("503"), "{error}");
    assert_eq!(w.target.health_calls.load(Ordering::SeqCst), 2);
    let last = w.statuses("production").pop().unwrap();
    assert_eq!(last.0, "failure");
    assert!(last.1.contains("health check"), "{last:?}");
}

#[tokio::test]
async fn a_smoke_test_expecting_200_that_gets_500_fails_the_step() {
    let w = World::start().await;
    let report = w
        .deploy(json!({"strategy": "api", "environment": "production",
            "api_url": format!("{}/deployments", w.url), "api_token": API_TOKEN,
            "smoke_tests": [{"url": format!("{}/smoke/ok", w.url)}, {"url": format!("{}/smoke/broken", w.url), "expect_status": 200}]}))
        .await;
    let error = report.outcome.unwrap_err().to_string();
    assert!(error.contains("/smoke/broken") && error.contains("500"), "{error}");
    assert_eq!(w.statuses("production").last().unwrap().0, "failure");
}
