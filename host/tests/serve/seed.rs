//! The seed's "AI Code Review" pipeline exactly as the seed writes it, run by `powernode serve`
//! from real signed pull request webhooks of GitHub, Gitea and GitLab: each forge is a fake on
//! loopback whose repository is a real bare repository behind a token-checking git server,
//! and `claude` on the server's PATH is a stand-in for the Claude Code CLI (`tests/it/seed/claude.py`).
//! Each run ends with exactly one review comment and a success status; the push that follows
//! (synchronize) edits the same comment.

use reqwest::Method;

use super::fakes::FakeServer;
use super::fakes::gitea::GiteaFake;
use super::fakes::github::GithubFake;
use super::fakes::gitlab::GitlabFake;
use super::runs::{api, ended, wait_for};
use super::*;

/// The seed's review pipeline, exactly as the seed writes it.
const SEED_REVIEW: &str = include_str!("../../../tests/it/seed/review.yml");

const TOKEN: &str = "forge-token-for-the-seed-run";

/// What the forge under test answers with.
enum Fake {
    Github(GithubFake),
    Gitea(GiteaFake),
    Gitlab(GitlabFake),
}

impl Fake {
    /// The review comments on the pull request: their bodies.
    fn reviews(&self, repo: &str, number: u64) -> Vec<String> {
        let bodies: Vec<String> = match self {
            Fake::Github(f) => f.comments(repo, number).into_iter().map(|c| c.body).collect(),
            Fake::Gitea(f) => f.comments(repo, number).into_iter().map(|c| c.body).collect(),
            Fake::Gitlab(f) => f
                .state()
                .notes
                .iter()
                .filter(|n| n.project == repo && n.iid == number && !n.system)
                .map(|n| n.body.clone())
                .collect(),
        };
        bodies.into_iter().filter(|b| b.contains("Looks good")).collect()
    }

    /// The states of the `ai-review` statuses set on `sha`.
    fn ai_statuses(&self, sha: &str) -> Vec<String> {
        match self {
            Fake::Github(f) => statuses(&f.state().statuses, sha),
            Fake::Gitea(f) => statuses(&f.state().statuses, sha),
            Fake::Gitlab(f) => f
                .state()
                .statuses
                .iter()
                .filter(|(_, s, name, _)| s == sha && name == "ai-review")
                .map(|(_, _, _, state)| state.clone())
                .collect(),
        }
    }
}

fn statuses(all: &[(String, String, Value)], sha: &str) -> Vec<String> {
    all.iter()
        .filter(|(_, s, b)| s == sha && b["context"] == "ai-review")
        .map(|(_, _, b)| b["state"].as_str().unwrap_or("").to_owned())
        .collect()
}

fn sys_git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_AUTHOR_NAME", "Fixture")
        .env("GIT_AUTHOR_EMAIL", "fixture@example.com")
        .env("GIT_COMMITTER_NAME", "Fixture")
        .env("GIT_COMMITTER_EMAIL", "fixture@example.com")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A bare `repo` under `root` with `base` (a README) and `head` (one more line); `head`'s sha.
fn repository(root: &Path, repo: &str, base: &str, head: &str) -> String {
    let bare = root.join(format!("{repo}.git"));
    std::fs::create_dir_all(&bare).unwrap();
    sys_git(&bare, &["init", "-q", "--bare", "-b", base]);
    let work = root.join("work");
    std::fs::create_dir_all(&work).unwrap();
    sys_git(&work, &["init", "-q", "-b", base]);
    std::fs::write(work.join("README.md"), "hello\n").unwrap();
    sys_git(&work, &["add", "-A"]);
    sys_git(&work, &["commit", "-q", "-m", "first"]);
    sys_git(&work, &["checkout", "-q", "-b", head]);
    std::fs::write(work.join("README.md"), "hello\nhello again\n").unwrap();
    sys_git(&work, &["commit", "-q", "-am", "greet again"]);
    sys_git(&work, &["push", "-q", bare.to_str().unwrap(), base, head]);
    sys_git(&work, &["rev-parse", "HEAD"]).trim().to_owned()
}

/// The fixture's pull request event for the forge, at commit `sha`, with `action`, signed
/// for the server and with a fresh delivery id.
fn delivery(kind: &str, sha: &str, synchronize: bool, n: u32) -> (Vec<u8>, BTreeMap<String, String>) {
    let (name, dir) = match kind {
        "github" => ("pull_request.opened", "github"),
        "gitea" => ("pull_request.opened", "gitea"),
        _ => ("merge_request_hook", "gitlab"),
    };
    let (body, mut headers) = fixture(dir, name);
    let mut event: Value = serde_json::from_slice(&body).unwrap();
    match kind {
        "gitlab" => {
            let attrs = &mut event["object_attributes"];
            attrs["last_commit"]["id"] = sha.into();
            if synchronize {
                attrs["action"] = "update".into();
                attrs["oldrev"] = "0123456789abcdef0123456789abcdef01234567".into();
            }
        }
        _ => {
            event["pull_request"]["head"]["sha"] = sha.into();
            if synchronize {
                event["action"] = if kind == "github" {
                    "synchronize"
                } else {
                    "synchronized"
                }
                .into();
            }
        }
    }
    let body = serde_json::to_vec(&event).unwrap();
    let signature = hex_hmac_sha256(SECRET.as_bytes(), &body);
    let id = format!("00000000-0000-4000-8000-{n:012}");
    headers.retain(|k, _| k != "X-Hub-Signature");
    for (key, value) in headers.iter_mut() {
        match key.as_str() {
            "X-Hub-Signature-256" => *value = format!("sha256={signature}"),
            "X-Gitea-Signature" | "X-Gogs-Signature" => *value = signature.clone(),
            "X-GitHub-Delivery"
            | "X-Gitea-Delivery"
            | "X-Gogs-Delivery"
            | "Idempotency-Key"
            | "X-Gitlab-Event-UUID" => *value = id.clone(),
            _ => {}
        }
    }
    (body, headers)
}

/// Runs the seed's review pipeline twice (opened, then synchronize) for a pull request on
/// `kind`, from the fixture of that forge (repository `repo`, pull request `number`, `head`
/// into `base`).
async fn review_on(kind: &str, repo: &str, number: u64, head: &str, base: &str) {
    let dir = tempfile::tempdir().unwrap();
    let srv = dir.path().join("git");
    let sha = repository(&srv, repo, base, head);
    let git = super::git_server::start(&srv, TOKEN);
    let fake = match kind {
        "github" => {
            let f = GithubFake::new("", "powernode-bot", TOKEN, repo);
            {
                let mut s = f.state();
                s.clone_origin = Some(git.url.clone());
                s.repos[0].default_branch = base.into();
                s.repos[0].git_dir = Some(srv.join(format!("{repo}.git")));
            }
            f.add_issue(repo);
            assert_eq!(f.add_pull(repo, head, base, true), number);
            Fake::Github(f)
        }
        "gitea" => {
            let f = GiteaFake::new("powernode-bot", TOKEN, repo);
            f.state().clone_origin = Some(git.url.clone());
            f.state().repos[0].default_branch = base.into();
            assert_eq!(f.add_pull(repo, head, base, true), number);
            Fake::Gitea(f)
        }
        _ => {
            let f = GitlabFake::new("powernode-bot", TOKEN, repo);
            f.state().clone_origin = Some(git.url.clone());
            f.state().projects[0].default_branch = base.into();
            assert_eq!(f.add_merge_request(repo, head, base, 42), number);
            Fake::Gitlab(f)
        }
    };
    let router = match &fake {
        Fake::Github(f) => f.router(),
        Fake::Gitea(f) => f.router(),
        Fake::Gitlab(f) => f.router(),
    };
    let forge = FakeServer::start(router).await;

    let claude = dir.path().join("bin");
    std::fs::create_dir_all(&claude).unwrap();
    std::fs::copy(
        concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/it/seed/claude.py"),
        claude.join("claude"),
    )
    .unwrap();
    let path = format!("{}:{}", claude.display(), std::env::var("PATH").unwrap_or_default());
    let server_dir = dir.path().join("server");
    std::fs::create_dir_all(server_dir.join("pipelines")).unwrap();
    std::fs::write(server_dir.join("pipelines/ai-review.yml"), SEED_REVIEW).unwrap();
    // The stand-in is mounted read-only into the sandboxes of the commands steps run.
    let source = format!(
        "\n[sandbox]\nread_only = [\"{}\"]\n\n[[sources]]\nid = \"forge\"\nkind = \"{kind}\"\napi_url = \"{}\"\ntoken = \"{TOKEN}\"\nwebhook_secret = \"{SECRET}\"\nbot_login = \"powernode-bot\"\n",
        claude.display(),
        forge.base_url
    );
    let server = Server::start_with_env(&server_dir, &source, &[("PATH", path)]);
    let (status, _) = api(
        &server,
        Method::PUT,
        "/templates/pr-review",
        Some("Review pull request #{{ number }}:\n{{ get_diff.raw_output }}"),
    )
    .await;
    assert!(status == 200 || status == 201, "storing the template: {status}");

    for (round, synchronize) in [(1, false), (2, true)] {
        let (body, headers) = delivery(kind, &sha, synchronize, round);
        let (status, answer) = post(&format!("{}/webhooks/forge", server.url), &body, &headers).await;
        assert_eq!(status, 202, "{kind}: {answer}");
        // The test server's own `review` pipeline matches too; ours is the seed's.
        let id = answer["runs"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|r| r["pipeline"] == "AI Code Review")
            .and_then(|r| r["id"].as_str())
            .unwrap_or_else(|| {
                panic!(
                    "{kind}: the seed's pipeline did not start: {answer}\n{}",
                    server.stderr()
                )
            })
            .to_owned();
        let run = wait_for(&server, &id, "ended", ended).await;
        let (_, logs) = api_text(&server, Method::GET, &format!("/runs/{id}/logs"), None).await;
        assert_eq!(run["state"], "success", "{kind}: {run}\n{logs}\n{}", server.stderr());
        assert!(!logs.contains(TOKEN), "{kind}: the token reached the log");
        let reviews = fake.reviews(repo, number);
        assert_eq!(
            reviews.len(),
            1,
            "{kind}: one review comment, edited in place: {reviews:?}"
        );
        let expected = if synchronize {
            "Looks good. Resumed."
        } else {
            "Looks good. First look."
        };
        assert!(reviews[0].contains(expected), "{kind}: {}", reviews[0]);
        assert!(
            reviews[0].contains("+hello again"),
            "{kind}: the diff reached the review: {}",
            reviews[0]
        );
        assert_eq!(fake.ai_statuses(&sha), vec!["success"; round as usize], "{kind}");
    }
    server.stop();
}

#[tokio::test]
async fn the_seeds_review_pipeline_runs_from_a_github_webhook() {
    review_on("github", "Codertocat/Hello-World", 2, "changes", "master").await;
}

#[tokio::test]
async fn the_seeds_review_pipeline_runs_from_a_gitea_webhook() {
    review_on("gitea", "jcitizen/my-repo", 1, "feature", "master").await;
}

#[tokio::test]
async fn the_seeds_review_pipeline_runs_from_a_gitlab_webhook() {
    review_on("gitlab", "gitlabhq/gitlab-test", 1, "ms-viewport", "master").await;
}
