//! Unit tests of the pure parts: parsing, planning, payload, signature, schedules, messages.

use super::*;

fn config(json: &str) -> Result<Config, serde_json::Error> {
    serde_json::from_str(json)
}

fn facts() -> Facts {
    Facts {
        run_id: "run-42".into(),
        pipeline: "release".into(),
        repository: "acme/shop".into(),
        default_branch: Some("main".into()),
        git_ref: Some("refs/heads/release".into()),
        head_sha: None,
        after: Some("abc123".into()),
        head_branch: None,
    }
}

fn planned(json: &str) -> Result<Plan, Error> {
    plan(&config(json).unwrap(), &facts())
}

fn config_error(json: &str) -> String {
    match planned(json) {
        Err(Error::InvalidConfig(m)) => m,
        other => panic!("expected a config error for {json}, got {other:?}"),
    }
}

/// The seed examples, as the host hands them over (YAML read into JSON, secrets rendered).
const SEEDS: [&str; 5] = [
    r#"{"strategy": "workflow", "workflow": "deploy.yml", "environment": "production",
        "inputs": {"target": "production-cluster"}}"#,
    r#"{"strategy": "webhook", "webhook_url": "https://deploy.example.com/trigger",
        "webhook_secret": "s3cret", "environment": "staging"}"#,
    r#"{"strategy": "api", "api_url": "https://api.example.com/deployments",
        "api_token": "t0ken", "environment": "production"}"#,
    r#"{"strategy": "command", "command": "./scripts/deploy.sh production", "timeout_minutes": 15}"#,
    r#"{"environment": "staging", "strategy": "workflow", "workflow": "deploy.yml",
        "health_check_url": "https://staging.example.com/health", "health_check_retries": 3}"#,
];

#[test]
fn hmac_sha256_matches_rfc_4231_case_2() {
    assert_eq!(
        signature(b"Jefe", b"what do ya want for nothing?"),
        "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    );
}

#[test]
fn payload_is_exact_json() {
    let body = payload("staging", Strategy::Webhook, &facts());
    assert_eq!(
        String::from_utf8(body).unwrap(),
        r#"{"environment":"staging","repository":"acme/shop","sha":"abc123","ref":"refs/heads/release","run_id":"run-42","pipeline":"release","strategy":"webhook"}"#
    );
    let mut f = facts();
    f.head_sha = Some("def456".into());
    f.git_ref = None;
    let body = String::from_utf8(payload("production", Strategy::Api, &f)).unwrap();
    assert!(body.contains(r#""sha":"def456","ref":null"#), "{body}");
    assert!(body.ends_with(r#""strategy":"api"}"#), "{body}");
}

#[test]
fn seed_workflow() {
    let p = planned(SEEDS[0]).unwrap();
    assert_eq!(p.environment, "production");
    assert_eq!(p.strategy, Strategy::Workflow);
    assert_eq!(
        p.action,
        Action::Workflow {
            workflow: "deploy.yml".into(),
            git_ref: "release".into(),
            inputs: vec![
                ("environment".into(), "production".into()),
                ("target".into(), "production-cluster".into()),
            ],
        }
    );
    assert_eq!(p.sha.as_deref(), Some("abc123"));
    assert_eq!(p.health_check, None);
    assert!(p.smoke_tests.is_empty());
}

#[test]
fn seed_webhook_is_signed_with_its_secret() {
    let p = planned(SEEDS[1]).unwrap();
    assert_eq!(p.environment, "staging");
    let Action::Webhook { url, secret, body } = &p.action else {
        panic!("{:?}", p.action)
    };
    assert_eq!(url, "https://deploy.example.com/trigger");
    assert_eq!(secret.as_ref().map(|s| s.0.as_str()), Some("s3cret"));
    assert_eq!(body, &payload("staging", Strategy::Webhook, &facts()));
}

#[test]
fn seed_api() {
    let p = planned(SEEDS[2]).unwrap();
    let Action::Api { url, token, body } = &p.action else {
        panic!("{:?}", p.action)
    };
    assert_eq!(url, "https://api.example.com/deployments");
    assert_eq!(token.0, "t0ken");
    assert!(String::from_utf8_lossy(body).ends_with(r#""strategy":"api"}"#));
}

#[test]
fn seed_command_defaults_its_environment() {
    let p = planned(SEEDS[3]).unwrap();
    assert_eq!(p.environment, "default");
    assert_eq!(
        p.action,
        Action::Command {
            line: "./scripts/deploy.sh production".into(),
            env: vec![
                ("DEPLOY_ENVIRONMENT".into(), "default".into()),
                ("DEPLOY_SHA".into(), "abc123".into()),
                ("DEPLOY_REF".into(), "refs/heads/release".into()),
            ],
            timeout_ms: Some(900_000),
            timeout_minutes: Some(15.0),
        }
    );
    let mut f = facts();
    f.after = None;
    f.git_ref = None;
    let p = plan(&config(SEEDS[3]).unwrap(), &f).unwrap();
    let Action::Command { env, .. } = p.action else {
        panic!()
    };
    assert_eq!(env, vec![("DEPLOY_ENVIRONMENT".into(), "default".into())]);
    assert_eq!(p.sha, None);
}

#[test]
fn seed_health_check_uses_the_defaults() {
    let p = planned(SEEDS[4]).unwrap();
    assert_eq!(
        p.health_check,
        Some(HealthCheck {
            url: "https://staging.example.com/health".into(),
            attempts: 3,
            interval_seconds: 5,
        })
    );
    assert_eq!(p.request_timeout, Duration::from_secs(10));
}

#[test]
fn unknown_fields_are_refused() {
    let e = config(r#"{"environment":"x","workflow":"d.yml","enviroment":"y"}"#).unwrap_err();
    assert!(e.to_string().contains("enviroment"), "{e}");
    let e = config(r#"{"environment":"x","workflow":"d.yml","smoke_tests":[{"url":"https://a/","status":200}]}"#)
        .unwrap_err();
    assert!(e.to_string().contains("status"), "{e}");
    let e = config(r#"{"strategy":"ftp"}"#).unwrap_err();
    assert!(e.to_string().contains("ftp"), "{e}");
}

#[test]
fn missing_fields_are_named_per_strategy() {
    let m = config_error(r#"{"workflow":"deploy.yml"}"#);
    assert!(m.contains("`environment` is missing") && m.contains("workflow"), "{m}");
    let m = config_error(r#"{"strategy":"webhook","webhook_url":"https://h/"}"#);
    assert!(m.contains("`environment` is missing") && m.contains("webhook"), "{m}");
    let m = config_error(r#"{"environment":"prod"}"#);
    assert!(m.contains("`workflow` is missing"), "{m}");
    let m = config_error(r#"{"environment":"prod","strategy":"webhook"}"#);
    assert!(m.contains("`webhook_url` is missing"), "{m}");
    let m = config_error(r#"{"environment":"prod","strategy":"api","api_url":"https://h/"}"#);
    assert!(m.contains("`api_token` is missing"), "{m}");
    let m = config_error(r#"{"environment":"prod","strategy":"api","api_token":"t"}"#);
    assert!(m.contains("`api_url` is missing"), "{m}");
    let m = config_error(r#"{"strategy":"command"}"#);
    assert!(m.contains("`command` is missing"), "{m}");
    let m = config_error(r#"{"strategy":"command","command":"  "}"#);
    assert!(m.contains("`command` is empty"), "{m}");
    let m = config_error(r#"{"environment":" ","workflow":"d.yml"}"#);
    assert!(m.contains("`environment` is empty"), "{m}");
}

#[test]
fn fields_of_another_strategy_are_refused() {
    // The host's own seed sets only a webhook secret: without `strategy: webhook` it is an error.
    let m = config_error(r#"{"webhook_secret":"hunter2"}"#);
    assert!(m.contains("`webhook_secret` belongs to strategy `webhook`"), "{m}");
    let m =
        config_error(r#"{"environment":"p","strategy":"api","api_url":"https://h/","api_token":"t","workflow":"x"}"#);
    assert!(
        m.contains("`workflow` belongs to strategy `workflow`, but `strategy` is `api`"),
        "{m}"
    );
    let m = config_error(r#"{"environment":"p","workflow":"d.yml","timeout_minutes":3}"#);
    assert!(m.contains("`timeout_minutes` belongs to strategy `command`"), "{m}");
}

#[test]
fn bad_values_are_config_errors() {
    for (json, needle) in [
        (
            r#"{"strategy":"command","command":"x","timeout_minutes":0}"#,
            "timeout_minutes",
        ),
        (
            r#"{"strategy":"command","command":"x","timeout_minutes":-2}"#,
            "timeout_minutes",
        ),
        (
            r#"{"environment":"p","strategy":"webhook","webhook_url":"ftp://h/x"}"#,
            "webhook_url",
        ),
        (
            r#"{"environment":"p","strategy":"webhook","webhook_url":"https://u:p@h/"}"#,
            "webhook_url",
        ),
        (
            r#"{"environment":"p","strategy":"webhook","webhook_url":"https://h/","webhook_secret":""}"#,
            "webhook_secret",
        ),
        (
            r#"{"environment":"p","strategy":"api","api_url":"https://h/","api_token":" "}"#,
            "api_token",
        ),
        (r#"{"environment":"p","workflow":"d.yml","ref":""}"#, "ref"),
        (
            r#"{"environment":"p","workflow":"d.yml","health_check_url":"h/health"}"#,
            "health_check_url",
        ),
        (
            r#"{"environment":"p","workflow":"d.yml","health_check_url":"https://h/","health_check_retries":0}"#,
            "health_check_retries",
        ),
        (
            r#"{"environment":"p","workflow":"d.yml","health_check_timeout_seconds":0}"#,
            "health_check_timeout_seconds",
        ),
        (
            r#"{"environment":"p","workflow":"d.yml","smoke_tests":[{"url":"/x"}]}"#,
            "smoke_tests[0].url",
        ),
        (
            r#"{"environment":"p","workflow":"d.yml","smoke_tests":[{"url":"https://h/","method":"G T"}]}"#,
            "smoke_tests[0].method",
        ),
        (
            r#"{"environment":"p","workflow":"d.yml","smoke_tests":[{"url":"https://h/","expect_status":42}]}"#,
            "smoke_tests[0].expect_status",
        ),
    ] {
        let m = config_error(json);
        assert!(m.contains(needle), "{json}: {m}");
    }
    // A webhook URL may carry a token: it is not quoted back.
    let m = config_error(r#"{"environment":"p","strategy":"webhook","webhook_url":"hooks/T0KEN"}"#);
    assert!(!m.contains("T0KEN"), "{m}");
}

#[test]
fn secrets_stay_out_of_debug_output() {
    let c = config(SEEDS[1]).unwrap();
    let p = plan(&c, &facts()).unwrap();
    for shown in [format!("{c:?}"), format!("{p:?}")] {
        assert!(!shown.contains("s3cret"), "{shown}");
    }
    let c = config(SEEDS[2]).unwrap();
    assert!(!format!("{c:?} {:?}", plan(&c, &facts()).unwrap()).contains("t0ken"));
}

#[test]
fn workflow_inputs_keep_a_given_environment() {
    let p = planned(r#"{"environment":"prod","workflow":"d.yml","inputs":{"environment":"blue"},"ref":"v2"}"#).unwrap();
    let Action::Workflow { git_ref, inputs, .. } = p.action else {
        panic!()
    };
    assert_eq!(git_ref, "v2");
    assert_eq!(inputs, vec![("environment".into(), "blue".into())]);
}

#[test]
fn ref_choice() {
    let mut f = Facts {
        head_branch: Some("feature".into()),
        git_ref: Some("refs/heads/release".into()),
        default_branch: Some("main".into()),
        ..Facts::default()
    };
    assert_eq!(choose_ref(&f).as_deref(), Some("feature"));
    f.head_branch = None;
    assert_eq!(choose_ref(&f).as_deref(), Some("release"));
    f.git_ref = Some("refs/tags/v1".into());
    assert_eq!(choose_ref(&f).as_deref(), Some("main"));
    f.default_branch = None;
    assert_eq!(choose_ref(&f), None);
    let m = match plan(&config(SEEDS[0]).unwrap(), &f) {
        Err(Error::InvalidConfig(m)) => m,
        other => panic!("{other:?}"),
    };
    assert!(m.contains("set `ref`"), "{m}");
}

#[test]
fn backoff_doubles_up_to_a_minute() {
    assert_eq!(backoff(5, 3), vec![5, 10]);
    assert_eq!(backoff(5, 1), Vec::<u64>::new());
    assert_eq!(backoff(5, 0), Vec::<u64>::new());
    assert_eq!(backoff(5, 7), vec![5, 10, 20, 40, 60, 60]);
    assert_eq!(backoff(90, 3), vec![60, 60]);
    assert_eq!(backoff(0, 3), vec![0, 0]);
    assert_eq!(backoff(u64::MAX, 2), vec![60]);
}

#[test]
fn descriptions_fit_140_characters() {
    assert_eq!(description("Deployed to production"), "Deployed to production");
    let long = "é".repeat(200);
    let d = description(&long);
    assert_eq!(d.chars().count(), 140);
    assert!(d.ends_with('…') && d.starts_with("éé"));
    let exact = "x".repeat(140);
    assert_eq!(description(&exact), exact);
    assert_eq!(
        description("\ncommand exited with code 1\nstderr..."),
        "command exited with code 1"
    );
}

fn smoke(json: &str) -> SmokeTest {
    serde_json::from_str(json).unwrap()
}

#[test]
fn smoke_tests_compare_status_and_body() {
    let t = smoke(r#"{"url":"https://shop.example.com/"}"#);
    assert_eq!(
        (t.method.as_str(), t.expect_status, t.expect_body_contains.as_deref()),
        ("GET", 200, None)
    );
    assert_eq!(evaluate_smoke(&t, 200, ""), Ok(()));
    assert_eq!(
        evaluate_smoke(&t, 503, "Service Unavailable\nmore"),
        Err("smoke test GET https://shop.example.com/: expected status 200, got 503: Service Unavailable".into())
    );
    let t = smoke(
        r#"{"url":"https://shop.example.com/v","expect_status":201,"expect_body_contains":"v1.2","method":"POST"}"#,
    );
    assert_eq!(evaluate_smoke(&t, 201, "{\"version\":\"v1.2.0\"}"), Ok(()));
    assert_eq!(
        evaluate_smoke(&t, 201, "{\"version\":\"v1.1\"}"),
        Err("smoke test POST https://shop.example.com/v: expected the body to contain `v1.2`, got `{\"version\":\"v1.1\"}`".into())
    );
    assert!(evaluate_smoke(&t, 201, "").unwrap_err().ends_with("got an empty body"));
    assert!(
        evaluate_smoke(&t, 200, "v1.2")
            .unwrap_err()
            .contains("expected status 201, got 200")
    );
}

#[test]
fn smoke_test_methods_are_upper_cased() {
    let p = planned(r#"{"environment":"p","workflow":"d.yml","smoke_tests":[{"url":"https://h/a","method":"head"},{"url":"https://h/b"}]}"#).unwrap();
    let methods: Vec<_> = p.smoke_tests.iter().map(|t| t.method.as_str()).collect();
    assert_eq!(methods, ["HEAD", "GET"]);
}

#[test]
fn deploy_answers() {
    assert_eq!(deploy_answer("webhook h", 204, ""), Ok(None));
    assert_eq!(deploy_answer("webhook h", 200, "ok"), Ok(None));
    assert_eq!(
        deploy_answer(
            "webhook h",
            200,
            r#"{"url":"https://a/","deployment_url":"https://b/"}"#
        ),
        Ok(Some("https://b/".into()))
    );
    assert_eq!(
        deploy_answer("api h", 201, r#"{"url":"https://a/","id":7}"#),
        Ok(Some("https://a/".into()))
    );
    assert_eq!(deploy_answer("api h", 201, r#"{"url":7}"#), Ok(None));
    assert_eq!(
        deploy_answer("api h", 500, " boom \n"),
        Err("api h answered 500: boom".into())
    );
    assert_eq!(deploy_answer("api h", 401, ""), Err("api h answered 401".into()));
    let long = "x".repeat(600);
    let m = deploy_answer("api h", 502, &long).unwrap_err();
    assert_eq!(m, format!("api h answered 502: {}", "x".repeat(500)));
}

#[test]
fn only_the_host_of_a_url_is_shown() {
    assert_eq!(
        url_host("https://deploy.example.com/trigger?token=x"),
        "deploy.example.com"
    );
    assert_eq!(url_host("http://u:p@h.example:8080/x"), "h.example:8080");
    assert_eq!(url_host("https://h.example"), "h.example");
}

#[test]
fn command_failures_carry_the_stderr_tail() {
    assert_eq!(command_failure(Some(0), false, None, "noise"), None);
    let many: String = (0..30).map(|i| format!("line{i}\n")).collect();
    let m = command_failure(Some(3), false, None, &many).unwrap();
    assert!(
        m.starts_with("deploy command exited with code 3\nstderr (last lines):\nline20\n"),
        "{m}"
    );
    assert!(m.ends_with("line29") && !m.contains("line19"), "{m}");
    assert_eq!(
        command_failure(None, true, Some(15.0), "").unwrap(),
        "deploy command timed out after 15 minutes"
    );
    assert_eq!(
        command_failure(None, false, None, "").unwrap(),
        "deploy command was killed by a signal"
    );
}

#[test]
fn summaries() {
    let p = planned(SEEDS[4]).unwrap();
    let done = Done {
        deployment_url: None,
        health_checks: Some(2),
    };
    assert_eq!(
        summary(&p, &done),
        "workflow deploy.yml triggered on release to deploy to staging; healthy after 2 attempts"
    );
    let p = planned(SEEDS[1]).unwrap();
    let done = Done {
        deployment_url: Some("https://staging.example.com/".into()),
        health_checks: None,
    };
    assert_eq!(
        summary(&p, &done),
        "deployed to staging (webhook) at https://staging.example.com/"
    );
}

#[test]
fn failure_reasons_are_short() {
    let e = Error::failed(format!(
        "health check https://h/ failed after 3 attempts: last answer 503: {}",
        "x".repeat(300)
    ));
    let r = reason(&e);
    assert!(r.starts_with("health check https://h/ failed after 3 attempts") && r.chars().count() == 140);
    let e = Error::Provider(ProviderError::NotFound("workflow deploy.yml".into()));
    assert_eq!(reason(&e), "workflow not triggered: not found: workflow deploy.yml");
}

#[test]
fn schema_is_derived_and_strict() {
    let schema = serde_json::to_value(schemars::schema_for!(Config)).unwrap();
    assert_eq!(schema["additionalProperties"], false);
    let props = &schema["properties"];
    for field in [
        "environment",
        "strategy",
        "workflow",
        "inputs",
        "ref",
        "webhook_url",
        "webhook_secret",
    ] {
        assert!(props.get(field).is_some(), "{field}: {schema}");
    }
    assert_eq!(props["health_check_retries"]["default"], 3);
    assert_eq!(schema["required"], serde_json::Value::Null, "{schema}");
    let smoke = &schema["$defs"]["SmokeTest"];
    assert_eq!(smoke["additionalProperties"], false, "{schema}");
    assert_eq!(smoke["required"], serde_json::json!(["url"]));
}
