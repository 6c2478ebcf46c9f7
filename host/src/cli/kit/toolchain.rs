//! `powernode plugin build`: a project of `powernode plugin new` built into `NAME.wasm` in
//! its folder, with the tool its language needs (cargo, componentize-py, jco) and the flags
//! that keep its import list to what it uses. A missing tool is named with how to install it.

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::Instant;

use anyhow::Context;

use super::{Lang, Project, ProjectWorld, World};

/// Arguments of `powernode plugin build`.
#[derive(Debug, clap::Args)]
pub struct BuildArgs {
    /// The project's folder (holding `powernode-step.toml`); the current one when absent.
    dir: Option<PathBuf>,
}

/// `powernode plugin build`.
pub fn build(args: BuildArgs) -> anyhow::Result<ExitCode> {
    let dir = args.dir.unwrap_or_else(|| PathBuf::from("."));
    let project = Project::read(&dir)?;
    let out = dir.join(format!("{}.wasm", project.name));
    let started = Instant::now();
    let world = project.world.clone().unwrap_or(ProjectWorld::Packaged(World::LogOnly));
    let wit = project.wit.as_deref().unwrap_or("wit");
    match project.lang {
        Lang::Rust => build_rust(&dir, &project.name, &out)?,
        Lang::Python => run_tool(
            Command::new("componentize-py")
                .current_dir(&dir)
                .args(["-d", wit, "-w", &world.qualified()])
                .args(["componentize", "app", "-p", ".", "-o"])
                .arg(format!("{}.wasm", project.name)),
            "componentize-py",
            "install it with `pip install componentize-py==0.25.1`",
        )?,
        Lang::Js => run_tool(
            // jco reads files through a WASI view of the current directory: paths stay relative.
            Command::new(jco()?)
                .current_dir(&dir)
                .args(["componentize", "step.js", "--bundle", "-w", wit, "-n", world.short()])
                .args(js_disable_flags(&world))
                .arg("-o")
                .arg(format!("{}.wasm", project.name)),
            "jco",
            JCO_INSTALL,
        )?,
    }
    let bytes = std::fs::read(&out).with_context(|| format!("the build wrote no `{}`", out.display()))?;
    let manifest = crate::runtime::read_manifest(&bytes)
        .map_err(|e| anyhow::anyhow!("`{}` is not a component: {e}", out.display()))?;
    println!(
        "built {} ({:.1} MiB) in {:.1} s; it imports:",
        out.display(),
        bytes.len() as f64 / (1024.0 * 1024.0),
        started.elapsed().as_secs_f64()
    );
    for import in manifest
        .imports
        .iter()
        .filter(|i| !i.starts_with("wasi:") || i.starts_with("wasi:http/"))
    {
        println!("  {import}");
    }
    Ok(ExitCode::SUCCESS)
}

/// How to get jco when it is missing.
const JCO_INSTALL: &str = "install it with `scripts/setup-js-tools.sh` from a Powernode checkout (jco 1.30.0 and \
    componentize-js 0.22.0 into ~/.cache/powernode-js-tools), or put a `jco` on PATH";

/// The features componentize-js would otherwise add to every component: `fetch-event`
/// exports `wasi:http/incoming-handler`, `http` imports `wasi:http` for `fetch()` — kept only
/// for the `full` world, which imports `wasi:http` anyway.
fn js_disable_flags(world: &ProjectWorld) -> &'static [&'static str] {
    match world {
        ProjectWorld::Packaged(World::Full) => &["-d", "fetch-event"],
        _ => &["-d", "http", "fetch-event"],
    }
}

/// jco from `POWERNODE_JS_TOOLS_DIR` (or `~/.cache/powernode-js-tools`, where
/// `scripts/setup-js-tools.sh` puts it), else the one on PATH.
fn jco() -> anyhow::Result<PathBuf> {
    let dir = std::env::var_os("POWERNODE_JS_TOOLS_DIR")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/powernode-js-tools")));
    let installed = dir.map(|d| d.join("node_modules/.bin/jco")).filter(|p| p.is_file());
    Ok(installed.unwrap_or_else(|| PathBuf::from("jco")))
}

/// Runs a build tool with its output shown; a tool that is not there is named with `install`.
fn run_tool(cmd: &mut Command, tool: &str, install: &str) -> anyhow::Result<()> {
    let status = match cmd.status() {
        Ok(status) => status,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            anyhow::bail!("`{tool}` is not installed (or not on PATH): {install}")
        }
        Err(e) => return Err(e).with_context(|| format!("cannot run `{tool}`")),
    };
    anyhow::ensure!(status.success(), "`{tool}` failed ({status}); its messages are above");
    Ok(())
}

/// `cargo build --release --target wasm32-wasip2`, the component copied to `out`.
fn build_rust(dir: &Path, name: &str, out: &Path) -> anyhow::Result<()> {
    check_wasm_target()?;
    // The JSON messages name the artifact wherever the target directory is (CARGO_TARGET_DIR,
    // a config file); the human-readable diagnostics still go to the terminal.
    let mut child = Command::new("cargo")
        .current_dir(dir)
        .args([
            "build",
            "--release",
            "--target",
            "wasm32-wasip2",
            "--message-format=json-render-diagnostics",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => {
                anyhow::anyhow!("`cargo` is not installed: install Rust from https://rustup.rs")
            }
            _ => anyhow::Error::new(e).context("cannot run `cargo`"),
        })?;
    let mut component = None;
    for line in std::io::BufReader::new(child.stdout.take().expect("piped")).lines() {
        let message: serde_json::Value = serde_json::from_str(&line?).unwrap_or_default();
        let is_ours = message["reason"] == "compiler-artifact" && message["target"]["name"] == name;
        let wasm = message["filenames"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|f| f.as_str())
            .find(|f| f.ends_with(".wasm"));
        if let (true, Some(wasm)) = (is_ours, wasm) {
            component = Some(PathBuf::from(wasm));
        }
    }
    let status = child.wait()?;
    anyhow::ensure!(
        status.success(),
        "`cargo build` failed ({status}); its messages are above"
    );
    let built = component.with_context(|| {
        format!("cargo built no `{name}.wasm`: the package must be named `{name}` with `crate-type = [\"cdylib\"]`")
    })?;
    std::fs::copy(&built, out).with_context(|| format!("cannot copy `{}` to `{}`", built.display(), out.display()))?;
    Ok(())
}

/// With rustup, the wasm32-wasip2 target must be installed; without it, cargo says so itself.
fn check_wasm_target() -> anyhow::Result<()> {
    let Ok(listed) = Command::new("rustup").args(["target", "list", "--installed"]).output() else {
        return Ok(());
    };
    let installed = String::from_utf8_lossy(&listed.stdout)
        .lines()
        .any(|t| t.trim() == "wasm32-wasip2");
    anyhow::ensure!(
        !listed.status.success() || installed,
        "the Rust target wasm32-wasip2 is not installed: run `rustup target add wasm32-wasip2`"
    );
    Ok(())
}
