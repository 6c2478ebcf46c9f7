//! The `run_command` step: runs a shell line in the workspace, like a CI `run:` step.
//!
//! The line runs as `sh -c <command>` through the host's `process` interface, so the
//! plugin needs the `process` grant (and `log`). Nothing is streamed while the command
//! runs: when it ends, its stdout is logged at info and its stderr at warn, line by line.

use std::collections::BTreeMap;

use powernode_sdk::{Context, Error, Info, Output, Step, log, process};
use serde::Deserialize;

/// The step's `config` block.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Shell line to run with `sh -c`.
    pub command: String,
    /// Directory relative to the workspace root.
    #[serde(default)]
    pub working_dir: Option<String>,
    /// The command's environment besides PATH and HOME.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Timeout in minutes, passed to the host as the process timeout.
    #[serde(default)]
    pub timeout_minutes: Option<f64>,
    /// Succeed whatever the exit status.
    #[serde(default)]
    pub allow_failure: bool,
}

struct RunCommand;

impl Step for RunCommand {
    type Config = Config;

    fn info() -> Info {
        Info::new(
            "run_command",
            env!("CARGO_PKG_VERSION"),
            "Runs a shell command (`sh -c`) in the workspace",
        )
    }

    fn run(ctx: Context<Config>) -> Result<Output, Error> {
        let cmd = build_command(&ctx.config)?;
        log::info(&format!("$ {}", ctx.config.command));
        let out = process::run(&cmd).map_err(|e| Error::failed(format!("could not run command: {e}")))?;

        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        for line in stdout.lines() {
            log::info(line);
        }
        for line in stderr.lines() {
            log::warn(line);
        }

        let exit_code = out.exit_code.map(|c| c.to_string()).unwrap_or_default();
        let failure = failure_message(out.exit_code, out.timed_out, ctx.config.timeout_minutes, &stderr);
        if let Some(message) = failure {
            if !ctx.config.allow_failure {
                return Err(Error::Failed(message));
            }
            log::warn(&format!("{} (allowed to fail, continuing)", first_line(&message)));
        }

        Ok(Output::new(stdout.clone())
            .with("exit_code", exit_code)
            .with("stdout", stdout)
            .with("stderr", stderr))
    }
}

powernode_sdk::step!(RunCommand);

/// Validates the config and turns it into the host's process command.
pub fn build_command(config: &Config) -> Result<process::Command, Error> {
    if config.command.trim().is_empty() {
        return Err(Error::config("`command` must not be empty"));
    }
    let cwd = match config.working_dir.as_deref() {
        None => None,
        Some(dir) => Some(check_working_dir(dir)?),
    };
    let timeout_ms = match config.timeout_minutes {
        None => None,
        Some(m) if m.is_finite() && m > 0.0 => Some((m * 60_000.0).ceil() as u64),
        Some(m) => {
            return Err(Error::config(format!(
                "`timeout_minutes` must be a positive number, got {m}"
            )));
        }
    };
    Ok(process::Command {
        program: "sh".into(),
        args: vec!["-c".into(), config.command.clone()],
        cwd,
        env: config.env.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        timeout_ms,
        stdin: None,
    })
}

/// A working directory must be relative and must not climb out with `..`; the host
/// checks again that it stays inside the workspace.
fn check_working_dir(dir: &str) -> Result<String, Error> {
    let trimmed = dir.trim();
    if trimmed.is_empty() || trimmed == "." {
        return Ok(".".into());
    }
    if trimmed.starts_with('/') || trimmed.starts_with('\\') {
        return Err(Error::config(format!(
            "`working_dir` must be relative to the workspace, got `{dir}`"
        )));
    }
    if trimmed.split(['/', '\\']).any(|part| part == "..") {
        return Err(Error::config(format!(
            "`working_dir` must not contain `..`, got `{dir}`"
        )));
    }
    Ok(trimmed.to_string())
}

/// Why the command counts as failed, or `None` when it exited 0.
pub fn failure_message(
    exit_code: Option<i32>,
    timed_out: bool,
    timeout_minutes: Option<f64>,
    stderr: &str,
) -> Option<String> {
    process::failure("command", exit_code, timed_out, timeout_minutes, stderr)
}

/// The last `n` non-empty lines of `stderr`, joined by newlines.
fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or("")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(json: &str) -> Result<Config, serde_json::Error> {
        serde_json::from_str(json)
    }

    #[test]
    fn minimal_config_runs_sh_c() {
        let cmd = build_command(&config(r#"{"command":"make test"}"#).unwrap()).unwrap();
        assert_eq!(cmd.program, "sh");
        assert_eq!(cmd.args, vec!["-c".to_string(), "make test".to_string()]);
        assert_eq!(cmd.cwd, None);
        assert_eq!(cmd.timeout_ms, None);
        assert!(cmd.env.is_empty());
    }

    #[test]
    fn full_config() {
        let c = config(
            r#"{"command":"ls","working_dir":"sub/dir","env":{"B":"2","A":"1"},
                "timeout_minutes":1.5,"allow_failure":true}"#,
        )
        .unwrap();
        assert!(c.allow_failure);
        let cmd = build_command(&c).unwrap();
        assert_eq!(cmd.cwd.as_deref(), Some("sub/dir"));
        assert_eq!(cmd.timeout_ms, Some(90_000));
        assert_eq!(cmd.env, vec![("A".into(), "1".into()), ("B".into(), "2".into())]);
    }

    #[test]
    fn unknown_field_is_named() {
        let e = config(r#"{"command":"ls","comand":"x"}"#).unwrap_err();
        assert!(e.to_string().contains("comand"), "{e}");
    }

    #[test]
    fn missing_command_is_an_error() {
        assert!(config("{}").unwrap_err().to_string().contains("command"));
        assert!(build_command(&config(r#"{"command":"  "}"#).unwrap()).is_err());
    }

    #[test]
    fn working_dir_must_stay_inside() {
        for bad in ["/etc", "../x", "a/../../b", "\\\\server\\x"] {
            let c = Config {
                command: "ls".into(),
                working_dir: Some(bad.into()),
                env: BTreeMap::new(),
                timeout_minutes: None,
                allow_failure: false,
            };
            assert!(matches!(build_command(&c), Err(Error::InvalidConfig(_))), "{bad}");
        }
    }

    #[test]
    fn bad_timeout_is_a_config_error() {
        let c = config(r#"{"command":"ls","timeout_minutes":-1}"#).unwrap();
        assert!(matches!(build_command(&c), Err(Error::InvalidConfig(_))));
    }

    #[test]
    fn failure_messages() {
        assert_eq!(failure_message(Some(0), false, None, "noise"), None);
        let m = failure_message(Some(2), false, None, "a\nb\n").unwrap();
        assert!(m.starts_with("command exited with code 2"), "{m}");
        assert!(m.ends_with("a\nb"), "{m}");
        let m = failure_message(None, true, Some(5.0), "").unwrap();
        assert_eq!(m, "command timed out after 5 minutes");
        let m = failure_message(None, false, None, "").unwrap();
        assert_eq!(m, "command was killed by a signal");
        let many: String = (0..30).map(|i| format!("line{i}\n")).collect();
        let m = failure_message(Some(1), false, None, &many).unwrap();
        assert!(!m.contains("line19\n") && m.contains("line20") && m.ends_with("line29"));
    }

    #[test]
    fn schema_is_json() {
        let v = serde_json::to_value(schemars::schema_for!(Config)).unwrap();
        assert_eq!(v["required"][0], "command");
    }

    /// The step against the SDK's fake host, with scripted process answers.
    mod with_fake_host {
        use powernode_sdk::log::Level;
        use powernode_sdk::process::Output;
        use powernode_sdk::testing::FakeHost;
        use serde_json::json;

        use super::super::RunCommand;

        fn exited(code: i32, stdout: &str, stderr: &str) -> Output {
            Output {
                exit_code: Some(code),
                stdout: stdout.into(),
                stderr: stderr.into(),
                timed_out: false,
            }
        }

        #[test]
        fn stdout_is_logged_and_output_and_the_command_is_sh_c() {
            let mut host = FakeHost::new();
            host.on_process_run(|cmd| {
                assert_eq!(
                    (cmd.program.as_str(), cmd.args.as_slice()),
                    ("sh", &["-c".to_string(), "make".to_string()][..])
                );
                Ok(exited(0, "built\n", ""))
            });
            let run = host.run::<RunCommand>(json!({"command": "make"}));
            assert_eq!(run.output().raw_output, "built\n");
            assert_eq!(run.named("exit_code"), Some("0"));
            assert!(
                run.logs.iter().any(|l| l.level == Level::Info && l.message == "built"),
                "{}",
                run.log_text()
            );
            assert_eq!(run.calls_to("process::run").len(), 1);
        }

        #[test]
        fn a_nonzero_exit_fails_with_the_stderr_tail() {
            let mut host = FakeHost::new();
            host.on_process_run(|_| Ok(exited(2, "", "no rule to make target\n")));
            let run = host.run::<RunCommand>(json!({"command": "make"}));
            let powernode_sdk::Error::Failed(message) = run.error() else {
                panic!("{:?}", run.result)
            };
            assert!(message.starts_with("command exited with code 2"), "{message}");
            assert!(message.contains("no rule to make target"), "{message}");
            assert!(
                run.logs
                    .iter()
                    .any(|l| l.level == Level::Warn && l.message.contains("no rule"))
            );
        }

        #[test]
        fn a_command_the_host_cannot_start_is_a_failed_step() {
            let mut host = FakeHost::new();
            host.on_process_run(|_| Err("the process sandbox is unavailable".into()));
            let run = host.run::<RunCommand>(json!({"command": "make"}));
            assert!(
                matches!(run.error(), powernode_sdk::Error::Failed(m) if m == "could not run command: the process sandbox is unavailable")
            );
        }

        #[test]
        #[should_panic(expected = "call `FakeHost::on_process_run` before `run`")]
        fn an_unscripted_call_names_the_method_to_script_it() {
            FakeHost::new().run::<RunCommand>(json!({"command": "make"}));
        }
    }
}
