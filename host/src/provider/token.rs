//! Credentials that change while the server runs: a GitHub App's JWT (signed anew for each
//! request) and its installation tokens (refreshed before they expire). Whoever sends one
//! asks for it at each use, so a long run never sends a token that has expired.

use super::ForgeError;
use crate::secret::Secret;

/// A token asked for at each use.
#[async_trait::async_trait]
pub trait TokenSource: Send + Sync {
    /// The token to send now.
    async fn token(&self) -> Result<Secret, ForgeError>;

    /// The forge answered 401 to `token`: forget it, so the next [`TokenSource::token`]
    /// gets a new one. Nothing to do for a source that never caches.
    fn refused(&self, _token: &Secret) {}
}
