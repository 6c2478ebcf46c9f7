//! Confining the programs steps run (`process`): each runs under bubblewrap in namespaces of
//! its own — its own PID namespace (killed whole with the step), its own network namespace
//! (`none`; `egress` through the host's filtering proxy, see `egress.rs`; or the host's
//! network when granted `host`), a filesystem that holds the system read-only, the run's
//! workspace read-write at the same path, a private `/tmp`, and nothing of the server's data,
//! config, plugins or home — as an unprivileged user (a server running as root drops to
//! `nobody`), with limits on processes, open files and file size, and an environment holding
//! only what the step asked for.

mod egress;
pub mod relay;

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::exec::ExecRequest;
use crate::policy::{AllowList, Network, PolicyError};

pub use egress::EgressProxy;

/// Where the relay program is mounted inside a sandbox.
const RELAY_IN_SANDBOX: &str = "/run/powernode/relay";
/// Where the egress proxy's socket directory is mounted inside a sandbox.
const EGRESS_DIR_IN_SANDBOX: &str = "/run/powernode/egress";
/// The relay's listening address inside the sandbox's own network namespace.
pub const RELAY_ADDR: &str = "127.0.0.1:3128";
/// The user a server running as root runs commands as.
const NOBODY: u32 = 65534;

/// `process_sandbox` in the config: how commands are confined.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SandboxMode {
    /// bubblewrap (Debian's `bubblewrap` package).
    #[default]
    Bwrap,
    /// Commands run unconfined as the server's user: every run's log says so.
    Off,
}

/// `[sandbox]` in the config.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SandboxConfig {
    /// More read-only paths besides `/usr`, `/bin`, `/lib*` and `/etc` (a language cache,
    /// a toolchain under `/opt`).
    pub read_only: Vec<PathBuf>,
    /// Addresses (IP or CIDR) `egress` may reach although they are not public.
    pub egress_allow: Vec<String>,
    /// Processes the sandbox's user may have at once (RLIMIT_NPROC).
    pub max_processes: u64,
    /// Open files per process (RLIMIT_NOFILE).
    pub max_open_files: u64,
    /// Largest file a command may write, in MiB (RLIMIT_FSIZE).
    pub max_file_mb: u64,
}

impl Default for SandboxConfig {
    fn default() -> Self {
        SandboxConfig {
            read_only: Vec::new(),
            egress_allow: Vec::new(),
            max_processes: 1024,
            max_open_files: 4096,
            max_file_mb: 8192,
        }
    }
}

/// Why the sandbox cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    /// bubblewrap is missing or cannot create namespaces here.
    #[error(
        "commands cannot be confined: {0}. Install bubblewrap (`apt-get install bubblewrap`) and allow \
         unprivileged user namespaces (`sysctl kernel.unprivileged_userns_clone=1`), or set \
         `process_sandbox = \"off\"` in the config to run commands unconfined"
    )]
    Unavailable(String),
    /// A config value is wrong.
    #[error("[sandbox]: {0}")]
    Config(String),
    /// Setting up one command's sandbox failed.
    #[error("setting up the sandbox: {0}")]
    Setup(String),
}

/// How commands are confined; shared by every step.
#[derive(Debug)]
pub struct Sandbox {
    mode: SandboxMode,
    config: SandboxConfig,
    egress_allow: AllowList,
    /// Paths hidden inside the sandbox even when under a read-only root.
    hidden: Vec<PathBuf>,
    /// The `powernode` binary, mounted into sandboxes as the egress relay: a link (or copy)
    /// in a folder anyone may read, since the sandbox's user may not reach the original.
    relay: Option<PathBuf>,
    _relay_dir: Option<tempfile::TempDir>,
    /// Run as `nobody`: the server is root.
    drop_root: bool,
}

impl Sandbox {
    /// No confinement.
    pub fn off() -> Sandbox {
        Sandbox {
            mode: SandboxMode::Off,
            config: SandboxConfig::default(),
            egress_allow: AllowList::default(),
            hidden: Vec::new(),
            relay: None,
            _relay_dir: None,
            drop_root: false,
        }
    }

    /// A bubblewrap sandbox that hides `hidden` (data directory, plugins directory, config
    /// folder) and relays egress through `relay` (the `powernode` binary; none: `egress`
    /// commands fail to start). Checks that bubblewrap works here by running `true` in it,
    /// with `probe` (the folder workspaces are made in) mounted as a workspace would be.
    pub fn bwrap(
        config: SandboxConfig,
        hidden: Vec<PathBuf>,
        relay: Option<PathBuf>,
        probe: &Path,
    ) -> Result<Sandbox, SandboxError> {
        let egress_allow = AllowList::parse("sandbox", &config.egress_allow)
            .map_err(|e: PolicyError| SandboxError::Config(e.to_string()))?;
        for path in &config.read_only {
            if !path.is_absolute() {
                return Err(SandboxError::Config(format!(
                    "read_only path `{}` must be absolute",
                    path.display()
                )));
            }
        }
        let (relay, relay_dir) = match relay {
            Some(exe) => {
                let (path, dir) = readable_copy(&exe)
                    .map_err(|e| SandboxError::Setup(format!("placing the egress relay ({}): {e}", exe.display())))?;
                (Some(path), Some(dir))
            }
            None => (None, None),
        };
        let sandbox = Sandbox {
            mode: SandboxMode::Bwrap,
            config,
            egress_allow,
            hidden: hidden
                .iter()
                .map(|p| std::fs::canonicalize(p).unwrap_or_else(|_| p.clone()))
                .collect(),
            relay,
            _relay_dir: relay_dir,
            drop_root: nix::unistd::geteuid().is_root(),
        };
        let cmd = sandbox.wrap(probe, probe, "true", &[], &[], Network::None, None);
        let out = cmd
            .into_std()
            .output()
            .map_err(|e| SandboxError::Unavailable(format!("cannot start prlimit and bwrap: {e}")))?;
        if !out.status.success() {
            let why = String::from_utf8_lossy(&out.stderr).trim().to_owned();
            let hint = match sandbox.drop_root && why.contains("Permission denied") {
                true => format!(
                    " (the server runs as root, so commands run as `nobody`, who must be able to reach `{}`: \
                     every folder above it needs the x permission for others)",
                    probe.display()
                ),
                false => String::new(),
            };
            return Err(SandboxError::Unavailable(format!("bwrap failed: {why}{hint}")));
        }
        Ok(sandbox)
    }

    /// Whether commands are confined.
    pub fn is_confined(&self) -> bool {
        self.mode == SandboxMode::Bwrap
    }

    /// The command that runs `req` confined, with network `network`, and the egress proxy
    /// serving it (kept alive while the command runs). Unconfined: the plain command.
    pub async fn command(
        &self,
        req: &ExecRequest,
        workspace: &Path,
        network: Network,
    ) -> Result<(tokio::process::Command, Option<EgressProxy>), SandboxError> {
        if self.mode == SandboxMode::Off {
            return Ok((crate::exec::plain_command(req), None));
        }
        if self.drop_root {
            // A walk of the whole workspace: off the async threads.
            let dir = workspace.to_owned();
            tokio::task::spawn_blocking(move || give_to_nobody(&dir))
                .await
                .map_err(|e| SandboxError::Setup(format!("handing the workspace to nobody: {e}")))?
                .map_err(|e| SandboxError::Setup(format!("handing the workspace to nobody: {e}")))?;
        }
        let proxy = match network {
            Network::Egress => {
                if self.relay.is_none() {
                    return Err(SandboxError::Setup(
                        "`egress` needs the powernode binary as its relay (run through `powernode serve` or `powernode run`), or grant `network = \"none\"` or `\"host\"`".into(),
                    ));
                }
                let owner = self.drop_root.then_some(NOBODY);
                Some(
                    EgressProxy::start(self.egress_allow.clone(), owner)
                        .map_err(|e| SandboxError::Setup(format!("starting the egress proxy: {e}")))?,
                )
            }
            _ => None,
        };
        let env: Vec<(String, OsString)> = req.env.clone();
        let cmd = self.wrap(
            workspace,
            &req.cwd,
            &req.program,
            &req.args,
            &env,
            network,
            proxy.as_ref(),
        );
        Ok((cmd, proxy))
    }

    /// The whole command line: limits, the user drop, bubblewrap, the relay, the program.
    #[allow(clippy::too_many_arguments)]
    fn wrap(
        &self,
        workspace: &Path,
        cwd: &Path,
        program: &str,
        args: &[String],
        env: &[(String, OsString)],
        network: Network,
        proxy: Option<&EgressProxy>,
    ) -> tokio::process::Command {
        let c = &self.config;
        let mut line: Vec<OsString> = vec![
            format!("--nproc={0}:{0}", c.max_processes).into(),
            format!("--nofile={0}:{0}", c.max_open_files).into(),
            format!("--fsize={0}:{0}", c.max_file_mb << 20).into(),
            "--".into(),
        ];
        if self.drop_root {
            line.extend(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--"].map(OsString::from));
        }
        line.push("bwrap".into());
        let arg = |line: &mut Vec<OsString>, parts: &[&dyn AsRef<std::ffi::OsStr>]| {
            line.extend(parts.iter().map(|p| p.as_ref().to_owned()));
        };
        arg(&mut line, &[&"--unshare-all", &"--die-with-parent", &"--new-session"]);
        if network == Network::Host {
            arg(&mut line, &[&"--share-net"]);
        }
        arg(
            &mut line,
            &[&"--uid", &"65534", &"--gid", &"65534", &"--hostname", &"powernode"],
        );
        arg(&mut line, &[&"--ro-bind", &"/usr", &"/usr"]);
        for top in ["/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"] {
            match std::fs::read_link(top) {
                Ok(target) => arg(&mut line, &[&"--symlink", &target, &top]),
                Err(_) => arg(&mut line, &[&"--ro-bind-try", &top, &top]),
            }
        }
        arg(&mut line, &[&"--ro-bind", &"/etc", &"/etc"]);
        // Before the extra paths and the workspace, which may lie under /tmp.
        arg(&mut line, &[&"--perms", &"01777", &"--tmpfs", &"/tmp"]);
        for path in &c.read_only {
            arg(&mut line, &[&"--ro-bind", path, path]);
        }
        arg(&mut line, &[&"--proc", &"/proc", &"--dev", &"/dev"]);
        arg(&mut line, &[&"--bind", &workspace, &workspace]);
        // What lies under a read-only root but is Powernode's own (a config in /etc, say).
        for hidden in &self.hidden {
            let under_root = ["/usr", "/etc"].iter().any(|r| hidden.starts_with(r))
                || c.read_only.iter().any(|r| hidden.starts_with(r));
            if under_root && !workspace.starts_with(hidden) {
                if hidden.is_dir() {
                    arg(&mut line, &[&"--tmpfs", hidden]);
                } else {
                    arg(&mut line, &[&"--ro-bind", &"/dev/null", hidden]);
                }
            }
        }
        let path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/local/bin:/usr/bin:/bin".into());
        arg(
            &mut line,
            &[&"--chdir", &cwd, &"--clearenv", &"--setenv", &"PATH", &path],
        );
        arg(&mut line, &[&"--setenv", &"HOME", &workspace]);
        for (key, value) in env {
            arg(&mut line, &[&"--setenv", key, value]);
        }
        if let (Some(proxy), Some(relay)) = (proxy, &self.relay) {
            let url = format!("http://{RELAY_ADDR}");
            for key in ["HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"] {
                arg(&mut line, &[&"--setenv", &key, &url]);
            }
            arg(&mut line, &[&"--setenv", &"NO_PROXY", &"localhost,127.0.0.1,::1"]);
            arg(&mut line, &[&"--setenv", &"no_proxy", &"localhost,127.0.0.1,::1"]);
            arg(&mut line, &[&"--ro-bind", relay, &RELAY_IN_SANDBOX]);
            arg(&mut line, &[&"--ro-bind", &proxy.dir(), &EGRESS_DIR_IN_SANDBOX]);
            let socket = Path::new(EGRESS_DIR_IN_SANDBOX).join(egress::SOCKET_NAME);
            arg(
                &mut line,
                &[&"--", &RELAY_IN_SANDBOX, &relay::SUBCOMMAND, &socket, &"--"],
            );
        } else {
            arg(&mut line, &[&"--"]);
        }
        line.push(program.into());
        line.extend(args.iter().map(OsString::from));
        let mut cmd = tokio::process::Command::new("prlimit");
        // Nothing of the server's environment reaches bubblewrap: its own process (PID 1 in
        // the sandbox) would show it in /proc/1/environ.
        cmd.args(line).env_clear();
        cmd
    }
}

/// The start of the name of a relay folder: `powernode-relay-<pid>-`.
const RELAY_PREFIX: &str = "powernode-relay-";

/// `exe` hard-linked (or copied) into a fresh folder anyone may traverse, named after this
/// process so that a later start can remove the folders of processes that died without
/// removing their own (a SIGKILL, a crash): a copy is as large as the binary.
fn readable_copy(exe: &Path) -> std::io::Result<(PathBuf, tempfile::TempDir)> {
    use std::os::unix::fs::PermissionsExt;
    remove_stale_relays(&std::env::temp_dir());
    let dir = tempfile::Builder::new()
        .prefix(&format!("{RELAY_PREFIX}{}-", std::process::id()))
        .tempdir()?;
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))?;
    let path = dir.path().join("powernode");
    if std::fs::hard_link(exe, &path).is_err() {
        std::fs::copy(exe, &path)?;
    }
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))?;
    Ok((path, dir))
}

/// Removes the relay folders in `tmp` that this user's processes left when they died.
fn remove_stale_relays(tmp: &Path) {
    use std::os::unix::fs::MetadataExt;
    let Ok(entries) = std::fs::read_dir(tmp) else { return };
    let me = nix::unistd::geteuid().as_raw();
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix(RELAY_PREFIX))
            .and_then(|rest| rest.split('-').next())
            .and_then(|pid| pid.parse::<u32>().ok())
        else {
            continue;
        };
        let ours = entry.metadata().is_ok_and(|m| m.uid() == me && m.is_dir());
        if ours && !Path::new(&format!("/proc/{pid}")).exists() {
            tracing::debug!(folder = %entry.path().display(), "removing a relay folder its process left");
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// Hands `workspace` and everything in it to `nobody`, so a command run as `nobody` can
/// write there; links are changed themselves, never followed.
fn give_to_nobody(workspace: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::MetadataExt;
    let mut stack = vec![workspace.to_owned()];
    while let Some(path) = stack.pop() {
        let meta = std::fs::symlink_metadata(&path)?;
        if meta.uid() != NOBODY || meta.gid() != NOBODY {
            std::os::unix::fs::lchown(&path, Some(NOBODY), Some(NOBODY))?;
        }
        if meta.is_dir() {
            for entry in std::fs::read_dir(&path)? {
                stack.push(entry?.path());
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_relay_folders_of_dead_processes_are_removed() {
        let tmp = tempfile::tempdir().unwrap();
        let dead = tmp.path().join(format!("{RELAY_PREFIX}999999999-abc"));
        let alive = tmp.path().join(format!("{RELAY_PREFIX}{}-xyz", std::process::id()));
        let unrelated = [
            tmp.path().join(format!("{RELAY_PREFIX}notapid")),
            tmp.path().join("other"),
        ];
        for dir in [&dead, &alive].into_iter().chain(&unrelated) {
            std::fs::create_dir(dir).unwrap();
            std::fs::write(dir.join("powernode"), "binary").unwrap();
        }
        remove_stale_relays(tmp.path());
        assert!(!dead.exists(), "a dead process's relay is removed");
        assert!(alive.exists(), "a live process's relay stays");
        assert!(unrelated.iter().all(|d| d.exists()));
    }
}
