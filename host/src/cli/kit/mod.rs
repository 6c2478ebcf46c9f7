//! The plugin author's loop: `powernode plugin new` writes a step project in Rust, Python or
//! JavaScript ready to build and test; `powernode plugin build` builds it into `NAME.wasm`
//! with the right tool, target and flags, reading what to build from `powernode-step.toml`.

mod new;
mod toolchain;

use std::path::Path;

use anyhow::Context;
use serde::{Deserialize, Serialize};

pub use new::{NewArgs, new};
pub use toolchain::{BuildArgs, build};

/// The file in a project's folder saying what `powernode plugin build` builds.
const PROJECT_FILE: &str = "powernode-step.toml";

/// A step's language.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Lang {
    /// Rust with `powernode-sdk`.
    Rust,
    /// Python with componentize-py and `powernode_step.py`.
    Python,
    /// JavaScript with jco (componentize-js) and `powernode-step.js`.
    Js,
}

impl Lang {
    /// Its name for people.
    pub fn display_name(self) -> &'static str {
        match self {
            Lang::Rust => "Rust",
            Lang::Python => "Python",
            Lang::Js => "JavaScript",
        }
    }
}

/// A world of `wit/step.wit`: the host interfaces a Python or JavaScript step imports (their
/// toolchains import the whole world; a Rust step imports only what it calls).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum World {
    /// `log` only.
    #[default]
    LogOnly,
    /// `log`, `kv`, `templates`, `provider`, `git`.
    Forge,
    /// Every interface, `process`, `artifacts` and `wasi:http` included.
    Full,
}

impl World {
    /// Its name in the WIT package.
    pub fn wit_name(self) -> &'static str {
        match self {
            World::LogOnly => "log-only",
            World::Forge => "forge",
            World::Full => "full",
        }
    }
}

/// The world a Python or JavaScript project is built for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
enum ProjectWorld {
    /// One of `wit/step.wit`'s.
    Packaged(World),
    /// A world of the author's own, `namespace:package/world`, in the project's WIT folder
    /// (whose root package it must be in; Powernode's WIT under its `deps/`).
    Own(String),
}

impl ProjectWorld {
    /// Its full name, for componentize-py's `-w`.
    fn qualified(&self) -> String {
        match self {
            ProjectWorld::Packaged(w) => format!("powernode:step/{}", w.wit_name()),
            ProjectWorld::Own(name) => name.clone(),
        }
    }

    /// Its name in the WIT folder's root package, for jco's `-n`.
    fn short(&self) -> &str {
        match self {
            ProjectWorld::Packaged(w) => w.wit_name(),
            ProjectWorld::Own(name) => name.rsplit('/').next().unwrap_or(name),
        }
    }
}

/// `powernode-step.toml`: the step type (built as `NAME.wasm`), its language and world.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Project {
    name: String,
    lang: Lang,
    /// Python and JavaScript only: `log-only` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    world: Option<ProjectWorld>,
    /// Python and JavaScript only: the WIT folder, relative to the project (`wit` when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    wit: Option<String>,
}

impl Project {
    /// Reads `dir`'s project file, saying how to get one when there is none.
    fn read(dir: &Path) -> anyhow::Result<Project> {
        let file = dir.join(PROJECT_FILE);
        let text = std::fs::read_to_string(&file).with_context(|| {
            format!(
                "cannot read `{}`: `powernode plugin build` builds a folder made by `powernode plugin new NAME --lang rust|python|js`; give that folder, or run it there",
                file.display()
            )
        })?;
        let project: Project =
            toml::from_str(&text).with_context(|| format!("`{}` is not a step project file", file.display()))?;
        check_name(&project.name).with_context(|| format!("`{}`: `name`", file.display()))?;
        if let Some(ProjectWorld::Own(world)) = &project.world {
            let (package, name) = world.split_once('/').unwrap_or_default();
            anyhow::ensure!(
                package.contains(':') && !name.is_empty(),
                "`{}`: `world = {world:?}` is neither `log-only`, `forge` nor `full`, nor a world of your own written `namespace:package/world` (defined in the project's `wit` folder)",
                file.display()
            );
        }
        Ok(project)
    }

    /// The file's text, with a comment saying what it is for.
    fn to_toml(&self) -> String {
        let body = toml::to_string(self).expect("a project serializes");
        format!(
            "# What `powernode plugin build` builds: `{}.wasm` from this {} project.\n{body}",
            self.name,
            self.lang.display_name()
        )
    }
}

/// A step type fit for a project: a pipeline's `type:`, the file `NAME.wasm`, a crate, a
/// Python class and a JavaScript name alike.
fn check_name(name: &str) -> anyhow::Result<()> {
    let mut chars = name.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_lowercase());
    let rest_ok = chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    anyhow::ensure!(
        first_ok && rest_ok && name.len() <= 64,
        "`{name}` cannot be a step type: use lowercase letters, digits and `_`, starting with a letter (e.g. `my_step`)"
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn step_names_are_lowercase_words_joined_by_underscores() {
        for ok in ["greet", "my_step", "step2"] {
            assert!(check_name(ok).is_ok(), "{ok}");
        }
        for bad in ["", "My", "2step", "my-step", "a/b", "_x"] {
            let e = check_name(bad).unwrap_err().to_string();
            assert!(e.contains("cannot be a step type"), "{bad}: {e}");
        }
    }

    #[test]
    fn a_project_file_round_trips_and_refuses_unknown_keys() {
        let p = Project {
            name: "greet".into(),
            lang: Lang::Python,
            world: Some(ProjectWorld::Packaged(World::Forge)),
            wit: None,
        };
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(PROJECT_FILE), p.to_toml()).unwrap();
        let back = Project::read(dir.path()).unwrap();
        assert_eq!(
            (back.name.as_str(), back.lang, back.world),
            ("greet", Lang::Python, Some(ProjectWorld::Packaged(World::Forge)))
        );
        std::fs::write(dir.path().join(PROJECT_FILE), "name = \"x\"\nlang = \"go\"\n").unwrap();
        let e = format!("{:#}", Project::read(dir.path()).unwrap_err());
        assert!(e.contains("unknown variant `go`"), "{e}");
        let own = "name = \"x\"\nlang = \"js\"\nworld = \"my:steps/counter\"\nwit = \"my-wit\"\n";
        std::fs::write(dir.path().join(PROJECT_FILE), own).unwrap();
        let back = Project::read(dir.path()).unwrap();
        let world = back.world.unwrap();
        assert_eq!(
            (world.qualified().as_str(), world.short()),
            ("my:steps/counter", "counter")
        );
        std::fs::write(
            dir.path().join(PROJECT_FILE),
            "name = \"x\"\nlang = \"js\"\nworld = \"forje\"\n",
        )
        .unwrap();
        let typo = format!("{:#}", Project::read(dir.path()).unwrap_err());
        assert!(typo.contains("is neither `log-only`, `forge` nor `full`"), "{typo}");
        let missing = format!("{:#}", Project::read(&dir.path().join("nope")).unwrap_err());
        assert!(missing.contains("made by `powernode plugin new"), "{missing}");
    }
}
