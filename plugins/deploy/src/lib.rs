//! The `deploy` step: deploys the run's commit to an environment, then verifies it.
//!
//! Four strategies start the deployment: `workflow` (the forge runs a workflow through the
//! host's `provider` interface), `webhook` (a JSON POST, signed with HMAC-SHA256 when a
//! secret is set), `api` (a JSON POST with a bearer token) and `command` (`sh -c` in the
//! workspace through the host's `process` interface). Afterwards an optional health check
//! is polled with a doubling backoff and optional smoke tests run once each.
//!
//! The commit gets a status `deploy/<environment>`: `pending` before, `success` or
//! `failure` after. A status that cannot be set is only a warning.
//!
//! The component imports `provider`, `process`, `log` and `wasi:http`, so the operator
//! grants all of them (with the deployment and health check hosts in the `http` list),
//! whichever strategy a pipeline uses. Secrets (`webhook_secret`, `api_token`) are never
//! logged; of the webhook and API URLs only the host is.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use hmac::{Hmac, Mac};
use powernode_sdk::http::{self, HttpError, Request};
use powernode_sdk::provider::{self, CommitState, Status};
use powernode_sdk::{Context, Error, Info, Output, ProviderError, Step, log, process};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

/// How much of a refusing webhook's or API's body a failure message carries, in characters.
const ERROR_BODY_CHARS: usize = 500;
/// How much of an answer's body health check and smoke test messages carry, in characters.
const SNIPPET_CHARS: usize = 200;
/// Forges cut commit status descriptions at 140 characters.
const MAX_DESCRIPTION_CHARS: usize = 140;
/// The longest wait between two health check attempts, in seconds.
const MAX_BACKOFF_SECS: u64 = 60;
/// Limit on the webhook's or API's answer.
const TRIGGER_TIMEOUT: Duration = Duration::from_secs(60);
/// The `user-agent` of every request.
const USER_AGENT: &str = "powernode-deploy";
/// The environment of the `command` strategy when none is configured.
const DEFAULT_COMMAND_ENVIRONMENT: &str = "default";

/// How the deployment is started.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Strategy {
    /// Run a forge workflow (`workflow`, `inputs`, `ref`).
    #[default]
    Workflow,
    /// POST a JSON payload to `webhook_url`, signed when `webhook_secret` is set.
    Webhook,
    /// POST a JSON payload to `api_url` with `api_token` as a bearer token.
    Api,
    /// Run `command` with `sh -c` in the workspace.
    Command,
}

impl Strategy {
    /// The strategy as configs spell it.
    pub fn name(self) -> &'static str {
        match self {
            Strategy::Workflow => "workflow",
            Strategy::Webhook => "webhook",
            Strategy::Api => "api",
            Strategy::Command => "command",
        }
    }
}

impl fmt::Display for Strategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A secret value: never logged, and its `Debug` does not show it.
#[derive(Clone, PartialEq, Eq, Deserialize, schemars::JsonSchema)]
#[serde(transparent)]
pub struct Secret(pub String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// The step's `config` block. Which fields apply depends on `strategy`; a field of another
/// strategy is refused.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The environment deployed to, e.g. `production`; required, except for strategy
    /// `command` (default `default`). Names the commit status `deploy/<environment>`.
    #[serde(default)]
    pub environment: Option<String>,
    /// `workflow` (default), `webhook`, `api` or `command`.
    #[serde(default)]
    pub strategy: Strategy,
    /// Strategy `workflow`: the workflow to run, e.g. `deploy.yml` (required).
    #[serde(default)]
    pub workflow: Option<String>,
    /// Strategy `workflow`: the workflow's inputs; `environment` is added unless present.
    #[serde(default)]
    pub inputs: BTreeMap<String, String>,
    /// Strategy `workflow`: the branch or ref to run the workflow on; default the trigger's
    /// head branch, else the pushed branch, else the repository's default branch.
    #[serde(default, rename = "ref")]
    pub git_ref: Option<String>,
    /// Strategy `webhook`: where the JSON payload is POSTed (required).
    #[serde(default)]
    pub webhook_url: Option<String>,
    /// Strategy `webhook`: key of the `X-Signature-256: sha256=<hex HMAC-SHA256>` header.
    #[serde(default)]
    pub webhook_secret: Option<Secret>,
    /// Strategy `api`: where the JSON payload is POSTed (required).
    #[serde(default)]
    pub api_url: Option<String>,
    /// Strategy `api`: sent as `authorization: Bearer <token>` (required).
    #[serde(default)]
    pub api_token: Option<Secret>,
    /// Strategy `command`: shell line run with `sh -c` in the workspace (required).
    #[serde(default)]
    pub command: Option<String>,
    /// Strategy `command`: kill the command after this many minutes (a number > 0).
    #[serde(default)]
    pub timeout_minutes: Option<f64>,
    /// The deployment's URL; by default the `deployment_url` or `url` of the webhook's or
    /// API's JSON answer.
    #[serde(default)]
    pub deployment_url: Option<String>,
    /// URL polled after deploying until it answers 2xx.
    #[serde(default)]
    pub health_check_url: Option<String>,
    /// Health check attempts in all (at least 1).
    #[serde(default = "default_health_check_retries")]
    pub health_check_retries: u32,
    /// Wait before the second attempt, in seconds; doubled for each further one, at most 60.
    #[serde(default = "default_health_check_interval_seconds")]
    pub health_check_interval_seconds: u64,
    /// Limit on each health check and smoke test request, in seconds (at least 1).
    #[serde(default = "default_health_check_timeout_seconds")]
    pub health_check_timeout_seconds: u64,
    /// Requests run once each, in order, after the health check.
    #[serde(default)]
    pub smoke_tests: Vec<SmokeTest>,
}

fn default_health_check_retries() -> u32 {
    3
}

fn default_health_check_interval_seconds() -> u64 {
    5
}

fn default_health_check_timeout_seconds() -> u64 {
    10
}

/// One smoke test: a request and what its answer must be.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SmokeTest {
    /// The URL requested (required).
    pub url: String,
    /// The status the answer must have.
    #[serde(default = "default_expect_status")]
    pub expect_status: u16,
    /// Text the answer's body must contain.
    #[serde(default)]
    pub expect_body_contains: Option<String>,
    /// The request's method.
    #[serde(default = "default_method")]
    pub method: String,
}

fn default_expect_status() -> u16 {
    200
}

fn default_method() -> String {
    "GET".into()
}

/// What the step knows of the run besides its config.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Facts {
    /// The run's id.
    pub run_id: String,
    /// The pipeline's name.
    pub pipeline: String,
    /// The repository's `owner/name`.
    pub repository: String,
    /// The repository's default branch, when known.
    pub default_branch: Option<String>,
    /// The trigger's full git ref (`refs/heads/main`).
    pub git_ref: Option<String>,
    /// The trigger's head commit.
    pub head_sha: Option<String>,
    /// The commit a push moved its ref to.
    pub after: Option<String>,
    /// The trigger's head branch.
    pub head_branch: Option<String>,
}

impl Facts {
    /// The facts of a running step; empty strings count as unknown.
    pub fn from_context<C>(ctx: &Context<C>) -> Self {
        let known = |s: &Option<String>| s.clone().filter(|s| !s.trim().is_empty());
        Facts {
            run_id: ctx.run_id.clone(),
            pipeline: ctx.pipeline.clone(),
            repository: ctx.repository.full_name.clone(),
            default_branch: known(&Some(ctx.repository.default_branch.clone())),
            git_ref: known(&ctx.trigger.git_ref),
            head_sha: known(&ctx.trigger.head_sha),
            after: known(&ctx.trigger.after),
            head_branch: known(&ctx.trigger.head_branch),
        }
    }

    /// The commit deployed: the head commit, else the pushed one.
    pub fn sha(&self) -> Option<&str> {
        self.head_sha.as_deref().or(self.after.as_deref())
    }
}

/// The validated deployment: what to start, then what to check.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// The environment deployed to.
    pub environment: String,
    /// The strategy.
    pub strategy: Strategy,
    /// How the deployment is started.
    pub action: Action,
    /// The commit that gets the `deploy/<environment>` status, when known.
    pub sha: Option<String>,
    /// The configured deployment URL.
    pub deployment_url: Option<String>,
    /// The health check, when configured.
    pub health_check: Option<HealthCheck>,
    /// The smoke tests, in order.
    pub smoke_tests: Vec<SmokeTest>,
    /// Limit on each health check and smoke test request.
    pub request_timeout: Duration,
}

/// How the deployment is started.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// `provider::trigger_workflow(workflow, git_ref, inputs)`.
    Workflow {
        /// The workflow file or id.
        workflow: String,
        /// The branch or ref it runs on.
        git_ref: String,
        /// Its inputs, `environment` included.
        inputs: Vec<(String, String)>,
    },
    /// A POST of `body` to a webhook.
    Webhook {
        /// The webhook's URL.
        url: String,
        /// The signing key, when set.
        secret: Option<Secret>,
        /// The exact JSON bytes sent (and signed).
        body: Vec<u8>,
    },
    /// A POST of `body` to an API with a bearer token.
    Api {
        /// The API's URL.
        url: String,
        /// The bearer token.
        token: Secret,
        /// The exact JSON bytes sent.
        body: Vec<u8>,
    },
    /// `sh -c <line>` in the workspace.
    Command {
        /// The shell line.
        line: String,
        /// The command's environment (`DEPLOY_*`).
        env: Vec<(String, String)>,
        /// The process timeout.
        timeout_ms: Option<u64>,
        /// The configured timeout, for messages.
        timeout_minutes: Option<f64>,
    },
}

/// A health check: GET `url` until it answers 2xx, at most `attempts` times.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthCheck {
    /// The URL polled.
    pub url: String,
    /// Attempts in all.
    pub attempts: u32,
    /// Wait before the second attempt, in seconds.
    pub interval_seconds: u64,
}

/// The JSON body POSTed by the `webhook` and `api` strategies, fields in this order.
#[derive(Debug, Serialize)]
pub struct Payload<'a> {
    /// The environment deployed to.
    pub environment: &'a str,
    /// The repository's `owner/name`.
    pub repository: &'a str,
    /// The commit deployed, when known.
    pub sha: Option<&'a str>,
    /// The trigger's full git ref, when known.
    #[serde(rename = "ref")]
    pub git_ref: Option<&'a str>,
    /// The run's id.
    pub run_id: &'a str,
    /// The pipeline's name.
    pub pipeline: &'a str,
    /// `webhook` or `api`.
    pub strategy: &'a str,
}

/// The exact bytes of the payload for `environment` and `strategy`.
pub fn payload(environment: &str, strategy: Strategy, facts: &Facts) -> Vec<u8> {
    let payload = Payload {
        environment,
        repository: &facts.repository,
        sha: facts.sha(),
        git_ref: facts.git_ref.as_deref(),
        run_id: &facts.run_id,
        pipeline: &facts.pipeline,
        strategy: strategy.name(),
    };
    serde_json::to_vec(&payload).expect("the payload is plain strings")
}

/// The `X-Signature-256` value of `body`: `sha256=<lowercase hex HMAC-SHA256>`.
pub fn signature(secret: &[u8], body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes a key of any length");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// The ref a workflow runs on when the config names none: the trigger's head branch, else
/// the branch of a `refs/heads/X` ref, else the repository's default branch.
pub fn choose_ref(facts: &Facts) -> Option<String> {
    facts
        .head_branch
        .clone()
        .or_else(|| {
            facts
                .git_ref
                .as_deref()
                .and_then(|r| r.strip_prefix("refs/heads/"))
                .filter(|b| !b.is_empty())
                .map(String::from)
        })
        .or_else(|| facts.default_branch.clone())
}

/// The waits between health check attempts, in seconds: `interval`, doubled each time,
/// at most [`MAX_BACKOFF_SECS`]; one fewer than `attempts`.
pub fn backoff(interval_seconds: u64, attempts: u32) -> Vec<u64> {
    let mut wait = interval_seconds.min(MAX_BACKOFF_SECS);
    let mut waits = Vec::new();
    for _ in 1..attempts {
        waits.push(wait);
        wait = wait.saturating_mul(2).min(MAX_BACKOFF_SECS);
    }
    waits
}

/// `text` on one line and at most 140 characters, cut with `…`.
pub fn description(text: &str) -> String {
    let line = text.lines().find(|l| !l.trim().is_empty()).unwrap_or("").trim();
    cut(line, MAX_DESCRIPTION_CHARS)
}

/// `text` cut to at most `max` characters, the last one `…` when cut.
fn cut(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let mut s: String = text.chars().take(max.saturating_sub(1)).collect();
    s.push('…');
    s
}

/// Whether an answer with `status` and `body` passes `test`, and if not, why.
pub fn evaluate_smoke(test: &SmokeTest, status: u16, body: &str) -> Result<(), String> {
    let name = format!("smoke test {} {}", test.method, test.url);
    if status != test.expect_status {
        return Err(format!(
            "{name}: expected status {}, got {status}{}",
            test.expect_status,
            snippet(body)
        ));
    }
    if let Some(text) = &test.expect_body_contains
        && !body.contains(text.as_str())
    {
        let got = if body.trim().is_empty() {
            "an empty body".to_string()
        } else {
            format!("`{}`", cut(body.trim(), SNIPPET_CHARS))
        };
        return Err(format!("{name}: expected the body to contain `{text}`, got {got}"));
    }
    Ok(())
}

/// `: <first line of body>` (cut), or nothing for an empty body.
fn snippet(body: &str) -> String {
    match body.lines().find(|l| !l.trim().is_empty()) {
        Some(line) => format!(": {}", cut(line.trim(), SNIPPET_CHARS)),
        None => String::new(),
    }
}

/// What a webhook's or API's answer means: the deployment URL it names (`deployment_url`,
/// else `url`, when its body is a JSON object), or why it counts as a refusal.
pub fn deploy_answer(what: &str, status: u16, body: &str) -> Result<Option<String>, String> {
    if !(200..300).contains(&status) {
        let body = body.trim();
        let mut message = format!("{what} answered {status}");
        if !body.is_empty() {
            message.push_str(": ");
            message.extend(body.chars().take(ERROR_BODY_CHARS));
        }
        return Err(message);
    }
    let Ok(serde_json::Value::Object(map)) = serde_json::from_str::<serde_json::Value>(body) else {
        return Ok(None);
    };
    Ok(["deployment_url", "url"]
        .iter()
        .filter_map(|key| map.get(*key)?.as_str())
        .find(|url| !url.trim().is_empty())
        .map(String::from))
}

/// The host (and port) of `url`, without any credentials; what is logged of secret URLs.
pub fn url_host(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = &rest[..rest.find(['/', '?', '#']).unwrap_or(rest.len())];
    authority.rsplit_once('@').map_or(authority, |(_, host)| host)
}

/// An http(s) URL with a host and no credentials, else a config error about `field`
/// (which shows the URL only when `show` is set: webhook URLs may carry tokens).
fn check_url(field: &str, url: &str, show: bool) -> Result<String, Error> {
    let url = url.trim();
    let scheme_ok = url
        .split_once("://")
        .is_some_and(|(s, _)| s.eq_ignore_ascii_case("http") || s.eq_ignore_ascii_case("https"));
    let rest = url.split_once("://").map_or("", |(_, rest)| rest);
    let authority = &rest[..rest.find(['/', '?', '#']).unwrap_or(rest.len())];
    if scheme_ok && !authority.is_empty() && !authority.contains('@') {
        return Ok(url.to_string());
    }
    let shown = if show { format!(", got `{url}`") } else { String::new() };
    Err(Error::config(format!(
        "`{field}` must be an http(s) URL with a host and no credentials{shown}"
    )))
}

/// A required, non-empty string field.
fn required<'a>(field: &str, value: Option<&'a str>, strategy: Strategy) -> Result<&'a str, Error> {
    match value.map(str::trim) {
        Some(v) if !v.is_empty() => Ok(v),
        Some(_) => Err(Error::config(format!(
            "`{field}` is empty (strategy `{strategy}` needs it)"
        ))),
        None => Err(Error::config(format!(
            "`{field}` is missing: strategy `{strategy}` needs it"
        ))),
    }
}

/// Validates `config` against the run's `facts` and decides everything the step will do.
pub fn plan(config: &Config, facts: &Facts) -> Result<Plan, Error> {
    let strategy = config.strategy;
    let owned: [(&str, bool, Strategy); 9] = [
        ("workflow", config.workflow.is_some(), Strategy::Workflow),
        ("inputs", !config.inputs.is_empty(), Strategy::Workflow),
        ("ref", config.git_ref.is_some(), Strategy::Workflow),
        ("webhook_url", config.webhook_url.is_some(), Strategy::Webhook),
        ("webhook_secret", config.webhook_secret.is_some(), Strategy::Webhook),
        ("api_url", config.api_url.is_some(), Strategy::Api),
        ("api_token", config.api_token.is_some(), Strategy::Api),
        ("command", config.command.is_some(), Strategy::Command),
        ("timeout_minutes", config.timeout_minutes.is_some(), Strategy::Command),
    ];
    if let Some((field, _, owner)) = owned.iter().find(|(_, set, owner)| *set && *owner != strategy) {
        return Err(Error::config(format!(
            "`{field}` belongs to strategy `{owner}`, but `strategy` is `{strategy}` (`workflow` when not set)"
        )));
    }

    let environment = match config.environment.as_deref().map(str::trim) {
        Some(env) if !env.is_empty() => env.to_string(),
        _ if strategy == Strategy::Command => DEFAULT_COMMAND_ENVIRONMENT.to_string(),
        Some(_) => return Err(Error::config("`environment` is empty")),
        None => {
            return Err(Error::config(format!(
                "`environment` is missing: strategy `{strategy}` needs it (e.g. `environment: production`)"
            )));
        }
    };

    let action = match strategy {
        Strategy::Workflow => {
            let workflow = required("workflow", config.workflow.as_deref(), strategy)?.to_string();
            let git_ref = match config.git_ref.as_deref().map(str::trim) {
                Some(r) if !r.is_empty() => r.to_string(),
                Some(_) => return Err(Error::config("`ref` is empty")),
                None => choose_ref(facts).ok_or_else(|| {
                    Error::config(
                        "no ref to run the workflow on: the trigger has no branch and the repository's \
                         default branch is unknown; set `ref`",
                    )
                })?,
            };
            let mut inputs = config.inputs.clone();
            inputs
                .entry("environment".into())
                .or_insert_with(|| environment.clone());
            Action::Workflow {
                workflow,
                git_ref,
                inputs: inputs.into_iter().collect(),
            }
        }
        Strategy::Webhook => {
            let url = check_url(
                "webhook_url",
                required("webhook_url", config.webhook_url.as_deref(), strategy)?,
                false,
            )?;
            let secret = match &config.webhook_secret {
                Some(s) if s.0.is_empty() => {
                    return Err(Error::config(
                        "`webhook_secret` is empty (is the secret available to this run?)",
                    ));
                }
                other => other.clone(),
            };
            Action::Webhook {
                url,
                secret,
                body: payload(&environment, strategy, facts),
            }
        }
        Strategy::Api => {
            let url = check_url(
                "api_url",
                required("api_url", config.api_url.as_deref(), strategy)?,
                false,
            )?;
            let token = match &config.api_token {
                None => return Err(Error::config("`api_token` is missing: strategy `api` needs it")),
                Some(t) if t.0.trim().is_empty() => {
                    return Err(Error::config(
                        "`api_token` is empty (is the secret available to this run?)",
                    ));
                }
                Some(t) => Secret(t.0.trim().to_string()),
            };
            Action::Api {
                url,
                token,
                body: payload(&environment, strategy, facts),
            }
        }
        Strategy::Command => {
            let line = required("command", config.command.as_deref(), strategy)?.to_string();
            let timeout_ms = match config.timeout_minutes {
                None => None,
                Some(m) if m.is_finite() && m > 0.0 => Some((m * 60_000.0).ceil() as u64),
                Some(m) => {
                    return Err(Error::config(format!(
                        "`timeout_minutes` must be a number > 0, got {m}"
                    )));
                }
            };
            let mut env = vec![("DEPLOY_ENVIRONMENT".to_string(), environment.clone())];
            if let Some(sha) = facts.sha() {
                env.push(("DEPLOY_SHA".into(), sha.into()));
            }
            if let Some(r) = &facts.git_ref {
                env.push(("DEPLOY_REF".into(), r.clone()));
            }
            Action::Command {
                line,
                env,
                timeout_ms,
                timeout_minutes: config.timeout_minutes,
            }
        }
    };

    let deployment_url = config
        .deployment_url
        .as_deref()
        .map(str::trim)
        .filter(|u| !u.is_empty())
        .map(String::from);

    let health_check = match config.health_check_url.as_deref() {
        None => None,
        Some(url) => {
            if config.health_check_retries == 0 {
                return Err(Error::config("`health_check_retries` must be at least 1"));
            }
            Some(HealthCheck {
                url: check_url("health_check_url", url, true)?,
                attempts: config.health_check_retries,
                interval_seconds: config.health_check_interval_seconds,
            })
        }
    };
    if config.health_check_timeout_seconds == 0 {
        return Err(Error::config("`health_check_timeout_seconds` must be at least 1"));
    }

    let mut smoke_tests = Vec::with_capacity(config.smoke_tests.len());
    for (i, test) in config.smoke_tests.iter().enumerate() {
        let field = format!("smoke_tests[{i}].url");
        let url = check_url(&field, &test.url, true)?;
        let method = test.method.trim().to_ascii_uppercase();
        if method.is_empty() || !method.chars().all(|c| c.is_ascii_uppercase()) {
            return Err(Error::config(format!(
                "`smoke_tests[{i}].method` must be an HTTP method such as GET, got `{}`",
                test.method
            )));
        }
        if !(100..=599).contains(&test.expect_status) {
            return Err(Error::config(format!(
                "`smoke_tests[{i}].expect_status` must be an HTTP status (100-599), got {}",
                test.expect_status
            )));
        }
        smoke_tests.push(SmokeTest {
            url,
            method,
            ..test.clone()
        });
    }

    Ok(Plan {
        environment,
        strategy,
        action,
        sha: facts.sha().map(String::from),
        deployment_url,
        health_check,
        smoke_tests,
        request_timeout: Duration::from_secs(config.health_check_timeout_seconds),
    })
}

/// The one-line summary of a successful deployment.
pub fn summary(plan: &Plan, done: &Done) -> String {
    let mut s = match &plan.action {
        Action::Workflow { workflow, git_ref, .. } => format!(
            "workflow {workflow} triggered on {git_ref} to deploy to {}",
            plan.environment
        ),
        _ => format!("deployed to {} ({})", plan.environment, plan.strategy),
    };
    if let Some(url) = &done.deployment_url {
        s.push_str(&format!(" at {url}"));
    }
    if let Some(n) = done.health_checks {
        s.push_str(&format!("; healthy after {n} {}", plural(n as usize, "attempt")));
    }
    if !plan.smoke_tests.is_empty() {
        let n = plan.smoke_tests.len();
        s.push_str(&format!("; {n} {} passed", plural(n, "smoke test")));
    }
    s
}

fn plural(n: usize, word: &str) -> String {
    if n == 1 { word.to_string() } else { format!("{word}s") }
}

/// What the deployment has found out so far; known to the failure status too.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Done {
    /// The deployment's URL, once known.
    pub deployment_url: Option<String>,
    /// Health check attempts used, once the check passed.
    pub health_checks: Option<u32>,
}

/// The short reason a failure status shows.
fn reason(e: &Error) -> String {
    match e {
        Error::InvalidConfig(m) | Error::Failed(m) => description(m),
        Error::Provider(p) => description(&format!("workflow not triggered: {}", provider_message(p))),
    }
}

/// A provider error in words.
fn provider_message(e: &ProviderError) -> String {
    match e {
        ProviderError::Authentication(m) => format!("authentication failed: {m}"),
        ProviderError::Forbidden(m) => format!("forbidden: {m}"),
        ProviderError::NotFound(m) => format!("not found: {m}"),
        ProviderError::Validation(m) => format!("rejected: {m}"),
        ProviderError::Conflict(m) => format!("conflict: {m}"),
        ProviderError::RateLimited(r) => format!("rate limited: {}", r.message),
        ProviderError::Transport(m) => format!("forge unreachable: {m}"),
        ProviderError::Other(m) => m.clone(),
    }
}

/// Sets the `deploy/<environment>` status; a failure is only a warning.
fn set_status(plan: &Plan, state: CommitState, text: &str, target_url: Option<&str>) {
    let Some(sha) = &plan.sha else { return };
    let status = Status {
        sha: sha.clone(),
        state,
        context: format!("deploy/{}", plan.environment),
        description: Some(description(text)),
        target_url: target_url.map(String::from),
    };
    if let Err(e) = provider::update_status(&status) {
        log::warn(&format!(
            "could not set status {}: {}",
            status.context,
            provider_message(&e)
        ));
    }
}

/// Starts the deployment; returns the deployment URL an answer named.
fn start(plan: &Plan) -> Result<Option<String>, Error> {
    match &plan.action {
        Action::Workflow {
            workflow,
            git_ref,
            inputs,
        } => {
            let names: Vec<&str> = inputs.iter().map(|(k, _)| k.as_str()).collect();
            log::info(&format!(
                "deploy to {} (workflow): triggering {workflow} on {git_ref} with inputs {}",
                plan.environment,
                names.join(", ")
            ));
            provider::trigger_workflow(workflow, git_ref, inputs).map_err(|e| {
                log::error(&format!("could not trigger {workflow}: {}", provider_message(&e)));
                Error::Provider(e)
            })?;
            Ok(None)
        }
        Action::Webhook { url, secret, body } => {
            let mut req = Request::new("POST", url);
            if let Some(secret) = secret {
                req = req.header("x-signature-256", &signature(secret.0.as_bytes(), body));
            }
            let signed = if secret.is_some() { ", signed" } else { "" };
            log::info(&format!(
                "deploy to {} (webhook{signed}): POST to {}",
                plan.environment,
                url_host(url)
            ));
            post(&format!("webhook {}", url_host(url)), req, body)
        }
        Action::Api { url, token, body } => {
            log::info(&format!(
                "deploy to {} (api): POST to {}",
                plan.environment,
                url_host(url)
            ));
            let req = Request::new("POST", url).header("authorization", &format!("Bearer {}", token.0));
            post(&format!("api {}", url_host(url)), req, body)
        }
        Action::Command {
            line,
            env,
            timeout_ms,
            timeout_minutes,
        } => {
            log::info(&format!("deploy to {} (command)", plan.environment));
            log::info(&format!("$ {line}"));
            let cmd = process::Command {
                program: "sh".into(),
                args: vec!["-c".into(), line.clone()],
                cwd: None,
                env: env.clone(),
                timeout_ms: *timeout_ms,
                stdin: None,
            };
            let out =
                process::run(&cmd).map_err(|e| Error::failed(format!("could not run the deploy command: {e}")))?;
            let stdout = String::from_utf8_lossy(&out.stdout);
            let stderr = String::from_utf8_lossy(&out.stderr);
            stdout.lines().for_each(log::info);
            stderr.lines().for_each(log::warn);
            match command_failure(out.exit_code, out.timed_out, *timeout_minutes, &stderr) {
                Some(message) => Err(Error::Failed(message)),
                None => Ok(None),
            }
        }
    }
}

/// POSTs `body` as JSON with `req`'s headers; `what` names the destination by host only.
fn post(what: &str, req: Request, body: &[u8]) -> Result<Option<String>, Error> {
    let req = req
        .header("content-type", "application/json")
        .header("user-agent", USER_AGENT)
        .body(body.to_vec())
        .timeout(TRIGGER_TIMEOUT);
    let answer = http::send(&req).map_err(|e| match e {
        // Its text may quote the URL, which may carry a token.
        HttpError::Invalid(_) => Error::failed(format!("{what}: the request is invalid")),
        e => Error::failed(format!("{what}: no answer: {e}")),
    })?;
    let url = deploy_answer(what, answer.status, &answer.text()).map_err(Error::Failed)?;
    log::info(&format!("{what} answered {}", answer.status));
    Ok(url)
}

/// Why the deploy command counts as failed, or `None` when it exited 0.
pub fn command_failure(
    exit_code: Option<i32>,
    timed_out: bool,
    timeout_minutes: Option<f64>,
    stderr: &str,
) -> Option<String> {
    process::failure("deploy command", exit_code, timed_out, timeout_minutes, stderr)
}

/// Polls the health check; the attempts used when it passed.
fn health_check(check: &HealthCheck, timeout: Duration) -> Result<u32, Error> {
    let waits = backoff(check.interval_seconds, check.attempts);
    let mut last = String::new();
    for attempt in 1..=check.attempts {
        let req = Request::get(&check.url)
            .header("user-agent", USER_AGENT)
            .timeout(timeout);
        match http::send(&req) {
            Ok(answer) if answer.is_success() => {
                log::info(&format!(
                    "health check {}: {} (attempt {attempt}/{})",
                    check.url, answer.status, check.attempts
                ));
                return Ok(attempt);
            }
            Ok(answer) => last = format!("last answer {}{}", answer.status, snippet(&answer.text())),
            Err(e) => last = format!("last attempt got no answer: {e}"),
        }
        log::warn(&format!(
            "health check {}: attempt {attempt}/{}: {last}",
            check.url, check.attempts
        ));
        if let Some(&wait) = waits.get(attempt as usize - 1) {
            log::info(&format!("next health check in {wait} s"));
            std::thread::sleep(Duration::from_secs(wait));
        }
    }
    Err(Error::failed(format!(
        "health check {} failed after {} {}: {last}",
        check.url,
        check.attempts,
        plural(check.attempts as usize, "attempt")
    )))
}

/// Runs one smoke test.
fn smoke_test(test: &SmokeTest, timeout: Duration) -> Result<(), Error> {
    let req = Request::new(&test.method, &test.url)
        .header("user-agent", USER_AGENT)
        .timeout(timeout);
    let answer = http::send(&req).map_err(|e| {
        Error::failed(format!(
            "smoke test {} {}: expected status {}, got no answer: {e}",
            test.method, test.url, test.expect_status
        ))
    })?;
    evaluate_smoke(test, answer.status, &answer.text()).map_err(Error::Failed)?;
    log::info(&format!(
        "smoke test {} {}: {} ok",
        test.method, test.url, answer.status
    ));
    Ok(())
}

/// Deploys, then verifies; `done` keeps what was learnt even when a later part fails.
fn deploy(plan: &Plan, done: &mut Done) -> Result<(), Error> {
    let answered = start(plan)?;
    done.deployment_url = plan.deployment_url.clone().or(answered);
    if let Some(check) = &plan.health_check {
        done.health_checks = Some(health_check(check, plan.request_timeout)?);
    }
    for test in &plan.smoke_tests {
        smoke_test(test, plan.request_timeout)?;
    }
    Ok(())
}

struct Deploy;

impl Step for Deploy {
    type Config = Config;

    fn info() -> Info {
        Info::new(
            "deploy",
            env!("CARGO_PKG_VERSION"),
            "Deploys through a workflow, webhook, API or command, then checks health and smoke tests",
        )
    }

    fn run(ctx: Context<Config>) -> Result<Output, Error> {
        let facts = Facts::from_context(&ctx);
        let plan = plan(&ctx.config, &facts)?;
        if plan.sha.is_none() {
            log::info("this run has no commit: no deploy status is set");
        }
        set_status(
            &plan,
            CommitState::Pending,
            &format!("Deploying to {} ({})", plan.environment, plan.strategy),
            plan.deployment_url.as_deref(),
        );
        let mut done = Done::default();
        if let Err(e) = deploy(&plan, &mut done) {
            set_status(&plan, CommitState::Failure, &reason(&e), done.deployment_url.as_deref());
            return Err(e);
        }
        set_status(
            &plan,
            CommitState::Success,
            &format!("Deployed to {}", plan.environment),
            done.deployment_url.as_deref(),
        );
        let line = summary(&plan, &done);
        log::info(&line);
        let mut out = Output::new(line)
            .with("environment", &plan.environment)
            .with("strategy", plan.strategy)
            .with("status", "success");
        if let Some(url) = &done.deployment_url {
            out = out.with("deployment_url", url);
        }
        if let Some(n) = done.health_checks {
            out = out.with("health_checks", n);
        }
        Ok(out)
    }
}

powernode_sdk::step!(Deploy);

#[cfg(test)]
mod tests;
