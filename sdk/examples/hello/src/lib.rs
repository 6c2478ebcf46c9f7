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
