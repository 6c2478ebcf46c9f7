//! Returns its whole context as JSON, and `greeting` from its config as a named output:
//! lets host tests check templating, trigger data and outputs.
use powernode_sdk::{Context, Error, Info, Output, Step};
use serde_json::{Value, json};

struct EchoContext;

impl Step for EchoContext {
    type Config = Value;

    fn info() -> Info {
        Info::new(
            "echo_context",
            env!("CARGO_PKG_VERSION"),
            "Returns its context as JSON (test: templating and outputs)",
        )
    }

    fn run(ctx: Context<Value>) -> Result<Output, Error> {
        let t = &ctx.trigger;
        let r = &ctx.repository;
        let doc = json!({
            "run_id": ctx.run_id,
            "pipeline": ctx.pipeline,
            "step": ctx.step,
            "repository": {
                "provider": r.provider,
                "full_name": r.full_name,
                "default_branch": r.default_branch,
                "clone_url": r.clone_url,
            },
            "trigger": {
                "event": t.event,
                "action": t.action,
                "git_ref": t.git_ref,
                "before": t.before,
                "after": t.after,
                "head_sha": t.head_sha,
                "head_branch": t.head_branch,
                "base_sha": t.base_sha,
                "base_branch": t.base_branch,
                "number": t.number,
                "title": t.title,
                "body": t.body,
                "comment_body": t.comment_body,
                "comment_id": t.comment_id,
                "sender": t.sender,
                "is_fork": t.is_fork,
            },
            "config": ctx.config,
        });
        let mut out = Output::new(doc.to_string());
        match ctx.config.get("greeting") {
            Some(Value::String(s)) => out = out.with("greeting", s),
            Some(other) => out = out.with("greeting", other),
            None => {}
        }
        Ok(out)
    }
}

powernode_sdk::step!(EchoContext);
