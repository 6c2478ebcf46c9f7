//! The command line: argument parsing and the glue between commands and the library.

mod client;
mod init;
mod inspect;
mod kit;
mod run;
mod serve;
mod step;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::{Parser, Subcommand};

use crate::catalog::Catalog;
use crate::config::{Config, LogFormat};
use crate::pipeline::{Diagnostics, Pipeline};
use crate::runtime::Runtime;
use crate::services::Services;
use crate::store::{Artifacts, SledStore, Store};

/// Powernode: CI/CD pipelines whose steps are sandboxed WebAssembly plugins.
#[derive(Debug, Parser)]
#[command(name = "powernode", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Set up a folder to run a server in: config, pipelines, generated secrets.
    Init(init::InitArgs),
    /// Run the server: webhooks in, runs recorded durably.
    Serve {
        /// Config file (TOML); without one, ./powernode.toml if it is there, else defaults
        /// (and a getting-started page at /).
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// Listen on this address instead of the config's `listen` (`127.0.0.1:0`: any free port).
        #[arg(long)]
        listen: Option<String>,
    },
    /// Run a pipeline on this machine in a temporary workspace.
    Run(run::RunArgs),
    /// Check pipeline files without running them.
    Validate {
        /// Pipeline files.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Config file (TOML): plugins directory and secrets.
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
    /// Look at plugins; write and build your own.
    #[command(subcommand)]
    Plugin(PluginCommand),
    /// List a server's runs, newest first.
    Runs(client::RunsArgs),
    /// Print a run's log; with --follow, stream it and exit with the run's result.
    Logs(client::LogsArgs),
    /// Start a run of a pipeline on a server.
    Trigger(client::TriggerArgs),
    /// Cancel a run on a server.
    Cancel {
        /// The run's id.
        run: String,
        #[command(flatten)]
        server: client::ServerArgs,
    },
    /// Run a run's pipeline again for the same trigger.
    Rerun {
        /// The run's id.
        run: String,
        #[command(flatten)]
        server: client::ServerArgs,
    },
    /// Pipelines on a server.
    #[command(subcommand)]
    Pipelines(client::PipelinesCommand),
    /// Work on one step alone.
    #[command(subcommand)]
    Step(step::StepCommand),
}

#[derive(Debug, Subcommand)]
enum PluginCommand {
    /// Print a plugin's describe() info, its imports and what the config grants it.
    Inspect(inspect::InspectArgs),
    /// List the step types available: built-ins and the plugins directory.
    List {
        /// Config file (TOML).
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
    /// Write a new step project (Rust, Python or JavaScript) ready to build and test.
    New(kit::NewArgs),
    /// Build a step project of `plugin new` into `NAME.wasm` in its folder.
    Build(kit::BuildArgs),
}

/// Entry point of the binary.
pub fn main() -> ExitCode {
    // Inside a sandbox, as its egress relay: before anything else, with nothing else set up.
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some(crate::sandbox::relay::SUBCOMMAND) {
        return match (args.get(2), args.get(3).map(String::as_str), args.get(4)) {
            (Some(socket), Some("--"), Some(program)) => {
                crate::sandbox::relay::main(socket.into(), program, &args[5..])
            }
            _ => {
                eprintln!(
                    "usage: powernode {} SOCKET -- PROGRAM [ARGS...]",
                    crate::sandbox::relay::SUBCOMMAND
                );
                ExitCode::from(2)
            }
        };
    }
    let cli = Cli::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_env("POWERNODE_LOG").unwrap_or_else(|_| "warn".into());
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if log_format(&cli.command) == LogFormat::Json {
        logs.json().with_current_span(true).with_span_list(false).init();
    } else {
        logs.with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .init();
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    match runtime.block_on(dispatch(cli.command)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

/// The `log_format` of the command's config file; text when there is none, or when the file
/// cannot be read (the command then reports why).
fn log_format(command: &Command) -> LogFormat {
    let path = match command {
        Command::Serve { config, .. } => serve::config_path(config.as_deref()),
        Command::Run(args) => args.config().map(PathBuf::from),
        Command::Step(step::StepCommand::Run(args)) => args.host_config().map(PathBuf::from),
        _ => None,
    };
    path.as_deref()
        .and_then(|p| Config::load(Some(p)).ok())
        .map_or(LogFormat::Text, |c| c.log_format)
}

async fn dispatch(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Init(args) => init::init(args),
        Command::Serve { config, listen } => {
            serve::serve(serve::config_path(config.as_deref()).as_deref(), listen).await
        }
        Command::Run(args) => run::run(args).await,
        Command::Validate { files, config } => validate(&files, config.as_deref()).await,
        Command::Plugin(PluginCommand::Inspect(args)) => inspect::inspect(args).await,
        Command::Plugin(PluginCommand::List { config }) => list(config.as_deref()).await,
        Command::Plugin(PluginCommand::New(args)) => kit::new(args),
        Command::Plugin(PluginCommand::Build(args)) => kit::build(args),
        Command::Runs(args) => Ok(client::finish(client::runs::list(args).await)),
        Command::Logs(args) => Ok(client::finish(client::logs::logs(args).await)),
        Command::Trigger(args) => Ok(client::finish(client::runs::trigger(args).await)),
        Command::Cancel { run, server } => Ok(client::finish(client::runs::cancel(run, server).await)),
        Command::Rerun { run, server } => Ok(client::finish(client::runs::rerun(run, server).await)),
        Command::Pipelines(command) => Ok(client::finish(client::pipelines::pipelines(command).await)),
        Command::Step(step::StepCommand::Run(args)) => step::run(args).await,
    }
}

/// Makes the config's folders absolute. Relative ones are the starting folder's, and run
/// workspaces under `data_dir` are mounted into the sandbox at their own path.
pub(crate) fn absolute_dirs(config: &mut Config) -> anyhow::Result<()> {
    let artifacts = config.store.artifacts.dir.as_mut();
    for dir in [&mut config.data_dir, &mut config.plugins_dir]
        .into_iter()
        .chain(artifacts)
    {
        *dir = std::path::absolute(&*dir).with_context(|| format!("resolving `{}`", dir.display()))?;
    }
    Ok(())
}

/// Config, store, runtime and catalog, as every command that runs plugins needs them.
pub(crate) struct Host {
    pub config: Config,
    /// This node's embedded store (and, embedded, everything's).
    pub store: Arc<SledStore>,
    /// The store the nodes share: `store` itself, or PostgreSQL.
    pub shared: Arc<dyn Store>,
    pub catalog: Arc<Catalog>,
    /// The config file's folder, if a file was given: no workspace may hold it.
    config_dir: Option<PathBuf>,
}

impl Host {
    /// The config, store and catalog, for commands that run no step: commands are not confined.
    pub(crate) fn open(config_path: Option<&std::path::Path>) -> anyhow::Result<Host> {
        Host::open_with(config_path, false)
    }

    /// [`Host::open`] for commands that run steps: the sandbox is set up (and checked) as the
    /// config says, so a server whose commands cannot be confined does not start.
    pub(crate) fn open_for_runs(config_path: Option<&std::path::Path>) -> anyhow::Result<Host> {
        Host::open_with(config_path, true)
    }

    fn open_with(config_path: Option<&std::path::Path>, runs: bool) -> anyhow::Result<Host> {
        Host::from_config(Config::load(config_path)?, config_path, runs)
    }

    /// [`Host::open_for_runs`] with a config already loaded (and perhaps changed) from `config_path`.
    pub(crate) fn from_config(
        config: Config,
        config_path: Option<&std::path::Path>,
        runs: bool,
    ) -> anyhow::Result<Host> {
        Host::with_shared(config, config_path, runs, None)
    }

    /// [`Host::from_config`] whose plugins share `shared` (PostgreSQL) instead of the
    /// embedded store.
    pub(crate) fn with_shared(
        mut config: Config,
        config_path: Option<&std::path::Path>,
        runs: bool,
        shared: Option<Arc<dyn Store>>,
    ) -> anyhow::Result<Host> {
        absolute_dirs(&mut config)?;
        // The shared store's artifacts when there is one: one client for one store.
        let artifacts = match &shared {
            Some(shared) => shared.artifact_contents().clone(),
            None => Artifacts::from_config(&config.store.artifacts, &config.data_dir)
                .context("opening the artifact store of [store.artifacts]")?,
        };
        let store = SledStore::open_with(&config.data_dir, artifacts)
            .with_context(|| format!("opening the store under `{}`", config.data_dir.display()))?;
        let store = Arc::new(store);
        let shared = shared.unwrap_or_else(|| store.clone());
        let config_dir = config_path.map(|p| std::path::absolute(p).unwrap_or_else(|_| p.into()));
        let config_dir = config_dir.and_then(|p| p.parent().map(PathBuf::from));
        let sandbox = match (runs, config.process_sandbox) {
            (true, crate::sandbox::SandboxMode::Bwrap) => {
                let mut hidden = vec![config.data_dir.clone(), config.plugins_dir.clone()];
                hidden.extend(config_dir.clone());
                // Every run's artifacts: also out of reach when they live outside data_dir.
                hidden.extend(config.store.artifacts.dir.clone());
                let relay = std::env::current_exe().ok();
                let workspaces = config.data_dir.join("workspaces");
                std::fs::create_dir_all(&workspaces).with_context(|| format!("creating `{}`", workspaces.display()))?;
                crate::sandbox::Sandbox::bwrap(config.sandbox.clone(), hidden, relay, &workspaces)?
            }
            (true, crate::sandbox::SandboxMode::Off) => {
                tracing::warn!("process_sandbox = \"off\": commands steps run are not confined");
                crate::sandbox::Sandbox::off()
            }
            (false, _) => crate::sandbox::Sandbox::off(),
        };
        let services = Arc::new(Services {
            store: shared.clone(),
            local: store.clone(),
            sandbox: Arc::new(sandbox),
        });
        let runtime = Arc::new(Runtime::new(config.runtime_config(), services)?);
        let catalog = Catalog::new(runtime, config.grants()?, Some(config.plugins_dir.clone()))
            .with_trust(config.plugin_trust()?)?;
        let catalog = Arc::new(catalog);
        Ok(Host {
            config,
            store,
            shared,
            catalog,
            config_dir,
        })
    }

    /// Refuses a workspace that holds, or is inside, the data directory, the plugins
    /// directory or the config file's folder: a step writing there could plant a plugin
    /// with more grants or tamper with the store.
    pub(crate) fn check_workspace(&self, workspace: &std::path::Path) -> anyhow::Result<()> {
        let mut protected = vec![
            ("data directory", self.config.data_dir.as_path()),
            ("plugins directory", self.config.plugins_dir.as_path()),
        ];
        if let Some(dir) = &self.config.store.artifacts.dir {
            protected.push(("artifacts directory", dir.as_path()));
        }
        if let Some(dir) = &self.config_dir {
            protected.push(("config file's folder", dir.as_path()));
        }
        Ok(crate::workspace::check_apart(workspace, &protected)?)
    }
}

/// Reads and validates a pipeline file against the step types available, and against the
/// configured secrets when `secrets` is given.
pub(crate) fn load_pipeline(
    path: &std::path::Path,
    secrets: Option<&BTreeMap<String, String>>,
    step_types: &crate::pipeline::StepTypes,
) -> anyhow::Result<Pipeline> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read `{}`", path.display()))?;
    let is_secret = |s: &str| secrets.is_some_and(|m| m.contains_key(s));
    let is_secret: Option<&dyn Fn(&str) -> bool> = secrets.is_some().then_some(&is_secret);
    crate::pipeline::check(&path.display().to_string(), &text, step_types, is_secret)
        .map_err(|d: Diagnostics| anyhow::anyhow!("{d}"))
}

async fn validate(files: &[PathBuf], config_path: Option<&std::path::Path>) -> anyhow::Result<ExitCode> {
    let host = Host::open(config_path)?;
    let step_types = host.catalog.describe_types().await?;
    let config = &host.config;
    let mut ok = true;
    // Without a config file any secret name is accepted: there is nothing to check it against.
    let secrets = config_path.map(|_| &config.secrets);
    for file in files {
        match load_pipeline(file, secrets, &step_types) {
            Ok(p) => println!("{}: ok ({} steps)", file.display(), p.steps.len()),
            Err(e) => {
                ok = false;
                eprintln!("{e}");
            }
        }
    }
    Ok(if ok { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

async fn list(config_path: Option<&std::path::Path>) -> anyhow::Result<ExitCode> {
    let host = Host::open(config_path)?;
    let mut ok = true;
    for step_type in host.catalog.step_types()? {
        match host.catalog.get_vetted(&step_type).await {
            Ok((p, vetted)) => {
                let grants: Vec<&str> = p.grant.capabilities().map(|c| c.name()).collect();
                let replaces = if host.catalog.replaces_builtin(&step_type)? {
                    "  (a file replacing the built-in; granted only what the config gives it)"
                } else {
                    ""
                };
                let pinned = if vetted.pinned { "  (pinned)" } else { "" };
                let signed = vetted
                    .signed_by
                    .map(|key| format!("  (signed by {key})"))
                    .unwrap_or_default();
                println!(
                    "{:<20} {:<8} {}  [grants: {}]{replaces}{pinned}{signed}",
                    p.info.name,
                    p.info.version,
                    p.info.summary,
                    grants.join(", ")
                );
            }
            Err(e) => {
                ok = false;
                println!("{step_type:<20} REFUSED  {e}");
            }
        }
    }
    Ok(if ok { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}
