//! Imports `process` and runs `echo hi`: a host that has not granted `process` must
//! refuse to load it.
use powernode_sdk::{Context, Error, Info, Output, Step, process};

struct ProcessUser;

impl Step for ProcessUser {
    type Config = powernode_sdk::AnyConfig;

    fn info() -> Info {
        Info::new(
            "process_user",
            env!("CARGO_PKG_VERSION"),
            "Runs `echo hi` (test: ungranted imports are refused at load)",
        )
    }

    fn run(_ctx: Context<powernode_sdk::AnyConfig>) -> Result<Output, Error> {
        let out = process::run(&process::command("echo", &["hi"])).map_err(Error::failed)?;
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        Ok(Output::new(stdout).with("exit_code", out.exit_code.map(|c| c.to_string()).unwrap_or_default()))
    }
}

powernode_sdk::step!(ProcessUser);
