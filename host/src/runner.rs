//! Runs a pipeline's steps in order in one workspace: render each step's config, run its
//! plugin, hand its outputs to later steps, stop at the first failure.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::catalog::{Catalog, CatalogError};
use crate::model::TriggerContext;
use crate::pipeline::{
    Pipeline, RenderContext, RenderError, StepDef, StepOutputs, render_config, render_template, should_run,
    step_reads_var, text_reads_var,
};
use crate::provider::RepoBinding;
use crate::runtime::{Level, LogLine, StepFailure, StepInput, StepSuccess, Stream, TemplateRenderer};

/// The `diff` variable is cut to this many bytes (with a note): prompts have limits too.
pub const MAX_DIFF_BYTES: usize = 1 << 20;

/// One run to do.
#[derive(Debug, Clone)]
pub struct RunRequest {
    /// The run's id.
    pub run_id: String,
    /// What started it.
    pub trigger: TriggerContext,
    /// Secrets by name (withheld from fork pull requests, masked everywhere).
    pub secrets: BTreeMap<String, String>,
    /// The workspace every step shares.
    pub workspace: PathBuf,
    /// The forge and repository the run acts on, if any.
    pub forge: Option<Arc<RepoBinding>>,
    /// Sees each step's log lines as they are written: (step name, line).
    pub log_tap: Option<StepLogTap>,
    /// The run's page (`public_url/runs/{id}`) when the server has one.
    pub run_url: Option<String>,
}

/// What a [`StepLogTap`] calls: the step's name and one log line.
pub type StepLineFn = dyn Fn(&str, &LogLine) + Send + Sync;

/// Called with the step's name and each kept line of its log as it is written.
#[derive(Clone)]
pub struct StepLogTap(pub Arc<StepLineFn>);

impl std::fmt::Debug for StepLogTap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StepLogTap")
    }
}

/// Why a step did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum StepError {
    /// Its config could not be rendered.
    #[error("config: {0}")]
    Render(#[from] RenderError),
    /// Its plugin is unknown or was refused.
    #[error("plugin: {0}")]
    Plugin(#[from] CatalogError),
    /// The plugin ran and failed.
    #[error("{0}")]
    Run(#[from] StepFailure),
    /// The workspace could not be checked after the step.
    #[error("workspace: {0}")]
    Workspace(String),
    /// After the step, the workspace held more than `[limits] max_workspace_mb`.
    #[error("workspace_limit: the workspace holds at least {held_mib} MiB, over max_workspace_mb = {limit_mib}")]
    WorkspaceLimit {
        /// What had been counted when counting stopped, in MiB rounded up.
        held_mib: u64,
        /// The limit, in MiB.
        limit_mib: u64,
    },
}

impl StepError {
    /// Whether this ends the run even for a step allowed to fail (`continue_on_error`): the
    /// workspace is over its limit, or could not be checked.
    pub fn ends_run(&self) -> bool {
        matches!(self, StepError::Workspace(_) | StepError::WorkspaceLimit { .. })
    }
}

/// What one step did.
#[derive(Debug)]
pub struct StepResult {
    /// The step's name.
    pub name: String,
    /// Its outputs, or why it failed.
    pub outcome: Result<StepSuccess, StepError>,
    /// Its log.
    pub log: Vec<LogLine>,
    /// How long it took.
    pub elapsed: Duration,
    /// Its `if:` was false: it did not run (and left no outputs).
    pub skipped: bool,
}

impl StepResult {
    /// A result for `step` that took no time and logged nothing.
    fn ended(step: &StepDef, outcome: Result<StepSuccess, StepError>) -> StepResult {
        StepResult {
            name: step.name.clone(),
            outcome,
            log: Vec::new(),
            elapsed: Duration::ZERO,
            skipped: false,
        }
    }
}

/// Progress reported while a run goes on.
#[derive(Debug)]
pub enum RunEvent<'a> {
    /// A step is about to run.
    Started(&'a StepDef),
    /// A step finished.
    Finished(&'a StepDef, &'a StepResult),
}

/// How a run ended.
#[derive(Debug)]
pub struct RunSummary {
    /// The run's id.
    pub run_id: String,
    /// The steps that ran or were skipped by their `if:`, in order (steps after a failure
    /// do not run).
    pub steps: Vec<StepResult>,
    /// The run's own `timeout_minutes` ran out.
    pub timed_out: bool,
}

impl RunSummary {
    /// Whether every step of the pipeline ran (or was skipped by its `if:`) and succeeded
    /// or was allowed to fail (`continue_on_error`, unless its error ends the run).
    pub fn succeeded(&self, pipeline: &Pipeline) -> bool {
        !self.timed_out
            && self.steps.len() == pipeline.steps.len()
            && self
                .steps
                .iter()
                .zip(&pipeline.steps)
                .all(|(result, step)| goes_on(&result.outcome, step))
    }
}

/// Runs `pipeline` for `req`, calling `on_event` as steps start and finish.
pub async fn run_pipeline(
    catalog: &Catalog,
    pipeline: &Pipeline,
    req: RunRequest,
    mut on_event: impl FnMut(RunEvent<'_>),
) -> RunSummary {
    let withhold_secrets = req.trigger.is_fork && !pipeline.secrets_for_forks;
    if req.trigger.is_fork && pipeline.secrets_for_forks {
        tracing::warn!(
            run = %req.run_id,
            pipeline = %pipeline.name,
            "a run for a pull request from a fork gets the secrets: the pipeline sets secrets_for_forks"
        );
    }
    let mut ctx = RenderContext {
        vars: trigger_vars(&req.trigger, &req.run_id, &pipeline.name),
        secrets: req.secrets.clone(),
        outputs: BTreeMap::new(),
        withhold_secrets,
    };
    // Step logs never show a secret or the forge token, even if a plugin echoes one.
    let mut mask: Vec<String> = req.secrets.values().cloned().collect();
    // (A GitHub App's installation tokens never reach a plugin and are not known here.)
    mask.extend(
        req.forge
            .iter()
            .filter_map(|f| f.fixed_token())
            .map(|t| t.expose().to_string()),
    );
    let mut summary = RunSummary {
        run_id: req.run_id.clone(),
        steps: Vec::new(),
        timed_out: false,
    };
    // Every step's plugin loads under its grant before the first step runs, so a run never
    // stops half-way for a plugin that was refused from the start.
    if let Some((step, error)) = preflight(catalog, pipeline).await {
        let result = StepResult::ended(step, Err(error));
        on_event(RunEvent::Finished(step, &result));
        summary.steps.push(result);
        return summary;
    }
    let deadline = pipeline.timeout().map(|limit| Instant::now() + limit);
    let diff = DiffVar::default();
    for step in &pipeline.steps {
        if step_reads_var(step, "diff") {
            diff.set(&mut ctx, &req).await;
        }
        match should_run(step, &ctx) {
            Ok(true) => {}
            Ok(false) => {
                let result = StepResult {
                    skipped: true,
                    ..StepResult::ended(step, Ok(StepSuccess::default()))
                };
                on_event(RunEvent::Finished(step, &result));
                summary.steps.push(result);
                continue;
            }
            Err(e) => {
                let result = StepResult::ended(step, Err(e.into()));
                on_event(RunEvent::Finished(step, &result));
                summary.steps.push(result);
                break;
            }
        }
        let left = deadline.map(|d| d.saturating_duration_since(Instant::now()));
        if left == Some(Duration::ZERO) {
            summary.timed_out = true;
            break;
        }
        let timeout = left.map_or(step.timeout(), |left| left.min(step.timeout()));
        on_event(RunEvent::Started(step));
        let span = tracing::info_span!("step", step = %step.name, step_type = %step.step_type);
        let templates = diff.renderer(&ctx, &req);
        let mut result = tracing::Instrument::instrument(
            run_step(catalog, pipeline, step, &req, &ctx, templates, &mask, timeout),
            span,
        )
        .await;
        sweep_links(&req.workspace, &mut result);
        // Measured only when the run would go on: a failure that stops it stays its reason.
        if goes_on(&result.outcome, step) {
            let limit = catalog.runtime().config().host.max_workspace_bytes;
            check_size(&req.workspace, limit, &mut result).await;
        }
        on_event(RunEvent::Finished(step, &result));
        let ok = match &result.outcome {
            Ok(out) => {
                let outputs = StepOutputs {
                    raw_output: out.raw_output.clone(),
                    outputs: out.outputs.clone(),
                };
                ctx.outputs.insert(step.name.clone(), outputs);
                true
            }
            Err(StepError::Run(StepFailure::Timeout(_))) if timeout < step.timeout() => {
                summary.timed_out = true;
                false
            }
            Err(_) => goes_on(&result.outcome, step),
        };
        summary.steps.push(result);
        if !ok {
            break;
        }
    }
    summary
}

/// The first step whose plugin is unknown or refused, with why.
async fn preflight<'p>(catalog: &Catalog, pipeline: &'p Pipeline) -> Option<(&'p StepDef, StepError)> {
    for step in &pipeline.steps {
        if let Err(e) = catalog.get(&step.step_type).await {
            return Some((step, e.into()));
        }
    }
    None
}

/// Removes links a step left that lead out of the workspace (the next step's native command
/// would write through them) and says so in the step's log.
fn sweep_links(workspace: &std::path::Path, result: &mut StepResult) {
    let at_ms = result.elapsed.as_millis() as u64;
    let note = |message: String| LogLine {
        at_ms,
        level: Level::Warn,
        stream: Stream::Log,
        message,
    };
    match crate::workspace::remove_escaping_links(workspace) {
        Ok(removed) => result.log.extend(removed.into_iter().map(|l| {
            note(format!(
                "removed symbolic link `{}` -> `{}`: it led outside the workspace",
                l.path.display(),
                l.target.display()
            ))
        })),
        // Unchecked, the workspace may hold a way out: the run stops here.
        Err(e) => {
            result.outcome = Err(StepError::Workspace(format!(
                "could not check the workspace for links leading out of it: {e}"
            )))
        }
    }
}

/// Whether the run goes on after a step that ended so: it succeeded, or it was allowed to
/// fail (`continue_on_error`) and its error does not end the run.
fn goes_on(outcome: &Result<StepSuccess, StepError>, step: &StepDef) -> bool {
    match outcome {
        Ok(_) => true,
        Err(e) => step.continue_on_error && !e.ends_run(),
    }
}

/// Fails the step with `workspace_limit` when, after it, the workspace holds more than
/// `limit` bytes (counting stops there, so a huge workspace costs no more than the limit's worth);
/// a step that had failed on its own says so in its log. Measured off the async threads.
async fn check_size(workspace: &std::path::Path, limit: u64, result: &mut StepResult) {
    let root = workspace.to_path_buf();
    let measured = tokio::task::spawn_blocking(move || crate::workspace::usage(&root, limit)).await;
    let error = match measured {
        Ok(Ok(crate::workspace::Usage::Within(_))) => return,
        Ok(Ok(crate::workspace::Usage::Over(held))) => StepError::WorkspaceLimit {
            held_mib: held.div_ceil(1 << 20),
            limit_mib: limit >> 20,
        },
        Ok(Err(e)) => StepError::Workspace(format!("could not measure the workspace: {e}")),
        Err(e) => StepError::Workspace(format!("could not measure the workspace: {e}")),
    };
    if let Err(own) = &result.outcome {
        result.log.push(LogLine {
            at_ms: result.elapsed.as_millis() as u64,
            level: Level::Warn,
            stream: Stream::Log,
            message: format!("the step had failed on its own: {own}"),
        });
    }
    result.outcome = Err(error);
}

/// The run's `diff` variable: the pull request's diff from the forge, fetched at most once
/// and only when a step's config or a stored template reads it.
#[derive(Clone, Default)]
struct DiffVar(Arc<tokio::sync::OnceCell<Option<String>>>);

impl DiffVar {
    /// The diff, fetched on first use; none when the run is not for a pull request, has no
    /// forge, or the forge failed (said in the server's log; reading `diff` then says it is unset).
    async fn get(&self, req: &RunRequest) -> Option<String> {
        let fetch = async {
            let (Some(forge), Some(number)) = (&req.forge, req.trigger.number) else {
                return None;
            };
            if !req.trigger.is_pull_request {
                return None;
            }
            match forge.forge().get_pull_request_diff(forge.repo(), number).await {
                Ok(mut diff) => {
                    if diff.len() > MAX_DIFF_BYTES {
                        let mut cut = MAX_DIFF_BYTES;
                        while !diff.is_char_boundary(cut) {
                            cut -= 1;
                        }
                        diff.truncate(cut);
                        diff.push_str(&format!("\n[diff cut at {MAX_DIFF_BYTES} bytes]\n"));
                    }
                    Some(diff)
                }
                Err(e) => {
                    tracing::warn!(run = %req.run_id, number, error = %e, "cannot fetch the pull request's diff");
                    None
                }
            }
        };
        self.0.get_or_init(|| fetch).await.clone()
    }

    /// Puts `diff` into `ctx` (leaves it unset when there is none).
    async fn set(&self, ctx: &mut RenderContext, req: &RunRequest) {
        if let Some(diff) = self.get(req).await {
            ctx.vars.insert("diff".into(), Value::String(diff));
        }
    }

    /// What `templates.render` calls for a step: renders over the variables and outputs the
    /// step's config saw (and `diff` when the template reads it), without secrets.
    fn renderer(&self, ctx: &RenderContext, req: &RunRequest) -> TemplateRenderer {
        let ctx = RenderContext {
            secrets: BTreeMap::new(),
            ..ctx.clone()
        };
        let (this, req) = (self.clone(), req.clone());
        TemplateRenderer(Arc::new(move |text: String| {
            let (this, req, mut ctx) = (this.clone(), req.clone(), ctx.clone());
            Box::pin(async move {
                if text_reads_var(&text, "diff") {
                    this.set(&mut ctx, &req).await;
                }
                render_template(&text, &ctx).map_err(|e| e.kind.to_string())
            })
        }))
    }
}

#[allow(clippy::too_many_arguments)]
async fn run_step(
    catalog: &Catalog,
    pipeline: &Pipeline,
    step: &StepDef,
    req: &RunRequest,
    ctx: &RenderContext,
    templates: TemplateRenderer,
    mask: &[String],
    timeout: Duration,
) -> StepResult {
    let failed = |e: StepError| StepResult::ended(step, Err(e));
    let rendered = match render_config(step, ctx) {
        Ok(r) => r,
        Err(e) => return failed(e.into()),
    };
    let plugin = match catalog.get(&step.step_type).await {
        Ok(p) => p,
        Err(e) => return failed(e.into()),
    };
    let input = StepInput {
        run_id: req.run_id.clone(),
        pipeline: pipeline.name.clone(),
        step: step.name.clone(),
        trigger: req.trigger.clone(),
        // The WIT promises an object: a step written without `config:` gets `{}`.
        config: match rendered.config {
            Value::Null => Value::Object(Default::default()),
            config => config,
        },
        workspace: req.workspace.clone(),
        timeout,
        secrets: mask.to_vec(),
        forge: req.forge.clone(),
        log_tap: req.log_tap.clone().map(|tap| {
            let name = step.name.clone();
            crate::runtime::LogTap(Arc::new(move |line: &LogLine| (tap.0)(&name, line)))
        }),
        run_url: req.run_url.clone(),
        templates: Some(templates),
    };
    tracing::debug!(timeout_ms = timeout.as_millis() as u64, "step started");
    let report = catalog.runtime().run(&plugin, input).await;
    let outcome = report.outcome.as_ref().err().map_or("success", |e| e.kind());
    tracing::info!(elapsed_ms = report.elapsed.as_millis() as u64, outcome, "step finished");
    StepResult {
        name: step.name.clone(),
        outcome: report.outcome.map_err(StepError::Run),
        log: report.log,
        elapsed: report.elapsed,
        skipped: false,
    }
}

/// The trigger variables templates can read; unset ones are left out so reading them is
/// an error that names them.
pub fn trigger_vars(t: &TriggerContext, run_id: &str, pipeline: &str) -> BTreeMap<String, Value> {
    let mut vars = BTreeMap::new();
    let mut set = |k: &str, v: Option<Value>| {
        if let Some(v) = v {
            vars.insert(k.to_string(), v);
        }
    };
    let s = |v: &Option<String>| v.clone().map(Value::String);
    let nonempty = |v: &str| (!v.is_empty()).then(|| Value::String(v.to_string()));
    let branch = t
        .git_ref
        .as_deref()
        .and_then(|r| r.strip_prefix("refs/heads/"))
        .map(str::to_string)
        .or_else(|| t.head_branch.clone());
    set("event", nonempty(&t.event));
    set("action", s(&t.action));
    set("ref", s(&t.git_ref));
    set("branch", branch.map(Value::String));
    set("before", s(&t.before));
    set("after", s(&t.after));
    set("head_sha", s(&t.head_sha).or_else(|| s(&t.after)));
    set("head_branch", s(&t.head_branch));
    set("base_sha", s(&t.base_sha));
    set("base_branch", s(&t.base_branch));
    set("number", t.number.map(Value::from));
    set("title", s(&t.title));
    set("body", s(&t.body));
    // The seed's names: the same title and body, set only for the kind of thread it is.
    let (pr, issue) = (t.is_pull_request, !t.is_pull_request && t.number.is_some());
    set("pr_title", s(&t.title).filter(|_| pr));
    set("pr_body", s(&t.body).filter(|_| pr));
    set("issue_title", s(&t.title).filter(|_| issue));
    set("issue_body", s(&t.body).filter(|_| issue));
    set("comment_body", s(&t.comment_body));
    set("comment_id", t.comment_id.map(Value::from));
    set("sender", s(&t.sender));
    set("repository", nonempty(&t.repository.full_name));
    set("default_branch", nonempty(&t.repository.default_branch));
    set("run_id", nonempty(run_id));
    set("pipeline", nonempty(pipeline));
    vars
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::TRIGGER_VARS;

    #[test]
    fn trigger_vars_are_exactly_the_documented_names() {
        let t = TriggerContext {
            event: "pull_request".into(),
            action: Some("opened".into()),
            git_ref: Some("refs/heads/feature".into()),
            before: Some("a".into()),
            after: Some("b".into()),
            head_sha: Some("c".into()),
            head_branch: Some("feature".into()),
            base_sha: Some("d".into()),
            base_branch: Some("main".into()),
            number: Some(7),
            title: Some("t".into()),
            body: Some("b".into()),
            comment_body: Some("c".into()),
            comment_id: Some(9),
            sender: Some("alice".into()),
            is_pull_request: true,
            is_fork: false,
            repository: crate::model::Repository {
                full_name: "org/repo".into(),
                default_branch: "main".into(),
                ..Default::default()
            },
        };
        let vars = trigger_vars(&t, "r1", "p");
        // The same thread as an issue (a comment on it) sets the issue names instead.
        let issue = TriggerContext {
            is_pull_request: false,
            ..t.clone()
        };
        let issue_vars = trigger_vars(&issue, "r1", "p");
        let mut names: Vec<&str> = vars.keys().chain(issue_vars.keys()).map(String::as_str).collect();
        // `diff` is fetched only when read, not set from the trigger.
        let mut documented: Vec<&str> = TRIGGER_VARS.iter().copied().filter(|v| *v != "diff").collect();
        names.sort();
        names.dedup();
        documented.sort();
        assert_eq!(names, documented);
        assert_eq!(vars["branch"], "feature");
        assert_eq!(vars["number"], 7);
        assert_eq!((vars["pr_title"].as_str(), vars.get("issue_title")), (Some("t"), None));
        assert_eq!(
            (issue_vars["issue_body"].as_str(), issue_vars.get("pr_body")),
            (Some("b"), None)
        );
    }

    #[test]
    fn unset_vars_are_left_out() {
        let vars = trigger_vars(&TriggerContext::default(), "r1", "p");
        assert_eq!(vars.keys().collect::<Vec<_>>(), ["event", "pipeline", "run_id"]);
    }
}
