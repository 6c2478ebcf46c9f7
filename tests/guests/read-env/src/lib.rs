//! Reports any environment variable the host lets the guest see. The expected result is
//! `Failed("no environment visible")`: the host's environment must not leak in.
use powernode_sdk::{Context, Error, Info, Output, Step};

struct ReadEnv;

impl Step for ReadEnv {
    type Config = powernode_sdk::AnyConfig;

    fn info() -> Info {
        Info::new(
            "read_env",
            env!("CARGO_PKG_VERSION"),
            "Lists visible environment variables and arguments (test: no env leak)",
        )
    }

    fn run(_ctx: Context<powernode_sdk::AnyConfig>) -> Result<Output, Error> {
        let vars: Vec<(String, String)> = std::env::vars().collect();
        let args: Vec<String> = std::env::args().collect();
        if vars.is_empty() {
            return Err(Error::failed("no environment visible"));
        }
        let mut lines: Vec<String> = vars.iter().map(|(k, v)| format!("{k}={v}")).collect();
        lines.push(format!("args: {args:?}"));
        Ok(Output::new(lines.join("\n"))
            .with("var_count", vars.len())
            .with("arg_count", args.len()))
    }
}

powernode_sdk::step!(ReadEnv);
