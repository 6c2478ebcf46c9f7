//! Prints 100-byte lines to WASI stdout forever: the host must bound or discard stdout.
use powernode_sdk::{Context, Error, Info, Output, Step};
use serde::de::IgnoredAny;

struct StdoutFlood;

impl Step for StdoutFlood {
    type Config = IgnoredAny;

    fn info() -> Info {
        Info::new(
            "stdout_flood",
            env!("CARGO_PKG_VERSION"),
            "Prints to stdout forever (test: stdout bound)",
        )
    }

    fn run(_ctx: Context<IgnoredAny>) -> Result<Output, Error> {
        // 99 characters plus the newline.
        let line = "y".repeat(99);
        loop {
            println!("{line}");
        }
    }
}

powernode_sdk::step!(StdoutFlood);
