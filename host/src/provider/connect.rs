//! The seed's `ProviderFactory.from_record`: a forge client from a `[[sources]]` record.

use std::sync::Arc;
use std::time::Duration;

use super::gitea::GiteaClient;
use super::github::GithubClient;
use super::gitlab::GitlabClient;
use super::http::RetryPolicy;
use super::{BotLogin, Forge, ForgeError, ForgeKind, RepoBinding};
use crate::config::{ConfigError, SourceConfig};

/// A source that cannot be connected.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// The record itself is unusable (no token, unreadable token file).
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
/// belongs to (`GET /user` on every forge), asked within [`WHO_AM_I_TIMEOUT`]. Fails when the
/// forge cannot be reached or will not say (a GitHub App installation token gets 403).
pub async fn bot_login(source: &SourceConfig) -> Result<BotLogin, ConnectError> {
    if let Some(login) = source.bot_login.as_deref().and_then(BotLogin::new) {
        return Ok(login);
    }
    let forge = client_with(source, WHO_AM_I_RETRY)?;
    let answer = match tokio::time::timeout(WHO_AM_I_TIMEOUT, forge.current_user()).await {
        Ok(answer) => answer,
        Err(_) => Err(ForgeError::Transport(format!(
            "no answer within {}s",
            WHO_AM_I_TIMEOUT.as_secs()
        ))),
    };
    answer
        .and_then(|login| {
            BotLogin::new(&login).ok_or_else(|| ForgeError::Transport("the forge answered with an empty login".into()))
        })
        .map_err(|error| ConnectError::WhoAmI {
            id: source.id.clone(),
            error,
        })
}

/// The client for `source`, with its token and the default retry policy.
pub fn client(source: &SourceConfig) -> Result<Arc<dyn Forge>, ConnectError> {
    client_with(source, RetryPolicy::default())
}

/// The client for `source`, with its token and `retry`.
pub fn client_with(source: &SourceConfig, retry: RetryPolicy) -> Result<Arc<dyn Forge>, ConnectError> {
    let token = source.read_token()?;
    let (url, token) = (source.api_url.as_str(), token.expose());
    let client: Result<Arc<dyn Forge>, ForgeError> = match source.kind {
        ForgeKind::Github => GithubClient::new(url, token, retry).map(|c| Arc::new(c) as Arc<dyn Forge>),
        ForgeKind::Gitea | ForgeKind::Forgejo => {
            GiteaClient::new(url, token, retry, source.kind).map(|c| Arc::new(c) as Arc<dyn Forge>)
        }
        ForgeKind::Gitlab => GitlabClient::new(url, token, retry).map(|c| Arc::new(c) as Arc<dyn Forge>),
    };
    client.map_err(|error| ConnectError::Forge {
        id: source.id.clone(),
        error,
    })
}

/// `source`'s client bound to repository `repo` (full name), for a run.
pub fn bind(source: &SourceConfig, repo: &str) -> Result<RepoBinding, ConnectError> {
    let forge = client(source)?;
    Ok(RepoBinding::new(
        forge,
        repo,
        source.bot_login.clone(),
        source.read_token()?,
    ))
}
