//! Behaviour of [`parse`]: the model it builds, the positions it records and
//! the structural problems it reports.

use serde_json::json;

use super::*;

fn errors(text: &str) -> String {
    parse("p.yml", text).unwrap_err().to_string()
}

#[test]
fn parses_triggers_steps_and_typed_config() {
    let text = r#"name: Build
description: Builds things
triggers:
  - type: push
    branches: [main, "release/*"]
  - type: pull_request
    events: [opened]
    paths: "src/**"
steps:
  - name: build
    type: run_command
    timeout_minutes: 0.5
    config:
      command: cargo build
      retries: 3
      ratio: 1.5
      verbose: true
      quoted: "50"
      nothing: ~
      env: {RUST_LOG: debug}
      args: [--release, 2]
"#;
    let p = parse("build.yml", text).unwrap();
    assert_eq!(p.name, "Build");
    assert_eq!(p.description.as_deref(), Some("Builds things"));
    assert_eq!(p.file, "build.yml");
    assert_eq!(p.triggers[0].trigger_kind(), Some(TriggerKind::Push));
    assert_eq!(p.triggers[0].branches, ["main", "release/*"]);
    assert_eq!(p.triggers[1].events, ["opened"]);
    assert_eq!(p.triggers[1].paths, ["src/**"], "a single glob is a one-item list");
    let step = &p.steps[0];
    assert_eq!((step.name.as_str(), step.step_type.as_str()), ("build", "run_command"));
    assert_eq!(step.line, 10);
    assert_eq!(step.timeout_minutes, Some(0.5));
    assert_eq!(
        step.config,
        json!({
            "command": "cargo build", "retries": 3, "ratio": 1.5, "verbose": true,
            "quoted": "50", "nothing": null, "env": {"RUST_LOG": "debug"}, "args": ["--release", 2],
        })
    );
}

#[test]
fn positions_point_at_values_and_steps() {
    let text = "name: x\nsteps:\n  - name: a\n    type: run_command\n    config:\n      command: |\n        echo hi\n";
    let p = parse("p.yml", text).unwrap();
    assert_eq!(p.spans.at("steps[0]"), Pos { line: 3, column: 5 });
    assert_eq!(p.spans.at("steps[0].type"), Pos { line: 4, column: 11 });
    assert_eq!(p.spans.at("steps[0].config.command"), Pos { line: 7, column: 9 });
    assert_eq!(
        p.spans.at("steps[0].timeout_minutes"),
        Pos { line: 3, column: 5 },
        "absent: the step"
    );
    assert_eq!(p.steps[0].config, json!({"command": "echo hi\n"}));
}

#[test]
fn unknown_step_key_names_key_position_and_allowed_keys() {
    let text = "name: x\nsteps:\n  - name: a\n    tpye: checkout\n";
    assert_eq!(
        errors(text),
        "p.yml:4:5: steps[0].tpye: unknown field `tpye`, expected one of: \
         name, type, config, timeout_minutes, if, continue_on_error; did you mean `type`?"
    );
}

#[test]
fn unknown_keys_at_every_level_are_all_reported_but_config_is_free() {
    let text = "name: x\non: push\ntriggers:\n  - type: push\n    branch: main\nsteps:\n  - name: a\n    type: b\n    config:\n      anything: goes\n";
    assert_eq!(
        errors(text),
        "p.yml:2:1: on: unknown field `on`, expected one of: name, description, triggers, steps, timeout_minutes, concurrency, report_status, secrets_for_forks, approval\n\
         p.yml:5:5: triggers[0].branch: unknown field `branch`, expected one of: \
         type, events, branches, paths; did you mean `branches`?"
    );
}

#[test]
fn yaml_syntax_errors_carry_their_position() {
    let text = "name: x\nsteps:\n  - name: a\n     type: b\n";
    assert_eq!(
        errors(text),
        "p.yml:4:10: invalid YAML: mapping values are not allowed in this context"
    );
    assert_eq!(
        errors("name: x\nsteps:\n\t- name: a\n"),
        "p.yml:3:2: invalid YAML: tabs disallowed within this context (block indentation)"
    );
}

#[test]
fn file_level_shape_errors() {
    assert_eq!(
        errors("- a\n"),
        "p.yml:1:1: a pipeline file must be a YAML mapping (name:, triggers:, steps:)"
    );
    assert_eq!(
        errors("name: x\nname: y\n"),
        "p.yml:2:1: duplicate key `name` (first set at line 1)"
    );
    assert_eq!(
        errors("name: &a x\n"),
        "p.yml:1:10: YAML anchors and aliases are not supported"
    );
    assert_eq!(
        errors("---\nname: a\n---\nname: b\n"),
        "p.yml:3:1: a pipeline file holds one YAML document; this `---` starts another"
    );
}

#[test]
fn wrong_shapes_name_the_field_and_what_was_found() {
    let text = "name: [x]\nsteps:\n  - checkout\n  - name: a\n    config: [a]\n    timeout_minutes: soon\n";
    assert_eq!(
        errors(text),
        "p.yml:1:7: name: expected a string, found a list\n\
         p.yml:3:5: steps[0]: expected a step (a mapping), found a string\n\
         p.yml:5:13: steps[1].config: expected a mapping, found a list\n\
         p.yml:6:22: steps[1].timeout_minutes: expected a number of minutes, found `soon`"
    );
    assert_eq!(
        errors("name: x\nsteps: checkout\n"),
        "p.yml:2:8: steps: expected a list, found a string"
    );
}

#[test]
fn timeout_in_config_is_lifted_out_of_it() {
    let text = "name: x\nsteps:\n  - name: a\n    type: b\n    config:\n      timeout_minutes: 5\n      command: ls\n";
    let p = parse("p.yml", text).unwrap();
    assert_eq!(p.steps[0].timeout_minutes, Some(5.0));
    assert_eq!(p.steps[0].config, json!({"command": "ls"}));
    assert_eq!(p.spans.at("steps[0].timeout_minutes"), Pos { line: 6, column: 24 });
}

#[test]
fn timeout_both_on_step_and_in_config_is_an_error() {
    let text = "name: x\nsteps:\n  - name: a\n    timeout_minutes: 1\n    config:\n      timeout_minutes: 5\n";
    assert_eq!(
        errors(text),
        "p.yml:6:24: steps[0].config.timeout_minutes: timeout_minutes is set both on the step \
         and in its config; keep one"
    );
}

#[test]
fn empty_values_mean_absent() {
    let p = parse(
        "p.yml",
        "name: x\ndescription:\ntriggers:\nsteps:\n  - name: a\n    config:\n",
    )
    .unwrap();
    assert_eq!(p.description, None);
    assert!(p.triggers.is_empty());
    assert_eq!(p.steps[0].config, json!({}));
    assert_eq!(
        p.spans.at("description"),
        Pos { line: 2, column: 1 },
        "empty value: its key"
    );
    let empty = parse("p.yml", "").unwrap();
    assert_eq!((empty.name.as_str(), empty.steps.len()), ("", 0));
}

#[test]
fn run_controls_parse_with_their_defaults() {
    let text = "name: p\ntimeout_minutes: 30\nconcurrency:\n  group: deploy-{{ branch }}\n  cancel_in_progress: true\nreport_status: false\nsecrets_for_forks: true\napproval: forks\nsteps:\n  - name: a\n    type: run_command\n    if: \"{{ event == 'push' }}\"\n    continue_on_error: true\n  - name: b\n    type: run_command\n";
    let p = parse("p.yml", text).unwrap();
    assert_eq!(p.timeout_minutes, Some(30.0));
    assert_eq!(
        p.concurrency,
        Some(Concurrency {
            group: "deploy-{{ branch }}".into(),
            cancel_in_progress: true
        })
    );
    assert!(!p.report_status && p.secrets_for_forks);
    assert_eq!(p.approval, Approval::Forks);
    assert_eq!(p.steps[0].condition.as_deref(), Some("{{ event == 'push' }}"));
    assert!(p.steps[0].continue_on_error);
    assert_eq!(
        (p.steps[1].condition.as_ref(), p.steps[1].continue_on_error),
        (None, false)
    );
    let defaults = parse("p.yml", "name: p\nsteps:\n  - name: a\n    type: run_command\n").unwrap();
    assert!(defaults.report_status && !defaults.secrets_for_forks && defaults.concurrency.is_none());
    assert_eq!(defaults.approval, Approval::None);
}

#[test]
fn run_controls_of_the_wrong_shape_are_positioned_errors() {
    let text = "name: p\nreport_status: yes\napproval: fork\nconcurrency:\n  cancel_in_progress: maybe\nsteps:\n  - name: a\n    type: run_command\n    continue_on_error: 1\n";
    assert_eq!(
        errors(text),
        "p.yml:2:16: report_status: expected true or false, found `yes`\n\
         p.yml:3:11: approval: unknown value `fork`: expected one of none, forks, always (`forks` holds pull requests from forks until approved)\n\
         p.yml:5:3: concurrency.group: missing `group`, e.g. `deploy-{{ branch }}`\n\
         p.yml:5:23: concurrency.cancel_in_progress: expected true or false, found `maybe`\n\
         p.yml:9:24: steps[0].continue_on_error: expected true or false, found `1`"
    );
}

#[test]
fn a_step_without_a_name_is_named_by_its_type() {
    let text = "name: p\nsteps:\n  - type: claude_execute\n  - type: post_comment\n    config:\n      body_from: claude_execute.raw_output\n";
    let p = parse("p.yml", text).unwrap();
    let names: Vec<&str> = p.steps.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["claude_execute", "post_comment"]);
}
