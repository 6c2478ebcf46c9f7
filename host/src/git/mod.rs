//! Git for plugins, run by the host: cloning a repository into a workspace and committing and
//! pushing a workspace back, with the real `git` binary and a forge token that only the host sees.
//!
//! The token travels only as an HTTP header, handed to git through `GIT_CONFIG_*` environment
//! variables (command-line scope, scoped to the remote's origin), and only to the processes that
//! talk to the network: never in a URL, an argument, `.git/config`, a log line or an error.
//! Every git process runs in a scrubbed environment (private empty `HOME`, no system or global
//! config, no prompts, no hooks) in its own process group, killed whole when the deadline passes.
//!
//! Files: `auth` (the header and masking), `validate` (URLs, refs, identities), `run` (one git
//! process), `clone` and `push` (the two operations).

mod auth;
mod clone;
mod push;
mod run;
mod validate;

use std::path::PathBuf;
use std::time::Duration;

pub use self::auth::GitAuth;
pub use self::clone::clone;
pub use self::push::{commit_and_push, fetch};
pub use self::run::Confine;

/// What to clone and where: the input of [`clone`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloneRequest {
    /// `https://` (or `http://`) clone URL without credentials; credentials go in [`GitAuth`].
    pub url: String,
    /// Directory to clone into: created if missing, otherwise it must be an empty directory.
    pub dest: PathBuf,
    /// Branch or tag (`main`, `v1.2`, `refs/heads/main`, `refs/tags/v1.2`); with neither this
    /// nor `sha`, the remote's default branch.
    pub git_ref: Option<String>,
    /// Full commit id (40 or 64 hex digits) to check out; wins over `git_ref` when both are given.
    pub sha: Option<String>,
    /// Shallow clone of this many commits; `None` fetches the whole history.
    pub depth: Option<u32>,
}

/// What to commit and where to push it: the input of [`commit_and_push`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushRequest {
    /// Work tree with a `.git` directory, normally made by [`clone`].
    pub repo_dir: PathBuf,
    /// `https://` (or `http://`) URL to push to, without credentials.
    pub remote_url: String,
    /// Branch to create or fast-forward on the remote (short name, e.g. `powernode/update`).
    pub branch: String,
    /// Commit message.
    pub message: String,
    /// Author and committer name.
    pub author_name: String,
    /// Author and committer email.
    pub author_email: String,
    /// Replace the remote branch (a force push with lease) instead of fast-forwarding it.
    pub replace: bool,
}

/// What to fetch into an existing work tree: the input of [`fetch`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchRequest {
    /// Work tree with a `.git` directory, normally made by [`clone`].
    pub repo_dir: PathBuf,
    /// `https://` (or `http://`) URL to fetch from, without credentials.
    pub remote_url: String,
    /// Branch to fetch into `refs/remotes/origin/<branch>`.
    pub branch: String,
    /// Shallow fetch of this many commits; `None` fetches the whole history.
    pub depth: Option<u32>,
}

/// Why a git operation failed; no variant ever contains the token or the header carrying it.
#[derive(Debug, thiserror::Error)]
pub enum GitError {
    /// A branch, tag or commit id that is not a valid, safe git name.
    #[error("invalid git ref: {0}")]
    InvalidRef(String),
    /// A remote URL that is not plain `http(s)://host/path`, or that embeds credentials.
    #[error("invalid git URL: {0}")]
    InvalidUrl(String),
    /// Anything else in the request that cannot be used as given (identity, message, directory, token).
    #[error("invalid git request: {0}")]
    InvalidRequest(String),
    /// The server refused the credentials, or asked for some and none were given.
    #[error(
        "git {step}: {}; git said: {stderr}",
        if *with_token {
            "the server refused the token (wrong, expired, revoked, or without access to this repository)"
        } else {
            "the server requires authentication and no token was given"
        }
    )]
    Auth {
        /// Which step failed, e.g. `fetch` or `push`.
        step: String,
        /// git's stderr, with every occurrence of the token or its header masked as `***`.
        stderr: String,
        /// Whether a token was sent.
        with_token: bool,
    },
    /// A git process ran past the deadline and was killed with its whole process group.
    #[error("git {step} did not finish within {}s and was killed", after.as_secs_f64())]
    Timeout {
        /// Which step was running.
        step: String,
        /// The operation's whole time limit.
        after: Duration,
    },
    /// A git process failed.
    #[error("git {step} failed{}: {stderr}{}", exit_suffix(*code), hint(stderr))]
    Command {
        /// Which step failed, e.g. `fetch`, `checkout`, `commit`, `push`.
        step: String,
        /// git's stderr (bounded), with every occurrence of the token or its header masked as `***`.
        stderr: String,
        /// Exit code; `None` when there was no process exit to report.
        code: Option<i32>,
    },
    /// git started, but its output could not be read whole or waiting for it failed.
    #[error("git {step}: {source}")]
    Exec {
        /// Which step was running.
        step: String,
        /// What failed.
        #[source]
        source: crate::exec::ExecError,
    },
    /// A local file-system or process-spawning error.
    #[error("{what}: {source}")]
    Io {
        /// What was being done, e.g. `spawning git` (a missing `git` binary shows up here).
        what: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The command sandbox could not be set up for a git process.
    #[error("git {step}: {source}")]
    Sandbox {
        /// Which step was about to run.
        step: String,
        /// What failed.
        #[source]
        source: crate::sandbox::SandboxError,
    },
}

fn exit_suffix(code: Option<i32>) -> String {
    code.map(|c| format!(" (exit {c})")).unwrap_or_default()
}

/// A sentence pointing at the likely cause of a git failure, chosen from its (C-locale) stderr.
fn hint(stderr: &str) -> &'static str {
    const HINTS: &[(&[&str], &str)] = &[
        (
            &[
                "[rejected]",
                "non-fast-forward",
                "fetch first",
                "failed to push some refs",
            ],
            " (hint: the remote branch has commits that this one lacks, or moved during the push; push to a new branch, or let a step that owns the branch replace it)",
        ),
        (
            &["couldn't find remote ref"],
            " (hint: no such branch or tag on the remote)",
        ),
        (
            &["not our ref", "reference is not a tree", "is not reachable"],
            " (hint: the commit does not exist on the remote, or is not reachable from the given ref)",
        ),
        (
            &[
                "Repository not found",
                "' not found",
                "returned error: 404",
                "does not appear to be a git repository",
            ],
            " (hint: no repository at this URL, or the token cannot see it)",
        ),
        (
            &[
                "Could not resolve host",
                "Failed to connect",
                "Connection refused",
                "Couldn't connect",
            ],
            " (hint: the git server could not be reached)",
        ),
        (
            &["SSL certificate problem", "server certificate verification failed"],
            " (hint: the server's TLS certificate is not trusted)",
        ),
        (
            &["dubious ownership"],
            " (hint: the repository is owned by another user)",
        ),
    ];
    HINTS
        .iter()
        .find(|(needles, _)| needles.iter().any(|n| stderr.contains(n)))
        .map_or("", |(_, h)| h)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_errors_carry_a_hint() {
        let e = GitError::Command {
            step: "push".into(),
            stderr: " ! [rejected]        HEAD -> x (fetch first)".into(),
            code: Some(1),
        };
        let s = e.to_string();
        assert!(s.starts_with("git push failed (exit 1): "), "{s}");
        assert!(s.contains("has commits that this one lacks"), "{s}");
    }

    #[test]
    fn auth_errors_say_the_token_was_refused() {
        let e = GitError::Auth {
            step: "fetch".into(),
            stderr: "fatal: Authentication failed".into(),
            with_token: true,
        };
        assert!(e.to_string().contains("refused the token"));
        let e = GitError::Auth {
            step: "fetch".into(),
            stderr: String::new(),
            with_token: false,
        };
        assert!(e.to_string().contains("no token was given"));
    }
}
