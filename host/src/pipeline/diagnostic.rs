//! Diagnostics: problems in a pipeline file, each addressed by file, line,
//! column and field path (`pipeline.yml:12:11: steps[2].type: ...`), plus the
//! small helpers that build field paths and "did you mean" hints.

use serde::{Deserialize, Serialize};

/// A 1-based line and column in a pipeline file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Pos {
    /// 1-based line number.
    pub line: usize,
    /// 1-based column number (in characters).
    pub column: usize,
}

impl Pos {
    /// The start of a file: used when nothing more precise is known.
    pub const START: Pos = Pos { line: 1, column: 1 };
}

impl Default for Pos {
    fn default() -> Self {
        Pos::START
    }
}

/// One problem in a pipeline file, positioned so an editor can jump to it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{}", display_diagnostic(self))]
pub struct Diagnostic {
    /// File name as given by the caller (e.g. `.powernode/review.yml`).
    pub file: String,
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub column: usize,
    /// Field path such as `steps[2].config.prompt`; empty for file-level problems.
    pub field: String,
    /// Human-readable explanation.
    pub message: String,
}

impl Diagnostic {
    /// Builds a diagnostic for `field` at `pos` in `file`.
    pub fn new(file: &str, pos: Pos, field: &str, message: impl Into<String>) -> Self {
        Diagnostic {
            file: file.to_owned(),
            line: pos.line,
            column: pos.column,
            field: field.to_owned(),
            message: message.into(),
        }
    }
}

fn display_diagnostic(d: &Diagnostic) -> String {
    if d.field.is_empty() {
        format!("{}:{}:{}: {}", d.file, d.line, d.column, d.message)
    } else {
        format!("{}:{}:{}: {}: {}", d.file, d.line, d.column, d.field, d.message)
    }
}

/// Every problem found in one pass, in file order; displays one per line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{}", display_all(&self.0))]
pub struct Diagnostics(pub Vec<Diagnostic>);

impl Diagnostics {
    /// Sorts `list` into file order (stable, so same-position problems keep
    /// their discovery order); `Ok` when there is nothing to report.
    pub fn check(mut list: Vec<Diagnostic>) -> Result<(), Diagnostics> {
        if list.is_empty() {
            return Ok(());
        }
        list.sort_by_key(|d| (d.line, d.column));
        Err(Diagnostics(list))
    }

    /// The problems, in file order.
    pub fn iter(&self) -> std::slice::Iter<'_, Diagnostic> {
        self.0.iter()
    }

    /// Number of problems.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True when there are no problems (never the case for a returned error).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

fn display_all(list: &[Diagnostic]) -> String {
    list.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n")
}

/// `parent.key`, or just `key` at the top level.
pub(super) fn field_key(parent: &str, key: &str) -> String {
    if parent.is_empty() {
        key.to_owned()
    } else {
        format!("{parent}.{key}")
    }
}

/// `parent[index]`.
pub(super) fn field_index(parent: &str, index: usize) -> String {
    format!("{parent}[{index}]")
}

/// The enclosing field of `path` (`steps[2].type` -> `steps[2]` -> `steps` -> ``).
pub(super) fn parent_field(path: &str) -> Option<&str> {
    if path.is_empty() {
        return None;
    }
    Some(path.rfind(['.', '[']).map_or("", |cut| &path[..cut]))
}

/// The candidate closest to `name` by edit distance, if it is close enough to
/// be a likely typo.
pub(super) fn did_you_mean<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let limit = name.chars().count().div_ceil(3);
    candidates
        .into_iter()
        .map(|c| (edit_distance(name, c), c))
        .filter(|&(d, _)| d <= limit)
        .min_by_key(|&(d, _)| d)
        .map(|(_, c)| c)
}

/// `; did you mean `x`?` or nothing.
pub(super) fn hint<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> String {
    did_you_mean(name, candidates)
        .map(|c| format!("; did you mean `{c}`?"))
        .unwrap_or_default()
}

/// Levenshtein distance where swapping two adjacent characters costs 1.
fn edit_distance(a: &str, b: &str) -> usize {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (d[i - 1][j] + 1).min(d[i][j - 1] + 1).min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = best;
        }
    }
    d[a.len()][b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diagnostic_displays_file_line_column_field_message() {
        let d = Diagnostic::new("p.yml", Pos { line: 12, column: 11 }, "steps[2].type", "bad");
        assert_eq!(d.to_string(), "p.yml:12:11: steps[2].type: bad");
        let file_level = Diagnostic::new("p.yml", Pos::START, "", "not YAML");
        assert_eq!(file_level.to_string(), "p.yml:1:1: not YAML");
    }

    #[test]
    fn diagnostics_sort_into_file_order_one_per_line() {
        let late = Diagnostic::new("p.yml", Pos { line: 9, column: 1 }, "b", "second");
        let early = Diagnostic::new("p.yml", Pos { line: 2, column: 5 }, "a", "first");
        let err = Diagnostics::check(vec![late, early]).unwrap_err();
        assert_eq!(err.to_string(), "p.yml:2:5: a: first\np.yml:9:1: b: second");
        assert_eq!(Diagnostics::check(Vec::new()), Ok(()));
    }

    #[test]
    fn parent_field_walks_up_keys_and_indexes() {
        assert_eq!(parent_field("steps[2].config.cmd"), Some("steps[2].config"));
        assert_eq!(parent_field("steps[2]"), Some("steps"));
        assert_eq!(parent_field("steps"), Some(""));
        assert_eq!(parent_field(""), None);
    }

    #[test]
    fn did_you_mean_finds_typos_only() {
        assert_eq!(did_you_mean("revieww", ["checkout", "review"]), Some("review"));
        assert_eq!(did_you_mean("tpye", ["name", "type"]), Some("type"));
        assert_eq!(did_you_mean("deploy", ["checkout", "review"]), None);
    }
}
