//! The GitHub client's comments: posted to the issue comments API, listed page after page
//! by `Link: rel="next"` (never to a host outside the API base), edited in place, upserted by
//! marker and author, and truncated to GitHub's 65,536 characters.

use std::sync::Arc;

use powernode::config::Secret;
use powernode::provider::comments;
use powernode::provider::{BotLogin, Forge, ForgeError, RepoBinding, Thread};
use serde_json::json;

use super::{BOT, Gh, REPO, assert_github_headers};

#[tokio::test]
async fn posting_a_comment_sends_its_body_to_the_issue_comments() {
    let gh = Gh::start().await;
    let n = gh.fake.add_issue(REPO);
    let c = gh
        .client
        .post_comment(REPO, Thread::PullRequest(n), "hello")
        .await
        .unwrap();
    assert_eq!((c.body.as_str(), c.author.as_str()), ("hello", BOT));
    assert_eq!(
        c.url,
        format!("https://github.example/octo/hello/issues/1#issuecomment-{}", c.id)
    );
    let r = gh.only();
    assert_eq!(
        (r.method.as_str(), r.path.as_str()),
        ("POST", "/repos/octo/hello/issues/1/comments")
    );
    assert_eq!(r.body, Some(json!({"body": "hello"})));
}

#[tokio::test]
async fn listing_comments_follows_link_next_past_the_first_page() {
    let gh = Gh::start().await;
    let n = gh.fake.add_issue(REPO);
    (0..250).for_each(|i| _ = gh.fake.add_comment(REPO, n, "someone", &format!("c{i}")));
    let all = gh.client.list_comments(REPO, Thread::Issue(n)).await.unwrap();
    let bodies: Vec<String> = all.iter().map(|c| c.body.clone()).collect();
    assert_eq!(bodies, (0..250).map(|i| format!("c{i}")).collect::<Vec<_>>());
    let requests = gh.server.requests();
    requests.iter().for_each(assert_github_headers);
    let paths: Vec<&str> = requests.iter().map(|r| r.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "/repos/octo/hello/issues/1/comments?per_page=100",
            "/repositories/1/issues/1/comments?per_page=100&page=2",
            "/repositories/1/issues/1/comments?per_page=100&page=3",
        ]
    );
}

#[tokio::test]
async fn a_next_link_outside_the_api_base_is_not_followed_with_the_token() {
    let gh = Gh::start().await;
    gh.fake.state().link_origin = Some("https://evil.example".into());
    let n = gh.fake.add_issue(REPO);
    (0..101).for_each(|i| _ = gh.fake.add_comment(REPO, n, "someone", &format!("c{i}")));
    let err = gh.client.list_comments(REPO, Thread::Issue(n)).await.unwrap_err();
    assert!(
        matches!(&err, ForgeError::Transport(m) if m.contains("refusing to follow a link outside")),
        "{err}"
    );
    gh.only();
}

#[tokio::test]
async fn updating_a_comment_patches_it_in_place() {
    let gh = Gh::start().await;
    let n = gh.fake.add_issue(REPO);
    let id = gh.fake.add_comment(REPO, n, BOT, "old");
    let c = gh
        .client
        .update_comment(REPO, Thread::Issue(n), id, "new")
        .await
        .unwrap();
    assert_eq!((c.id, c.body.as_str()), (id, "new"));
    let r = gh.only();
    assert_eq!(
        (r.method.as_str(), r.path.as_str()),
        ("PATCH", format!("/repos/octo/hello/issues/comments/{id}").as_str())
    );
    assert_eq!(r.body, Some(json!({"body": "new"})));
}

#[tokio::test]
async fn upsert_creates_the_comment_once_then_edits_it_in_place() {
    let gh = Gh::start().await;
    let n = gh.fake.add_issue(REPO);
    let first = comments::upsert(
        &gh.client,
        REPO,
        Thread::PullRequest(n),
        "review",
        "v1",
        &BotLogin::new(BOT).unwrap(),
    )
    .await
    .unwrap();
    let second = comments::upsert(
        &gh.client,
        REPO,
        Thread::PullRequest(n),
        "review",
        "v2",
        &BotLogin::new(BOT).unwrap(),
    )
    .await
    .unwrap();
    assert_eq!(first.id, second.id);
    let stored = gh.fake.comments(REPO, n);
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].body, "v2\n\n<!-- powernode:review -->");
    let calls: Vec<(String, String)> = gh.server.requests().into_iter().map(|r| (r.method, r.path)).collect();
    let list = (
        "GET".to_string(),
        "/repos/octo/hello/issues/1/comments?per_page=100".to_string(),
    );
    assert_eq!(calls[0], list);
    assert_eq!(calls[1], ("POST".into(), "/repos/octo/hello/issues/1/comments".into()));
    assert_eq!(calls[2], list);
    assert_eq!(
        calls[3],
        (
            "PATCH".into(),
            format!("/repos/octo/hello/issues/comments/{}", first.id)
        )
    );
}

#[tokio::test]
async fn upsert_leaves_a_marker_pasted_by_another_user_alone() {
    let gh = Gh::start().await;
    let n = gh.fake.add_issue(REPO);
    let theirs = gh
        .fake
        .add_comment(REPO, n, "mallory", "fake\n\n<!-- powernode:review -->");
    let ours = comments::upsert(
        &gh.client,
        REPO,
        Thread::PullRequest(n),
        "review",
        "real",
        &BotLogin::new(BOT).unwrap(),
    )
    .await
    .unwrap();
    assert_ne!(ours.id, theirs);
    let stored = gh.fake.comments(REPO, n);
    assert_eq!(stored[0].body, "fake\n\n<!-- powernode:review -->");
    assert_eq!(
        (stored[1].author.as_str(), stored[1].body.as_str()),
        (BOT, "real\n\n<!-- powernode:review -->")
    );
}

#[tokio::test]
async fn a_comment_without_author_is_never_taken_for_ours() {
    // `"user": null` on GitHub; with an empty bot login it used to count as ours and be
    // edited. An empty login is no login: the binding asks the forge who it is instead.
    let gh = Gh::start().await;
    let n = gh.fake.add_issue(REPO);
    let orphan = gh.fake.add_comment(REPO, n, "", "orphan\n\n<!-- powernode:review -->");
    let listed = gh.client.list_comments(REPO, Thread::Issue(n)).await.unwrap();
    assert_eq!(listed[0].author, "", "GitHub's `user: null`");
    let binding = RepoBinding::new(
        Arc::new(gh.client.clone()),
        REPO,
        Some(String::new()),
        Secret::new(super::TOKEN),
    );
    let ours = binding
        .upsert_comment(Thread::PullRequest(n), "review", "real")
        .await
        .unwrap();
    assert_ne!(ours.id, orphan);
    assert_eq!(binding.bot_login().await.unwrap().as_str(), BOT);
    let stored = gh.fake.comments(REPO, n);
    assert_eq!(stored[0].body, "orphan\n\n<!-- powernode:review -->", "left alone");
    assert_eq!(
        (stored[1].author.as_str(), stored[1].body.as_str()),
        (BOT, "real\n\n<!-- powernode:review -->")
    );
}

#[tokio::test]
async fn upsert_finds_its_comment_beyond_the_first_page() {
    let gh = Gh::start().await;
    let n = gh.fake.add_issue(REPO);
    (0..120).for_each(|i| _ = gh.fake.add_comment(REPO, n, "someone", &format!("c{i}")));
    let id = gh.fake.add_comment(REPO, n, BOT, "old\n\n<!-- powernode:review -->");
    let c = comments::upsert(
        &gh.client,
        REPO,
        Thread::PullRequest(n),
        "review",
        "new",
        &BotLogin::new(BOT).unwrap(),
    )
    .await
    .unwrap();
    assert_eq!(c.id, id);
    assert_eq!(gh.fake.comments(REPO, n).len(), 121);
}

#[tokio::test]
async fn an_over_long_comment_is_truncated_to_githubs_limit_keeping_the_marker() {
    let gh = Gh::start().await;
    let n = gh.fake.add_issue(REPO);
    let body = "x".repeat(100_000);
    let c = comments::upsert(
        &gh.client,
        REPO,
        Thread::PullRequest(n),
        "log",
        &body,
        &BotLogin::new(BOT).unwrap(),
    )
    .await
    .unwrap();
    assert_eq!(gh.client.comment_limit(), 65_536);
    assert!(c.body.chars().count() <= 65_536);
    assert!(
        c.body.ends_with("<!-- powernode:log -->") && c.body.contains("truncated"),
        "{}",
        &c.body[65_000..]
    );
    let sent = gh.server.last().body.unwrap()["body"].as_str().unwrap().chars().count();
    assert!(sent <= 65_536 && sent > 65_000, "{sent}");
}
