//! Recurses without bound (not a tail call): the call stack must trap, not the host.
use std::hint::black_box;

use powernode_sdk::{Context, Error, Info, Output, Step};

/// Never returns normally: the base case needs `n == stop`, and `stop` is `u64::MAX`,
/// hidden from the optimizer. The frame keeps nothing in linear memory (no shadow-stack
/// use), so the wasm call stack itself overflows: wasmtime's `call stack exhausted`.
#[inline(never)]
fn depth(n: u64, stop: u64) -> u64 {
    if n == stop {
        return 0;
    }
    let below = depth(n + 1, stop);
    // Uses the result after the call in a way LLVM cannot turn into an accumulator loop.
    below ^ (below >> 7) ^ n
}

struct DeepRecursion;

impl Step for DeepRecursion {
    type Config = powernode_sdk::AnyConfig;

    fn info() -> Info {
        Info::new(
            "deep_recursion",
            env!("CARGO_PKG_VERSION"),
            "Recurses without bound (test: stack overflow trap)",
        )
    }

    fn run(_ctx: Context<powernode_sdk::AnyConfig>) -> Result<Output, Error> {
        let d = black_box(depth(black_box(0), black_box(u64::MAX)));
        Ok(Output::new(format!("recursion returned {d}")))
    }
}

powernode_sdk::step!(DeepRecursion);
