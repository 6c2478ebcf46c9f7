//! `powernode pipelines push FILE.yml`: adds or replaces a pipeline through the API, named
//! by the file's `name:`; the server validates it against its own plugins.

use std::path::PathBuf;
use std::process::ExitCode;

use reqwest::Method;

use super::{Client, Code, Failure, Outcome, ServerArgs, print_json};

/// `powernode pipelines ...`.
#[derive(Debug, clap::Subcommand)]
pub enum PipelinesCommand {
    /// Add or replace a pipeline on the server (PUT /api/pipelines/{name}).
    Push {
        /// The pipeline file (YAML); its `name:` names it on the server.
        file: PathBuf,
        #[command(flatten)]
        server: ServerArgs,
    },
}

/// Runs a `pipelines` subcommand.
pub(in crate::cli) async fn pipelines(command: PipelinesCommand) -> Outcome {
    match command {
        PipelinesCommand::Push { file, server } => push(file, server).await,
    }
}

async fn push(file: PathBuf, server: ServerArgs) -> Outcome {
    let client = Client::new(&server)?;
    let label = file.display().to_string();
    let text =
        std::fs::read_to_string(&file).map_err(|e| Failure::new(Code::Usage, format!("cannot read `{label}`: {e}")))?;
    // Parsed here only for its name (and to point at a broken file by its own name); the
    // server checks the steps against the plugins it has.
    let name = crate::pipeline::parse(&label, &text)
        .map_err(|d| Failure::new(Code::Usage, d.to_string()))?
        .name;
    let request = client
        .request(Method::PUT, client.url(&["pipelines", &name]))
        .header(reqwest::header::CONTENT_TYPE, "application/yaml")
        .body(text);
    let answer = client.json_of(request).await.map_err(|mut failure| {
        // The server names the text `api:{name}`; the person knows it as their file.
        failure.message = failure.message.replace(&format!("api:{name}:"), &format!("{label}:"));
        failure
    })?;
    if client.json() {
        print_json(&answer);
    } else {
        println!("pipeline `{name}` {}", answer["status"].as_str().unwrap_or("stored"));
    }
    Ok(ExitCode::SUCCESS)
}
