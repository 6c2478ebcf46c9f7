//! Recurses without bound (not a tail call): the call stack must trap, not the host.
use std::hint::black_box;

use powernode_sdk::{Context, Error, Info, Output, Step};
use serde::de::IgnoredAny;

/// Never returns normally: the base case needs `n == u64::MAX`, which the stack can't reach.
#[inline(never)]
fn depth(n: u64) -> u64 {
    if black_box(n) == u64::MAX {
        return 0;
    }
    // black_box on the result keeps LLVM from turning this into a loop with an accumulator.
    black_box(depth(n + 1)).wrapping_add(n)
}

struct DeepRecursion;

impl Step for DeepRecursion {
    type Config = IgnoredAny;

    fn info() -> Info {
        Info::new(
            "deep_recursion",
            env!("CARGO_PKG_VERSION"),
            "Recurses without bound (test: stack overflow trap)",
        )
    }

    fn run(_ctx: Context<IgnoredAny>) -> Result<Output, Error> {
        let d = depth(black_box(0));
        Ok(Output::new(format!("recursion returned {d}")))
    }
}

powernode_sdk::step!(DeepRecursion);
