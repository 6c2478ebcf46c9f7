//! A throwaway S3-compatible server for tests and benchmarks: `s3s-fs` (crates.io's
//! `s3s-fs`, installed by `scripts/setup.sh --test`) on a loopback port, keeping its buckets
//! as folders of a temporary directory, and checking every request's SigV4 signature against
//! one key pair. Stopped when dropped.

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The program that serves S3 from a folder.
const PROGRAM: &str = "s3s-fs";
/// The key pair the server accepts.
const ACCESS_KEY: &str = "powernode-test-key";
const SECRET_KEY: &str = "powernode-test-secret-0123456789";

/// A running `s3s-fs` on `127.0.0.1`.
pub struct S3Server {
    child: Child,
    /// `http://127.0.0.1:<port>`.
    pub endpoint: String,
    root: PathBuf,
    _dir: Option<tempfile::TempDir>,
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl S3Server {
    /// A server on a fresh temporary folder.
    pub fn start() -> std::io::Result<S3Server> {
        let dir = tempfile::tempdir()?;
        let mut server = S3Server::start_in(dir.path())?;
        server._dir = Some(dir);
        Ok(server)
    }

    /// A server whose buckets are the folders of `root` (created); a server started again
    /// on the same folder finds what the last one stored.
    pub fn start_in(root: &Path) -> std::io::Result<S3Server> {
        std::fs::create_dir_all(root)?;
        let mut last = None;
        // A port found free may be taken before the server binds it: try another.
        for _ in 0..5 {
            let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
            let child = Command::new(PROGRAM)
                .args(["--host", "127.0.0.1", "--port", &port.to_string()])
                .args(["--access-key", ACCESS_KEY, "--secret-key", SECRET_KEY])
                .arg(root)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .map_err(|e| {
                    std::io::Error::new(
                        e.kind(),
                        format!(
                            "cannot start `{PROGRAM}` ({e}): run scripts/setup.sh --test, which installs it with \
                             `cargo install s3s-fs@0.14.1 --features binary --locked`"
                        ),
                    )
                })?;
            let mut server = S3Server {
                child,
                endpoint: format!("http://127.0.0.1:{port}"),
                root: root.to_path_buf(),
                _dir: None,
            };
            match server.wait_ready(port) {
                Ok(()) => return Ok(server),
                Err(e) => last = Some(e),
            }
        }
        Err(last.expect("tried at least once"))
    }

    fn wait_ready(&mut self, port: u16) -> std::io::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Ok(());
            }
            if let Some(status) = self.child.try_wait()? {
                return Err(std::io::Error::other(format!("`{PROGRAM}` exited at start: {status}")));
            }
            if Instant::now() > deadline {
                return Err(std::io::Error::other(format!(
                    "`{PROGRAM}` did not listen on port {port}"
                )));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The folder the buckets are folders of.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Makes an empty bucket (a bucket of `s3s-fs` is a folder of its root).
    pub fn bucket(&self, name: &str) -> std::io::Result<()> {
        std::fs::create_dir_all(self.root.join(name))
    }

    /// The `[store.artifacts]` section for `bucket` on this server.
    pub fn config(&self, bucket: &str) -> String {
        format!(
            "[store.artifacts]\nkind = \"s3\"\nbucket = \"{bucket}\"\nendpoint = \"{}\"\nallow_http = true\n\
             access_key_id = \"{ACCESS_KEY}\"\nsecret_access_key = \"{SECRET_KEY}\"\n",
            self.endpoint
        )
    }

    /// Stops the server (as a crash would), for tests of a store that goes away.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
