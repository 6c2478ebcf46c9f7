//! The `checkout` step: clones the run's repository into the workspace (detached HEAD), by
//! default at the trigger's commit, like a CI checkout action.
//!
//! The host does the git work with the forge token; the plugin only says what to fetch, so
//! it needs the `git`, `provider` and `log` grants. Which commit:
//!
//! - `ref` set to a full commit id (40 or 64 hex digits): that commit, with the trigger's head
//!   branch as the ref to fetch whole should the server refuse fetching a commit by id;
//! - `ref` set to anything else: that branch, tag or full ref;
//! - no `ref` (or an empty one): the trigger's head commit (else `after`); a comment on a pull
//!   request carries no commit, so the pull request's head is looked up; a run without any
//!   commit (e.g. manual) gets the repository's default branch.
//!
//! On a pull request the base branch is then fetched into `origin/<base>`, so that a later
//! `git diff origin/${base_branch}...HEAD` works. With a shallow `fetch_depth` both sides are
//! only that deep: if the merge base is older than that, the three-dot diff fails ("no merge
//! base"); raise `fetch_depth` (or set 0 for the whole history) when branches live long.

use powernode_sdk::git::{self, CloneOptions, FetchOptions};
use powernode_sdk::{Context, Error, Info, Output, Step, Trigger, log, provider, workspace_path};
use serde::Deserialize;

/// The step's `config` block.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Commit id (40 or 64 hex digits), branch, tag or full ref to check out; default: the
    /// trigger's head commit, else the repository's default branch.
    #[serde(default, rename = "ref")]
    pub git_ref: Option<String>,
    /// Number of commits to fetch (shallow clone), also for a pull request's base branch;
    /// 0 or absent fetches the whole history.
    #[serde(default)]
    pub fetch_depth: Option<u32>,
    /// Directory to clone into, relative to the workspace (created; must be empty);
    /// default: the workspace root.
    #[serde(default)]
    pub path: Option<String>,
}

/// What to ask the host to check out.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Target {
    /// Exact commit to check out.
    pub sha: Option<String>,
    /// Ref to fetch: the one checked out without `sha`, the fallback with it.
    pub git_ref: Option<String>,
    /// The branch the checkout stands for, reported as the `branch` output; none for a tag
    /// or a commit whose branch is unknown.
    pub branch: Option<String>,
}

/// Whether `s` is a full commit id: 40 (SHA-1) or 64 (SHA-256) hex digits.
pub fn is_full_sha(s: &str) -> bool {
    (s.len() == 40 || s.len() == 64) && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The clone depth for `fetch_depth`: 0 means the whole history (as in actions/checkout).
pub fn depth(fetch_depth: Option<u32>) -> Option<u32> {
    fetch_depth.filter(|&d| d > 0)
}

/// The ref a pull request's head can always be fetched by from the base repository (forks
/// included), on forges that have one.
pub fn pull_ref(provider: &str, number: u64) -> Option<String> {
    match provider {
        "github" | "gitea" | "forgejo" => Some(format!("refs/pull/{number}/head")),
        "gitlab" => Some(format!("refs/merge-requests/{number}/head")),
        _ => None,
    }
}

/// The branch a full ref or short name names: `refs/heads/x` → `x`, other `refs/...` (tags,
/// pull refs) → none, a short name as is.
fn branch_of(git_ref: &str) -> Option<String> {
    match git_ref.strip_prefix("refs/heads/") {
        Some(branch) => Some(branch.to_owned()),
        None if git_ref.starts_with("refs/") || git_ref == "HEAD" => None,
        None => Some(git_ref.to_owned()),
    }
}

/// A non-empty, trimmed string.
fn non_empty(s: Option<&str>) -> Option<&str> {
    s.map(str::trim).filter(|s| !s.is_empty())
}

/// The trigger's commit: its head commit, else `after`, when it is a full, non-zero id.
fn trigger_commit(trigger: &Trigger) -> Option<String> {
    [trigger.head_sha.as_deref(), trigger.after.as_deref()]
        .into_iter()
        .flatten()
        .map(str::trim)
        .find(|s| is_full_sha(s) && s.bytes().any(|b| b != b'0'))
        .map(str::to_ascii_lowercase)
}

/// The ref to fetch should the server refuse fetching the trigger's commit by id: the
/// pull ref for a pull request from a fork (its branch is not in this repository), else the
/// head branch, else the trigger's ref (`refs/tags/v1` on a tag push).
fn fallback_ref(trigger: &Trigger, provider: &str) -> Option<String> {
    if trigger.is_pull_request
        && trigger.is_fork
        && let Some(pull) = trigger.number.and_then(|n| pull_ref(provider, n))
    {
        return Some(pull);
    }
    non_empty(trigger.head_branch.as_deref())
        .or(non_empty(trigger.git_ref.as_deref()))
        .map(str::to_owned)
}

/// The branch the trigger is about: its head branch, else the branch of its ref.
fn trigger_branch(trigger: &Trigger) -> Option<String> {
    non_empty(trigger.head_branch.as_deref())
        .map(str::to_owned)
        .or_else(|| non_empty(trigger.git_ref.as_deref()).and_then(branch_of))
}

/// Whether the pull request's head must be looked up: no `ref` given, and the trigger is a
/// pull request (a comment on one) that carries no commit.
pub fn needs_pull_request_head(config_ref: Option<&str>, trigger: &Trigger) -> bool {
    non_empty(config_ref).is_none()
        && trigger.is_pull_request
        && trigger.number.is_some()
        && trigger_commit(trigger).is_none()
}

/// What to check out for a pull request looked up by number: its head commit, with its pull
/// ref as the fallback (the head may live in a fork).
pub fn pull_request_target(provider: &str, number: u64, head_sha: &str, head_branch: &str) -> Target {
    let sha = Some(head_sha.trim().to_ascii_lowercase()).filter(|s| is_full_sha(s));
    let git_ref = pull_ref(provider, number).or_else(|| non_empty(Some(head_branch)).map(str::to_owned));
    Target {
        sha,
        git_ref,
        branch: non_empty(Some(head_branch)).map(str::to_owned),
    }
}

/// What to check out for `config_ref` (see the module documentation).
pub fn target(config_ref: Option<&str>, trigger: &Trigger, provider: &str, default_branch: &str) -> Target {
    match non_empty(config_ref) {
        Some(r) if is_full_sha(r) => Target {
            sha: Some(r.to_ascii_lowercase()),
            git_ref: fallback_ref(trigger, provider),
            branch: trigger_branch(trigger),
        },
        Some(r) => Target {
            sha: None,
            git_ref: Some(r.to_owned()),
            branch: branch_of(r),
        },
        None => match trigger_commit(trigger) {
            Some(sha) => Target {
                sha: Some(sha),
                git_ref: fallback_ref(trigger, provider),
                branch: trigger_branch(trigger),
            },
            None => {
                let default = non_empty(Some(default_branch)).map(str::to_owned);
                Target {
                    sha: None,
                    git_ref: default.clone(),
                    branch: default,
                }
            }
        },
    }
}

struct Checkout;

impl Step for Checkout {
    type Config = Config;

    fn info() -> Info {
        Info::new(
            "checkout",
            env!("CARGO_PKG_VERSION"),
            "Clones the run's repository into the workspace at the trigger's commit",
        )
    }

    fn run(ctx: Context<Config>) -> Result<Output, Error> {
        let path = workspace_path(ctx.config.path.as_deref()).map_err(Error::config)?;
        let depth = depth(ctx.config.fetch_depth);
        let config_ref = ctx.config.git_ref.as_deref();

        let repo = provider::get_repository().map_err(Error::from)?;
        let default_branch = non_empty(Some(&repo.default_branch))
            .or(non_empty(Some(&ctx.repository.default_branch)))
            .unwrap_or_default()
            .to_owned();
        let forge = non_empty(Some(&repo.provider)).unwrap_or(&ctx.repository.provider);
        log::info(&format!(
            "repository {} (default branch {})",
            repo.full_name,
            if default_branch.is_empty() {
                "unknown"
            } else {
                &default_branch
            }
        ));

        let trigger = &ctx.trigger;
        let mut base_branch = non_empty(trigger.base_branch.as_deref()).map(str::to_owned);
        let target = match trigger.number {
            Some(number) if needs_pull_request_head(config_ref, trigger) => {
                let pr = provider::get_pull_request(number).map_err(Error::from)?;
                log::info(&format!(
                    "the trigger carries no commit: checking out pull request #{number}'s head {} ({})",
                    pr.head_sha, pr.head
                ));
                base_branch = base_branch.or(non_empty(Some(&pr.base)).map(str::to_owned));
                pull_request_target(forge, number, &pr.head_sha, &pr.head)
            }
            _ => target(config_ref, trigger, forge, &default_branch),
        };
        log::info(&match (&target.sha, &target.git_ref) {
            (Some(sha), Some(r)) => format!("checking out {sha} (fetching {r} if the server refuses the commit id)"),
            (Some(sha), None) => format!("checking out {sha}"),
            (None, Some(r)) => format!("checking out {r}"),
            (None, None) => "checking out the remote's default branch".to_owned(),
        });

        let sha = git::clone(&CloneOptions {
            git_ref: target.git_ref.clone(),
            sha: target.sha.clone(),
            depth,
            path: path.clone(),
        })
        .map_err(|e| Error::failed(format!("clone failed: {e}")))?;
        log::info(&format!("checked out {sha}"));

        let mut output = Output::new(sha.clone())
            .with("sha", &sha)
            .with("branch", target.branch.unwrap_or_default())
            .with("path", path.as_deref().unwrap_or("."));
        if trigger.is_pull_request
            && let Some(base) = base_branch
        {
            let base_sha = git::fetch(&FetchOptions {
                branch: base.clone(),
                depth,
                path: path.clone(),
            })
            .map_err(|e| Error::failed(format!("fetching the base branch {base} failed: {e}")))?;
            log::info(&format!("fetched origin/{base} at {base_sha}"));
            output = output.with("base_branch", base);
        }
        Ok(output.with("default_branch", default_branch))
    }
}

powernode_sdk::step!(Checkout);

#[cfg(test)]
mod tests {
    use super::*;

    const SHA: &str = "0123456789abcdef0123456789abcdef01234567";
    const AFTER: &str = "89abcdef0123456789abcdef0123456789abcdef";

    fn trigger() -> Trigger {
        Trigger {
            event: "push".into(),
            ..Trigger::default()
        }
    }

    fn pull_request(fork: bool) -> Trigger {
        Trigger {
            event: "pull_request".into(),
            head_sha: Some(SHA.into()),
            head_branch: Some("feature".into()),
            base_branch: Some("main".into()),
            number: Some(7),
            is_pull_request: true,
            is_fork: fork,
            ..trigger()
        }
    }

    fn t(sha: Option<&str>, git_ref: Option<&str>, branch: Option<&str>) -> Target {
        Target {
            sha: sha.map(Into::into),
            git_ref: git_ref.map(Into::into),
            branch: branch.map(Into::into),
        }
    }

    #[test]
    fn a_full_commit_id_is_checked_out_with_the_head_branch_as_fallback() {
        let upper = SHA.to_ascii_uppercase();
        assert_eq!(
            target(Some(&upper), &pull_request(false), "github", "main"),
            t(Some(SHA), Some("feature"), Some("feature"))
        );
        let sha256 = "a".repeat(64);
        assert_eq!(
            target(Some(&sha256), &trigger(), "github", "main"),
            t(Some(&sha256), None, None)
        );
        // A short id is not a commit id to the host: it is fetched as a ref.
        assert_eq!(
            target(Some("0123456"), &trigger(), "github", "main"),
            t(None, Some("0123456"), Some("0123456"))
        );
    }

    #[test]
    fn a_branch_tag_or_ref_is_fetched_as_given() {
        let pr = pull_request(false);
        assert_eq!(
            target(Some("develop"), &pr, "github", "main"),
            t(None, Some("develop"), Some("develop"))
        );
        assert_eq!(
            target(Some(" refs/heads/release/1.x "), &pr, "github", "main"),
            t(None, Some("refs/heads/release/1.x"), Some("release/1.x"))
        );
        assert_eq!(
            target(Some("refs/tags/v1"), &pr, "github", "main"),
            t(None, Some("refs/tags/v1"), None)
        );
    }

    #[test]
    fn the_default_is_the_triggers_commit() {
        let pr = pull_request(false);
        assert_eq!(
            target(None, &pr, "github", "main"),
            t(Some(SHA), Some("feature"), Some("feature"))
        );
        // `ref: ${head_sha}` rendered on a run without one.
        assert_eq!(
            target(Some(" "), &pr, "github", "main"),
            t(Some(SHA), Some("feature"), Some("feature"))
        );

        let push = Trigger {
            git_ref: Some("refs/heads/main".into()),
            after: Some(AFTER.into()),
            ..trigger()
        };
        assert_eq!(
            target(None, &push, "gitea", "main"),
            t(Some(AFTER), Some("refs/heads/main"), Some("main"))
        );
        let tag = Trigger {
            event: "tag".into(),
            git_ref: Some("refs/tags/v1".into()),
            after: Some(AFTER.into()),
            ..trigger()
        };
        assert_eq!(
            target(None, &tag, "gitea", "main"),
            t(Some(AFTER), Some("refs/tags/v1"), None)
        );
    }

    #[test]
    fn a_fork_falls_back_to_the_pull_ref() {
        let pr = pull_request(true);
        assert_eq!(
            target(None, &pr, "github", "main"),
            t(Some(SHA), Some("refs/pull/7/head"), Some("feature"))
        );
        assert_eq!(
            target(None, &pr, "gitlab", "main"),
            t(Some(SHA), Some("refs/merge-requests/7/head"), Some("feature"))
        );
    }

    #[test]
    fn without_a_commit_the_default_branch_is_checked_out() {
        let manual = Trigger {
            event: "manual".into(),
            ..trigger()
        };
        assert_eq!(
            target(None, &manual, "github", "trunk"),
            t(None, Some("trunk"), Some("trunk"))
        );
        assert_eq!(target(None, &manual, "github", ""), t(None, None, None));
        let deleted = Trigger {
            after: Some("0".repeat(40)),
            ..trigger()
        };
        assert_eq!(
            target(None, &deleted, "github", "main"),
            t(None, Some("main"), Some("main"))
        );
        assert!(!needs_pull_request_head(None, &manual));
    }

    #[test]
    fn a_comment_on_a_pull_request_checks_out_its_head() {
        let comment = Trigger {
            event: "issue_comment".into(),
            number: Some(9),
            is_pull_request: true,
            ..trigger()
        };
        assert!(needs_pull_request_head(None, &comment));
        assert!(!needs_pull_request_head(Some("main"), &comment));
        assert!(!needs_pull_request_head(None, &pull_request(false)));
        assert_eq!(
            pull_request_target("gitea", 9, SHA, "fix"),
            t(Some(SHA), Some("refs/pull/9/head"), Some("fix"))
        );
        assert_eq!(
            pull_request_target("", 9, SHA, "fix"),
            t(Some(SHA), Some("fix"), Some("fix"))
        );
    }

    #[test]
    fn fetch_depth_zero_is_the_whole_history() {
        assert_eq!(depth(Some(0)), None);
        assert_eq!(depth(None), None);
        assert_eq!(depth(Some(1)), Some(1));
        assert_eq!(depth(Some(50)), Some(50));
    }

    #[test]
    fn paths_stay_inside_the_workspace() {
        assert_eq!(workspace_path(None), Ok(None));
        assert_eq!(workspace_path(Some(".")), Ok(None));
        assert_eq!(workspace_path(Some("./src/")), Ok(Some("src".into())));
        assert_eq!(workspace_path(Some("a//b")), Ok(Some("a/b".into())));
        assert!(workspace_path(Some("/etc")).is_err());
        assert!(workspace_path(Some("a/../../b")).is_err());
        assert!(workspace_path(Some("C:\\x")).is_err());
    }

    #[test]
    fn the_seed_configs_parse() {
        let c: Config = serde_json::from_str(r#"{"fetch_depth": 50}"#).unwrap();
        assert_eq!((c.git_ref, c.fetch_depth, c.path), (None, Some(50), None));
        let c: Config = serde_json::from_str(&format!(r#"{{"ref": "{SHA}", "fetch_depth": 1}}"#)).unwrap();
        assert_eq!((c.git_ref.as_deref(), c.fetch_depth), (Some(SHA), Some(1)));
        let c: Config = serde_json::from_str(r#"{}"#).unwrap();
        assert!(c.git_ref.is_none() && c.fetch_depth.is_none());
    }

    #[test]
    fn unknown_fields_and_bad_depths_are_refused() {
        let err = serde_json::from_str::<Config>(r#"{"fetch_dpeth": 50}"#).unwrap_err();
        assert!(err.to_string().contains("unknown field `fetch_dpeth`"), "{err}");
        assert!(serde_json::from_str::<Config>(r#"{"fetch_depth": -1}"#).is_err());
        assert!(serde_json::from_str::<Config>(r#"{"fetch_depth": "50"}"#).is_err());
    }

    #[test]
    fn the_schema_names_ref_and_refuses_other_fields() {
        let schema = serde_json::to_value(powernode_sdk::schemars::schema_for!(Config)).unwrap();
        assert_eq!(schema["additionalProperties"], false);
        let props = schema["properties"].as_object().unwrap();
        assert!(props.contains_key("ref") && props.contains_key("fetch_depth") && props.contains_key("path"));
    }
}
