//! The seed's `ProviderFactory.from_record`: a forge client from a `[[sources]]` record.

use std::sync::Arc;

use super::gitea::GiteaClient;
use super::github::GithubClient;
use super::gitlab::GitlabClient;
use super::http::RetryPolicy;
use super::{Forge, ForgeError, ForgeKind, RepoBinding};
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
}

/// The client for `source`, with its token and the default retry policy.
pub fn client(source: &SourceConfig) -> Result<Arc<dyn Forge>, ConnectError> {
    let token = source.read_token()?;
    let (url, token, retry) = (source.api_url.as_str(), token.expose(), RetryPolicy::default());
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
