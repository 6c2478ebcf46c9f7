//! The `provider` and `git` interfaces of a run bound to a GitHub App source: a plugin (the
//! `forge-ops` guest) writes check runs (annotations 50 a request), falls back to a commit
//! status on a token source, and clones and pushes with installation tokens the git server
//! takes as GitHub does (`x-access-token:<token>`); no token reaches a log or a file.

use std::sync::Arc;
use std::time::Duration;

use powernode::policy::{Capability, GrantConfig};
use powernode::provider::RepoBinding;
use powernode::provider::github::GithubClient;
use powernode::provider::http::RetryPolicy;
use powernode::runtime::{Plugin, StepReport};
use powernode::secret::Secret;
use serde_json::{Value, json};

use crate::fakes::github::{FakeApp, GithubFake, TEST_APP_PRIVATE_KEY};
use crate::fakes::{FakeServer, app_source};
use crate::git::{hello_repository, sys_git};
use crate::git_server::{self, GitServer};
use crate::harness::{Harness, log_text};

const REPO: &str = "octo/hello";
const PAT: &str = "ghp-app-runtime-test-91ab";

struct App {
    h: Harness,
    fake: GithubFake,
    api: FakeServer,
    binding: Arc<RepoBinding>,
    plugin: Plugin,
    git: GitServer,
    srv: tempfile::TempDir,
}

impl App {
    async fn start() -> App {
        let srv = tempfile::tempdir().unwrap();
        let (bare, _) = hello_repository(srv.path());

        let fake =
            GithubFake::new("", "someone", PAT, REPO).with_app(FakeApp::new(271828, "powernode-ci", 77, &[REPO]));
        fake.state().repos[0].git_dir = Some(bare);
        let checker = fake.clone();
        let git = git_server::start_accepting(
            srv.path(),
            move |token| checker.installation_token_is_valid(token),
            git_server::Options::default(),
        );
        fake.state().clone_origin = Some(git.url.clone());
        let api = FakeServer::start(fake.router()).await;
        let key = srv.path().join("app.pem");
        std::fs::write(&key, TEST_APP_PRIVATE_KEY).unwrap();
        let binding = powernode::provider::connect::bind(&app_source(&api.base_url, 271828, &key, None), REPO).unwrap();

        let h = Harness::new();
        let grant = GrantConfig {
            interfaces: vec![Capability::Provider, Capability::Git],
            ..Default::default()
        };
        let plugin = h.load_ok(powernode_tests::FORGE_OPS, "forge_ops", grant).await;
        App {
            h,
            fake,
            api,
            binding: Arc::new(binding),
            plugin,
            git,
            srv,
        }
    }

    async fn op(&self, binding: &Arc<RepoBinding>, config: Value) -> StepReport {
        let report = self
            .h
            .run_with_forge(&self.plugin, config, Duration::from_secs(60), Some(binding.clone()))
            .await;
        let log = log_text(&report);
        for token in self.fake.issued_tokens() {
            assert!(!log.contains(&token), "{log}");
        }
        report
    }

    fn head(&self) -> String {
        sys_git(
            self.srv.path(),
            &["--git-dir", "octo/hello.git", "rev-parse", "refs/heads/main"],
        )
    }

    /// The check-run requests sent: method and number of annotations.
    fn check_requests(&self) -> Vec<(String, usize)> {
        self.api
            .requests()
            .into_iter()
            .filter(|r| r.path.contains("/check-runs"))
            .map(|r| {
                let n = r
                    .body
                    .as_ref()
                    .and_then(|b| b["output"]["annotations"].as_array().map(Vec::len))
                    .unwrap_or(0);
                (r.method, n)
            })
            .collect()
    }
}

#[tokio::test]
async fn a_step_posting_120_annotations_sends_three_requests_and_the_check_run_has_all() {
    let app = App::start().await;
    let config = json!({"op": "check_run", "sha": app.head(), "name": "lint", "annotations": 120});
    let out = app
        .op(&app.binding, config)
        .await
        .outcome
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(out.raw_output, "check_run");
    assert_eq!(
        app.check_requests(),
        [("POST".into(), 50), ("PATCH".into(), 50), ("PATCH".into(), 20)]
    );
    let runs = app.fake.check_runs(REPO);
    assert_eq!(runs.len(), 1);
    let run = &runs[0];
    assert_eq!(out.outputs["id"], run.id.to_string());
    assert_eq!(run.annotations.len(), 120);
    assert_eq!(
        (run.status.as_str(), run.conclusion.as_deref()),
        ("completed", Some("success"))
    );
    assert_eq!(
        run.external_id.as_deref(),
        Some("run-1"),
        "the run's id: a Re-run names the run"
    );
    let levels: Vec<&str> = run.annotations[..3]
        .iter()
        .map(|a| a["annotation_level"].as_str().unwrap())
        .collect();
    assert_eq!(levels, ["notice", "warning", "failure"]);
}

#[tokio::test]
async fn a_step_can_complete_its_check_run_with_an_update() {
    let app = App::start().await;
    let config = json!({"op": "check_run", "sha": app.head(), "name": "lint", "annotations": 120, "update": true});
    app.op(&app.binding, config)
        .await
        .outcome
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        app.check_requests(),
        [
            ("POST".into(), 0),
            ("PATCH".into(), 50),
            ("PATCH".into(), 50),
            ("PATCH".into(), 20)
        ]
    );
    let run = &app.fake.check_runs(REPO)[0];
    assert_eq!(run.annotations.len(), 120);
    assert_eq!(run.conclusion.as_deref(), Some("success"));
}

#[tokio::test]
async fn on_a_token_source_a_step_falls_back_to_a_commit_status() {
    let app = App::start().await;
    let quick = RetryPolicy {
        max_attempts: 1,
        ..RetryPolicy::default()
    };
    let client = GithubClient::new(&app.api.base_url, PAT, quick).unwrap();
    let token_binding = Arc::new(RepoBinding::new(Arc::new(client), REPO, None, Secret::new(PAT)));
    let config = json!({"op": "check_run", "sha": app.head(), "name": "lint", "annotations": 3});
    let out = app
        .op(&token_binding, config)
        .await
        .outcome
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(out.raw_output, "status");
    assert!(
        out.outputs["fallback"].starts_with("check runs are not supported by this source"),
        "{:?}",
        out.outputs
    );
    assert!(app.check_requests().is_empty());
    assert_eq!(app.fake.state().statuses.len(), 1);
}

#[tokio::test]
async fn git_clones_and_pushes_with_installation_tokens_it_never_shows() {
    let app = App::start().await;
    let out = app
        .op(&app.binding, json!({"op": "clone_push", "branch": "powernode/app"}))
        .await
        .outcome
        .unwrap_or_else(|e| panic!("{e}"));
    let pushed = sys_git(
        app.srv.path(),
        &["--git-dir", "octo/hello.git", "rev-parse", "refs/heads/powernode/app"],
    );
    assert_eq!(out.raw_output, pushed);
    let requests = app.git.requests();
    assert!(!requests.is_empty());
    assert!(
        requests
            .iter()
            .filter(|r| r.status == 200)
            .all(|r| r.user.as_deref() == Some("x-access-token")),
        "{requests:#?}"
    );
    let tokens = app.fake.issued_tokens();
    assert!(!tokens.is_empty());
    for file in walk(app.h.workspace.path()) {
        let text = String::from_utf8_lossy(&std::fs::read(&file).unwrap_or_default()).into_owned();
        for token in &tokens {
            assert!(!text.contains(token.as_str()), "a token is in {}", file.display());
        }
    }
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() && !p.is_symlink() {
            files.extend(walk(&p))
        } else {
            files.push(p)
        }
    }
    files
}
