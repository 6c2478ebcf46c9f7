//! The `claude_execute` step: runs a prompt through Claude, and hands the answer to later
//! steps.
//!
//! Two backends:
//! - `cli` (default): Claude Code, `claude -p <prompt> --output-format json`, run in the
//!   workspace through the host's `process` interface, so it can read and edit the checkout.
//!   On a pull request or issue the Claude Code session is kept in `kv`
//!   (`session/pr/<n>`, `session/issue/<n>`) and resumed by the next run (`--resume`); a
//!   resume that fails is retried once as a new session.
//! - `api`: one request to the Anthropic Messages API (`POST {api_url}/v1/messages`) over
//!   `wasi:http`, retried on 429, 529 and (at most twice) 500/502/503. It keeps no session:
//!   every run is a new conversation.
//!
//! The answer is `raw_output`; when it is a JSON object (or holds a ```` ```json ```` fenced
//! block with one) its top-level keys also become named outputs. The API key is never logged,
//! nor the prompt (only its length).

use std::fmt;
use std::time::{Duration, Instant};

use powernode_sdk::http::{self, HttpError, Request};
use powernode_sdk::{Context, Error, Info, Output, Step, kv, log, process, templates};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

/// Model of the `api` backend when `model` is not set (the CLI picks its own).
pub const DEFAULT_API_MODEL: &str = "claude-sonnet-4-5";
/// Base URL of the Messages API when `api_url` is not set.
pub const DEFAULT_API_URL: &str = "https://api.anthropic.com";
/// The `anthropic-version` header sent with every request.
pub const ANTHROPIC_VERSION: &str = "2023-06-01";
/// `max_tokens` of the `api` backend when not set.
pub const DEFAULT_MAX_TOKENS: u32 = 4096;
/// Retries of the `api` backend when `max_retries` is not set.
pub const DEFAULT_MAX_RETRIES: u32 = 3;
/// Program of the `cli` backend when `cli_path` is not set.
pub const DEFAULT_CLI: &str = "claude";
/// Prompts longer than this many bytes go to the CLI on stdin instead of as an argument
/// (Linux refuses a single argument over 128 KiB).
pub const MAX_PROMPT_ARG: usize = 100_000;
/// Names of the step's own outputs: keys of a JSON answer never replace them.
pub const RESERVED_OUTPUTS: &[&str] = &[
    "raw_output",
    "session_id",
    "model",
    "input_tokens",
    "output_tokens",
    "cost_usd",
    "backend",
];

/// Longest wait between two API attempts, whatever `retry-after` says.
const MAX_RETRY_DELAY: Duration = Duration::from_secs(60);
/// 500, 502 and 503 answers are retried at most this many times.
const MAX_SERVER_ERROR_RETRIES: u32 = 2;
/// How many trailing stderr lines a failure message carries.
const STDERR_TAIL_LINES: usize = 10;
/// How much of an unexpected output or body a message quotes.
const EXCERPT_CHARS: usize = 300;

/// Which Claude runs the prompt.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Backend {
    /// Claude Code (`claude -p`), run in the workspace.
    #[default]
    Cli,
    /// The Anthropic Messages API over HTTPS.
    Api,
}

impl Backend {
    /// The name pipelines use, also the `backend` output.
    pub fn name(self) -> &'static str {
        match self {
            Backend::Cli => "cli",
            Backend::Api => "api",
        }
    }
}

fn default_true() -> bool {
    true
}

/// The step's `config` block.
#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "claude_execute")]
pub struct Config {
    /// The prompt (the host has rendered its templates). Exactly one of `prompt` and
    /// `prompt_template_id` is required.
    #[serde(default)]
    pub prompt: Option<String>,
    /// Id of a stored prompt template, rendered with the run's variables; instead of `prompt`.
    #[serde(default)]
    pub prompt_template_id: Option<String>,
    /// Model, passed through as given. Default: `claude-sonnet-4-5` for `api`, Claude Code's
    /// own choice for `cli`.
    #[serde(default)]
    pub model: Option<String>,
    /// Minutes (> 0): the CLI's process timeout, or the API's time including retries.
    #[serde(default)]
    #[schemars(extend("exclusiveMinimum" = 0))]
    pub timeout_minutes: Option<f64>,
    /// `cli` only: at most this many agent turns (`--max-turns`).
    #[serde(default)]
    #[schemars(range(min = 1))]
    pub max_turns: Option<u32>,
    /// `cli` only: tools Claude Code may use without asking (`--allowedTools`), e.g.
    /// `["Read", "Edit", "Bash(git diff:*)"]`.
    #[serde(default)]
    pub allowed_tools: Option<Vec<String>>,
    /// `cli` (Claude Code, default) or `api` (the Messages API).
    #[serde(default)]
    pub backend: Backend,
    /// System prompt: `--append-system-prompt` for `cli`, `system` for `api`.
    #[serde(default)]
    pub system: Option<String>,
    /// Anthropic API key, e.g. `${ANTHROPIC_API_KEY}`. Required for `api`; for `cli` it is
    /// passed to Claude Code as `ANTHROPIC_API_KEY`.
    #[serde(default)]
    pub api_key: Option<String>,
    /// `api` only: base URL of the API, default `https://api.anthropic.com`.
    #[serde(default)]
    pub api_url: Option<String>,
    /// `api` only: most tokens of the answer, default 4096.
    #[serde(default)]
    #[schemars(range(min = 1))]
    pub max_tokens: Option<u32>,
    /// `api` only: retries on 429, 529 and server errors, default 3.
    #[serde(default)]
    pub max_retries: Option<u32>,
    /// `cli` only: resume the pull request's or issue's Claude Code session, default true.
    #[serde(default = "default_true")]
    pub session: bool,
    /// `cli` only: the Claude Code program, default `claude` (looked up on the host's PATH).
    #[serde(default)]
    pub cli_path: Option<String>,
}

/// Like a derived `Debug`, but the API key is never shown.
impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("prompt_len", &self.prompt.as_ref().map(String::len))
            .field("prompt_template_id", &self.prompt_template_id)
            .field("model", &self.model)
            .field("timeout_minutes", &self.timeout_minutes)
            .field("max_turns", &self.max_turns)
            .field("allowed_tools", &self.allowed_tools)
            .field("backend", &self.backend)
            .field("system_len", &self.system.as_ref().map(String::len))
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .field("api_url", &self.api_url)
            .field("max_tokens", &self.max_tokens)
            .field("max_retries", &self.max_retries)
            .field("session", &self.session)
            .field("cli_path", &self.cli_path)
            .finish()
    }
}

/// Where the prompt comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PromptSource {
    /// `prompt`, as given.
    Inline(String),
    /// `prompt_template_id`: the template to render.
    Template(String),
}

impl Config {
    /// Checks the fields together (prompt xor template, fields of the other backend, numbers);
    /// returns where the prompt comes from.
    pub fn validate(&self) -> Result<PromptSource, Error> {
        let source = match (&self.prompt, &self.prompt_template_id) {
            (Some(_), Some(_)) => {
                return Err(Error::config("set either `prompt` or `prompt_template_id`, not both"));
            }
            (None, None) => {
                return Err(Error::config(
                    "set `prompt` (the text) or `prompt_template_id` (a stored template)",
                ));
            }
            (Some(prompt), None) if prompt.trim().is_empty() => {
                return Err(Error::config("`prompt` is empty"));
            }
            (Some(prompt), None) => PromptSource::Inline(prompt.clone()),
            (None, Some(id)) if id.trim().is_empty() => {
                return Err(Error::config("`prompt_template_id` is empty"));
            }
            (None, Some(id)) => PromptSource::Template(id.trim().to_string()),
        };
        if let Some(m) = self.timeout_minutes
            && !(m.is_finite() && m > 0.0)
        {
            return Err(Error::config(format!(
                "`timeout_minutes` must be a positive number, got {m}"
            )));
        }
        if self.model.as_deref().is_some_and(|m| m.trim().is_empty()) {
            return Err(Error::config("`model` is empty: leave it out for the default"));
        }
        match self.backend {
            Backend::Cli => {
                let api_only = [
                    ("api_url", self.api_url.is_some()),
                    ("max_tokens", self.max_tokens.is_some()),
                    ("max_retries", self.max_retries.is_some()),
                ];
                if let Some((field, _)) = api_only.iter().find(|(_, set)| *set) {
                    return Err(Error::config(format!("`{field}` applies to `backend: api` only")));
                }
                if self.cli_path.as_deref().is_some_and(|p| p.trim().is_empty()) {
                    return Err(Error::config("`cli_path` is empty"));
                }
                if self.max_turns == Some(0) {
                    return Err(Error::config("`max_turns` must be at least 1"));
                }
                if self.allowed_tools.iter().flatten().any(|t| t.trim().is_empty()) {
                    return Err(Error::config("`allowed_tools` has an empty entry"));
                }
            }
            Backend::Api => {
                let cli_only = [
                    ("max_turns", self.max_turns.is_some()),
                    ("allowed_tools", self.allowed_tools.is_some()),
                    ("cli_path", self.cli_path.is_some()),
                ];
                if let Some((field, _)) = cli_only.iter().find(|(_, set)| *set) {
                    return Err(Error::config(format!("`{field}` applies to `backend: cli` only")));
                }
                match self.api_key.as_deref().map(str::trim) {
                    None => {
                        return Err(Error::config(
                            "`backend: api` needs `api_key` (e.g. `api_key: ${ANTHROPIC_API_KEY}`)",
                        ));
                    }
                    Some("") => {
                        return Err(Error::config(
                            "`api_key` is empty: is the secret set (secrets are withheld from forks)?",
                        ));
                    }
                    Some(_) => {}
                }
                let url = self.api_url();
                if !(url.starts_with("https://") || url.starts_with("http://")) {
                    return Err(Error::config(format!(
                        "`api_url` must start with https:// or http://, got `{url}`"
                    )));
                }
                if self.max_tokens == Some(0) {
                    return Err(Error::config("`max_tokens` must be at least 1"));
                }
            }
        }
        Ok(source)
    }

    /// The API key, when set and not blank.
    pub fn key(&self) -> Option<&str> {
        self.api_key.as_deref().map(str::trim).filter(|k| !k.is_empty())
    }

    /// `api_url` without trailing slashes, or the default.
    pub fn api_url(&self) -> String {
        self.api_url
            .as_deref()
            .map(|u| u.trim().trim_end_matches('/'))
            .unwrap_or(DEFAULT_API_URL)
            .to_string()
    }

    /// The model the `api` backend asks for.
    pub fn api_model(&self) -> &str {
        self.model.as_deref().map(str::trim).unwrap_or(DEFAULT_API_MODEL)
    }

    /// `timeout_minutes` as a duration.
    pub fn timeout(&self) -> Option<Duration> {
        self.timeout_minutes
            .filter(|m| m.is_finite() && *m > 0.0)
            .map(|m| Duration::from_millis((m * 60_000.0).ceil() as u64))
    }

    /// The Claude Code program.
    pub fn cli_program(&self) -> &str {
        self.cli_path.as_deref().map(str::trim).unwrap_or(DEFAULT_CLI)
    }
}

/// The kv key of the Claude Code session of a pull request or issue; none without a number.
pub fn session_key(number: Option<u64>, is_pull_request: bool) -> Option<String> {
    let n = number?;
    Some(if is_pull_request {
        format!("session/pr/{n}")
    } else {
        format!("session/issue/{n}")
    })
}

/// Whether a stored session id is safe to pass to `--resume` (a UUID in practice).
pub fn valid_session_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 128
        && !id.starts_with('-')
        && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// Whether the prompt goes to the CLI on stdin: too long for an argument, or it would read
/// as an option.
pub fn prompt_on_stdin(prompt: &str) -> bool {
    prompt.len() > MAX_PROMPT_ARG || prompt.starts_with('-')
}

/// The CLI's arguments: `-p [PROMPT] --output-format json [--model M] [--max-turns N]
/// [--allowedTools a,b] [--append-system-prompt S] [--resume ID]`.
pub fn cli_args(config: &Config, prompt: &str, resume: Option<&str>) -> Vec<String> {
    let mut args = vec!["-p".to_string()];
    if !prompt_on_stdin(prompt) {
        args.push(prompt.to_string());
    }
    args.extend(["--output-format".to_string(), "json".to_string()]);
    if let Some(model) = &config.model {
        args.extend(["--model".to_string(), model.trim().to_string()]);
    }
    if let Some(n) = config.max_turns {
        args.extend(["--max-turns".to_string(), n.to_string()]);
    }
    let tools: Vec<&str> = config
        .allowed_tools
        .iter()
        .flatten()
        .map(|t| t.trim())
        .filter(|t| !t.is_empty())
        .collect();
    if !tools.is_empty() {
        args.extend(["--allowedTools".to_string(), tools.join(",")]);
    }
    if let Some(system) = config.system.as_deref().filter(|s| !s.trim().is_empty()) {
        args.extend(["--append-system-prompt".to_string(), system.to_string()]);
    }
    if let Some(id) = resume {
        args.extend(["--resume".to_string(), id.to_string()]);
    }
    args
}

/// The host command running the CLI in the workspace root. Its environment is only
/// `ANTHROPIC_API_KEY`, when `api_key` is set (the host adds PATH and HOME).
pub fn cli_command(config: &Config, prompt: &str, resume: Option<&str>) -> process::Command {
    process::Command {
        program: config.cli_program().to_string(),
        args: cli_args(config, prompt, resume),
        cwd: None,
        env: config
            .key()
            .map(|k| vec![("ANTHROPIC_API_KEY".to_string(), k.to_string())])
            .unwrap_or_default(),
        timeout_ms: config.timeout().map(|t| t.as_millis() as u64),
        stdin: prompt_on_stdin(prompt).then(|| prompt.as_bytes().to_vec()),
    }
}

/// What Claude answered, from either backend.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Answer {
    /// The answer's text.
    pub text: String,
    /// The Claude Code session (cli).
    pub session_id: Option<String>,
    /// The model that answered, when known.
    pub model: Option<String>,
    /// Input tokens, as reported.
    pub input_tokens: Option<u64>,
    /// Output tokens, as reported.
    pub output_tokens: Option<u64>,
    /// Cost in USD (cli).
    pub cost_usd: Option<f64>,
    /// Agent turns (cli).
    pub num_turns: Option<u64>,
    /// Why the answer ended (api), e.g. `end_turn`, `max_tokens`.
    pub stop_reason: Option<String>,
}

/// Token counts of either backend.
#[derive(Debug, Deserialize, Default)]
struct Usage {
    #[serde(default)]
    input_tokens: Option<u64>,
    #[serde(default)]
    output_tokens: Option<u64>,
}

/// The object `claude -p --output-format json` prints.
#[derive(Debug, Deserialize)]
struct CliResult {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    subtype: Option<String>,
    #[serde(default)]
    is_error: bool,
    #[serde(default)]
    result: Option<String>,
    #[serde(default)]
    errors: Option<Vec<Value>>,
    #[serde(default)]
    session_id: Option<String>,
    #[serde(default)]
    num_turns: Option<u64>,
    #[serde(default)]
    total_cost_usd: Option<f64>,
    #[serde(default)]
    usage: Option<Usage>,
    #[serde(default, rename = "modelUsage")]
    model_usage: Option<Map<String, Value>>,
}

/// Why a CLI run gave no answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CliFailure {
    /// The step's failure message.
    pub message: String,
    /// Whether a resumed run should be tried again as a new session: the CLI failed before
    /// giving a result, or its error is about the session.
    pub retry_fresh: bool,
}

fn mentions_session(text: &str) -> bool {
    let text = text.to_ascii_lowercase();
    text.contains("session") || text.contains("no conversation found")
}

/// Parses the CLI's stdout: the JSON result object (also as the last line of other output).
fn parse_cli_result(stdout: &str) -> Result<CliResult, String> {
    let trimmed = stdout.trim();
    if trimmed.is_empty() {
        return Err("it printed nothing".into());
    }
    let parse = |s: &str| {
        serde_json::from_str::<CliResult>(s)
            .map_err(|e| e.to_string())
            .and_then(|r| {
                if r.kind == "result" {
                    Ok(r)
                } else {
                    Err(format!("an object of type `{}`, not `result`", r.kind))
                }
            })
    };
    parse(trimmed).or_else(|first| {
        trimmed
            .lines()
            .rev()
            .map(str::trim)
            .find(|l| l.starts_with('{'))
            .filter(|l| *l != trimmed)
            .and_then(|l| parse(l).ok())
            .ok_or_else(|| format!("{first}; it began: {}", excerpt(trimmed)))
    })
}

impl CliResult {
    fn into_answer(self, configured_model: Option<&str>) -> Result<Answer, CliFailure> {
        let failed = self.is_error || self.subtype.as_deref().is_some_and(|s| s != "success");
        if failed {
            let mut details: Vec<String> = Vec::new();
            if let Some(text) = self.result.as_deref().map(str::trim).filter(|t| !t.is_empty()) {
                details.push(text.to_string());
            }
            for e in self.errors.iter().flatten() {
                details.push(match e {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                });
            }
            let detail = if details.is_empty() {
                "no details given".to_string()
            } else {
                details.join("; ")
            };
            let turns = self.num_turns.map(|n| format!(" after {n} turns")).unwrap_or_default();
            let message = match self.subtype.as_deref() {
                None | Some("success") => format!("Claude Code reported an error{turns}: {detail}"),
                Some(sub @ "error_max_turns") => {
                    format!("Claude Code stopped with `{sub}`{turns} (raise `max_turns`): {detail}")
                }
                Some(sub) => format!("Claude Code stopped with `{sub}`{turns}: {detail}"),
            };
            return Err(CliFailure {
                retry_fresh: mentions_session(&detail),
                message,
            });
        }
        let usage = self.usage.unwrap_or_default();
        let model = configured_model
            .map(|m| m.trim().to_string())
            .or_else(|| self.model_usage.as_ref().and_then(main_model));
        Ok(Answer {
            text: self.result.unwrap_or_default(),
            session_id: self.session_id.filter(|s| !s.is_empty()),
            model,
            input_tokens: usage.input_tokens,
            output_tokens: usage.output_tokens,
            cost_usd: self.total_cost_usd,
            num_turns: self.num_turns,
            stop_reason: None,
        })
    }
}

/// The model that cost the most in the CLI's `modelUsage` (the main one; helpers are cheap).
fn main_model(model_usage: &Map<String, Value>) -> Option<String> {
    let cost = |v: &Value| v.get("costUSD").and_then(Value::as_f64).unwrap_or(0.0);
    model_usage
        .iter()
        .max_by(|a, b| cost(a.1).total_cmp(&cost(b.1)))
        .map(|(name, _)| name.clone())
}

/// Judges a finished CLI run: its answer, or why there is none.
pub fn interpret_cli(
    exit_code: Option<i32>,
    timed_out: bool,
    stdout: &str,
    stderr: &str,
    config: &Config,
) -> Result<Answer, CliFailure> {
    if timed_out {
        let message = match config.timeout_minutes {
            Some(m) => format!("Claude Code timed out after {m} minutes"),
            None => "Claude Code timed out (the step's time limit)".to_string(),
        };
        return Err(CliFailure {
            message: with_tail(message, stderr),
            retry_fresh: false,
        });
    }
    let parsed = parse_cli_result(stdout);
    match (exit_code, parsed) {
        (Some(0), Ok(result)) => result.into_answer(config.model.as_deref()),
        (Some(0), Err(e)) => Err(CliFailure {
            message: with_tail(
                format!("Claude Code's output is not its JSON result object: {e}"),
                stderr,
            ),
            retry_fresh: false,
        }),
        (_, Ok(result)) if result.is_error || result.subtype.as_deref().is_some_and(|s| s != "success") => {
            result.into_answer(config.model.as_deref())
        }
        (code, _) => {
            let message = match code {
                Some(code) => format!("Claude Code exited with code {code}"),
                None => "Claude Code was killed by a signal".to_string(),
            };
            let message = if stderr.trim().is_empty() {
                with_tail(message, stdout)
            } else {
                with_tail(message, stderr)
            };
            Err(CliFailure {
                message,
                retry_fresh: true,
            })
        }
    }
}

/// The body of a Messages API request.
pub fn messages_body(model: &str, max_tokens: u32, system: Option<&str>, prompt: &str) -> Value {
    let mut body = json!({
        "model": model,
        "max_tokens": max_tokens,
        "messages": [{ "role": "user", "content": prompt }],
    });
    if let Some(system) = system.filter(|s| !s.trim().is_empty()) {
        body["system"] = Value::String(system.to_string());
    }
    body
}

/// A Messages API response.
#[derive(Debug, Deserialize)]
struct MessagesResponse {
    #[serde(default)]
    content: Option<Vec<ContentBlock>>,
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    stop_reason: Option<String>,
    #[serde(default)]
    usage: Option<Usage>,
}

/// One block of a response's content; only `text` blocks are kept.
#[derive(Debug, Deserialize)]
struct ContentBlock {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    text: Option<String>,
}

/// Parses a successful Messages API response: the text blocks joined, the rest ignored.
pub fn parse_messages_response(body: &str) -> Result<Answer, String> {
    let response: MessagesResponse = serde_json::from_str(body).map_err(|e| {
        format!(
            "the Messages API answered something else than a message: {e}; it began: {}",
            excerpt(body)
        )
    })?;
    let content = response.content.ok_or_else(|| {
        format!(
            "the Messages API's answer has no `content`; it began: {}",
            excerpt(body)
        )
    })?;
    let text: String = content
        .into_iter()
        .filter(|b| b.kind == "text")
        .filter_map(|b| b.text)
        .collect();
    let usage = response.usage.unwrap_or_default();
    Ok(Answer {
        text,
        model: response.model,
        input_tokens: usage.input_tokens,
        output_tokens: usage.output_tokens,
        stop_reason: response.stop_reason,
        ..Answer::default()
    })
}

/// The Messages API's error body, `{"type":"error","error":{"type","message"}}`.
#[derive(Debug, Deserialize)]
struct ErrorBody {
    error: ErrorDetail,
}

#[derive(Debug, Deserialize)]
struct ErrorDetail {
    #[serde(rename = "type", default)]
    kind: String,
    #[serde(default)]
    message: String,
}

/// The failure message of a non-2xx Messages API answer.
pub fn api_error_message(status: u16, body: &str) -> String {
    let detail = match serde_json::from_str::<ErrorBody>(body) {
        Ok(ErrorBody { error }) if !error.kind.is_empty() => format!("{}: {}", error.kind, error.message),
        _ if body.trim().is_empty() => "no details".to_string(),
        _ => excerpt(body),
    };
    match status {
        401 | 403 => format!("the Messages API refused the API key ({detail})"),
        _ => format!("the Messages API answered {status} ({detail})"),
    }
}

/// How long to wait before retrying an answer with `status` after `attempt` retries (0 for
/// the first), or `None` when it is not worth retrying: 429 and 529 always, 500/502/503 for
/// the first two retries. `retry-after` seconds are honoured, else 1 s, 2 s, 4 s, ...; never
/// more than 60 s. The caller also stops at `max_retries` and at its deadline.
pub fn retry_delay(status: u16, retry_after: Option<&str>, attempt: u32) -> Option<Duration> {
    let retryable = match status {
        429 | 529 => true,
        500 | 502 | 503 => attempt < MAX_SERVER_ERROR_RETRIES,
        _ => false,
    };
    if !retryable {
        return None;
    }
    let delay = retry_after
        .and_then(parse_retry_after)
        .unwrap_or_else(|| backoff(attempt));
    Some(delay.min(MAX_RETRY_DELAY))
}

/// `retry-after` in seconds (an HTTP date is not understood: `None`).
pub fn parse_retry_after(value: &str) -> Option<Duration> {
    let value = value.trim();
    value.parse::<u64>().map(Duration::from_secs).ok().or_else(|| {
        value
            .parse::<f64>()
            .ok()
            .filter(|s| s.is_finite() && *s >= 0.0)
            .map(|s| Duration::from_secs_f64(s.min(MAX_RETRY_DELAY.as_secs_f64())))
    })
}

/// 1 s, 2 s, 4 s, ... for retries 0, 1, 2, ...
fn backoff(attempt: u32) -> Duration {
    Duration::from_secs(1u64 << attempt.min(6))
}

/// The JSON object an answer carries: the whole text, or else the first ```` ```json ````
/// fenced block whose content is an object.
pub fn answer_object(text: &str) -> Option<Map<String, Value>> {
    if let Ok(Value::Object(map)) = serde_json::from_str(text.trim()) {
        return Some(map);
    }
    fenced_blocks(text)
        .into_iter()
        .filter(|(info, _)| info.eq_ignore_ascii_case("json"))
        .find_map(|(_, content)| match serde_json::from_str(&content) {
            Ok(Value::Object(map)) => Some(map),
            _ => None,
        })
}

/// The fenced code blocks of Markdown text: (info word, content). An unclosed fence runs to
/// the end.
fn fenced_blocks(text: &str) -> Vec<(String, String)> {
    let mut blocks = Vec::new();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        let opening = line.trim_start();
        let ticks = opening.chars().take_while(|&c| c == '`').count();
        if ticks < 3 {
            continue;
        }
        let info = opening[ticks..].split_whitespace().next().unwrap_or("").to_string();
        let mut content = Vec::new();
        for inner in lines.by_ref() {
            let closing = inner.trim();
            if closing.len() >= ticks && closing.chars().all(|c| c == '`') {
                break;
            }
            content.push(inner);
        }
        blocks.push((info, content.join("\n")));
    }
    blocks
}

/// Whether `name` may be an output name: `[A-Za-z_][A-Za-z0-9_]*`.
pub fn is_simple_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// The named outputs of a JSON answer's keys (strings as-is, other values as compact JSON),
/// and a note for each key skipped (not a simple name, or one of [`RESERVED_OUTPUTS`]).
pub fn json_outputs(object: &Map<String, Value>) -> (Vec<(String, String)>, Vec<String>) {
    let mut outputs = Vec::new();
    let mut skipped = Vec::new();
    for (key, value) in object {
        if !is_simple_name(key) {
            let shown: String = key.chars().take(64).collect();
            skipped.push(format!("`{shown}` is not a simple name"));
        } else if RESERVED_OUTPUTS.contains(&key.as_str()) {
            skipped.push(format!("`{key}` is one of the step's own outputs"));
        } else {
            let value = match value {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            outputs.push((key.clone(), value));
        }
    }
    (outputs, skipped)
}

/// The step's output: the answer's text, the built-in outputs, then a JSON answer's keys;
/// also the notes on skipped keys.
pub fn build_output(answer: &Answer, backend: Backend) -> (Output, Vec<String>) {
    let mut output = Output::new(answer.text.clone()).with("backend", backend.name());
    if let Some(id) = &answer.session_id {
        output = output.with("session_id", id);
    }
    if let Some(model) = &answer.model {
        output = output.with("model", model);
    }
    if let Some(n) = answer.input_tokens {
        output = output.with("input_tokens", n);
    }
    if let Some(n) = answer.output_tokens {
        output = output.with("output_tokens", n);
    }
    if let Some(cost) = answer.cost_usd {
        output = output.with("cost_usd", cost);
    }
    let mut skipped = Vec::new();
    if let Some(object) = answer_object(&answer.text) {
        let (named, notes) = json_outputs(&object);
        output.outputs.extend(named);
        skipped = notes;
    }
    (output, skipped)
}

/// At most [`EXCERPT_CHARS`] characters of `s`, on one line.
fn excerpt(s: &str) -> String {
    let s = s.trim();
    let mut out: String = s.chars().take(EXCERPT_CHARS).collect();
    if out.len() < s.len() {
        out.push('…');
    }
    out.replace('\n', " ")
}

/// `message`, then the last non-empty lines of `output` when there are any.
fn with_tail(mut message: String, output: &str) -> String {
    let lines: Vec<&str> = output.lines().filter(|l| !l.trim().is_empty()).collect();
    if !lines.is_empty() {
        message.push_str("\nlast lines:\n");
        message.push_str(&lines[lines.len().saturating_sub(STDERR_TAIL_LINES)..].join("\n"));
    }
    message
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or("")
}

/// Renders `prompt_template_id`.
fn render_template(id: &str) -> Result<String, Error> {
    match templates::render(id) {
        Ok(Some(text)) if text.trim().is_empty() => Err(Error::config(format!(
            "prompt template `{id}` rendered to an empty prompt"
        ))),
        Ok(Some(text)) => Ok(text),
        Ok(None) => Err(Error::config(format!("there is no prompt template with id `{id}`"))),
        Err(e) => Err(Error::failed(format!("could not render prompt template `{id}`: {e}"))),
    }
}

/// The session stored under `key`, if any and usable.
fn load_session(key: &str) -> Option<String> {
    match kv::get(key) {
        Ok(None) => None,
        Ok(Some(bytes)) => {
            let id = String::from_utf8_lossy(&bytes).trim().to_string();
            if valid_session_id(&id) {
                Some(id)
            } else {
                log::warn(&format!("ignoring the unusable session id stored under `{key}`"));
                None
            }
        }
        Err(e) => {
            log::warn(&format!(
                "could not read the session from kv `{key}`: {e}; starting a new session"
            ));
            None
        }
    }
}

/// Runs the CLI once; `Err` when it could not be started at all.
fn run_claude(config: &Config, prompt: &str, resume: Option<&str>) -> Result<Result<Answer, CliFailure>, Error> {
    let cmd = cli_command(config, prompt, resume);
    let out = process::run(&cmd).map_err(|e| {
        Error::failed(format!(
            "could not run `{}`: {e} (is Claude Code installed on the host's PATH? see `cli_path`)",
            cmd.program
        ))
    })?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    for line in stderr.lines().filter(|l| !l.trim().is_empty()) {
        log::debug(line);
    }
    Ok(interpret_cli(out.exit_code, out.timed_out, &stdout, &stderr, config))
}

/// The `cli` backend, with session continuity.
fn run_cli(ctx: &Context<Config>, prompt: &str) -> Result<Answer, Error> {
    let config = &ctx.config;
    let key = if config.session {
        session_key(ctx.trigger.number, ctx.trigger.is_pull_request)
    } else {
        None
    };
    let stored = key.as_deref().and_then(load_session);
    let session = match (&key, &stored) {
        (Some(key), Some(id)) => format!("resuming session {id} (kv `{key}`)"),
        (Some(key), None) => format!("new session (kept in kv `{key}`)"),
        (None, _) if config.session => "no session (the run has no pull request or issue)".to_string(),
        (None, _) => "no session (`session: false`)".to_string(),
    };
    log::info(&format!(
        "backend cli (`{}`), model {}, {session}, prompt of {} characters{}",
        config.cli_program(),
        config.model.as_deref().unwrap_or("default"),
        prompt.chars().count(),
        if prompt_on_stdin(prompt) { " on stdin" } else { "" },
    ));
    let answer = match run_claude(config, prompt, stored.as_deref())? {
        Ok(answer) => answer,
        Err(failure) if stored.is_some() && failure.retry_fresh => {
            log::warn(&format!(
                "resuming the stored session failed ({}); retrying once as a new session",
                first_line(&failure.message)
            ));
            run_claude(config, prompt, None)?.map_err(|f| Error::failed(f.message))?
        }
        Err(failure) => return Err(Error::failed(failure.message)),
    };
    if let (Some(key), Some(id)) = (&key, &answer.session_id) {
        if !valid_session_id(id) {
            log::warn("Claude Code returned an unusable session id; not stored");
        } else if stored.as_deref() != Some(id.as_str()) {
            match kv::set(key, id.as_bytes()) {
                Ok(()) => log::info(&format!("stored session {id} in kv `{key}`")),
                Err(e) => log::warn(&format!("could not store the session in kv `{key}`: {e}")),
            }
        }
    }
    Ok(answer)
}

/// The `api` backend: one message, retried on overload, rate limits and server errors.
fn run_api(config: &Config, prompt: &str) -> Result<Answer, Error> {
    let key = config
        .key()
        .ok_or_else(|| Error::config("`backend: api` needs `api_key`"))?;
    let url = format!("{}/v1/messages", config.api_url());
    let model = config.api_model();
    let max_tokens = config.max_tokens.unwrap_or(DEFAULT_MAX_TOKENS);
    let max_retries = config.max_retries.unwrap_or(DEFAULT_MAX_RETRIES);
    log::info(&format!(
        "backend api ({url}), model {model}, max_tokens {max_tokens}, prompt of {} characters{}",
        prompt.chars().count(),
        if config.session {
            " (sessions apply to the cli backend only: nothing is kept)"
        } else {
            ""
        },
    ));
    let body = messages_body(model, max_tokens, config.system.as_deref(), prompt);
    let deadline = config.timeout().map(|t| Instant::now() + t);
    let mut attempt = 0u32;
    loop {
        let left = deadline.map(|d| d.saturating_duration_since(Instant::now()));
        let mut request = Request::post_json(&url, &body)
            .header("x-api-key", key)
            .header("anthropic-version", ANTHROPIC_VERSION);
        if let Some(left) = left {
            request = request.timeout(left.max(Duration::from_millis(1)));
        }
        let (delay, failure) = match http::send(&request) {
            Ok(response) if response.is_success() => {
                let answer = parse_messages_response(&response.text()).map_err(Error::failed)?;
                if answer.stop_reason.as_deref() == Some("max_tokens") {
                    log::warn(&format!("the answer was cut off at max_tokens ({max_tokens})"));
                }
                return Ok(answer);
            }
            Ok(response) => (
                retry_delay(response.status, response.header("retry-after"), attempt),
                api_error_message(response.status, &response.text()),
            ),
            Err(HttpError::Transport(e)) => (
                (attempt < MAX_SERVER_ERROR_RETRIES).then(|| backoff(attempt)),
                format!("could not reach the Messages API at {url}: {e}"),
            ),
            Err(e @ HttpError::Denied(_)) => {
                return Err(Error::failed(format!(
                    "{url}: {e}; the operator must allow its host in `[plugins.grants.claude_execute] http`"
                )));
            }
            Err(e) => return Err(Error::failed(format!("{url}: {e}"))),
        };
        let delay = match delay {
            Some(delay) if attempt < max_retries => delay,
            _ => return Err(Error::failed(failure)),
        };
        if let Some(left) = deadline.map(|d| d.saturating_duration_since(Instant::now()))
            && delay >= left
        {
            return Err(Error::failed(format!(
                "{failure}; no time left to retry within `timeout_minutes`"
            )));
        }
        attempt += 1;
        log::warn(&format!(
            "{failure}; retrying in {:.1} s (retry {attempt} of {max_retries})",
            delay.as_secs_f64()
        ));
        std::thread::sleep(delay);
    }
}

struct ClaudeExecute;

impl Step for ClaudeExecute {
    type Config = Config;

    fn info() -> Info {
        Info::new(
            "claude_execute",
            env!("CARGO_PKG_VERSION"),
            "Runs a prompt through Claude Code (`claude -p`) or the Anthropic Messages API",
        )
    }

    fn run(ctx: Context<Config>) -> Result<Output, Error> {
        let config = &ctx.config;
        let prompt = match config.validate()? {
            PromptSource::Inline(prompt) => prompt,
            PromptSource::Template(id) => {
                log::info(&format!("prompt from template `{id}`"));
                render_template(&id)?
            }
        };
        let answer = match config.backend {
            Backend::Cli => run_cli(&ctx, &prompt)?,
            Backend::Api => run_api(config, &prompt)?,
        };
        log::info(&format!(
            "answer of {} characters{}{}{}",
            answer.text.chars().count(),
            answer.num_turns.map(|n| format!(", {n} turns")).unwrap_or_default(),
            match (answer.input_tokens, answer.output_tokens) {
                (Some(i), Some(o)) => format!(", {i} input / {o} output tokens"),
                _ => String::new(),
            },
            answer.cost_usd.map(|c| format!(", ${c:.4}")).unwrap_or_default(),
        ));
        let (output, skipped) = build_output(&answer, config.backend);
        for note in skipped {
            log::debug(&format!("JSON answer: {note}; not made an output"));
        }
        Ok(output)
    }
}

powernode_sdk::step!(ClaudeExecute);

#[cfg(test)]
mod tests;
