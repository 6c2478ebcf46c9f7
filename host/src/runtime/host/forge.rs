//! `powernode:step/provider` and `powernode:step/git`. A run without a forge connection
//! (a local run with no `--source`) answers every call with an error that says so.

use crate::policy::Capability;
use crate::runtime::bindings::powernode::step::git::{self, CloneOptions, PushOptions};
use crate::runtime::bindings::powernode::step::provider::{self, Comment, NewPullRequest, PullRequest, Status};
use crate::runtime::bindings::{ProviderError, Repository};
use crate::runtime::state::StepState;

const NO_FORGE: &str = "this run has no forge connection: configure a source and run with `--source ID`";

type PResult<T> = wasmtime::Result<Result<T, ProviderError>>;

impl StepState {
    fn no_forge<T>(&self) -> PResult<T> {
        self.require(Capability::Provider)?;
        Ok(Err(ProviderError::Other(NO_FORGE.into())))
    }

    fn no_git<T>(&self) -> wasmtime::Result<Result<T, String>> {
        self.require(Capability::Git)?;
        Ok(Err(NO_FORGE.into()))
    }
}

impl provider::Host for StepState {
    async fn get_repository(&mut self) -> PResult<Repository> {
        self.no_forge()
    }
    async fn update_status(&mut self, _status: Status) -> PResult<()> {
        self.no_forge()
    }
    async fn create_pull_request(&mut self, _pr: NewPullRequest) -> PResult<PullRequest> {
        self.no_forge()
    }
    async fn find_pull_request(&mut self, _head: String, _base: String) -> PResult<Option<PullRequest>> {
        self.no_forge()
    }
    async fn get_pull_request(&mut self, _number: u64) -> PResult<PullRequest> {
        self.no_forge()
    }
    async fn get_pull_request_diff(&mut self, _number: u64) -> PResult<String> {
        self.no_forge()
    }
    async fn post_comment(&mut self, _number: u64, _body: String) -> PResult<Comment> {
        self.no_forge()
    }
    async fn list_comments(&mut self, _number: u64) -> PResult<Vec<Comment>> {
        self.no_forge()
    }
    async fn update_comment(&mut self, _number: u64, _id: u64, _body: String) -> PResult<Comment> {
        self.no_forge()
    }
    async fn upsert_comment(&mut self, _number: u64, _marker: String, _body: String) -> PResult<Comment> {
        self.no_forge()
    }
    async fn trigger_workflow(
        &mut self,
        _workflow: String,
        _git_ref: String,
        _inputs: Vec<(String, String)>,
    ) -> PResult<()> {
        self.no_forge()
    }
}

impl git::Host for StepState {
    async fn clone(&mut self, _opts: CloneOptions) -> wasmtime::Result<Result<String, String>> {
        self.no_git()
    }
    async fn commit_and_push(&mut self, _opts: PushOptions) -> wasmtime::Result<Result<Option<String>, String>> {
        self.no_git()
    }
}
