//! `powernode:step/provider` → the run's [`RepoBinding`]. A run without a forge connection
//! (a local run with no `--source`) answers every call with an error that says so.

use super::checks;
use crate::policy::Capability;
use crate::provider::{self as domain, ForgeError, RepoBinding, Thread};
use crate::runtime::bindings::powernode::step::provider::{
    self, CheckRun, CheckRunUpdate, Comment, CommitState, NewCheckRun, NewPullRequest, PullRequest, Status,
};
use crate::runtime::bindings::{ProviderError, RateLimit, Repository};
use crate::runtime::state::StepState;

/// What a run without a forge connection answers.
pub(super) const NO_FORGE: &str =
    "this run has no forge connection: configure a [[sources]] entry and run with `--source ID`";

type PResult<T> = wasmtime::Result<Result<T, ProviderError>>;

impl StepState {
    /// The binding, after checking the grant.
    fn binding(&self) -> wasmtime::Result<Result<std::sync::Arc<RepoBinding>, ProviderError>> {
        self.require(Capability::Provider)?;
        Ok(self
            .scope
            .forge
            .clone()
            .ok_or_else(|| ProviderError::Other(NO_FORGE.into())))
    }

    fn thread(&self, number: u64) -> Thread {
        if self.scope.trigger_is_issue {
            Thread::Issue(number)
        } else {
            Thread::PullRequest(number)
        }
    }
}

/// Runs `$body` with `$b` bound to the run's binding, mapping errors to the WIT variant.
macro_rules! with_forge {
    ($self:ident, |$b:ident| $body:expr) => {{
        let $b = match $self.binding()? {
            Ok(b) => b,
            Err(e) => return Ok(Err(e)),
        };
        Ok($body.await.map_err(wit_error))
    }};
}

impl provider::Host for StepState {
    async fn get_repository(&mut self) -> PResult<Repository> {
        with_forge!(self, |b| async {
            let info = b.repository().await?;
            Ok(Repository {
                provider: b.kind().as_str().into(),
                full_name: info.full_name.clone(),
                default_branch: info.default_branch.clone(),
                clone_url: info.clone_url.clone(),
            })
        })
    }

    async fn update_status(&mut self, s: Status) -> PResult<()> {
        let update = domain::StatusUpdate {
            sha: s.sha,
            state: match s.state {
                CommitState::Pending => domain::CommitState::Pending,
                CommitState::Running => domain::CommitState::Running,
                CommitState::Success => domain::CommitState::Success,
                CommitState::Failure => domain::CommitState::Failure,
                CommitState::Error => domain::CommitState::Error,
                CommitState::Canceled => domain::CommitState::Canceled,
            },
            context: s.context,
            description: s.description,
            target_url: s.target_url.or_else(|| self.scope.run_url.clone()),
        };
        with_forge!(self, |b| b.forge().update_status(b.repo(), &update))
    }

    async fn create_pull_request(&mut self, pr: NewPullRequest) -> PResult<PullRequest> {
        let pr = domain::NewPullRequest {
            title: pr.title,
            body: pr.body,
            head: pr.head,
            base: pr.base,
        };
        with_forge!(self, |b| async {
            b.forge().create_pull_request(b.repo(), &pr).await.map(wit_pr)
        })
    }

    async fn find_pull_request(&mut self, head: String, base: String) -> PResult<Option<PullRequest>> {
        with_forge!(self, |b| async {
            Ok(b.forge().find_pull_request(b.repo(), &head, &base).await?.map(wit_pr))
        })
    }

    async fn get_pull_request(&mut self, number: u64) -> PResult<PullRequest> {
        with_forge!(self, |b| async {
            b.forge().get_pull_request(b.repo(), number).await.map(wit_pr)
        })
    }

    async fn get_pull_request_diff(&mut self, number: u64) -> PResult<String> {
        with_forge!(self, |b| b.forge().get_pull_request_diff(b.repo(), number))
    }

    async fn post_comment(&mut self, number: u64, body: String) -> PResult<Comment> {
        let thread = self.thread(number);
        with_forge!(self, |b| async {
            b.forge().post_comment(b.repo(), thread, &body).await.map(wit_comment)
        })
    }

    async fn list_comments(&mut self, number: u64) -> PResult<Vec<Comment>> {
        let thread = self.thread(number);
        with_forge!(self, |b| async {
            Ok(b.forge()
                .list_comments(b.repo(), thread)
                .await?
                .into_iter()
                .map(wit_comment)
                .collect())
        })
    }

    async fn update_comment(&mut self, number: u64, id: u64, body: String) -> PResult<Comment> {
        let thread = self.thread(number);
        with_forge!(self, |b| async {
            b.forge()
                .update_comment(b.repo(), thread, id, &body)
                .await
                .map(wit_comment)
        })
    }

    async fn upsert_comment(&mut self, number: u64, marker: String, body: String) -> PResult<Comment> {
        let thread = self.thread(number);
        with_forge!(self, |b| async {
            b.upsert_comment(thread, &marker, &body).await.map(wit_comment)
        })
    }

    async fn trigger_workflow(
        &mut self,
        workflow: String,
        git_ref: String,
        inputs: Vec<(String, String)>,
    ) -> PResult<()> {
        with_forge!(self, |b| b.forge().trigger_workflow(
            b.repo(),
            &workflow,
            &git_ref,
            &inputs
        ))
    }

    async fn create_check_run(&mut self, run: NewCheckRun) -> PResult<CheckRun> {
        let run = checks::new_run(run, &self.scope.run_id, self.scope.run_url.as_ref());
        with_forge!(self, |b| async {
            b.forge().create_check_run(b.repo(), &run).await.map(checks::wit_run)
        })
    }

    async fn update_check_run(&mut self, id: u64, update: CheckRunUpdate) -> PResult<CheckRun> {
        let update = checks::update(update);
        with_forge!(self, |b| async {
            b.forge()
                .update_check_run(b.repo(), id, &update)
                .await
                .map(checks::wit_run)
        })
    }
}

fn wit_pr(p: domain::PullRequest) -> PullRequest {
    PullRequest {
        number: p.number,
        url: p.url,
        title: p.title,
        body: p.body,
        head: p.head,
        base: p.base,
        head_sha: p.head_sha,
    }
}

fn wit_comment(c: domain::Comment) -> Comment {
    Comment {
        id: c.id,
        body: c.body,
        author: c.author,
        url: c.url,
    }
}

fn wit_error(e: ForgeError) -> ProviderError {
    match e {
        ForgeError::Authentication(m) => ProviderError::Authentication(m),
        ForgeError::Forbidden(m) => ProviderError::Forbidden(m),
        ForgeError::NotFound(m) => ProviderError::NotFound(m),
        ForgeError::Validation(m) => ProviderError::Validation(m),
        ForgeError::Conflict(m) => ProviderError::Conflict(m),
        ForgeError::RateLimited { message, retry_after } => ProviderError::RateLimited(RateLimit {
            message,
            retry_after_secs: retry_after.map(|d| d.as_secs()),
        }),
        ForgeError::Transport(m) => ProviderError::Transport(m),
        ForgeError::Other(m) => ProviderError::Other(m),
    }
}
