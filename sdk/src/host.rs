//! Plain functions over the host interfaces. Calling one makes the component import it,
//! so the operator must grant it (see `powernode plugin inspect`).

/// Lines into the step log; the host masks secrets and bounds the log.
pub mod log {
    use crate::wit::powernode::step::log::{Level, log};

    /// Logs at debug level.
    pub fn debug(message: &str) {
        log(Level::Debug, message)
    }
    /// Logs at info level.
    pub fn info(message: &str) {
        log(Level::Info, message)
    }
    /// Logs at warn level.
    pub fn warn(message: &str) {
        log(Level::Warn, message)
    }
    /// Logs at error level.
    pub fn error(message: &str) {
        log(Level::Error, message)
    }
}

/// Running programs in the workspace (grant `process`).
pub mod process {
    pub use crate::wit::powernode::step::process::{Command, Output};

    /// Runs `cmd` and waits for it; `Err` when it could not be started at all.
    pub fn run(cmd: &Command) -> Result<Output, String> {
        crate::wit::powernode::step::process::run(cmd)
    }

    /// Why a command named `what` (e.g. `"command"`) counts as failed, or `None` when it
    /// exited 0: its exit code, the timeout or the signal, then its last 10 non-empty stderr lines.
    pub fn failure(
        what: &str,
        exit_code: Option<i32>,
        timed_out: bool,
        timeout_minutes: Option<f64>,
        stderr: &str,
    ) -> Option<String> {
        let mut message = match (exit_code, timed_out) {
            (_, true) => match timeout_minutes {
                Some(m) => format!("{what} timed out after {m} minutes"),
                None => format!("{what} timed out"),
            },
            (Some(0), false) => return None,
            (Some(code), false) => format!("{what} exited with code {code}"),
            (None, false) => format!("{what} was killed by a signal"),
        };
        let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
        let tail = &lines[lines.len().saturating_sub(10)..];
        if !tail.is_empty() {
            message.push_str("\nstderr (last lines):\n");
            message.push_str(&tail.join("\n"));
        }
        Some(message)
    }

    /// A command running `program` with `args`, in the workspace root, with no environment.
    pub fn command(program: &str, args: &[&str]) -> Command {
        Command {
            program: program.into(),
            args: args.iter().map(|a| a.to_string()).collect(),
            cwd: None,
            env: Vec::new(),
            timeout_ms: None,
            stdin: None,
        }
    }
}

/// Run artifacts (grant `artifacts`).
pub mod artifacts {
    pub use crate::wit::powernode::step::artifacts::{Artifact, store};
}

/// Key-value store scoped to (plugin, repository) (grant `kv`).
pub mod kv {
    pub use crate::wit::powernode::step::kv::{delete, get, set};
}

/// Stored prompt templates (grant `templates`).
pub mod templates {
    pub use crate::wit::powernode::step::templates::{get, render};
}

/// Forge operations on the run's repository (grant `provider`).
pub mod provider {
    pub use crate::wit::powernode::step::provider::*;
}

/// Git clone and push in the workspace (grant `git`).
pub mod git {
    pub use crate::wit::powernode::step::git::*;
}
