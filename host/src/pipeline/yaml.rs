//! marked-yaml helpers for the parser: node positions (1-based, as
//! marked-yaml reports them), null and scalar conversion, and turning loader
//! errors into diagnostics.

use marked_yaml::types::{MarkedMappingNode, MarkedScalarNode};
use marked_yaml::{LoadError, Node};
use serde_json::Value;

use super::diagnostic::{Diagnostic, Pos};

/// A loader error (syntax, shape, duplicate key) as a file-level diagnostic.
pub(super) fn load_error(file: &str, error: &LoadError) -> Diagnostic {
    let (marker, message) = match error {
        LoadError::ScanError(m, e) => (*m, format!("invalid YAML: {}", e.info())),
        LoadError::TopLevelMustBeMapping(m) | LoadError::TopLevelMustBeSequence(m) => (
            *m,
            "a pipeline file must be a YAML mapping (name:, triggers:, steps:)".to_owned(),
        ),
        LoadError::UnexpectedAnchor(m) => (*m, "YAML anchors and aliases are not supported".to_owned()),
        LoadError::MappingKeyMustBeScalar(m) => (*m, "mapping keys must be plain strings".to_owned()),
        LoadError::UnexpectedTag(m) => (*m, "YAML tags (`!name`) are not supported".to_owned()),
        LoadError::DuplicateKey(inner) => {
            let first = marker_pos(inner.prev_key.span().start().copied());
            let pos = marker_pos(inner.key.span().start().copied());
            let message = format!(
                "duplicate key `{}` (first set at line {})",
                inner.key.as_str(),
                first.line
            );
            return Diagnostic::new(file, pos, "", message);
        }
    };
    Diagnostic::new(file, marker_pos(Some(marker)), "", message)
}

/// The line of a `---` that starts a second document (the loader silently
/// reads only the first one).
pub(super) fn second_document(text: &str) -> Option<usize> {
    let mut seen_content = false;
    for (i, line) in text.lines().enumerate() {
        let is_marker = line == "---" || line.starts_with("--- ") || line.starts_with("---\t");
        if is_marker && seen_content {
            return Some(i + 1);
        }
        let trimmed = line.trim_start();
        seen_content |= !is_marker && !trimmed.is_empty() && !trimmed.starts_with(['#', '%']);
    }
    None
}

/// A marked-yaml marker as a [`Pos`] (1:1 when absent).
pub(super) fn marker_pos(marker: Option<marked_yaml::Marker>) -> Pos {
    marker.map_or(Pos::START, |m| Pos {
        line: m.line(),
        column: m.column(),
    })
}

/// Where a node starts; for a block mapping that is its first key (the
/// loader marks block mappings after their first key).
pub(super) fn node_pos(node: &Node) -> Pos {
    if let Node::Mapping(map) = node
        && let Some((key, _)) = map.iter().next()
    {
        return marker_pos(key.span().start().copied());
    }
    marker_pos(node.span().start().copied())
}

/// A plain empty value (`key:` with nothing after it) or `~` / `null`.
pub(super) fn is_null(scalar: &MarkedScalarNode) -> bool {
    scalar.may_coerce() && matches!(scalar.as_str(), "" | "~" | "null" | "Null" | "NULL")
}

/// What a node is, for "expected X, found Y" messages.
pub(super) fn describe(node: &Node) -> &'static str {
    match node {
        Node::Scalar(s) if is_null(s) => "nothing",
        Node::Scalar(_) => "a string",
        Node::Mapping(_) => "a mapping",
        Node::Sequence(_) => "a list",
    }
}

/// The value stored under `key`, with the key node (for its position).
pub(super) fn entry<'m>(map: &'m MarkedMappingNode, key: &str) -> Option<(&'m MarkedScalarNode, &'m Node)> {
    map.iter().find(|(k, _)| k.as_str() == key)
}

/// The value's position, or the key's when the value is empty (the loader
/// places an empty value at the start of the next token).
pub(super) fn key_or_value_pos(key: &MarkedScalarNode, value: &Node) -> Pos {
    match value {
        Node::Scalar(s) if s.as_str().is_empty() && s.may_coerce() => marker_pos(key.span().start().copied()),
        other => node_pos(other),
    }
}

/// A config scalar as JSON: plain `null`/`~`/empty, booleans and numbers are
/// typed; quoted scalars always stay strings.
pub(super) fn scalar_json(s: &MarkedScalarNode) -> Value {
    let text = s.as_str();
    if !s.may_coerce() {
        return Value::String(text.to_owned());
    }
    if is_null(s) {
        return Value::Null;
    }
    if let Some(b) = s.as_bool() {
        return Value::Bool(b);
    }
    if let Ok(i) = text.parse::<i64>() {
        return Value::from(i);
    }
    if let Ok(u) = text.parse::<u64>() {
        return Value::from(u);
    }
    let numeric = text
        .chars()
        .all(|c| c.is_ascii_digit() || matches!(c, '.' | 'e' | 'E' | '+' | '-'));
    match text.parse::<f64>() {
        Ok(f) if numeric && f.is_finite() => Value::from(f),
        _ => Value::String(text.to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scalar(text: &str, plain: bool) -> Value {
        let mut node = MarkedScalarNode::from(text);
        node.set_coerce(plain);
        scalar_json(&node)
    }

    #[test]
    fn plain_scalars_are_typed_and_quoted_ones_stay_strings() {
        assert_eq!(scalar("50", true), Value::from(50));
        assert_eq!(scalar("50", false), Value::from("50"));
        assert_eq!(scalar("0.5", true), Value::from(0.5));
        assert_eq!(scalar("1e3", true), Value::from(1000.0));
        assert_eq!(scalar("18446744073709551615", true), Value::from(u64::MAX));
        assert_eq!(scalar("true", true), Value::from(true));
        assert_eq!(scalar("~", true), Value::Null);
        for text in ["yes", "inf", "NaN", "0x10", "1.2.3", "-"] {
            assert_eq!(scalar(text, true), Value::from(text), "{text} stays a string");
        }
    }

    #[test]
    fn second_document_ignores_a_leading_marker_and_comments() {
        assert_eq!(second_document("---\n# c\nname: a\n"), None);
        assert_eq!(second_document("# c\n---\nname: a\n--- \nname: b\n"), Some(4));
        assert_eq!(second_document("a: |\n  ---\n"), None);
    }
}
