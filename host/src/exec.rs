//! Running a program for the `process` interface: in the workspace, with only the
//! environment asked for, bounded output, and the whole process group killed on timeout.

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};

/// One program to run.
#[derive(Debug, Clone)]
pub struct ExecRequest {
    /// Program name or path, looked up on the host's PATH.
    pub program: String,
    /// Arguments.
    pub args: Vec<String>,
    /// Working directory, already confined to the workspace.
    pub cwd: PathBuf,
    /// The child's environment besides PATH and HOME (which it may override).
    pub env: Vec<(String, OsString)>,
    /// Killed after this long.
    pub timeout: Duration,
    /// Fed to stdin, then closed.
    pub stdin: Option<Vec<u8>>,
    /// Bytes kept of each of stdout and stderr; the rest is read and dropped.
    pub max_output: usize,
}

/// What a finished (or killed) program left.
#[derive(Debug, Clone, Default)]
pub struct ExecOutput {
    /// Exit code; none when killed by a signal or the timeout.
    pub exit_code: Option<i32>,
    /// Captured stdout (bounded).
    pub stdout: Vec<u8>,
    /// Captured stderr (bounded).
    pub stderr: Vec<u8>,
    /// Whether the timeout killed it.
    pub timed_out: bool,
}

/// Why a program's run has no trustworthy result.
#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    /// The program could not start (not found, not executable, bad working directory).
    #[error(transparent)]
    Spawn(std::io::Error),
    /// Waiting for the started program failed.
    #[error("waiting for the program failed: {0}")]
    Wait(std::io::Error),
    /// One of its output streams could not be read to the end: the output is incomplete.
    #[error("reading the program's {stream} failed: {source}")]
    Output {
        /// `stdout` or `stderr`.
        stream: &'static str,
        /// Why.
        source: std::io::Error,
    },
}

/// Runs `req` unconfined to completion or timeout. `Err` when the program could not start, or
/// when its output could not be read whole (a run judged on half its output is worse than a
/// failure).
pub async fn run(req: ExecRequest) -> Result<ExecOutput, ExecError> {
    let cmd = plain_command(&req);
    run_command(cmd, req).await
}

/// `req`'s program as a command of its own: in its working directory, with only PATH, HOME
/// (the working directory) and the variables asked for.
pub fn plain_command(req: &ExecRequest) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(&req.program);
    cmd.args(&req.args)
        .current_dir(&req.cwd)
        .env_clear()
        .env(
            "PATH",
            std::env::var_os("PATH").unwrap_or_else(|| "/usr/bin:/bin".into()),
        )
        .env("HOME", &req.cwd)
        .envs(req.env.iter().map(|(k, v)| (k, v)));
    cmd
}

/// Runs `cmd` (built for `req`, e.g. by the sandbox) as [`run`] does: stdin fed, output
/// bounded, its process group killed at the timeout or when dropped.
pub async fn run_command(mut cmd: tokio::process::Command, req: ExecRequest) -> Result<ExecOutput, ExecError> {
    cmd.stdin(if req.stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .process_group(0)
    .kill_on_drop(true);
    let mut child = cmd.spawn().map_err(ExecError::Spawn)?;
    let pgid = child.id().map(|id| nix::unistd::Pid::from_raw(id as i32));
    // Also when this future is dropped (a cancelled run): no process of the group survives.
    let _group = pgid.map(GroupKill);
    if let (Some(input), Some(mut stdin)) = (req.stdin, child.stdin.take()) {
        tokio::spawn(async move {
            let _ = stdin.write_all(&input).await;
        });
    }
    let stdout = tokio::spawn(read_bounded(child.stdout.take(), req.max_output, "stdout"));
    let stderr = tokio::spawn(read_bounded(child.stderr.take(), req.max_output, "stderr"));
    let (status, timed_out) = match tokio::time::timeout(req.timeout, child.wait()).await {
        Ok(status) => (Some(status.map_err(ExecError::Wait)?), false),
        Err(_) => (None, true),
    };
    // Kill the whole group: `sh -c` children would otherwise outlive the step and keep
    // the output pipes open.
    if let Some(pgid) = pgid {
        let _ = nix::sys::signal::killpg(pgid, nix::sys::signal::Signal::SIGKILL);
    }
    if timed_out {
        let _ = child.wait().await;
    }
    Ok(ExecOutput {
        exit_code: status.and_then(|s| s.code()),
        stdout: joined(stdout.await, "stdout")?,
        stderr: joined(stderr.await, "stderr")?,
        timed_out,
    })
}

/// Kills a process group when dropped.
struct GroupKill(nix::unistd::Pid);

impl Drop for GroupKill {
    fn drop(&mut self) {
        let _ = nix::sys::signal::killpg(self.0, nix::sys::signal::Signal::SIGKILL);
    }
}

/// A reader task's result; a task that panicked is an error on its stream too.
fn joined(
    task: Result<Result<Vec<u8>, ExecError>, tokio::task::JoinError>,
    stream: &'static str,
) -> Result<Vec<u8>, ExecError> {
    task.map_err(|e| ExecError::Output {
        stream,
        source: std::io::Error::other(e.to_string()),
    })?
}

/// Reads `pipe` to its end, keeping the first `max` bytes and dropping the rest.
async fn read_bounded(
    pipe: Option<impl AsyncRead + Unpin>,
    max: usize,
    stream: &'static str,
) -> Result<Vec<u8>, ExecError> {
    let Some(mut pipe) = pipe else { return Ok(Vec::new()) };
    let mut kept = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        let n = match pipe.read(&mut buf).await {
            Ok(0) => return Ok(kept),
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(source) => return Err(ExecError::Output { stream, source }),
        };
        let room = max.saturating_sub(kept.len());
        kept.extend_from_slice(&buf[..n.min(room)]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(line: &str, timeout: Duration) -> ExecRequest {
        ExecRequest {
            program: "sh".into(),
            args: vec!["-c".into(), line.into()],
            cwd: std::env::temp_dir(),
            env: vec![("GREETING".into(), "hi".into())],
            timeout,
            stdin: None,
            max_output: 1 << 20,
        }
    }

    #[tokio::test]
    async fn captures_exit_code_output_and_only_the_given_env() {
        let out = run(sh(
            "echo $GREETING; echo ${CARGO:-none}; echo err >&2; exit 3",
            Duration::from_secs(10),
        ))
        .await
        .unwrap();
        assert_eq!(out.exit_code, Some(3));
        assert_eq!(String::from_utf8_lossy(&out.stdout), "hi\nnone\n");
        assert_eq!(String::from_utf8_lossy(&out.stderr), "err\n");
        assert!(!out.timed_out);
    }

    #[tokio::test]
    async fn timeout_kills_the_whole_group() {
        let started = std::time::Instant::now();
        let out = run(sh("sleep 30 & sleep 30; echo never", Duration::from_millis(300)))
            .await
            .unwrap();
        assert!(out.timed_out);
        assert_eq!(out.exit_code, None);
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "pipes closed once the group died"
        );
    }

    /// A pipe that gives `data`, then fails.
    struct Broken {
        data: Option<&'static [u8]>,
    }

    impl AsyncRead for Broken {
        fn poll_read(
            mut self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
            buf: &mut tokio::io::ReadBuf<'_>,
        ) -> std::task::Poll<std::io::Result<()>> {
            std::task::Poll::Ready(match self.data.take() {
                Some(data) => {
                    buf.put_slice(data);
                    Ok(())
                }
                None => Err(std::io::Error::from_raw_os_error(nix::libc::EIO)),
            })
        }
    }

    #[tokio::test]
    async fn a_failed_read_is_reported_with_its_stream_not_taken_for_the_end() {
        let err = read_bounded(
            Some(Broken {
                data: Some(b"half of it"),
            }),
            1 << 20,
            "stderr",
        )
        .await
        .unwrap_err();
        assert!(matches!(err, ExecError::Output { stream: "stderr", .. }), "{err:?}");
        let message = err.to_string();
        assert!(
            message.starts_with("reading the program's stderr failed: "),
            "{message}"
        );
        assert!(message.contains("Input/output error"), "{message}");
        let whole = read_bounded(Some(&b"all of it"[..]), 1 << 20, "stdout").await.unwrap();
        assert_eq!(whole, b"all of it");
    }

    #[tokio::test]
    async fn a_program_that_cannot_start_says_so() {
        let mut req = sh("true", Duration::from_secs(10));
        req.program = "/nonexistent/powernode-test-program".into();
        let err = run(req).await.unwrap_err();
        assert!(matches!(err, ExecError::Spawn(_)), "{err:?}");
        assert!(err.to_string().contains("No such file or directory"), "{err}");
    }

    #[tokio::test]
    async fn dropping_the_run_kills_the_whole_group() {
        let dir = tempfile::tempdir().unwrap();
        let pidfile = dir.path().join("pid");
        let line = format!("sleep 300 & echo $! > {}; wait", pidfile.display());
        let running = tokio::spawn(run(sh(&line, Duration::from_secs(600))));
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        let pid = loop {
            if let Some(pid) = std::fs::read_to_string(&pidfile)
                .ok()
                .and_then(|p| p.trim().parse::<i32>().ok())
            {
                break nix::unistd::Pid::from_raw(pid);
            }
            assert!(std::time::Instant::now() < deadline, "the command never started");
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        running.abort();
        let _ = running.await;
        // Killed processes linger as zombies until reaped by init: check the state, not the pid.
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            let state = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            let alive = state.split(") ").nth(1).is_some_and(|rest| !rest.starts_with('Z'));
            if !alive {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "`sleep 300` outlived its dropped run"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    #[tokio::test]
    async fn output_is_bounded() {
        let mut req = sh("yes | head -c 100000", Duration::from_secs(10));
        req.max_output = 1000;
        let out = run(req).await.unwrap();
        assert_eq!(out.stdout.len(), 1000);
        assert_eq!(out.exit_code, Some(0));
    }
}
