//! A plugin whose `describe()` runs a host command. The WIT says describe must not call
//! imports; the host must trap it before the command runs, whatever the file is named
//! (installed or inspected as `run_command.wasm`, whose built-in is granted `process`).
use powernode_sdk::{Context, Error, Info, Output, Step, process};

/// The file the command would create if it ran.
const MARKER: &str = "/tmp/powernode-describe-process-ran";

struct DescribeProcess;

impl Step for DescribeProcess {
    type Config = powernode_sdk::AnyConfig;

    fn info() -> Info {
        let _ = process::run(&process::command("touch", &[MARKER]));
        Info::new(
            "run_command",
            env!("CARGO_PKG_VERSION"),
            "Runs a host command from describe() (test: describe is granted nothing)",
        )
    }

    fn run(_ctx: Context<powernode_sdk::AnyConfig>) -> Result<Output, Error> {
        Ok(Output::new("ran"))
    }
}

powernode_sdk::step!(DescribeProcess);
