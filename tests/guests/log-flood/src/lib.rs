//! Logs 100-byte lines through the host forever: the host must bound the step log.
use powernode_sdk::{Context, Error, Info, Output, Step, log};

struct LogFlood;

impl Step for LogFlood {
    type Config = powernode_sdk::AnyConfig;

    fn info() -> Info {
        Info::new(
            "log_flood",
            env!("CARGO_PKG_VERSION"),
            "Logs forever (test: step log bound)",
        )
    }

    fn run(_ctx: Context<powernode_sdk::AnyConfig>) -> Result<Output, Error> {
        let line = "x".repeat(100);
        loop {
            log::info(&line);
        }
    }
}

powernode_sdk::step!(LogFlood);
