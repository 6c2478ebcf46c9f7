//! Running one git process for an operation: the scrubbed environment, the command-scope config
//! that disables hooks and helpers, the token header for network steps only, the shared
//! deadline with process-group kill, confinement in the command sandbox when running for a
//! plugin, and turning failures into masked [`GitError`]s.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::GitError;
use super::auth::{GitAuth, mask};
use super::validate::RemoteUrl;
use crate::exec::{self, ExecError, ExecRequest};
use crate::policy::Network;
use crate::sandbox::Sandbox;

/// Where git runs for a plugin: in the command sandbox, with the run's workspace (which holds
/// every directory git works in) writable and the host's network (the forge, which often
/// lives on a private or loopback address). A hostile repository that found a hole in git
/// would land there, not in the server.
#[derive(Debug, Clone)]
pub struct Confine {
    /// The server's command sandbox.
    pub sandbox: Arc<Sandbox>,
    /// The run's workspace.
    pub workspace: PathBuf,
}

/// Inside a sandbox only its private `/tmp` is there to run git outside any repository.
const SANDBOX_SCRATCH: &str = "/tmp";

/// Bytes kept of each of a git process's stdout and stderr; the rest is read and dropped.
const MAX_OUTPUT: usize = 1 << 20;

/// Config every git process gets in command scope, which beats repository config: no hooks, no
/// fsmonitor command, no credential helpers, no background gc or maintenance that could outlive
/// the process group, no submodules, no signing, no credentials in URLs.
const HARDENING: &[(&str, &str)] = &[
    ("core.hooksPath", "/dev/null"),
    ("core.fsmonitor", "false"),
    ("credential.helper", ""),
    ("gc.auto", "0"),
    ("maintenance.auto", "false"),
    ("fetch.recurseSubmodules", "false"),
    ("push.recurseSubmodules", "no"),
    ("submodule.recurse", "false"),
    ("commit.gpgSign", "false"),
    ("transfer.credentialsInUrl", "die"),
    ("advice.detachedHead", "false"),
    ("init.defaultBranch", "main"),
];

/// What a finished git process left.
#[derive(Debug)]
pub(super) struct Output {
    /// Exit code (`None` if killed by a signal).
    pub code: Option<i32>,
    /// Stdout, bounded, lossily decoded.
    pub stdout: String,
    /// Stderr, bounded, lossily decoded, with secrets masked.
    pub stderr: String,
}

/// Runs the git processes of one operation, all under one deadline.
pub(super) struct Git {
    /// Private empty `HOME`, removed when the operation ends.
    home: tempfile::TempDir,
    /// The `Authorization` header line and the origin it is scoped to, for network steps.
    header: Option<(String, String)>,
    /// Strings masked out of everything git prints.
    secrets: Vec<String>,
    /// Extra environment for every process (identity, `GIT_DIR`, ...).
    env: Vec<(String, OsString)>,
    /// Extra command-scope config for every process (`safe.directory`).
    config: Vec<(String, String)>,
    /// Run every process in this sandbox; none: as the server's user.
    confine: Option<Confine>,
    /// When the operation's time is up.
    deadline: Instant,
    /// The operation's whole time limit, for the error message.
    timeout: Duration,
}

/// Whether a step talks to the remote (and so gets the token).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Net {
    /// Local only: no token in its environment.
    Local,
    /// Fetch or push: the token header goes in its environment.
    Remote,
}

impl Git {
    /// Prepares an operation against `remote` with `auth`, lasting at most `timeout`, its
    /// processes confined as `confine` says.
    pub(super) fn new(
        auth: Option<&GitAuth>,
        remote: &RemoteUrl,
        timeout: Duration,
        confine: Option<Confine>,
    ) -> Result<Git, GitError> {
        if let Some(auth) = auth {
            auth.check().map_err(GitError::InvalidRequest)?;
            if remote.origin.starts_with("http://") && !is_loopback(&remote.origin) {
                tracing::warn!(origin = %remote.origin, "sending a git token over plain http");
            }
        }
        let home = tempfile::Builder::new()
            .prefix("powernode-git-home-")
            .tempdir()
            .map_err(|source| GitError::Io {
                what: "creating a private HOME for git".into(),
                source,
            })?;
        Ok(Git {
            home,
            header: auth.map(|a| (a.header(), remote.origin.clone())),
            secrets: auth.map(GitAuth::secrets).unwrap_or_default(),
            env: Vec::new(),
            config: Vec::new(),
            confine: confine.filter(|c| c.sandbox.is_confined()),
            deadline: Instant::now() + timeout,
            timeout,
        })
    }

    /// Adds an environment variable for every later process.
    pub(super) fn set_env(&mut self, key: &str, value: impl Into<OsString>) {
        self.env.push((key.to_owned(), value.into()));
    }

    /// Adds a command-scope config entry for every later process.
    pub(super) fn set_config(&mut self, key: &str, value: impl Into<String>) {
        self.config.push((key.to_owned(), value.into()));
    }

    /// A private empty directory outside any repository, to run git where no repository is wanted.
    pub(super) fn scratch_dir(&self) -> &Path {
        match self.confine {
            Some(_) => Path::new(SANDBOX_SCRATCH),
            None => self.home.path(),
        }
    }

    /// Whether a token is sent on network steps.
    pub(super) fn has_token(&self) -> bool {
        self.header.is_some()
    }

    /// Runs git and fails unless it exits 0.
    pub(super) async fn run(&self, step: &str, cwd: &Path, net: Net, args: &[&str]) -> Result<Output, GitError> {
        let out = self.run_any(step, cwd, net, args, None).await?;
        self.check(step, out)
    }

    /// Runs git with `stdin` fed to it and fails unless it exits 0.
    pub(super) async fn run_with_stdin(
        &self,
        step: &str,
        cwd: &Path,
        args: &[&str],
        stdin: Vec<u8>,
    ) -> Result<Output, GitError> {
        let out = self.run_any(step, cwd, Net::Local, args, Some(stdin)).await?;
        self.check(step, out)
    }

    /// Turns a non-zero exit into an [`GitError::Auth`] or [`GitError::Command`].
    pub(super) fn check(&self, step: &str, out: Output) -> Result<Output, GitError> {
        if out.code == Some(0) {
            return Ok(out);
        }
        tracing::debug!(step, code = ?out.code, stderr = %out.stderr, "git failed");
        if is_auth_failure(&out.stderr) {
            return Err(GitError::Auth {
                step: step.into(),
                stderr: out.stderr,
                with_token: self.has_token(),
            });
        }
        Err(GitError::Command {
            step: step.into(),
            stderr: out.stderr,
            code: out.code,
        })
    }

    /// Runs git to completion, whatever its exit code; `Err` for spawn failure, timeout, or
    /// output that could not be read whole.
    pub(super) async fn run_any(
        &self,
        step: &str,
        cwd: &Path,
        net: Net,
        args: &[&str],
        stdin: Option<Vec<u8>>,
    ) -> Result<Output, GitError> {
        let timeout = || GitError::Timeout {
            step: step.into(),
            after: self.timeout,
        };
        if Instant::now() >= self.deadline {
            return Err(timeout());
        }
        tracing::debug!(step, ?args, cwd = %cwd.display(), "running git");
        let request = ExecRequest {
            program: "git".into(),
            args: args.iter().map(|a| a.to_string()).collect(),
            cwd: cwd.to_path_buf(),
            env: self.environment(net),
            timeout: self.deadline.saturating_duration_since(Instant::now()),
            stdin,
            max_output: MAX_OUTPUT,
        };
        let out = match &self.confine {
            Some(confine) => {
                let (command, _proxy) = confine
                    .sandbox
                    .command(&request, &confine.workspace, Network::Host)
                    .await
                    .map_err(|source| GitError::Sandbox {
                        step: step.into(),
                        source,
                    })?;
                exec::run_command(command, request).await
            }
            None => exec::run(request).await,
        };
        let out = out.map_err(|e| match e {
            ExecError::Spawn(source) => GitError::Io {
                what: format!("spawning `git` for {step}"),
                source,
            },
            other => GitError::Exec {
                step: step.into(),
                source: other,
            },
        })?;
        if out.timed_out {
            tracing::warn!(step, after = ?self.timeout, "git timed out and was killed");
            return Err(timeout());
        }
        Ok(Output {
            code: out.exit_code,
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: mask(String::from_utf8_lossy(&out.stderr).trim_end(), &self.secrets),
        })
    }

    /// The whole environment of a git process: nothing inherited but `PATH`.
    fn environment(&self, net: Net) -> Vec<(String, OsString)> {
        let home: PathBuf = match self.confine {
            Some(_) => PathBuf::from(SANDBOX_SCRATCH),
            None => self.home.path().to_owned(),
        };
        let mut env: Vec<(String, OsString)> = vec![
            (
                "PATH".into(),
                std::env::var_os("PATH").unwrap_or_else(|| "/usr/local/bin:/usr/bin:/bin".into()),
            ),
            ("HOME".into(), home.clone().into()),
            ("XDG_CONFIG_HOME".into(), home.join(".config").into()),
            ("LC_ALL".into(), "C".into()),
            ("LANG".into(), "C".into()),
            ("GIT_CONFIG_NOSYSTEM".into(), "1".into()),
            ("GIT_CONFIG_GLOBAL".into(), "/dev/null".into()),
            ("GIT_TERMINAL_PROMPT".into(), "0".into()),
            // Set but empty: git skips askpass altogether (and never consults `core.askPass` or
            // `SSH_ASKPASS`), then finds prompts disabled and fails.
            ("GIT_ASKPASS".into(), "".into()),
            ("GIT_EDITOR".into(), ":".into()),
            ("GIT_PAGER".into(), "cat".into()),
            ("GIT_ADVICE".into(), "0".into()),
            ("GIT_ALLOW_PROTOCOL".into(), "http:https".into()),
            ("GIT_PROTOCOL_FROM_USER".into(), "0".into()),
        ];
        env.extend(self.env.iter().cloned());
        let mut config: Vec<(String, String)> = HARDENING
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        config.extend(self.config.iter().cloned());
        if let (Net::Remote, Some((header, origin))) = (net, &self.header) {
            // Scoped to the remote's origin: should anything rewrite the URL to another host
            // (`url.*.insteadOf`), the header is not sent there.
            config.push((format!("http.{origin}.extraHeader"), header.clone()));
        }
        env.push(("GIT_CONFIG_COUNT".into(), config.len().to_string().into()));
        for (i, (key, value)) in config.into_iter().enumerate() {
            env.push((format!("GIT_CONFIG_KEY_{i}"), key.into()));
            env.push((format!("GIT_CONFIG_VALUE_{i}"), value.into()));
        }
        env
    }
}

/// Whether git's stderr says the server refused (or wanted) credentials.
fn is_auth_failure(stderr: &str) -> bool {
    const NEEDLES: &[&str] = &[
        "Authentication failed",
        "could not read Username",
        "could not read Password",
        "terminal prompts disabled",
        "returned error: 401",
        "returned error: 403",
        "HTTP Basic: Access denied",
        "Invalid username or password",
        "Invalid username or token",
        "Write access to repository not granted",
    ];
    NEEDLES.iter().any(|n| stderr.contains(n)) || (stderr.contains("Permission to ") && stderr.contains(" denied"))
}

fn is_loopback(origin: &str) -> bool {
    let host = origin.trim_start_matches("http://").trim_end_matches('/');
    host.starts_with("127.") || host.starts_with("localhost") || host.starts_with("[::1]")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn remote() -> RemoteUrl {
        super::super::validate::remote_url("http://127.0.0.1:9/r.git").unwrap()
    }

    #[tokio::test]
    async fn token_only_in_the_environment_of_network_steps() {
        let auth = GitAuth::github("tok-123");
        let git = Git::new(Some(&auth), &remote(), Duration::from_secs(5), None).unwrap();
        let local = git.environment(Net::Local);
        let net = git.environment(Net::Remote);
        let has = |env: &[(String, OsString)]| env.iter().any(|(_, v)| v.to_string_lossy().contains(&auth.header()));
        assert!(!has(&local));
        assert!(has(&net));
        assert!(
            net.iter()
                .any(|(k, v)| k.starts_with("GIT_CONFIG_KEY_") && v == "http.http://127.0.0.1:9/.extraHeader")
        );
    }

    #[tokio::test]
    async fn environment_is_scrubbed() {
        let git = Git::new(None, &remote(), Duration::from_secs(5), None).unwrap();
        let out = git
            .run("var", Path::new("/"), Net::Local, &["var", "-l"])
            .await
            .unwrap();
        assert!(out.stdout.contains("core.hookspath=/dev/null"), "{}", out.stdout);
        let env = git.environment(Net::Local);
        assert!(env.iter().all(|(k, _)| k != "CARGO" && k != "USER"));
    }

    #[tokio::test]
    async fn deadline_kills_the_process_group() {
        let git = Git::new(None, &remote(), Duration::from_millis(300), None).unwrap();
        let started = std::time::Instant::now();
        // `git -c alias.x='!sleep 30' x` runs a shell, which must die with the group.
        let err = git
            .run("alias", Path::new("/"), Net::Local, &["-c", "alias.s=!sleep 30", "s"])
            .await
            .unwrap_err();
        assert!(matches!(err, GitError::Timeout { .. }), "{err}");
        // Well under the 30 s the shell would live if the group survived.
        assert!(started.elapsed() < Duration::from_secs(20), "{:?}", started.elapsed());
    }

    #[tokio::test]
    async fn confined_git_and_what_it_starts_see_only_the_workspace() {
        use std::os::unix::fs::PermissionsExt;
        let root = tempfile::tempdir().unwrap();
        std::fs::set_permissions(root.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let (workspace, data) = (root.path().join("workspace"), root.path().join("data"));
        std::fs::create_dir_all(&workspace).unwrap();
        std::fs::create_dir_all(&data).unwrap();
        std::fs::write(data.join("store"), "server data").unwrap();
        let sandbox = Sandbox::bwrap(Default::default(), vec![data.clone()], None, &workspace).unwrap();
        let confine = Confine {
            sandbox: Arc::new(sandbox),
            workspace: workspace.clone(),
        };
        let auth = GitAuth::github("tok-123");
        let git = Git::new(Some(&auth), &remote(), Duration::from_secs(30), Some(confine)).unwrap();
        // A shell git starts (as a hostile repository might make it) runs in the sandbox:
        // the server's data is not there, the workspace is, and its PID namespace is its own.
        let probe = format!(
            "!sh -c 'cat {}/store; echo ws > {}/mark; ls /proc | grep -c \"^[0-9]\"'",
            data.display(),
            workspace.display()
        );
        let alias = format!("alias.probe={probe}");
        let out = git
            .run_any("probe", &workspace, Net::Local, &["-c", &alias, "probe"], None)
            .await
            .unwrap();
        assert!(out.stderr.contains("No such file or directory"), "{}", out.stderr);
        assert_eq!(std::fs::read_to_string(workspace.join("mark")).unwrap(), "ws\n");
        let pids: u32 = out.stdout.trim().parse().unwrap();
        assert!(pids < 10, "the sandbox's /proc shows {pids} processes");
        assert_eq!(git.scratch_dir(), Path::new("/tmp"));
    }

    #[tokio::test]
    async fn missing_directory_is_an_io_error() {
        let git = Git::new(None, &remote(), Duration::from_secs(5), None).unwrap();
        let err = git
            .run("status", Path::new("/nonexistent/dir"), Net::Local, &["status"])
            .await
            .unwrap_err();
        assert!(matches!(err, GitError::Io { .. }), "{err}");
    }
}
