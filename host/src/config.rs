//! The operator's config file (TOML). String values may name environment variables as
//! `${NAME}`, so secrets stay out of the file; with no file, defaults apply.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::policy::{GrantConfig, Grants, PolicyError};
use crate::runtime::{LogLimits, RuntimeConfig};

/// The whole config file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Where the store, artifacts and compile cache live.
    pub data_dir: PathBuf,
    /// Custom plugins: `<step_type>.wasm` files, picked up without a restart.
    pub plugins_dir: PathBuf,
    /// Secrets pipelines may reference as `${NAME}`; masked in every log line.
    pub secrets: BTreeMap<String, String>,
    /// Plugin grants.
    pub plugins: PluginsConfig,
    /// Runtime limits.
    pub limits: LimitsConfig,
}

/// `[plugins]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PluginsConfig {
    /// `[plugins.grants.<step_type>]`: interfaces and allow-lists per step type.
    pub grants: BTreeMap<String, GrantConfig>,
}

/// `[limits]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    /// Linear memory per step, in MiB.
    pub memory_mb: usize,
    /// Steps running at once.
    pub max_concurrent_steps: u32,
    /// Step log kept per step, in KiB.
    pub log_kb: usize,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            memory_mb: 256,
            max_concurrent_steps: 16,
            log_kb: 1024,
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            data_dir: "powernode-data".into(),
            plugins_dir: "plugins".into(),
            secrets: BTreeMap::new(),
            plugins: PluginsConfig::default(),
            limits: LimitsConfig::default(),
        }
    }
}

/// A config file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file cannot be read.
    #[error("cannot read config `{path}`: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Not valid TOML, or a field is unknown or of the wrong type.
    #[error("config `{path}`: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser's message, with line and column.
        message: String,
    },
    /// `${NAME}` names an environment variable that is not set.
    #[error(
        "config `{path}`: `{key}` refers to the environment variable `{var}`, which is not set; export it or change the value"
    )]
    MissingEnv {
        /// The file.
        path: PathBuf,
        /// The key holding the reference.
        key: String,
        /// The variable name.
        var: String,
    },
    /// A grant is malformed.
    #[error("config: {0}")]
    Policy(#[from] PolicyError),
}

impl Config {
    /// Reads `path`, or returns the defaults when none is given.
    pub fn load(path: Option<&Path>) -> Result<Config, ConfigError> {
        let Some(path) = path else { return Ok(Config::default()) };
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.into(),
            source,
        })?;
        Config::parse(path, &text, &|name| std::env::var(name).ok())
    }

    /// Parses config text; `env` looks up `${NAME}` references.
    pub fn parse(path: &Path, text: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        let parse_err = |message: String| ConfigError::Parse {
            path: path.into(),
            message,
        };
        let mut value: toml::Table = toml::from_str(text).map_err(|e| parse_err(e.to_string()))?;
        for (key, v) in value.iter_mut() {
            expand(path, key, v, env)?;
        }
        let config: Config = toml::Value::Table(value)
            .try_into()
            .map_err(|e: toml::de::Error| parse_err(e.to_string()))?;
        config.grants()?;
        Ok(config)
    }

    /// The grants, built-in defaults overlaid by `[plugins.grants]`.
    pub fn grants(&self) -> Result<Grants, PolicyError> {
        Grants::new(&self.plugins.grants)
    }

    /// Runtime limits from `[limits]`, with the compile cache under the data directory.
    pub fn runtime_config(&self) -> RuntimeConfig {
        RuntimeConfig {
            memory_limit: self.limits.memory_mb << 20,
            max_concurrent_steps: self.limits.max_concurrent_steps.max(1),
            cache_dir: Some(self.data_dir.join("cache").join("components")),
            log_limits: LogLimits {
                kept_bytes: self.limits.log_kb << 10,
                ..LogLimits::default()
            },
            ..RuntimeConfig::default()
        }
    }
}

fn expand(
    path: &Path,
    key: &str,
    value: &mut toml::Value,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<(), ConfigError> {
    match value {
        toml::Value::String(s) => {
            let mut out = String::new();
            let mut rest = s.as_str();
            while let Some(start) = rest.find("${") {
                let Some(len) = rest[start..].find('}') else { break };
                let var = &rest[start + 2..start + len];
                let val = env(var).ok_or_else(|| ConfigError::MissingEnv {
                    path: path.into(),
                    key: key.into(),
                    var: var.into(),
                })?;
                out.push_str(&rest[..start]);
                out.push_str(&val);
                rest = &rest[start + len + 1..];
            }
            out.push_str(rest);
            *s = out;
        }
        toml::Value::Array(items) => {
            for v in items {
                expand(path, key, v, env)?;
            }
        }
        toml::Value::Table(t) => {
            for (k, v) in t.iter_mut() {
                expand(path, &format!("{key}.{k}"), v, env)?;
            }
        }
        _ => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::Capability;

    fn env(name: &str) -> Option<String> {
        (name == "DEPLOY_SECRET").then(|| "s3cret-value".to_string())
    }

    #[test]
    fn env_references_expand_and_grants_parse() {
        let text = r#"
data_dir = "data"
[secrets]
DEPLOY_SECRET = "${DEPLOY_SECRET}"
[plugins.grants.deploy]
interfaces = ["provider"]
http = ["deploy.example.com"]
"#;
        let c = Config::parse(Path::new("p.toml"), text, &env).unwrap();
        assert_eq!(c.secrets["DEPLOY_SECRET"], "s3cret-value");
        let g = c.grants().unwrap().for_plugin("deploy");
        assert!(g.allows(Capability::Provider) && g.allows(Capability::Http) && !g.allows(Capability::Process));
    }

    #[test]
    fn missing_env_var_is_named() {
        let err = Config::parse(Path::new("p.toml"), "[secrets]\nX = \"${NOPE}\"\n", &env).unwrap_err();
        assert_eq!(
            err.to_string(),
            "config `p.toml`: `secrets.X` refers to the environment variable `NOPE`, which is not set; export it or change the value"
        );
    }

    #[test]
    fn unknown_field_and_bad_grant_are_reported() {
        let err = Config::parse(Path::new("p.toml"), "data_dri = \"x\"\n", &env).unwrap_err();
        assert!(err.to_string().contains("unknown field `data_dri`"), "{err}");
        let err = Config::parse(
            Path::new("p.toml"),
            "[plugins.grants.x]\ninterfaces = [\"root\"]\n",
            &env,
        )
        .unwrap_err();
        assert!(err.to_string().contains("unknown variant `root`"), "{err}");
        let err = Config::parse(
            Path::new("p.toml"),
            "[plugins.grants.x]\nhttp = [\"https://a.b\"]\n",
            &env,
        )
        .unwrap_err();
        assert!(err.to_string().contains("invalid http allow-list entry"), "{err}");
    }
}
