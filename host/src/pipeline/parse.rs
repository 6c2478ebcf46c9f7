//! YAML text -> [`Pipeline`]: structure only (shapes, types, unknown keys),
//! recording where every field was written. All structural problems are
//! collected before returning; meaning is checked later by `validate`.

use marked_yaml::types::MarkedMappingNode;
use marked_yaml::{LoaderOptions, Node};
use serde_json::{Map, Value};

use super::definition::{
    Approval, CONCURRENCY_KEYS, Concurrency, PIPELINE_KEYS, Pipeline, STEP_KEYS, Spans, StepDef, TRIGGER_KEYS, Trigger,
};
use super::diagnostic::{Diagnostic, Diagnostics, Pos, field_index, field_key, hint};
use super::yaml::{
    describe, entry, is_null, key_or_value_pos, load_error, marker_pos, node_pos, scalar_json, second_document,
};

/// Parses pipeline YAML `text` read from `file` (the name is only used in
/// diagnostics). Fails with every structural problem found, each positioned.
pub fn parse(file: &str, text: &str) -> Result<Pipeline, Diagnostics> {
    let options = LoaderOptions::default()
        .prevent_coercion(true)
        .error_on_duplicate_keys(true);
    let root =
        marked_yaml::parse_yaml_with_options(0, text, options).map_err(|e| Diagnostics(vec![load_error(file, &e)]))?;
    if let Some(line) = second_document(text) {
        let message = "a pipeline file holds one YAML document; this `---` starts another";
        let pos = Pos { line, column: 1 };
        return Err(Diagnostics(vec![Diagnostic::new(file, pos, "", message)]));
    }
    let mut parser = Parser {
        file,
        spans: Spans::default(),
        problems: Vec::new(),
    };
    let pipeline = parser.pipeline(&root);
    Diagnostics::check(parser.problems)?;
    Ok(Pipeline {
        spans: parser.spans,
        ..pipeline
    })
}

struct Parser<'a> {
    file: &'a str,
    spans: Spans,
    problems: Vec<Diagnostic>,
}

impl Parser<'_> {
    fn problem(&mut self, pos: Pos, field: &str, message: impl Into<String>) {
        self.problems.push(Diagnostic::new(self.file, pos, field, message));
    }

    fn pipeline(&mut self, root: &Node) -> Pipeline {
        self.spans.insert(String::new(), Pos::START);
        let empty = MarkedMappingNode::new_empty(marked_yaml::Span::new_blank());
        let map = root.as_mapping().unwrap_or(&empty);
        self.unknown_keys(map, "", PIPELINE_KEYS);
        let name = self.string(map, "", "name").unwrap_or_default();
        let description = self.string(map, "", "description");
        let triggers = self
            .list(map, "", "triggers")
            .iter()
            .enumerate()
            .filter_map(|(i, node)| self.trigger(node, &field_index("triggers", i)))
            .collect();
        let steps = self
            .list(map, "", "steps")
            .iter()
            .enumerate()
            .filter_map(|(i, node)| self.step(node, &field_index("steps", i)))
            .collect();
        let timeout_minutes = self.minutes(map, "", "");
        let concurrency = self.concurrency(map);
        Pipeline {
            name,
            description,
            triggers,
            steps,
            timeout_minutes,
            concurrency,
            report_status: self.boolean(map, "", "report_status").unwrap_or(true),
            secrets_for_forks: self.boolean(map, "", "secrets_for_forks").unwrap_or(false),
            approval: self.approval(map),
            file: self.file.to_owned(),
            spans: Spans::default(),
        }
    }

    fn concurrency(&mut self, map: &MarkedMappingNode) -> Option<Concurrency> {
        let (key, node) = entry(map, "concurrency")?;
        self.spans.insert("concurrency".into(), key_or_value_pos(key, node));
        let cfg = self.mapping(node, "concurrency", "a mapping with `group` and `cancel_in_progress`")?;
        self.unknown_keys(cfg, "concurrency", CONCURRENCY_KEYS);
        let cancel_in_progress = self.boolean(cfg, "concurrency", "cancel_in_progress").unwrap_or(false);
        let Some(group) = self.string(cfg, "concurrency", "group") else {
            self.problem(
                node_pos(node),
                "concurrency.group",
                "missing `group`, e.g. `deploy-{{ branch }}`",
            );
            return None;
        };
        Some(Concurrency {
            group,
            cancel_in_progress,
        })
    }

    /// `approval:`: `none`, `forks` or `always`; absent or null gives `none`.
    fn approval(&mut self, map: &MarkedMappingNode) -> Approval {
        let Some(name) = self.string(map, "", "approval") else {
            return Approval::None;
        };
        Approval::from_name(&name).unwrap_or_else(|| {
            let pos = self.spans.at("approval");
            self.problem(
                pos,
                "approval",
                format!(
                    "unknown value `{name}`: expected one of {} (`forks` holds pull requests from forks until approved)",
                    Approval::NAMES.join(", ")
                ),
            );
            Approval::None
        })
    }

    /// A boolean field (`true` or `false`); absent or null gives `None`.
    fn boolean(&mut self, map: &MarkedMappingNode, parent: &str, key: &str) -> Option<bool> {
        let (k, value) = entry(map, key)?;
        let field = field_key(parent, key);
        self.spans.insert(field.clone(), key_or_value_pos(k, value));
        match value {
            Node::Scalar(s) if is_null(s) => None,
            Node::Scalar(s) if s.as_str() == "true" => Some(true),
            Node::Scalar(s) if s.as_str() == "false" => Some(false),
            other => {
                let found = match other {
                    Node::Scalar(s) => format!("`{}`", s.as_str()),
                    other => describe(other).to_owned(),
                };
                self.problem(
                    node_pos(other),
                    &field,
                    format!("expected true or false, found {found}"),
                );
                None
            }
        }
    }

    fn trigger(&mut self, node: &Node, path: &str) -> Option<Trigger> {
        let map = self.mapping(node, path, "a trigger")?;
        self.unknown_keys(map, path, TRIGGER_KEYS);
        Some(Trigger {
            kind: self.string(map, path, "type").unwrap_or_default(),
            events: self.strings(map, path, "events"),
            branches: self.strings(map, path, "branches"),
            paths: self.strings(map, path, "paths"),
        })
    }

    fn step(&mut self, node: &Node, path: &str) -> Option<StepDef> {
        let map = self.mapping(node, path, "a step")?;
        self.unknown_keys(map, path, STEP_KEYS);
        let step_type = self.string(map, path, "type").unwrap_or_default();
        // A step without `name:` is named by its type, so `claude_execute.raw_output` works.
        let name = self.string(map, path, "name").unwrap_or_else(|| step_type.clone());
        let mut timeout_minutes = self.minutes(map, path, path);
        let mut config = Map::new();
        if let Some((key, value)) = entry(map, "config") {
            let config_path = field_key(path, "config");
            match value {
                Node::Mapping(cfg) => {
                    if let Some(lifted) = self.minutes(cfg, &config_path, path) {
                        if timeout_minutes.is_some() {
                            let pos = entry(cfg, "timeout_minutes").map_or(Pos::START, |(k, v)| key_or_value_pos(k, v));
                            let field = field_key(&config_path, "timeout_minutes");
                            let message = "timeout_minutes is set both on the step and in its config; keep one";
                            self.problem(pos, &field, message);
                        }
                        timeout_minutes = Some(lifted);
                    }
                    self.spans.insert(config_path.clone(), node_pos(value));
                    for (k, v) in cfg.iter().filter(|(k, _)| k.as_str() != "timeout_minutes") {
                        let field = field_key(&config_path, k.as_str());
                        config.insert(k.as_str().to_owned(), self.json(key_or_value_pos(k, v), v, &field));
                    }
                }
                Node::Scalar(s) if is_null(s) => {}
                other => {
                    let pos = key_or_value_pos(key, other);
                    let found = describe(other);
                    self.problem(pos, &config_path, format!("expected a mapping, found {found}"));
                }
            }
        }
        Some(StepDef {
            name,
            step_type,
            config: Value::Object(config),
            timeout_minutes,
            condition: self.string(map, path, "if"),
            continue_on_error: self.boolean(map, path, "continue_on_error").unwrap_or(false),
            line: node_pos(node).line,
        })
    }

    /// Reads `timeout_minutes` from `map`, recording its position under the
    /// step's own `timeout_minutes` field wherever it was written.
    fn minutes(&mut self, map: &MarkedMappingNode, parent: &str, step_path: &str) -> Option<f64> {
        let (key, value) = entry(map, "timeout_minutes")?;
        let pos = key_or_value_pos(key, value);
        let number = match value {
            Node::Scalar(s) if !is_null(s) => s.as_str().trim().parse::<f64>().ok(),
            _ => None,
        };
        if number.is_none() {
            let found = match value {
                Node::Scalar(s) if !is_null(s) => format!("`{}`", s.as_str()),
                other => describe(other).to_owned(),
            };
            let field = field_key(parent, "timeout_minutes");
            self.problem(pos, &field, format!("expected a number of minutes, found {found}"));
        }
        self.spans.insert(field_key(step_path, "timeout_minutes"), pos);
        number
    }

    /// Converts a config value to JSON (see [`scalar_json`]), recording the
    /// position of every value.
    fn json(&mut self, pos: Pos, node: &Node, path: &str) -> Value {
        self.spans.insert(path.to_owned(), pos);
        match node {
            Node::Scalar(s) => scalar_json(s),
            Node::Sequence(seq) => Value::Array(
                seq.iter()
                    .enumerate()
                    .map(|(i, item)| self.json(node_pos(item), item, &field_index(path, i)))
                    .collect(),
            ),
            Node::Mapping(map) => Value::Object(
                map.iter()
                    .map(|(k, v)| {
                        let field = field_key(path, k.as_str());
                        (k.as_str().to_owned(), self.json(key_or_value_pos(k, v), v, &field))
                    })
                    .collect(),
            ),
        }
    }

    fn unknown_keys(&mut self, map: &MarkedMappingNode, path: &str, allowed: &[&str]) {
        for (key, _) in map.iter() {
            let name = key.as_str();
            if !allowed.contains(&name) {
                let message = format!(
                    "unknown field `{name}`, expected one of: {}{}",
                    allowed.join(", "),
                    hint(name, allowed.iter().copied())
                );
                let pos = marker_pos(key.span().start().copied());
                self.problem(pos, &field_key(path, name), message);
            }
        }
    }

    fn mapping<'n>(&mut self, node: &'n Node, path: &str, what: &str) -> Option<&'n MarkedMappingNode> {
        self.spans.insert(path.to_owned(), node_pos(node));
        match node {
            Node::Mapping(map) => Some(map),
            other => {
                let message = format!("expected {what} (a mapping), found {}", describe(other));
                self.problem(node_pos(other), path, message);
                None
            }
        }
    }

    /// A string-valued field; absent or null gives `None`.
    fn string(&mut self, map: &MarkedMappingNode, parent: &str, key: &str) -> Option<String> {
        let (k, value) = entry(map, key)?;
        let field = field_key(parent, key);
        self.spans.insert(field.clone(), key_or_value_pos(k, value));
        match value {
            Node::Scalar(s) if is_null(s) => None,
            Node::Scalar(s) => Some(s.as_str().to_owned()),
            other => {
                let message = format!("expected a string, found {}", describe(other));
                self.problem(node_pos(other), &field, message);
                None
            }
        }
    }

    /// A list-valued field; absent or null gives an empty list.
    fn list<'m>(&mut self, map: &'m MarkedMappingNode, parent: &str, key: &str) -> &'m [Node] {
        let Some((k, value)) = entry(map, key) else {
            return &[];
        };
        let field = field_key(parent, key);
        self.spans.insert(field.clone(), key_or_value_pos(k, value));
        match value {
            Node::Sequence(seq) => seq.as_slice(),
            Node::Scalar(s) if is_null(s) => &[],
            other => {
                let message = format!("expected a list, found {}", describe(other));
                self.problem(node_pos(other), &field, message);
                &[]
            }
        }
    }

    /// A list of strings; a single string counts as a one-item list.
    fn strings(&mut self, map: &MarkedMappingNode, parent: &str, key: &str) -> Vec<String> {
        if let Some((_, Node::Scalar(s))) = entry(map, key)
            && !is_null(s)
        {
            let field = field_key(parent, key);
            let pos = marker_pos(s.span().start().copied());
            self.spans.insert(field.clone(), pos);
            self.spans.insert(field_index(&field, 0), pos);
            return vec![s.as_str().to_owned()];
        }
        let field = field_key(parent, key);
        let mut out = Vec::new();
        for (i, item) in self.list(map, parent, key).iter().enumerate() {
            let item_field = field_index(&field, i);
            self.spans.insert(item_field.clone(), node_pos(item));
            match item {
                Node::Scalar(s) if !is_null(s) => out.push(s.as_str().to_owned()),
                other => {
                    let message = format!("expected a string, found {}", describe(other));
                    self.problem(node_pos(other), &item_field, message);
                }
            }
        }
        out
    }
}
