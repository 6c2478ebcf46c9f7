//! A GitHub App source against the fake GitHub: the JWT (checked by the fake with the App's
//! public key), the installation lookup and token exchange, the token cache and its
//! refresh, the bot login, and check runs with annotations sent 50 at a time.

use std::time::Duration;

use powernode::provider::checks::CHECK_RUNS_UNSUPPORTED;
use powernode::provider::{
    Annotation, AnnotationLevel, CheckConclusion, CheckOutput, CheckRunUpdate, CheckStatus, Forge, ForgeError,
    NewCheckRun, RepoBinding, connect,
};
use serde_json::Value;

use super::{Gh, REPO, TOKEN};
use crate::fakes::app_source;
use crate::fakes::github::{FakeApp, TEST_APP_PRIVATE_KEY};

const APP_ID: u64 = 314159;
const INSTALLATION: u64 = 4242;

/// A fake GitHub with the test App installed on [`REPO`], and the App's key in a file.
async fn start() -> (Gh, tempfile::TempDir) {
    let gh = Gh::start().await;
    gh.fake.state().app = Some(FakeApp::new(APP_ID, "powernode-ci", INSTALLATION, &[REPO]));
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("app.pem"), TEST_APP_PRIVATE_KEY).unwrap();
    (gh, dir)
}

fn bind(gh: &Gh, dir: &tempfile::TempDir, installation: Option<u64>) -> RepoBinding {
    let source = app_source(&gh.server.base_url, APP_ID, &dir.path().join("app.pem"), installation);
    connect::bind(&source, REPO).unwrap()
}

/// The claims of a recorded request's JWT, read without checking the signature (the fake did).
fn jwt_claims(authorization: &str) -> Value {
    let jwt = authorization.strip_prefix("Bearer ").unwrap();
    let mut v = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
    v.insecure_disable_signature_validation();
    v.validate_exp = false;
    v.required_spec_claims.clear();
    jsonwebtoken::decode::<Value>(jwt, &jsonwebtoken::DecodingKey::from_secret(&[]), &v)
        .unwrap()
        .claims
}

/// A request to the fake as the client sends them (GitHub's headers), with `bearer`.
fn raw(gh: &Gh, method: reqwest::Method, path: &str, bearer: &str) -> reqwest::RequestBuilder {
    reqwest::Client::new()
        .request(method, format!("{}{path}", gh.server.base_url))
        .bearer_auth(bearer)
        .header("user-agent", "powernode/test")
        .header("accept", "application/vnd.github+json")
        .header("x-github-api-version", "2022-11-28")
}

fn paths(gh: &Gh) -> Vec<String> {
    gh.server
        .requests()
        .into_iter()
        .map(|r| format!("{} {}", r.method, r.path))
        .collect()
}

#[tokio::test]
async fn an_app_finds_its_installation_trades_its_jwt_for_a_token_and_reuses_it() {
    let (gh, dir) = start().await;
    let binding = bind(&gh, &dir, None);
    for _ in 0..2 {
        let info = binding.forge().get_repository(REPO).await.unwrap();
        assert_eq!(info.full_name, REPO);
    }
    assert_eq!(
        paths(&gh),
        [
            "GET /repos/octo/hello/installation",
            &format!("POST /app/installations/{INSTALLATION}/access_tokens"),
            "GET /repos/octo/hello",
            "GET /repos/octo/hello",
        ]
    );
    let requests = gh.server.requests();
    let tokens = gh.fake.issued_tokens();
    assert_eq!(tokens.len(), 1, "one token, cached");
    for r in &requests[..2] {
        let claims = jwt_claims(r.header("authorization").unwrap());
        let (iat, exp) = (claims["iat"].as_u64().unwrap(), claims["exp"].as_u64().unwrap());
        assert_eq!(claims["iss"], APP_ID.to_string());
        assert!(exp - iat <= 660 && exp > iat, "{claims}");
    }
    for r in &requests[2..] {
        assert_eq!(
            r.header("authorization"),
            Some(format!("Bearer {}", tokens[0]).as_str())
        );
    }
    assert!(gh.fake.state().app.as_ref().unwrap().refused_jwts.is_empty());
    // git gets the same token, as `x-access-token`'s password.
    assert_eq!(binding.git_token().await.unwrap().expose(), tokens[0]);
    assert!(binding.fixed_token().is_none());
}

#[tokio::test]
async fn a_configured_installation_is_not_looked_up() {
    let (gh, dir) = start().await;
    let binding = bind(&gh, &dir, Some(INSTALLATION));
    binding.forge().get_repository(REPO).await.unwrap();
    assert_eq!(
        paths(&gh),
        [
            format!("POST /app/installations/{INSTALLATION}/access_tokens"),
            "GET /repos/octo/hello".into(),
        ]
    );
}

#[tokio::test]
async fn a_token_close_to_its_expiry_is_replaced_and_the_fake_refuses_it_once_expired() {
    let (gh, dir) = start().await;
    gh.fake.state().app.as_mut().unwrap().token_lifetime = Duration::from_secs(2);
    let binding = bind(&gh, &dir, Some(INSTALLATION));
    binding.forge().get_repository(REPO).await.unwrap();
    let first = gh.fake.issued_tokens()[0].clone();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    // Expired: GitHub's 401.
    let refused = raw(&gh, reqwest::Method::GET, &format!("/repos/{REPO}"), &first)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status().as_u16(), 401);
    assert!(refused.text().await.unwrap().contains("Bad credentials"));
    assert_eq!(gh.fake.state().app.as_ref().unwrap().expired_uses, 1);
    // The binding never sends it: with less than five minutes left, a token is replaced.
    binding.forge().get_repository(REPO).await.unwrap();
    assert_eq!(
        gh.fake.state().app.as_ref().unwrap().expired_uses,
        1,
        "not sent expired"
    );
    let tokens = gh.fake.issued_tokens();
    assert_eq!(tokens.len(), 2, "{tokens:?}");
    let last = gh
        .server
        .requests()
        .into_iter()
        .rev()
        .find(|r| r.path == "/repos/octo/hello")
        .unwrap();
    assert_eq!(
        last.header("authorization"),
        Some(format!("Bearer {}", tokens[1]).as_str())
    );
}

#[tokio::test]
async fn a_revoked_token_is_replaced_once_and_the_request_sent_again() {
    let (gh, dir) = start().await;
    let binding = bind(&gh, &dir, Some(INSTALLATION));
    binding.forge().get_repository(REPO).await.unwrap();
    // GitHub forgets the token (revoked): the next request gets 401, then goes again.
    gh.fake.state().app.as_mut().unwrap().tokens.clear();
    binding.forge().get_repository(REPO).await.unwrap();
    assert_eq!(gh.fake.issued_tokens().len(), 1, "the new token is the only one known");
    let repos = paths(&gh).iter().filter(|p| *p == "GET /repos/octo/hello").count();
    assert_eq!(repos, 3);
}

#[tokio::test]
async fn the_apps_bot_login_is_its_slug_with_bot() {
    let (gh, dir) = start().await;
    let source = app_source(&gh.server.base_url, APP_ID, &dir.path().join("app.pem"), None);
    assert_eq!(connect::bot_login(&source).await.unwrap().as_str(), "powernode-ci[bot]");
    assert_eq!(paths(&gh), ["GET /app"]);
}

#[tokio::test]
async fn a_jwt_for_another_app_or_with_a_bad_signature_is_refused() {
    let (gh, dir) = start().await;
    let other = app_source(&gh.server.base_url, APP_ID + 1, &dir.path().join("app.pem"), None);
    let err = connect::bind(&other, REPO)
        .unwrap()
        .forge()
        .get_repository(REPO)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, ForgeError::Authentication(m) if m.contains("'Issuer' claim")),
        "{err}"
    );
    // A JWT whose signature is not the App key's.
    let key = jsonwebtoken::EncodingKey::from_rsa_pem(TEST_APP_PRIVATE_KEY.as_bytes()).unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let claims = serde_json::json!({"iat": now - 60, "exp": now + 540, "iss": APP_ID.to_string()});
    let jwt = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256),
        &claims,
        &key,
    )
    .unwrap();
    let (head, _) = jwt.rsplit_once('.').unwrap();
    let forged = format!("{head}.{}", "A".repeat(342));
    let get = |jwt: String| raw(&gh, reqwest::Method::GET, "/app", &jwt).send();
    assert_eq!(get(jwt).await.unwrap().status().as_u16(), 200);
    let refused = get(forged).await.unwrap();
    assert_eq!(refused.status().as_u16(), 401);
    assert!(refused.text().await.unwrap().contains("could not be decoded"));
    let long = serde_json::json!({"iat": now - 60, "exp": now + 700, "iss": APP_ID.to_string()});
    let too_long =
        jsonwebtoken::encode(&jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256), &long, &key).unwrap();
    let refused = get(too_long).await.unwrap();
    assert_eq!(refused.status().as_u16(), 401);
    assert!(refused.text().await.unwrap().contains("too far in the future"));
}

fn annotations(n: u32) -> Vec<Annotation> {
    (0..n)
        .map(|i| Annotation {
            path: "src/lib.rs".into(),
            start_line: i + 1,
            end_line: i + 2,
            level: [
                AnnotationLevel::Notice,
                AnnotationLevel::Warning,
                AnnotationLevel::Failure,
            ][i as usize % 3],
            message: format!("finding {i}"),
        })
        .collect()
}

fn output(n: u32) -> CheckOutput {
    CheckOutput {
        title: format!("{n} findings"),
        summary: "See the **annotations**.".into(),
        annotations: annotations(n),
    }
}

fn sha(gh: &Gh) -> String {
    gh.fake.state().repos[0].branches[0].1.clone()
}

#[tokio::test]
async fn a_check_run_with_120_annotations_is_sent_in_three_requests() {
    let (gh, dir) = start().await;
    let binding = bind(&gh, &dir, Some(INSTALLATION));
    assert!(binding.forge().supports_check_runs());
    let run = NewCheckRun {
        name: "powernode/lint".into(),
        head_sha: sha(&gh),
        status: CheckStatus::Completed,
        conclusion: Some(CheckConclusion::Failure),
        details_url: Some("https://ci.example/runs/7".into()),
        external_id: Some("run-7".into()),
        output: Some(output(120)),
    };
    let created = binding.forge().create_check_run(REPO, &run).await.unwrap();
    let checks: Vec<_> = gh
        .server
        .requests()
        .into_iter()
        .filter(|r| r.path.contains("/check-runs"))
        .collect();
    let sent: Vec<(String, usize)> = checks
        .iter()
        .map(|r| {
            let n = r.body.as_ref().unwrap()["output"]["annotations"]
                .as_array()
                .unwrap()
                .len();
            (format!("{} {}", r.method, r.path), n)
        })
        .collect();
    let one = format!("/repos/octo/hello/check-runs/{}", created.id);
    assert_eq!(
        sent,
        [
            ("POST /repos/octo/hello/check-runs".to_string(), 50),
            (format!("PATCH {one}"), 50),
            (format!("PATCH {one}"), 20),
        ]
    );
    for r in &checks[1..] {
        let body = r.body.as_ref().unwrap();
        assert_eq!(
            body["output"]["title"], "120 findings",
            "GitHub wants the title with every output"
        );
        assert!(
            body.get("status").is_none() && body.get("conclusion").is_none(),
            "{body}"
        );
    }
    let first = checks[0].body.as_ref().unwrap();
    assert_eq!(first["external_id"], "run-7");
    assert_eq!(first["output"]["annotations"][1]["annotation_level"], "warning");
    let stored = &gh.fake.check_runs(REPO)[0];
    assert_eq!(stored.annotations.len(), 120);
    assert_eq!(stored.annotations[119]["message"], "finding 119");
    assert_eq!(
        (stored.status.as_str(), stored.conclusion.as_deref()),
        ("completed", Some("failure"))
    );
    assert_eq!(
        created.url,
        format!("https://github.example/octo/hello/runs/{}", created.id)
    );
}

#[tokio::test]
async fn a_check_run_goes_from_queued_to_completed_and_updates_append_annotations() {
    let (gh, dir) = start().await;
    let binding = bind(&gh, &dir, Some(INSTALLATION));
    let forge = binding.forge();
    let run = NewCheckRun {
        name: "powernode/ci".into(),
        head_sha: sha(&gh),
        status: CheckStatus::Queued,
        conclusion: None,
        details_url: None,
        external_id: None,
        output: None,
    };
    let created = forge.create_check_run(REPO, &run).await.unwrap();
    let start = CheckRunUpdate {
        status: Some(CheckStatus::InProgress),
        ..CheckRunUpdate::default()
    };
    forge.update_check_run(REPO, created.id, &start).await.unwrap();
    let end = CheckRunUpdate {
        status: Some(CheckStatus::Completed),
        conclusion: Some(CheckConclusion::Success),
        details_url: None,
        output: Some(output(60)),
    };
    forge.update_check_run(REPO, created.id, &end).await.unwrap();
    let stored = &gh.fake.check_runs(REPO)[0];
    assert_eq!(stored.requests, 4, "create, start, end with 50, the other 10");
    assert_eq!(stored.annotations.len(), 60);
    assert_eq!(stored.conclusion.as_deref(), Some("success"));
    let missing = CheckRunUpdate {
        status: Some(CheckStatus::Completed),
        ..CheckRunUpdate::default()
    };
    let err = forge.update_check_run(REPO, created.id, &missing).await.unwrap_err();
    assert!(matches!(err, ForgeError::Validation(_)), "{err}");
}

#[tokio::test]
async fn a_token_source_answers_check_runs_are_not_supported_without_asking_github() {
    let gh = Gh::start().await;
    let run = NewCheckRun {
        name: "powernode/ci".into(),
        head_sha: sha(&gh),
        status: CheckStatus::Queued,
        conclusion: None,
        details_url: None,
        external_id: None,
        output: None,
    };
    assert!(!gh.client.supports_check_runs());
    let err = gh.client.create_check_run(REPO, &run).await.unwrap_err();
    assert_eq!(err, ForgeError::Other(CHECK_RUNS_UNSUPPORTED.into()));
    let err = gh
        .client
        .update_check_run(REPO, 1, &CheckRunUpdate::default())
        .await
        .unwrap_err();
    assert_eq!(err, ForgeError::Other(CHECK_RUNS_UNSUPPORTED.into()));
    assert!(gh.server.requests().is_empty());
    // And GitHub itself refuses a personal token there.
    let refused = raw(&gh, reqwest::Method::POST, &format!("/repos/{REPO}/check-runs"), TOKEN)
        .json(&serde_json::json!({"name": "x", "head_sha": sha(&gh)}))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status().as_u16(), 403);
}

#[tokio::test]
async fn a_key_that_cannot_sign_is_refused_before_any_request() {
    let (gh, dir) = start().await;
    let public = dir.path().join("public.pem");
    std::fs::write(&public, include_str!("../fakes/github/test_app_key.pub.pem")).unwrap();
    let source = app_source(&gh.server.base_url, APP_ID, &public, None);
    let err = connect::check(&source).unwrap_err().to_string();
    assert!(
        err.contains("source `fake`: the private key is not an RSA private key"),
        "{err}"
    );
    let missing = app_source(&gh.server.base_url, APP_ID, &dir.path().join("nope.pem"), None);
    let err = connect::check(&missing).unwrap_err().to_string();
    assert!(err.contains("nope.pem"), "{err}");
    assert!(
        connect::check(&app_source(
            &gh.server.base_url,
            APP_ID,
            &dir.path().join("app.pem"),
            None
        ))
        .is_ok()
    );
    assert!(gh.server.requests().is_empty());
}
