//! The HTTP layer every forge client uses: base URL, auth and required headers, retries of
//! rate limits (any method) and server errors (any method but POST, which may have taken
//! effect) with bounded exponential backoff honouring `Retry-After` and `x-ratelimit-reset`,
//! a budget on the total wait, and error mapping.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use reqwest::header::{HeaderMap, HeaderName, HeaderValue, RETRY_AFTER};
use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;

use super::error::forge_message;
use super::token::TokenSource;
use super::{ForgeError, REQUEST_TIMEOUT};

/// How hard to retry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included.
    pub max_attempts: u32,
    /// First backoff delay; doubled each retry.
    pub base_delay: Duration,
    /// Longest single delay.
    pub max_delay: Duration,
    /// Longest total time spent waiting between attempts; a wait that would pass it is
    /// not started and the last error is returned instead.
    pub budget: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 5,
            base_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(60),
            budget: Duration::from_secs(120),
        }
    }
}

/// An answer with a success status.
#[derive(Debug)]
pub struct ApiResponse {
    /// The status (2xx).
    pub status: StatusCode,
    /// The headers (pagination, rate limits).
    pub headers: HeaderMap,
    /// The body.
    pub body: bytes::Bytes,
}

impl ApiResponse {
    /// The body as JSON of type `T`.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, ForgeError> {
        serde_json::from_slice(&self.body).map_err(|e| ForgeError::Transport(format!("unexpected response body: {e}")))
    }

    /// A header's value as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// One forge's API endpoint with its credentials.
#[derive(Clone)]
pub struct ApiClient {
    http: reqwest::Client,
    base: String,
    headers: HeaderMap,
    /// Credentials asked for at each request, sent as `name: scheme token`.
    fresh: Option<FreshAuth>,
    retry: RetryPolicy,
}

#[derive(Clone)]
struct FreshAuth {
    name: HeaderName,
    scheme: &'static str,
    source: Arc<dyn TokenSource>,
}

impl std::fmt::Debug for ApiClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiClient")
            .field("base", &self.base)
            .finish_non_exhaustive()
    }
}

impl ApiClient {
    /// A client for `base` (e.g. `https://api.github.com`, `https://git.example.com/api/v1`)
    /// sending `auth` (marked sensitive: never logged) and `headers` on every request.
    pub fn new(
        base: &str,
        auth: (HeaderName, String),
        headers: HeaderMap,
        retry: RetryPolicy,
    ) -> Result<Self, ForgeError> {
        let mut all = headers;
        all.insert(auth.0, sensitive(&auth.1)?);
        ApiClient::build(base, all, None, retry)
    }

    /// A client for `base` sending `header: scheme token` with a token `source` gives anew
    /// for each request (marked sensitive: never logged). A 401 answer makes the source
    /// forget that token, and the request is sent once more with a new one.
    pub fn with_token_source(
        base: &str,
        header: HeaderName,
        scheme: &'static str,
        source: Arc<dyn TokenSource>,
        headers: HeaderMap,
        retry: RetryPolicy,
    ) -> Result<Self, ForgeError> {
        let fresh = FreshAuth {
            name: header,
            scheme,
            source,
        };
        ApiClient::build(base, headers, Some(fresh), retry)
    }

    fn build(base: &str, headers: HeaderMap, fresh: Option<FreshAuth>, retry: RetryPolicy) -> Result<Self, ForgeError> {
        let url = reqwest::Url::parse(base).map_err(|e| ForgeError::Other(format!("invalid API URL `{base}`: {e}")))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(ForgeError::Other(format!(
                "invalid API URL `{base}`: must be http or https"
            )));
        }
        let http = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .user_agent(concat!("powernode/", env!("CARGO_PKG_VERSION")))
            // A redirect to another host must not carry the token there.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| ForgeError::Transport(e.to_string()))?;
        Ok(ApiClient {
            http,
            base: base.trim_end_matches('/').to_string(),
            headers,
            fresh,
            retry,
        })
    }

    /// The base URL, without a trailing slash.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// Sends a request to `path` (relative to the base, starting with `/`, or an absolute
    /// URL under the base, as pagination links are), retrying as the policy allows.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<&serde_json::Value>,
        accept: Option<&str>,
    ) -> Result<ApiResponse, ForgeError> {
        let url = self.url(path)?;
        // `insert`, not `RequestBuilder::header` (which appends): one Accept header, not the
        // default plus this one.
        let mut headers = self.headers.clone();
        if let Some(accept) = accept {
            let value = HeaderValue::from_str(accept)
                .map_err(|_| ForgeError::Other(format!("invalid Accept header `{accept}`")))?;
            headers.insert(reqwest::header::ACCEPT, value);
        }
        let mut waited = Duration::ZERO;
        let mut attempt = 1;
        let mut refused_once = false;
        loop {
            let token = match &self.fresh {
                Some(fresh) => {
                    let token = fresh.source.token().await?;
                    headers.insert(
                        fresh.name.clone(),
                        sensitive(&format!("{} {}", fresh.scheme, token.expose()))?,
                    );
                    Some(token)
                }
                None => None,
            };
            let mut req = self
                .http
                .request(method.clone(), &url)
                .headers(headers.clone())
                .query(query);
            if let Some(body) = body {
                req = req.json(body);
            }
            let (error, delay) = match req.send().await {
                Ok(resp) => {
                    let status = resp.status();
                    let headers = resp.headers().clone();
                    let bytes = resp.bytes().await.map_err(|e| ForgeError::Transport(e.to_string()))?;
                    if status.is_success() {
                        return Ok(ApiResponse {
                            status,
                            headers,
                            body: bytes,
                        });
                    }
                    // A token refused (revoked, or expired early by the forge's clock): once,
                    // with a new one. Nothing was done, so even a POST may be sent again.
                    if let (StatusCode::UNAUTHORIZED, Some(fresh), Some(token), false) =
                        (status, &self.fresh, &token, refused_once)
                    {
                        fresh.source.refused(token);
                        refused_once = true;
                        continue;
                    }
                    match self.retry_after(status, &headers, &bytes, attempt) {
                        Some((delay, rate_limited)) => {
                            let message = forge_message(&bytes);
                            let error = if rate_limited {
                                ForgeError::RateLimited {
                                    message,
                                    retry_after: Some(delay),
                                }
                            } else if method == Method::POST {
                                // A 5xx does not prove the forge did nothing (GitHub answers 502
                                // after creating the object at times): retrying a POST could post a
                                // comment or start a workflow twice. Rate-limit answers are safe.
                                return Err(ForgeError::Other(format!(
                                    "HTTP {}: {message} (not retried: the request may have taken effect)",
                                    status.as_u16()
                                )));
                            } else {
                                ForgeError::Other(format!("HTTP {}: {message}", status.as_u16()))
                            };
                            (error, delay)
                        }
                        None => return Err(ForgeError::from_status(status.as_u16(), &bytes)),
                    }
                }
                // Nothing reached the forge when the connection failed: safe to retry.
                // Other transport errors are retried only for reads.
                Err(e) if e.is_connect() || method == Method::GET => {
                    (ForgeError::Transport(transport_message(&e)), self.backoff(attempt))
                }
                Err(e) => return Err(ForgeError::Transport(transport_message(&e))),
            };
            if attempt >= self.retry.max_attempts || waited + delay > self.retry.budget {
                return Err(match error {
                    ForgeError::Other(m) => ForgeError::Other(format!("{m} (gave up after {attempt} attempts)")),
                    ForgeError::Transport(m) => {
                        ForgeError::Transport(format!("{m} (gave up after {attempt} attempts)"))
                    }
                    e => e,
                });
            }
            tracing::debug!(url = %url, attempt, delay_ms = delay.as_millis() as u64, "retrying forge request");
            tokio::time::sleep(delay).await;
            waited += delay;
            attempt += 1;
        }
    }

    /// `send` and decode the JSON answer.
    pub async fn json<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<&serde_json::Value>,
    ) -> Result<T, ForgeError> {
        self.send(method, path, query, body, None).await?.json()
    }

    fn url(&self, path: &str) -> Result<String, ForgeError> {
        if path.starts_with("http://") || path.starts_with("https://") {
            // Only follow links that stay under our base: the token goes with the request.
            // Compared parsed, so host case, a default port or `..` segments change nothing.
            let under_base = match (
                reqwest::Url::parse(path),
                reqwest::Url::parse(&format!("{}/", self.base)),
            ) {
                (Ok(link), Ok(base)) => {
                    link.scheme() == base.scheme()
                        && link.host_str() == base.host_str()
                        && link.port_or_known_default() == base.port_or_known_default()
                        && link.username().is_empty()
                        && link.password().is_none()
                        && link.path().starts_with(base.path())
                }
                _ => false,
            };
            if under_base {
                return Ok(path.to_string());
            }
            return Err(ForgeError::Transport(format!(
                "refusing to follow a link outside {}: {path}",
                self.base
            )));
        }
        Ok(format!("{}{path}", self.base))
    }

    /// When to retry this answer, and whether it is a rate limit; `None` when it is final.
    fn retry_after(
        &self,
        status: StatusCode,
        headers: &HeaderMap,
        body: &[u8],
        attempt: u32,
    ) -> Option<(Duration, bool)> {
        let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        let out_of_requests = header("x-ratelimit-remaining") == Some("0");
        let secondary = String::from_utf8_lossy(body)
            .to_ascii_lowercase()
            .contains("secondary rate limit");
        let rate_limited = status == StatusCode::TOO_MANY_REQUESTS
            || (status == StatusCode::FORBIDDEN && (out_of_requests || secondary));
        if !rate_limited && !status.is_server_error() {
            return None;
        }
        let retry_after = header(RETRY_AFTER.as_str()).and_then(parse_retry_after);
        let reset = header("x-ratelimit-reset")
            .filter(|_| out_of_requests)
            .and_then(|r| r.parse::<u64>().ok())
            .map(|epoch| Duration::from_secs(epoch.saturating_sub(now_epoch()).max(1)));
        let delay = retry_after.or(reset).unwrap_or_else(|| {
            // GitHub: a secondary limit without Retry-After wants at least a minute.
            if secondary {
                Duration::from_secs(60)
            } else {
                self.backoff(attempt)
            }
        });
        Some((delay, rate_limited))
    }

    fn backoff(&self, attempt: u32) -> Duration {
        let factor = 2u32.saturating_pow(attempt.saturating_sub(1));
        self.retry.base_delay.saturating_mul(factor).min(self.retry.max_delay)
    }
}

/// A header value that is never logged.
fn sensitive(value: &str) -> Result<HeaderValue, ForgeError> {
    let mut value = HeaderValue::from_str(value)
        .map_err(|_| ForgeError::Other("the token contains characters not allowed in a header".into()))?;
    value.set_sensitive(true);
    Ok(value)
}

/// `/a/b/c` with each segment percent-encoded, so a `/` inside a segment (a GitLab project
/// path, a branch name) becomes `%2F` instead of a new path level.
pub fn encode_path(segments: &[&str]) -> String {
    let mut url = reqwest::Url::parse("http://x/").expect("a constant URL parses");
    url.path_segments_mut()
        .expect("http URLs have paths")
        .pop_if_empty()
        .extend(segments);
    url.path().to_string()
}

fn now_epoch() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// `Retry-After` as seconds or an HTTP date.
fn parse_retry_after(value: &str) -> Option<Duration> {
    if let Ok(secs) = value.trim().parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let when = httpdate::parse_http_date(value).ok()?;
    Some(when.duration_since(SystemTime::now()).unwrap_or(Duration::ZERO))
}

/// A reqwest error as a sentence without the URL's query (which never holds a token, but
/// may hold user data).
fn transport_message(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "cannot connect"
    } else {
        "request failed"
    };
    let mut source = std::error::Error::source(e);
    let mut detail = String::new();
    while let Some(s) = source {
        detail = s.to_string();
        source = s.source();
    }
    match e.url() {
        Some(url) => format!("{kind}: {}://{}{}: {detail}", url.scheme(), url.authority(), url.path()),
        None => format!("{kind}: {detail}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_segments_are_encoded_one_by_one() {
        assert_eq!(
            encode_path(&["projects", "grp/sub/app", "repository"]),
            "/projects/grp%2Fsub%2Fapp/repository"
        );
        assert_eq!(encode_path(&["ci.yml"]), "/ci.yml");
        assert_eq!(encode_path(&["a b"]), "/a%20b");
    }

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        assert_eq!(parse_retry_after("7"), Some(Duration::from_secs(7)));
        let soon = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(30));
        let d = parse_retry_after(&soon).unwrap();
        assert!(d <= Duration::from_secs(30) && d >= Duration::from_secs(28), "{d:?}");
        assert_eq!(parse_retry_after("soon"), None);
    }

    #[test]
    fn links_outside_the_base_are_refused() {
        let c = ApiClient::new(
            "https://api.github.com",
            (reqwest::header::AUTHORIZATION, "Bearer t".into()),
            HeaderMap::new(),
            RetryPolicy::default(),
        )
        .unwrap();
        assert_eq!(c.url("/repos/a/b").unwrap(), "https://api.github.com/repos/a/b");
        assert!(c.url("https://api.github.com/repositories/1/issues?page=2").is_ok());
        assert!(c.url("https://api.github.com.evil.example/x").is_err());
        assert!(c.url("https://evil.example/api.github.com/").is_err());
        assert!(c.url("https://API.GitHub.com:443/repositories/1/issues?page=2").is_ok());
        assert!(c.url("https://api.github.com:8443/repositories/1").is_err());
        assert!(c.url("http://api.github.com/repositories/1").is_err());
        let ghes = ApiClient::new(
            "https://ghe.example.com/api/v3",
            (reqwest::header::AUTHORIZATION, "Bearer t".into()),
            HeaderMap::new(),
            RetryPolicy::default(),
        )
        .unwrap();
        assert!(
            ghes.url("https://ghe.example.com/api/v3/repositories/1/issues?page=2")
                .is_ok()
        );
        assert!(ghes.url("https://ghe.example.com/api/v3/../../admin").is_err());
        assert!(ghes.url("https://ghe.example.com/api/v30/x").is_err());
        assert!(ghes.url("https://ghe.example.com/admin").is_err());
    }

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let retry = RetryPolicy {
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(350),
            ..RetryPolicy::default()
        };
        let c = ApiClient::new(
            "http://127.0.0.1:1",
            (reqwest::header::AUTHORIZATION, "x".into()),
            HeaderMap::new(),
            retry,
        )
        .unwrap();
        let delays: Vec<u128> = (1..=4).map(|a| c.backoff(a).as_millis()).collect();
        assert_eq!(delays, [100, 200, 350, 350]);
    }
}
