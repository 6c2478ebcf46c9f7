//! A step built against the previous contract, `powernode:step@0.1.0` (its WIT is kept in
//! `wit/`): a host serving a later 0.1.x (0.1.3) must still load and run it, since 0.1.x
//! changes are additive. It logs, round-trips a kv value and asks `provider` for the
//! repository (an interface later versions grew): calls that exist in every version.

wit_bindgen::generate!({
    path: "wit",
    world: "powernode:step/forge",
    generate_all,
});

use exports::powernode::step::handler::{Guest, StepContext, StepError, StepInfo, StepOutput};
use powernode::step::{kv, log, provider};

struct WitPrev;

impl Guest for WitPrev {
    fn describe() -> StepInfo {
        StepInfo {
            name: "wit_prev".into(),
            version: "0.1.0".into(),
            summary: "A step built against powernode:step@0.1.0 (test: additive versions)".into(),
            config_schema: String::new(),
        }
    }

    fn run(ctx: StepContext) -> Result<StepOutput, StepError> {
        log::log(log::Level::Info, &format!("step {} built for 0.1.0", ctx.step));
        kv::set("seen", b"yes").map_err(StepError::Failed)?;
        let back = kv::get("seen").map_err(StepError::Failed)?.unwrap_or_default();
        let repo = match provider::get_repository() {
            Ok(r) => r.full_name,
            Err(_) => "no forge".into(),
        };
        log::log(log::Level::Info, &format!("provider answered: {repo}"));
        Ok(StepOutput {
            raw_output: String::from_utf8_lossy(&back).into_owned(),
            outputs: vec![],
        })
    }
}

export!(WitPrev);
