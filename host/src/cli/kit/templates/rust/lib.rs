//! The step `{{name}}`: greets `config.name`. Build with `powernode plugin build`, test with
//! `cargo test`, try with `powernode step run {{name}}.wasm --config '{"name": "Ada"}'`.
use powernode_sdk::{Context, Error, Info, Output, Step, log};
use serde::Deserialize;

/// The step's `config` block; its JSON Schema is what pipelines are checked against.
#[derive(Deserialize, schemars::JsonSchema)]
pub struct Config {
    /// Who to greet.
    pub name: String,
}

/// The step.
pub struct {{type_name}};

impl Step for {{type_name}} {
    type Config = Config;

    fn info() -> Info {
        Info::new("{{name}}", "0.1.0", "Greets config.name")
    }

    fn run(ctx: Context<Config>) -> Result<Output, Error> {
        if ctx.config.name.is_empty() {
            return Err(Error::config("`name` must not be empty"));
        }
        log::info(&format!("greeting {}", ctx.config.name));
        Ok(Output::new(format!("hello, {}", ctx.config.name)).with("length", ctx.config.name.len()))
    }
}

powernode_sdk::step!({{type_name}});

#[cfg(test)]
mod tests {
    use powernode_sdk::testing::FakeHost;
    use serde_json::json;

    use super::{{type_name}};

    #[test]
    fn greets_by_name_and_logs_it() {
        let run = FakeHost::new().run::<{{type_name}}>(json!({"name": "Ada"}));
        assert_eq!(run.output().raw_output, "hello, Ada");
        assert_eq!(run.named("length"), Some("3"));
        assert!(run.logged("greeting Ada"), "log: {}", run.log_text());
    }

    #[test]
    fn an_empty_name_is_a_config_error() {
        let run = FakeHost::new().run::<{{type_name}}>(json!({"name": ""}));
        assert!(matches!(run.error(), powernode_sdk::Error::InvalidConfig(m) if m.contains("`name`")));
    }
}
