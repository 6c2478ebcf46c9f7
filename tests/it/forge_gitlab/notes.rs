//! GitLab notes through the client: merge request and issue notes, every page read oldest
//! first without system notes, upsert by marker and author, truncation to GitLab's limit.

use powernode::provider::{BotLogin, Forge, Thread, comments};
use serde_json::json;

use super::{API, PROJECT, assert_request, setup};

#[tokio::test]
async fn merge_request_notes_are_posted_listed_and_edited() {
    let (fake, server, client) = setup().await;
    let iid = fake.add_merge_request(PROJECT, "deps", "main", 42);
    let thread = Thread::PullRequest(iid);
    let posted = client.post_comment(PROJECT, thread, "hello").await.unwrap();
    assert_eq!(
        (posted.body.as_str(), posted.author.as_str()),
        ("hello", "powernode-bot")
    );
    let url = format!("{}/grp/sub/app/-/merge_requests/1#note_{}", server.base_url, posted.id);
    assert_eq!(posted.url, url);
    assert_request(
        &server.last(),
        "POST",
        &format!("{API}/merge_requests/1/notes"),
        Some(json!({"body": "hello"})),
    );
    assert_eq!(
        client.list_comments(PROJECT, thread).await.unwrap(),
        vec![posted.clone()]
    );
    let list = format!("{API}/merge_requests/1/notes?sort=asc&order_by=created_at&per_page=100&page=1");
    assert_request(&server.last(), "GET", &list, None);
    let edited = client.update_comment(PROJECT, thread, posted.id, "bye").await.unwrap();
    assert_eq!((edited.id, edited.body.as_str()), (posted.id, "bye"));
    let path = format!("{API}/merge_requests/1/notes/{}", posted.id);
    assert_request(&server.last(), "PUT", &path, Some(json!({"body": "bye"})));
}

#[tokio::test]
async fn issue_notes_use_the_issue_notes_api() {
    let (fake, server, client) = setup().await;
    let iid = fake.add_issue(PROJECT);
    let posted = client
        .post_comment(PROJECT, Thread::Issue(iid), "on the issue")
        .await
        .unwrap();
    assert!(
        posted
            .url
            .ends_with(&format!("/grp/sub/app/-/issues/1#note_{}", posted.id))
    );
    assert_request(
        &server.last(),
        "POST",
        &format!("{API}/issues/1/notes"),
        Some(json!({"body": "on the issue"})),
    );
    client
        .update_comment(PROJECT, Thread::Issue(iid), posted.id, "edited")
        .await
        .unwrap();
    let path = format!("{API}/issues/1/notes/{}", posted.id);
    assert_request(&server.last(), "PUT", &path, Some(json!({"body": "edited"})));
}

#[tokio::test]
async fn every_page_of_notes_is_read_oldest_first_without_system_notes() {
    let (fake, server, client) = setup().await;
    let iid = fake.add_merge_request(PROJECT, "deps", "main", 42);
    for i in 0..250 {
        let system = i % 50 == 0;
        fake.add_note(PROJECT, "merge_requests", iid, "someone", &format!("note {i}"), system);
    }
    let listed = client.list_comments(PROJECT, Thread::PullRequest(iid)).await.unwrap();
    assert_eq!(listed.len(), 245);
    assert_eq!(
        (listed[0].body.as_str(), listed[244].body.as_str()),
        ("note 1", "note 249")
    );
    let requests = server.requests();
    assert_eq!(requests.len(), 3);
    for (i, r) in requests.iter().enumerate() {
        let path = format!(
            "{API}/merge_requests/1/notes?sort=asc&order_by=created_at&per_page=100&page={}",
            i + 1
        );
        assert_request(r, "GET", &path, None);
    }
}

#[tokio::test]
async fn upsert_creates_once_then_edits_in_place_and_ignores_a_copied_marker() {
    let (fake, server, client) = setup().await;
    let iid = fake.add_merge_request(PROJECT, "deps", "main", 42);
    let thread = Thread::PullRequest(iid);
    let tag = comments::marker_tag("review").unwrap();
    let copied = fake.add_note(
        PROJECT,
        "merge_requests",
        iid,
        "mallory",
        &format!("quoting\n\n{tag}"),
        false,
    );
    let first = comments::upsert(
        &client,
        PROJECT,
        thread,
        "review",
        "v1",
        &BotLogin::new("powernode-bot").unwrap(),
    )
    .await
    .unwrap();
    assert_ne!(first.id, copied);
    assert_eq!(server.last().method, "POST");
    let second = comments::upsert(
        &client,
        PROJECT,
        thread,
        "review",
        "v2",
        &BotLogin::new("powernode-bot").unwrap(),
    )
    .await
    .unwrap();
    assert_eq!(second.id, first.id);
    let path = format!("{API}/merge_requests/1/notes/{}", first.id);
    assert_request(
        &server.last(),
        "PUT",
        &path,
        Some(json!({"body": format!("v2\n\n{tag}")})),
    );
    let bodies: Vec<String> = fake.state().notes.iter().map(|n| n.body.clone()).collect();
    assert_eq!(bodies, [format!("quoting\n\n{tag}"), format!("v2\n\n{tag}")]);
}

#[tokio::test]
async fn over_long_bodies_are_truncated_to_the_limit() {
    let (fake, server, client) = setup().await;
    let iid = fake.add_merge_request(PROJECT, "deps", "main", 42);
    let body = "x".repeat(client.comment_limit() + 10);
    client
        .post_comment(PROJECT, Thread::PullRequest(iid), &body)
        .await
        .unwrap();
    let sent = server.last().body.unwrap()["body"].as_str().unwrap().to_string();
    assert!(sent.chars().count() <= 1_000_000);
    assert!(sent.contains("characters cut to fit the forge's limit of 1000000"));
}
