//! `powernode init [DIR]`: a folder to start a server in — a commented config, the seed's
//! review pipeline, a `hello` pipeline — and, printed, the generated token and secret and
//! what to paste into each forge.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};

use crate::provider::ForgeKind;
use crate::secret::Secret;
use crate::setup::{self, SECRET_VAR, TOKEN_VAR};

/// Arguments of `powernode init`.
#[derive(Debug, clap::Args)]
pub struct InitArgs {
    /// The folder to set up (created if missing).
    #[arg(default_value = ".")]
    dir: PathBuf,
    /// A forge to connect now (github, gitea, forgejo, gitlab; may be repeated): its
    /// `[[sources]]` entry is written active, reading its token from `<KIND>_TOKEN`.
    #[arg(long, value_parser = forge)]
    forge: Vec<ForgeKind>,
    /// How forges and people reach the server (webhook URLs, links).
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    public_url: String,
    /// The address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: String,
}

fn forge(name: &str) -> Result<ForgeKind, String> {
    setup::FORGES
        .into_iter()
        .find(|k| k.as_str() == name)
        .ok_or_else(|| format!("`{name}` is not a forge Powernode knows: github, gitea, forgejo or gitlab"))
}

/// The file `init` writes the generated secrets to, as shell `export` lines.
const ENV_FILE: &str = "powernode.env";

pub(super) fn init(args: InitArgs) -> anyhow::Result<ExitCode> {
    let dir = &args.dir;
    let config = dir.join("powernode.toml");
    if config.exists() {
        bail!(
            "`{}` already exists: init writes a new set-up only; remove it or give another folder",
            config.display()
        );
    }
    let token = Secret::generate().context("reading random bytes for the API token")?;
    let secret = Secret::generate().context("reading random bytes for the webhook secret")?;
    std::fs::create_dir_all(dir.join("pipelines")).with_context(|| format!("creating `{}`", dir.display()))?;
    write_new(
        &config,
        &setup::config_text(&args.listen, &args.public_url, &args.forge),
        0o644,
    )?;
    let exports = format!(
        "# Written by `powernode init`: the secrets powernode.toml reads. Keep this file private.\nexport {TOKEN_VAR}={}\nexport {SECRET_VAR}={}\n",
        token.expose(),
        secret.expose()
    );
    write_new(&dir.join(ENV_FILE), &exports, 0o600)?;
    for (name, text) in [
        ("review.yml", setup::REVIEW_PIPELINE),
        ("hello.yml", setup::HELLO_PIPELINE),
    ] {
        let path = dir.join("pipelines").join(name);
        if !path.exists() {
            write_new(&path, text, 0o644)?;
        }
    }
    print!("{}", instructions(dir, &args, &token, &secret));
    Ok(ExitCode::SUCCESS)
}

/// Writes `text` to a file that must not exist yet, with `mode` from the start (so the
/// secrets file is never readable by others, not even for a moment).
fn write_new(path: &Path, text: &str, mode: u32) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .with_context(|| format!("cannot create `{}`", path.display()))?;
    file.write_all(text.as_bytes())
        .with_context(|| format!("writing `{}`", path.display()))
}

fn instructions(dir: &Path, args: &InitArgs, token: &Secret, secret: &Secret) -> String {
    let shown = dir.display();
    let mut out = format!(
        "Wrote {shown}/powernode.toml, {shown}/pipelines/ (review.yml: the AI review; hello.yml: a manual run)\n\
         and {shown}/{ENV_FILE} (the generated secrets, readable only by you).\n\n\
         1. The config reads its secrets from these variables (also in {ENV_FILE}):\n\n\
         \x20    export {TOKEN_VAR}={}\n\
         \x20    export {SECRET_VAR}={}\n\n\
         2. Start the server in that folder:\n\n\
         \x20    cd {shown} && . ./{ENV_FILE} && powernode serve   (it reads ./powernode.toml)\n\n\
         3. Try it: powernode trigger hello, then powernode runs (the CLI reads {TOKEN_VAR}).\n\n\
         4. Point each forge's webhook at the server, with the webhook secret above\n\
         \x20  (${SECRET_VAR}), and give its source a token: export <FORGE>_TOKEN=... and uncomment\n\
         \x20  its [[sources]] in powernode.toml (`--forge KIND` writes it uncommented):\n\n",
        token.expose(),
        secret.expose(),
    );
    for hint in setup::webhook_hints(&args.public_url) {
        let active = if args.forge.iter().any(|k| k.as_str() == hint.source) {
            " (active)"
        } else {
            ""
        };
        out.push_str(&format!(
            "     {:<8} {}{active}\n              {}\n",
            hint.forge, hint.url, hint.where_
        ));
    }
    out.push_str(
        "\n   The review pipeline also needs Claude Code (`claude`) on the server's PATH and its prompt\n\
         \x20  stored once: powernode's README, \"A pipeline\", shows the template `pr-review`.\n",
    );
    out
}
