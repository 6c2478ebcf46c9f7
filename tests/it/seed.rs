//! The seed's flows with the seed's steps, in the real runtime: a fake GitHub whose branches
//! and commits are a real bare repository served by a token-checking git server on loopback,
//! and a stand-in Claude Code CLI (`seed/claude.py`) answering in the CLI's JSON format.
//! The "AI Code Review" pipeline (checkout, get_diff, review, post_review, update_status) and
//! "issue to pull request" (checkout, claude_execute, create_pr), each run twice.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use powernode::catalog::Catalog;
use powernode::model::{Repository, TriggerContext};
use powernode::pipeline::Pipeline;
use powernode::policy::Grants;
use powernode::provider::RepoBinding;
use powernode::provider::github::GithubClient;
use powernode::provider::http::RetryPolicy;
use powernode::runner::{RunRequest, RunSummary, run_pipeline};
use powernode::secret::Secret;
use powernode::store::Store;

use crate::fakes::FakeServer;
use crate::fakes::github::GithubFake;
use crate::git::{hello_repository, sys_git};
use crate::git_server::{self, GitServer};
use crate::harness::Harness;

const TOKEN: &str = "ghp-seed-flow-5151";
const BOT: &str = "powernode-bot";
const REPO: &str = "octo/hello";

/// The seed's review pipeline as the seed writes it (`seed/review.yml`, which the served
/// test runs as is); only `cli_path` is added here, pointing at the stand-in.
fn review() -> String {
    include_str!("seed/review.yml").replace(
        "      model: claude-3-sonnet\n",
        "      model: claude-3-sonnet\n      cli_path: __CLAUDE__\n",
    )
}

const ISSUE_TO_PR: &str = "name: Issue to PR
triggers:
  - type: issue_comment
steps:
  - type: checkout
  - type: claude_execute
    config:
      prompt: \"Please fix: {{ issue_title }}\\n{{ comment_body }}\"
      cli_path: __CLAUDE__
  - type: create_pr
    config:
      title: \"feat: {{ issue_title }}\"
      body_from: claude_execute.raw_output
      base: main
      branch_prefix: claude
";

struct World {
    h: Harness,
    fake: GithubFake,
    api: FakeServer,
    _git: GitServer,
    srv: tempfile::TempDir,
    binding: Arc<RepoBinding>,
    catalog: Catalog,
    claude: tempfile::TempDir,
}

impl World {
    /// `octo/hello` with `main` (README) and `feature` (README plus a greeting line).
    async fn start() -> World {
        let srv = tempfile::tempdir().unwrap();
        let (bare, seed) = hello_repository(srv.path());
        sys_git(&seed, &["checkout", "-q", "-b", "feature"]);
        std::fs::write(seed.join("README.md"), "hello\nhello again\n").unwrap();
        sys_git(&seed, &["commit", "-q", "-am", "greet again"]);
        sys_git(&seed, &["push", "-q", bare.to_str().unwrap(), "feature"]);
        let git = git_server::start(srv.path(), TOKEN);

        let fake = GithubFake::new("", BOT, TOKEN, REPO);
        fake.state().clone_origin = Some(git.url.clone());
        fake.state().repos[0].git_dir = Some(bare);
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
        let catalog = Catalog::new(h.runtime.clone(), Grants::default(), None);
        let claude = tempfile::tempdir().unwrap();
        let script = claude.path().join("claude");
        std::fs::copy(concat!(env!("CARGO_MANIFEST_DIR"), "/it/seed/claude.py"), &script).unwrap();
        World {
            h,
            fake,
            api,
            _git: git,
            srv,
            binding,
            catalog,
            claude,
        }
    }

    fn bare(&self) -> PathBuf {
        self.srv.path().join("octo/hello.git")
    }

    fn head(&self, branch: &str) -> String {
        sys_git(&self.bare(), &["rev-parse", branch]).trim().to_owned()
    }

    async fn pipeline(&self, text: &str) -> Pipeline {
        let text = text.replace("__CLAUDE__", &self.claude.path().join("claude").to_string_lossy());
        let types = self.catalog.describe_types().await.unwrap();
        powernode::pipeline::check("p.yml", &text, &types, None).unwrap_or_else(|e| panic!("{e}"))
    }

    /// One run in a fresh workspace.
    async fn run(&self, pipeline: &Pipeline, trigger: TriggerContext, run_id: &str) -> RunSummary {
        let workspace = tempfile::tempdir().unwrap();
        let req = RunRequest {
            run_id: run_id.into(),
            trigger,
            secrets: Default::default(),
            workspace: workspace.path().into(),
            forge: Some(self.binding.clone()),
            log_tap: None,
            run_url: Some(format!("http://127.0.0.1:8080/runs/{run_id}")),
        };
        let summary = run_pipeline(&self.catalog, pipeline, req, |_| {}).await;
        let logs: Vec<String> = summary
            .steps
            .iter()
            .flat_map(|s| s.log.iter().map(move |l| format!("[{}] {}", s.name, l.message)))
            .collect();
        assert!(!logs.join("\n").contains(TOKEN), "the token reached a step log");
        assert!(summary.succeeded(pipeline), "{summary:#?}\n{}", logs.join("\n"));
        summary
    }

    /// Each call the stand-in CLI got, as JSON.
    fn claude_calls(&self) -> Vec<serde_json::Value> {
        std::fs::read_to_string(self.claude.path().join("calls.jsonl"))
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }
}

fn output<'a>(summary: &'a RunSummary, step: &str) -> &'a powernode::runtime::StepSuccess {
    let result = summary.steps.iter().find(|s| s.name == step).unwrap();
    result.outcome.as_ref().unwrap_or_else(|e| panic!("{step}: {e}"))
}

fn repository() -> Repository {
    Repository {
        full_name: REPO.into(),
        default_branch: "main".into(),
        ..Default::default()
    }
}

#[tokio::test]
async fn the_seeds_review_pipeline_reviews_comments_once_and_sets_its_status() {
    let w = World::start().await;
    w.h.store
        .put_template(
            "pr-review",
            "Review pull request #{{ number }} ({{ pr_title }}):\n{{ get_diff.raw_output }}",
        )
        .await
        .unwrap();
    let number = w.fake.add_pull(REPO, "feature", "main", true);
    let pipeline = w.pipeline(&review()).await;
    let trigger = |action: &str| TriggerContext {
        event: "pull_request".into(),
        action: Some(action.into()),
        head_sha: Some(w.head("feature")),
        head_branch: Some("feature".into()),
        base_branch: Some("main".into()),
        number: Some(number),
        title: Some("Greet again".into()),
        is_pull_request: true,
        repository: repository(),
        ..TriggerContext::default()
    };

    let first = w.run(&pipeline, trigger("opened"), "run-1").await;
    assert_eq!(output(&first, "checkout").outputs["sha"], w.head("feature"));
    assert!(output(&first, "get_diff").raw_output.contains("+hello again"));
    let review = &output(&first, "review").raw_output;
    assert!(
        review.starts_with("Looks good. First look. I read: +hello again"),
        "{review}"
    );
    let calls = w.claude_calls();
    assert_eq!(calls.len(), 1);
    let prompt = calls[0]["prompt"].as_str().unwrap();
    assert!(
        prompt.starts_with(&format!("Review pull request #{number} (Greet again):\ndiff --git")),
        "{prompt}"
    );
    let args: Vec<&str> = calls[0]["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    assert!(args.windows(2).any(|w| w == ["--model", "claude-3-sonnet"]), "{args:?}");
    assert!(!args.contains(&"--resume"), "{args:?}");

    // A push to the pull request: the same comment is edited, the session is resumed.
    let second = w.run(&pipeline, trigger("synchronize"), "run-2").await;
    assert!(output(&second, "review").raw_output.starts_with("Looks good. Resumed."));
    let calls = w.claude_calls();
    let session = output(&first, "review").outputs["session_id"].clone();
    assert!(
        calls[1]["args"].as_array().unwrap().iter().any(|a| a == &session),
        "{calls:?}"
    );

    let comments = w.fake.comments(REPO, number);
    assert_eq!(comments.len(), 1, "{comments:?}");
    assert!(
        comments[0].body.contains("Looks good. Resumed."),
        "{}",
        comments[0].body
    );
    let state = w.fake.state();
    let ai: Vec<_> = state
        .statuses
        .iter()
        .filter(|(_, _, b)| b["context"] == "ai-review")
        .collect();
    assert_eq!(ai.len(), 2, "{:?}", state.statuses);
    for (_, sha, body) in ai {
        assert_eq!(sha, &w.head("feature"));
        assert_eq!(body["state"], "success");
        assert_eq!(body["description"], "AI review completed");
        // No target_url in the config: the run's page.
        assert!(
            body["target_url"]
                .as_str()
                .unwrap()
                .starts_with("http://127.0.0.1:8080/runs/run-")
        );
    }
}

#[tokio::test]
async fn an_issue_comment_becomes_one_pull_request_that_a_second_run_updates() {
    let w = World::start().await;
    let issue = w.fake.add_issue(REPO);
    let pipeline = w.pipeline(ISSUE_TO_PR).await;
    let trigger = TriggerContext {
        event: "issue_comment".into(),
        action: Some("created".into()),
        number: Some(issue),
        title: Some("Fix login form!".into()),
        body: Some("The form forgets the user.".into()),
        comment_body: Some("@claude please fix this".into()),
        repository: repository(),
        ..TriggerContext::default()
    };
    let branch = format!("claude/issue-{issue}-fix-login-form");

    let first = w.run(&pipeline, trigger.clone(), "run-1").await;
    let pr = output(&first, "create_pr");
    assert_eq!(pr.outputs["created"], "true", "{pr:?}");
    assert_eq!(pr.outputs["branch"], branch);
    let first_commit = w.head(&branch);
    assert_eq!(pr.outputs["commit"], first_commit);
    let changed = sys_git(&w.bare(), &["show", "--format=%s", "--name-only", &first_commit]);
    assert_eq!(changed.trim(), "feat: Fix login form!\n\nlogin.txt");
    let main_sha = w.head("main");
    assert_eq!(
        sys_git(&w.bare(), &["rev-parse", &format!("{first_commit}^")]).trim(),
        main_sha
    );

    let second = w.run(&pipeline, trigger, "run-2").await;
    let again = output(&second, "create_pr");
    assert_eq!(again.outputs["created"], "false", "{again:?}");
    assert_eq!(again.outputs["number"], pr.outputs["number"]);
    let second_commit = w.head(&branch);
    assert_ne!(second_commit, first_commit, "the branch was replaced by the new change");
    assert_eq!(again.outputs["commit"], second_commit);

    let state = w.fake.state();
    let pulls: Vec<_> = state.pulls.iter().filter(|p| p.head == branch).collect();
    assert_eq!(pulls.len(), 1, "{:?}", state.pulls);
    assert_eq!(pulls[0].title, "feat: Fix login form!");
    assert_eq!(pulls[0].body.as_deref(), Some("Fixed the login form (new session)."));
    assert_eq!(pulls[0].base, "main");
}

#[tokio::test]
async fn create_pr_with_nothing_changed_is_skipped_and_never_replaces_the_default_branch() {
    let w = World::start().await;
    let issue = w.fake.add_issue(REPO);
    let text = "name: p\nsteps:\n  - type: checkout\n  - type: create_pr\n    config:\n      title: nothing\n";
    let pipeline = w.pipeline(text).await;
    let trigger = TriggerContext {
        event: "issue_comment".into(),
        number: Some(issue),
        title: Some("Nothing to do".into()),
        repository: repository(),
        ..TriggerContext::default()
    };
    let summary = w.run(&pipeline, trigger.clone(), "run-1").await;
    let out = output(&summary, "create_pr");
    assert_eq!(out.outputs["skipped"], "true");
    assert!(out.raw_output.starts_with("nothing changed"), "{}", out.raw_output);
    assert!(w.fake.state().pulls.is_empty());

    // A step asking to replace `main` is refused by the host, whatever the plugin does.
    let text = "name: p\nsteps:\n  - type: checkout\n  - type: run_command\n    config:\n      command: echo x > x.txt\n  - type: create_pr\n    config:\n      title: t\n      branch: main\n      base: develop\n";
    let pipeline = w.pipeline(text).await;
    let before = w.head("main");
    let workspace = tempfile::tempdir().unwrap();
    let req = RunRequest {
        run_id: "run-2".into(),
        trigger,
        secrets: Default::default(),
        workspace: workspace.path().into(),
        forge: Some(w.binding.clone()),
        log_tap: None,
        run_url: None,
    };
    let summary = run_pipeline(&w.catalog, &pipeline, req, |_| {}).await;
    let error = summary.steps[2].outcome.as_ref().unwrap_err().to_string();
    assert!(
        error.contains("refusing to replace `main`: it is the repository's default branch"),
        "{error}"
    );
    assert_eq!(w.head("main"), before);
}

#[tokio::test]
async fn the_diff_variable_is_fetched_once_and_only_for_pull_requests() {
    let w = World::start().await;
    w.h.store
        .put_template("with-diff", "Review this:\n{{ diff }}")
        .await
        .unwrap();
    let number = w.fake.add_pull(REPO, "feature", "main", true);
    let text = "name: p\nsteps:\n  - type: run_command\n    config:\n      command: \"printf '%s' '{{ diff | length > 0 }}'\"\n  - type: claude_execute\n    config:\n      prompt_template_id: with-diff\n      cli_path: __CLAUDE__\n";
    let pipeline = w.pipeline(text).await;
    let pr = TriggerContext {
        event: "pull_request".into(),
        number: Some(number),
        head_sha: Some(w.head("feature")),
        is_pull_request: true,
        repository: repository(),
        ..TriggerContext::default()
    };
    let summary = w.run(&pipeline, pr, "run-1").await;
    assert_eq!(output(&summary, "run_command").raw_output, "True");
    let prompt = w.claude_calls()[0]["prompt"].as_str().unwrap().to_owned();
    assert!(prompt.starts_with("Review this:\ndiff --git a/README.md"), "{prompt}");
    assert!(prompt.contains("+new from"), "{prompt}");
    let fetched = w
        .api
        .requests()
        .iter()
        .filter(|r| r.header("accept") == Some("application/vnd.github.diff"))
        .count();
    assert_eq!(fetched, 1, "the diff is fetched once per run");

    // A push has no pull request: reading `diff` says it is not set.
    let push = TriggerContext {
        event: "push".into(),
        repository: repository(),
        ..TriggerContext::default()
    };
    let workspace = tempfile::tempdir().unwrap();
    let req = RunRequest {
        run_id: "run-2".into(),
        trigger: push,
        secrets: Default::default(),
        workspace: workspace.path().into(),
        forge: Some(w.binding.clone()),
        log_tap: None,
        run_url: None,
    };
    let summary = run_pipeline(&w.catalog, &pipeline, req, |_| {}).await;
    let error = summary.steps[0].outcome.as_ref().unwrap_err().to_string();
    assert!(
        error.contains("trigger variable `diff` is not set for this run"),
        "{error}"
    );
}
