//! The `create_pr` step: commits every change in the workspace's clone to a branch the step
//! owns and opens a pull request (GitLab: merge request) from it, or updates the open one.
//!
//! The branch is named after the trigger, `<branch_prefix>/issue-42-fix-login-form` (or
//! `pr-7-...`), so a pipeline run again for the same issue replaces the branch (the host
//! force-pushes with lease, and never to the default branch) and the pull request already
//! open from it shows the new commit instead of a second pull request being opened. When
//! nothing changed, nothing is pushed and the step succeeds with `skipped` = `true`.
//!
//! The host commits, pushes and talks to the forge with its token; the plugin needs the
//! `git`, `provider` and `log` grants.

use powernode_sdk::git::{self, PushOptions};
use powernode_sdk::provider::{self, NewPullRequest, PullRequest};
use powernode_sdk::{Context, Error, Info, Output, ProviderError, Step, log, workspace_path};
use serde::Deserialize;

/// The longest slug of the trigger's title in a branch name, in characters.
const SLUG_MAX: usize = 40;

/// The raw output when the workspace had no change.
const NOTHING_CHANGED: &str = "nothing changed: no pull request opened or updated";

fn default_prefix() -> String {
    "powernode".into()
}

/// The step's `config` block.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The pull request's title.
    pub title: String,
    /// The pull request's description (Markdown); or `body_from: step.raw_output`.
    #[serde(default)]
    pub body: String,
    /// Branch to merge into; default: the repository's default branch.
    #[serde(default)]
    pub base: Option<String>,
    /// First part of the branch's name, `<prefix>/issue-42-<title>`.
    #[serde(default = "default_prefix")]
    pub branch_prefix: String,
    /// The branch's whole name, instead of one made from the prefix and the trigger.
    #[serde(default)]
    pub branch: Option<String>,
    /// Open the pull request as a draft: a `Draft: ` title prefix on GitLab, `WIP: ` on
    /// Gitea and Forgejo; not supported on GitHub by this host version (a warning is logged).
    #[serde(default)]
    pub draft: bool,
    /// The commit's message; default: the title.
    #[serde(default)]
    pub commit_message: Option<String>,
    /// The clone's directory, relative to the workspace; default: the workspace root.
    #[serde(default)]
    pub path: Option<String>,
    /// The commit's author and committer name; default: the host's.
    #[serde(default)]
    pub author_name: Option<String>,
    /// The commit's author and committer email; default: the host's.
    #[serde(default)]
    pub author_email: Option<String>,
}

/// Checks a branch name (or prefix) against git's ref-name rules, as the host does before
/// pushing: no spaces or control characters, none of `~ ^ : ? * [ \`, no `..`, `@{` or
/// `//`, no leading or trailing `/`, no component starting with `.` or ending with `.lock`.
pub fn check_branch(name: &str, what: &str) -> Result<(), String> {
    let bad = |why: &str| Err(format!("{what} {name:?} {why}"));
    if name.is_empty() {
        return bad("is empty");
    }
    if name.len() > 200 {
        return bad("is longer than 200 bytes");
    }
    if name.starts_with('-') {
        return bad("starts with '-'");
    }
    if name
        .chars()
        .any(|c| c.is_control() || c.is_whitespace() || "~^:?*[\\".contains(c))
    {
        return bad("contains a space, a control character or one of ~ ^ : ? * [ \\");
    }
    if name.contains("..") || name.contains("@{") || name.contains("//") || name == "@" {
        return bad("contains '..', '@{' or '//', or is '@'");
    }
    if name.starts_with('/') || name.ends_with('/') || name.ends_with('.') {
        return bad("starts or ends with '/' or ends with '.'");
    }
    if name
        .split('/')
        .any(|part| part.starts_with('.') || part.ends_with(".lock"))
    {
        return bad("has a component starting with '.' or ending with '.lock'");
    }
    if name == "HEAD" || name.starts_with("refs/") {
        return bad("is not a short branch name");
    }
    Ok(())
}

/// A Latin-1 letter with its accent dropped; `None` for anything else that is not ASCII.
fn fold(c: char) -> Option<&'static str> {
    Some(match c {
        'à'..='å' => "a",
        'æ' => "ae",
        'ç' => "c",
        'è'..='ë' => "e",
        'ì'..='ï' => "i",
        'ð' => "d",
        'ñ' => "n",
        'ò'..='ö' | 'ø' => "o",
        'ù'..='ü' => "u",
        'ý' | 'ÿ' => "y",
        'þ' => "th",
        'ß' => "ss",
        'œ' => "oe",
        _ => return None,
    })
}

/// The title as a branch-name slug: lower-case ASCII letters and digits (Latin-1 accents
/// dropped), every other run of characters one '-', none at either end, at most
/// [`SLUG_MAX`] characters, cut after a whole word when there is one.
pub fn slug(title: &str) -> String {
    let mut out = String::new();
    for c in title.chars().flat_map(char::to_lowercase) {
        match c {
            'a'..='z' | '0'..='9' => out.push(c),
            _ => match fold(c) {
                Some(s) => out.push_str(s),
                None if !out.is_empty() && !out.ends_with('-') => out.push('-'),
                None => {}
            },
        }
    }
    let out = out.trim_end_matches('-');
    if out.len() <= SLUG_MAX {
        return out.to_owned();
    }
    // ASCII only: byte indices are character indices.
    let cut = if out.as_bytes()[SLUG_MAX] == b'-' {
        SLUG_MAX
    } else {
        out[..SLUG_MAX].rfind('-').unwrap_or(SLUG_MAX)
    };
    out[..cut].trim_end_matches('-').to_owned()
}

/// The branch a run pushes to: `<prefix>/<issue|pr>-<number>-<slug of title>`, or
/// `<prefix>/<issue|pr>-<number>` without a usable title, or `<prefix>/run-<first 8
/// characters of the run id>` without a number.
pub fn branch_name(
    prefix: &str,
    is_pull_request: bool,
    number: Option<u64>,
    title: Option<&str>,
    run_id: &str,
) -> Result<String, String> {
    let prefix = prefix.trim();
    check_branch(prefix, "`branch_prefix`")?;
    let leaf = match number {
        Some(n) => {
            let kind = if is_pull_request { "pr" } else { "issue" };
            match title.map(slug).filter(|s| !s.is_empty()) {
                Some(slug) => format!("{kind}-{n}-{slug}"),
                None => format!("{kind}-{n}"),
            }
        }
        None => {
            let id: String = run_id
                .chars()
                .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
                .take(8)
                .collect::<String>()
                .to_ascii_lowercase();
            let id = id.trim_matches('-');
            if id.is_empty() {
                return Err(
                    "the trigger has no number and the run no id to name the branch after: set `branch`".into(),
                );
            }
            format!("run-{id}")
        }
    };
    let name = format!("{prefix}/{leaf}");
    check_branch(&name, "the branch")?;
    Ok(name)
}

/// A pull request title with the draft marker of `provider`'s forge, and a warning when
/// the forge has none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DraftTitle {
    /// The title to open the pull request with.
    pub title: String,
    /// Why the pull request is not opened as a draft although asked.
    pub warning: Option<String>,
}

/// The title for a pull request opened as a draft (`draft`) on `provider`: GitLab marks
/// merge requests whose title starts with `Draft:`, Gitea and Forgejo pull requests whose
/// title starts with `WIP:`; GitHub has no title convention and the host cannot open a
/// draft, so the title is kept with a warning. A title already marked is kept.
pub fn draft_title(provider: &str, title: &str, draft: bool) -> DraftTitle {
    let keep = |warning: Option<String>| DraftTitle {
        title: title.to_owned(),
        warning,
    };
    if !draft {
        return keep(None);
    }
    let lower = title.to_ascii_lowercase();
    let (prefix, marked): (&str, &[&str]) = match provider {
        "gitlab" => ("Draft: ", &["draft:", "[draft]", "(draft)"]),
        "gitea" | "forgejo" => ("WIP: ", &["wip:", "[wip]"]),
        "github" => {
            return keep(Some(
                "`draft` is not supported on GitHub by this host version: opening a ready pull request".into(),
            ));
        }
        other => {
            return keep(Some(format!(
                "`draft` is not supported for forge {other:?}: opening a ready pull request"
            )));
        }
    };
    if marked.iter().any(|m| lower.starts_with(m)) {
        keep(None)
    } else {
        DraftTitle {
            title: format!("{prefix}{title}"),
            warning: None,
        }
    }
}

/// Whether a failed creation may mean the pull request exists already (opened meanwhile, or
/// not found by the forge's search): the forges answer 409 or 422.
pub fn may_already_exist(e: &ProviderError) -> bool {
    matches!(e, ProviderError::Conflict(_) | ProviderError::Validation(_))
}

/// A non-empty, trimmed string.
fn non_empty(s: Option<&str>) -> Option<&str> {
    s.map(str::trim).filter(|s| !s.is_empty())
}

fn pr_output(pr: PullRequest, branch: &str, commit: &str, created: bool) -> Output {
    Output::new(pr.url.clone())
        .with("number", pr.number)
        .with("url", pr.url)
        .with("branch", branch)
        .with("commit", commit)
        .with("created", created)
        .with("skipped", false)
}

struct CreatePr;

impl Step for CreatePr {
    type Config = Config;

    fn info() -> Info {
        Info::new(
            "create_pr",
            env!("CARGO_PKG_VERSION"),
            "Commits the workspace's changes to a branch of its own and opens or updates a pull request",
        )
    }

    fn run(ctx: Context<Config>) -> Result<Output, Error> {
        let c = &ctx.config;
        let title = c.title.trim();
        if title.is_empty() {
            return Err(Error::config("`title` is empty"));
        }
        let path = workspace_path(c.path.as_deref()).map_err(Error::config)?;
        let branch = match non_empty(c.branch.as_deref()) {
            Some(b) => {
                check_branch(b, "`branch`").map_err(Error::config)?;
                b.to_owned()
            }
            None => branch_name(
                &c.branch_prefix,
                ctx.trigger.is_pull_request,
                ctx.trigger.number,
                ctx.trigger.title.as_deref(),
                &ctx.run_id,
            )
            .map_err(Error::config)?,
        };
        let mut forge = ctx.repository.provider.clone();
        let base = match non_empty(c.base.as_deref()) {
            Some(base) => base.to_owned(),
            None => {
                let repo = provider::get_repository().map_err(Error::from)?;
                if !repo.provider.is_empty() {
                    forge = repo.provider;
                }
                non_empty(Some(&repo.default_branch))
                    .ok_or_else(|| Error::config("the repository's default branch is unknown: set `base`"))?
                    .to_owned()
            }
        };
        if branch == base {
            return Err(Error::config(format!(
                "the branch {branch:?} is the base: a pull request needs a branch of its own"
            )));
        }

        let message = non_empty(c.commit_message.as_deref()).unwrap_or(title).to_owned();
        let commit = git::replace_branch(&PushOptions {
            branch: branch.clone(),
            message,
            path,
            author_name: non_empty(c.author_name.as_deref()).map(str::to_owned),
            author_email: non_empty(c.author_email.as_deref()).map(str::to_owned),
        })
        .map_err(|e| Error::failed(format!("pushing branch {branch} failed: {e}")))?;
        let Some(commit) = commit else {
            log::info(&format!("{NOTHING_CHANGED} (branch {branch})"));
            return Ok(Output::new(NOTHING_CHANGED)
                .with("skipped", true)
                .with("branch", branch));
        };
        log::info(&format!("pushed {commit} to {branch}"));

        if let Some(pr) = provider::find_pull_request(&branch, &base).map_err(Error::from)? {
            log::info(&format!(
                "updated pull request #{} with commit {commit}: {}",
                pr.number, pr.url
            ));
            return Ok(pr_output(pr, &branch, &commit, false));
        }
        let draft = draft_title(&forge, title, c.draft);
        if let Some(warning) = &draft.warning {
            log::warn(warning);
        }
        let new = NewPullRequest {
            title: draft.title,
            body: c.body.clone(),
            head: branch.clone(),
            base: base.clone(),
        };
        match provider::create_pull_request(&new) {
            Ok(pr) => {
                log::info(&format!(
                    "opened pull request #{} from {branch} into {base}: {}",
                    pr.number, pr.url
                ));
                Ok(pr_output(pr, &branch, &commit, true))
            }
            Err(e) if may_already_exist(&e) => match provider::find_pull_request(&branch, &base) {
                Ok(Some(pr)) => {
                    log::info(&format!(
                        "pull request #{} already open: updated with commit {commit}: {}",
                        pr.number, pr.url
                    ));
                    Ok(pr_output(pr, &branch, &commit, false))
                }
                _ => Err(Error::from(e)),
            },
            Err(e) => Err(Error::from(e)),
        }
    }
}

powernode_sdk::step!(CreatePr);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn branches_are_named_after_the_issue_or_pull_request() {
        assert_eq!(
            branch_name("claude", false, Some(42), Some("Fix login form!"), "r1").as_deref(),
            Ok("claude/issue-42-fix-login-form")
        );
        assert_eq!(
            branch_name("powernode", true, Some(7), Some("Add parser"), "r1").as_deref(),
            Ok("powernode/pr-7-add-parser")
        );
        assert_eq!(
            branch_name("bots/claude", false, Some(42), None, "r1").as_deref(),
            Ok("bots/claude/issue-42")
        );
        // A title with nothing usable in it counts as none.
        assert_eq!(
            branch_name("claude", false, Some(42), Some("🚀 !!"), "r1").as_deref(),
            Ok("claude/issue-42")
        );
    }

    #[test]
    fn without_a_number_the_run_names_the_branch() {
        assert_eq!(
            branch_name(
                "claude",
                false,
                None,
                Some("ignored"),
                "0193C5A2-7B1E-7000-8000-000000000000"
            )
            .as_deref(),
            Ok("claude/run-0193c5a2")
        );
        assert_eq!(
            branch_name("claude", false, None, None, "abc").as_deref(),
            Ok("claude/run-abc")
        );
        assert!(branch_name("claude", false, None, None, "").is_err());
    }

    #[test]
    fn titles_are_slugged() {
        assert_eq!(slug("Fix login form!"), "fix-login-form");
        assert_eq!(
            slug("  --Crème brûlée: naïve façade & Œuvre  "),
            "creme-brulee-naive-facade-oeuvre"
        );
        assert_eq!(slug("feat(api): 日本語 support / v2.0"), "feat-api-support-v2-0");
        assert_eq!(slug("Straße"), "strasse");
        assert_eq!(slug("!!!"), "");
    }

    #[test]
    fn long_titles_are_cut_after_a_word() {
        let s = slug("Refactor the authentication middleware to support multiple providers");
        assert_eq!(s, "refactor-the-authentication-middleware");
        assert!(s.len() <= SLUG_MAX);
        // Exactly at a word's end.
        assert_eq!(slug(&format!("{} more", "a".repeat(40))), "a".repeat(40));
        // One long word is cut hard.
        assert_eq!(slug(&"x".repeat(60)), "x".repeat(40));
        assert_eq!(
            branch_name("claude", false, Some(42), Some(&"word ".repeat(20)), "r").unwrap(),
            "claude/issue-42-word-word-word-word-word-word-word-word"
        );
    }

    #[test]
    fn bad_prefixes_are_refused() {
        for prefix in [
            "",
            "my bot",
            "a..b",
            "/claude",
            "claude/",
            "a//b",
            "x:y",
            ".hidden",
            "refs/heads/x",
        ] {
            assert!(
                branch_name(prefix, false, Some(1), Some("t"), "r").is_err(),
                "{prefix:?}"
            );
        }
        assert!(branch_name("team/claude-bot_1", false, Some(1), None, "r").is_ok());
        assert!(check_branch("feature/login", "`branch`").is_ok());
        assert!(check_branch("feature/x.lock", "`branch`").is_err());
    }

    #[test]
    fn draft_titles_follow_each_forge() {
        let title = |p: &str, t: &str, d: bool| draft_title(p, t, d);
        assert_eq!(title("gitlab", "feat: x", true).title, "Draft: feat: x");
        assert_eq!(title("gitlab", "[Draft] feat: x", true).title, "[Draft] feat: x");
        assert_eq!(title("gitea", "feat: x", true).title, "WIP: feat: x");
        assert_eq!(title("forgejo", "wip: feat: x", true).title, "wip: feat: x");
        let gh = title("github", "feat: x", true);
        assert_eq!(gh.title, "feat: x");
        assert!(gh.warning.unwrap().contains("not supported on GitHub"));
        assert!(title("", "feat: x", true).warning.is_some());
        for forge in ["github", "gitlab", "gitea"] {
            assert_eq!(
                title(forge, "feat: x", false),
                DraftTitle {
                    title: "feat: x".into(),
                    warning: None
                }
            );
        }
    }

    #[test]
    fn conflicts_and_validation_errors_may_mean_it_exists() {
        assert!(may_already_exist(&ProviderError::Conflict("exists".into())));
        assert!(may_already_exist(&ProviderError::Validation("exists".into())));
        assert!(!may_already_exist(&ProviderError::Forbidden("no".into())));
    }

    #[test]
    fn the_seed_config_parses_with_defaults() {
        // `body_from` is turned into `body` by the host before the plugin sees it.
        let c: Config = serde_json::from_str(
            r#"{"title": "feat: Fix login", "body": "Done.", "base": "develop", "branch_prefix": "claude"}"#,
        )
        .unwrap();
        assert_eq!(
            (
                c.title.as_str(),
                c.body.as_str(),
                c.base.as_deref(),
                c.branch_prefix.as_str()
            ),
            ("feat: Fix login", "Done.", Some("develop"), "claude")
        );
        assert!(!c.draft && c.branch.is_none() && c.commit_message.is_none() && c.path.is_none());
        let c: Config = serde_json::from_str(r#"{"title": "t"}"#).unwrap();
        assert_eq!(
            (c.body.as_str(), c.branch_prefix.as_str(), c.base),
            ("", "powernode", None)
        );
    }

    #[test]
    fn unknown_fields_and_a_missing_title_are_refused() {
        let err = serde_json::from_str::<Config>(r#"{"title": "t", "branch_prefx": "x"}"#).unwrap_err();
        assert!(err.to_string().contains("unknown field `branch_prefx`"), "{err}");
        let err = serde_json::from_str::<Config>(r#"{"body": "b"}"#).unwrap_err();
        assert!(err.to_string().contains("missing field `title`"), "{err}");
    }

    #[test]
    fn paths_stay_inside_the_workspace() {
        assert_eq!(workspace_path(Some(".")), Ok(None));
        assert_eq!(workspace_path(Some("repo/")), Ok(Some("repo".into())));
        assert!(workspace_path(Some("../x")).is_err());
        assert!(workspace_path(Some("/x")).is_err());
    }
}
