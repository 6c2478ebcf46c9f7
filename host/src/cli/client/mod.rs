//! The client commands (`runs`, `logs`, `trigger`, `cancel`, `rerun`, `pipelines push`): a
//! running server's REST API from the command line, tables for people and `--json` for
//! scripts, and exit codes a script can branch on (see [`Code`]).

pub(super) mod logs;
pub(super) mod pipelines;
pub(super) mod runs;
mod table;

use std::process::ExitCode;
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::Value;

pub(super) use logs::LogsArgs;
pub(super) use pipelines::PipelinesCommand;
pub(super) use runs::{RunsArgs, TriggerArgs};

/// Where the server is when neither `--server` nor `POWERNODE_SERVER` says: `serve`'s default.
const DEFAULT_SERVER: &str = "http://127.0.0.1:8080";
/// Longest one request may wait for its answer (a followed log is not one request).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// How the client commands reach the server; every one of them takes these.
#[derive(Debug, Clone, clap::Args)]
pub struct ServerArgs {
    /// The server's URL.
    #[arg(long, env = "POWERNODE_SERVER", default_value = DEFAULT_SERVER)]
    server: String,
    /// The server's api_token (prefer the environment: arguments show in `ps`). Read from
    /// POWERNODE_TOKEN, else POWERNODE_API_TOKEN (the variable `powernode init` prints).
    #[arg(long, env = "POWERNODE_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Print JSON for scripts instead of text for people.
    #[arg(long)]
    json: bool,
}

/// The exit codes of the client commands, documented in the README's "CLI client".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Code {
    /// `logs --follow`: the run ended other than `success`.
    RunFailed = 1,
    /// Bad arguments or a local file that cannot be used.
    Usage = 2,
    /// The server refused the request: unknown run or pipeline, invalid pipeline, already ended.
    Refused = 3,
    /// No token, or not the server's token, or the server's API is closed.
    Auth = 4,
    /// The server could not be reached, or failed (5xx).
    Unreachable = 5,
}

/// Why a client command stopped: the message for stderr and the exit code.
#[derive(Debug)]
pub(super) struct Failure {
    code: Code,
    message: String,
}

impl Failure {
    /// A failure with this exit code and message.
    pub(super) fn new(code: Code, message: impl Into<String>) -> Failure {
        Failure {
            code,
            message: message.into(),
        }
    }
}

/// What client commands return: `Ok(code)` when they did their job (0, or a run's result).
pub(super) type Outcome = Result<ExitCode, Failure>;

/// Prints a failure and turns it into its exit code.
pub(super) fn finish(outcome: Outcome) -> ExitCode {
    match outcome {
        Ok(code) => code,
        Err(failure) => {
            eprintln!("error: {}", failure.message);
            ExitCode::from(failure.code as u8)
        }
    }
}

/// A server's API, as the arguments name it.
pub(super) struct Client {
    http: reqwest::Client,
    base: reqwest::Url,
    token: Option<String>,
    json: bool,
}

impl Client {
    /// The client for `args`; a bad URL is a usage error that says what a good one looks like.
    pub(super) fn new(args: &ServerArgs) -> Result<Client, Failure> {
        let base = reqwest::Url::parse(args.server.trim_end_matches('/'))
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
            .ok_or_else(|| {
                Failure::new(
                    Code::Usage,
                    format!(
                        "`{}` is not a server URL: give one like {DEFAULT_SERVER} with --server or POWERNODE_SERVER",
                        args.server
                    ),
                )
            })?;
        let token = args
            .token
            .clone()
            .or_else(|| std::env::var("POWERNODE_API_TOKEN").ok())
            .filter(|t| !t.trim().is_empty());
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| Failure::new(Code::Usage, format!("cannot set up HTTP: {e}")))?;
        Ok(Client {
            http,
            base,
            token,
            json: args.json,
        })
    }

    /// Whether `--json` was given.
    pub(super) fn json(&self) -> bool {
        self.json
    }

    /// The URL of `/api` followed by `segments`, each percent-encoded (a pipeline's name may
    /// hold spaces or slashes).
    pub(super) fn url(&self, segments: &[&str]) -> reqwest::Url {
        let mut url = self.base.clone();
        url.path_segments_mut()
            .expect("checked: an http(s) URL")
            .pop_if_empty()
            .push("api")
            .extend(segments);
        url
    }

    /// A request with the token; the caller sets the body and sends it with [`Client::send`].
    pub(super) fn request(&self, method: Method, url: reqwest::Url) -> reqwest::RequestBuilder {
        let request = self.http.request(method, url);
        match &self.token {
            Some(token) => request.bearer_auth(token),
            None => request,
        }
    }

    /// Sends `request` (timed out after [`REQUEST_TIMEOUT`] unless `streaming`), mapping what
    /// went wrong to a failure that says what to do.
    pub(super) async fn send(
        &self,
        request: reqwest::RequestBuilder,
        streaming: bool,
    ) -> Result<reqwest::Response, Failure> {
        let request = if streaming {
            request
        } else {
            request.timeout(REQUEST_TIMEOUT)
        };
        let response = request.send().await.map_err(|e| self.unreachable(e))?;
        if response.status().is_success() {
            return Ok(response);
        }
        Err(self.refusal(response).await)
    }

    /// Sends `request` and reads its JSON answer.
    pub(super) async fn json_of(&self, request: reqwest::RequestBuilder) -> Result<Value, Failure> {
        let response = self.send(request, false).await?;
        response
            .json()
            .await
            .map_err(|e| Failure::new(Code::Unreachable, format!("the server's answer is not JSON: {e}")))
    }

    /// A failure for a request that got no answer.
    pub(super) fn unreachable(&self, error: reqwest::Error) -> Failure {
        // The innermost cause says it plainly ("Connection refused"); reqwest's own text does not.
        let mut cause: &dyn std::error::Error = &error;
        while let Some(inner) = cause.source() {
            cause = inner;
        }
        let what = if error.is_timeout() { "timed out" } else { "failed" };
        Failure::new(
            Code::Unreachable,
            format!(
                "a request to the server at {} {what}: {cause}; is `powernode serve` running there? \
                 (set the URL with --server or POWERNODE_SERVER)",
                self.base
            ),
        )
    }

    /// A failure for a non-2xx answer: its code by the status, its message the server's
    /// `error` and, for the token's problems, how to fix them.
    async fn refusal(&self, response: reqwest::Response) -> Failure {
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        let said = serde_json::from_str::<Value>(&text)
            .ok()
            .and_then(|v| v["error"].as_str().map(str::to_owned))
            .unwrap_or_else(|| crate::printable::printable(text.trim()).into_owned());
        let (code, hint) = match status {
            StatusCode::UNAUTHORIZED if self.token.is_none() => (
                Code::Auth,
                "; give the server's api_token with POWERNODE_TOKEN (or --token)",
            ),
            StatusCode::UNAUTHORIZED => (
                Code::Auth,
                "; POWERNODE_TOKEN (or --token) must be the server's api_token",
            ),
            StatusCode::FORBIDDEN => (Code::Auth, ""),
            s if s.is_server_error() => (Code::Unreachable, ""),
            _ => (Code::Refused, ""),
        };
        Failure::new(code, format!("the server answered {status}: {said}{hint}"))
    }
}

/// Prints `value` as pretty JSON on stdout.
pub(super) fn print_json(value: &Value) {
    println!("{}", serde_json::to_string_pretty(value).expect("JSON prints"));
}
