//! Template language shared by validation and rendering: the `${name}`
//! shorthand (rewritten to `{{ name }}`; `${{ name }}` too; `$${` for a
//! literal `${`), the minijinja environment (strict undefined, no
//! auto-escaping), `*_from` reference keys, and classifying the names a
//! template reads.

use minijinja::{AutoEscape, Environment, UndefinedBehavior};

/// Names describing the event that started a run; the host fills them in
/// [`RenderContext::vars`](super::RenderContext::vars).
pub const TRIGGER_VARS: &[&str] = &[
    "event",
    "action",
    "ref",
    "branch",
    "before",
    "after",
    "head_sha",
    "head_branch",
    "base_sha",
    "base_branch",
    "number",
    "title",
    "body",
    "issue_title",
    "issue_body",
    "pr_title",
    "pr_body",
    "comment_body",
    "comment_id",
    "sender",
    "repository",
    "default_branch",
    "run_id",
    "pipeline",
    // The pull request's unified diff: fetched from the forge only when a template reads it.
    "diff",
];

/// Names a step may not take because templates would read them as something
/// else (trigger variables, the secrets namespace, template keywords, builtins).
pub(super) const RESERVED_WORDS: &[&str] = &[
    "secrets",
    "loop",
    "self",
    "super",
    "varargs",
    "kwargs",
    "caller",
    "true",
    "false",
    "none",
    "and",
    "or",
    "not",
    "in",
    "is",
    "if",
    "else",
    "for",
    "range",
    "dict",
    "namespace",
    "debug",
];

/// One name a template reads, classified by where its value comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Reference {
    /// A trigger variable such as `title`.
    Trigger(String),
    /// A secret, written bare (`DEPLOY_SECRET`, `bare`) or as `secrets.NAME`.
    Secret { name: String, bare: bool },
    /// `secrets` read without naming one (`secrets[x]`): not allowed.
    AnySecret,
    /// An earlier step's outputs (`review.raw_output`), or an unknown name.
    Output { step: String, output: Option<String> },
    /// A template builtin such as `range`.
    Builtin,
}

/// A config string after `${}` translation, with the names it reads.
#[derive(Debug)]
pub(super) struct Analyzed {
    /// Minijinja source (or the final text when `literal`).
    pub source: String,
    /// True when there is nothing to render: `source` is the value as is.
    pub literal: bool,
    /// Names read, sorted by name (empty for literals).
    pub refs: Vec<Reference>,
}

/// The environment every config string is rendered in.
pub(super) fn environment() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.set_auto_escape_callback(|_| AutoEscape::None);
    env.set_keep_trailing_newline(true);
    // `debug()` would dump the whole context into a step's config.
    env.remove_global("debug");
    env
}

/// Translates `text` and finds the names it reads; `Err` carries a message
/// for bad `${}` or template syntax.
pub(super) fn analyze(env: &Environment<'_>, text: &str) -> Result<Analyzed, String> {
    let source = translate(text)?;
    if !["{{", "{%", "{#"].iter().any(|m| source.contains(m)) {
        return Ok(Analyzed {
            source,
            literal: true,
            refs: Vec::new(),
        });
    }
    let template = env.template_from_str(&source).map_err(|e| error_message(&e, &source))?;
    let refs = classify_all(env, template.undeclared_variables(true));
    drop(template);
    Ok(Analyzed {
        source,
        literal: false,
        refs,
    })
}

/// Finds the names a `*_from` expression (`review.raw_output`) reads.
pub(super) fn analyze_expression(env: &Environment<'_>, expr: &str) -> Result<Vec<Reference>, String> {
    if expr.contains("${") || expr.contains("{{") {
        return Err("takes an expression such as `review.raw_output`, not a template".to_owned());
    }
    let compiled = env.compile_expression(expr).map_err(|e| error_message(&e, expr))?;
    Ok(classify_all(env, compiled.undeclared_variables(true)))
}

/// For a `*_from` key, the key its value is stored under (`body_from` -> `body`).
pub(super) fn from_target(key: &str) -> Option<&str> {
    key.strip_suffix("_from").filter(|target| !target.is_empty())
}

/// True for names read as secrets when written bare: `UPPER_CASE`.
pub(super) fn is_secret_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_uppercase())
        && chars.all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
}

/// A one-line message for a minijinja error, naming the template line when
/// the string spans several lines.
pub(super) fn error_message(error: &minijinja::Error, source: &str) -> String {
    let mut message = match error.detail() {
        Some(detail) => format!("{}: {detail}", error.kind()),
        None => error.kind().to_string(),
    };
    if source.contains('\n')
        && let Some(line) = error.line()
    {
        message.push_str(&format!(" (line {line} of the template)"));
    }
    message
}

/// Rewrites `${expr}` (and `${{ expr }}`) to `{{ expr }}`; `$${` stands for
/// a literal `${`.
fn translate(text: &str) -> Result<String, String> {
    let mut out = String::with_capacity(text.len() + 8);
    let mut rest = text;
    while let Some(dollar) = rest.find('$') {
        out.push_str(&rest[..dollar]);
        let after = &rest[dollar + 1..];
        if let Some(escaped) = after.strip_prefix("${") {
            out.push_str("${");
            rest = escaped;
        } else if let Some(inner) = after.strip_prefix('{') {
            // `${{ expr }}` (GitHub Actions style) is accepted as `${ expr }`.
            let (open, close) = match inner.strip_prefix('{') {
                Some(mustache) => (mustache, "}}"),
                None => (inner, "}"),
            };
            let end = open
                .find(close)
                .ok_or("unclosed `${` (write `$${` for a literal `${`)")?;
            let expr = open[..end].trim();
            if expr.is_empty() {
                return Err("empty `${}`".to_owned());
            }
            out.push_str("{{ ");
            out.push_str(expr);
            out.push_str(" }}");
            rest = &open[end + close.len()..];
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    Ok(out)
}

fn classify_all(env: &Environment<'_>, names: std::collections::HashSet<String>) -> Vec<Reference> {
    let mut names: Vec<String> = names.into_iter().collect();
    names.sort();
    names.iter().map(|name| classify(env, name)).collect()
}

fn classify(env: &Environment<'_>, name: &str) -> Reference {
    let mut parts = name.split('.');
    let root = parts.next().unwrap_or_default();
    let second = parts.next().map(str::to_owned);
    if root == "secrets" {
        return match second {
            Some(name) => Reference::Secret { name, bare: false },
            None => Reference::AnySecret,
        };
    }
    if is_secret_name(root) {
        return Reference::Secret {
            name: root.to_owned(),
            bare: true,
        };
    }
    if TRIGGER_VARS.contains(&root) {
        return Reference::Trigger(root.to_owned());
    }
    if env.globals().any(|(global, _)| global == root) {
        return Reference::Builtin;
    }
    Reference::Output {
        step: root.to_owned(),
        output: second,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refs(text: &str) -> Vec<Reference> {
        analyze(&environment(), text).unwrap().refs
    }

    #[test]
    fn dollar_brace_becomes_mustache_and_double_dollar_escapes() {
        assert_eq!(translate("a ${ x } b ${y}").unwrap(), "a {{ x }} b {{ y }}");
        assert_eq!(translate("echo $${HOME} $1 $$").unwrap(), "echo ${HOME} $1 $$");
        assert_eq!(
            translate("echo ${x").unwrap_err(),
            "unclosed `${` (write `$${` for a literal `${`)"
        );
        assert_eq!(translate("${ }").unwrap_err(), "empty `${}`");
    }

    #[test]
    fn plain_text_and_escapes_are_literal() {
        let a = analyze(&environment(), "echo $${HOME}").unwrap();
        assert!(a.literal);
        assert_eq!(a.source, "echo ${HOME}");
    }

    #[test]
    fn names_are_classified_by_origin() {
        assert_eq!(
            refs("{{ title }} ${DEPLOY_SECRET} {{ secrets.TOKEN }} {{ review.raw_output }} {{ range(2) }}"),
            vec![
                Reference::Secret {
                    name: "DEPLOY_SECRET".into(),
                    bare: true
                },
                Reference::Builtin,
                Reference::Output {
                    step: "review".into(),
                    output: Some("raw_output".into())
                },
                Reference::Secret {
                    name: "TOKEN".into(),
                    bare: false
                },
                Reference::Trigger("title".into()),
            ]
        );
        assert_eq!(refs("{{ secrets[name] }}")[1], Reference::AnySecret);
    }

    #[test]
    fn loop_variables_are_not_references() {
        assert_eq!(
            refs("{% for f in get_diff.files %}{{ f }}{% endfor %}"),
            vec![Reference::Output {
                step: "get_diff".into(),
                output: Some("files".into())
            }]
        );
    }

    #[test]
    fn syntax_errors_carry_the_minijinja_message() {
        let err = analyze(&environment(), "{{ title }").unwrap_err();
        assert_eq!(err, "syntax error: unexpected `}`, expected end of variable block");
        let err = analyze(&environment(), "line one\n{% if %}").unwrap_err();
        assert_eq!(err, "syntax error: unexpected end of block (line 2 of the template)");
    }

    #[test]
    fn from_keys_name_their_target() {
        assert_eq!(from_target("body_from"), Some("body"));
        assert_eq!(from_target("_from"), None);
        assert_eq!(from_target("from"), None);
        assert!(is_secret_name("DEPLOY_SECRET2"));
        assert!(!is_secret_name("Deploy") && !is_secret_name("_X") && !is_secret_name(""));
    }

    #[test]
    fn from_expressions_reject_templates() {
        let env = environment();
        assert_eq!(
            analyze_expression(&env, "review.raw_output").unwrap(),
            vec![Reference::Output {
                step: "review".into(),
                output: Some("raw_output".into())
            }]
        );
        assert!(analyze_expression(&env, "${review.raw_output}").is_err());
    }
}
