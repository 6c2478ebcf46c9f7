//! Committing a work tree and pushing it: `git add -A`, a commit with the given identity when
//! anything changed, `git push <url> HEAD:refs/heads/<branch>` without force (or, to replace a
//! branch a step owns, with a lease on the tip `git ls-remote` saw); and fetching a branch into
//! such a work tree.
//!
//! The work tree (and its `.git`) may have been written by a plugin, so it is not trusted: a
//! `.git` that is a symlink or file, that contains symlinks, or that borrows another
//! repository's objects (`commondir`, `objects/info/alternates`) is refused, and `.git/config` is
//! replaced by a minimal one before git reads it. That takes away filter drivers, credential
//! helpers, `url.*.insteadOf`, proxies, `core.worktree`, includes and every other way a planted
//! config could run a program next to the token or send it elsewhere; hooks are off through
//! command-scope config and `--no-verify`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::run::{Confine, Git, Net};
use super::{FetchRequest, GitAuth, GitError, PushRequest, validate};

/// Commits every change in `req.repo_dir` (additions, edits, deletions) as `req.author_*` and
/// pushes it to `req.branch` on `req.remote_url`, returning the new commit id, or `None` (and
/// no commit, no push) when nothing changed.
///
/// Without `req.replace` the push is a plain fast-forward push: a branch that moved on the
/// remote is an error, never overwritten. With it, the remote branch is replaced, guarded by a
/// lease on the tip seen just before (a concurrent push in between makes it fail, not vanish).
/// `.git/config` is rewritten to a minimal one (with `origin` set to `req.remote_url`).
/// `timeout` bounds the whole operation; `confine` runs every git process in the command sandbox.
pub async fn commit_and_push(
    req: &PushRequest,
    auth: Option<&GitAuth>,
    timeout: Duration,
    confine: Option<Confine>,
) -> Result<Option<String>, GitError> {
    let remote = validate::remote_url(&req.remote_url)?;
    let branch = validate::branch_name(&req.branch)?;
    validate::identity_part("author name", &req.author_name)?;
    validate::identity_part("author email", &req.author_email)?;
    validate::message(&req.message)?;
    let mut git = Git::new(auth, &remote, timeout, confine)?;

    // git's own rules, before anything touches the repository. Run outside any repository.
    let scratch = git.scratch_dir().to_owned();
    check_branch(&git, &scratch, branch).await?;
    let repo = open_untrusted(&mut git, &req.repo_dir, &remote.url).await?;
    git.set_env("GIT_AUTHOR_NAME", &req.author_name);
    git.set_env("GIT_AUTHOR_EMAIL", &req.author_email);
    git.set_env("GIT_COMMITTER_NAME", &req.author_name);
    git.set_env("GIT_COMMITTER_EMAIL", &req.author_email);

    git.run("add", &repo, Net::Local, &["add", "-A"]).await?;
    let diff = git
        .run_any("diff", &repo, Net::Local, &["diff", "--cached", "--quiet"], None)
        .await?;
    match diff.code {
        Some(0) => {
            tracing::debug!(repo = %repo.display(), "nothing to commit");
            return Ok(None);
        }
        Some(1) => {}
        _ => return git.check("diff", diff).map(|_| None),
    }
    git.run_with_stdin(
        "commit",
        &repo,
        &["commit", "-q", "--no-verify", "--no-gpg-sign", "-F", "-"],
        req.message.clone().into_bytes(),
    )
    .await?;
    let commit = git
        .run("rev-parse", &repo, Net::Local, &["rev-parse", "--verify", "HEAD"])
        .await?
        .stdout;
    let commit = commit.trim().to_owned();
    let refspec = format!("HEAD:refs/heads/{branch}");
    let lease = match req.replace {
        true => Some(format!(
            "--force-with-lease=refs/heads/{branch}:{}",
            remote_tip(&git, &repo, branch).await?
        )),
        false => None,
    };
    let mut args = vec!["push", "-q", "--no-verify"];
    args.extend(lease.as_deref());
    args.extend(["--", &remote.url, &refspec]);
    git.run("push", &repo, Net::Remote, &args).await?;
    tracing::info!(url = %remote.url, %branch, %commit, replaced = req.replace, "pushed");
    Ok(Some(commit))
}

/// Fetches `req.branch` from `req.remote_url` into `refs/remotes/origin/<branch>` of the work
/// tree `req.repo_dir` (treated as untrusted, like a push's), returning the branch's commit.
pub async fn fetch(
    req: &FetchRequest,
    auth: Option<&GitAuth>,
    timeout: Duration,
    confine: Option<Confine>,
) -> Result<String, GitError> {
    let remote = validate::remote_url(&req.remote_url)?;
    let branch = validate::branch_name(&req.branch)?;
    if req.depth == Some(0) {
        return Err(GitError::InvalidRequest(
            "depth must be at least 1 (None fetches the whole history)".into(),
        ));
    }
    let mut git = Git::new(auth, &remote, timeout, confine)?;
    let scratch = git.scratch_dir().to_owned();
    check_branch(&git, &scratch, branch).await?;
    let repo = open_untrusted(&mut git, &req.repo_dir, &remote.url).await?;
    let tracking = format!("refs/remotes/origin/{branch}");
    let refspec = format!("+refs/heads/{branch}:{tracking}");
    let depth = req.depth.map(|d| format!("--depth={d}"));
    let mut args = vec!["fetch", "-q", "--no-tags"];
    args.extend(depth.as_deref());
    args.extend(["origin", &refspec]);
    git.run("fetch", &repo, Net::Remote, &args).await?;
    let commit = git
        .run("rev-parse", &repo, Net::Local, &["rev-parse", "--verify", &tracking])
        .await?
        .stdout;
    Ok(commit.trim().to_owned())
}

/// The commit `branch` points at on the remote, or "" when it does not exist.
async fn remote_tip(git: &Git, repo: &Path, branch: &str) -> Result<String, GitError> {
    let wanted = format!("refs/heads/{branch}");
    let out = git
        .run("ls-remote", repo, Net::Remote, &["ls-remote", "origin", &wanted])
        .await?;
    Ok(out
        .stdout
        .lines()
        .filter_map(|line| line.split_once('\t'))
        .find(|(_, name)| *name == wanted)
        .map(|(sha, _)| sha.to_owned())
        .unwrap_or_default())
}

/// Refuses a branch name git itself would not accept.
async fn check_branch(git: &Git, scratch: &Path, branch: &str) -> Result<(), GitError> {
    let checked = git
        .run_any(
            "check-ref-format",
            scratch,
            Net::Local,
            &["check-ref-format", "--branch", branch],
            None,
        )
        .await?;
    if checked.code != Some(0) || checked.stdout.trim() != branch {
        return Err(GitError::InvalidRef(format!(
            "{branch:?}: not a valid branch name (git check-ref-format --branch)"
        )));
    }

    Ok(())
}

/// Opens the work tree at `repo_dir` for git: checks that its `.git` is a plain directory of
/// its own, replaces `.git/config` by a minimal one with `origin` = `url`, and points `git` at it.
async fn open_untrusted(git: &mut Git, repo_dir: &Path, url: &str) -> Result<PathBuf, GitError> {
    let scratch = git.scratch_dir().to_owned();
    let repo = inspect_repo(repo_dir).await?;
    let git_dir = repo.join(".git");
    let object_format = git
        .run_any(
            "config",
            &scratch,
            Net::Local,
            &[
                "config",
                "--file",
                &git_dir.join("config").to_string_lossy(),
                "--get",
                "extensions.objectformat",
            ],
            None,
        )
        .await?
        .stdout
        .trim()
        .to_ascii_lowercase();
    write_clean_config(&git_dir, url, &object_format).await?;
    git.set_env("GIT_DIR", &git_dir);
    git.set_env("GIT_WORK_TREE", &repo);
    git.set_config("safe.directory", repo.to_string_lossy());
    Ok(repo)
}

/// Resolves `repo_dir` and checks that its `.git` is a plain directory of this repository only.
async fn inspect_repo(repo_dir: &Path) -> Result<PathBuf, GitError> {
    let repo = tokio::fs::canonicalize(repo_dir).await.map_err(|source| GitError::Io {
        what: format!("resolving {}", repo_dir.display()),
        source,
    })?;
    let git_dir = repo.join(".git");
    let scan = git_dir.clone();
    let problem = tokio::task::spawn_blocking(move || find_unsafe(&scan))
        .await
        .map_err(|e| GitError::Io {
            what: "scanning .git".into(),
            source: std::io::Error::other(e),
        })?
        .map_err(|source| GitError::Io {
            what: format!("scanning {}", git_dir.display()),
            source,
        })?;
    if let Some(problem) = problem {
        return Err(GitError::InvalidRequest(format!(
            "refusing to push from {}: {problem}",
            repo.display()
        )));
    }
    Ok(repo)
}

/// Why `git_dir` is not a self-contained repository directory, if it is not.
fn find_unsafe(git_dir: &Path) -> std::io::Result<Option<String>> {
    let meta = match std::fs::symlink_metadata(git_dir) {
        Ok(meta) => meta,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Some("it has no .git directory".into())),
        Err(e) => return Err(e),
    };
    if !meta.is_dir() {
        return Ok(Some(".git is a symlink or a file, not a directory".into()));
    }
    for borrowed in ["commondir", "objects/info/alternates"] {
        if std::fs::symlink_metadata(git_dir.join(borrowed)).is_ok() {
            return Ok(Some(format!(".git/{borrowed} points git at another repository")));
        }
    }
    let mut stack = vec![git_dir.to_owned()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir)? {
            let entry = entry?;
            let kind = entry.file_type()?;
            if kind.is_symlink() {
                let path = entry.path();
                let rel = path.strip_prefix(git_dir).unwrap_or(&path);
                return Ok(Some(format!(".git/{} is a symlink", rel.display())));
            }
            if kind.is_dir() {
                stack.push(entry.path());
            }
        }
    }
    Ok(None)
}

/// Replaces `.git/config` with a minimal one: core settings, the object format, and `origin`.
async fn write_clean_config(git_dir: &Path, url: &str, object_format: &str) -> Result<(), GitError> {
    let path = git_dir.join("config");
    let io = |what: &'static str| {
        let path = path.clone();
        move |source| GitError::Io {
            what: format!("{what} {}", path.display()),
            source,
        }
    };
    let (version, extensions) = match object_format {
        "sha256" => (1, "[extensions]\n\tobjectformat = sha256\n"),
        _ => (0, ""),
    };
    // The URL has no whitespace, control characters or backslashes (validated); quoting keeps
    // `;` from starting a comment.
    let url = url.replace('"', "\\\"");
    let text = format!(
        "[core]\n\trepositoryformatversion = {version}\n\tfilemode = true\n\tbare = false\n\tlogallrefupdates = true\n\
         {extensions}[remote \"origin\"]\n\turl = \"{url}\"\n\tfetch = +refs/heads/*:refs/remotes/origin/*\n"
    );
    match tokio::fs::remove_file(&path).await {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io("removing")(e)),
    }
    let mut options = tokio::fs::OpenOptions::new();
    options.write(true).create_new(true);
    let mut file = options.open(&path).await.map_err(io("creating"))?;
    tokio::io::AsyncWriteExt::write_all(&mut file, text.as_bytes())
        .await
        .map_err(io("writing"))?;
    Ok(())
}
