//! A complete custom step: greets someone and says how long the name is.
//! Build: `cargo build --release --target wasm32-wasip2` in this folder.
use powernode_sdk::{Context, Error, Info, Output, Step, log};
use serde::Deserialize;

#[derive(Deserialize, schemars::JsonSchema)]
struct Config {
    name: String,
}

struct Hello;

impl Step for Hello {
    type Config = Config;

    fn info() -> Info {
        Info::new("hello", "0.1.0", "Greets someone by name")
    }

    fn run(ctx: Context<Config>) -> Result<Output, Error> {
        if ctx.config.name.is_empty() {
            return Err(Error::config("`name` must not be empty"));
        }
        log::info(&format!("greeting {}", ctx.config.name));
        Ok(Output::new(format!("Hello, {}!", ctx.config.name)).with("length", ctx.config.name.len()))
    }
}

powernode_sdk::step!(Hello);

#[cfg(test)]
mod tests {
    use powernode_sdk::testing::FakeHost;
    use serde_json::json;

    use super::Hello;

    #[test]
    fn greets_by_name_and_logs_it() {
        let run = FakeHost::new().run::<Hello>(json!({"name": "Ada"}));
        assert_eq!(run.output().raw_output, "Hello, Ada!");
        assert_eq!(run.named("length"), Some("3"));
        assert!(run.logged("greeting Ada"), "log: {}", run.log_text());
    }

    #[test]
    fn an_empty_name_is_a_config_error() {
        let run = FakeHost::new().run::<Hello>(json!({"name": ""}));
        assert!(matches!(run.error(), powernode_sdk::Error::InvalidConfig(m) if m.contains("`name`")));
        assert!(run.logs.is_empty());
    }

    #[test]
    fn a_missing_name_is_refused_as_the_host_would() {
        let run = FakeHost::new().run::<Hello>(json!({}));
        assert!(matches!(run.error(), powernode_sdk::Error::InvalidConfig(m) if m.contains("missing field `name`")));
    }
}
