//! Panics: the host must turn the trap into a failed step, not crash.
use powernode_sdk::{Context, Error, Info, Output, Step};

struct Panic;

impl Step for Panic {
    type Config = powernode_sdk::AnyConfig;

    fn info() -> Info {
        Info::new("panic", env!("CARGO_PKG_VERSION"), "Panics (test: guest trap handling)")
    }

    fn run(_ctx: Context<powernode_sdk::AnyConfig>) -> Result<Output, Error> {
        panic!("deliberate panic in guest")
    }
}

powernode_sdk::step!(Panic);
