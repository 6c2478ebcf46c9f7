//! Stores `size` bytes made in memory as artifact `name` with `artifacts.store-bytes` (test:
//! the bytes are kept with their digest; a bad name or a run over its quota fails the step).
use powernode_sdk::{Context, Error, Info, Output, Step, artifacts};
use serde::Deserialize;

#[derive(Deserialize, schemars::JsonSchema)]
struct Config {
    name: String,
    size: usize,
}

struct ArtifactBytes;

impl Step for ArtifactBytes {
    type Config = Config;

    fn info() -> Info {
        Info::new(
            "artifact_bytes",
            env!("CARGO_PKG_VERSION"),
            "Stores config.size bytes as artifact config.name (test: artifacts.store-bytes)",
        )
    }

    fn run(ctx: Context<Config>) -> Result<Output, Error> {
        let content: Vec<u8> = (0..ctx.config.size).map(|i| b'a' + (i % 26) as u8).collect();
        let artifact = artifacts::store_bytes(&ctx.config.name, &content).map_err(Error::failed)?;
        Ok(Output::new(artifact.name)
            .with("size", artifact.size)
            .with("sha256", artifact.sha256))
    }
}

powernode_sdk::step!(ArtifactBytes);
