//! The `update_status` step: sets a commit status (GitHub and Gitea `context`, GitLab
//! `name`) on the run's commit or a given `sha`, as a pipeline's own checks report
//! alongside the host's `powernode/<pipeline>` status.

use powernode_sdk::provider::{self, CommitState, Status};
use powernode_sdk::{Context, Error, Info, Output, Step};
use serde::Deserialize;

/// The step's `config` block.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// `pending`, `running`, `success`, `failure`, `error` or `canceled`.
    pub state: String,
    /// The status's name.
    #[serde(default)]
    pub context: Option<String>,
    /// One line shown next to it.
    #[serde(default)]
    pub description: Option<String>,
    /// Where its details link leads.
    #[serde(default)]
    pub target_url: Option<String>,
    /// The commit; the trigger's head commit by default.
    #[serde(default)]
    pub sha: Option<String>,
}

/// The state called `name`, as the seed and the forges spell them (`cancelled` too).
pub fn state(name: &str) -> Result<CommitState, Error> {
    Ok(match name.trim().to_ascii_lowercase().as_str() {
        "pending" => CommitState::Pending,
        "running" => CommitState::Running,
        "success" => CommitState::Success,
        "failure" | "failed" => CommitState::Failure,
        "error" => CommitState::Error,
        "canceled" | "cancelled" => CommitState::Canceled,
        other => {
            return Err(Error::config(format!(
                "unknown state `{other}`: pending, running, success, failure, error or canceled"
            )));
        }
    })
}

struct UpdateStatus;

impl Step for UpdateStatus {
    type Config = Config;

    fn info() -> Info {
        Info::new(
            "update_status",
            env!("CARGO_PKG_VERSION"),
            "Sets a commit status on the run's commit",
        )
    }

    fn run(ctx: Context<Config>) -> Result<Output, Error> {
        let state = state(&ctx.config.state)?;
        let sha = ctx
            .config
            .sha
            .clone()
            .or_else(|| ctx.trigger.head_sha.clone())
            .or_else(|| ctx.trigger.after.clone())
            .ok_or_else(|| Error::config("this run has no commit: set `sha`"))?;
        let context = ctx
            .config
            .context
            .clone()
            .unwrap_or_else(|| format!("powernode/{}/{}", ctx.pipeline, ctx.step));
        let status = Status {
            sha: sha.clone(),
            state,
            context: context.clone(),
            description: ctx.config.description.clone(),
            target_url: ctx.config.target_url.clone(),
        };
        provider::update_status(&status).map_err(Error::from)?;
        Ok(Output::new(format!("{context}: {} on {sha}", ctx.config.state.trim()))
            .with("context", context)
            .with("sha", sha))
    }
}

powernode_sdk::step!(UpdateStatus);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_are_read_as_the_forges_spell_them() {
        assert!(matches!(state("success"), Ok(CommitState::Success)));
        assert!(matches!(state(" Failed "), Ok(CommitState::Failure)));
        assert!(matches!(state("cancelled"), Ok(CommitState::Canceled)));
        let err = state("done").unwrap_err();
        assert!(format!("{err:?}").contains("unknown state `done`"), "{err:?}");
    }

    #[test]
    fn a_state_is_required() {
        let err = serde_json::from_str::<Config>(r#"{"context": "ci"}"#).unwrap_err();
        assert!(err.to_string().contains("missing field `state`"), "{err}");
    }
}
