//! `powernode plugin inspect`: what a plugin says it is, what it imports, what it is granted.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;

use crate::policy::check_imports;

use super::Host;

/// Arguments of `powernode plugin inspect`.
#[derive(Debug, clap::Args)]
pub struct InspectArgs {
    /// The component file.
    file: PathBuf,
    /// Config file (TOML) whose grants to check the plugin against.
    #[arg(long, short)]
    config: Option<PathBuf>,
}

pub(super) async fn inspect(args: InspectArgs) -> anyhow::Result<ExitCode> {
    let host = Host::open(args.config.as_deref())?;
    let wasm = std::fs::read(&args.file).with_context(|| format!("cannot read `{}`", args.file.display()))?;
    let origin = args.file.display().to_string();
    let stem = args
        .file
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or_default()
        .to_string();
    // describe() runs with the grant of the type the file would be installed as.
    let grant = host.catalog.grants().for_plugin(&stem);
    let plugin = host.catalog.runtime().load_unchecked(&origin, &wasm, grant).await?;
    let info = &plugin.info;
    println!("step type:  {}", info.name);
    println!("version:    {}", info.version);
    println!("summary:    {}", info.summary);
    println!("sha256:     {}", plugin.sha256);
    println!("imports:");
    for import in &plugin.imports {
        println!("  {import}");
    }
    let granted = host.catalog.grants().for_plugin(&info.name);
    let caps: Vec<&str> = granted.capabilities().map(|c| c.name()).collect();
    println!("granted to `{}` by this config: {}", info.name, caps.join(", "));
    if !info.config_schema.is_empty() {
        println!("config schema: {}", info.config_schema);
    }
    match check_imports(&info.name, &plugin.imports, &granted) {
        Ok(()) => {
            println!("loadable: yes");
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            println!("loadable: no\n{e}");
            Ok(ExitCode::FAILURE)
        }
    }
}
