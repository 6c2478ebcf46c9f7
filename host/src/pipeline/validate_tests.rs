//! Behaviour of [`Validator`]: every semantic problem is reported, with the
//! position and field path of the value at fault.

use super::*;

const TYPES: &[&str] = &["checkout", "run_command", "claude_execute", "post_comment", "deploy"];

fn known(step_type: &str) -> bool {
    TYPES.contains(&step_type)
}

/// Validation problems of `text`, one per line (parse must succeed).
fn problems(text: &str) -> String {
    let pipeline = parse("p.yml", text).expect("parses");
    match pipeline.validate(&Validator::new(&known, TYPES)) {
        Ok(()) => String::new(),
        Err(d) => d.to_string(),
    }
}

/// A pipeline named `t` with the given step lines after `steps:`.
fn with_steps(steps: &str) -> String {
    format!("name: t\nsteps:\n{steps}")
}

#[test]
fn unknown_step_type_names_line_and_known_types() {
    let text = with_steps("  - name: a\n    type: chekout\n");
    assert_eq!(
        problems(&text),
        "p.yml:4:11: steps[0].type: unknown step type `chekout` (known: checkout, run_command, \
         claude_execute, post_comment, deploy); did you mean `checkout`?"
    );
}

#[test]
fn missing_names_types_and_steps_are_reported() {
    assert_eq!(
        problems("description: nothing here\n"),
        "p.yml:1:1: name: missing pipeline name\np.yml:1:1: steps: pipeline has no steps"
    );
    assert_eq!(
        problems(&with_steps("  - config: {}\n")),
        "p.yml:3:5: steps[0].name: missing step name\n\
         p.yml:3:5: steps[0].type: missing step type (known: checkout, run_command, \
         claude_execute, post_comment, deploy)"
    );
}

#[test]
fn step_names_must_be_unique_identifiers() {
    let text = with_steps(
        "  - name: Get Diff\n    type: checkout\n  - name: a\n    type: checkout\n  - name: a\n    type: checkout\n  - name: title\n    type: checkout\n  - name: loop\n    type: checkout\n",
    );
    assert_eq!(
        problems(&text),
        "p.yml:3:11: steps[0].name: step name `Get Diff` must be lowercase letters, digits and `_`, not starting with a digit\n\
         p.yml:7:11: steps[2].name: duplicate step name `a` (first used at line 5); a step without `name:` is named by its type, so give one of them a `name:`\n\
         p.yml:9:11: steps[3].name: step name `title` is taken by the trigger variable `title`\n\
         p.yml:11:11: steps[4].name: step name `loop` is reserved in templates"
    );
}

#[test]
fn unknown_trigger_type_and_events_point_at_the_value() {
    let text = "name: t\ntriggers:\n  - type: pul_request\n  - type: pull_request\n    events: [opened, open]\n  - type: push\n    events: [created]\n  - type: issue_comment\n    events: created\n    branches: [\"release/[\"]\nsteps:\n  - name: a\n    type: checkout\n";
    assert_eq!(
        problems(text),
        "p.yml:3:11: triggers[0].type: unknown trigger type `pul_request` (one of: push, tag, pull_request, issue_comment, manual); did you mean `pull_request`?\n\
         p.yml:5:22: triggers[1].events[1]: unknown pull_request event `open` (one of: opened, synchronize, reopened, closed, merged, edited); did you mean `opened`?\n\
         p.yml:7:13: triggers[2].events: `push` triggers take no events\n\
         p.yml:10:16: triggers[3].branches[0]: invalid glob `release/[`: Pattern syntax error near position 8: invalid range pattern"
    );
}

#[test]
fn unknown_output_reference_lists_earlier_steps() {
    let text = with_steps(
        "  - name: checkout\n    type: checkout\n  - name: get_diff\n    type: run_command\n  - name: post\n    type: post_comment\n    config:\n      body_from: revieww.raw_output\n",
    );
    assert_eq!(
        problems(&text),
        "p.yml:10:18: steps[2].config.body_from: unknown step `revieww` (earlier steps: checkout, get_diff)"
    );
}

#[test]
fn references_to_later_steps_or_self_are_errors() {
    let text = with_steps(
        "  - name: first\n    type: run_command\n    config:\n      command: \"echo {{ first.raw_output }} ${second.raw_output}\"\n  - name: second\n    type: run_command\n",
    );
    assert_eq!(
        problems(&text),
        "p.yml:6:16: steps[0].config.command: step `first` cannot read its own outputs\n\
         p.yml:6:16: steps[0].config.command: step `second` runs after this one (no earlier steps)"
    );
}

#[test]
fn unknown_variable_and_typo_hints() {
    let text = with_steps(
        "  - name: review\n    type: claude_execute\n    config:\n      prompt: \"{{ titel }} {{ branch }} {{ range(2) | list }}\"\n",
    );
    assert_eq!(
        problems(&text),
        "p.yml:6:15: steps[0].config.prompt: unknown variable `titel` (not a trigger variable, \
         secret or earlier step); did you mean `title`?"
    );
}

#[test]
fn bad_template_syntax_reports_the_minijinja_message() {
    let text = with_steps(
        "  - name: a\n    type: run_command\n    config:\n      args:\n        - ok\n        - \"{{ title }\"\n        - \"${oops\"\n",
    );
    assert_eq!(
        problems(&text),
        "p.yml:8:11: steps[0].config.args[1]: syntax error: unexpected `}`, expected end of variable block\n\
         p.yml:9:11: steps[0].config.args[2]: unclosed `${` (write `$${` for a literal `${`)"
    );
}

#[test]
fn timeout_must_be_positive_wherever_it_was_written() {
    let text = with_steps(
        "  - name: a\n    type: run_command\n    timeout_minutes: 0\n  - name: b\n    type: run_command\n    config:\n      timeout_minutes: -2\n",
    );
    assert_eq!(
        problems(&text),
        "p.yml:5:22: steps[0].timeout_minutes: timeout must be a positive number of minutes up to 10080 (7 days), got 0\n\
         p.yml:9:24: steps[1].timeout_minutes: timeout must be a positive number of minutes up to 10080 (7 days), got -2"
    );
}

#[test]
fn a_huge_timeout_is_a_positioned_error_not_a_panic() {
    let text = with_steps("  - name: a\n    type: run_command\n    timeout_minutes: 3e17\n");
    assert_eq!(
        problems(&text),
        "p.yml:5:22: steps[0].timeout_minutes: timeout must be a positive number of minutes up to 10080 (7 days), got 300000000000000000"
    );
}

#[test]
fn secrets_are_accepted_by_name_unless_a_secret_list_is_given() {
    let text = with_steps(
        "  - name: d\n    type: deploy\n    config:\n      token: ${DEPLOY_SECRET}\n      other: \"{{ secrets.API_KEY }}\"\n      shell: echo ${HOME}\n",
    );
    assert_eq!(problems(&text), "");
    let pipeline = parse("p.yml", &text).unwrap();
    let is_secret = |name: &str| name == "DEPLOY_SECRET";
    let err = pipeline
        .validate(&Validator::new(&known, TYPES).with_secrets(&is_secret))
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "p.yml:7:14: steps[0].config.other: unknown secret `API_KEY`\n\
         p.yml:8:14: steps[0].config.shell: unknown secret `HOME`; for the shell variable write `$${HOME}`"
    );
}

#[test]
fn from_keys_must_be_expressions_and_not_duplicate_their_target() {
    let text = with_steps(
        "  - name: a\n    type: run_command\n  - name: b\n    type: post_comment\n    config:\n      body: hi\n      body_from: a.raw_output\n      title_from: \"${a.raw_output}\"\n      count_from: 3\n",
    );
    assert_eq!(
        problems(&text),
        "p.yml:9:18: steps[1].config.body_from: `body` is set both directly and through `body_from`\n\
         p.yml:10:19: steps[1].config.title_from: takes an expression such as `review.raw_output`, not a template\n\
         p.yml:11:19: steps[1].config.count_from: expected an expression such as `review.raw_output`"
    );
}

#[test]
fn dynamic_secret_access_is_rejected() {
    let text = with_steps("  - name: a\n    type: deploy\n    config:\n      t: \"{{ secrets[event] }}\"\n");
    assert_eq!(
        problems(&text),
        "p.yml:6:10: steps[0].config.t: secrets must be read by name (`secrets.NAME`)"
    );
}

#[test]
fn load_parses_then_validates() {
    let validator = Validator::new(&known, TYPES);
    let ok = load("p.yml", &with_steps("  - name: a\n    type: checkout\n"), &validator).unwrap();
    assert_eq!(ok.steps[0].name, "a");
    let err = load("p.yml", &with_steps("  - name: a\n    type: nope\n"), &validator).unwrap_err();
    assert_eq!(err.len(), 1);
    assert_eq!(err.0[0].field, "steps[0].type");
    assert_eq!((err.0[0].line, err.0[0].column), (4, 11));
}

#[test]
fn conditions_groups_and_the_run_timeout_are_checked() {
    let text = "name: t\ntimeout_minutes: 0\nconcurrency:\n  group: \"{{ a.raw_output }}\"\nsteps:\n  - name: a\n    type: checkout\n    if: \"{{ b.raw_output }}\"\n  - name: b\n    type: checkout\n    if: a.raw_output == 'x' and event == 'push'\n  - name: c\n    type: checkout\n    if: \"{{ nope }}\"\n";
    assert_eq!(
        problems(text),
        "p.yml:2:18: timeout_minutes: timeout must be a positive number of minutes up to 10080 (7 days), got 0\n\
         p.yml:4:10: concurrency.group: a concurrency group may read only trigger variables (branch, number, ...)\n\
         p.yml:8:9: steps[0].if: step `b` runs after this one (no earlier steps)\n\
         p.yml:14:9: steps[2].if: unknown variable `nope` (not a trigger variable, secret or earlier step)"
    );
}
