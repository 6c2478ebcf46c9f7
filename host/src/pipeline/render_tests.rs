//! Behaviour of [`render_config`]: templates, secrets, outputs and `*_from`.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::*;

fn step(config: Value) -> StepDef {
    StepDef {
        name: "s".into(),
        step_type: "run_command".into(),
        config,
        timeout_minutes: None,
        condition: None,
        continue_on_error: false,
        line: 1,
    }
}

fn context() -> RenderContext {
    let mut ctx = RenderContext::default();
    ctx.vars.insert("title".into(), json!("Fix <parser> & lexer"));
    ctx.vars.insert("number".into(), json!(42));
    ctx.vars.insert("base_branch".into(), json!("main"));
    ctx.secrets.insert("DEPLOY_SECRET".into(), "s3cr3t".into());
    ctx.outputs.insert(
        "review".into(),
        StepOutputs {
            raw_output: "Looks good".into(),
            outputs: BTreeMap::from([("score".into(), "9".into())]),
        },
    );
    ctx
}

fn render(config: Value, ctx: &RenderContext) -> Result<Value, String> {
    render_config(&step(config), ctx)
        .map(|r| r.config)
        .map_err(|e| e.to_string())
}

#[test]
fn dollar_brace_and_mustache_both_render() {
    let out = render(
        json!({"cmd": "git diff origin/${base_branch}...HEAD # {{ number }}"}),
        &context(),
    );
    assert_eq!(out.unwrap(), json!({"cmd": "git diff origin/main...HEAD # 42"}));
}

#[test]
fn every_string_is_rendered_recursively_and_nothing_else_changes() {
    let config = json!({
        "args": ["#{{ number }}", 3, true, null],
        "env": {"{{ title }}": "${review.score}"},
        "depth": 50,
    });
    let out = render(config, &context()).unwrap();
    assert_eq!(
        out,
        json!({"args": ["#42", 3, true, null], "env": {"{{ title }}": "9"}, "depth": 50})
    );
}

#[test]
fn no_html_escaping_and_trailing_newlines_kept() {
    let out = render(json!({"p": "Title: {{ title }}\n", "lit": "echo $${HOME}"}), &context());
    assert_eq!(
        out.unwrap(),
        json!({"p": "Title: Fix <parser> & lexer\n", "lit": "echo ${HOME}"})
    );
}

#[test]
fn body_from_takes_earlier_step_raw_output() {
    let out = render(json!({"body_from": "review.raw_output", "marker": "x"}), &context());
    assert_eq!(out.unwrap(), json!({"body": "Looks good", "marker": "x"}));
}

#[test]
fn from_keeps_the_value_type_and_works_when_nested() {
    let out = render(json!({"pr": {"number_from": "number"}}), &context());
    assert_eq!(out.unwrap(), json!({"pr": {"number": 42}}));
}

#[test]
fn secrets_render_bare_or_namespaced_and_are_reported_for_masking() {
    let rendered = render_config(
        &step(json!({"a": "${DEPLOY_SECRET}", "b": "{{ secrets.DEPLOY_SECRET }}", "c": "plain"})),
        &context(),
    )
    .unwrap();
    assert_eq!(rendered.config, json!({"a": "s3cr3t", "b": "s3cr3t", "c": "plain"}));
    assert_eq!(
        rendered.used_secrets,
        BTreeMap::from([("DEPLOY_SECRET".to_owned(), "s3cr3t".to_owned())])
    );
    assert!(!format!("{rendered:?}").contains("s3cr3t"), "Debug hides values");
    assert!(!format!("{:?}", context()).contains("s3cr3t"), "Debug hides values");
}

#[test]
fn unused_secrets_are_not_reported() {
    let rendered = render_config(&step(json!({"a": "{{ title }}"})), &context()).unwrap();
    assert!(rendered.used_secrets.is_empty());
}

#[test]
fn secret_withheld_for_fork() {
    let ctx = RenderContext {
        withhold_secrets: true,
        ..context()
    };
    let err = render_config(&step(json!({"webhook_secret": "${DEPLOY_SECRET}"})), &ctx).unwrap_err();
    assert_eq!(err.kind, RenderErrorKind::SecretWithheld("DEPLOY_SECRET".into()));
    assert_eq!(
        err.to_string(),
        "step `s`: config.webhook_secret: secret `DEPLOY_SECRET` is withheld from pull requests from forks"
    );
    assert_eq!(
        render(json!({"t": "{{ title }}"}), &ctx).unwrap(),
        json!({"t": "Fix <parser> & lexer"})
    );
}

#[test]
fn missing_secret_variable_step_and_output_are_clear_errors() {
    let ctx = context();
    assert_eq!(
        render(json!({"k": "${API_KEY}"}), &ctx).unwrap_err(),
        "step `s`: config.k: secret `API_KEY` is not set"
    );
    assert_eq!(
        render(json!({"k": ["{{ comment_body }}"]}), &ctx).unwrap_err(),
        "step `s`: config.k[0]: trigger variable `comment_body` is not set for this run"
    );
    let mut null_title = context();
    null_title.vars.insert("title".into(), Value::Null);
    assert_eq!(
        render(json!({"k": "{{ title }}"}), &null_title).unwrap_err(),
        "step `s`: config.k: trigger variable `title` is not set for this run"
    );
    assert_eq!(
        render(json!({"k_from": "deploy.raw_output"}), &ctx).unwrap_err(),
        "step `s`: config.k_from: no outputs from step `deploy` (it has not run before this step)"
    );
    assert_eq!(
        render(json!({"k": "{{ review.verdict }}"}), &ctx).unwrap_err(),
        "step `s`: config.k: step `review` has no output `verdict` (it has: raw_output, score)"
    );
}

#[test]
fn strict_undefined_and_syntax_errors_fail_rendering() {
    let ctx = context();
    assert_eq!(
        render(json!({"k": "{{ review.raw_output.nope }}"}), &ctx).unwrap_err(),
        "step `s`: config.k: undefined value"
    );
    assert_eq!(
        render(json!({"k": "{% if %}"}), &ctx).unwrap_err(),
        "step `s`: config.k: syntax error: unexpected end of block"
    );
    assert_eq!(
        render(json!({"body": "x", "body_from": "review.raw_output"}), &ctx).unwrap_err(),
        "step `s`: config.body_from: `body` is set both directly and through `body_from`"
    );
}
