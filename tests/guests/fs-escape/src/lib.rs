//! Tries to read host files outside the workspace. Ok (with the content) means a leak;
//! the expected result is `Failed` listing each attempt's error.
use powernode_sdk::{Context, Error, Info, Output, Step};

/// Paths that must all fail: absolute, climbing out of the current directory, and
/// climbing out of the `/workspace` preopen.
const ATTEMPTS: [&str; 3] = ["/etc/passwd", "../../../../etc/passwd", "/workspace/../../etc/passwd"];

struct FsEscape;

impl Step for FsEscape {
    type Config = powernode_sdk::AnyConfig;

    fn info() -> Info {
        Info::new(
            "fs_escape",
            env!("CARGO_PKG_VERSION"),
            "Tries to read /etc/passwd from outside the workspace (test: filesystem sandbox)",
        )
    }

    fn run(_ctx: Context<powernode_sdk::AnyConfig>) -> Result<Output, Error> {
        let mut errors = Vec::new();
        for path in ATTEMPTS {
            match std::fs::read_to_string(path) {
                Ok(content) => {
                    return Ok(Output::new(content).with("leaked_path", path));
                }
                Err(e) => errors.push(format!("{path}: {e}")),
            }
        }
        Err(Error::Failed(format!("every escape failed: {}", errors.join("; "))))
    }
}

powernode_sdk::step!(FsEscape);
