//! The seed's forge steps as built-in plugins, through the catalog, on a fake GitHub:
//! `post_comment` (with header, footer and an in-place marker) and `update_status`.

use std::sync::Arc;
use std::time::Duration;

use powernode::catalog::Catalog;
use powernode::model::TriggerContext;
use powernode::policy::Grants;
use powernode::provider::RepoBinding;
use powernode::provider::github::GithubClient;
use powernode::provider::http::RetryPolicy;
use powernode::runtime::StepFailure;
use powernode::secret::Secret;
use serde_json::json;

use crate::fakes::FakeServer;
use crate::fakes::github::GithubFake;
use crate::harness::Harness;

const TOKEN: &str = "ghp-steps-test-77aa";
const BOT: &str = "powernode-bot";
const REPO: &str = "octo/hello";
const MINUTE: Duration = Duration::from_secs(60);

async fn forge() -> (GithubFake, FakeServer, Arc<RepoBinding>) {
    let fake = GithubFake::new("", BOT, TOKEN, REPO);
    let api = FakeServer::start(fake.router()).await;
    let client = GithubClient::new(&api.base_url, TOKEN, RetryPolicy::default()).unwrap();
    let binding = RepoBinding::new(Arc::new(client), REPO, Some(BOT.into()), Secret::new(TOKEN));
    (fake, api, Arc::new(binding))
}

fn pull_request(number: u64) -> TriggerContext {
    TriggerContext {
        event: "pull_request".into(),
        number: Some(number),
        head_sha: Some("0123456789abcdef0123456789abcdef01234567".into()),
        is_pull_request: true,
        ..TriggerContext::default()
    }
}

#[tokio::test]
async fn post_comment_frames_the_body_and_edits_its_comment_in_place() {
    let h = Harness::new();
    let (fake, _api, binding) = forge().await;
    let number = fake.add_issue(REPO);
    let step = Catalog::new(h.runtime.clone(), Grants::default(), None)
        .get("post_comment")
        .await
        .unwrap();
    let config = |body: &str| json!({"body": body, "header": "## 🤖 AI Analysis", "footer": "---\n*Powered by Claude*", "marker": "claude-review"});
    for body in ["first review", "second review"] {
        let report = h
            .run_triggered(&step, config(body), pull_request(number), MINUTE, Some(binding.clone()))
            .await;
        let out = report.outcome.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(out.outputs["number"], number.to_string());
    }
    let state = fake.state();
    let ours: Vec<_> = state
        .comments
        .iter()
        .filter(|c| c.body.contains("AI Analysis"))
        .collect();
    assert_eq!(ours.len(), 1, "one comment, edited: {:?}", state.comments);
    assert!(
        ours[0]
            .body
            .contains("## 🤖 AI Analysis\n\nsecond review\n\n---\n*Powered by Claude*"),
        "{}",
        ours[0].body
    );
}

#[tokio::test]
async fn post_comment_without_a_thread_says_where_to_set_it() {
    let h = Harness::new();
    let (_fake, _api, binding) = forge().await;
    let step = Catalog::new(h.runtime.clone(), Grants::default(), None)
        .get("post_comment")
        .await
        .unwrap();
    let report = h
        .run_triggered(
            &step,
            json!({"body": "hi"}),
            TriggerContext::default(),
            MINUTE,
            Some(binding),
        )
        .await;
    assert!(
        matches!(&report.outcome, Err(StepFailure::InvalidConfig(m)) if m.contains("set `number`")),
        "{:?}",
        report.outcome
    );
}

#[tokio::test]
async fn update_status_sets_the_status_on_the_triggers_commit() {
    let h = Harness::new();
    let (fake, _api, binding) = forge().await;
    let step = Catalog::new(h.runtime.clone(), Grants::default(), None)
        .get("update_status")
        .await
        .unwrap();
    let sha = fake.add_branch(REPO, "feature");
    let config = json!({"state": "success", "context": "claude/review", "description": "Review complete"});
    let trigger = TriggerContext {
        head_sha: Some(sha.clone()),
        ..pull_request(7)
    };
    let report = h.run_triggered(&step, config, trigger, MINUTE, Some(binding)).await;
    report.outcome.unwrap_or_else(|e| panic!("{e}"));
    let state = fake.state();
    let (repo, got, body) = state.statuses.last().expect("a status").clone();
    assert_eq!((repo.as_str(), got.as_str()), (REPO, sha.as_str()));
    assert_eq!(body["state"], "success");
    assert_eq!(body["context"], "claude/review");
    assert_eq!(body["description"], "Review complete");
}
