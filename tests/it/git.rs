//! The host's git client against a real smart-HTTP server that demands the token: clones of
//! branches, tags, commits and the default branch, commit-and-push, refused tokens, planted
//! hooks and config, timeouts, and that the token never lands in a file or an error.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use powernode::git::{self, CloneRequest, GitAuth, GitError, PushRequest};

use crate::git_server::{self, GitServer, Options};

const TOKEN: &str = "pn-test-token-7f3a9c";
const LIMIT: Duration = Duration::from_secs(60);

/// Runs the system git for fixtures (not the code under test) and returns its trimmed stdout.
pub(crate) fn sys_git(dir: &Path, args: &[&str]) -> String {
    let out = std::process::Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_AUTHOR_NAME", "Fixture")
        .env("GIT_AUTHOR_EMAIL", "fixture@example.com")
        .env("GIT_COMMITTER_NAME", "Fixture")
        .env("GIT_COMMITTER_EMAIL", "fixture@example.com")
        .output()
        .expect("run git");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// A pushable bare repository `<root>/octo/hello.git` whose `main` holds one commit, a
/// README saying `hello`; returns it and the work tree it was pushed from (`<root>/seed`,
/// on `main`), for more commits.
pub(crate) fn hello_repository(root: &Path) -> (PathBuf, PathBuf) {
    let bare = root.join("octo/hello.git");
    std::fs::create_dir_all(&bare).unwrap();
    sys_git(&bare, &["init", "-q", "--bare", "-b", "main"]);
    sys_git(&bare, &["config", "http.receivepack", "true"]);
    let seed = root.join("seed");
    std::fs::create_dir_all(&seed).unwrap();
    sys_git(&seed, &["init", "-q", "-b", "main"]);
    std::fs::write(seed.join("README.md"), "hello\n").unwrap();
    sys_git(&seed, &["add", "-A"]);
    sys_git(&seed, &["commit", "-q", "-m", "first"]);
    sys_git(&seed, &["push", "-q", bare.to_str().unwrap(), "main"]);
    (bare, seed)
}

/// A bare repository `repo.git` served with [`TOKEN`], default branch `trunk`:
/// `c1 - c2 (tag v1, annotated) - c3` on trunk, `f1` on `feature` off `c1`.
struct Fixture {
    tmp: tempfile::TempDir,
    bare: PathBuf,
    server: GitServer,
    url: String,
    c1: String,
    c2: String,
    c3: String,
    f1: String,
}

impl Fixture {
    fn new() -> Fixture {
        Self::with(Options::default())
    }

    fn with(options: Options) -> Fixture {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("srv");
        let bare = root.join("repo.git");
        std::fs::create_dir_all(&root).unwrap();
        sys_git(&root, &["init", "-q", "--bare", "-b", "trunk", "repo.git"]);
        sys_git(&bare, &["config", "http.receivepack", "true"]);
        let work = tmp.path().join("seed");
        std::fs::create_dir_all(&work).unwrap();
        sys_git(&work, &["init", "-q", "-b", "trunk"]);
        let commit = |file: &str, text: &str| {
            std::fs::write(work.join(file), text).unwrap();
            sys_git(&work, &["add", "-A"]);
            sys_git(&work, &["commit", "-q", "-m", text]);
            sys_git(&work, &["rev-parse", "HEAD"])
        };
        let c1 = commit("a.txt", "one");
        let c2 = commit("a.txt", "two");
        sys_git(&work, &["tag", "-a", "v1", "-m", "release 1"]);
        let c3 = commit("a.txt", "three");
        sys_git(&work, &["checkout", "-q", "-b", "feature", &c1]);
        let f1 = std::fs::write(work.join("f.txt"), "feature")
            .map(|()| {
                sys_git(&work, &["add", "-A"]);
                sys_git(&work, &["commit", "-q", "-m", "feature"]);
                sys_git(&work, &["rev-parse", "HEAD"])
            })
            .unwrap();
        let bare_s = bare.to_str().unwrap();
        sys_git(
            &work,
            &[
                "push",
                "-q",
                bare_s,
                "refs/heads/*:refs/heads/*",
                "refs/tags/*:refs/tags/*",
            ],
        );
        let server = git_server::start_with(&root, TOKEN, options);
        let url = format!("{}/repo.git", server.url);
        Fixture {
            tmp,
            bare,
            server,
            url,
            c1,
            c2,
            c3,
            f1,
        }
    }

    fn dest(&self, name: &str) -> PathBuf {
        self.tmp.path().join(name)
    }

    fn req(&self, name: &str, git_ref: Option<&str>, sha: Option<&str>, depth: Option<u32>) -> CloneRequest {
        CloneRequest {
            url: self.url.clone(),
            dest: self.dest(name),
            git_ref: git_ref.map(Into::into),
            sha: sha.map(Into::into),
            depth,
        }
    }

    fn push_req(&self, repo: &Path, branch: &str) -> PushRequest {
        PushRequest {
            repo_dir: repo.to_owned(),
            remote_url: self.url.clone(),
            branch: branch.into(),
            message: "powernode: update\n\nmade by a step".into(),
            author_name: "Powernode Bot".into(),
            author_email: "bot@powernode.example".into(),
            replace: false,
        }
    }

    fn bare_git(&self, args: &[&str]) -> String {
        let mut all = vec!["--git-dir", self.bare.to_str().unwrap()];
        all.extend(args);
        sys_git(self.tmp.path(), &all)
    }
}

fn auth() -> GitAuth {
    GitAuth::github(TOKEN)
}

fn commits_in(repo: &Path) -> String {
    sys_git(repo, &["rev-list", "--count", "HEAD"])
}

/// Every form of [`TOKEN`] that must never show up anywhere.
fn token_forms() -> Vec<String> {
    let a = auth();
    let debug = format!("{a:?}");
    assert!(!debug.contains(TOKEN), "{debug}");
    let basic = basic_b64(&format!("x-access-token:{TOKEN}"));
    vec![TOKEN.to_owned(), basic]
}

fn basic_b64(s: &str) -> String {
    // Only for scanning: the same encoding the client puts in the header.
    const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for c in s.as_bytes().chunks(3) {
        let n =
            (u32::from(c[0]) << 16) | (u32::from(*c.get(1).unwrap_or(&0)) << 8) | u32::from(*c.get(2).unwrap_or(&0));
        for i in 0..4 {
            out.push(if i <= c.len() {
                A[(n >> (18 - 6 * i) & 63) as usize] as char
            } else {
                '='
            });
        }
    }
    out
}

fn assert_no_token_under(dir: &Path) {
    let forms = token_forms();
    let mut stack = vec![dir.to_owned()];
    let mut files = 0;
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            let ty = e.file_type().unwrap();
            if ty.is_dir() {
                stack.push(e.path());
            } else if ty.is_file() {
                files += 1;
                let bytes = std::fs::read(e.path()).unwrap();
                for f in &forms {
                    assert!(
                        !bytes.windows(f.len()).any(|w| w == f.as_bytes()),
                        "token found in {}",
                        e.path().display()
                    );
                }
            }
        }
    }
    assert!(files > 0, "nothing scanned under {}", dir.display());
}

fn assert_no_token_in(text: &str) {
    for f in token_forms() {
        assert!(!text.contains(&f), "token in: {text}");
    }
}

#[tokio::test]
async fn clones_the_default_branch_with_full_history() {
    let fx = Fixture::new();
    let req = fx.req("default", None, None, None);
    let head = git::clone(&req, Some(&auth()), LIMIT, None).await.unwrap();
    assert_eq!(head, fx.c3, "the remote's default branch is trunk");
    assert_eq!(std::fs::read_to_string(req.dest.join("a.txt")).unwrap(), "three");
    assert_eq!(commits_in(&req.dest), "3");
    assert_eq!(sys_git(&req.dest, &["remote", "get-url", "origin"]), fx.url);
    let reqs = fx.server.requests();
    assert!(!reqs.is_empty());
    for r in &reqs {
        assert_eq!(r.status, 200, "{}", r.line);
        assert!(r.header("authorization").unwrap().starts_with("Basic "), "{}", r.line);
        assert_eq!(r.user.as_deref(), Some("x-access-token"));
    }
    assert!(
        reqs[0]
            .line
            .starts_with("GET /repo.git/info/refs?service=git-upload-pack HTTP/1.1"),
        "{}",
        reqs[0].line
    );
}

#[tokio::test]
async fn clones_a_branch_shallow() {
    let fx = Fixture::new();
    let req = fx.req("branch", Some("feature"), None, Some(1));
    let head = git::clone(&req, Some(&auth()), LIMIT, None).await.unwrap();
    assert_eq!(head, fx.f1);
    assert_eq!(commits_in(&req.dest), "1");
    assert!(req.dest.join(".git/shallow").exists());
    assert!(req.dest.join("f.txt").exists());
}

#[tokio::test]
async fn clones_an_annotated_tag_by_short_and_full_name() {
    let fx = Fixture::new();
    let head = git::clone(&fx.req("tag", Some("v1"), None, None), Some(&auth()), LIMIT, None)
        .await
        .unwrap();
    assert_eq!(head, fx.c2, "the tag is peeled to its commit");
    let head = git::clone(
        &fx.req("tag2", Some("refs/tags/v1"), None, Some(1)),
        Some(&auth()),
        LIMIT,
        None,
    )
    .await
    .unwrap();
    assert_eq!(head, fx.c2);
}

#[tokio::test]
async fn clones_a_commit_by_id_shallow() {
    let fx = Fixture::new();
    // c1 is no branch's tip: fetched by id over protocol v2.
    let req = fx.req("sha", None, Some(&fx.c1), Some(1));
    let head = git::clone(&req, Some(&auth()), LIMIT, None).await.unwrap();
    assert_eq!(head, fx.c1);
    assert_eq!(commits_in(&req.dest), "1");
    assert_eq!(std::fs::read_to_string(req.dest.join("a.txt")).unwrap(), "one");
}

#[tokio::test]
async fn commit_by_id_falls_back_to_a_full_fetch_when_the_server_refuses_it() {
    let fx = Fixture::with(Options { protocol_v2: false });
    let head = git::clone(&fx.req("v0", None, Some(&fx.c1), Some(1)), Some(&auth()), LIMIT, None)
        .await
        .unwrap();
    assert_eq!(head, fx.c1);
    let req = fx.req("v0ref", Some("trunk"), Some(&fx.c2), Some(1));
    assert_eq!(git::clone(&req, Some(&auth()), LIMIT, None).await.unwrap(), fx.c2);
    assert_eq!(commits_in(&req.dest), "2", "the full history of trunk was fetched");
    // Not on `feature`: a clear error.
    let missing = "0123456789abcdef0123456789abcdef01234567";
    let err = git::clone(
        &fx.req("v0bad", Some("feature"), Some(missing), None),
        Some(&auth()),
        LIMIT,
        None,
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("not reachable from \"feature\""), "{err}");
}

#[tokio::test]
async fn unknown_ref_and_commit_are_clear_errors() {
    let fx = Fixture::new();
    let err = git::clone(&fx.req("noref", Some("nope"), None, None), Some(&auth()), LIMIT, None)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, GitError::Command { step, .. } if step == "fetch"),
        "{err}"
    );
    assert!(err.to_string().contains("no such branch or tag"), "{err}");
    let missing = "0123456789abcdef0123456789abcdef01234567";
    let err = git::clone(
        &fx.req("nosha", None, Some(missing), Some(1)),
        Some(&auth()),
        LIMIT,
        None,
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("not reachable"), "{err}");
    assert_no_token_in(&err.to_string());
}

#[tokio::test]
async fn bearer_tokens_are_sent_as_bearer() {
    let fx = Fixture::new();
    let head = git::clone(
        &fx.req("bearer", None, None, Some(1)),
        Some(&GitAuth::bearer(TOKEN)),
        LIMIT,
        None,
    )
    .await
    .unwrap();
    assert_eq!(head, fx.c3);
    assert!(
        fx.server
            .requests()
            .iter()
            .all(|r| r.header("authorization") == Some(&format!("Bearer {TOKEN}")))
    );
}

#[tokio::test]
async fn wrong_or_missing_token_is_an_authentication_error() {
    let fx = Fixture::new();
    let wrong = "pn-wrong-token-1b2c3d";
    let err = git::clone(
        &fx.req("wrong", None, None, None),
        Some(&GitAuth::github(wrong)),
        LIMIT,
        None,
    )
    .await
    .unwrap_err();
    assert!(
        matches!(&err, GitError::Auth { step, with_token: true, .. } if step == "fetch"),
        "{err:?}"
    );
    let msg = err.to_string();
    assert!(msg.contains("refused the token"), "{msg}");
    assert!(
        !msg.contains(wrong) && !msg.contains(&basic_b64(&format!("x-access-token:{wrong}"))),
        "{msg}"
    );
    assert!(fx.server.requests().iter().all(|r| r.status == 401));

    let err = git::clone(&fx.req("none", None, None, None), None, LIMIT, None)
        .await
        .unwrap_err();
    assert!(matches!(err, GitError::Auth { with_token: false, .. }), "{err:?}");
    assert!(err.to_string().contains("no token was given"), "{err}");
}

#[tokio::test]
async fn commits_and_pushes_a_new_branch() {
    let fx = Fixture::new();
    let repo = fx.dest("work");
    git::clone(&fx.req("work", None, None, Some(1)), Some(&auth()), LIMIT, None)
        .await
        .unwrap();
    std::fs::write(repo.join("a.txt"), "changed").unwrap();
    std::fs::write(repo.join("new.txt"), "new").unwrap();
    fx.server.clear_requests();

    let commit = git::commit_and_push(&fx.push_req(&repo, "powernode/update"), Some(&auth()), LIMIT, None)
        .await
        .unwrap();
    let commit = commit.expect("a commit");
    assert_eq!(fx.bare_git(&["rev-parse", "refs/heads/powernode/update"]), commit);
    assert_eq!(fx.bare_git(&["rev-parse", "refs/heads/powernode/update^"]), fx.c3);
    assert_eq!(
        fx.bare_git(&[
            "log",
            "-1",
            "--format=%an <%ae>|%cn <%ce>|%s",
            "refs/heads/powernode/update"
        ]),
        "Powernode Bot <bot@powernode.example>|Powernode Bot <bot@powernode.example>|powernode: update"
    );
    assert_eq!(fx.bare_git(&["show", "refs/heads/powernode/update:new.txt"]), "new");
    assert_eq!(
        fx.bare_git(&["rev-parse", "refs/heads/trunk"]),
        fx.c3,
        "other branches untouched"
    );
    let reqs = fx.server.requests();
    assert!(
        reqs.iter()
            .any(|r| r.line.starts_with("POST /repo.git/git-receive-pack ")),
        "{reqs:#?}"
    );
    assert!(reqs.iter().all(|r| r.status == 200));

    // Pushing again with no change: nothing to commit, nothing pushed.
    fx.server.clear_requests();
    let again = git::commit_and_push(&fx.push_req(&repo, "powernode/update"), Some(&auth()), LIMIT, None)
        .await
        .unwrap();
    assert_eq!(again, None);
    assert!(fx.server.requests().is_empty());

    // A second change fast-forwards the same branch.
    std::fs::remove_file(repo.join("new.txt")).unwrap();
    let next = git::commit_and_push(&fx.push_req(&repo, "powernode/update"), Some(&auth()), LIMIT, None)
        .await
        .unwrap();
    assert_eq!(
        fx.bare_git(&["rev-parse", "refs/heads/powernode/update"]),
        next.unwrap()
    );

    assert_no_token_under(&repo.join(".git"));
}

#[tokio::test]
async fn nothing_to_commit_is_none() {
    let fx = Fixture::new();
    let repo = fx.dest("clean");
    git::clone(&fx.req("clean", None, None, None), Some(&auth()), LIMIT, None)
        .await
        .unwrap();
    fx.server.clear_requests();
    let out = git::commit_and_push(&fx.push_req(&repo, "x"), Some(&auth()), LIMIT, None)
        .await
        .unwrap();
    assert_eq!(out, None);
    assert!(fx.server.requests().is_empty());
    assert_eq!(sys_git(&repo, &["rev-parse", "HEAD"]), fx.c3);
}

#[tokio::test]
async fn a_branch_that_moved_is_not_overwritten() {
    let fx = Fixture::new();
    let repo = fx.dest("nff");
    git::clone(&fx.req("nff", None, None, None), Some(&auth()), LIMIT, None)
        .await
        .unwrap();
    std::fs::write(repo.join("a.txt"), "mine").unwrap();
    let err = git::commit_and_push(&fx.push_req(&repo, "feature"), Some(&auth()), LIMIT, None)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, GitError::Command { step, .. } if step == "push"),
        "{err:?}"
    );
    assert!(err.to_string().contains("has commits that this one lacks"), "{err}");
    assert_eq!(fx.bare_git(&["rev-parse", "refs/heads/feature"]), fx.f1);
}

#[tokio::test]
async fn push_with_a_wrong_token_is_an_authentication_error() {
    let fx = Fixture::new();
    let repo = fx.dest("pw");
    git::clone(&fx.req("pw", None, None, None), Some(&auth()), LIMIT, None)
        .await
        .unwrap();
    std::fs::write(repo.join("a.txt"), "x").unwrap();
    let wrong = GitAuth::gitlab("pn-wrong-push-token-42");
    let err = git::commit_and_push(&fx.push_req(&repo, "y"), Some(&wrong), LIMIT, None)
        .await
        .unwrap_err();
    assert!(matches!(&err, GitError::Auth { step, .. } if step == "push"), "{err:?}");
    assert!(!err.to_string().contains("pn-wrong-push-token-42"));
    assert!(
        std::process::Command::new("git")
            .args([
                "--git-dir",
                fx.bare.to_str().unwrap(),
                "rev-parse",
                "--verify",
                "-q",
                "refs/heads/y"
            ])
            .output()
            .unwrap()
            .stdout
            .is_empty()
    );
}

#[tokio::test]
async fn the_token_is_in_no_file_and_no_error() {
    let fx = Fixture::new();
    let req = fx.req("scan", Some("trunk"), None, None);
    git::clone(&req, Some(&auth()), LIMIT, None).await.unwrap();
    let config = std::fs::read_to_string(req.dest.join(".git/config")).unwrap();
    assert!(
        !config.to_lowercase().contains("extraheader") && !config.contains(TOKEN),
        "{config}"
    );
    assert_no_token_under(&req.dest.join(".git"));

    // Errors after the token was sent: a missing ref, a missing repository.
    let err = git::clone(&fx.req("e1", Some("missing"), None, None), Some(&auth()), LIMIT, None)
        .await
        .unwrap_err();
    assert_no_token_in(&err.to_string());
    assert_no_token_in(&format!("{err:?}"));
    let mut missing_repo = fx.req("e2", None, None, None);
    missing_repo.url = format!("{}/nope.git", fx.server.url);
    let err = git::clone(&missing_repo, Some(&auth()), LIMIT, None).await.unwrap_err();
    assert_no_token_in(&err.to_string());
    assert_no_token_in(&format!("{err:?}"));
}

#[tokio::test]
async fn bad_branch_names_are_refused_before_anything_runs() {
    let fx = Fixture::new();
    let repo = fx.dest("bad");
    git::clone(&fx.req("bad", None, None, None), Some(&auth()), LIMIT, None)
        .await
        .unwrap();
    std::fs::write(repo.join("a.txt"), "x").unwrap();
    let config_before = std::fs::read_to_string(repo.join(".git/config")).unwrap();
    fx.server.clear_requests();
    for bad in [
        "bad..name",
        "-f",
        "--force",
        "a b",
        "x~1",
        "@{-1}",
        "refs/heads/x",
        "HEAD",
        "ends.lock",
        "",
        "a:b",
    ] {
        let err = git::commit_and_push(&fx.push_req(&repo, bad), Some(&auth()), LIMIT, None)
            .await
            .unwrap_err();
        assert!(matches!(err, GitError::InvalidRef(_)), "{bad:?}: {err:?}");
    }
    assert!(fx.server.requests().is_empty());
    assert_eq!(
        sys_git(&repo, &["status", "--porcelain"]),
        "M a.txt",
        "nothing staged or committed"
    );
    assert_eq!(
        std::fs::read_to_string(repo.join(".git/config")).unwrap(),
        config_before
    );
}

#[tokio::test]
async fn urls_with_credentials_or_other_schemes_are_refused() {
    let fx = Fixture::new();
    let port_url = fx.server.url.trim_start_matches("http://");
    for url in [
        format!("http://x-access-token:{TOKEN}@{port_url}/repo.git"),
        format!("file://{}", fx.bare.display()),
        fx.bare.display().to_string(),
        "ext::sh -c touch% /tmp/pwned".to_owned(),
    ] {
        let mut req = fx.req("creds", None, None, None);
        req.url = url.clone();
        let err = git::clone(&req, Some(&auth()), LIMIT, None).await.unwrap_err();
        assert!(matches!(err, GitError::InvalidUrl(_)), "{url}: {err:?}");
        assert_no_token_in(&err.to_string());
    }
    assert!(fx.server.requests().is_empty());
    assert!(!fx.dest("creds").exists());
}

#[tokio::test]
async fn a_non_empty_destination_is_refused() {
    let fx = Fixture::new();
    let dest = fx.dest("full");
    std::fs::create_dir_all(&dest).unwrap();
    std::fs::write(dest.join("x"), "x").unwrap();
    let err = git::clone(&fx.req("full", None, None, None), Some(&auth()), LIMIT, None)
        .await
        .unwrap_err();
    assert!(matches!(err, GitError::InvalidRequest(_)), "{err:?}");
}

#[tokio::test]
async fn planted_hooks_filters_and_config_do_not_run_or_redirect() {
    let fx = Fixture::new();
    let repo = fx.dest("planted");
    git::clone(&fx.req("planted", None, None, None), Some(&auth()), LIMIT, None)
        .await
        .unwrap();
    let marker = fx.dest("pwned");
    let script = fx.dest("evil.sh");
    std::fs::write(&script, format!("#!/bin/sh\nenv > {}\ncat\n", marker.display())).unwrap();
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let hooks = repo.join(".git/hooks");
    std::fs::create_dir_all(&hooks).unwrap();
    for hook in [
        "pre-commit",
        "commit-msg",
        "post-commit",
        "pre-push",
        "reference-transaction",
    ] {
        std::fs::copy(&script, hooks.join(hook)).unwrap();
    }
    let mut config = std::fs::read_to_string(repo.join(".git/config")).unwrap();
    config.push_str(&format!(
        "[core]\n\tfsmonitor = {s}\n[filter \"evil\"]\n\tclean = {s}\n\tsmudge = {s}\n[url \"http://127.0.0.1:9/\"]\n\t\
         insteadOf = {u}\n\tpushInsteadOf = {u}\n[credential]\n\thelper = !{s}\n[http]\n\tproxy = http://127.0.0.1:9\n",
        s = script.display(),
        u = fx.server.url
    ));
    std::fs::write(repo.join(".git/config"), config).unwrap();
    std::fs::write(repo.join(".gitattributes"), "* filter=evil\n").unwrap();
    std::fs::write(repo.join("a.txt"), "planted").unwrap();

    let commit = git::commit_and_push(&fx.push_req(&repo, "planted"), Some(&auth()), LIMIT, None)
        .await
        .unwrap()
        .unwrap();
    assert!(!marker.exists(), "a planted hook, filter, fsmonitor or helper ran");
    assert_eq!(
        fx.bare_git(&["rev-parse", "refs/heads/planted"]),
        commit,
        "pushed to the real server"
    );
    let config = std::fs::read_to_string(repo.join(".git/config")).unwrap();
    assert!(!config.contains("evil") && !config.contains("insteadOf"), "{config}");
}

#[tokio::test]
async fn a_git_dir_that_points_elsewhere_is_refused() {
    let fx = Fixture::new();
    let real = fx.dest("real");
    git::clone(&fx.req("real", None, None, None), Some(&auth()), LIMIT, None)
        .await
        .unwrap();
    // `.git` as a symlink.
    let linked = fx.dest("linked");
    std::fs::create_dir_all(&linked).unwrap();
    std::os::unix::fs::symlink(real.join(".git"), linked.join(".git")).unwrap();
    std::fs::write(linked.join("a.txt"), "x").unwrap();
    let err = git::commit_and_push(&fx.push_req(&linked, "l"), Some(&auth()), LIMIT, None)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, GitError::InvalidRequest(m) if m.contains("symlink")),
        "{err:?}"
    );
    // A symlink inside `.git`.
    std::os::unix::fs::symlink("/etc", real.join(".git/refs/host")).unwrap();
    std::fs::write(real.join("a.txt"), "x").unwrap();
    let err = git::commit_and_push(&fx.push_req(&real, "l"), Some(&auth()), LIMIT, None)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, GitError::InvalidRequest(m) if m.contains("refs/host")),
        "{err:?}"
    );
    std::fs::remove_file(real.join(".git/refs/host")).unwrap();
    // Borrowed objects.
    std::fs::create_dir_all(real.join(".git/objects/info")).unwrap();
    std::fs::write(real.join(".git/objects/info/alternates"), "/elsewhere/objects\n").unwrap();
    let err = git::commit_and_push(&fx.push_req(&real, "l"), Some(&auth()), LIMIT, None)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, GitError::InvalidRequest(m) if m.contains("alternates")),
        "{err:?}"
    );
    assert!(fx.server.requests().iter().all(|r| !r.line.contains("receive-pack")));
}

#[tokio::test]
async fn a_hung_server_times_out_within_the_limit() {
    let hung = git_server::start_hung();
    let tmp = tempfile::tempdir().unwrap();
    let req = CloneRequest {
        url: format!("{}/repo.git", hung.url),
        dest: tmp.path().join("hung"),
        git_ref: None,
        sha: None,
        depth: Some(1),
    };
    let limit = Duration::from_millis(1500);
    let started = Instant::now();
    let err = git::clone(&req, Some(&auth()), limit, None).await.unwrap_err();
    // The named outcome is what is checked; only the lower bound is a fact of the clock.
    assert!(
        matches!(&err, GitError::Timeout { step, .. } if step == "fetch"),
        "{err:?}"
    );
    assert!(
        started.elapsed() >= limit,
        "gave up before its limit: {:?}",
        started.elapsed()
    );
    assert!(err.to_string().contains("did not finish within 1.5s"), "{err}");
}
