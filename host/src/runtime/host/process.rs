//! `powernode:step/process` → a program run in the workspace, confined by the host's sandbox
//! with the plugin's granted network, cut off at the step deadline.

use std::time::{Duration, Instant};

use crate::exec::{self, ExecRequest};
use crate::policy::Capability;
use crate::runtime::bindings::powernode::step::process::{Command, Host, Output};
use crate::runtime::state::StepState;
use crate::workspace;

/// Bytes of each of stdout and stderr handed back to the plugin.
const MAX_OUTPUT: usize = 16 << 20;

impl Host for StepState {
    async fn run(&mut self, cmd: Command) -> wasmtime::Result<Result<Output, String>> {
        self.require(Capability::Process)?;
        let cwd = match workspace::resolve(&self.scope.workspace, cmd.cwd.as_deref().unwrap_or(".")) {
            Ok(dir) if dir.is_dir() => dir,
            Ok(dir) => return Ok(Err(format!("working directory `{}` is not a directory", dir.display()))),
            Err(e) => return Ok(Err(e.to_string())),
        };
        let left = self.scope.deadline.saturating_duration_since(Instant::now());
        let timeout = cmd.timeout_ms.map_or(left, |ms| Duration::from_millis(ms).min(left));
        let request = ExecRequest {
            program: cmd.program.clone(),
            args: cmd.args,
            cwd,
            env: cmd.env.into_iter().map(|(k, v)| (k, v.into())).collect(),
            timeout,
            stdin: cmd.stdin,
            max_output: MAX_OUTPUT,
        };
        let sandbox = self.services.sandbox.clone();
        if !sandbox.is_confined() {
            let _ = self.log.line(
                crate::runtime::Level::Warn,
                crate::runtime::Stream::Log,
                "commands run unconfined: the server's config sets process_sandbox = \"off\"",
            );
        }
        let (command, _proxy) = match sandbox
            .command(&request, &self.scope.workspace, self.grant.network)
            .await
        {
            Ok(c) => c,
            Err(e) => return Ok(Err(format!("cannot start `{}`: {e}", cmd.program))),
        };
        Ok(match exec::run_command(command, request).await {
            Ok(out) => Ok(Output {
                exit_code: out.exit_code,
                stdout: out.stdout,
                stderr: out.stderr,
                timed_out: out.timed_out,
            }),
            Err(e) => Err(format!("cannot start `{}`: {e}", cmd.program)),
        })
    }
}
