//! Running one step: a fresh instance from the plugin's pre-instance, WASI confined to
//! the workspace, epoch deadline and memory cap, and every way it can end given a name.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use wasmtime::component::{ResourceTable, ResourceTableError};
use wasmtime::{Store, Trap, UpdateDeadline, WasmBacktrace};
use wasmtime_wasi::{FsPerms, WasiCtxBuilder};
use wasmtime_wasi_http::{FieldMapError, WasiHttpCtx};

use super::bindings::{self, StepContext, StepError};
use super::host::http::HttpPolicy;
use super::log::{LogFlood, LogLine, StepLog, Stream};
use super::state::{MemoryExceeded, MemoryLimiter, StepScope, StepState};
use super::stdio::LogPipe;
use super::{HostLimits, Plugin, Runtime};
use crate::model::TriggerContext;
use crate::policy::Grant;
use crate::provider::RepoBinding;

/// Everything one step run needs.
#[derive(Debug, Clone)]
pub struct StepInput {
    /// The run's id.
    pub run_id: String,
    /// The pipeline's name.
    pub pipeline: String,
    /// The step's name.
    pub step: String,
    /// What started the run (carries the repository).
    pub trigger: TriggerContext,
    /// The rendered config.
    pub config: serde_json::Value,
    /// The run's workspace on the host.
    pub workspace: PathBuf,
    /// The step's time limit.
    pub timeout: Duration,
    /// Values masked in the step log.
    pub secrets: Vec<String>,
    /// The forge and repository `provider` and `git` calls act on; none for local runs
    /// without a source.
    pub forge: Option<Arc<RepoBinding>>,
    /// Sees each kept log line as it is written.
    pub log_tap: Option<super::LogTap>,
    /// The run's page, the default `target-url` of statuses a step sets.
    pub run_url: Option<String>,
    /// Renders stored templates for `templates.render`; none renders nothing.
    pub templates: Option<TemplateRenderer>,
}

/// What a [`TemplateRenderer`] calls: a template's text in, the rendered text or why not out.
pub type RenderFn = dyn Fn(String) -> futures_util::future::BoxFuture<'static, Result<String, String>> + Send + Sync;

/// Renders a stored template's text with the run's variables: supplied by the runner, which
/// knows them, so the runtime need not.
#[derive(Clone)]
pub struct TemplateRenderer(pub Arc<RenderFn>);

impl std::fmt::Debug for TemplateRenderer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TemplateRenderer")
    }
}

/// A step that succeeded.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct StepSuccess {
    /// `{step}.raw_output`.
    pub raw_output: String,
    /// `{step}.{name}`.
    pub outputs: BTreeMap<String, String>,
}

/// How a step failed, each cause with its own name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, serde::Serialize)]
#[serde(tag = "kind", content = "message", rename_all = "snake_case")]
pub enum StepFailure {
    /// The plugin rejected its config.
    #[error("invalid config: {0}")]
    InvalidConfig(String),
    /// The plugin ran and reported failure.
    #[error("failed: {0}")]
    Failed(String),
    /// A forge operation failed.
    #[error("forge error: {0}")]
    Provider(String),
    /// The step ran past its time limit (epoch interruption or a host call cut off).
    #[error("timeout: the step ran longer than its limit of {0:?} and was stopped")]
    Timeout(Duration),
    /// The plugin tried to use more memory than its cap.
    #[error("{0}")]
    MemoryLimit(String),
    /// The plugin exhausted its wasm stack.
    #[error("stack overflow: the plugin exhausted its wasm stack")]
    StackOverflow,
    /// The plugin panicked (Rust) or raised a fatal error.
    #[error("plugin panicked: {0}")]
    Panic(String),
    /// The plugin wrote more log than allowed.
    #[error("{0}")]
    LogFlood(String),
    /// The plugin made the host hold more than a host-side limit allows (handles, header
    /// sizes); the limit is named.
    #[error("resource limit: {0}")]
    ResourceLimit(String),
    /// Any other trap, or the instance could not be created.
    #[error("plugin trapped: {0}")]
    Trap(String),
}

impl StepFailure {
    /// A short stable name for the kind of failure.
    pub fn kind(&self) -> &'static str {
        match self {
            StepFailure::InvalidConfig(_) => "invalid_config",
            StepFailure::Failed(_) => "failed",
            StepFailure::Provider(_) => "provider",
            StepFailure::Timeout(_) => "timeout",
            StepFailure::MemoryLimit(_) => "memory_limit",
            StepFailure::StackOverflow => "stack_overflow",
            StepFailure::Panic(_) => "panic",
            StepFailure::LogFlood(_) => "log_flood",
            StepFailure::ResourceLimit(_) => "resource_limit",
            StepFailure::Trap(_) => "trap",
        }
    }
}

/// How a step ended, with its log.
#[derive(Debug, Clone)]
pub struct StepReport {
    /// Success with outputs, or the named failure.
    pub outcome: Result<StepSuccess, StepFailure>,
    /// The step log (bounded, secrets masked).
    pub log: Vec<LogLine>,
    /// Wall time from start to end, including waiting for a free instance.
    pub elapsed: Duration,
}

/// What a store's WASI filesystem sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Filesystem {
    /// The step's workspace, read-write.
    Workspace,
    /// Nothing (for `describe()`).
    None,
}

/// Raised from the epoch callback when the deadline has passed.
#[derive(Debug, thiserror::Error)]
#[error("deadline passed")]
struct DeadlinePassed;

/// The longest a step may run whatever its input says, so a deadline never overflows the clock
/// (pipelines are validated to at most 7 days).
const MAX_TIMEOUT: Duration = Duration::from_secs(7 * 24 * 3600);

/// Host calls get this long past the deadline before the whole call is dropped.
const HOST_CALL_GRACE: Duration = Duration::from_secs(2);

impl Runtime {
    /// Runs one step of `plugin` in a fresh instance and reports how it ended. Never
    /// panics on guest behaviour: traps, timeouts and limits all become a [`StepFailure`].
    pub async fn run(&self, plugin: &Plugin, input: StepInput) -> StepReport {
        let started = Instant::now();
        let timeout = input.timeout.min(MAX_TIMEOUT);
        let _permit = self.permits.acquire().await.expect("semaphore open");
        let log = StepLog::new(self.config.log_limits, &input.secrets).with_tap(input.log_tap.clone());
        let scope = StepScope {
            run_id: input.run_id.clone(),
            plugin: plugin.info.name.clone(),
            repository: input.trigger.repository.full_name.clone(),
            workspace: input.workspace.clone(),
            deadline: Instant::now() + timeout,
            forge: input.forge.clone(),
            trigger_is_issue: input.trigger.event == "issue_comment" && !input.trigger.is_pull_request,
            run_url: input.run_url.clone(),
            templates: input.templates.clone(),
        };
        let outcome = match self.new_store(scope, plugin.grant.clone(), log.clone(), Filesystem::Workspace) {
            Err(e) => Err(StepFailure::Trap(format!("cannot set up the step: {e:#}"))),
            Ok(mut store) => {
                let ctx = wit_context(&input);
                let call = async {
                    let made = Instant::now();
                    let instance = plugin.pre.instantiate_async(&mut store).await?;
                    crate::metrics::get().plugin_instantiated(&plugin.info.name, made.elapsed());
                    instance.powernode_step_handler().call_run(&mut store, &ctx).await
                };
                match tokio::time::timeout(timeout + HOST_CALL_GRACE, call).await {
                    Err(_) => Err(StepFailure::Timeout(timeout)),
                    Ok(Err(trap)) => Err(classify(&trap, &log, timeout, &self.config.host)),
                    Ok(Ok(Err(e))) => Err(step_error(e)),
                    Ok(Ok(Ok(out))) => Ok(StepSuccess {
                        raw_output: out.raw_output,
                        outputs: out.outputs.into_iter().collect(),
                    }),
                }
            }
        };
        StepReport {
            outcome,
            log: log.finish(),
            elapsed: started.elapsed(),
        }
    }

    /// A store for one instance: WASI sees at most the workspace (as `.` and `/workspace`),
    /// no environment, no arguments, no sockets; stdout and stderr go to the step log.
    pub(super) fn new_store(
        &self,
        scope: StepScope,
        grant: Grant,
        log: StepLog,
        fs: Filesystem,
    ) -> wasmtime::Result<Store<StepState>> {
        let mut wasi = WasiCtxBuilder::new();
        wasi.stdout(LogPipe::new(log.clone(), Stream::Stdout))
            .stderr(LogPipe::new(log.clone(), Stream::Stderr));
        if fs == Filesystem::Workspace {
            wasi.preopened_dir(&scope.workspace, ".", FsPerms::ReadWrite)?
                .preopened_dir(&scope.workspace, "/workspace", FsPerms::ReadWrite)?;
        }
        wasi.allow_tcp(false).allow_udp(false).allow_ip_name_lookup(false);
        let deadline = scope.deadline;
        let limits = self.config.host;
        let mut http = WasiHttpCtx::new();
        http.set_field_size_limit(limits.http_field_bytes);
        let mut table = ResourceTable::new();
        table.set_max_capacity(limits.max_handles);
        let state = StepState {
            wasi: wasi.build(),
            http,
            table,
            http_policy: HttpPolicy::new(grant.http.clone(), log.clone(), self.config.resolver.clone()),
            limiter: MemoryLimiter::new(self.config.memory_limit),
            log,
            scope,
            grant,
            services: self.services.clone(),
            limits,
            dir_streams: Vec::new(),
        };
        let mut store = Store::new(&self.engine, state);
        store.limiter(|s| &mut s.limiter);
        // Yield to tokio every tick so a busy guest never starves other tasks, and trap
        // once the deadline has passed.
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(move |_| {
            if Instant::now() >= deadline {
                Err(wasmtime::Error::new(DeadlinePassed))
            } else {
                Ok(UpdateDeadline::Yield(1))
            }
        });
        Ok(store)
    }
}

fn wit_context(input: &StepInput) -> StepContext {
    let t = &input.trigger;
    let r = &t.repository;
    bindings::StepContext {
        run_id: input.run_id.clone(),
        pipeline: input.pipeline.clone(),
        step: input.step.clone(),
        repository: bindings::Repository {
            provider: r.provider.clone(),
            full_name: r.full_name.clone(),
            default_branch: r.default_branch.clone(),
            clone_url: r.clone_url.clone(),
        },
        trigger: bindings::Trigger {
            event: t.event.clone(),
            action: t.action.clone(),
            git_ref: t.git_ref.clone(),
            before: t.before.clone(),
            after: t.after.clone(),
            head_sha: t.head_sha.clone(),
            head_branch: t.head_branch.clone(),
            base_sha: t.base_sha.clone(),
            base_branch: t.base_branch.clone(),
            number: t.number,
            title: t.title.clone(),
            body: t.body.clone(),
            comment_body: t.comment_body.clone(),
            comment_id: t.comment_id,
            sender: t.sender.clone(),
            is_pull_request: t.is_pull_request,
            is_fork: t.is_fork,
        },
        config: input.config.to_string(),
    }
}

fn step_error(e: StepError) -> StepFailure {
    use bindings::ProviderError as P;
    match e {
        StepError::InvalidConfig(m) => StepFailure::InvalidConfig(m),
        StepError::Failed(m) => StepFailure::Failed(m),
        StepError::Provider(p) => StepFailure::Provider(match p {
            P::Authentication(m) => format!("authentication: {m}"),
            P::Forbidden(m) => format!("forbidden: {m}"),
            P::NotFound(m) => format!("not found: {m}"),
            P::Validation(m) => format!("validation: {m}"),
            P::Conflict(m) => format!("conflict: {m}"),
            P::RateLimited(r) => match r.retry_after_secs {
                Some(s) => format!("rate limited (retry after {s}s): {}", r.message),
                None => format!("rate limited: {}", r.message),
            },
            P::Transport(m) => format!("transport: {m}"),
            P::Other(m) => m,
        }),
    }
}

/// Whether an out-of-bounds access is a guest's shadow stack running out. Rust and C guests
/// keep part of their stack in linear memory, below their data (`--stack-first`); when it runs
/// out the stack pointer wraps below zero and the next store faults. That fault is told apart
/// from an ordinary bad access by where it happened: at the top of a deep run of frames of
/// one function, i.e. inside a recursion.
fn shadow_stack_overflow(err: &wasmtime::Error) -> bool {
    const MIN_RECURSION: usize = 16;
    let Some(trace) = err.downcast_ref::<WasmBacktrace>() else {
        return false;
    };
    let frames = trace.frames();
    let Some(top) = frames.first() else { return false };
    let same =
        |f: &&wasmtime::FrameInfo| f.func_index() == top.func_index() && f.module().name() == top.module().name();
    frames.iter().take_while(same).count() >= MIN_RECURSION
}

/// Names a trap: our own limits first, then wasmtime's trap codes.
fn classify(err: &wasmtime::Error, log: &StepLog, timeout: Duration, limits: &HostLimits) -> StepFailure {
    if let Some(m) = err.downcast_ref::<MemoryExceeded>() {
        return StepFailure::MemoryLimit(m.to_string());
    }
    if let Some(f) = err.downcast_ref::<LogFlood>() {
        return StepFailure::LogFlood(f.to_string());
    }
    if err.downcast_ref::<DeadlinePassed>().is_some() {
        return StepFailure::Timeout(timeout);
    }
    if let Some(ResourceTableError::Full) = err.downcast_ref::<ResourceTableError>() {
        return StepFailure::ResourceLimit(format!(
            "the step held more than {} handles (open files, directory listings, HTTP objects) at once (limits.max_handles)",
            limits.max_handles
        ));
    }
    if let Some(FieldMapError::TotalSizeTooBig | FieldMapError::TooManyFields) = err.downcast_ref::<FieldMapError>() {
        return StepFailure::ResourceLimit(format!(
            "a set of HTTP header fields grew past {} KiB (limits.http_field_kb)",
            limits.http_field_bytes >> 10
        ));
    }
    match err.downcast_ref::<Trap>() {
        Some(Trap::StackOverflow) => StepFailure::StackOverflow,
        Some(Trap::MemoryOutOfBounds) if shadow_stack_overflow(err) => StepFailure::StackOverflow,
        Some(Trap::Interrupt) => StepFailure::Timeout(timeout),
        Some(Trap::UnreachableCodeReached) => {
            // A Rust guest's panic prints "panicked at <place>:" and then its message to
            // stderr before it aborts.
            let stderr: Vec<String> = log
                .finish()
                .into_iter()
                .filter(|l| l.stream == Stream::Stderr)
                .map(|l| l.message)
                .collect();
            match stderr.iter().position(|m| m.contains("panicked at")) {
                Some(i) => StepFailure::Panic(stderr[i..].iter().take(2).cloned().collect::<Vec<_>>().join(": ")),
                None => StepFailure::Trap(format!("{err:#}")),
            }
        }
        _ => StepFailure::Trap(format!("{err:#}")),
    }
}
