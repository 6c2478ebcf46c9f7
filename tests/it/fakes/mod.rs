//! Fake forges: real HTTP servers on loopback that answer as the real forge does and record
//! every request (method, path with query, headers, JSON body) so tests can assert on them.
//! Each forge's routes live in their own file; this module only serves and records.

pub mod gitea;
pub mod github;
pub mod gitlab;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::{Body, to_bytes};
use axum::extract::Request;
use axum::middleware::{self, Next};
use axum::response::Response;
use powernode::config::{Config, SourceConfig};

/// An issue or pull request comment, as the GitHub and Gitea fakes keep them.
#[derive(Debug, Clone)]
pub struct FakeComment {
    /// Repository full name.
    pub repo: String,
    /// Issue or pull request number.
    pub number: u64,
    /// Comment id.
    pub id: u64,
    /// Author's login; on GitHub, empty for a comment it names no author of (`"user": null`).
    pub author: String,
    /// Text.
    pub body: String,
}

/// One request as the fake received it.
#[derive(Debug, Clone, PartialEq)]
pub struct Recorded {
    /// `GET`, `POST`, ...
    pub method: String,
    /// Path and query, exactly as sent (`/repos/o/r/issues/1/comments?per_page=100`).
    pub path: String,
    /// Header names lower-cased.
    pub headers: BTreeMap<String, String>,
    /// The body parsed as JSON, when it is JSON.
    pub body: Option<serde_json::Value>,
}

impl Recorded {
    /// A header's value, if sent.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(&name.to_ascii_lowercase()).map(String::as_str)
    }
}

/// A running fake forge.
pub struct FakeServer {
    /// `http://127.0.0.1:PORT` (no trailing slash).
    pub base_url: String,
    log: Arc<Mutex<Vec<Recorded>>>,
    task: tokio::task::JoinHandle<()>,
}

impl FakeServer {
    /// Serves `router` on a fresh loopback port, recording every request.
    pub async fn start(router: Router) -> FakeServer {
        let log: Arc<Mutex<Vec<Recorded>>> = Arc::default();
        let recorder = log.clone();
        let app = router.layer(middleware::from_fn(move |req: Request, next: Next| {
            let log = recorder.clone();
            async move { record(log, req, next).await }
        }));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base_url = format!("http://{}", listener.local_addr().unwrap());
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        FakeServer { base_url, log, task }
    }

    /// Every request so far, in order.
    pub fn requests(&self) -> Vec<Recorded> {
        self.log.lock().unwrap().clone()
    }

    /// The last request.
    pub fn last(&self) -> Recorded {
        self.requests().pop().expect("the fake received no request")
    }
}

impl Drop for FakeServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn record(log: Arc<Mutex<Vec<Recorded>>>, req: Request, next: Next) -> Response {
    let (parts, body) = req.into_parts();
    let bytes = to_bytes(body, 64 << 20).await.unwrap_or_default();
    let headers = parts
        .headers
        .iter()
        .map(|(k, v)| (k.as_str().to_string(), v.to_str().unwrap_or("<binary>").to_string()))
        .collect();
    log.lock().unwrap().push(Recorded {
        method: parts.method.to_string(),
        path: parts.uri.path_and_query().map(|p| p.to_string()).unwrap_or_default(),
        headers,
        body: serde_json::from_slice(&bytes).ok(),
    });
    next.run(Request::from_parts(parts, Body::from(bytes))).await
}

/// The `[[sources]]` entry `fake`, of `kind`, at a fake forge's `api_url`, as the config file
/// would give it.
pub fn source(kind: &str, api_url: &str, token: &str, bot_login: Option<&str>) -> SourceConfig {
    let mut text =
        format!("[[sources]]\nid = \"fake\"\nkind = \"{kind}\"\napi_url = \"{api_url}\"\ntoken = \"{token}\"\n");
    if let Some(login) = bot_login {
        text.push_str(&format!("bot_login = \"{login}\"\n"));
    }
    let mut config = Config::parse(std::path::Path::new("fake.toml"), &text, &|_| None).unwrap();
    config.sources.remove(0)
}

/// The `[[sources]]` entry `fake`, a GitHub App source at `api_url` authenticating as App
/// `app_id` with the private key in `key_file`, of installation `installation_id` (or each
/// repository's own when `None`).
pub fn app_source(
    api_url: &str,
    app_id: u64,
    key_file: &std::path::Path,
    installation_id: Option<u64>,
) -> SourceConfig {
    let mut text = format!(
        "[[sources]]\nid = \"fake\"\nkind = \"github\"\napi_url = \"{api_url}\"\napp_id = {app_id}\nprivate_key_file = {:?}\n",
        key_file.display().to_string()
    );
    if let Some(id) = installation_id {
        text.push_str(&format!("installation_id = {id}\n"));
    }
    let mut config = Config::parse(std::path::Path::new("fake.toml"), &text, &|_| None).unwrap();
    config.sources.remove(0)
}

/// Decodes `%XX` escapes in one path segment (the fakes route on the raw path and unescape
/// each parameter afterwards, as Gitea and GitLab do).
pub fn decode(segment: &str) -> String {
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match (
            bytes[i],
            bytes
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(std::str::from_utf8(h).ok()?, 16).ok()),
        ) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}
