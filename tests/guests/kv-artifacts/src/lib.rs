//! Increments a counter in the plugin's key-value store and stores a workspace file as
//! an artifact: exercises `kv`, `artifacts` and the WASI filesystem together.
use powernode_sdk::{Context, Error, Info, Output, Step, artifacts, kv};

struct KvArtifacts;

impl Step for KvArtifacts {
    type Config = powernode_sdk::AnyConfig;

    fn info() -> Info {
        Info::new(
            "kv_artifacts",
            env!("CARGO_PKG_VERSION"),
            "Counts runs in kv and stores out.txt as artifact `out` (test: kv and artifacts)",
        )
    }

    fn run(_ctx: Context<powernode_sdk::AnyConfig>) -> Result<Output, Error> {
        let previous = match kv::get("counter").map_err(|e| Error::failed(format!("kv get: {e}")))? {
            None => 0,
            Some(bytes) => String::from_utf8_lossy(&bytes)
                .trim()
                .parse::<u64>()
                .map_err(|e| Error::failed(format!("counter is not a number: {e}")))?,
        };
        let count = previous + 1;
        kv::set("counter", count.to_string().as_bytes()).map_err(|e| Error::failed(format!("kv set: {e}")))?;

        std::fs::write("out.txt", format!("count={count}\n"))
            .map_err(|e| Error::failed(format!("writing out.txt: {e}")))?;
        let artifact =
            artifacts::store("out", "out.txt").map_err(|e| Error::failed(format!("storing out.txt: {e}")))?;

        Ok(Output::new(format!(
            "count {count}; stored {} ({} bytes, sha256 {})",
            artifact.name, artifact.size, artifact.sha256
        ))
        .with("count", count)
        .with("sha256", artifact.sha256))
    }
}

powernode_sdk::step!(KvArtifacts);
