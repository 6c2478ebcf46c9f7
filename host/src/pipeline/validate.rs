//! Semantic checks on a parsed [`Pipeline`]: names, step types, trigger
//! types and events, timeouts, and every template and `*_from` reference in
//! step configs. Collects all problems, each positioned via the pipeline's spans.

use serde_json::Value;

use super::definition::{MAX_TIMEOUT_MINUTES, Pipeline, StepDef, Trigger, TriggerKind};
use super::diagnostic::{Diagnostic, Diagnostics, field_index, field_key, hint};
use super::schema::StepTypes;
use super::template::{RESERVED_WORDS, Reference, TRIGGER_VARS, analyze, analyze_expression, environment, from_target};

/// What validation needs to know about the server: which step types exist
/// and, optionally, which secrets are configured.
#[derive(Clone, Copy)]
pub struct Validator<'a> {
    /// True if a plugin implements this step type.
    pub is_step_type: &'a dyn Fn(&str) -> bool,
    /// Step types listed in "unknown step type" messages (and used for hints).
    pub step_types_hint: &'a [&'a str],
    /// True if a secret exists; `None` accepts every secret name.
    pub is_secret: Option<&'a dyn Fn(&str) -> bool>,
    /// Config schemas of the step types; `None` checks no config's shape.
    pub schemas: Option<&'a StepTypes>,
}

impl<'a> Validator<'a> {
    /// A validator that knows the step types and accepts any secret name.
    pub fn new(is_step_type: &'a dyn Fn(&str) -> bool, step_types_hint: &'a [&'a str]) -> Self {
        Validator {
            is_step_type,
            step_types_hint,
            is_secret: None,
            schemas: None,
        }
    }

    /// Also check each step's config against its type's schema, where it has one.
    pub fn with_schemas(self, schemas: &'a StepTypes) -> Self {
        Validator {
            schemas: Some(schemas),
            ..self
        }
    }

    /// Also report secrets for which `is_secret` is false.
    pub fn with_secrets(self, is_secret: &'a dyn Fn(&str) -> bool) -> Self {
        Validator {
            is_secret: Some(is_secret),
            ..self
        }
    }

    /// Checks `pipeline`, returning every problem found.
    pub fn validate(&self, pipeline: &Pipeline) -> Result<(), Diagnostics> {
        let mut check = Check {
            validator: self,
            pipeline,
            env: environment(),
            problems: Vec::new(),
        };
        check.pipeline();
        Diagnostics::check(check.problems)
    }
}

impl Pipeline {
    /// Checks this pipeline with `validator` (see [`Validator::validate`]).
    pub fn validate(&self, validator: &Validator<'_>) -> Result<(), Diagnostics> {
        validator.validate(self)
    }
}

/// True for valid step names: `[a-z_][a-z0-9_]*`.
pub fn is_step_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

struct Check<'a> {
    validator: &'a Validator<'a>,
    pipeline: &'a Pipeline,
    env: minijinja::Environment<'static>,
    problems: Vec<Diagnostic>,
}

impl Check<'_> {
    fn problem(&mut self, field: &str, message: impl Into<String>) {
        self.problems.push(self.pipeline.diagnostic(field, message));
    }

    fn pipeline(&mut self) {
        if self.pipeline.name.trim().is_empty() {
            self.problem("name", "missing pipeline name");
        }
        for (i, trigger) in self.pipeline.triggers.iter().enumerate() {
            self.trigger(trigger, &field_index("triggers", i));
        }
        if self.pipeline.steps.is_empty() {
            self.problem("steps", "pipeline has no steps");
        }
        if let Some(minutes) = self.pipeline.timeout_minutes {
            self.minutes(minutes, "timeout_minutes");
        }
        if let Some(concurrency) = &self.pipeline.concurrency {
            // The group is rendered when the run is queued: only trigger variables exist then.
            match analyze(&self.env, &concurrency.group) {
                Ok(analyzed) => {
                    for reference in analyzed.refs {
                        if !matches!(reference, Reference::Trigger(_) | Reference::Builtin) {
                            let message = "a concurrency group may read only trigger variables (branch, number, ...)";
                            self.problem("concurrency.group", message);
                        }
                    }
                }
                Err(message) => self.problem("concurrency.group", message),
            }
        }
        for (i, step) in self.pipeline.steps.iter().enumerate() {
            self.step(i, step, &field_index("steps", i));
        }
    }

    fn trigger(&mut self, trigger: &Trigger, path: &str) {
        let kinds = TriggerKind::ALL.map(TriggerKind::as_str);
        let type_field = field_key(path, "type");
        let Some(kind) = trigger.trigger_kind() else {
            let message = if trigger.kind.is_empty() {
                format!("missing trigger type (one of: {})", kinds.join(", "))
            } else {
                let name = &trigger.kind;
                format!(
                    "unknown trigger type `{name}` (one of: {}){}",
                    kinds.join(", "),
                    hint(name, kinds)
                )
            };
            return self.problem(&type_field, message);
        };
        let events_field = field_key(path, "events");
        let allowed = kind.events();
        if allowed.is_empty() && !trigger.events.is_empty() {
            let message = format!("`{}` triggers take no events", kind.as_str());
            self.problem(&events_field, message);
        } else {
            for (j, event) in trigger.events.iter().enumerate() {
                if !allowed.contains(&event.as_str()) {
                    let message = format!(
                        "unknown {} event `{event}` (one of: {}){}",
                        kind.as_str(),
                        allowed.join(", "),
                        hint(event, allowed.iter().copied())
                    );
                    self.problem(&field_index(&events_field, j), message);
                }
            }
        }
        for (key, globs) in [("branches", &trigger.branches), ("paths", &trigger.paths)] {
            for (j, pattern) in globs.iter().enumerate() {
                if let Err(e) = glob::Pattern::new(pattern) {
                    let field = field_index(&field_key(path, key), j);
                    self.problem(&field, format!("invalid glob `{pattern}`: {e}"));
                }
            }
        }
    }

    fn step(&mut self, index: usize, step: &StepDef, path: &str) {
        self.step_name(index, step, &field_key(path, "name"));
        let type_field = field_key(path, "type");
        let known = self.validator.step_types_hint;
        if step.step_type.trim().is_empty() {
            self.problem(&type_field, format!("missing step type (known: {})", known.join(", ")));
        } else if !(self.validator.is_step_type)(&step.step_type) {
            let name = &step.step_type;
            let message = format!(
                "unknown step type `{name}` (known: {}){}",
                known.join(", "),
                hint(name, known.iter().copied())
            );
            self.problem(&type_field, message);
        }
        if let Some(minutes) = step.timeout_minutes {
            self.minutes(minutes, &field_key(path, "timeout_minutes"));
        }
        if let Some(condition) = &step.condition {
            let field = field_key(path, "if");
            let refs = if condition.contains("{{") || condition.contains("${") {
                analyze(&self.env, condition).map(|a| a.refs)
            } else {
                analyze_expression(&self.env, condition)
            };
            match refs {
                Ok(refs) => self.references(index, &refs, &field),
                Err(message) => self.problem(&field, message),
            }
        }
        if let Some(schemas) = self.validator.schemas
            && step.config.is_object()
        {
            for (field, message) in schemas.problems(&step.step_type, &step.config, &field_key(path, "config")) {
                self.problem(&field, message);
            }
        }
        match &step.config {
            Value::Object(_) => self.config(index, &step.config, &field_key(path, "config")),
            Value::Null => {}
            _ => self.problem(&field_key(path, "config"), "expected a mapping"),
        }
    }

    fn minutes(&mut self, minutes: f64, field: &str) {
        if !(minutes.is_finite() && minutes > 0.0 && minutes <= MAX_TIMEOUT_MINUTES) {
            let message = format!(
                "timeout must be a positive number of minutes up to {MAX_TIMEOUT_MINUTES} (7 days), got {minutes}"
            );
            self.problem(field, message);
        }
    }

    fn step_name(&mut self, index: usize, step: &StepDef, field: &str) {
        let name = step.name.as_str();
        if name.is_empty() {
            return self.problem(field, "missing step name");
        }
        if !is_step_name(name) {
            let message =
                format!("step name `{name}` must be lowercase letters, digits and `_`, not starting with a digit");
            return self.problem(field, message);
        }
        if TRIGGER_VARS.contains(&name) {
            return self.problem(
                field,
                format!("step name `{name}` is taken by the trigger variable `{name}`"),
            );
        }
        if RESERVED_WORDS.contains(&name) {
            return self.problem(field, format!("step name `{name}` is reserved in templates"));
        }
        if let Some(first) = self.pipeline.steps[..index].iter().find(|s| s.name == name) {
            let message = format!(
                "duplicate step name `{name}` (first used at line {}); a step without `name:` is named by its type, so give one of them a `name:`",
                first.line
            );
            self.problem(field, message);
        }
    }

    /// Checks every string template and `*_from` expression under `value`.
    fn config(&mut self, index: usize, value: &Value, field: &str) {
        match value {
            Value::String(text) => match analyze(&self.env, text) {
                Ok(analyzed) => self.references(index, &analyzed.refs, field),
                Err(message) => self.problem(field, message),
            },
            Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    self.config(index, item, &field_index(field, i));
                }
            }
            Value::Object(map) => {
                for (key, item) in map {
                    let key_field = field_key(field, key);
                    let Some(target) = from_target(key) else {
                        self.config(index, item, &key_field);
                        continue;
                    };
                    if map.contains_key(target) {
                        self.problem(
                            &key_field,
                            format!("`{target}` is set both directly and through `{key}`"),
                        );
                    }
                    match item {
                        Value::String(expr) => match analyze_expression(&self.env, expr) {
                            Ok(refs) => self.references(index, &refs, &key_field),
                            Err(message) => self.problem(&key_field, message),
                        },
                        _ => self.problem(&key_field, "expected an expression such as `review.raw_output`"),
                    }
                }
            }
            Value::Null | Value::Bool(_) | Value::Number(_) => {}
        }
    }

    fn references(&mut self, index: usize, refs: &[Reference], field: &str) {
        let steps = &self.pipeline.steps;
        let earlier: Vec<&str> = steps[..index].iter().map(|s| s.name.as_str()).collect();
        let earlier_list = if earlier.is_empty() {
            "no earlier steps".to_owned()
        } else {
            format!("earlier steps: {}", earlier.join(", "))
        };
        for reference in refs {
            let message = match reference {
                Reference::Trigger(_) | Reference::Builtin => continue,
                Reference::AnySecret => "secrets must be read by name (`secrets.NAME`)".to_owned(),
                Reference::Secret { name, bare } => match self.validator.is_secret {
                    Some(is_secret) if !is_secret(name) => {
                        let shell = if *bare {
                            format!("; for the shell variable write `$${{{name}}}`")
                        } else {
                            String::new()
                        };
                        format!("unknown secret `{name}`{shell}")
                    }
                    _ => continue,
                },
                Reference::Output { step, .. } if earlier.contains(&step.as_str()) => continue,
                Reference::Output { step, .. } if *step == steps[index].name => {
                    format!("step `{step}` cannot read its own outputs")
                }
                Reference::Output { step, .. } if steps[index..].iter().any(|s| s.name == *step) => {
                    format!("step `{step}` runs after this one ({earlier_list})")
                }
                Reference::Output { step, output: Some(_) } => {
                    format!(
                        "unknown step `{step}` ({earlier_list}){}",
                        hint(step, earlier.iter().copied())
                    )
                }
                Reference::Output { step, output: None } => {
                    let names = TRIGGER_VARS.iter().copied().chain(earlier.iter().copied());
                    format!(
                        "unknown variable `{step}` (not a trigger variable, secret or earlier step){}",
                        hint(step, names)
                    )
                }
            };
            self.problem(field, message);
        }
    }
}
