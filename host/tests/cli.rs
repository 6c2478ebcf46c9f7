//! The `powernode` binary as users run it: exit codes and what it prints.

mod common;
#[path = "cli/inspect.rs"]
mod inspect;
#[path = "cli/plugin_kit.rs"]
mod plugin_kit;
#[path = "cli/step_run.rs"]
mod step_run;

use std::io::Read;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

/// Longest a `powernode` command may take, compiling the built-in plugins included.
const DEADLINE: Duration = Duration::from_secs(180);

fn powernode(args: &[&str], dir: &Path) -> Output {
    output(
        Command::new(env!("CARGO_BIN_EXE_powernode"))
            .args(args)
            .current_dir(dir)
            .env_remove("POWERNODE_LOG"),
    )
}

/// [`Command::output`], failing the test if the command is not done within [`DEADLINE`].
fn output(cmd: &mut Command) -> Output {
    let what = format!(
        "`powernode {}` to finish",
        cmd.get_args()
            .map(|a| a.to_string_lossy())
            .collect::<Vec<_>>()
            .join(" ")
    );
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run powernode");
    // Read both pipes while waiting, so a chatty child never blocks on a full pipe.
    let drain = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            pipe.read_to_end(&mut bytes).map(|_| bytes)
        })
    };
    let stdout = drain(Box::new(child.stdout.take().expect("piped")));
    let stderr = drain(Box::new(child.stderr.take().expect("piped")));
    let status = common::wait_child(&mut child, DEADLINE, &what);
    Output {
        status,
        stdout: stdout.join().unwrap().unwrap(),
        stderr: stderr.join().unwrap().unwrap(),
    }
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn run_example_pipeline_succeeds_and_prints_each_step() {
    let dir = tempfile::tempdir().unwrap();
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/build-and-report.yml");
    let out = powernode(&["run", example.to_str().unwrap()], dir.path());
    let text = text(&out);
    assert!(out.status.success(), "{text}");
    for expected in [
        "▶ build (run_command)",
        "built Build and report for manual",
        "✔ keep_report succeeded",
        "→ keep_report.count = 1",
        "succeeded: 3 of 3 steps",
    ] {
        assert!(text.contains(expected), "missing `{expected}` in:\n{text}");
    }
}

#[test]
fn failed_step_fails_the_run_with_a_non_zero_exit() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("p.yml"),
        "name: fails\nsteps:\n  - name: one\n    type: run_command\n    config:\n      command: echo about to fail; exit 4\n  - name: two\n    type: run_command\n    config:\n      command: echo never\n",
    )
    .unwrap();
    let out = powernode(&["run", "p.yml"], dir.path());
    let text = text(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("✘ one failed after"), "{text}");
    assert!(text.contains("command exited with code 4"), "{text}");
    assert!(text.contains("failed at step `one` (1 of 2 steps ran)"), "{text}");
    assert!(!text.contains("never"), "{text}");
}

#[test]
fn secrets_are_masked_in_the_output() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("powernode.toml"),
        "[secrets]\nDEPLOY_TOKEN = \"${PN_TEST_TOKEN}\"\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("p.yml"),
        "name: secret\nsteps:\n  - name: leak\n    type: run_command\n    config:\n      command: echo token is ${DEPLOY_TOKEN}\n",
    )
    .unwrap();
    let out = output(
        Command::new(env!("CARGO_BIN_EXE_powernode"))
            .args(["run", "p.yml", "--config", "powernode.toml"])
            .current_dir(dir.path())
            .env("PN_TEST_TOKEN", "tok-3f9a-very-secret"),
    );
    let text = text(&out);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("token is ***"), "{text}");
    assert!(!text.contains("tok-3f9a-very-secret"), "{text}");
}

#[test]
fn validate_reports_file_line_and_field() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("bad.yml"),
        "name: bad\nsteps:\n  - name: one\n    type: run_comand\n    config:\n      command: true\n",
    )
    .unwrap();
    let out = powernode(&["validate", "bad.yml"], dir.path());
    let text = text(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("bad.yml:4:11: steps[0].type: unknown step type `run_comand`"),
        "{text}"
    );
}

#[test]
fn validate_checks_step_configs_against_the_plugins_schemas() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("review.yml"),
        "name: review\nsteps:\n  - name: checkout\n    type: checkout\n    config:\n      fetch_dpeth: 50\n  - type: deploy\n    config:\n      strategy: webhook\n      webhook_url: https://deploy.example.com/trigger\n      environment: staging\n      health_check_retries: \"{{ number }}\"\n      smoke_tests:\n        - url: https://staging.example.com/\n          expect_stauts: 200\n  - type: post_comment\n    config:\n      body_from: checkout.raw_output\n",
    )
    .unwrap();
    let out = powernode(&["validate", "review.yml"], dir.path());
    let text = text(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("review.yml:6:20: steps[0].config.fetch_dpeth: unknown field `fetch_dpeth` (known: fetch_depth, path, ref); did you mean `fetch_depth`?"),
        "{text}"
    );
    assert!(
        text.contains("review.yml:15:26: steps[1].config.smoke_tests[0].expect_stauts: unknown field `expect_stauts`"),
        "{text}"
    );
    // A template in a number field and `body_from` for a required `body` are only known at run time.
    assert!(
        !text.contains("health_check_retries") && !text.contains("steps[2]"),
        "{text}"
    );
}

#[test]
fn event_file_feeds_the_templates() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("event.json"),
        r#"{"event": "pull_request", "action": "opened", "number": 42, "base_branch": "main", "title": "Add feature"}"#,
    )
    .unwrap();
    std::fs::write(
        dir.path().join("p.yml"),
        "name: pr\ntriggers:\n  - type: pull_request\n    events: [opened]\nsteps:\n  - name: say\n    type: run_command\n    config:\n      command: 'echo \"PR #${number} into ${base_branch}: {{ title }}\"'\n",
    )
    .unwrap();
    let out = powernode(&["run", "p.yml", "--event", "event.json"], dir.path());
    let text = text(&out);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("PR #42 into main: Add feature"), "{text}");
}

#[test]
fn source_needs_the_events_repository_and_a_known_id() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("powernode.toml"),
        "[[sources]]\nid = \"gh\"\nkind = \"github\"\napi_url = \"http://127.0.0.1:9\"\ntoken = \"t0k3n-cli-test\"\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("p.yml"),
        "name: p\nsteps:\n  - name: one\n    type: run_command\n    config:\n      command: 'true'\n",
    )
    .unwrap();
    let out = powernode(
        &["run", "p.yml", "--config", "powernode.toml", "--source", "gh"],
        dir.path(),
    );
    let first = text(&out);
    assert_eq!(out.status.code(), Some(2), "{first}");
    assert!(first.contains("--source gh acts on the event's repository"), "{first}");
    let out = powernode(
        &["run", "p.yml", "--config", "powernode.toml", "--source", "gl"],
        dir.path(),
    );
    let second = text(&out);
    assert!(
        second.contains("config: source `gl`: no such source; configured: gh"),
        "{second}"
    );
    assert!(!second.contains("t0k3n-cli-test"), "{second}");
}

#[test]
fn a_workspace_holding_the_plugins_or_data_directory_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("p.yml"),
        "name: p\nsteps:\n  - name: one\n    type: run_command\n    config:\n      command: touch ran\n",
    )
    .unwrap();
    // With no config, data_dir and plugins_dir default to folders of the current directory.
    let out = powernode(&["run", "p.yml", "--workspace", "."], dir.path());
    let refused = text(&out);
    assert_eq!(out.status.code(), Some(2), "{refused}");
    assert!(refused.contains("contains the data directory"), "{refused}");
    assert!(!dir.path().join("ran").exists(), "a step ran in the refused workspace");
    let inside = dir.path().join("plugins/sub");
    let out = powernode(&["run", "p.yml", "--workspace", inside.to_str().unwrap()], dir.path());
    let nested = text(&out);
    assert!(nested.contains("is inside the plugins directory"), "{nested}");
}

#[test]
fn log_format_json_writes_one_json_object_per_line_with_its_span() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("powernode.toml"), "log_format = \"json\"\n").unwrap();
    std::fs::write(
        dir.path().join("p.yml"),
        "name: p\nsteps:\n  - name: one\n    type: run_command\n    config:\n      command: echo hi\n",
    )
    .unwrap();
    let out = output(
        Command::new(env!("CARGO_BIN_EXE_powernode"))
            .args(["run", "p.yml", "--config", "powernode.toml"])
            .current_dir(dir.path())
            .env("POWERNODE_LOG", "debug"),
    );
    assert!(out.status.success(), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<serde_json::Value> = stderr
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    assert!(!lines.is_empty(), "debug logging wrote nothing");
    assert!(
        lines.iter().any(|l| l["span"]["step"] == "one"),
        "no line carries the step's span: {stderr}"
    );
}

#[test]
fn plugin_list_says_why_a_plugin_file_is_not_trusted() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("plugins")).unwrap();
    // Trust is checked before anything is compiled, so these need not even be components.
    std::fs::write(dir.path().join("plugins/update_status.wasm"), b"posing as a built-in").unwrap();
    std::fs::write(dir.path().join("plugins/hello.wasm"), b"not the pinned file").unwrap();
    let pinned = "0".repeat(64);
    std::fs::write(
        dir.path().join("powernode.toml"),
        format!("[plugins.pins]\nhello = \"sha256:{pinned}\"\n"),
    )
    .unwrap();
    let out = powernode(&["plugin", "list", "--config", "powernode.toml"], dir.path());
    let listed = text(&out);
    assert_eq!(out.status.code(), Some(1), "{listed}");
    assert!(
        listed.contains("update_status        REFUSED  plugin `update_status`: `")
            && listed.contains("would replace the built-in step `update_status`, and the config does not approve that"),
        "{listed}"
    );
    assert!(
        listed.contains("hello                REFUSED  plugin `hello`:")
            && listed.contains(&format!("sha256:{pinned}"))
            && listed.contains("does not match its pin"),
        "{listed}"
    );
    assert!(
        listed.contains("run_command "),
        "the built-ins are still listed: {listed}"
    );
}
