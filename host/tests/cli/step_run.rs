//! `powernode step run`: one step alone, from a step type or a component file, with a config
//! and an event given on the command line; exit code by outcome; nothing left behind.

use std::path::Path;

use super::common::python_step;
use super::{powernode, text};

/// What the current directory holds after a command: `step run` must leave it empty.
pub(super) fn entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn step_run_prints_log_and_outputs_and_exits_by_outcome_leaving_no_data_dir() {
    let dir = tempfile::tempdir().unwrap();
    let out = powernode(
        &[
            "step",
            "run",
            "run_command",
            "--config",
            r#"{"command": "echo hi from the step"}"#,
        ],
        dir.path(),
    );
    let ok = text(&out);
    assert_eq!(out.status.code(), Some(0), "{ok}");
    for expected in [
        "step `run_command`",
        "  │ hi from the step",
        "✔ run_command succeeded",
        "→ run_command.exit_code = 0",
    ] {
        assert!(ok.contains(expected), "missing `{expected}` in:\n{ok}");
    }
    let out = powernode(
        &["step", "run", "run_command", "--config", r#"{"command": "exit 3"}"#],
        dir.path(),
    );
    let failed = text(&out);
    assert_eq!(out.status.code(), Some(1), "{failed}");
    assert!(failed.contains("✘ run_command failed after"), "{failed}");
    assert!(failed.contains("command exited with code 3"), "{failed}");
    assert_eq!(
        entries(dir.path()),
        Vec::<String>::new(),
        "step run wrote into the current directory"
    );
}

#[test]
fn step_run_refuses_bad_input_with_exit_2_saying_what_to_fix() {
    let dir = tempfile::tempdir().unwrap();
    let cases: [(&[&str], &str); 5] = [
        (
            &["--config", r#"{"comand": "true"}"#],
            "config: missing field `command`",
        ),
        (&["--config", "command: true"], "--config is not JSON"),
        (&["--config", "[1]"], "must be a JSON object"),
        (&["--config", "@missing.json"], "cannot read `missing.json`"),
        (
            &["--config", r#"{"command": "true"}"#, "--event", "missing-event.json"],
            "cannot read `missing-event.json`",
        ),
    ];
    for (args, expected) in cases {
        let mut full = vec!["step", "run", "run_command"];
        full.extend_from_slice(args);
        let out = powernode(&full, dir.path());
        let said = text(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {said}");
        assert!(said.contains(expected), "{args:?}: missing `{expected}` in:\n{said}");
    }
    let out = powernode(&["step", "run", "no_such_step"], dir.path());
    let unknown = text(&out);
    assert_eq!(out.status.code(), Some(2), "{unknown}");
    assert!(unknown.contains("unknown step type `no_such_step`"), "{unknown}");
    let out = powernode(&["step", "run", "build/missing.wasm"], dir.path());
    let missing = text(&out);
    assert_eq!(out.status.code(), Some(2), "{missing}");
    assert!(missing.contains("no component file `build/missing.wasm`"), "{missing}");
    assert_eq!(entries(dir.path()), Vec::<String>::new());
}

#[test]
fn step_run_takes_the_event_from_a_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("event.json"),
        r#"{"event": "pull_request", "number": 42, "base_branch": "main", "title": "Add feature"}"#,
    )
    .unwrap();
    let config = r#"{"command": "echo \"PR #${number} into ${base_branch}: {{ title }}\""}"#;
    let out = powernode(
        &[
            "step",
            "run",
            "run_command",
            "--config",
            config,
            "--event",
            "event.json",
        ],
        dir.path(),
    );
    let said = text(&out);
    assert!(out.status.success(), "{said}");
    assert!(said.contains("PR #42 into main: Add feature"), "{said}");
}

#[test]
fn step_run_runs_a_component_file_checked_as_if_installed() {
    let build = tempfile::tempdir().unwrap();
    let wasm = python_step(build.path(), "hello_python");
    let dir = tempfile::tempdir().unwrap();
    let file = wasm.to_str().unwrap();
    let out = powernode(&["step", "run", file, "--config", r#"{"name": "Grace"}"#], dir.path());
    let ran = text(&out);
    assert_eq!(out.status.code(), Some(0), "{ran}");
    assert!(ran.contains("python step hello_python greeting Grace"), "{ran}");
    assert!(ran.contains("= hello from python, Grace"), "{ran}");
    assert!(ran.contains("→ hello_python.name = Grace"), "{ran}");
    // The step's own config check: exit 2, its message.
    let out = powernode(&["step", "run", file, "--config", r#"{"name": ""}"#], dir.path());
    let refused = text(&out);
    assert_eq!(out.status.code(), Some(2), "{refused}");
    assert!(refused.contains("`name` must be a non-empty string"), "{refused}");
    // Under another name it would not load once installed, so it does not run.
    let renamed = build.path().join("greeter.wasm");
    std::fs::rename(&wasm, &renamed).unwrap();
    let out = powernode(&["step", "run", renamed.to_str().unwrap()], dir.path());
    let mismatch = text(&out);
    assert_eq!(out.status.code(), Some(2), "{mismatch}");
    assert!(
        mismatch.contains("rename the file to `hello_python.wasm`"),
        "{mismatch}"
    );
    assert_eq!(entries(dir.path()), Vec::<String>::new());
}

#[test]
fn the_first_compile_of_a_plugin_is_logged_at_info_with_its_duration() {
    let dir = tempfile::tempdir().unwrap();
    let out = super::output(
        std::process::Command::new(env!("CARGO_BIN_EXE_powernode"))
            .args(["step", "run", "run_command", "--config", r#"{"command": "true"}"#])
            .current_dir(dir.path())
            .env("POWERNODE_LOG", "info"),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let starts = stderr
        .find("compiling plugin built-in run_command (first use; may take ~30 s, cached after)")
        .unwrap_or_else(|| panic!("no start line in:\n{stderr}"));
    let ends = stderr
        .find("compiled plugin built-in run_command in ")
        .unwrap_or_else(|| panic!("no end line in:\n{stderr}"));
    assert!(starts < ends, "{stderr}");
}
