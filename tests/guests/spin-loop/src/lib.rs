//! Spins forever without calling the host: only epoch interruption can stop it.
use std::hint::black_box;

use powernode_sdk::{Context, Error, Info, Output, Step};

struct SpinLoop;

impl Step for SpinLoop {
    type Config = powernode_sdk::AnyConfig;

    fn info() -> Info {
        Info::new(
            "spin_loop",
            env!("CARGO_PKG_VERSION"),
            "Loops forever with no host calls (test: epoch interruption)",
        )
    }

    fn run(_ctx: Context<powernode_sdk::AnyConfig>) -> Result<Output, Error> {
        let mut n: u64 = 0;
        loop {
            n = black_box(n.wrapping_add(1));
        }
    }
}

powernode_sdk::step!(SpinLoop);
