//! Cloning: `git init` in an empty directory, `git fetch` of one ref or commit (shallow when
//! asked), `git checkout --detach`; the remote URL is recorded as `origin`, the token nowhere.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::run::{Confine, Git, Net};
use super::{CloneRequest, GitAuth, GitError, validate};

/// Clones `req.url` into `req.dest` and checks out the requested ref or commit (detached
/// HEAD), returning the checked-out commit id.
///
/// `confine` runs every git process in the command sandbox. `timeout` bounds the whole
/// operation: every git process is killed, with its process group,
/// when the time left runs out. With `sha`, the commit is fetched by id (shallow if `depth` is
/// set); servers that refuse that get a full fetch of `git_ref` (or of all branches and tags)
/// instead. On failure `dest` is left as it was reached, for the caller to remove.
pub async fn clone(
    req: &CloneRequest,
    auth: Option<&GitAuth>,
    timeout: Duration,
    confine: Option<Confine>,
) -> Result<String, GitError> {
    let remote = validate::remote_url(&req.url)?;
    let git_ref = req.git_ref.as_deref().map(validate::ref_name).transpose()?;
    let sha = req.sha.as_deref().map(validate::sha).transpose()?;
    if req.depth == Some(0) {
        return Err(GitError::InvalidRequest(
            "depth must be at least 1 (None fetches the whole history)".into(),
        ));
    }
    let mut git = Git::new(auth, &remote, timeout, confine)?;
    let dest = prepare_dest(&req.dest).await?;
    git.set_config("safe.directory", dest.to_string_lossy());
    let depth = req.depth.map(|d| format!("--depth={d}"));

    // An empty template: no sample hooks, nothing else from the host's git installation.
    git.run("init", &dest, Net::Local, &["init", "-q", "--template=", "."])
        .await?;
    git.run("remote", &dest, Net::Local, &["remote", "add", "origin", &remote.url])
        .await?;

    let checkout = match (&sha, git_ref) {
        (Some(sha), git_ref) => {
            match fetch(&git, &dest, depth.as_deref(), sha).await {
                Ok(()) => {}
                Err(GitError::Command { stderr, .. }) => {
                    // Fetching a commit by id needs protocol v2 or uploadpack.allowReachableSHA1InWant /
                    // allowAnySHA1InWant on the server (GitHub, GitLab and Gitea allow it with v2).
                    // Without it, fetch the whole history of the ref (or of every branch and tag)
                    // and find the commit there.
                    tracing::info!(%sha, stderr = %stderr, "fetch by commit id refused; fetching the full history instead");
                    match git_ref {
                        Some(r) => fetch(&git, &dest, None, r).await?,
                        None => {
                            git.run("fetch", &dest, Net::Remote, &["fetch", "-q", "--tags", "origin"])
                                .await?;
                        }
                    }
                    let object = format!("{sha}^{{commit}}");
                    let found = git
                        .run_any("cat-file", &dest, Net::Local, &["cat-file", "-e", &object], None)
                        .await?;
                    if found.code != Some(0) {
                        return Err(GitError::Command {
                            step: "checkout".into(),
                            stderr: format!(
                                "commit {sha} is not reachable from {} on the remote",
                                git_ref.map_or("any branch or tag".to_owned(), |r| format!("{r:?}"))
                            ),
                            code: None,
                        });
                    }
                }
                Err(e) => return Err(e),
            }
            sha.clone()
        }
        (None, Some(r)) => {
            fetch(&git, &dest, depth.as_deref(), r).await?;
            "FETCH_HEAD".to_owned()
        }
        (None, None) => {
            // The remote's HEAD, i.e. its default branch.
            fetch(&git, &dest, depth.as_deref(), "HEAD").await?;
            "FETCH_HEAD".to_owned()
        }
    };
    git.run(
        "checkout",
        &dest,
        Net::Local,
        &["checkout", "-q", "--detach", &checkout],
    )
    .await?;
    let head = git
        .run(
            "rev-parse",
            &dest,
            Net::Local,
            &["rev-parse", "--verify", "HEAD^{commit}"],
        )
        .await?;
    let head = head.stdout.trim().to_owned();
    if let Some(sha) = &sha
        && &head != sha
    {
        return Err(GitError::Command {
            step: "checkout".into(),
            stderr: format!("checked out {head}, expected {sha}"),
            code: None,
        });
    }
    tracing::debug!(url = %remote.url, commit = %head, "cloned");
    Ok(head)
}

/// `git fetch` of one ref or commit id from `origin`, without tags.
async fn fetch(git: &Git, dest: &Path, depth: Option<&str>, what: &str) -> Result<(), GitError> {
    let mut args = vec!["fetch", "-q", "--no-tags"];
    args.extend(depth);
    args.extend(["origin", what]);
    git.run("fetch", dest, Net::Remote, &args).await.map(drop)
}

/// Creates `dest`, or accepts it if it is an empty directory (not a symlink); returns it absolute.
async fn prepare_dest(dest: &Path) -> Result<PathBuf, GitError> {
    let io = |what: &str| {
        let what = format!("{what} {}", dest.display());
        move |source| GitError::Io { what, source }
    };
    match tokio::fs::symlink_metadata(dest).await {
        Ok(meta) if meta.is_dir() => {
            let mut entries = tokio::fs::read_dir(dest).await.map_err(io("reading"))?;
            if entries.next_entry().await.map_err(io("reading"))?.is_some() {
                return Err(GitError::InvalidRequest(format!(
                    "clone destination {} is not empty",
                    dest.display()
                )));
            }
        }
        Ok(_) => {
            return Err(GitError::InvalidRequest(format!(
                "clone destination {} exists and is not a directory",
                dest.display()
            )));
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            tokio::fs::create_dir_all(dest).await.map_err(io("creating"))?;
        }
        Err(e) => return Err(io("inspecting")(e)),
    }
    tokio::fs::canonicalize(dest).await.map_err(io("resolving"))
}
