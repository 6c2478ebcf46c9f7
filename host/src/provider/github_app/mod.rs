//! GitHub Apps: a source that authenticates as an App instead of with a token.
//!
//! The App proves itself with a JWT signed by its private key ([`AppKey`]), made anew for
//! each request, and trades it for an installation token (`POST
//! /app/installations/{id}/access_tokens`), which is what every repository call and git
//! then send. The installation is the configured one, or the repository's (`GET
//! /repos/{owner}/{repo}/installation`). Tokens live an hour; they are cached per
//! installation, shared by every binding of the process ([`shared`]), and replaced once
//! less than [`REFRESH_MARGIN`] is left. No token is ever logged.

mod expiry;
mod jwt;

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex};
use std::time::SystemTime;

use reqwest::Method;
use reqwest::header::{ACCEPT, AUTHORIZATION, HeaderMap, HeaderName, HeaderValue};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use tokio::sync::OnceCell;

pub use expiry::{Expiring, REFRESH_MARGIN, format_rfc3339, parse_rfc3339};
pub use jwt::{AppKey, KeyError};

use super::ForgeError;
use super::github::{API_VERSION, MEDIA_JSON, repo_path};
use super::http::{ApiClient, RetryPolicy};
use super::token::TokenSource;
use crate::secret::Secret;

/// One GitHub App on one API base, with its caches.
pub struct GithubApp {
    key: AppKey,
    /// Authenticated as the App (the JWT).
    api: ApiClient,
    slug: OnceCell<String>,
    /// Installation of each repository found so far (lower-cased full name).
    installations: Mutex<HashMap<String, u64>>,
    /// The current token of each installation.
    tokens: Mutex<HashMap<u64, Expiring>>,
    /// One token exchange at a time, so concurrent calls share one new token.
    exchange: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for GithubApp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GithubApp")
            .field("app_id", &self.key.app_id())
            .field("api", &self.api)
            .finish_non_exhaustive()
    }
}

/// The headers every GitHub request carries besides auth.
pub(crate) fn github_headers() -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(ACCEPT, HeaderValue::from_static(MEDIA_JSON));
    headers.insert(
        HeaderName::from_static("x-github-api-version"),
        HeaderValue::from_static(API_VERSION),
    );
    headers
}

#[derive(Deserialize)]
struct GhApp {
    slug: String,
}

#[derive(Deserialize)]
struct GhInstallation {
    id: u64,
}

#[derive(Deserialize)]
struct GhAccessToken {
    token: String,
    expires_at: String,
}

/// The App's JWT, signed for each request.
struct Jwt(AppKey);

#[async_trait::async_trait]
impl TokenSource for Jwt {
    async fn token(&self) -> Result<Secret, ForgeError> {
        self.0
            .sign(SystemTime::now())
            .map_err(|e| ForgeError::Authentication(e.to_string()))
    }
}

impl GithubApp {
    /// App `key` on `api_url` (`https://api.github.com`, or `https://HOST/api/v3`).
    pub fn new(api_url: &str, key: AppKey, retry: RetryPolicy) -> Result<GithubApp, ForgeError> {
        let jwt = Arc::new(Jwt(key.clone()));
        let api = ApiClient::with_token_source(api_url, AUTHORIZATION, "Bearer", jwt, github_headers(), retry)?;
        Ok(GithubApp {
            key,
            api,
            slug: OnceCell::new(),
            installations: Mutex::new(HashMap::new()),
            tokens: Mutex::new(HashMap::new()),
            exchange: tokio::sync::Mutex::new(()),
        })
    }

    /// The App's id.
    pub fn app_id(&self) -> &str {
        self.key.app_id()
    }

    /// The App's bot account, `<slug>[bot]` (`GET /app`, asked once).
    pub async fn bot_login(&self) -> Result<String, ForgeError> {
        let slug = self
            .slug
            .get_or_try_init(|| async {
                let app: GhApp = self.api.json(Method::GET, "/app", &[], None).await?;
                Ok::<_, ForgeError>(app.slug)
            })
            .await?;
        Ok(format!("{slug}[bot]"))
    }

    /// The installation of the App on `repo` (`owner/name`), asked once per repository.
    pub async fn installation_of(&self, repo: &str) -> Result<u64, ForgeError> {
        let key = repo.to_ascii_lowercase();
        if let Some(id) = self.installations.lock().expect("installations lock").get(&key) {
            return Ok(*id);
        }
        let path = format!("{}/installation", repo_path(repo)?);
        let found: GhInstallation = self
            .api
            .json(Method::GET, &path, &[], None)
            .await
            .map_err(|e| match e {
                ForgeError::NotFound(m) => {
                    ForgeError::NotFound(format!("the GitHub App is not installed on {repo}: {m}"))
                }
                e => e,
            })?;
        self.installations
            .lock()
            .expect("installations lock")
            .insert(key, found.id);
        Ok(found.id)
    }

    /// A token of `installation` with more than [`REFRESH_MARGIN`] left, exchanging the
    /// JWT for a new one when the cached one is older.
    pub async fn installation_token(&self, installation: u64) -> Result<Secret, ForgeError> {
        if let Some(token) = self.cached(installation) {
            return Ok(token);
        }
        let _one_at_a_time = self.exchange.lock().await;
        if let Some(token) = self.cached(installation) {
            return Ok(token);
        }
        let path = format!("/app/installations/{installation}/access_tokens");
        let answer: GhAccessToken = self.api.json(Method::POST, &path, &[], None).await?;
        let token = Expiring::new(Secret::new(answer.token), &answer.expires_at, SystemTime::now());
        tracing::debug!(
            app = self.app_id(),
            installation,
            expires_at = %format_rfc3339(token.expires_at),
            "new installation token"
        );
        let secret = token.token.clone();
        self.tokens.lock().expect("tokens lock").insert(installation, token);
        Ok(secret)
    }

    fn cached(&self, installation: u64) -> Option<Secret> {
        let tokens = self.tokens.lock().expect("tokens lock");
        tokens
            .get(&installation)
            .filter(|t| t.fresh_at(SystemTime::now()))
            .map(|t| t.token.clone())
    }

    /// Drops `token` of `installation` if it is still the cached one.
    fn forget(&self, installation: u64, token: &Secret) {
        let mut tokens = self.tokens.lock().expect("tokens lock");
        if tokens.get(&installation).is_some_and(|t| &t.token == token) {
            tokens.remove(&installation);
        }
    }
}

/// Which installation a binding's tokens belong to.
#[derive(Debug, Clone)]
pub enum Installation {
    /// The configured `installation_id`.
    Id(u64),
    /// The App's installation on this repository, looked up once.
    OfRepo(String),
}

/// The installation tokens of one binding, asked for at each request and each git command.
#[derive(Debug, Clone)]
pub struct InstallationTokens {
    app: Arc<GithubApp>,
    installation: Installation,
}

impl InstallationTokens {
    /// Tokens of `installation` of `app`.
    pub fn new(app: Arc<GithubApp>, installation: Installation) -> Self {
        InstallationTokens { app, installation }
    }

    async fn id(&self) -> Result<u64, ForgeError> {
        match &self.installation {
            Installation::Id(id) => Ok(*id),
            Installation::OfRepo(repo) => self.app.installation_of(repo).await,
        }
    }
}

#[async_trait::async_trait]
impl TokenSource for InstallationTokens {
    async fn token(&self) -> Result<Secret, ForgeError> {
        let id = self.id().await?;
        self.app.installation_token(id).await
    }

    fn refused(&self, token: &Secret) {
        let id = match &self.installation {
            Installation::Id(id) => Some(*id),
            Installation::OfRepo(repo) => self
                .app
                .installations
                .lock()
                .expect("installations lock")
                .get(&repo.to_ascii_lowercase())
                .copied(),
        };
        if let Some(id) = id {
            self.app.forget(id, token);
        }
    }
}

/// An App of the process: API base, App id, SHA-256 of the private key.
type AppIdentity = (String, String, [u8; 32]);

/// Apps of this process: every binding of a source shares one token cache, however often
/// the source is bound.
static APPS: LazyLock<Mutex<HashMap<AppIdentity, Arc<GithubApp>>>> = LazyLock::new(Default::default);

/// The process's one [`GithubApp`] for App `app_id` with private key `pem` on `api_url`
/// (a new key, as after a rotation, makes a new one with its own caches).
pub fn shared(api_url: &str, app_id: &str, pem: &Secret) -> Result<Arc<GithubApp>, SharedError> {
    let digest: [u8; 32] = Sha256::digest(pem.expose().as_bytes()).into();
    let id = (api_url.trim_end_matches('/').to_string(), app_id.to_string(), digest);
    let mut apps = APPS.lock().expect("apps lock");
    if let Some(app) = apps.get(&id) {
        return Ok(app.clone());
    }
    let key = AppKey::new(app_id, pem)?;
    let app = Arc::new(GithubApp::new(api_url, key, RetryPolicy::default())?);
    apps.insert(id, app.clone());
    Ok(app)
}

/// Why an App could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum SharedError {
    /// The private key is unusable.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// The API client could not be built (a bad API URL).
    #[error(transparent)]
    Forge(#[from] ForgeError),
}
