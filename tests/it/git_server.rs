//! Test support: a smart-HTTP git server on loopback that demands a token on every request,
//! serves the bare repositories under a root through `git http-backend` (CGI), and records every
//! request; plus a server that accepts connections and never answers, for timeout tests.
//!
//! Plain tokio and hand-rolled HTTP/1.1 (one request per connection, `Connection: close`), so it
//! needs no dependency beyond tokio. Each server runs on its own thread and runtime, so it works
//! from sync tests and from any `#[tokio::test]` flavour, and stops when dropped.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::sync::oneshot;

/// How a [`GitServer`] behaves.
#[derive(Debug, Clone)]
pub struct Options {
    /// Pass the client's `Git-Protocol` header to git (protocol v2, which lets clients fetch any
    /// commit by id); `false` forces protocol v0, where fetching an unadvertised commit is refused.
    pub protocol_v2: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options { protocol_v2: true }
    }
}

/// One request the server saw.
#[derive(Debug, Clone)]
pub struct Request {
    /// The request line, e.g. `GET /repo.git/info/refs?service=git-upload-pack HTTP/1.1`.
    pub line: String,
    /// Method, e.g. `POST`.
    pub method: String,
    /// Path and query, e.g. `/repo.git/git-receive-pack`.
    pub target: String,
    /// Headers in order, names as sent.
    pub headers: Vec<(String, String)>,
    /// The status code answered.
    pub status: u16,
    /// The authenticated user (Basic user name, or `bearer`), if the token matched.
    pub user: Option<String>,
}

impl Request {
    /// The first header named `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// A running token-checking git server; stops when dropped.
pub struct GitServer {
    /// `http://127.0.0.1:PORT`, no trailing slash: the bare repository `root/x.git` is `{url}/x.git`.
    pub url: String,
    log: Arc<Mutex<Vec<Request>>>,
    _stop: oneshot::Sender<()>,
}

impl GitServer {
    /// Every request seen so far, in order of completion.
    pub fn requests(&self) -> Vec<Request> {
        self.log.lock().unwrap().clone()
    }

    /// Forgets the requests seen so far.
    pub fn clear_requests(&self) {
        self.log.lock().unwrap().clear();
    }
}

/// Starts a server for the bare repositories under `root` that answers 401 unless a request
/// carries `token` as `Authorization: Bearer <token>` or Basic `<any user>:<token>`.
/// Receive-pack (push) is enabled for authenticated requests.
pub fn start(root: &Path, token: &str) -> GitServer {
    start_with(root, token, Options::default())
}

/// [`start`] with [`Options`].
pub fn start_with(root: &Path, token: &str, options: Options) -> GitServer {
    let token = token.to_owned();
    start_accepting(root, move |t| t == token, options)
}

/// [`start_with`] taking every token `accepts` takes (tokens that change, such as a GitHub
/// App's installation tokens, which expire).
pub fn start_accepting(
    root: &Path,
    accepts: impl Fn(&str) -> bool + Send + Sync + 'static,
    options: Options,
) -> GitServer {
    let state = Arc::new(State {
        root: root.to_owned(),
        accepts: Box::new(accepts),
        options,
        log: Arc::new(Mutex::new(Vec::new())),
    });
    let log = state.log.clone();
    let (url, stop) = spawn_server(move |sock| {
        let state = state.clone();
        async move {
            let _ = handle(sock, &state).await;
        }
    });
    GitServer { url, log, _stop: stop }
}

/// A server that accepts connections, reads nothing and never answers; stops when dropped.
pub struct HungServer {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    _stop: oneshot::Sender<()>,
}

/// Starts a [`HungServer`].
pub fn start_hung() -> HungServer {
    let (url, stop) = spawn_server(|sock| async move {
        let _held = sock;
        std::future::pending::<()>().await;
    });
    HungServer { url, _stop: stop }
}

struct State {
    root: PathBuf,
    accepts: Box<dyn Fn(&str) -> bool + Send + Sync>,
    options: Options,
    log: Arc<Mutex<Vec<Request>>>,
}

/// Binds 127.0.0.1:0 and serves each connection with `serve` on a thread of its own until the
/// returned sender is dropped.
fn spawn_server<F, Fut>(serve: F) -> (String, oneshot::Sender<()>)
where
    F: Fn(TcpStream) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind loopback");
    listener.set_nonblocking(true).unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = oneshot::channel::<()>();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            let accept = async {
                while let Ok((sock, _)) = listener.accept().await {
                    tokio::spawn(serve(sock));
                }
            };
            tokio::select! {
                _ = stopped => {}
                _ = accept => {}
            }
        });
        // Dropping the runtime drops every connection task and kills their CGI processes.
    });
    (url, stop)
}

async fn handle(sock: TcpStream, state: &State) -> std::io::Result<()> {
    let (read, mut write) = sock.into_split();
    let mut reader = BufReader::new(read);
    let mut line = String::new();
    reader.read_line(&mut line).await?;
    let line = line.trim_end().to_owned();
    let mut parts = line.split(' ');
    let method = parts.next().unwrap_or_default().to_owned();
    let target = parts.next().unwrap_or_default().to_owned();
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).await? == 0 {
            break;
        }
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.push((k.trim().to_owned(), v.trim().to_owned()));
        }
    }
    let mut req = Request {
        line,
        method,
        target,
        headers,
        status: 0,
        user: None,
    };

    req.user = authenticate(req.header("authorization"), &*state.accepts);
    if req.user.is_none() {
        req.status = 401;
        let body = "authentication required\n";
        let head = format!(
            "HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm=\"git\"\r\nContent-Type: text/plain\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        state.log.lock().unwrap().push(req);
        write.write_all(head.as_bytes()).await?;
        return write.shutdown().await;
    }

    if req
        .header("expect")
        .is_some_and(|v| v.eq_ignore_ascii_case("100-continue"))
    {
        write.write_all(b"HTTP/1.1 100 Continue\r\n\r\n").await?;
    }
    let body = read_body(&mut reader, &req).await?;

    let (path, query) = req.target.split_once('?').unwrap_or((&req.target, ""));
    let mut cmd = tokio::process::Command::new("git");
    cmd.arg("http-backend")
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", &state.root)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_PROJECT_ROOT", &state.root)
        .env("GIT_HTTP_EXPORT_ALL", "1")
        .env("REQUEST_METHOD", &req.method)
        .env("PATH_INFO", path)
        .env("QUERY_STRING", query)
        .env("CONTENT_LENGTH", body.len().to_string())
        .env("REMOTE_USER", req.user.as_deref().unwrap_or_default())
        .env("REMOTE_ADDR", "127.0.0.1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true);
    if let Some(ct) = req.header("content-type") {
        cmd.env("CONTENT_TYPE", ct);
    }
    if let Some(ce) = req.header("content-encoding") {
        cmd.env("HTTP_CONTENT_ENCODING", ce);
    }
    if state.options.protocol_v2
        && let Some(p) = req.header("git-protocol")
    {
        cmd.env("GIT_PROTOCOL", p);
    }
    let mut child = cmd.spawn()?;
    let mut stdin = child.stdin.take().unwrap();
    let feed = tokio::spawn(async move {
        let _ = stdin.write_all(&body).await;
    });
    let mut out = BufReader::new(child.stdout.take().unwrap());

    // CGI response headers, then the body streamed as is.
    let mut status = 200u16;
    let mut reason = "OK".to_owned();
    let mut response_head = String::new();
    loop {
        let mut h = String::new();
        if out.read_line(&mut h).await? == 0 {
            break;
        }
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        match h.split_once(':') {
            Some((k, v)) if k.eq_ignore_ascii_case("status") => {
                let v = v.trim();
                let (code, text) = v.split_once(' ').unwrap_or((v, ""));
                status = code.parse().unwrap_or(500);
                reason = text.to_owned();
            }
            _ => {
                response_head.push_str(h);
                response_head.push_str("\r\n");
            }
        }
    }
    write
        .write_all(format!("HTTP/1.1 {status} {reason}\r\n{response_head}Connection: close\r\n\r\n").as_bytes())
        .await?;
    tokio::io::copy(&mut out, &mut write).await?;
    write.shutdown().await?;
    let _ = feed.await;
    let _ = child.wait().await;
    req.status = status;
    state.log.lock().unwrap().push(req);
    Ok(())
}

/// The user a request authenticates as, if its `Authorization` header carries a token
/// `accepts` takes.
fn authenticate(header: Option<&str>, accepts: &(dyn Fn(&str) -> bool + Send + Sync)) -> Option<String> {
    let (scheme, credentials) = header?.split_once(' ')?;
    if scheme.eq_ignore_ascii_case("bearer") {
        return accepts(credentials.trim()).then(|| "bearer".to_owned());
    }
    if scheme.eq_ignore_ascii_case("basic") {
        let decoded = String::from_utf8(base64_decode(credentials.trim())?).ok()?;
        let (user, password) = decoded.split_once(':')?;
        return (!user.is_empty() && accepts(password)).then(|| user.to_owned());
    }
    None
}

async fn read_body(reader: &mut (impl AsyncRead + AsyncBufReadExt + Unpin), req: &Request) -> std::io::Result<Vec<u8>> {
    let mut body = Vec::new();
    if req
        .header("transfer-encoding")
        .is_some_and(|v| v.eq_ignore_ascii_case("chunked"))
    {
        loop {
            let mut size = String::new();
            reader.read_line(&mut size).await?;
            let size = usize::from_str_radix(size.trim().split(';').next().unwrap_or("0"), 16)
                .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?;
            if size == 0 {
                // Trailers, up to the blank line.
                loop {
                    let mut t = String::new();
                    if reader.read_line(&mut t).await? == 0 || t.trim_end().is_empty() {
                        break;
                    }
                }
                break;
            }
            let start = body.len();
            body.resize(start + size, 0);
            reader.read_exact(&mut body[start..]).await?;
            let mut crlf = [0u8; 2];
            reader.read_exact(&mut crlf).await?;
        }
    } else if let Some(len) = req.header("content-length").and_then(|v| v.parse::<usize>().ok()) {
        body.resize(len, 0);
        reader.read_exact(&mut body).await?;
    }
    Ok(body)
}

fn base64_decode(text: &str) -> Option<Vec<u8>> {
    let value = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    };
    let text = text.trim_end_matches('=').as_bytes();
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    for chunk in text.chunks(4) {
        let mut n = 0u32;
        for (i, &c) in chunk.iter().enumerate() {
            n |= value(c)? << (18 - 6 * i);
        }
        let bytes = n.to_be_bytes();
        match chunk.len() {
            4 => out.extend_from_slice(&bytes[1..4]),
            3 => out.extend_from_slice(&bytes[1..3]),
            2 => out.push(bytes[1]),
            _ => return None,
        }
    }
    Some(out)
}
