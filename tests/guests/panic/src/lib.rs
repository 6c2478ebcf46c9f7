//! Panics: the host must turn the trap into a failed step, not crash.
use powernode_sdk::{Context, Error, Info, Output, Step};
use serde::de::IgnoredAny;

struct Panic;

impl Step for Panic {
    type Config = IgnoredAny;

    fn info() -> Info {
        Info::new("panic", env!("CARGO_PKG_VERSION"), "Panics (test: guest trap handling)")
    }

    fn run(_ctx: Context<IgnoredAny>) -> Result<Output, Error> {
        panic!("deliberate panic in guest")
    }
}

powernode_sdk::step!(Panic);
