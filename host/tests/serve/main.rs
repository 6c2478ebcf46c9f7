//! `powernode serve` as forges and API clients meet it: the real binary on loopback.
//! `webhooks`: real deliveries signed with the fixtures' secret, answered fast and correctly,
//! stored durably, deduplicated, and a SIGKILL mid-stream loses no acknowledged delivery.
//! `api`: the pipelines API, its bearer token, and pipelines added through it starting runs.
//! `runs`: runs executing, with statuses on a fake forge, cancel, SIGKILL recovery, secrets.
//! `approval`: fork pull requests held until approved through the API.
//! `app`: a GitHub App source: check runs, token refresh during a run, the Re-run buttons.
//! `client`: the CLI client commands against the server: tables, JSON, exit codes.
//! `first_start`: `serve` without a config (the getting-started page) and `powernode init`.
//! `nodes`: three servers on one PostgreSQL database: exactly once, a killed node, a
//! database restart.
//! `dashboard`: the dashboard in headless Chromium (`browser`: chromedriver and the session).

mod api;
mod app;
mod approval;
mod browser;
mod client;
#[path = "../common/mod.rs"]
mod common;
mod dashboard;
mod first_start;
mod nodes;
// The end-to-end tests' fake forges and git server, shared with `tests/it`.
#[allow(dead_code)]
#[path = "../../../tests/it/fakes/mod.rs"]
mod fakes;
#[path = "../../../tests/it/git_server.rs"]
mod git_server;
mod resources;
mod runs;
mod sandbox;
mod seed;
mod webhooks;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use powernode::store::inbox::Inbox;
use powernode::webhook::hex_hmac_sha256;
use serde_json::Value;

const SECRET: &str = "It's a Secret to Everybody";
const API_TOKEN: &str = "test-api-token-0123456789";
const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/src/webhook/fixtures");
/// Longest the server may take to start (it compiles the built-in plugins) or to stop.
const START_STOP: Duration = Duration::from_secs(120);
/// Longest one HTTP request may take.
const REQUEST: Duration = Duration::from_secs(30);

struct Server {
    child: Child,
    url: String,
    dir: PathBuf,
    /// The server's database and artifact store, when the tests run on PostgreSQL; stopped
    /// after the server.
    _shared: Option<SharedStore>,
}

impl Server {
    /// Starts `powernode serve` on a free port with its data under `dir`, the API open with
    /// [`API_TOKEN`].
    fn start(dir: &Path) -> Server {
        Server::start_with(dir, Some(API_TOKEN))
    }

    /// Starts `powernode serve` with the given `api_token` (`None`: the API is closed).
    fn start_with(dir: &Path, api_token: Option<&str>) -> Server {
        Server::launch(dir, api_token, "", Stdio::inherit(), &[])
    }

    /// Starts `powernode serve` with `sources` (TOML) added to the config and its stderr
    /// written to `stderr.log` under `dir` (read it with [`Server::stderr`]).
    fn start_with_sources(dir: &Path, sources: &str) -> Server {
        Server::start_with_env(dir, sources, &[])
    }

    /// [`Server::start_with_sources`] with these environment variables added.
    fn start_with_env(dir: &Path, sources: &str, env: &[(&str, String)]) -> Server {
        std::fs::create_dir_all(dir).unwrap();
        let log = std::fs::File::create(dir.join("stderr.log")).unwrap();
        Server::launch(dir, Some(API_TOKEN), sources, Stdio::from(log), env)
    }

    /// What the server wrote to stderr, when started by [`Server::start_with_sources`].
    fn stderr(&self) -> String {
        std::fs::read_to_string(self.dir.join("stderr.log")).unwrap()
    }

    fn launch(dir: &Path, api_token: Option<&str>, sources: &str, stderr: Stdio, env: &[(&str, String)]) -> Server {
        std::fs::create_dir_all(dir.join("pipelines")).unwrap();
        // Run workspaces live under the data directory; as root, commands run as `nobody`,
        // who must be able to reach them (a temporary directory is private by default).
        for ancestor in dir
            .ancestors()
            .take_while(|a| a.starts_with(std::env::temp_dir()) && *a != std::env::temp_dir())
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(ancestor, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        std::fs::write(
            dir.join("pipelines/review.yml"),
            "name: review\ntriggers:\n  - type: pull_request\n    events: [opened, synchronize]\n    branches: [master]\nsteps:\n  - name: hello\n    type: run_command\n    config:\n      command: echo hi\n",
        )
        .unwrap();
        std::fs::write(
            dir.join("pipelines/deploy.yml"),
            "name: deploy\ntriggers:\n  - type: push\n    branches: [release/*]\nsteps:\n  - name: hello\n    type: run_command\n    config:\n      command: echo hi\n",
        )
        .unwrap();
        // Top-level keys given before the first table of `sources` go before every table.
        let split = sources
            .lines()
            .position(|l| l.trim_start().starts_with('['))
            .unwrap_or(sources.lines().count());
        let top_level = sources.lines().take(split).collect::<Vec<_>>().join("\n");
        let tables = sources.lines().skip(split).collect::<Vec<_>>().join("\n");
        let config = format!(
            r#"listen = "127.0.0.1:0"
data_dir = "{d}/data"
pipelines_dir = "{d}/pipelines"
plugins_dir = "{d}/plugins"
max_body_mb = 1
{api_token}
{top}

[[sources]]
id = "github"
kind = "github"
api_url = "http://127.0.0.1:9"
token = "unused"
webhook_secret = "{SECRET}"
bot_login = "powernode-bot"

[[sources]]
id = "github-as-bot"
kind = "github"
api_url = "http://127.0.0.1:9"
token = "unused"
webhook_secret = "{SECRET}"
bot_login = "runatlantis"
{sources}
"#,
            d = dir.display(),
            top = top_level,
            sources = tables,
            api_token = api_token.map(|t| format!("api_token = \"{t}\"")).unwrap_or_default(),
        );
        // With `POWERNODE_TEST_STORE=postgres` every server gets a database of its own on one
        // throwaway cluster: the API and scheduler tests then run on PostgreSQL.
        let pg = (!sources.contains("[store]")).then(|| pg_store(dir)).flatten();
        let config = match &pg {
            Some(shared) => format!("{config}\n{}", shared.section),
            None => config,
        };
        std::fs::write(dir.join("powernode.toml"), config).unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_powernode"))
            .args(["serve", "--config"])
            .arg(dir.join("powernode.toml"))
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .unwrap();
        // The first line names the address; read it on a thread so a silent server cannot
        // hang the test, and hand the pipe back so later output does not hit a closed pipe.
        let (tx, rx) = std::sync::mpsc::channel();
        let stdout = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(stdout);
            let mut line = String::new();
            let read = reader.read_line(&mut line);
            let _ = tx.send((read.map(|_| line), reader.into_inner()));
        });
        let (line, stdout) = match rx.recv_timeout(START_STOP) {
            Ok((Ok(line), stdout)) => (line, stdout),
            Ok((Err(e), _)) => panic!("reading the server's address: {e}"),
            Err(_) => {
                let _ = child.kill();
                panic!("waited {START_STOP:?} for `powernode serve` to print its address");
            }
        };
        child.stdout = Some(stdout);
        let url = line
            .split_whitespace()
            .find(|w| w.starts_with("http://"))
            .unwrap_or_else(|| panic!("no address in `{line}`"))
            .to_string();
        Server {
            child,
            url,
            dir: dir.to_path_buf(),
            _shared: pg,
        }
    }

    fn stop(mut self) {
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.child.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        )
        .unwrap();
        let status = common::wait_child(&mut self.child, START_STOP, "`powernode serve` to exit after SIGTERM");
        assert!(status.success(), "graceful shutdown exits 0: {status:?}");
    }

    fn kill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// A read-only look at the running server's inbox.
    fn inbox(&self) -> Inbox {
        Inbox::open_read_only(&self.dir.join("data/inbox")).unwrap()
    }
}

impl Drop for Server {
    /// A failed test must not leave a server running.
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The shared store of a server on PostgreSQL: the database, and artifacts in an
/// S3-compatible server, as several nodes would have them.
struct SharedStore {
    /// The `[store]` section that points at both.
    section: String,
    _pg: powernode::store::pg::throwaway::Cluster,
    _s3: powernode::store::throwaway_s3::S3Server,
}

/// A throwaway PostgreSQL cluster and S3-compatible server in `dir`, when the tests run on
/// PostgreSQL (`POWERNODE_TEST_STORE=postgres`); `None` for the embedded store.
fn pg_store(dir: &Path) -> Option<SharedStore> {
    match std::env::var("POWERNODE_TEST_STORE").as_deref() {
        Ok("postgres") => {}
        Ok("embedded") | Err(_) => return None,
        Ok(other) => panic!("POWERNODE_TEST_STORE is `embedded` or `postgres`, not `{other}`"),
    }
    // In the test's folder: a server started again on the same folder finds its database
    // and its artifacts.
    let cluster = powernode::store::pg::throwaway::Cluster::start_in(&dir.join("pg")).unwrap();
    let s3 = powernode::store::throwaway_s3::S3Server::start_in(&dir.join("s3")).unwrap();
    s3.bucket("artifacts").unwrap();
    let section = format!(
        "[store]\nkind = \"postgres\"\nurl = \"{}\"\npool_size = 4\nlease_secs = 2\n\n{}",
        cluster.url("postgres"),
        s3.config("artifacts")
    );
    Some(SharedStore {
        section,
        _pg: cluster,
        _s3: s3,
    })
}

/// A fixture's body and the headers the forge sends, re-signed if `delivery` is given.
fn fixture(forge: &str, name: &str) -> (Vec<u8>, BTreeMap<String, String>) {
    let body = std::fs::read(format!("{FIXTURES}/{forge}/{name}.json")).unwrap();
    let headers: BTreeMap<String, String> =
        serde_json::from_slice(&std::fs::read(format!("{FIXTURES}/{forge}/{name}.headers.json")).unwrap()).unwrap();
    (body, headers)
}

/// An HTTP client whose requests fail (naming the URL) rather than wait forever.
fn client() -> reqwest::Client {
    reqwest::Client::builder().timeout(REQUEST).build().unwrap()
}

/// Polls `done` until it holds; past `within`, panics saying what was awaited.
async fn until(within: Duration, what: impl Fn() -> String, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !done() {
        assert!(Instant::now() < deadline, "waited {within:?} for {}", what());
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

async fn post(url: &str, body: &[u8], headers: &BTreeMap<String, String>) -> (u16, Value) {
    let mut req = client().post(url).body(body.to_vec());
    for (k, v) in headers {
        req = req.header(k, v);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

/// A GitHub API on loopback that knows only `GET /user`, answering as GitHub does: `login`
/// for the bearer token `unused`, or for an app `installation` token 403 "Resource not
/// accessible by integration"; 401 "Bad credentials" for any other token.
async fn github_user_api(login: &'static str, installation: bool) -> (String, tokio::task::JoinHandle<()>) {
    use axum::http::{HeaderMap, StatusCode};
    let user = move |headers: HeaderMap| async move {
        let docs = "https://docs.github.com/rest/users/users#get-the-authenticated-user";
        let (status, body) = if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some("Bearer unused") {
            (
                StatusCode::UNAUTHORIZED,
                serde_json::json!({"message": "Bad credentials", "documentation_url": docs, "status": "401"}),
            )
        } else if installation {
            (
                StatusCode::FORBIDDEN,
                serde_json::json!({"message": "Resource not accessible by integration", "documentation_url": docs, "status": "403"}),
            )
        } else {
            (
                StatusCode::OK,
                serde_json::json!({"login": login, "id": 1, "type": "User"}),
            )
        };
        (status, axum::Json(body))
    };
    let app = axum::Router::new().route("/user", axum::routing::get(user));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    (
        url,
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() }),
    )
}

/// One authorized API call: status and body text.
async fn api_text(server: &Server, method: reqwest::Method, path: &str, body: Option<&str>) -> (u16, String) {
    let mut req = reqwest::Client::new()
        .request(method, format!("{}/api{path}", server.url))
        .bearer_auth(API_TOKEN);
    if let Some(body) = body {
        req = req.body(body.to_owned());
    }
    let resp = req.send().await.unwrap();
    (resp.status().as_u16(), resp.text().await.unwrap())
}

fn with_delivery(headers: &BTreeMap<String, String>, id: &str) -> BTreeMap<String, String> {
    let mut h = headers.clone();
    h.insert("X-GitHub-Delivery".into(), id.into());
    h
}

/// A client that does not follow redirects, as a browser's form posts are checked.
fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(REQUEST)
        .build()
        .unwrap()
}

/// Signs in to the dashboard with `token` through `client`: the session cookie (`name=value`)
/// and the whole `Set-Cookie` line, for its attributes.
async fn sign_in(client: &reqwest::Client, server: &Server, token: &str) -> (String, String) {
    let signin = client
        .post(format!("{}/signin", server.url))
        .form(&[("token", token), ("next", "/runs")])
        .send()
        .await
        .unwrap();
    assert_eq!(signin.status(), 303, "signing in with {token}");
    let line = signin.headers()["set-cookie"].to_str().unwrap().to_owned();
    (line.split(';').next().unwrap().to_owned(), line)
}

/// A dashboard page as the session of `cookie` sees it.
async fn page_as(client: &reqwest::Client, server: &Server, path: &str, cookie: &str) -> String {
    let page = client
        .get(format!("{}{path}", server.url))
        .header("cookie", cookie)
        .send()
        .await;
    page.unwrap().text().await.unwrap()
}

/// The CSRF token of the forms in a signed-in dashboard page.
fn csrf_of(page: &str) -> String {
    page.split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("a CSRF field in the signed-in page")
        .to_owned()
}
