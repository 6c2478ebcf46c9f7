//! Step configs checked against the JSON Schema each plugin's `describe()` reports, before any
//! run: a wrong or unknown field is reported with its file, line and field like every other
//! validation error. Values the run decides (templates, `*_from` references) are not checked
//! for type: only after rendering is their value known.

use std::collections::BTreeMap;
use std::sync::Arc;

use jsonschema::error::ValidationErrorKind;
use serde_json::{Map, Value};

use super::diagnostic::{field_index, field_key, hint};
use super::template::from_target;

/// The step types a server offers and, where the plugin reported one, the JSON Schema its
/// config must match.
#[derive(Clone, Default)]
pub struct StepTypes {
    types: BTreeMap<String, Option<Arc<Schema>>>,
}

struct Schema {
    raw: Value,
    validator: jsonschema::Validator,
}

impl std::fmt::Debug for StepTypes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let schemas: Vec<_> = self.types.iter().map(|(k, v)| (k, v.is_some())).collect();
        f.debug_struct("StepTypes")
            .field("types_with_schema", &schemas)
            .finish()
    }
}

impl StepTypes {
    /// These step types, none with a schema yet.
    pub fn new(names: impl IntoIterator<Item = impl Into<String>>) -> Self {
        StepTypes {
            types: names.into_iter().map(|n| (n.into(), None)).collect(),
        }
    }

    /// Adds `name` with the schema in `schema` (JSON text); an empty text means no schema.
    /// A schema that does not compile is an error and leaves `name` without one.
    pub fn add(&mut self, name: &str, schema: &str) -> Result<(), String> {
        self.types.insert(name.to_owned(), None);
        if schema.trim().is_empty() {
            return Ok(());
        }
        let raw: Value =
            serde_json::from_str(schema).map_err(|e| format!("config schema of `{name}` is not JSON: {e}"))?;
        let validator =
            jsonschema::validator_for(&raw).map_err(|e| format!("config schema of `{name}` is not valid: {e}"))?;
        self.types
            .insert(name.to_owned(), Some(Arc::new(Schema { raw, validator })));
        Ok(())
    }

    /// The step type names, sorted.
    pub fn names(&self) -> Vec<&str> {
        self.types.keys().map(String::as_str).collect()
    }

    /// Whether `name` is a known step type.
    pub fn contains(&self, name: &str) -> bool {
        self.types.contains_key(name)
    }

    /// Problems of `config` (a step's config object) under `step_type`'s schema, as
    /// (field under `field`, message); none when the type has no schema.
    pub(super) fn problems(&self, step_type: &str, config: &Value, field: &str) -> Vec<(String, String)> {
        let Some(Some(schema)) = self.types.get(step_type) else {
            return Vec::new();
        };
        let mut dynamic = Vec::new();
        let mut renamed = BTreeMap::new();
        let shaped = shape(config, "", &mut dynamic, &mut renamed);
        let is_dynamic = |pointer: &str| {
            dynamic
                .iter()
                .any(|d: &String| pointer == d || pointer.strip_prefix(d.as_str()).is_some_and(|r| r.starts_with('/')))
        };
        let mut out = Vec::new();
        for error in schema.validator.iter_errors(&shaped) {
            let pointer = error.instance_path().as_str().to_owned();
            if is_dynamic(&pointer) {
                continue;
            }
            let at = field_path(&shaped, &pointer, field);
            match error.kind() {
                ValidationErrorKind::AdditionalProperties { unexpected } => {
                    let known = known_properties(&schema.raw, error.schema_path().as_str());
                    for key in unexpected {
                        let original = renamed.get(&format!("{pointer}/{key}")).cloned().unwrap_or(key.clone());
                        let message = match known.is_empty() {
                            true => format!("unknown field `{original}`"),
                            false => format!(
                                "unknown field `{original}` (known: {}){}",
                                known.join(", "),
                                hint(key, known.iter().map(String::as_str))
                            ),
                        };
                        out.push((field_key(&at, &original), message));
                    }
                }
                ValidationErrorKind::Required { property } => {
                    let name = property.as_str().map_or_else(|| property.to_string(), str::to_owned);
                    out.push((at, format!("missing field `{name}`")));
                }
                _ => out.push((at, error.to_string())),
            }
        }
        out
    }
}

/// `config` with each `KEY_from` renamed to `KEY` (its value is only known at run time), noting
/// the JSON pointers whose values the run decides and the renames.
fn shape(value: &Value, pointer: &str, dynamic: &mut Vec<String>, renamed: &mut BTreeMap<String, String>) -> Value {
    match value {
        Value::String(text) if text.contains("{{") || text.contains("${") || text.contains("{%") => {
            dynamic.push(pointer.to_owned());
            value.clone()
        }
        Value::Array(items) => Value::Array(
            items
                .iter()
                .enumerate()
                .map(|(i, item)| shape(item, &format!("{pointer}/{i}"), dynamic, renamed))
                .collect(),
        ),
        Value::Object(map) => {
            let mut out = Map::new();
            for (key, item) in map {
                match from_target(key) {
                    Some(target) if !map.contains_key(target) => {
                        let at = format!("{pointer}/{}", escape(target));
                        dynamic.push(at.clone());
                        renamed.insert(at, key.clone());
                        out.insert(target.to_owned(), Value::Null);
                    }
                    _ => {
                        let at = format!("{pointer}/{}", escape(key));
                        out.insert(key.clone(), shape(item, &at, dynamic, renamed));
                    }
                }
            }
            Value::Object(out)
        }
        other => other.clone(),
    }
}

fn escape(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

fn unescape(segment: &str) -> String {
    segment.replace("~1", "/").replace("~0", "~")
}

/// The JSON pointer `pointer` into `value` as a field path under `field` (`config.tests[0].url`).
fn field_path(value: &Value, pointer: &str, field: &str) -> String {
    let mut at = field.to_owned();
    let mut node = Some(value);
    for segment in pointer.split('/').skip(1) {
        let segment = unescape(segment);
        match node {
            Some(Value::Array(items)) => {
                let index = segment.parse::<usize>().unwrap_or(0);
                at = field_index(&at, index);
                node = items.get(index);
            }
            Some(Value::Object(map)) => {
                at = field_key(&at, &segment);
                node = map.get(&segment);
            }
            _ => at = field_key(&at, &segment),
        }
    }
    at
}

/// The property names allowed where an `additionalProperties` error's `schema_path` points,
/// following `$ref`s into `$defs`.
fn known_properties(schema: &Value, schema_path: &str) -> Vec<String> {
    let mut node = schema;
    let segments: Vec<String> = schema_path.split('/').skip(1).map(unescape).collect();
    for segment in segments.iter().take(segments.len().saturating_sub(1)) {
        node = match (segment.as_str(), node) {
            ("$ref", Value::Object(map)) => match map.get("$ref").and_then(Value::as_str) {
                Some(reference) => match resolve(schema, reference) {
                    Some(target) => target,
                    None => return Vec::new(),
                },
                None => return Vec::new(),
            },
            (key, Value::Object(map)) => match map.get(key) {
                Some(next) => next,
                None => return Vec::new(),
            },
            (index, Value::Array(items)) => match index.parse::<usize>().ok().and_then(|i| items.get(i)) {
                Some(next) => next,
                None => return Vec::new(),
            },
            _ => return Vec::new(),
        };
    }
    node.get("properties")
        .and_then(Value::as_object)
        .map(|p| p.keys().cloned().collect())
        .unwrap_or_default()
}

/// A local `$ref` (`#/$defs/Name`) in `schema`.
fn resolve<'a>(schema: &'a Value, reference: &str) -> Option<&'a Value> {
    schema.pointer(reference.strip_prefix('#')?)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn types() -> StepTypes {
        let schema = json!({
            "type": "object",
            "additionalProperties": false,
            "required": ["title"],
            "properties": {
                "title": {"type": "string"},
                "fetch_depth": {"type": "integer", "minimum": 0},
                "body": {"type": "string"},
                "tests": {"type": "array", "items": {"$ref": "#/$defs/Test"}}
            },
            "$defs": {"Test": {"type": "object", "additionalProperties": false, "required": ["url"],
                "properties": {"url": {"type": "string"}, "expect_status": {"type": "integer"}}}}
        });
        let mut types = StepTypes::new(["plain"]);
        types.add("s", &schema.to_string()).unwrap();
        types
    }

    fn problems(config: Value) -> Vec<(String, String)> {
        types().problems("s", &config, "config")
    }

    #[test]
    fn unknown_fields_are_named_with_a_hint() {
        let p = problems(json!({"title": "t", "fetch_dpeth": 5}));
        assert_eq!(p.len(), 1, "{p:?}");
        assert_eq!(p[0].0, "config.fetch_dpeth");
        assert!(p[0].1.starts_with("unknown field `fetch_dpeth` (known: "), "{}", p[0].1);
        assert!(p[0].1.ends_with("did you mean `fetch_depth`?"), "{}", p[0].1);
    }

    #[test]
    fn nested_fields_are_placed_and_checked_through_refs() {
        let p = problems(json!({"title": "t", "tests": [{"url": "u"}, {"ur": "u", "expect_status": "x"}]}));
        let fields: Vec<&str> = p.iter().map(|(f, _)| f.as_str()).collect();
        assert!(fields.contains(&"config.tests[1].ur"), "{p:?}");
        assert!(fields.contains(&"config.tests[1]"), "missing url: {p:?}");
        assert!(fields.contains(&"config.tests[1].expect_status"), "{p:?}");
        let unknown = p.iter().find(|(f, _)| f == "config.tests[1].ur").unwrap();
        assert!(unknown.1.contains("did you mean `url`?"), "{}", unknown.1);
    }

    #[test]
    fn missing_and_mistyped_fields_are_reported() {
        let p = problems(json!({"fetch_depth": "fifty"}));
        assert!(p.contains(&("config".into(), "missing field `title`".into())), "{p:?}");
        assert!(
            p.iter()
                .any(|(f, m)| f == "config.fetch_depth" && m.contains("integer")),
            "{p:?}"
        );
    }

    #[test]
    fn values_the_run_decides_are_not_type_checked() {
        assert_eq!(problems(json!({"title": "t", "fetch_depth": "{{ depth }}"})), vec![]);
        assert_eq!(problems(json!({"title_from": "review.raw_output"})), vec![]);
        // A misspelled `*_from` is still unknown, under the name the pipeline used.
        let p = problems(json!({"title": "t", "bdy_from": "review.raw_output"}));
        assert_eq!(p[0].0, "config.bdy_from", "{p:?}");
    }

    #[test]
    fn types_without_a_schema_accept_anything() {
        assert!(types().problems("plain", &json!({"anything": 1}), "config").is_empty());
        assert!(types().contains("plain") && !types().contains("other"));
        let mut t = StepTypes::default();
        assert!(t.add("bad", "{\"type\": 5}").is_err());
        assert!(t.contains("bad"));
    }
}
