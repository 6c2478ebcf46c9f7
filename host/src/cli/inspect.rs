//! `powernode plugin inspect`: what a plugin says it is, what it imports, what it is granted.

use std::path::PathBuf;
use std::process::ExitCode;

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
    // Inspecting writes nothing: the store (and so the compile cache) is a temporary one,
    // not the config's data directory (which, without a config, was ./powernode-data).
    let mut config = crate::config::Config::load(args.config.as_deref())?;
    let temp = tempfile::Builder::new().prefix("powernode-inspect-").tempdir()?;
    config.data_dir = temp.path().to_path_buf();
    let host = Host::from_config(config, args.config.as_deref(), false)?;
    let inspection = host.catalog.inspect(&args.file).await?;
    let plugin = &inspection.plugin;
    let info = &plugin.info;
    println!("step type:  {}", info.name);
    println!("version:    {}", info.version);
    println!("summary:    {}", info.summary);
    println!("sha256:     {}", plugin.sha256);
    println!("imports:");
    for import in &plugin.imports {
        println!("  {import}");
    }
    let caps: Vec<&str> = inspection.granted.capabilities().map(|c| c.name()).collect();
    println!("granted to `{}` by this config: {}", info.name, caps.join(", "));
    if !info.config_schema.is_empty() {
        println!("config schema: {}", info.config_schema);
    }
    match &inspection.verdict {
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
