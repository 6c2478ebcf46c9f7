//! The fake GitHub's App side: the JWT an App authenticates with (RS256, checked with the
//! App's public key; `iat`, `exp` at most ten minutes ahead, `iss` the App's id), the App
//! endpoints (`GET /app`, `GET /repos/{o}/{r}/installation`, `POST
//! /app/installations/{id}/access_tokens`), and installation tokens that expire: a token
//! past its `expires_at` gets 401 "Bad credentials", as on GitHub.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::http::Method;
use axum::response::Response;
use serde_json::json;

use super::{GithubState, error, ok};

/// The test App's public key; its private half is `test_app_key.pem` (see `TEST_KEYS.md`).
pub const TEST_APP_PUBLIC_KEY: &str = include_str!("test_app_key.pub.pem");
/// The private key the test App signs with: a throwaway test key, see `TEST_KEYS.md`.
pub const TEST_APP_PRIVATE_KEY: &str = include_str!("test_app_key.pem");

/// A GitHub App registered on the fake.
#[derive(Debug, Clone)]
pub struct FakeApp {
    /// The App ID (the JWT's `iss`).
    pub id: u64,
    /// Its slug: its bot is `<slug>[bot]`.
    pub slug: String,
    /// The public key JWTs are checked with (PEM).
    pub public_key: String,
    /// Installations: (id, repositories it covers).
    pub installations: Vec<(u64, Vec<String>)>,
    /// How long an installation token lives (GitHub: one hour).
    pub token_lifetime: Duration,
    /// Tokens issued: (token, installation, expires at).
    pub tokens: Vec<(String, u64, SystemTime)>,
    /// JWTs refused, with GitHub's message.
    pub refused_jwts: Vec<String>,
    /// Requests that came with an installation token past its expiry (and got 401).
    pub expired_uses: usize,
}

impl FakeApp {
    /// App `id` named `slug`, checked with the test public key, installed as installation
    /// `installation` on `repos`, its tokens living an hour.
    pub fn new(id: u64, slug: &str, installation: u64, repos: &[&str]) -> FakeApp {
        FakeApp {
            id,
            slug: slug.into(),
            public_key: TEST_APP_PUBLIC_KEY.into(),
            installations: vec![(installation, repos.iter().map(|r| r.to_string()).collect())],
            token_lifetime: Duration::from_secs(3600),
            tokens: Vec::new(),
            refused_jwts: Vec::new(),
            expired_uses: 0,
        }
    }

    /// The installation covering `repo`.
    fn installation_of(&self, repo: &str) -> Option<u64> {
        self.installations
            .iter()
            .find(|(_, repos)| repos.iter().any(|r| r.eq_ignore_ascii_case(repo)))
            .map(|(id, _)| *id)
    }
}

/// Who a request authenticates as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Caller {
    /// The personal token the fake was made with.
    User,
    /// An installation token of this installation.
    Installation(u64),
    /// The App itself (a valid JWT).
    App,
}

/// Whether the path is one only the App's JWT may call.
pub(super) fn is_app_path(path: &str) -> bool {
    path == "/app" || path.starts_with("/app/") || (path.starts_with("/repos/") && path.ends_with("/installation"))
}

/// Checks the JWT as GitHub does; the 401 message it would answer otherwise.
pub(super) fn check_jwt(app: &FakeApp, jwt: &str) -> Result<(), String> {
    let key = jsonwebtoken::DecodingKey::from_rsa_pem(app.public_key.as_bytes()).map_err(|e| e.to_string())?;
    let header = jsonwebtoken::decode_header(jwt).map_err(|_| "A JSON web token could not be decoded".to_string())?;
    if header.alg != jsonwebtoken::Algorithm::RS256 {
        return Err("A JSON web token could not be decoded".into());
    }
    let mut v = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
    v.validate_exp = false;
    v.required_spec_claims.clear();
    let claims = jsonwebtoken::decode::<serde_json::Value>(jwt, &key, &v)
        .map_err(|_| "A JSON web token could not be decoded".to_string())?
        .claims;
    let now = now_secs();
    let (Some(iat), Some(exp)) = (claims["iat"].as_u64(), claims["exp"].as_u64()) else {
        return Err(
            "'Issued at' claim ('iat') must be an Integer representing the time that the assertion was issued".into(),
        );
    };
    if iat > now {
        return Err(
            "'Issued at' claim ('iat') must be an Integer representing the time that the assertion was issued".into(),
        );
    }
    if exp <= now {
        return Err("'Expiration time' claim ('exp') must be a numeric value representing the future time at which the assertion expires".into());
    }
    if exp > now + 600 {
        return Err("'Expiration time' claim ('exp') is too far in the future".into());
    }
    let iss = match &claims["iss"] {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Number(n) => n.to_string(),
        _ => String::new(),
    };
    if iss != app.id.to_string() {
        return Err(format!("'Issuer' claim ('iss') `{iss}` is not this App's id"));
    }
    Ok(())
}

/// Who `token` (a bearer token that is no JWT) is: an unexpired installation token.
pub(super) fn installation_caller(app: &FakeApp, token: &str) -> Option<Result<u64, ()>> {
    let (_, installation, expires) = app.tokens.iter().find(|(t, _, _)| t == token)?;
    Some(if SystemTime::now() < *expires {
        Ok(*installation)
    } else {
        Err(())
    })
}

/// The App endpoints, for a caller with a valid JWT.
pub(super) fn route(s: &mut GithubState, method: &Method, path: &str) -> Response {
    let Some(app) = s.app.as_mut() else {
        return error(404, "Not Found");
    };
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match (method.clone(), parts.as_slice()) {
        (Method::GET, ["app"]) => ok(
            200,
            json!({"id": app.id, "slug": app.slug, "name": app.slug, "owner": {"login": "octo", "type": "Organization"},
                "permissions": {"checks": "write", "contents": "read", "pull_requests": "write", "statuses": "write", "issues": "write"},
                "events": ["check_run", "issue_comment", "pull_request", "push"]}),
        ),
        (Method::GET, ["repos", o, r, "installation"]) => match app.installation_of(&format!("{o}/{r}")) {
            Some(id) => ok(
                200,
                json!({"id": id, "app_id": app.id, "app_slug": app.slug, "account": {"login": o}, "target_type": "Organization", "repository_selection": "selected"}),
            ),
            None => error(404, "Not Found"),
        },
        (Method::POST, ["app", "installations", id, "access_tokens"]) => {
            let Some(id) = id
                .parse::<u64>()
                .ok()
                .filter(|id| app.installations.iter().any(|(i, _)| i == id))
            else {
                return error(404, "Not Found");
            };
            let expires = SystemTime::now() + app.token_lifetime;
            let token = format!(
                "ghs_{:036}",
                app.tokens.len() as u128 * 7_919 + now_nanos() % 1_000_000_007
            );
            app.tokens.push((token.clone(), id, expires));
            ok(
                201,
                json!({"token": token, "expires_at": humantime::format_rfc3339_seconds(expires).to_string(), "repository_selection": "selected",
                    "permissions": {"checks": "write", "contents": "read", "pull_requests": "write", "statuses": "write", "issues": "write", "metadata": "read"}}),
            )
        }
        _ => error(404, "Not Found"),
    }
}

fn now_secs() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

fn now_nanos() -> u128 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos()
}
