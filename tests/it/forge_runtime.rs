//! The `provider` and `git` interfaces end to end: a plugin (the `forge-ops` guest) in the
//! real runtime, bound to a fake GitHub whose clone URL points at a real git server that
//! demands the token. Every call reaches the forge with the host's credentials, errors
//! arrive as the WIT variant, and the token shows up in no log line and no file.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use powernode::policy::{Capability, GrantConfig};
use powernode::provider::RepoBinding;
use powernode::provider::github::GithubClient;
use powernode::provider::http::RetryPolicy;
use powernode::runtime::{Plugin, StepFailure, StepReport};
use powernode::secret::Secret;
use serde_json::{Value, json};

use crate::fakes::FakeServer;
use crate::fakes::github::GithubFake;
use crate::git::{hello_repository, sys_git};
use crate::git_server::{self, GitServer};
use crate::harness::{Harness, log_text};

const TOKEN: &str = "ghp-runtime-test-4d2c";
const BOT: &str = "powernode-bot";
const REPO: &str = "octo/hello";

struct Forge {
    h: Harness,
    fake: GithubFake,
    api: FakeServer,
    binding: Arc<RepoBinding>,
    plugin: Plugin,
    git: GitServer,
    srv: tempfile::TempDir,
}

impl Forge {
    async fn start() -> Forge {
        let srv = tempfile::tempdir().unwrap();
        hello_repository(srv.path());
        let git = git_server::start(srv.path(), TOKEN);

        let fake = GithubFake::new("", BOT, TOKEN, REPO);
        fake.state().clone_origin = Some(git.url.clone());
        let api = FakeServer::start(fake.router()).await;
        let retry = RetryPolicy {
            max_attempts: 2,
            base_delay: Duration::from_millis(10),
            ..RetryPolicy::default()
        };
        let client = GithubClient::new(&api.base_url, TOKEN, retry).unwrap();
        let binding = Arc::new(RepoBinding::new(
            Arc::new(client),
            REPO,
            Some(BOT.into()),
            Secret::new(TOKEN),
        ));

        let h = Harness::new();
        let grant = GrantConfig {
            interfaces: vec![Capability::Provider, Capability::Git],
            http: vec![],
            ..Default::default()
        };
        let plugin = h.load_ok(powernode_tests::FORGE_OPS, "forge_ops", grant).await;
        Forge {
            h,
            fake,
            api,
            binding,
            plugin,
            git,
            srv,
        }
    }

    async fn op(&self, config: Value) -> StepReport {
        let report = self
            .h
            .run_with_forge(
                &self.plugin,
                config,
                Duration::from_secs(60),
                Some(self.binding.clone()),
            )
            .await;
        assert!(!log_text(&report).contains(TOKEN), "{}", log_text(&report));
        report
    }

    async fn ok(&self, config: Value) -> powernode::runtime::StepSuccess {
        self.op(config).await.outcome.unwrap_or_else(|e| panic!("{e}"))
    }
}

#[tokio::test]
async fn provider_calls_reach_the_forge_with_the_hosts_token() {
    let f = Forge::start().await;
    let repo = f.ok(json!({"op": "repo"})).await;
    assert_eq!(repo.raw_output, REPO);
    assert_eq!(repo.outputs["clone_url"], format!("{}/octo/hello.git", f.git.url));

    let sha = f.fake.state().repos[0].branches[0].1.clone();
    f.ok(json!({"op": "status", "sha": sha, "context": "powernode/ci"}))
        .await;
    let statuses = f.fake.state().statuses.clone();
    assert_eq!(statuses.len(), 1);
    assert_eq!(statuses[0].2["state"], "pending", "Running is `pending` on GitHub");

    let n = f.fake.add_issue(REPO);
    let first = f
        .ok(json!({"op": "comment", "number": n, "marker": "review", "body": "v1"}))
        .await;
    let second = f
        .ok(json!({"op": "comment", "number": n, "marker": "review", "body": "v2"}))
        .await;
    assert_eq!(
        first.outputs["id"], second.outputs["id"],
        "edited in place, not posted twice"
    );
    let comments = f.fake.comments(REPO, n);
    assert_eq!(comments.len(), 1);
    assert!(
        comments[0].body.starts_with("v2\n\n<!-- powernode:review -->"),
        "{}",
        comments[0].body
    );

    f.fake.add_branch(REPO, "feature");
    let pr = json!({"op": "pr", "title": "Add feature", "head": "feature", "base": "main"});
    let opened = f.ok(pr.clone()).await;
    let again = f.ok(pr).await;
    assert_eq!(
        opened.outputs["number"], again.outputs["number"],
        "the conflict is recovered by finding the PR"
    );

    for r in f.api.requests() {
        assert_eq!(
            r.header("authorization"),
            Some(format!("Bearer {TOKEN}").as_str()),
            "{r:?}"
        );
    }
}

#[tokio::test]
async fn forge_errors_reach_the_plugin_as_the_wit_variant() {
    let f = Forge::start().await;
    let report = f.op(json!({"op": "get_pr", "number": 999})).await;
    match report.outcome {
        Err(StepFailure::Provider(m)) => assert!(m.starts_with("not found: "), "{m}"),
        other => panic!("expected a not-found provider error, got {other:?}"),
    }
}

#[tokio::test]
async fn git_clone_and_push_go_through_the_host_and_never_expose_the_token() {
    let f = Forge::start().await;
    let out = f.ok(json!({"op": "clone_push", "branch": "powernode/update"})).await;
    let pushed = sys_git(
        f.srv.path(),
        &[
            "--git-dir",
            "octo/hello.git",
            "rev-parse",
            "refs/heads/powernode/update",
        ],
    );
    assert_eq!(out.raw_output, pushed);
    let cloned = sys_git(
        f.srv.path(),
        &["--git-dir", "octo/hello.git", "rev-parse", "refs/heads/main"],
    );
    assert_eq!(out.outputs["cloned"], cloned);
    assert_no_token_under(f.h.workspace.path());
    assert!(f.git.requests().iter().all(|r| r.header("authorization").is_some()));
}

#[tokio::test]
async fn a_run_without_a_forge_connection_says_so() {
    let f = Forge::start().await;
    let report = f.h.run(&f.plugin, json!({"op": "repo"}), Duration::from_secs(30)).await;
    match report.outcome {
        Err(StepFailure::Provider(m)) => assert!(m.contains("this run has no forge connection"), "{m}"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn forge_ops_without_the_provider_grant_is_refused_at_load() {
    let h = Harness::new();
    let grant = GrantConfig {
        interfaces: vec![Capability::Git],
        http: vec![],
        ..Default::default()
    };
    let err = h
        .load(powernode_tests::FORGE_OPS, "forge_ops", grant)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("`powernode:step/provider@0.1.3`"), "{err}");
}

fn assert_no_token_under(dir: &Path) {
    for entry in walk(dir) {
        let bytes = std::fs::read(&entry).unwrap_or_default();
        assert!(
            !String::from_utf8_lossy(&bytes).contains(TOKEN),
            "the token is in {}",
            entry.display()
        );
    }
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
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

#[tokio::test]
async fn a_pipeline_run_bound_to_a_configured_source_acts_on_the_forge() {
    let f = Forge::start().await;
    let config = powernode::config::Config::parse(
        Path::new("powernode.toml"),
        &format!(
            "[[sources]]\nid = \"gh\"\nkind = \"github\"\napi_url = \"{}\"\ntoken = \"${{GH_TOKEN}}\"\nbot_login = \"{BOT}\"\n\n\
             [plugins.grants.forge_ops]\ninterfaces = [\"provider\", \"git\"]\n",
            f.api.base_url
        ),
        &|name| (name == "GH_TOKEN").then(|| TOKEN.to_string()),
    )
    .unwrap();
    let plugins = tempfile::tempdir().unwrap();
    std::fs::copy(powernode_tests::FORGE_OPS, plugins.path().join("forge_ops.wasm")).unwrap();
    let catalog = powernode::catalog::Catalog::new(
        f.h.runtime.clone(),
        config.grants().unwrap(),
        Some(plugins.path().into()),
    );
    let binding = powernode::provider::connect::bind(config.source("gh").unwrap(), REPO).unwrap();
    let pipeline = powernode::pipeline::parse(
        "p.yml",
        "name: p\nsteps:\n  - name: where\n    type: forge_ops\n    config:\n      op: repo\n  - name: say\n    type: run_command\n    config:\n      command: echo \"on {{ where.raw_output }}\"\n",
    )
    .unwrap();
    let req = powernode::runner::RunRequest {
        run_id: "run-src".into(),
        trigger: Default::default(),
        secrets: Default::default(),
        workspace: f.h.workspace.path().into(),
        forge: Some(Arc::new(binding)),
        log_tap: None,
        run_url: None,
    };
    let summary = powernode::runner::run_pipeline(&catalog, &pipeline, req, |_| {}).await;
    assert!(summary.succeeded(&pipeline), "{summary:?}");
    assert_eq!(summary.steps[1].outcome.as_ref().unwrap().raw_output, "on octo/hello\n");
    assert_eq!(f.api.last().path, "/repos/octo/hello");
}
