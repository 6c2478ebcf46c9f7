//! Fixture tests: real payloads with the headers each forge sends, their signatures, and a
//! snapshot of the normalized outcome (`snapshots/`); then the mapping rules one by one.

use http::{HeaderMap, HeaderName, HeaderValue};
use serde_json::{Value, json};

use super::*;

/// The secret every fixture's signature headers (and GitLab's `X-Gitlab-Token`) were made with.
pub(super) const SECRET: &str = "It's a Secret to Everybody";
/// The GitLab signing token of `merge_request_hook.update_oldrev`, signed at [`SIGNED_AT`].
const SIGNING_TOKEN: &str = "whsec_4WNWcfKmfFjBK8DVdeURKSCLxYAAvmBeUrDEpPEq+OI=";
const SIGNED_AT: u64 = 1_700_000_000;

/// One fixture: forge folder, file stem, body, headers as JSON.
pub(super) struct Fixture {
    /// Folder under `fixtures/`: the forge.
    pub forge: &'static str,
    /// File stem: `<name>.json` and `<name>.headers.json`.
    pub name: &'static str,
    /// The payload's raw bytes.
    pub body: &'static [u8],
    /// The headers as a JSON object.
    pub headers: &'static str,
}

impl Fixture {
    /// The fixture's headers as the server would receive them.
    pub fn header_map(&self) -> HeaderMap {
        header_map(&serde_json::from_str(self.headers).expect("headers fixture is JSON"))
    }
}

/// A header map from a JSON object of names to string values.
pub(super) fn header_map(pairs: &Value) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in pairs.as_object().expect("headers are an object") {
        let name = HeaderName::from_bytes(name.as_bytes()).unwrap();
        map.insert(name, HeaderValue::from_str(value.as_str().unwrap()).unwrap());
    }
    map
}

macro_rules! fixtures {
    ($($test:ident => $forge:literal / $name:literal,)*) => {
        /// Every fixture, for the property tests.
        pub(super) const FIXTURES: &[Fixture] = &[$(Fixture {
            forge: $forge,
            name: $name,
            body: include_bytes!(concat!("fixtures/", $forge, "/", $name, ".json")),
            headers: include_str!(concat!("fixtures/", $forge, "/", $name, ".headers.json")),
        },)*];

        $(
            #[test]
            fn $test() {
                let fixture = FIXTURES.iter().find(|f| f.forge == $forge && f.name == $name).unwrap();
                insta::assert_json_snapshot!(stringify!($test), check_fixture(fixture));
            }
        )*
    };
}

fixtures! {
    github_pull_request_opened => "github" / "pull_request.opened",
    github_pull_request_synchronize => "github" / "pull_request.synchronize",
    github_pull_request_closed => "github" / "pull_request.closed",
    github_pull_request_closed_merged => "github" / "pull_request.closed.merged",
    github_push => "github" / "push",
    github_push_tag => "github" / "push.tag",
    github_push_tag_deleted => "github" / "push.tag_deleted",
    github_issue_comment_on_issue => "github" / "issue_comment.created.issue",
    github_issue_comment_on_pr => "github" / "issue_comment.created.pr",
    github_ping => "github" / "ping",
    github_check_run_rerequested => "github" / "check_run.rerequested",
    github_check_suite_rerequested => "github" / "check_suite.rerequested",
    github_installation_created => "github" / "installation.created",
    gitea_push => "gitea" / "push",
    gitea_pull_request_opened => "gitea" / "pull_request.opened",
    gitea_pull_request_synchronized => "gitea" / "pull_request.synchronized",
    gitea_pull_request_closed_merged => "gitea" / "pull_request.closed.merged",
    gitea_issue_comment_on_pr => "gitea" / "issue_comment.created.pr",
    gitea_issue_comment_on_issue => "gitea" / "issue_comment.created.issue",
    forgejo_push => "forgejo" / "push",
    forgejo_pull_request_opened => "forgejo" / "pull_request.opened",
    forgejo_create_tag => "forgejo" / "create.tag",
    gitlab_push => "gitlab" / "push_hook",
    gitlab_push_all_commits => "gitlab" / "push_hook.all_commits",
    gitlab_tag_push => "gitlab" / "tag_push_hook",
    gitlab_merge_request_open => "gitlab" / "merge_request_hook",
    gitlab_merge_request_update_oldrev => "gitlab" / "merge_request_hook.update_oldrev",
    gitlab_merge_request_merge => "gitlab" / "merge_request_hook.merge",
    gitlab_note_on_merge_request => "gitlab" / "note_hook_merge_request",
    gitlab_note_on_issue => "gitlab" / "note_hook_issue",
}

/// Detects the forge, checks the signature round trip with the forge's real header, normalizes.
fn check_fixture(fixture: &Fixture) -> Outcome {
    let headers = fixture.header_map();
    let provider = detect(&headers).expect("fixture headers name the forge");
    assert_eq!(provider.as_str(), fixture.forge);
    let check = |body: &[u8], secret| verify_at(provider, &headers, body, Some(secret), SIGNED_AT);
    assert_eq!(check(fixture.body, SECRET), Ok(()));
    assert!(check(fixture.body, "not the secret").is_err());
    if provider != Provider::Gitlab {
        // The HMAC covers the raw bytes: one more space is another body.
        let tampered = [fixture.body, b" "].concat();
        assert!(matches!(check(&tampered, SECRET), Err(SignatureError::Mismatch(_))));
    }
    let outcome = normalize(provider, &headers, fixture.body).expect("fixture normalizes");
    let full: Value = serde_json::from_slice(fixture.body).unwrap();
    assert_eq!(
        normalize_payload(provider, &headers, &full).as_ref(),
        Ok(&outcome),
        "sparse and full parse differ"
    );
    let round_trip: Outcome = serde_json::from_value(serde_json::to_value(&outcome).unwrap()).unwrap();
    assert_eq!(round_trip, outcome);
    outcome
}

fn fixture(forge: &str, name: &str) -> &'static Fixture {
    FIXTURES.iter().find(|f| f.forge == forge && f.name == name).unwrap()
}

/// Normalizes a fixture after `edit` changed its JSON body.
fn edited(forge: &str, name: &str, edit: impl FnOnce(&mut Value)) -> Result<Outcome, NormalizeError> {
    let fixture = fixture(forge, name);
    let mut body: Value = serde_json::from_slice(fixture.body).unwrap();
    edit(&mut body);
    let headers = fixture.header_map();
    normalize(detect(&headers).unwrap(), &headers, &serde_json::to_vec(&body).unwrap())
}

fn event(outcome: Result<Outcome, NormalizeError>) -> Event {
    match outcome {
        Ok(Outcome::Event(event)) => event,
        other => panic!("expected an event, got {other:?}"),
    }
}

fn ignored(outcome: Result<Outcome, NormalizeError>) -> String {
    match outcome {
        Ok(Outcome::Ignored { reason }) => reason,
        other => panic!("expected ignored, got {other:?}"),
    }
}

#[test]
fn gitlab_signing_token_round_trip() {
    let fixture = fixture("gitlab", "merge_request_hook.update_oldrev");
    let headers = fixture.header_map();
    let check = |body: &[u8], now| verify_at(Provider::Gitlab, &headers, body, Some(SIGNING_TOKEN), now);
    assert_eq!(check(fixture.body, SIGNED_AT + 60), Ok(()));
    assert_eq!(
        check(fixture.body, SIGNED_AT + 3600),
        Err(SignatureError::StaleTimestamp)
    );
    assert_eq!(
        check(b"{}", SIGNED_AT),
        Err(SignatureError::Mismatch("webhook-signature"))
    );
}

#[test]
fn actions_map_to_one_vocabulary() {
    let action = |forge, name| event(edited(forge, name, |_| {})).action.unwrap().as_str();
    assert_eq!(action("github", "pull_request.synchronize"), "synchronize");
    assert_eq!(action("gitea", "pull_request.synchronized"), "synchronize");
    assert_eq!(action("gitlab", "merge_request_hook.update_oldrev"), "synchronize");
    assert_eq!(action("github", "pull_request.closed"), "closed");
    assert_eq!(action("github", "pull_request.closed.merged"), "merged");
    assert_eq!(action("gitea", "pull_request.closed.merged"), "merged");
    assert_eq!(action("gitlab", "merge_request_hook.merge"), "merged");
    assert_eq!(action("gitlab", "merge_request_hook"), "opened");
    assert_eq!(action("gitlab", "note_hook_issue"), "created");
}

#[test]
fn gitlab_update_without_oldrev_is_an_edit() {
    let outcome = edited("gitlab", "merge_request_hook.update_oldrev", |body| {
        body["object_attributes"].as_object_mut().unwrap().remove("oldrev");
    });
    let event = event(outcome);
    assert_eq!(
        (event.action, event.forge_action.as_deref()),
        (Some(Action::Edited), Some("update"))
    );
    assert_eq!(event.before, None);
}

#[test]
fn unhandled_actions_and_events_are_ignored_not_errors() {
    let set = |path: &'static str, value: &'static str| {
        move |body: &mut Value| *body.pointer_mut(path).unwrap() = json!(value)
    };
    assert!(ignored(edited("github", "pull_request.opened", set("/action", "labeled"))).contains("labeled"));
    assert!(ignored(edited("github", "issue_comment.created.pr", set("/action", "deleted"))).contains("deleted"));
    assert!(ignored(edited("gitea", "pull_request.opened", set("/action", "label_updated"))).contains("label_updated"));
    let approved = set("/object_attributes/action", "approved");
    assert!(ignored(edited("gitlab", "merge_request_hook", approved)).contains("approved"));
    assert!(
        ignored(edited(
            "gitlab",
            "note_hook_issue",
            set("/object_attributes/noteable_type", "Commit")
        ))
        .contains("Commit")
    );
    let system = |body: &mut Value| body["object_attributes"]["system"] = json!(true);
    assert!(ignored(edited("gitlab", "note_hook_issue", system)).contains("system"));
    let confidential = set("/event_type", "confidential_note");
    assert!(ignored(edited("gitlab", "note_hook_issue", confidential)).contains("confidential"));
    assert!(ignored(edited("gitlab", "note_hook_issue", set("/object_kind", "pipeline"))).contains("pipeline"));
    assert!(ignored(edited("forgejo", "create.tag", |_| {})).contains("create"));
    let completed = set("/action", "completed");
    assert_eq!(
        ignored(edited("github", "check_run.rerequested", completed)),
        "check_run action `completed` is not handled"
    );
    let requested = set("/action", "requested");
    assert_eq!(
        ignored(edited("github", "check_suite.rerequested", requested)),
        "check_suite action `requested` is not handled"
    );
    let deleted = set("/action", "deleted");
    assert_eq!(
        ignored(edited("github", "installation.created", deleted)),
        "GitHub App installation `deleted` acknowledged"
    );
    let mut headers = fixture("github", "ping").header_map();
    headers.insert("x-github-event", HeaderValue::from_static("star"));
    let star = normalize(Provider::Github, &headers, br#"{"action":"created"}"#);
    assert_eq!(star, Ok(Outcome::ignored("GitHub event `star` is not handled")));
}

#[test]
fn ref_deletions_are_ignored() {
    let zero = "0000000000000000000000000000000000000000";
    let delete = |body: &mut Value| body["after"] = json!(zero);
    assert_eq!(ignored(edited("github", "push", delete)), "branch `main` was deleted");
    assert_eq!(
        ignored(edited("github", "push.tag_deleted", |_| {})),
        "tag `simple-tag` was deleted"
    );
    assert_eq!(ignored(edited("gitea", "push", delete)), "branch `main` was deleted");
    assert_eq!(
        ignored(edited("gitlab", "push_hook", delete)),
        "branch `master` was deleted"
    );
    assert_eq!(
        ignored(edited("gitlab", "tag_push_hook", delete)),
        "tag `v22` was deleted"
    );
}

#[test]
fn gitlab_changed_files_are_unknown_past_the_listed_commits() {
    // push_hook lists 2 commits of total_commits_count 4.
    assert_eq!(event(edited("gitlab", "push_hook", |_| {})).changed_files, None);
    let complete = event(edited("gitlab", "push_hook", |body| {
        body["total_commits_count"] = json!(2)
    }));
    assert_eq!(
        complete.changed_files,
        Some(vec!["CHANGELOG".into(), "app/controller/application.rb".into()])
    );
    let files = event(edited("gitlab", "push_hook.all_commits", |_| {})).changed_files;
    assert_eq!(files, Some(vec!["cmd/cli/main.go".to_owned()]));
}

#[test]
fn gitea_changed_files_are_unknown_past_the_listed_commits() {
    // Gitea lists a few commits (setting FeedMaxCommitNum) and counts them all in total_commits.
    assert_eq!(
        event(edited("gitea", "push", |body| body["total_commits"] = json!(6))).changed_files,
        None
    );
    let empty = event(edited("github", "push", |body| body["commits"] = json!([])));
    assert_eq!(empty.changed_files, None);
}

#[test]
fn fork_pull_requests_are_flagged() {
    let github_fork = event(edited("github", "pull_request.opened", |body| {
        body["pull_request"]["head"]["repo"]["id"] = json!(1);
        body["pull_request"]["head"]["repo"]["full_name"] = json!("someone/Hello-World");
    }));
    assert_eq!(github_fork.is_fork, Some(true));
    let deleted_fork = event(edited("github", "pull_request.opened", |body| {
        body["pull_request"]["head"]["repo"] = Value::Null
    }));
    assert_eq!(deleted_fork.is_fork, Some(true));
    let gitea_fork = event(edited("gitea", "pull_request.synchronized", |body| {
        body["pull_request"]["head"]["repo_id"] = json!(7)
    }));
    assert_eq!(gitea_fork.is_fork, Some(true));
    let gitlab_fork = event(edited("gitlab", "merge_request_hook.merge", |body| {
        body["object_attributes"]["source_project_id"] = json!(1);
    }));
    assert_eq!(gitlab_fork.is_fork, Some(true));
    assert_eq!(
        event(edited("github", "pull_request.opened", |_| {})).is_fork,
        Some(false)
    );
    assert_eq!(
        event(edited("github", "issue_comment.created.pr", |_| {})).is_fork,
        None
    );
    assert_eq!(event(edited("forgejo", "pull_request.opened", |_| {})).is_fork, None);
}

#[test]
fn newer_gitea_comments_carry_the_pull_request() {
    let pr: Value = serde_json::from_slice(fixture("gitea", "pull_request.synchronized").body).unwrap();
    let event = event(edited("gitea", "issue_comment.created.issue", |body| {
        body["is_pull"] = json!(true);
        body["pull_request"] = pr["pull_request"].clone();
    }));
    assert!(event.is_pull_request);
    assert_eq!(
        event.head_sha.as_deref(),
        Some("788ed8d02d3b7fcfcf6386dbcbca696aa1d4dc25")
    );
    assert_eq!(
        (event.base_branch.as_deref(), event.is_fork),
        (Some("main"), Some(false))
    );
    assert_eq!(event.comment_body.as_deref(), Some("Got it"));
}

#[test]
fn missing_required_fields_are_errors_that_name_them() {
    let drop = |pointer: &'static str, key: &'static str| {
        move |body: &mut Value| {
            body.pointer_mut(pointer).unwrap().as_object_mut().unwrap().remove(key);
        }
    };
    let missing = |path: &str| Err(NormalizeError::MissingField(path.to_owned()));
    assert_eq!(
        edited("github", "pull_request.opened", drop("/pull_request/head", "sha")),
        missing("pull_request.head.sha")
    );
    assert_eq!(
        edited("github", "push", drop("", "repository")),
        missing("repository.full_name")
    );
    assert_eq!(
        event(edited("gitea", "push", drop("/sender", "login"))).sender,
        "test-user"
    );
    assert_eq!(edited("gitea", "push", drop("", "sender")), missing("sender.login"));
    assert_eq!(
        edited("gitlab", "note_hook_issue", drop("/object_attributes", "note")),
        missing("object_attributes.note")
    );
    assert_eq!(
        edited("gitlab", "push_hook", drop("", "object_kind")),
        missing("object_kind")
    );
    assert_eq!(
        edited("github", "check_run.rerequested", drop("/check_run", "head_sha")),
        missing("check_run.head_sha")
    );
    assert_eq!(
        edited("github", "check_suite.rerequested", drop("/check_suite", "head_sha")),
        missing("check_suite.head_sha")
    );
    let no_external_id = event(edited(
        "github",
        "check_run.rerequested",
        drop("/check_run", "external_id"),
    ));
    assert_eq!(no_external_id.rerun.and_then(|r| r.external_id), None);
    let not_an_object = normalize(Provider::Github, &fixture("github", "push").header_map(), b"[1, 2]");
    assert_eq!(not_an_object, missing("ref"));
}

#[test]
fn truncated_bodies_are_invalid_json() {
    for fixture in FIXTURES {
        let headers = fixture.header_map();
        let provider = detect(&headers).unwrap();
        let end = fixture.body.iter().rposition(|b| *b == b'}').unwrap();
        for cut in [0, 1, end / 2, end] {
            let result = normalize(provider, &headers, &fixture.body[..cut]);
            assert!(
                matches!(result, Err(NormalizeError::InvalidJson(_))),
                "{} cut at {cut}",
                fixture.name
            );
        }
    }
}

#[test]
fn form_encoded_bodies_and_missing_event_headers_are_errors() {
    let headers = fixture("gitea", "push").header_map();
    let form = normalize(Provider::Gitea, &headers, b"payload=%7B%22ref%22%3A%22x%22%7D");
    assert_eq!(form, Err(NormalizeError::FormEncoded));
    let body = fixture("gitea", "push").body;
    assert_eq!(
        normalize(Provider::Gitea, &HeaderMap::new(), body),
        Err(NormalizeError::MissingHeader("X-Gitea-Event"))
    );
    assert_eq!(
        normalize(Provider::Forgejo, &HeaderMap::new(), body),
        Err(NormalizeError::MissingHeader("X-Forgejo-Event"))
    );
    // Forgejo without its own headers (older versions) falls back to Gitea's.
    let forgejo = event(normalize(Provider::Forgejo, &headers, body));
    assert_eq!(
        (forgejo.provider, forgejo.delivery_id.is_some()),
        (Provider::Forgejo, true)
    );
}

#[test]
fn gitlab_delivery_id_prefers_the_idempotency_key() {
    let fixture = fixture("gitlab", "note_hook_issue");
    let mut headers = fixture.header_map();
    let key = headers["idempotency-key"].to_str().unwrap().to_owned();
    assert_eq!(
        event(normalize(Provider::Gitlab, &headers, fixture.body)).delivery_id,
        Some(key)
    );
    headers.remove("idempotency-key");
    let uuid = headers["x-gitlab-event-uuid"].to_str().unwrap().to_owned();
    assert_eq!(
        event(normalize(Provider::Gitlab, &headers, fixture.body)).delivery_id,
        Some(uuid)
    );
}
