use super::*;

fn config(json: &str) -> Config {
    serde_json::from_str(json).unwrap()
}

fn config_error(json: &str) -> String {
    match config(json).validate() {
        Err(Error::InvalidConfig(m)) => m,
        other => panic!("expected a config error for {json}, got {other:?}"),
    }
}

fn output<'a>(out: &'a Output, name: &str) -> Option<&'a str> {
    out.outputs.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
}

// --- config ---

#[test]
fn prompt_or_template_exactly_one() {
    assert_eq!(
        config(r#"{"prompt":"Review this"}"#).validate().unwrap(),
        PromptSource::Inline("Review this".into())
    );
    assert_eq!(
        config(r#"{"prompt_template_id":" review "}"#).validate().unwrap(),
        PromptSource::Template("review".into())
    );
    let both = config_error(r#"{"prompt":"x","prompt_template_id":"t"}"#);
    assert!(both.contains("not both"), "{both}");
    let neither = config_error("{}");
    assert!(
        neither.contains("`prompt`") && neither.contains("`prompt_template_id`"),
        "{neither}"
    );
    assert!(config_error(r#"{"prompt":"  "}"#).contains("empty"));
    assert!(config_error(r#"{"prompt_template_id":""}"#).contains("empty"));
}

#[test]
fn unknown_fields_are_refused() {
    let e = serde_json::from_str::<Config>(r#"{"prompt":"x","max_turn":3}"#).unwrap_err();
    assert!(e.to_string().contains("unknown field `max_turn`"), "{e}");
    let e = serde_json::from_str::<Config>(r#"{"prompt":"x","backend":"http"}"#).unwrap_err();
    assert!(e.to_string().contains("http"), "{e}");
}

#[test]
fn defaults() {
    let c = config(r#"{"prompt":"x"}"#);
    assert_eq!(c.backend, Backend::Cli);
    assert!(c.session);
    assert_eq!(c.cli_program(), "claude");
    assert_eq!(c.api_url(), "https://api.anthropic.com");
    assert_eq!(c.api_model(), "claude-sonnet-4-5");
    assert_eq!(c.timeout(), None);
    let c = config(
        r#"{"prompt":"x","backend":"api","api_key":"k","api_url":"http://127.0.0.1:9/","model":"claude-3-sonnet","timeout_minutes":0.5}"#,
    );
    c.validate().unwrap();
    assert_eq!(c.api_url(), "http://127.0.0.1:9");
    assert_eq!(c.api_model(), "claude-3-sonnet");
    assert_eq!(c.timeout(), Some(Duration::from_secs(30)));
}

#[test]
fn backend_specific_fields_are_checked() {
    assert!(config_error(r#"{"prompt":"x","max_tokens":10}"#).contains("`max_tokens` applies to `backend: api`"));
    assert!(config_error(r#"{"prompt":"x","backend":"api","api_key":"k","max_turns":3}"#).contains("`max_turns`"));
    assert!(config_error(r#"{"prompt":"x","backend":"api"}"#).contains("needs `api_key`"));
    assert!(config_error(r#"{"prompt":"x","backend":"api","api_key":" "}"#).contains("empty"));
    assert!(config_error(r#"{"prompt":"x","backend":"api","api_key":"k","api_url":"ftp://x"}"#).contains("api_url"));
    assert!(config_error(r#"{"prompt":"x","timeout_minutes":0}"#).contains("timeout_minutes"));
    assert!(config_error(r#"{"prompt":"x","max_turns":0}"#).contains("max_turns"));
    assert!(config_error(r#"{"prompt":"x","allowed_tools":["Read",""]}"#).contains("allowed_tools"));
    assert!(config_error(r#"{"prompt":"x","model":""}"#).contains("model"));
}

#[test]
fn debug_never_shows_the_key() {
    let c = config(r#"{"prompt":"secret prompt","backend":"api","api_key":"sk-ant-123"}"#);
    let shown = format!("{c:?}");
    assert!(
        !shown.contains("sk-ant-123") && !shown.contains("secret prompt"),
        "{shown}"
    );
}

#[test]
fn schema_is_derived_from_config() {
    let schema = serde_json::to_value(schemars::schema_for!(Config)).unwrap();
    assert_eq!(schema["title"], "claude_execute");
    assert_eq!(schema["additionalProperties"], false);
    assert_eq!(schema["properties"]["backend"]["default"], "cli");
    assert_eq!(schema["properties"]["session"]["default"], true);
    assert_eq!(schema["properties"]["timeout_minutes"]["exclusiveMinimum"], 0);
    let props = schema["properties"].as_object().unwrap();
    for field in [
        "prompt",
        "prompt_template_id",
        "backend",
        "api_key",
        "session",
        "allowed_tools",
        "cli_path",
    ] {
        assert!(props.contains_key(field), "{field}");
    }
    assert!(schema.get("required").is_none_or(|r| r.as_array().unwrap().is_empty()));
}

// --- session ---

#[test]
fn session_keys() {
    assert_eq!(session_key(Some(12), true).as_deref(), Some("session/pr/12"));
    assert_eq!(session_key(Some(7), false).as_deref(), Some("session/issue/7"));
    assert_eq!(session_key(None, true), None);
    assert_eq!(session_key(None, false), None);
    assert!(valid_session_id("0b9a4f6e-1c2d-4e5f-8a9b-0c1d2e3f4a5b"));
    for bad in ["", "-rf", "a b", "x;y", &"a".repeat(129)] {
        assert!(!valid_session_id(bad), "{bad}");
    }
}

// --- CLI ---

#[test]
fn minimal_cli_arguments() {
    let c = config(r#"{"prompt":"Review"}"#);
    assert_eq!(
        cli_args(&c, "Review", None),
        ["-p", "Review", "--output-format", "json"]
    );
    let cmd = cli_command(&c, "Review", None);
    assert_eq!(cmd.program, "claude");
    assert_eq!(cmd.cwd, None);
    assert!(cmd.env.is_empty());
    assert_eq!(cmd.timeout_ms, None);
    assert_eq!(cmd.stdin, None);
}

#[test]
fn full_cli_arguments() {
    let c = config(
        r#"{"prompt":"p","model":"claude-3-sonnet","max_turns":5,"allowed_tools":["Read"," Bash(git diff:*) "],
            "system":"Be brief.","timeout_minutes":1.5,"api_key":"sk-1","cli_path":"/opt/claude"}"#,
    );
    c.validate().unwrap();
    assert_eq!(
        cli_args(&c, "Fix it", Some("abc-123")),
        [
            "-p",
            "Fix it",
            "--output-format",
            "json",
            "--model",
            "claude-3-sonnet",
            "--max-turns",
            "5",
            "--allowedTools",
            "Read,Bash(git diff:*)",
            "--append-system-prompt",
            "Be brief.",
            "--resume",
            "abc-123",
        ]
    );
    let cmd = cli_command(&c, "Fix it", None);
    assert_eq!(cmd.program, "/opt/claude");
    assert_eq!(cmd.env, vec![("ANTHROPIC_API_KEY".to_string(), "sk-1".to_string())]);
    assert_eq!(cmd.timeout_ms, Some(90_000));
}

#[test]
fn long_or_dashed_prompts_go_on_stdin() {
    let c = config(r#"{"prompt":"x"}"#);
    for prompt in ["--help me".to_string(), "x".repeat(MAX_PROMPT_ARG + 1)] {
        let cmd = cli_command(&c, &prompt, None);
        assert_eq!(cmd.args, ["-p", "--output-format", "json"]);
        assert_eq!(cmd.stdin.as_deref(), Some(prompt.as_bytes()));
    }
}

const CLI_SUCCESS: &str = r#"{"type":"result","subtype":"success","is_error":false,"duration_ms":2310,
  "num_turns":3,"result":"All good.","session_id":"0b9a4f6e-1c2d-4e5f-8a9b-0c1d2e3f4a5b",
  "total_cost_usd":0.0123,"usage":{"input_tokens":10,"cache_read_input_tokens":900,"output_tokens":42},
  "modelUsage":{"claude-3-5-haiku-20241022":{"costUSD":0.0003},"claude-sonnet-4-5-20250929":{"costUSD":0.012}}}"#;

#[test]
fn cli_success_is_parsed() {
    let c = config(r#"{"prompt":"x"}"#);
    let answer = interpret_cli(Some(0), false, CLI_SUCCESS, "", &c).unwrap();
    assert_eq!(answer.text, "All good.");
    assert_eq!(
        answer.session_id.as_deref(),
        Some("0b9a4f6e-1c2d-4e5f-8a9b-0c1d2e3f4a5b")
    );
    assert_eq!(answer.model.as_deref(), Some("claude-sonnet-4-5-20250929"));
    assert_eq!((answer.input_tokens, answer.output_tokens), (Some(10), Some(42)));
    assert_eq!(answer.cost_usd, Some(0.0123));
    assert_eq!(answer.num_turns, Some(3));
    // A configured model is reported as given; noise before the object is tolerated.
    let c = config(r#"{"prompt":"x","model":"opus"}"#);
    let noisy = format!("warning: something\n{}", CLI_SUCCESS.replace('\n', ""));
    let answer = interpret_cli(Some(0), false, &noisy, "", &c).unwrap();
    assert_eq!(answer.model.as_deref(), Some("opus"));
}

#[test]
fn cli_errors_are_failures() {
    let c = config(r#"{"prompt":"x"}"#);
    let stdout = r#"{"type":"result","subtype":"success","is_error":true,"result":"Invalid API key · Please run /login","session_id":"s"}"#;
    let f = interpret_cli(Some(1), false, stdout, "", &c).unwrap_err();
    assert_eq!(
        f.message,
        "Claude Code reported an error: Invalid API key · Please run /login"
    );
    assert!(!f.retry_fresh);

    let stdout = r#"{"type":"result","subtype":"error_max_turns","is_error":false,"num_turns":5,"session_id":"s"}"#;
    let f = interpret_cli(Some(0), false, stdout, "", &c).unwrap_err();
    assert!(
        f.message.contains("`error_max_turns` after 5 turns") && f.message.contains("max_turns"),
        "{}",
        f.message
    );

    let stdout = r#"{"type":"result","subtype":"error_during_execution","is_error":true,"errors":["No conversation found with session ID: abc"]}"#;
    let f = interpret_cli(Some(1), false, stdout, "", &c).unwrap_err();
    assert!(f.message.contains("No conversation found"), "{}", f.message);
    assert!(f.retry_fresh);
}

#[test]
fn cli_bad_output_exit_and_timeout() {
    let c = config(r#"{"prompt":"x","timeout_minutes":2}"#);
    let f = interpret_cli(Some(0), false, "Here is my answer, not JSON", "", &c).unwrap_err();
    assert!(
        f.message.contains("not its JSON result object") && f.message.contains("Here is my answer"),
        "{}",
        f.message
    );
    assert!(!f.retry_fresh);
    let f = interpret_cli(Some(0), false, r#"{"type":"assistant"}"#, "", &c).unwrap_err();
    assert!(f.message.contains("`assistant`"), "{}", f.message);
    assert!(
        interpret_cli(Some(0), false, "", "", &c)
            .unwrap_err()
            .message
            .contains("printed nothing")
    );

    let stderr: String = (0..20).map(|i| format!("err{i}\n")).collect();
    let f = interpret_cli(Some(1), false, "", &stderr, &c).unwrap_err();
    assert!(
        f.message.starts_with("Claude Code exited with code 1\n"),
        "{}",
        f.message
    );
    assert!(
        f.message.ends_with("err19") && !f.message.contains("err9\n"),
        "{}",
        f.message
    );
    assert!(f.retry_fresh);

    let f = interpret_cli(None, true, "", "", &c).unwrap_err();
    assert_eq!(f.message, "Claude Code timed out after 2 minutes");
    assert!(!f.retry_fresh);
}

// --- API ---

#[test]
fn messages_request_body() {
    let body = messages_body("claude-sonnet-4-5", 4096, None, "Hi");
    assert_eq!(
        body,
        json!({"model":"claude-sonnet-4-5","max_tokens":4096,"messages":[{"role":"user","content":"Hi"}]})
    );
    let body = messages_body("m", 10, Some("Be brief."), "Hi");
    assert_eq!(body["system"], "Be brief.");
}

#[test]
fn messages_response_text_blocks_are_joined() {
    let body = r#"{"id":"msg_1","type":"message","role":"assistant","model":"claude-sonnet-4-5-20250929",
        "content":[{"type":"text","text":"Hello, "},{"type":"tool_use","id":"t","name":"x","input":{}},
                   {"type":"thinking","thinking":"hmm"},{"type":"text","text":"world."}],
        "stop_reason":"end_turn","usage":{"input_tokens":12,"output_tokens":5}}"#;
    let answer = parse_messages_response(body).unwrap();
    assert_eq!(answer.text, "Hello, world.");
    assert_eq!(answer.model.as_deref(), Some("claude-sonnet-4-5-20250929"));
    assert_eq!((answer.input_tokens, answer.output_tokens), (Some(12), Some(5)));
    assert_eq!(answer.stop_reason.as_deref(), Some("end_turn"));
    assert!(parse_messages_response("<html>").unwrap_err().contains("<html>"));
    assert!(
        parse_messages_response(r#"{"type":"message"}"#)
            .unwrap_err()
            .contains("no `content`")
    );
}

#[test]
fn api_error_messages() {
    let body = r#"{"type":"error","error":{"type":"authentication_error","message":"invalid x-api-key"}}"#;
    assert_eq!(
        api_error_message(401, body),
        "the Messages API refused the API key (authentication_error: invalid x-api-key)"
    );
    let body = r#"{"type":"error","error":{"type":"invalid_request_error","message":"max_tokens: too big"}}"#;
    assert_eq!(
        api_error_message(400, body),
        "the Messages API answered 400 (invalid_request_error: max_tokens: too big)"
    );
    assert_eq!(api_error_message(502, ""), "the Messages API answered 502 (no details)");
    assert_eq!(
        api_error_message(502, "Bad gateway"),
        "the Messages API answered 502 (Bad gateway)"
    );
}

#[test]
fn retry_delays() {
    let s = Duration::from_secs;
    // Exponential backoff without retry-after.
    assert_eq!(retry_delay(529, None, 0), Some(s(1)));
    assert_eq!(retry_delay(529, None, 1), Some(s(2)));
    assert_eq!(retry_delay(429, None, 2), Some(s(4)));
    assert_eq!(retry_delay(429, None, 10), Some(s(60)));
    // retry-after honoured, capped at 60 s; unparsable falls back to backoff.
    assert_eq!(retry_delay(429, Some("7"), 0), Some(s(7)));
    assert_eq!(retry_delay(429, Some(" 1.5 "), 0), Some(Duration::from_millis(1500)));
    assert_eq!(retry_delay(429, Some("3600"), 0), Some(s(60)));
    assert_eq!(retry_delay(429, Some("Wed, 21 Oct 2015 07:28:00 GMT"), 1), Some(s(2)));
    assert_eq!(retry_delay(429, Some("-1"), 0), Some(s(1)));
    // Server errors: twice at most.
    assert_eq!(retry_delay(503, None, 0), Some(s(1)));
    assert_eq!(retry_delay(500, None, 1), Some(s(2)));
    assert_eq!(retry_delay(502, None, 2), None);
    // Never: client errors, auth, success.
    for status in [200, 400, 401, 403, 404, 413, 504] {
        assert_eq!(retry_delay(status, Some("1"), 0), None, "{status}");
    }
}

// --- outputs ---

#[test]
fn json_answer_keys_become_outputs() {
    let text = r#"{"verdict":"approve","score":8,"issues":[{"line":3,"msg":"typo"}],"ok":true,"none":null}"#;
    let (named, skipped) = json_outputs(&answer_object(text).unwrap());
    let mut named = named;
    named.sort();
    assert_eq!(
        named,
        vec![
            ("issues".to_string(), r#"[{"line":3,"msg":"typo"}]"#.to_string()),
            ("none".to_string(), "null".to_string()),
            ("ok".to_string(), "true".to_string()),
            ("score".to_string(), "8".to_string()),
            ("verdict".to_string(), "approve".to_string()),
        ]
    );
    assert!(skipped.is_empty());
}

#[test]
fn fenced_json_after_prose() {
    let text = "Here is my review.\n\n```python\n{\"not\": \"this\"}\n```\n\n```json\n[1, 2]\n```\n\n```JSON\n{\n  \"verdict\": \"changes\",\n  \"details\": {\"a\": [1, 2]}\n}\n```\n\n```json\n{\"second\": 1}\n```\nThanks.";
    let object = answer_object(text).unwrap();
    let (named, _) = json_outputs(&object);
    let mut named = named;
    named.sort();
    assert_eq!(
        named,
        vec![
            ("details".to_string(), r#"{"a":[1,2]}"#.to_string()),
            ("verdict".to_string(), "changes".to_string()),
        ]
    );
    assert!(answer_object("Just prose, no JSON.").is_none());
    assert!(answer_object("[1, 2, 3]").is_none());
    assert!(answer_object("```json\n{\"unclosed\": true}").is_some());
    assert!(answer_object("````json\n{\"a\": \"```\"}\n````").is_some());
}

#[test]
fn illegal_and_reserved_keys_are_skipped() {
    let text = r#"{"raw_output":"x","session_id":"y","model":"z","cost_usd":1,"backend":"b",
        "input_tokens":1,"output_tokens":2,"with-dash":1,"9lives":1,"":1,"a.b":1,"_ok":1,"Ok2":"v"}"#;
    let (named, skipped) = json_outputs(&answer_object(text).unwrap());
    let mut names: Vec<&str> = named.iter().map(|(n, _)| n.as_str()).collect();
    names.sort();
    assert_eq!(names, ["Ok2", "_ok"]);
    assert_eq!(skipped.len(), 11);
    assert!(
        skipped
            .iter()
            .any(|s| s.contains("`raw_output` is one of the step's own outputs"))
    );
    assert!(skipped.iter().any(|s| s.contains("`with-dash` is not a simple name")));
}

#[test]
fn step_output_of_an_answer() {
    let answer = Answer {
        text: "```json\n{\"verdict\":\"ok\",\"model\":\"fake\"}\n```".into(),
        session_id: Some("s-1".into()),
        model: Some("claude-sonnet-4-5".into()),
        input_tokens: Some(10),
        output_tokens: Some(20),
        cost_usd: Some(0.5),
        ..Answer::default()
    };
    let (out, skipped) = build_output(&answer, Backend::Cli);
    assert_eq!(out.raw_output, answer.text);
    assert_eq!(output(&out, "backend"), Some("cli"));
    assert_eq!(output(&out, "session_id"), Some("s-1"));
    assert_eq!(output(&out, "model"), Some("claude-sonnet-4-5"));
    assert_eq!(output(&out, "input_tokens"), Some("10"));
    assert_eq!(output(&out, "output_tokens"), Some("20"));
    assert_eq!(output(&out, "cost_usd"), Some("0.5"));
    assert_eq!(output(&out, "verdict"), Some("ok"));
    assert_eq!(out.outputs.iter().filter(|(n, _)| n == "model").count(), 1);
    assert_eq!(skipped.len(), 1);

    let (out, _) = build_output(
        &Answer {
            text: "plain".into(),
            ..Answer::default()
        },
        Backend::Api,
    );
    assert_eq!(out.raw_output, "plain");
    assert_eq!(out.outputs, vec![("backend".to_string(), "api".to_string())]);
}
