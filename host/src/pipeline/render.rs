//! Rendering a step's config just before it runs: every string is a
//! template over trigger variables, secrets and earlier steps' outputs;
//! `*_from` keys copy a value by reference. Reports which secrets were used
//! so the host can mask them.

use std::collections::BTreeMap;
use std::fmt;

use minijinja::{Environment, Value as JinjaValue};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::definition::{Pipeline, StepDef};
use super::diagnostic::{Diagnostic, field_index, field_key};
use super::template::{Reference, analyze, analyze_expression, environment, error_message, from_target};

/// What a finished step left for later steps.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepOutputs {
    /// Everything the step printed as its result (`step.raw_output`).
    pub raw_output: String,
    /// Named outputs (`step.NAME`); `raw_output` wins over an output of that name.
    pub outputs: BTreeMap<String, String>,
}

/// Everything a config template may read during one run.
#[derive(Clone, Default)]
pub struct RenderContext {
    /// Trigger variables (see [`TRIGGER_VARS`](super::TRIGGER_VARS)); absent or
    /// null ones are errors when read, so leave out what the event lacks.
    pub vars: BTreeMap<String, Value>,
    /// Secret values by name, read as `NAME` or `secrets.NAME`.
    pub secrets: BTreeMap<String, String>,
    /// Outputs of the steps that already ran, by step name.
    pub outputs: BTreeMap<String, StepOutputs>,
    /// Refuse every secret (runs for pull requests from forks).
    pub withhold_secrets: bool,
}

impl fmt::Debug for RenderContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RenderContext")
            .field("vars", &self.vars)
            .field("secrets", &self.secrets.keys().collect::<Vec<_>>())
            .field("outputs", &self.outputs)
            .field("withhold_secrets", &self.withhold_secrets)
            .finish()
    }
}

/// A rendered config plus the secrets it contains.
#[derive(Clone, PartialEq)]
pub struct Rendered {
    /// The config to hand to the step's plugin.
    pub config: Value,
    /// Secrets read while rendering, name -> value: mask these values in logs
    /// (skip empty ones).
    pub used_secrets: BTreeMap<String, String>,
}

impl fmt::Debug for Rendered {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Rendered")
            .field("config", &"<may contain secrets>")
            .field("used_secrets", &self.used_secrets.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// Why a step's config could not be rendered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("step `{step}`: {field}: {kind}")]
pub struct RenderError {
    /// Step whose config failed.
    pub step: String,
    /// Config field, e.g. `config.prompt`.
    pub field: String,
    /// What went wrong.
    pub kind: RenderErrorKind,
}

impl RenderError {
    /// This error positioned in `pipeline` (the one the step came from), for
    /// run logs: `file:line:col: steps[4].config.token: ...`.
    pub fn to_diagnostic(&self, pipeline: &Pipeline) -> Diagnostic {
        let field = match pipeline.steps.iter().position(|s| s.name == self.step) {
            Some(index) => field_key(&field_index("steps", index), &self.field),
            None => self.field.clone(),
        };
        pipeline.diagnostic(&field, self.kind.to_string())
    }
}

/// The specific rendering failure.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RenderErrorKind {
    /// A secret was read in a run that must not see secrets.
    #[error("secret `{0}` is withheld from pull requests from forks")]
    SecretWithheld(String),
    /// A secret was read that is not configured.
    #[error("secret `{0}` is not set")]
    MissingSecret(String),
    /// `secrets` was read without naming one.
    #[error("secrets must be read by name (`secrets.NAME`)")]
    AnySecret,
    /// A trigger variable was read that this run does not have.
    #[error("trigger variable `{0}` is not set for this run")]
    MissingVariable(String),
    /// A step's outputs were read but that step has not run (or does not exist).
    #[error("no outputs from step `{0}` (it has not run before this step)")]
    MissingStep(String),
    /// A named output was read that the step did not produce.
    #[error("step `{step}` has no output `{output}` (it has: {available})")]
    MissingOutput {
        /// Step read from.
        step: String,
        /// Output asked for.
        output: String,
        /// Outputs the step has, comma-separated.
        available: String,
    },
    /// A stored template read a secret: secrets reach a step only through its config.
    #[error("secret `{0}` cannot be read from a stored template; pass it in the step's config")]
    SecretInTemplate(String),
    /// Both `KEY` and `KEY_from` were set.
    #[error("`{0}` is set both directly and through `{0}_from`")]
    Conflict(String),
    /// Bad `${}` / template syntax, a non-string `*_from`, or a failed evaluation.
    #[error("{0}")]
    Template(String),
}

/// Renders `step.config` for one run: each string is a template, each
/// `KEY_from: expr` becomes `KEY: <value of expr>`. Object keys are not rendered.
pub fn render_config(step: &StepDef, ctx: &RenderContext) -> Result<Rendered, RenderError> {
    let mut renderer = Renderer {
        env: environment(),
        ctx,
        step: &step.name,
        used: BTreeMap::new(),
        missing_vars_are_none: false,
        secrets_allowed: true,
    };
    let config = renderer.value(&step.config, "config")?;
    Ok(Rendered {
        config,
        used_secrets: renderer.used,
    })
}

/// Whether `step` runs: its `if:` evaluated over the trigger, earlier outputs and secrets.
/// A template (`{{ … }}`) is true unless it renders empty, `false`, `0`, `no` or `none`; a
/// bare expression by its truth. A trigger variable the run lacks reads as none (so
/// `number` on a push is simply false), unlike in configs.
pub fn should_run(step: &StepDef, ctx: &RenderContext) -> Result<bool, RenderError> {
    let Some(condition) = &step.condition else {
        return Ok(true);
    };
    let mut renderer = Renderer {
        env: environment(),
        ctx,
        step: &step.name,
        used: BTreeMap::new(),
        missing_vars_are_none: true,
        secrets_allowed: true,
    };
    if condition.contains("{{") || condition.contains("${") {
        let text = renderer.string(condition, "if")?;
        let text = text.trim().to_ascii_lowercase();
        return Ok(!matches!(text.as_str(), "" | "false" | "0" | "no" | "none"));
    }
    let refs =
        analyze_expression(&renderer.env, condition).map_err(|m| renderer.fail("if", RenderErrorKind::Template(m)))?;
    let context = renderer.context(&refs, "if")?;
    renderer
        .env
        .compile_expression(condition)
        .and_then(|compiled| compiled.eval(context))
        .map(|value| value.is_true())
        .map_err(|e| renderer.fail("if", RenderErrorKind::Template(error_message(&e, condition))))
}

/// Renders one template string (a concurrency group, say) over `ctx`, strictly.
pub fn render_text(text: &str, ctx: &RenderContext) -> Result<String, RenderError> {
    let mut renderer = Renderer {
        env: environment(),
        ctx,
        step: "",
        used: BTreeMap::new(),
        missing_vars_are_none: false,
        secrets_allowed: true,
    };
    renderer.string(text, "")
}

/// Renders a stored prompt template (`templates.render`) over `ctx` like a config string,
/// except that secrets cannot be read.
pub fn render_template(text: &str, ctx: &RenderContext) -> Result<String, RenderError> {
    let mut renderer = Renderer {
        env: environment(),
        ctx,
        step: "",
        used: BTreeMap::new(),
        missing_vars_are_none: false,
        secrets_allowed: false,
    };
    renderer.string(text, "template")
}

/// Whether template `text` reads trigger variable `name` (false when it does not parse).
pub fn text_reads_var(text: &str, name: &str) -> bool {
    analyze(&environment(), text).is_ok_and(|a| a.refs.iter().any(|r| is_var(r, name)))
}

/// Whether `step`'s config (its strings and `*_from` expressions) or its `if:` reads trigger
/// variable `name`: lets the runner fetch costly variables (`diff`) only for steps that read them.
pub fn step_reads_var(step: &StepDef, name: &str) -> bool {
    fn walk(env: &Environment<'_>, value: &Value, key: Option<&str>, name: &str) -> bool {
        match value {
            Value::String(text) => {
                let refs = match key.and_then(from_target) {
                    Some(_) => analyze_expression(env, text).ok(),
                    None => analyze(env, text).ok().map(|a| a.refs),
                };
                refs.is_some_and(|refs| refs.iter().any(|r| is_var(r, name)))
            }
            Value::Array(items) => items.iter().any(|v| walk(env, v, None, name)),
            Value::Object(map) => map.iter().any(|(k, v)| walk(env, v, Some(k), name)),
            _ => false,
        }
    }
    let env = environment();
    let condition = step.condition.as_deref().is_some_and(|c| {
        let refs = match c.contains("{{") || c.contains("${") {
            true => analyze(&env, c).map(|a| a.refs),
            false => analyze_expression(&env, c),
        };
        refs.is_ok_and(|refs| refs.iter().any(|r| is_var(r, name)))
    });
    condition || walk(&env, &step.config, None, name)
}

fn is_var(reference: &Reference, name: &str) -> bool {
    matches!(reference, Reference::Trigger(n) if n == name)
}

struct Renderer<'a> {
    env: Environment<'static>,
    ctx: &'a RenderContext,
    step: &'a str,
    used: BTreeMap<String, String>,
    missing_vars_are_none: bool,
    secrets_allowed: bool,
}

impl Renderer<'_> {
    fn fail(&self, field: &str, kind: RenderErrorKind) -> RenderError {
        RenderError {
            step: self.step.to_owned(),
            field: field.to_owned(),
            kind,
        }
    }

    fn value(&mut self, value: &Value, field: &str) -> Result<Value, RenderError> {
        Ok(match value {
            Value::String(text) => Value::String(self.string(text, field)?),
            Value::Array(items) => Value::Array(
                items
                    .iter()
                    .enumerate()
                    .map(|(i, item)| self.value(item, &field_index(field, i)))
                    .collect::<Result<_, _>>()?,
            ),
            Value::Object(map) => Value::Object(self.object(map, field)?),
            other => other.clone(),
        })
    }

    fn object(&mut self, map: &Map<String, Value>, field: &str) -> Result<Map<String, Value>, RenderError> {
        let mut out = Map::new();
        for (key, value) in map {
            let key_field = field_key(field, key);
            let Some(target) = from_target(key) else {
                out.insert(key.clone(), self.value(value, &key_field)?);
                continue;
            };
            if map.contains_key(target) {
                return Err(self.fail(&key_field, RenderErrorKind::Conflict(target.to_owned())));
            }
            let Value::String(expr) = value else {
                let message = "expected an expression such as `review.raw_output`".to_owned();
                return Err(self.fail(&key_field, RenderErrorKind::Template(message)));
            };
            out.insert(target.to_owned(), self.expression(expr, &key_field)?);
        }
        Ok(out)
    }

    fn string(&mut self, text: &str, field: &str) -> Result<String, RenderError> {
        let analyzed = analyze(&self.env, text).map_err(|m| self.fail(field, RenderErrorKind::Template(m)))?;
        if analyzed.literal {
            return Ok(analyzed.source);
        }
        let context = self.context(&analyzed.refs, field)?;
        self.env
            .render_str(&analyzed.source, context)
            .map_err(|e| self.fail(field, RenderErrorKind::Template(error_message(&e, &analyzed.source))))
    }

    fn expression(&mut self, expr: &str, field: &str) -> Result<Value, RenderError> {
        let refs = analyze_expression(&self.env, expr).map_err(|m| self.fail(field, RenderErrorKind::Template(m)))?;
        let context = self.context(&refs, field)?;
        let template_error = |e: minijinja::Error| self.fail(field, RenderErrorKind::Template(error_message(&e, expr)));
        let value = self
            .env
            .compile_expression(expr)
            .and_then(|compiled| compiled.eval(context))
            .map_err(template_error)?;
        serde_json::to_value(&value).map_err(|e| self.fail(field, RenderErrorKind::Template(e.to_string())))
    }

    /// Builds the template context holding exactly the names in `refs`.
    fn context(&mut self, refs: &[Reference], field: &str) -> Result<BTreeMap<String, JinjaValue>, RenderError> {
        let mut context = BTreeMap::new();
        let mut secrets = BTreeMap::new();
        for reference in refs {
            match reference {
                Reference::Trigger(name) => match self.ctx.vars.get(name).filter(|v| !v.is_null()) {
                    Some(value) => {
                        context.insert(name.clone(), JinjaValue::from_serialize(value));
                    }
                    None if self.missing_vars_are_none => {
                        context.insert(name.clone(), JinjaValue::from(()));
                    }
                    None => return Err(self.fail(field, RenderErrorKind::MissingVariable(name.clone()))),
                },
                Reference::Secret { name, bare } => {
                    let value = self.secret(name, field)?;
                    if *bare {
                        context.insert(name.clone(), JinjaValue::from(value.clone()));
                    }
                    secrets.insert(name.clone(), value);
                }
                Reference::AnySecret => return Err(self.fail(field, RenderErrorKind::AnySecret)),
                Reference::Output { step, output } => {
                    context.insert(step.clone(), self.outputs(step, output.as_deref(), field)?);
                }
                Reference::Builtin => {}
            }
        }
        if !secrets.is_empty() {
            context.insert("secrets".to_owned(), JinjaValue::from(secrets));
        }
        Ok(context)
    }

    fn secret(&mut self, name: &str, field: &str) -> Result<String, RenderError> {
        if !self.secrets_allowed {
            return Err(self.fail(field, RenderErrorKind::SecretInTemplate(name.to_owned())));
        }
        if self.ctx.withhold_secrets {
            return Err(self.fail(field, RenderErrorKind::SecretWithheld(name.to_owned())));
        }
        let value = self
            .ctx
            .secrets
            .get(name)
            .ok_or_else(|| self.fail(field, RenderErrorKind::MissingSecret(name.to_owned())))?;
        self.used.insert(name.to_owned(), value.clone());
        Ok(value.clone())
    }

    fn outputs(&self, step: &str, output: Option<&str>, field: &str) -> Result<JinjaValue, RenderError> {
        let outputs = self
            .ctx
            .outputs
            .get(step)
            .ok_or_else(|| self.fail(field, RenderErrorKind::MissingStep(step.to_owned())))?;
        let mut values: BTreeMap<&str, &str> = outputs.outputs.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        values.insert("raw_output", &outputs.raw_output);
        if let Some(name) = output
            && !values.contains_key(name)
        {
            let available = values.keys().copied().collect::<Vec<_>>().join(", ");
            let kind = RenderErrorKind::MissingOutput {
                step: step.to_owned(),
                output: name.to_owned(),
                available,
            };
            return Err(self.fail(field, kind));
        }
        Ok(JinjaValue::from_serialize(values))
    }
}
