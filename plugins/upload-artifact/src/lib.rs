//! The `upload_artifact` step: stores workspace files matching a path or glob as run
//! artifacts.
//!
//! The guest sees the workspace as its current directory through WASI, expands the
//! pattern itself, and hands each matching file to the host's `artifacts` interface,
//! which reads, hashes and keeps it. Needs the `artifacts` and `log` grants.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Component, Path};

use powernode_sdk::{Context, Error, Info, Output, Step, artifacts, log};
use serde::Deserialize;

/// The step's `config` block.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// File, directory or glob relative to the workspace.
    pub path: String,
    /// Artifact name, or prefix when several files match.
    #[serde(default)]
    pub name: Option<String>,
    /// What to do when nothing matches.
    #[serde(default)]
    pub if_no_files_found: IfNoFilesFound,
}

/// What to do when the pattern matches no file.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum IfNoFilesFound {
    /// Fail the step.
    #[default]
    Error,
    /// Log a warning and succeed.
    Warn,
    /// Succeed silently.
    Ignore,
}

struct UploadArtifact;

impl Step for UploadArtifact {
    type Config = Config;

    fn info() -> Info {
        Info::new(
            "upload_artifact",
            env!("CARGO_PKG_VERSION"),
            "Stores workspace files matching a path or glob as run artifacts",
        )
    }

    fn run(ctx: Context<Config>) -> Result<Output, Error> {
        let config = ctx.config;
        let pattern = check_pattern(&config.path)?;
        let name = match config.name.as_deref().map(str::trim) {
            Some("") => return Err(Error::config("`name` must not be empty")),
            Some(n) => Some(n.trim_matches('/').to_string()),
            None => None,
        };

        let files = expand(&pattern)?;
        if files.is_empty() {
            let message = format!("no files found matching `{}`", config.path);
            match config.if_no_files_found {
                IfNoFilesFound::Error => return Err(Error::Failed(message)),
                IfNoFilesFound::Warn => log::warn(&message),
                IfNoFilesFound::Ignore => {}
            }
        }

        let mut lines = Vec::new();
        let mut names = Vec::new();
        for (artifact_name, path) in artifact_names(name.as_deref(), &files) {
            let stored = artifacts::store(&artifact_name, &path)
                .map_err(|e| Error::failed(format!("storing `{path}` as `{artifact_name}`: {e}")))?;
            let line = format!("{} ({} bytes, sha256 {})", stored.name, stored.size, stored.sha256);
            log::info(&format!("stored artifact {line}"));
            lines.push(line);
            names.push(stored.name);
        }

        Ok(Output::new(lines.join("\n"))
            .with("count", names.len())
            .with("names", names.join(",")))
    }
}

powernode_sdk::step!(UploadArtifact);

/// Normalizes `path` into a workspace-relative pattern, refusing absolute paths and `..`.
pub fn check_pattern(path: &str) -> Result<String, Error> {
    let trimmed = path.trim();
    if trimmed.is_empty() {
        return Err(Error::config("`path` must not be empty"));
    }
    if trimmed.starts_with('/') || trimmed.starts_with('\\') || Path::new(trimmed).is_absolute() {
        return Err(Error::config(format!(
            "`path` must be relative to the workspace, got `{path}`"
        )));
    }
    let mut parts = Vec::new();
    for part in trimmed.split(['/', '\\']) {
        match part {
            ".." => {
                return Err(Error::config(format!("`path` must not contain `..`, got `{path}`")));
            }
            "" | "." => {}
            p => parts.push(p),
        }
    }
    if parts.is_empty() {
        // "." or "./": the whole workspace.
        return Ok(".".into());
    }
    let pattern = parts.join("/");
    glob::Pattern::new(&pattern).map_err(|e| Error::config(format!("`path` is not a valid glob: {e}")))?;
    Ok(pattern)
}

/// Workspace-relative files (with `/` separators) that `pattern` names, sorted.
/// Directories that match are walked recursively; hidden entries (`.name`) match only
/// when the pattern spells the dot.
fn expand(pattern: &str) -> Result<Vec<String>, Error> {
    let options = glob::MatchOptions {
        case_sensitive: true,
        require_literal_separator: true,
        require_literal_leading_dot: true,
    };
    let mut files = BTreeSet::new();
    let matches =
        glob::glob_with(pattern, options).map_err(|e| Error::config(format!("`path` is not a valid glob: {e}")))?;
    for entry in matches {
        let path = entry.map_err(|e| Error::failed(format!("reading the workspace: {e}")))?;
        collect(&path, &mut files)?;
    }
    Ok(files.into_iter().collect())
}

/// Adds `path` if it is a file, or every file below it if it is a directory.
fn collect(path: &Path, files: &mut BTreeSet<String>) -> Result<(), Error> {
    let meta = fs::metadata(path).map_err(|e| Error::failed(format!("reading `{}`: {e}", path.display())))?;
    if meta.is_file() {
        files.insert(relative(path));
    } else if meta.is_dir() {
        let entries = fs::read_dir(path).map_err(|e| Error::failed(format!("reading `{}`: {e}", path.display())))?;
        for entry in entries {
            let entry = entry.map_err(|e| Error::failed(format!("reading `{}`: {e}", path.display())))?;
            if entry.file_name().to_string_lossy().starts_with('.') {
                continue;
            }
            collect(&entry.path(), files)?;
        }
    }
    Ok(())
}

/// `path` as a `/`-separated workspace-relative string without `./`.
fn relative(path: &Path) -> String {
    path.components()
        .filter_map(|c| match c {
            Component::Normal(p) => Some(p.to_string_lossy().into_owned()),
            _ => None,
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// Pairs each file with its artifact name: the file's path; `name` for a single file;
/// `name/path` when several files match and a name is set.
pub fn artifact_names(name: Option<&str>, files: &[String]) -> Vec<(String, String)> {
    files
        .iter()
        .map(|file| {
            let artifact = match name {
                None => file.clone(),
                Some(n) if files.len() == 1 => n.to_string(),
                Some(n) => format!("{n}/{file}"),
            };
            (artifact, file.clone())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_defaults_and_unknown_fields() {
        let c: Config = serde_json::from_str(r#"{"path":"dist/*.tar.gz"}"#).unwrap();
        assert_eq!(c.if_no_files_found, IfNoFilesFound::Error);
        assert!(c.name.is_none());
        let c: Config = serde_json::from_str(r#"{"path":"a","if_no_files_found":"warn"}"#).unwrap();
        assert_eq!(c.if_no_files_found, IfNoFilesFound::Warn);
        let e = serde_json::from_str::<Config>(r#"{"path":"a","nmae":"x"}"#).unwrap_err();
        assert!(e.to_string().contains("nmae"), "{e}");
        assert!(serde_json::from_str::<Config>(r#"{"path":"a","if_no_files_found":"fail"}"#).is_err());
    }

    #[test]
    fn patterns_are_normalized_and_checked() {
        assert_eq!(check_pattern("./dist//*.tar.gz").unwrap(), "dist/*.tar.gz");
        assert_eq!(check_pattern("target/**/report.xml").unwrap(), "target/**/report.xml");
        assert_eq!(check_pattern("./").unwrap(), ".");
        for bad in ["/etc/passwd", "../x", "a/../../b", "/workspace/x", "\\x", "", "a/***"] {
            assert!(matches!(check_pattern(bad), Err(Error::InvalidConfig(_))), "{bad}");
        }
    }

    #[test]
    fn names() {
        let one = vec!["dist/a.tgz".to_string()];
        let two = vec!["dist/a.tgz".to_string(), "dist/b.tgz".to_string()];
        assert_eq!(
            artifact_names(None, &one),
            vec![("dist/a.tgz".into(), "dist/a.tgz".into())]
        );
        assert_eq!(artifact_names(Some("pkg"), &one)[0].0, "pkg");
        let named: Vec<String> = artifact_names(Some("pkg"), &two).into_iter().map(|p| p.0).collect();
        assert_eq!(named, vec!["pkg/dist/a.tgz", "pkg/dist/b.tgz"]);
    }

    #[test]
    fn expands_globs_and_directories() {
        let dir = std::env::temp_dir().join(format!("upload-artifact-test-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(dir.join("dist/sub")).unwrap();
        fs::create_dir_all(dir.join("target/x/y")).unwrap();
        for f in [
            "dist/a.tar.gz",
            "dist/b.tar.gz",
            "dist/c.txt",
            "dist/sub/d.tar.gz",
            "dist/.hidden.tar.gz",
            "target/x/y/report.xml",
            "target/report.xml",
        ] {
            fs::write(dir.join(f), f).unwrap();
        }
        std::env::set_current_dir(&dir).unwrap();
        assert_eq!(expand("dist/*.tar.gz").unwrap(), vec!["dist/a.tar.gz", "dist/b.tar.gz"]);
        assert_eq!(
            expand("target/**/report.xml").unwrap(),
            vec!["target/report.xml", "target/x/y/report.xml"]
        );
        assert_eq!(expand("dist/sub").unwrap(), vec!["dist/sub/d.tar.gz"]);
        assert_eq!(expand("dist/c.txt").unwrap(), vec!["dist/c.txt"]);
        assert_eq!(expand("dist/.hidden.tar.gz").unwrap(), vec!["dist/.hidden.tar.gz"]);
        assert!(expand("nothing/*").unwrap().is_empty());
        assert_eq!(expand("dist").unwrap().len(), 4);
        fs::remove_dir_all(&dir).unwrap();
    }
}
