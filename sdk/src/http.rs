//! Outgoing HTTP over `wasi:http` (the operator must allow the step's hosts in
//! `[grants.<step>] http`), as one blocking call: send a request, get the whole response.

// Natively (a step's `cargo test`) `send` goes to the fake host, and the wasi:http code is unused.
#![cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]

use std::time::Duration;

use crate::wit::wasi::http::outgoing_handler;
use crate::wit::wasi::http::types::{
    ErrorCode, Fields, IncomingBody, Method, OutgoingBody, OutgoingRequest, RequestOptions, Scheme,
};
use crate::wit::wasi::io::streams::StreamError;

/// Response bodies longer than this are cut off (and [`Response::truncated`] is set).
pub const MAX_BODY: usize = 8 << 20;

/// A request to send with [`send`].
#[derive(Debug, Clone)]
pub struct Request {
    /// `GET`, `POST`, ...
    pub method: String,
    /// `http(s)://host[:port]/path?query`.
    pub url: String,
    /// Header names and values.
    pub headers: Vec<(String, String)>,
    /// The body; empty for none.
    pub body: Vec<u8>,
    /// Limit on connecting and on waiting for each part of the answer.
    pub timeout: Option<Duration>,
}

impl Request {
    /// A request with this method and URL, no headers, no body, no timeout.
    pub fn new(method: &str, url: &str) -> Self {
        Request {
            method: method.into(),
            url: url.into(),
            headers: Vec::new(),
            body: Vec::new(),
            timeout: None,
        }
    }

    /// A `GET` of `url`.
    pub fn get(url: &str) -> Self {
        Self::new("GET", url)
    }

    /// A `POST` of `body` as `application/json` to `url`.
    pub fn post_json(url: &str, body: &serde_json::Value) -> Self {
        Self::new("POST", url)
            .header("content-type", "application/json")
            .body(body.to_string())
    }

    /// Adds a header.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Sets the body.
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }

    /// Sets the timeout.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }
}

/// A whole response.
#[derive(Debug, Clone)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// Header names (lower case) and values.
    pub headers: Vec<(String, String)>,
    /// The body, at most [`MAX_BODY`] bytes.
    pub body: Vec<u8>,
    /// The body was longer than [`MAX_BODY`] and was cut off.
    pub truncated: bool,
}

impl Response {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as text (invalid UTF-8 replaced).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// Whether the status is 2xx.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

/// Why a request got no response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HttpError {
    /// The request itself is malformed (URL, method, header).
    Invalid(String),
    /// The host refused it: the destination is not allowed for this step.
    Denied(String),
    /// Connecting, sending or receiving failed, or timed out.
    Transport(String),
}

impl std::fmt::Display for HttpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HttpError::Invalid(m) => write!(f, "invalid request: {m}"),
            HttpError::Denied(m) => write!(f, "refused by the host: {m}"),
            HttpError::Transport(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for HttpError {}

/// Sends `req` and reads the whole response (the body up to [`MAX_BODY`]).
pub fn send(req: &Request) -> Result<Response, HttpError> {
    #[cfg(target_arch = "wasm32")]
    return send_wasi(req);
    #[cfg(all(not(target_arch = "wasm32"), feature = "testing"))]
    return crate::testing::answer(
        "http::send",
        "on_http_send",
        vec![format!("{} {}", req.method, req.url)],
        |f: &mut Box<SendScript>| f(req),
    );
    #[cfg(all(not(target_arch = "wasm32"), not(feature = "testing")))]
    {
        let _ = req;
        crate::outside_host("http::send")
    }
}

/// What a test scripts to answer [`send`].
#[cfg(feature = "testing")]
type SendScript = dyn FnMut(&Request) -> Result<Response, HttpError>;

#[cfg(feature = "testing")]
impl crate::testing::FakeHost {
    /// Scripts the answer of [`send`]: `f` gets each request. Recorded as `http::send` with
    /// one argument, `METHOD URL`.
    pub fn on_http_send(&mut self, f: impl FnMut(&Request) -> Result<Response, HttpError> + 'static) -> &mut Self {
        let f: Box<SendScript> = Box::new(f);
        self.script("http::send", Box::new(f))
    }
}

fn send_wasi(req: &Request) -> Result<Response, HttpError> {
    let (scheme, authority, path) = split_url(&req.url)?;
    let headers = Fields::new();
    for (name, value) in &req.headers {
        headers
            .append(name, value.as_bytes())
            .map_err(|e| HttpError::Invalid(format!("header `{name}`: {e:?}")))?;
    }
    let request = OutgoingRequest::new(headers);
    let method = match req.method.to_ascii_uppercase().as_str() {
        "GET" => Method::Get,
        "POST" => Method::Post,
        "PUT" => Method::Put,
        "PATCH" => Method::Patch,
        "DELETE" => Method::Delete,
        "HEAD" => Method::Head,
        other => Method::Other(other.into()),
    };
    let invalid = |what: &str| HttpError::Invalid(format!("{what} of `{}`", req.url));
    request.set_method(&method).map_err(|()| invalid("method"))?;
    request.set_scheme(Some(&scheme)).map_err(|()| invalid("scheme"))?;
    request.set_authority(Some(authority)).map_err(|()| invalid("host"))?;
    request.set_path_with_query(Some(path)).map_err(|()| invalid("path"))?;
    let options = req.timeout.map(|t| {
        let options = RequestOptions::new();
        let ns = u64::try_from(t.as_nanos()).unwrap_or(u64::MAX);
        // A host that does not support a timeout keeps its own; not an error.
        let _ = options.set_connect_timeout(Some(ns));
        let _ = options.set_first_byte_timeout(Some(ns));
        let _ = options.set_between_bytes_timeout(Some(ns));
        options
    });
    let body = request.body().map_err(|()| invalid("body"))?;
    let future = outgoing_handler::handle(request, options).map_err(error)?;
    write_body(&body, &req.body)?;
    OutgoingBody::finish(body, None).map_err(error)?;
    let response = loop {
        match future.get() {
            Some(result) => break result,
            None => future.subscribe().block(),
        }
    };
    let response = response
        .map_err(|()| HttpError::Transport("response already taken".into()))?
        .map_err(error)?;
    let status = response.status();
    let headers = response
        .headers()
        .entries()
        .into_iter()
        .map(|(n, v)| (n.to_ascii_lowercase(), String::from_utf8_lossy(&v).into_owned()))
        .collect();
    let incoming = response
        .consume()
        .map_err(|()| HttpError::Transport("response body already taken".into()))?;
    let (body, truncated) = read_body(&incoming)?;
    drop(IncomingBody::finish(incoming));
    Ok(Response {
        status,
        headers,
        body,
        truncated,
    })
}

fn write_body(body: &OutgoingBody, bytes: &[u8]) -> Result<(), HttpError> {
    if bytes.is_empty() {
        return Ok(());
    }
    let stream = body
        .write()
        .map_err(|()| HttpError::Transport("request body already taken".into()))?;
    for chunk in bytes.chunks(4096) {
        stream
            .blocking_write_and_flush(chunk)
            .map_err(|e| HttpError::Transport(format!("sending the body: {}", stream_error(e))))?;
    }
    Ok(())
}

fn read_body(body: &IncomingBody) -> Result<(Vec<u8>, bool), HttpError> {
    let stream = body
        .stream()
        .map_err(|()| HttpError::Transport("body stream already taken".into()))?;
    let mut bytes = Vec::new();
    loop {
        match stream.blocking_read(64 * 1024) {
            Ok(chunk) => bytes.extend_from_slice(&chunk),
            Err(StreamError::Closed) => break,
            Err(e) => return Err(HttpError::Transport(format!("reading the body: {}", stream_error(e)))),
        }
        if bytes.len() > MAX_BODY {
            bytes.truncate(MAX_BODY);
            return Ok((bytes, true));
        }
    }
    Ok((bytes, false))
}

fn stream_error(e: StreamError) -> String {
    match e {
        StreamError::Closed => "stream closed".into(),
        StreamError::LastOperationFailed(e) => e.to_debug_string(),
    }
}

fn error(e: ErrorCode) -> HttpError {
    match e {
        ErrorCode::HttpRequestDenied => HttpError::Denied("destination not allowed for this step".into()),
        ErrorCode::ConnectionTimeout | ErrorCode::ConnectionReadTimeout | ErrorCode::ConnectionWriteTimeout => {
            HttpError::Transport(format!("timed out ({e:?})"))
        }
        other => HttpError::Transport(format!("{other:?}")),
    }
}

/// Splits `scheme://authority/path?query`.
fn split_url(url: &str) -> Result<(Scheme, &str, &str), HttpError> {
    let bad = |why: &str| HttpError::Invalid(format!("URL `{url}` {why}"));
    let (scheme, rest) = url.split_once("://").ok_or_else(|| bad("has no scheme"))?;
    let scheme = match scheme.to_ascii_lowercase().as_str() {
        "http" => Scheme::Http,
        "https" => Scheme::Https,
        _ => return Err(bad("is not http or https")),
    };
    let split = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(split);
    if authority.is_empty() || authority.contains('@') {
        return Err(bad("has no host, or has credentials in it"));
    }
    let path = path.split('#').next().unwrap_or("");
    let path = if path.is_empty() { "/" } else { path };
    Ok((scheme, authority, path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_split_into_scheme_host_and_path() {
        let (s, a, p) = split_url("https://api.example.com:8443/v1/messages?x=1#frag").unwrap();
        assert!(matches!(s, Scheme::Https));
        assert_eq!((a, p), ("api.example.com:8443", "/v1/messages?x=1"));
        let (_, a, p) = split_url("http://127.0.0.1:9").unwrap();
        assert_eq!((a, p), ("127.0.0.1:9", "/"));
        for bad in ["ftp://x/", "no-scheme", "https:///path", "https://user:pw@host/"] {
            assert!(matches!(split_url(bad), Err(HttpError::Invalid(_))), "{bad}");
        }
    }
}
