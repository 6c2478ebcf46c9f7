//! A forge connection bound to one repository: what a run's `provider` and `git` calls act
//! on, with the host's credentials. The bot login and repository facts are fetched once.

use std::sync::Arc;

use tokio::sync::OnceCell;

use super::token::TokenSource;
use super::{BotLogin, Comment, Forge, ForgeError, ForgeKind, RepositoryInfo, Thread, comments};
use crate::secret::Secret;

/// What git authenticates with.
#[derive(Clone)]
pub enum GitToken {
    /// The source's own token.
    Fixed(Secret),
    /// A token that changes (a GitHub App's installation token), asked for at each use.
    Fresh(Arc<dyn TokenSource>),
}

/// One repository on one forge, as a run sees it.
pub struct RepoBinding {
    forge: Arc<dyn Forge>,
    repo: String,
    token: GitToken,
    bot_login: OnceCell<BotLogin>,
    info: OnceCell<RepositoryInfo>,
}

impl std::fmt::Debug for RepoBinding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RepoBinding")
            .field("kind", &self.forge.kind())
            .field("repo", &self.repo)
            .finish()
    }
}

impl RepoBinding {
    /// Binds `forge` to `repo` (full name). `bot_login` is our account; when it is `None`
    /// or empty the forge is asked on first need, since an empty login would match every
    /// comment whose author is unknown. `token` is what git authenticates with.
    pub fn new(forge: Arc<dyn Forge>, repo: &str, bot_login: Option<String>, token: Secret) -> Self {
        Self::with_git_token(forge, repo, bot_login, GitToken::Fixed(token))
    }

    /// [`RepoBinding::new`] with git authenticating with `token`, fixed or fresh.
    pub fn with_git_token(forge: Arc<dyn Forge>, repo: &str, bot_login: Option<String>, token: GitToken) -> Self {
        RepoBinding {
            forge,
            repo: repo.to_string(),
            token,
            bot_login: bot_login
                .as_deref()
                .and_then(BotLogin::new)
                .map(OnceCell::from)
                .unwrap_or_default(),
            info: OnceCell::new(),
        }
    }

    /// The forge client.
    pub fn forge(&self) -> &dyn Forge {
        self.forge.as_ref()
    }

    /// Which forge.
    pub fn kind(&self) -> ForgeKind {
        self.forge.kind()
    }

    /// The repository's full name.
    pub fn repo(&self) -> &str {
        &self.repo
    }

    /// The token git sends now, for its HTTP header only: a GitHub App's installation
    /// token is asked for at each use, so it is always one that has not expired.
    pub async fn git_token(&self) -> Result<Secret, ForgeError> {
        match &self.token {
            GitToken::Fixed(token) => Ok(token.clone()),
            GitToken::Fresh(source) => source.token().await,
        }
    }

    /// The source's own token, if it has one (not a GitHub App's): to mask in logs.
    pub fn fixed_token(&self) -> Option<&Secret> {
        match &self.token {
            GitToken::Fixed(token) => Some(token),
            GitToken::Fresh(_) => None,
        }
    }

    /// Clone URL and default branch, fetched once.
    pub async fn repository(&self) -> Result<&RepositoryInfo, ForgeError> {
        self.info
            .get_or_try_init(|| self.forge.get_repository(&self.repo))
            .await
    }

    /// Our bot's login, configured or fetched once.
    pub async fn bot_login(&self) -> Result<&BotLogin, ForgeError> {
        self.bot_login
            .get_or_try_init(|| async {
                let login = self.forge.current_user().await?;
                BotLogin::new(&login)
                    .ok_or_else(|| ForgeError::Transport("the forge answered `who am I` with an empty login".into()))
            })
            .await
    }

    /// The comment carrying `marker`, created once and then edited in place.
    pub async fn upsert_comment(&self, thread: Thread, marker: &str, body: &str) -> Result<Comment, ForgeError> {
        let bot = self.bot_login().await?;
        comments::upsert(self.forge(), &self.repo, thread, marker, body, bot).await
    }
}
