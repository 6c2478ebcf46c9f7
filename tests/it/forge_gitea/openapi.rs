//! Every request the Gitea client sends, checked against Gitea's own API description: the
//! method and path exist, query parameters and body properties are ones it declares.

use powernode::provider::{BotLogin, CommitState, Forge, StatusUpdate, Thread, comments};

use super::{REPO, new_pr, setup};

/// Operations the client uses, from Gitea's swagger description (`templates/swagger/v1_json.tmpl`,
/// v1.27.1): method, path, declared query parameters, body properties (of those declared, the
/// ones a Powernode request may carry).
#[rustfmt::skip]
const SWAGGER: &[(&str, &str, &[&str], &[&str])] = &[
    ("GET", "/user", &[], &[]),
    ("GET", "/repos/{owner}/{repo}", &[], &[]),
    ("POST", "/repos/{owner}/{repo}/statuses/{sha}", &[], &["context", "description", "state", "target_url"]),
    ("POST", "/repos/{owner}/{repo}/pulls", &[], &["base", "body", "head", "title"]),
    ("GET", "/repos/{owner}/{repo}/pulls", &["base_branch", "state", "sort", "milestone", "labels", "poster", "page", "limit"], &[]),
    ("GET", "/repos/{owner}/{repo}/pulls/{base}/{head}", &[], &[]),
    ("GET", "/repos/{owner}/{repo}/pulls/{index}", &[], &[]),
    ("GET", "/repos/{owner}/{repo}/pulls/{index}.{diffType}", &["binary"], &[]),
    ("GET", "/repos/{owner}/{repo}/issues/{index}/comments", &["since", "before"], &[]),
    ("POST", "/repos/{owner}/{repo}/issues/{index}/comments", &[], &["body"]),
    ("PATCH", "/repos/{owner}/{repo}/issues/comments/{id}", &[], &["body"]),
    ("POST", "/repos/{owner}/{repo}/actions/workflows/{workflow_id}/dispatches", &[], &["inputs", "ref"]),
];

/// Whether a raw path matches a template: `{x}` is one segment, `{index}.{diffType}` a number and `.diff`/`.patch`.
fn matches_template(template: &str, path: &str) -> bool {
    let (t, p): (Vec<&str>, Vec<&str>) = (template.split('/').collect(), path.split('/').collect());
    t.len() == p.len()
        && t.iter().zip(&p).all(|(t, p)| match *t {
            "{index}.{diffType}" => p
                .split_once('.')
                .is_some_and(|(n, ty)| n.parse::<u64>().is_ok() && ["diff", "patch"].contains(&ty)),
            "{index}" | "{id}" => p.parse::<u64>().is_ok(),
            t if t.starts_with('{') => !p.is_empty() && !p.contains('/'),
            t => t == *p,
        })
}

#[tokio::test]
async fn every_request_matches_giteas_api_description() {
    let (fake, server, client) = setup().await;
    let number = fake.add_pull(REPO, "deps", "main", true);
    fake.add_pull(REPO, "old/x", "main", false);
    let status = StatusUpdate {
        sha: "abc".into(),
        state: CommitState::Running,
        context: "ci".into(),
        description: Some("d".into()),
        target_url: Some("u".into()),
    };
    client.get_repository(REPO).await.unwrap();
    client.current_user().await.unwrap();
    client.update_status(REPO, &status).await.unwrap();
    client
        .create_pull_request(REPO, &new_pr("feat/y", "main"))
        .await
        .unwrap();
    client.find_pull_request(REPO, "old/x", "main").await.unwrap();
    client.get_pull_request(REPO, number).await.unwrap();
    client.get_pull_request_diff(REPO, number).await.unwrap();
    comments::upsert(
        &client,
        REPO,
        Thread::PullRequest(number),
        "m",
        "a",
        &BotLogin::new("powernode-bot").unwrap(),
    )
    .await
    .unwrap();
    comments::upsert(
        &client,
        REPO,
        Thread::PullRequest(number),
        "m",
        "b",
        &BotLogin::new("powernode-bot").unwrap(),
    )
    .await
    .unwrap();
    client
        .trigger_workflow(REPO, "ci.yml", "main", &[("k".into(), "v".into())])
        .await
        .unwrap();
    let requests = server.requests();
    assert_eq!(requests.len(), 14);
    for r in requests {
        let rest = r.path.strip_prefix("/api/v1").unwrap();
        let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
        let Some((_, _, params, props)) = SWAGGER
            .iter()
            .find(|(m, t, ..)| *m == r.method && matches_template(t, path))
        else {
            panic!("{} {} is not in Gitea's API description", r.method, r.path)
        };
        for (name, _) in query
            .split('&')
            .filter(|q| !q.is_empty())
            .filter_map(|q| q.split_once('='))
        {
            assert!(
                params.contains(&name),
                "query parameter {name} of {} {}",
                r.method,
                r.path
            );
        }
        for key in r.body.iter().flat_map(|b| b.as_object().unwrap().keys()) {
            assert!(
                props.contains(&key.as_str()),
                "body property {key} of {} {}",
                r.method,
                r.path
            );
        }
        if path.contains("/statuses/") {
            let state = r.body.as_ref().unwrap()["state"].as_str().unwrap();
            assert!(["pending", "success", "error", "failure", "warning", "skipped"].contains(&state));
        }
    }
}
