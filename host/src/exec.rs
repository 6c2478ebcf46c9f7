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

/// Runs `req` to completion or timeout. `Err` only when the program could not start.
pub async fn run(req: ExecRequest) -> std::io::Result<ExecOutput> {
    let mut cmd = tokio::process::Command::new(&req.program);
    cmd.args(&req.args)
        .current_dir(&req.cwd)
        .env_clear()
        .env(
            "PATH",
            std::env::var_os("PATH").unwrap_or_else(|| "/usr/bin:/bin".into()),
        )
        .env("HOME", &req.cwd)
        .envs(req.env.iter().map(|(k, v)| (k, v)))
        .stdin(if req.stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    let mut child = cmd.spawn()?;
    let pgid = child.id().map(|id| nix::unistd::Pid::from_raw(id as i32));
    if let (Some(input), Some(mut stdin)) = (req.stdin, child.stdin.take()) {
        tokio::spawn(async move {
            let _ = stdin.write_all(&input).await;
        });
    }
    let stdout = tokio::spawn(read_bounded(child.stdout.take(), req.max_output));
    let stderr = tokio::spawn(read_bounded(child.stderr.take(), req.max_output));
    let (status, timed_out) = match tokio::time::timeout(req.timeout, child.wait()).await {
        Ok(status) => (Some(status?), false),
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
        stdout: stdout.await.unwrap_or_default(),
        stderr: stderr.await.unwrap_or_default(),
        timed_out,
    })
}

async fn read_bounded(pipe: Option<impl AsyncRead + Unpin>, max: usize) -> Vec<u8> {
    let Some(mut pipe) = pipe else { return Vec::new() };
    let mut kept = Vec::new();
    let mut buf = [0u8; 8192];
    while let Ok(n) = pipe.read(&mut buf).await {
        if n == 0 {
            break;
        }
        let room = max.saturating_sub(kept.len());
        kept.extend_from_slice(&buf[..n.min(room)]);
    }
    kept
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

    #[tokio::test]
    async fn output_is_bounded() {
        let mut req = sh("yes | head -c 100000", Duration::from_secs(10));
        req.max_output = 1000;
        let out = run(req).await.unwrap();
        assert_eq!(out.stdout.len(), 1000);
        assert_eq!(out.exit_code, Some(0));
    }
}
