//! The seed's `ProviderFactory.from_record`: a forge client from a `[[sources]]` record.

use std::sync::Arc;
use std::time::Duration;

use super::gitea::GiteaClient;
use super::github::GithubClient;
use super::github_app::{self, GithubApp, Installation, InstallationTokens, SharedError};
use super::gitlab::GitlabClient;
use super::http::RetryPolicy;
use super::{BotLogin, Forge, ForgeError, ForgeKind, GitToken, RepoBinding};
use crate::config::{AppAuth, ConfigError, SourceAuth, SourceConfig};

/// A source that cannot be connected.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// The record itself is unusable (no token, unreadable token or key file).
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The client could not be built (bad API URL, bad token characters).
    #[error("source `{id}`: {error}")]
    Forge {
        /// The source's id.
        id: String,
        /// Why.
        error: ForgeError,
    },
    /// A GitHub App source's private key is unusable.
    #[error("source `{id}`: {error}")]
    AppKey {
        /// The source's id.
        id: String,
        /// Why.
        error: github_app::KeyError,
    },
    /// The source has no `bot_login` and the forge did not say whose token it holds.
    #[error("source `{id}`: the forge did not say which account the token belongs to: {error}")]
    WhoAmI {
        /// The source's id.
        id: String,
        /// Why.
        error: ForgeError,
    },
}

/// How long [`bot_login`] waits for the forge's answer: `powernode serve` asks before it
/// listens, so a forge that does not answer must not hold the server back for long.
pub const WHO_AM_I_TIMEOUT: Duration = Duration::from_secs(10);

/// Retries of [`bot_login`]'s question: a few quick ones, for a forge that is briefly down.
const WHO_AM_I_RETRY: RetryPolicy = RetryPolicy {
    max_attempts: 3,
    base_delay: Duration::from_millis(250),
    max_delay: Duration::from_secs(2),
    budget: Duration::from_secs(5),
};

/// Our bot's login on `source`: its `bot_login`, else the account the forge says the token
/// belongs to (`GET /user` on every forge; a GitHub App is `<app-slug>[bot]` from `GET
/// /app`), asked within [`WHO_AM_I_TIMEOUT`]. Fails when the forge cannot be reached or will
/// not say (a GitHub App installation token given as `token` gets 403).
pub async fn bot_login(source: &SourceConfig) -> Result<BotLogin, ConnectError> {
    if let Some(login) = source.bot_login.as_deref().and_then(BotLogin::new) {
        return Ok(login);
    }
    let asked = match source.auth()? {
        SourceAuth::App(auth) => {
            let app = app(source, &auth)?;
            tokio::time::timeout(WHO_AM_I_TIMEOUT, async move { app.bot_login().await }).await
        }
        SourceAuth::Token(_) => {
            let forge = client_with(source, WHO_AM_I_RETRY)?;
            tokio::time::timeout(WHO_AM_I_TIMEOUT, async move { forge.current_user().await }).await
        }
    };
    let answer = asked.unwrap_or_else(|_| {
        Err(ForgeError::Transport(format!(
            "no answer within {}s",
            WHO_AM_I_TIMEOUT.as_secs()
        )))
    });
    answer
        .and_then(|login| {
            BotLogin::new(&login).ok_or_else(|| ForgeError::Transport("the forge answered with an empty login".into()))
        })
        .map_err(|error| ConnectError::WhoAmI {
            id: source.id.clone(),
            error,
        })
}

/// Checks what can be checked without the network: a token source's token is readable, a
/// GitHub App source's private key is readable and is an RSA key.
pub fn check(source: &SourceConfig) -> Result<(), ConnectError> {
    match source.auth()? {
        SourceAuth::App(auth) => app(source, &auth).map(|_| ()),
        SourceAuth::Token(_) => Ok(()),
    }
}

/// The client for `source`, with its token and the default retry policy. A GitHub App
/// source without `installation_id` needs a repository: use [`bind`].
pub fn client(source: &SourceConfig) -> Result<Arc<dyn Forge>, ConnectError> {
    client_with(source, RetryPolicy::default())
}

/// The client for `source`, with its token and `retry`.
pub fn client_with(source: &SourceConfig, retry: RetryPolicy) -> Result<Arc<dyn Forge>, ConnectError> {
    connection(source, None, retry).map(|(forge, _)| forge)
}

/// `source`'s client bound to repository `repo` (full name), for a run.
pub fn bind(source: &SourceConfig, repo: &str) -> Result<RepoBinding, ConnectError> {
    let (forge, token) = connection(source, Some(repo), RetryPolicy::default())?;
    Ok(RepoBinding::with_git_token(
        forge,
        repo,
        source.bot_login.clone(),
        token,
    ))
}

/// The client for `source` (acting on `repo`, when known) and what git authenticates with.
fn connection(
    source: &SourceConfig,
    repo: Option<&str>,
    retry: RetryPolicy,
) -> Result<(Arc<dyn Forge>, GitToken), ConnectError> {
    let forge_error = |error| ConnectError::Forge {
        id: source.id.clone(),
        error,
    };
    let url = source.api_url.as_str();
    let token = match source.auth()? {
        SourceAuth::App(auth) => {
            let app = app(source, &auth)?;
            let installation = match (auth.installation_id, repo) {
                (Some(id), _) => Installation::Id(id),
                (None, Some(repo)) => Installation::OfRepo(repo.to_string()),
                (None, None) => {
                    return Err(ConnectError::Config(ConfigError::Source {
                        id: source.id.clone(),
                        message: "without `installation_id`, a GitHub App source acts only on a repository".into(),
                    }));
                }
            };
            let tokens = Arc::new(InstallationTokens::new(app, installation));
            let client = GithubClient::for_installation(url, tokens.clone(), retry).map_err(forge_error)?;
            return Ok((Arc::new(client), GitToken::Fresh(tokens)));
        }
        SourceAuth::Token(token) => token,
    };
    let secret = token.expose();
    let client: Result<Arc<dyn Forge>, ForgeError> = match source.kind {
        ForgeKind::Github => GithubClient::new(url, secret, retry).map(|c| Arc::new(c) as Arc<dyn Forge>),
        ForgeKind::Gitea | ForgeKind::Forgejo => {
            GiteaClient::new(url, secret, retry, source.kind).map(|c| Arc::new(c) as Arc<dyn Forge>)
        }
        ForgeKind::Gitlab => GitlabClient::new(url, secret, retry).map(|c| Arc::new(c) as Arc<dyn Forge>),
    };
    Ok((client.map_err(forge_error)?, GitToken::Fixed(token)))
}

/// The process's shared [`GithubApp`] of an App source.
fn app(source: &SourceConfig, auth: &AppAuth) -> Result<Arc<GithubApp>, ConnectError> {
    github_app::shared(&source.api_url, &auth.app_id, &auth.private_key).map_err(|e| match e {
        SharedError::Key(error) => ConnectError::AppKey {
            id: source.id.clone(),
            error,
        },
        SharedError::Forge(error) => ConnectError::Forge {
            id: source.id.clone(),
            error,
        },
    })
}
