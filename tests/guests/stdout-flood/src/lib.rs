//! Prints 100-byte lines to WASI stdout forever: the host must bound or discard stdout.
use powernode_sdk::{Context, Error, Info, Output, Step};

struct StdoutFlood;

impl Step for StdoutFlood {
    type Config = powernode_sdk::AnyConfig;

    fn info() -> Info {
        Info::new(
            "stdout_flood",
            env!("CARGO_PKG_VERSION"),
            "Prints to stdout forever (test: stdout bound)",
        )
    }

    fn run(_ctx: Context<powernode_sdk::AnyConfig>) -> Result<Output, Error> {
        // 99 characters plus the newline.
        let line = "y".repeat(99);
        loop {
            println!("{line}");
        }
    }
}

powernode_sdk::step!(StdoutFlood);
