//! The seed design's example pipeline, end to end: parse, validate, then
//! render every step with the outputs of the steps before it.

use std::collections::BTreeMap;

use serde_json::json;

use super::*;

const SEED: &str = r#"name: AI Code Review
description: Automated code review with Claude
triggers:
  - type: pull_request          # push | tag | pull_request | issue_comment | manual
    events: [opened, synchronize]   # pull_request actions
    branches: [main, "release/*"]   # optional globs
    paths: ["src/**"]               # optional globs
steps:
  - name: checkout
    type: checkout
    config:
      fetch_depth: 50
  - name: get_diff
    type: run_command
    timeout_minutes: 5             # optional, step level
    config:
      command: git diff origin/${base_branch}...HEAD
  - name: review
    type: claude_execute
    config:
      prompt: "Review {{ title }}: {{ get_diff.raw_output }}"
  - name: post_review
    type: post_comment
    config:
      body_from: review.raw_output
      marker: claude-review
  - name: deploy
    type: deploy
    config:
      webhook_secret: ${DEPLOY_SECRET}
"#;

const TYPES: &[&str] = &["checkout", "run_command", "claude_execute", "post_comment", "deploy"];

fn validator() -> Validator<'static> {
    Validator::new(&|t: &str| TYPES.contains(&t), TYPES)
}

fn pr_context() -> RenderContext {
    let mut ctx = RenderContext::default();
    ctx.vars.insert("event".into(), json!("pull_request"));
    ctx.vars.insert("title".into(), json!("Add parser"));
    ctx.vars.insert("base_branch".into(), json!("main"));
    ctx.secrets.insert("DEPLOY_SECRET".into(), "hunter2".into());
    ctx
}

fn ran(ctx: &mut RenderContext, step: &str, raw_output: &str) {
    let outputs = StepOutputs {
        raw_output: raw_output.into(),
        outputs: BTreeMap::new(),
    };
    ctx.outputs.insert(step.into(), outputs);
}

#[test]
fn seed_pipeline_parses_into_the_model() {
    let p = parse("review.yml", SEED).unwrap();
    assert_eq!(p.name, "AI Code Review");
    assert_eq!(p.description.as_deref(), Some("Automated code review with Claude"));
    let trigger = &p.triggers[0];
    assert_eq!(trigger.trigger_kind(), Some(TriggerKind::PullRequest));
    assert_eq!(trigger.events, ["opened", "synchronize"]);
    assert_eq!(trigger.branches, ["main", "release/*"]);
    assert_eq!(trigger.paths, ["src/**"]);
    let names: Vec<_> = p
        .steps
        .iter()
        .map(|s| (s.name.as_str(), s.step_type.as_str(), s.line))
        .collect();
    assert_eq!(
        names,
        [
            ("checkout", "checkout", 9),
            ("get_diff", "run_command", 13),
            ("review", "claude_execute", 18),
            ("post_review", "post_comment", 22),
            ("deploy", "deploy", 27),
        ]
    );
    assert_eq!(p.steps[0].config, json!({"fetch_depth": 50}));
    assert_eq!(p.steps[1].timeout(), std::time::Duration::from_secs(300));
    assert_eq!(p.steps[2].timeout(), DEFAULT_STEP_TIMEOUT);
    assert_eq!(p.step("post_review").unwrap().config["body_from"], "review.raw_output");
}

#[test]
fn seed_pipeline_validates() {
    let p = parse("review.yml", SEED).unwrap();
    assert_eq!(p.validate(&validator()), Ok(()));
    let is_secret = |name: &str| name == "DEPLOY_SECRET";
    assert_eq!(p.validate(&validator().with_secrets(&is_secret)), Ok(()));
}

#[test]
fn seed_pipeline_renders_each_step_with_earlier_outputs() {
    let p = parse("review.yml", SEED).unwrap();
    let mut ctx = pr_context();
    let checkout = render_config(&p.steps[0], &ctx).unwrap();
    assert_eq!(checkout.config, json!({"fetch_depth": 50}));
    ran(&mut ctx, "checkout", "checked out abc123");

    let diff = render_config(&p.steps[1], &ctx).unwrap();
    assert_eq!(diff.config, json!({"command": "git diff origin/main...HEAD"}));
    ran(&mut ctx, "get_diff", "+fn parse() {}\n");

    let review = render_config(&p.steps[2], &ctx).unwrap();
    assert_eq!(review.config, json!({"prompt": "Review Add parser: +fn parse() {}\n"}));
    ran(&mut ctx, "review", "LGTM");

    let post = render_config(&p.steps[3], &ctx).unwrap();
    assert_eq!(post.config, json!({"body": "LGTM", "marker": "claude-review"}));
    assert!(post.used_secrets.is_empty());
    ran(&mut ctx, "post_review", "");

    let deploy = render_config(&p.steps[4], &ctx).unwrap();
    assert_eq!(deploy.config, json!({"webhook_secret": "hunter2"}));
    assert_eq!(deploy.used_secrets.values().collect::<Vec<_>>(), ["hunter2"]);
}

#[test]
fn seed_pipeline_from_a_fork_runs_until_a_step_needs_a_secret() {
    let p = parse("review.yml", SEED).unwrap();
    let mut ctx = RenderContext {
        withhold_secrets: true,
        ..pr_context()
    };
    ran(&mut ctx, "review", "LGTM");
    assert!(render_config(&p.steps[3], &ctx).is_ok());
    let err = render_config(&p.steps[4], &ctx).unwrap_err();
    assert_eq!(
        err.to_string(),
        "step `deploy`: config.webhook_secret: secret `DEPLOY_SECRET` is withheld from pull requests from forks"
    );
    assert_eq!(
        err.to_diagnostic(&p).to_string(),
        "review.yml:30:23: steps[4].config.webhook_secret: secret `DEPLOY_SECRET` is withheld from pull requests from forks"
    );
}

#[test]
fn seed_pipeline_typo_in_reference_is_pinpointed() {
    let text = SEED.replace("body_from: review.raw_output", "body_from: revieww.raw_output");
    let err = load("review.yml", &text, &validator()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "review.yml:25:18: steps[3].config.body_from: unknown step `revieww` \
         (earlier steps: checkout, get_diff, review); did you mean `review`?"
    );
}

#[test]
fn seed_style_timeout_inside_config_is_accepted() {
    let text = SEED.replace(
        "    timeout_minutes: 5             # optional, step level\n    config:\n",
        "    config:\n      timeout_minutes: 0.5\n",
    );
    let p = load("review.yml", &text, &validator()).unwrap();
    assert_eq!(p.steps[1].timeout(), std::time::Duration::from_secs(30));
    assert_eq!(
        p.steps[1].config,
        json!({"command": "git diff origin/${base_branch}...HEAD"})
    );
}

/// Every diagnostic points inside `text` (1-based line and column).
fn assert_inside(text: &str, diagnostics: &Diagnostics) {
    let lines = text.lines().count().max(1) + 1;
    for d in diagnostics.iter() {
        let inside = (1..=lines).contains(&d.line) && d.column >= 1;
        assert!(inside, "{d} is outside {text:?}");
    }
}

#[test]
fn truncated_or_mangled_files_never_panic_and_point_inside_the_file() {
    let validator = validator();
    let ctx = pr_context();
    let mangled = [
        SEED.replace("  - ", "- "),
        SEED.replace(": ", ":"),
        SEED.replace('"', "'"),
    ];
    let prefixes = SEED.char_indices().map(|(i, _)| &SEED[..i]);
    let (mut parsed, mut rejected) = (0, 0);
    for text in prefixes.chain(mangled.iter().map(String::as_str)) {
        match parse("p.yml", text) {
            Ok(p) => {
                parsed += 1;
                if let Err(d) = p.validate(&validator) {
                    assert_inside(text, &d);
                }
                for step in &p.steps {
                    let _ = render_config(step, &ctx);
                }
            }
            Err(d) => {
                rejected += 1;
                assert_inside(text, &d);
            }
        }
    }
    assert!(parsed > 100 && rejected > 10, "parsed {parsed}, rejected {rejected}");
}
