//! Calls forge operations through the `provider` and `git` interfaces, one per run, chosen
//! by config `op`: lets host tests drive every provider call and git against fake forges.
use powernode_sdk::provider::{
    self, Annotation, AnnotationLevel, CheckConclusion, CheckOutput, CheckRunUpdate, CheckStatus, CommitState,
    NewCheckRun, NewPullRequest, Status,
};
use powernode_sdk::{Context, Error, Info, Output, ProviderError, Step, git};
use serde::Deserialize;

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
enum Config {
    Repo,
    Status {
        sha: String,
        context: String,
    },
    Comment {
        number: u64,
        marker: String,
        body: String,
    },
    Pr {
        title: String,
        head: String,
        base: String,
    },
    GetPr {
        number: u64,
    },
    ClonePush {
        branch: String,
    },
    /// A completed check run with `annotations` annotations: created with all of them, or
    /// (`update`) created queued and then completed with them. A source that has no check
    /// runs gets a commit status instead.
    CheckRun {
        sha: String,
        name: String,
        annotations: u32,
        #[serde(default)]
        update: bool,
    },
}

/// `n` annotations on `src/lib.rs`, one per line, cycling through the levels.
fn annotations(n: u32) -> Vec<Annotation> {
    let levels = [
        AnnotationLevel::Notice,
        AnnotationLevel::Warning,
        AnnotationLevel::Failure,
    ];
    (0..n)
        .map(|i| Annotation {
            path: "src/lib.rs".into(),
            start_line: i + 1,
            end_line: i + 1,
            level: levels[i as usize % 3],
            message: format!("finding {}", i + 1),
        })
        .collect()
}

fn check_run(sha: String, name: String, n: u32, update: bool) -> Result<Output, Error> {
    let output = CheckOutput {
        title: format!("{n} findings"),
        summary: format!("**{n}** findings in `src/lib.rs`"),
        annotations: annotations(n),
    };
    let new = NewCheckRun {
        name: name.clone(),
        head_sha: sha.clone(),
        status: if update {
            CheckStatus::Queued
        } else {
            CheckStatus::Completed
        },
        conclusion: (!update).then_some(CheckConclusion::Success),
        details_url: None,
        output: (!update).then(|| output.clone()),
    };
    let created = match provider::create_check_run(&new) {
        Err(ProviderError::Other(m)) if m.contains("not supported by this source") => {
            let status = Status {
                sha,
                state: CommitState::Success,
                context: name,
                description: Some(format!("{n} findings")),
                target_url: None,
            };
            provider::update_status(&status)?;
            return Ok(Output::new("status").with("fallback", m));
        }
        other => other?,
    };
    if update {
        let change = CheckRunUpdate {
            status: Some(CheckStatus::Completed),
            conclusion: Some(CheckConclusion::Success),
            details_url: None,
            output: Some(output),
        };
        provider::update_check_run(created.id, &change)?;
    }
    Ok(Output::new("check_run").with("id", created.id).with("url", created.url))
}

struct ForgeOps;

impl Step for ForgeOps {
    type Config = Config;

    fn info() -> Info {
        Info::new(
            "forge_ops",
            env!("CARGO_PKG_VERSION"),
            "Calls provider and git operations (test)",
        )
    }

    fn run(ctx: Context<Config>) -> Result<Output, Error> {
        match ctx.config {
            Config::Repo => {
                let r = provider::get_repository()?;
                Ok(Output::new(r.full_name)
                    .with("clone_url", r.clone_url)
                    .with("default_branch", r.default_branch))
            }
            Config::Status { sha, context } => {
                let status = Status {
                    sha,
                    state: CommitState::Running,
                    context,
                    description: Some("running".into()),
                    target_url: None,
                };
                provider::update_status(&status)?;
                Ok(Output::new("ok"))
            }
            Config::Comment { number, marker, body } => {
                let c = provider::upsert_comment(number, &marker, &body)?;
                Ok(Output::new(c.body).with("id", c.id))
            }
            Config::Pr { title, head, base } => {
                let pr = NewPullRequest {
                    title,
                    body: "opened by a test".into(),
                    head,
                    base,
                };
                let pr = match provider::create_pull_request(&pr) {
                    Err(ProviderError::Conflict(_)) => provider::find_pull_request(&pr.head, &pr.base)?
                        .ok_or_else(|| Error::failed("conflict, but no open pull request found"))?,
                    other => other?,
                };
                Ok(Output::new(pr.url).with("number", pr.number))
            }
            Config::GetPr { number } => {
                let pr = provider::get_pull_request(number)?;
                Ok(Output::new(pr.title))
            }
            Config::ClonePush { branch } => {
                let opts = git::CloneOptions {
                    git_ref: None,
                    sha: None,
                    depth: Some(1),
                    path: Some("repo".into()),
                };
                let head = git::clone(&opts).map_err(Error::failed)?;
                std::fs::write("repo/powernode.txt", format!("from {head}\n")).map_err(Error::failed)?;
                let push = git::PushOptions {
                    branch,
                    message: "powernode test commit".into(),
                    path: Some("repo".into()),
                    author_name: None,
                    author_email: None,
                };
                let commit = git::commit_and_push(&push).map_err(Error::failed)?;
                Ok(Output::new(commit.unwrap_or_default()).with("cloned", head))
            }
            Config::CheckRun {
                sha,
                name,
                annotations,
                update,
            } => check_run(sha, name, annotations, update),
        }
    }
}

powernode_sdk::step!(ForgeOps);
