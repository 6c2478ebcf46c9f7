//! The host side of `egress`: an HTTP proxy on a unix socket, one per confined command,
//! reached from inside the sandbox through the relay. `CONNECT host:port` (HTTPS) and
//! absolute-form `http://` requests are allowed to public addresses only (plus the
//! operator's `egress_allow`); the name is resolved once and the proxy connects to exactly
//! the addresses it checked, so a second DNS answer cannot lead it to loopback.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UnixListener, UnixStream};

use crate::policy::AllowList;

/// The socket's file name in the proxy's directory.
pub(super) const SOCKET_NAME: &str = "egress.sock";
/// Longest request head accepted.
const MAX_HEAD: usize = 16 << 10;
/// Connections one command may have open through the proxy at once; more wait.
const MAX_CONNECTIONS: usize = 64;

/// A running proxy; stops (and removes its socket) when dropped.
#[derive(Debug)]
pub struct EgressProxy {
    dir: tempfile::TempDir,
    task: tokio::task::JoinHandle<()>,
}

impl EgressProxy {
    /// Serves a fresh socket; `owner`: the user that must be able to connect.
    pub(super) fn start(allow: AllowList, owner: Option<u32>) -> std::io::Result<EgressProxy> {
        let dir = tempfile::Builder::new().prefix("powernode-egress-").tempdir()?;
        let path = dir.path().join(SOCKET_NAME);
        let listener = UnixListener::bind(&path)?;
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))?;
        if let Some(uid) = owner {
            std::os::unix::fs::lchown(&path, Some(uid), Some(uid))?;
        }
        let slots = std::sync::Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
        let task = tokio::spawn(async move {
            // Each connection costs the host a task and an upstream socket: a command opening
            // thousands waits for a slot instead.
            while let Ok(slot) = slots.clone().acquire_owned().await {
                let Ok((conn, _)) = listener.accept().await else { break };
                let allow = allow.clone();
                tokio::spawn(async move {
                    if let Err(e) = serve(conn, &allow).await {
                        tracing::debug!(error = %e, "egress connection ended");
                    }
                    drop(slot);
                });
            }
        });
        Ok(EgressProxy { dir, task })
    }

    /// The directory holding the socket (mounted into the sandbox).
    pub(super) fn dir(&self) -> PathBuf {
        self.dir.path().to_owned()
    }
}

impl Drop for EgressProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// One client connection: read the request head, check, connect, then relay bytes.
async fn serve(mut conn: UnixStream, allow: &AllowList) -> std::io::Result<()> {
    let mut head = Vec::new();
    let mut buf = [0u8; 4096];
    let end = loop {
        let n = conn.read(&mut buf).await?;
        if n == 0 {
            return Ok(());
        }
        head.extend_from_slice(&buf[..n]);
        if let Some(i) = head.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        if head.len() > MAX_HEAD {
            return refuse(&mut conn, 431, "request head too large").await;
        }
    };
    let text = String::from_utf8_lossy(&head[..end]).into_owned();
    let first = text.lines().next().unwrap_or("");
    let mut parts = first.split_whitespace();
    let (method, target, version) = (
        parts.next().unwrap_or(""),
        parts.next().unwrap_or(""),
        parts.next().unwrap_or("HTTP/1.1"),
    );
    let (host, port, rest) = if method.eq_ignore_ascii_case("CONNECT") {
        match split_host_port(target, 443) {
            Some((h, p)) => (h, p, None),
            None => return refuse(&mut conn, 400, "CONNECT needs host:port").await,
        }
    } else if let Some(after) = target.strip_prefix("http://") {
        let (authority, path) = after.split_at(after.find('/').unwrap_or(after.len()));
        let path = if path.is_empty() { "/" } else { path };
        match split_host_port(authority, 80) {
            Some((h, p)) => (h, p, Some(format!("{method} {path} {version}"))),
            None => return refuse(&mut conn, 400, "bad request target").await,
        }
    } else {
        return refuse(
            &mut conn,
            400,
            "only CONNECT and absolute http:// requests go through the egress proxy",
        )
        .await;
    };
    let addrs = match resolve(&host, port).await {
        Ok(addrs) => addrs,
        Err(e) => return refuse(&mut conn, 502, &format!("cannot resolve `{host}`: {e}")).await,
    };
    let ips: Vec<IpAddr> = addrs.iter().map(SocketAddr::ip).collect();
    if let Err(denied) = allow.check_egress(&host, port, &ips) {
        tracing::info!(%host, port, reason = %denied, "egress refused");
        return refuse(&mut conn, 403, &format!("powernode egress refused: {denied}")).await;
    }
    let mut upstream = match TcpStream::connect(&addrs[..]).await {
        Ok(s) => s,
        Err(e) => return refuse(&mut conn, 502, &format!("cannot connect to `{host}:{port}`: {e}")).await,
    };
    match rest {
        None => conn.write_all(b"HTTP/1.1 200 Connection established\r\n\r\n").await?,
        Some(request_line) => {
            // The origin-form request line, then the rest of the head and any body bytes read.
            let after_line = text.find("\r\n").map_or(end, |i| i);
            upstream.write_all(request_line.as_bytes()).await?;
            upstream.write_all(&head[after_line..]).await?;
        }
    }
    if rest_is_connect_with_extra(&head, end, method) {
        upstream.write_all(&head[end..]).await?;
    }
    tokio::io::copy_bidirectional(&mut conn, &mut upstream).await?;
    Ok(())
}

/// Bytes a CONNECT client sent after the head (a TLS hello sent eagerly) go upstream too.
fn rest_is_connect_with_extra(head: &[u8], end: usize, method: &str) -> bool {
    method.eq_ignore_ascii_case("CONNECT") && head.len() > end
}

/// The addresses of `host` (an IP literal is its own).
async fn resolve(host: &str, port: u16) -> std::io::Result<Vec<SocketAddr>> {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = bare.parse::<IpAddr>() {
        return Ok(vec![SocketAddr::new(ip, port)]);
    }
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host((bare, port)).await?.collect();
    if addrs.is_empty() {
        return Err(std::io::Error::other("no address"));
    }
    Ok(addrs)
}

/// `host:port`, `[v6]:port` or a bare host (with `default` as its port).
fn split_host_port(authority: &str, default: u16) -> Option<(String, u16)> {
    let authority = authority.rsplit_once('@').map_or(authority, |(_, a)| a);
    if authority.is_empty() {
        return None;
    }
    if let Some(rest) = authority.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        let port = match after.strip_prefix(':') {
            Some(p) => p.parse().ok()?,
            None => default,
        };
        return Some((host.to_owned(), port));
    }
    match authority.rsplit_once(':') {
        Some((host, port)) => Some((host.to_owned(), port.parse().ok()?)),
        None => Some((authority.to_owned(), default)),
    }
}

async fn refuse(conn: &mut UnixStream, status: u16, why: &str) -> std::io::Result<()> {
    let reason = match status {
        400 => "Bad Request",
        403 => "Forbidden",
        431 => "Request Header Fields Too Large",
        _ => "Bad Gateway",
    };
    let body = format!("{why}\n");
    let answer = format!(
        "HTTP/1.1 {status} {reason}\r\ncontent-type: text/plain\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    conn.write_all(answer.as_bytes()).await?;
    conn.shutdown().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authorities_split_into_host_and_port() {
        assert_eq!(
            split_host_port("example.com:8443", 443),
            Some(("example.com".into(), 8443))
        );
        assert_eq!(split_host_port("example.com", 80), Some(("example.com".into(), 80)));
        assert_eq!(split_host_port("[::1]:22", 443), Some(("::1".into(), 22)));
        assert_eq!(split_host_port("user:pw@h:1", 80), Some(("h".into(), 1)));
        assert_eq!(split_host_port("h:notaport", 80), None);
        assert_eq!(split_host_port("", 80), None);
    }

    #[tokio::test]
    async fn loopback_metadata_and_private_targets_are_refused() {
        let allow = AllowList::default();
        for (host, why) in [
            ("127.0.0.1", "loopback"),
            ("169.254.169.254", "link-local"),
            ("10.1.2.3", "private"),
            ("localhost", "loopback"),
        ] {
            let addrs = resolve(host, 80).await.unwrap();
            let ips: Vec<IpAddr> = addrs.iter().map(SocketAddr::ip).collect();
            let err = allow.check_egress(host, 80, &ips).unwrap_err().to_string();
            assert!(err.contains(why), "{host}: {err}");
        }
        let listed = AllowList::parse("sandbox", &["10.0.0.0/8".into()]).unwrap();
        assert!(listed.check_egress("10.1.2.3", 80, &[]).is_ok());
        assert!(allow.check_egress("93.184.215.14", 443, &[]).is_ok());
    }
}
