//! Pipeline model: parsing pipeline YAML into [`Pipeline`], validating it
//! with positioned [`Diagnostics`], and rendering step configs (templates,
//! secrets, earlier steps' outputs) just before a step runs. Pure code: no
//! I/O; callers pass file names and text.

mod definition;
mod diagnostic;
mod parse;
mod render;
mod schema;
mod template;
mod triggers;
mod validate;
mod yaml;

pub use definition::{
    Approval, Concurrency, DEFAULT_STEP_TIMEOUT, PIPELINE_KEYS, Pipeline, STEP_KEYS, Spans, StepDef, TRIGGER_KEYS,
    Trigger, TriggerKind,
};
pub use diagnostic::{Diagnostic, Diagnostics, Pos};
pub use parse::parse;
pub use render::{
    RenderContext, RenderError, RenderErrorKind, Rendered, StepOutputs, render_config, render_template, render_text,
    should_run, step_reads_var, text_reads_var,
};
pub use schema::StepTypes;
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

/// Parses and validates pipeline text against the step types available (and their config
/// schemas) and, when given, the configured secrets: what the server, the API and
/// `powernode validate` all do.
pub fn check(
    label: &str,
    text: &str,
    step_types: &StepTypes,
    is_secret: Option<&dyn Fn(&str) -> bool>,
) -> Result<Pipeline, Diagnostics> {
    let hint = step_types.names();
    let is_type = |t: &str| step_types.contains(t);
    let validator = Validator::new(&is_type, &hint).with_schemas(step_types);
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
