//! `powernode:step/git` → real `git` on the run's repository, authenticated by the host
//! with the forge token (as an HTTP header; the plugin never sees it).

use std::time::Instant;

use crate::git::{self as domain, CloneRequest, FetchRequest, GitAuth, PushRequest};
use crate::policy::Capability;
use crate::provider::{ForgeKind, RepoBinding};
use crate::runtime::bindings::powernode::step::git::{self, CloneOptions, FetchOptions, PushOptions};
use crate::runtime::state::StepState;
use crate::workspace;

use super::forge::NO_FORGE;

const DEFAULT_AUTHOR: (&str, &str) = ("Powernode", "powernode@localhost");

type GResult<T> = wasmtime::Result<Result<T, String>>;

/// The header git sends, with the token current now (a GitHub App's installation token is
/// asked for at each git command, so a long run never pushes with an expired one).
async fn auth(b: &RepoBinding) -> Result<GitAuth, String> {
    let token = b
        .git_token()
        .await
        .map_err(|e| format!("cannot get a token for git: {e}"))?;
    let token = token.expose();
    Ok(match b.kind() {
        ForgeKind::Github => GitAuth::github(token),
        ForgeKind::Gitlab => GitAuth::gitlab(token),
        ForgeKind::Gitea | ForgeKind::Forgejo => GitAuth::gitea(token),
    })
}

/// The run's binding, its clone URL and git's credentials.
async fn target(
    forge: Option<std::sync::Arc<RepoBinding>>,
) -> Result<(std::sync::Arc<RepoBinding>, String, GitAuth), String> {
    let b = forge.ok_or_else(|| NO_FORGE.to_string())?;
    let url = b
        .repository()
        .await
        .map_err(|e| format!("cannot look up the repository: {e}"))?
        .clone_url
        .clone();
    let auth = auth(&b).await?;
    Ok((b, url, auth))
}

impl git::Host for StepState {
    async fn clone(&mut self, opts: CloneOptions) -> GResult<String> {
        self.require(Capability::Git)?;
        let (_, url, auth) = match target(self.scope.forge.clone()).await {
            Ok(t) => t,
            Err(e) => return Ok(Err(e)),
        };
        let dest = match workspace::resolve_new(&self.scope.workspace, opts.path.as_deref().unwrap_or(".")) {
            Ok(d) => d,
            Err(e) => return Ok(Err(e.to_string())),
        };
        let req = CloneRequest {
            url,
            dest,
            git_ref: opts.git_ref,
            sha: opts.sha,
            depth: opts.depth,
        };
        let left = self.scope.deadline.saturating_duration_since(Instant::now());
        Ok(domain::clone(&req, Some(&auth), left, Some(self.confine()))
            .await
            .map_err(|e| e.to_string()))
    }

    async fn commit_and_push(&mut self, opts: PushOptions) -> GResult<Option<String>> {
        self.require(Capability::Git)?;
        Ok(self.push(opts, false).await)
    }

    async fn replace_branch(&mut self, opts: PushOptions) -> GResult<Option<String>> {
        self.require(Capability::Git)?;
        Ok(self.push(opts, true).await)
    }

    async fn fetch(&mut self, opts: FetchOptions) -> GResult<String> {
        self.require(Capability::Git)?;
        let (_, url, auth) = match target(self.scope.forge.clone()).await {
            Ok(t) => t,
            Err(e) => return Ok(Err(e)),
        };
        let repo_dir = match workspace::resolve(&self.scope.workspace, opts.path.as_deref().unwrap_or(".")) {
            Ok(d) => d,
            Err(e) => return Ok(Err(e.to_string())),
        };
        let req = FetchRequest {
            repo_dir,
            remote_url: url,
            branch: opts.branch,
            depth: opts.depth,
        };
        let left = self.scope.deadline.saturating_duration_since(Instant::now());
        Ok(domain::fetch(&req, Some(&auth), left, Some(self.confine()))
            .await
            .map_err(|e| e.to_string()))
    }
}

impl StepState {
    /// The host's git for this step runs in the command sandbox, like the step's own commands.
    fn confine(&self) -> domain::Confine {
        domain::Confine {
            sandbox: self.services.sandbox.clone(),
            workspace: self.scope.workspace.clone(),
        }
    }

    /// `commit-and-push`, or with `replace` `replace-branch`, which never touches the
    /// repository's default branch.
    async fn push(&mut self, opts: PushOptions, replace: bool) -> Result<Option<String>, String> {
        let (b, url, auth) = target(self.scope.forge.clone()).await?;
        if replace {
            let default = b
                .repository()
                .await
                .map_err(|e| format!("cannot look up the repository: {e}"))?
                .default_branch
                .clone();
            let branch = opts.branch.strip_prefix("refs/heads/").unwrap_or(&opts.branch);
            if default.is_empty() || branch == default {
                return Err(format!(
                    "refusing to replace `{branch}`: it is the repository's default branch{}",
                    if default.is_empty() {
                        " (or the default branch is unknown)"
                    } else {
                        ""
                    }
                ));
            }
        }
        let repo_dir = workspace::resolve(&self.scope.workspace, opts.path.as_deref().unwrap_or("."))
            .map_err(|e| e.to_string())?;
        let req = PushRequest {
            repo_dir,
            remote_url: url,
            branch: opts.branch,
            message: opts.message,
            author_name: opts.author_name.unwrap_or_else(|| DEFAULT_AUTHOR.0.into()),
            author_email: opts.author_email.unwrap_or_else(|| DEFAULT_AUTHOR.1.into()),
            replace,
        };
        let left = self.scope.deadline.saturating_duration_since(Instant::now());
        domain::commit_and_push(&req, Some(&auth), left, Some(self.confine()))
            .await
            .map_err(|e| e.to_string())
    }
}
