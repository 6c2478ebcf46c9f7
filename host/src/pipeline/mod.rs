//! Pipeline model: parsing pipeline YAML into [`Pipeline`], validating it
//! with positioned [`Diagnostics`], and rendering step configs (templates,
//! secrets, earlier steps' outputs) just before a step runs. Pure code: no
//! I/O; callers pass file names and text.

mod definition;
mod diagnostic;
mod parse;
mod render;
mod template;
mod triggers;
mod validate;
mod yaml;

pub use definition::{
    Concurrency, DEFAULT_STEP_TIMEOUT, PIPELINE_KEYS, Pipeline, STEP_KEYS, Spans, StepDef, TRIGGER_KEYS, Trigger,
    TriggerKind,
};
pub use diagnostic::{Diagnostic, Diagnostics, Pos};
pub use parse::parse;
pub use render::{
    RenderContext, RenderError, RenderErrorKind, Rendered, StepOutputs, render_config, render_text, should_run,
};
pub use template::TRIGGER_VARS;
pub use triggers::EventFacts;
pub use validate::{Validator, is_step_name};

/// Parses and validates in one go: what the server does when it loads a
/// pipeline file. Structural problems are reported before semantic ones.
pub fn load(file: &str, text: &str, validator: &Validator<'_>) -> Result<Pipeline, Diagnostics> {
    let pipeline = parse(file, text)?;
    pipeline.validate(validator)?;
    Ok(pipeline)
}

/// Parses and validates pipeline text against the step types available and, when given, the
/// configured secrets: what the server, the API and `powernode validate` all do.
pub fn check(
    label: &str,
    text: &str,
    step_types: &[String],
    is_secret: Option<&dyn Fn(&str) -> bool>,
) -> Result<Pipeline, Diagnostics> {
    let hint: Vec<&str> = step_types.iter().map(String::as_str).collect();
    let is_type = |t: &str| step_types.iter().any(|s| s == t);
    let validator = Validator::new(&is_type, &hint);
    let validator = match is_secret {
        Some(is_secret) => validator.with_secrets(is_secret),
        None => validator,
    };
    load(label, text, &validator)
}

#[cfg(test)]
mod parse_tests;
#[cfg(test)]
mod render_tests;
#[cfg(test)]
mod seed_tests;
#[cfg(test)]
mod validate_tests;
