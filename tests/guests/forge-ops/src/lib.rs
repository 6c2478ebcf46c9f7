//! Calls forge operations through the `provider` and `git` interfaces, one per run, chosen
//! by config `op`: lets host tests drive every provider call and git against fake forges.
use powernode_sdk::provider::{self, CommitState, NewPullRequest, Status};
use powernode_sdk::{Context, Error, Info, Output, ProviderError, Step, git};
use serde::Deserialize;

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
enum Config {
    Repo,
    Status { sha: String, context: String },
    Comment { number: u64, marker: String, body: String },
    Pr { title: String, head: String, base: String },
    GetPr { number: u64 },
    ClonePush { branch: String },
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
        }
    }
}

powernode_sdk::step!(ForgeOps);
