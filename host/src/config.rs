//! The operator's config file (TOML). String values may name environment variables as
//! `${NAME}`, so secrets stay out of the file; with no file, defaults apply.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::policy::{GrantConfig, Grants, PluginTrust, PolicyError};
use crate::provider::ForgeKind;
use crate::runtime::{HostLimits, LogLimits, RuntimeConfig};
use crate::sandbox::{SandboxConfig, SandboxMode};
pub use crate::secret::Secret;
use crate::store::{KvQuota, StoreConfig};

/// The whole config file. Its `Debug` shows secret names, never values.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Address the server listens on.
    pub listen: String,
    /// How the server is reached from outside (links in commit statuses).
    pub public_url: String,
    /// Bearer token for everything under `/api`; the API is closed without one. It also
    /// signs in to the dashboard.
    pub api_token: Option<Secret>,
    /// Who may look at the dashboard: `private` (default: only who signed in) or
    /// `read-only-public` (anyone may look; only who signed in may act).
    pub dashboard: DashboardMode,
    /// A dashboard sign-in token other than `api_token`, for people who should not hold the
    /// API's token.
    pub dashboard_token: Option<Secret>,
    /// Pipeline files (`*.yml`, `*.yaml`) the server loads.
    pub pipelines_dir: PathBuf,
    /// Largest webhook body accepted, in MB (GitHub's own cap is 25 MB).
    pub max_body_mb: usize,
    /// Where the store, artifacts and compile cache live.
    pub data_dir: PathBuf,
    /// Custom plugins: `<step_type>.wasm` files, picked up without a restart.
    pub plugins_dir: PathBuf,
    /// `text` (default) or `json`: one JSON object per log line, for log collectors.
    pub log_format: LogFormat,
    /// Runs executing at once.
    pub max_concurrent_runs: usize,
    /// Days ended runs, their logs and artifacts, kept workspaces and stored deliveries are
    /// kept; 0 keeps them forever.
    pub retention_days: u64,
    /// Keep the workspace of a run that did not succeed (under `data_dir/workspaces`).
    pub keep_failed_workspaces: bool,
    /// Secrets pipelines may reference as `${NAME}`; masked in every log line.
    pub secrets: BTreeMap<String, String>,
    /// Plugin grants.
    pub plugins: PluginsConfig,
    /// Runtime limits.
    pub limits: LimitsConfig,
    /// Forge connections (`[[sources]]`).
    pub sources: Vec<SourceConfig>,
    /// How `process` commands are confined: `bwrap` (default) or `off`.
    pub process_sandbox: SandboxMode,
    /// `[sandbox]`: what confined commands may read and reach, and their limits.
    pub sandbox: SandboxConfig,
    /// `[store]`: embedded (default) or PostgreSQL shared by several nodes.
    pub store: StoreConfig,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("listen", &self.listen)
            .field("public_url", &self.public_url)
            .field("api_token", &self.api_token)
            .field("dashboard", &self.dashboard)
            .field("dashboard_token", &self.dashboard_token)
            .field("pipelines_dir", &self.pipelines_dir)
            .field("max_body_mb", &self.max_body_mb)
            .field("data_dir", &self.data_dir)
            .field("plugins_dir", &self.plugins_dir)
            .field("log_format", &self.log_format)
            .field("max_concurrent_runs", &self.max_concurrent_runs)
            .field("retention_days", &self.retention_days)
            .field("keep_failed_workspaces", &self.keep_failed_workspaces)
            .field("secrets", &self.secrets.keys().collect::<Vec<_>>())
            .field("plugins", &self.plugins)
            .field("limits", &self.limits)
            .field("sources", &self.sources)
            .field("process_sandbox", &self.process_sandbox)
            .field("sandbox", &self.sandbox)
            .field("store", &self.store)
            .finish()
    }
}

/// Who may look at the dashboard.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DashboardMode {
    /// Signed out, nothing is shown but the sign-in page.
    #[default]
    Private,
    /// Anyone may see runs, logs, pipelines, plugins and deliveries; cancelling, rerunning
    /// and starting runs still need a sign-in.
    ReadOnlyPublic,
}

/// How the server writes its own log to stderr.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines (coloured on a terminal).
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// `[[sources]]`: one forge connection.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceConfig {
    /// Name of the connection (the `{source}` of `/webhooks/{source}`, `--source` of `run`).
    pub id: String,
    /// `github`, `gitea`, `forgejo` or `gitlab`.
    pub kind: ForgeKind,
    /// API base URL: `https://api.github.com`, `https://ghe.example.com/api/v3`,
    /// `https://git.example.com/api/v1` (Gitea, Forgejo), `https://gitlab.example.com/api/v4`.
    pub api_url: String,
    /// The API token, usually `"${ENV_VAR}"`.
    #[serde(default)]
    pub token: Option<Secret>,
    /// A file holding the token (e.g. a mounted secret); trailing whitespace is ignored.
    #[serde(default)]
    pub token_file: Option<PathBuf>,
    /// GitHub only, instead of a token: authenticate as this GitHub App (its App ID, or its
    /// client ID). Needs `private_key_file`.
    #[serde(default, deserialize_with = "number_or_string")]
    pub app_id: Option<String>,
    /// The GitHub App's private key (the PEM file GitHub lets you download).
    #[serde(default)]
    pub private_key_file: Option<PathBuf>,
    /// The App's installation to act as; when not set, each repository's installation is
    /// looked up (`GET /repos/{owner}/{repo}/installation`).
    #[serde(default, deserialize_with = "number_or_string")]
    pub installation_id: Option<String>,
    /// The secret webhooks from this forge are signed with.
    #[serde(default)]
    pub webhook_secret: Option<Secret>,
    /// Our own account on the forge: events it sends start nothing, and only its comments
    /// are edited in place. When not set, `powernode serve` asks the forge at start (and a
    /// run asks before its first comment); if the forge will not say, the server warns and
    /// filters nothing. Never empty.
    #[serde(default)]
    pub bot_login: Option<String>,
}

/// How a source authenticates, with its secrets read.
#[derive(Debug, Clone)]
pub enum SourceAuth {
    /// A token (`token` or `token_file`).
    Token(Secret),
    /// A GitHub App.
    App(AppAuth),
}

/// A GitHub App source's credentials.
#[derive(Debug, Clone)]
pub struct AppAuth {
    /// The App ID (or client ID): the JWT's `iss`.
    pub app_id: String,
    /// The private key, PEM.
    pub private_key: Secret,
    /// The installation, when configured.
    pub installation_id: Option<u64>,
}

/// A number in TOML, or a string (which `${ENV}` expansion gives), as a string.
fn number_or_string<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Either {
        Number(u64),
        Text(String),
    }
    Ok(Option::<Either>::deserialize(d)?.map(|v| match v {
        Either::Number(n) => n.to_string(),
        Either::Text(s) => s.trim().to_string(),
    }))
}

impl SourceConfig {
    /// Whether this source authenticates as a GitHub App.
    pub fn is_app(&self) -> bool {
        self.app_id.is_some()
    }

    /// The credentials: the token, or the App's id, key and installation.
    pub fn auth(&self) -> Result<SourceAuth, ConfigError> {
        let Some(app_id) = &self.app_id else {
            return self.read_token().map(SourceAuth::Token);
        };
        let bad = |message: String| ConfigError::Source {
            id: self.id.clone(),
            message,
        };
        let path = self
            .private_key_file
            .as_ref()
            .ok_or_else(|| bad("a GitHub App source needs `private_key_file`".into()))?;
        let private_key = std::fs::read_to_string(path)
            .map(Secret::new)
            .map_err(|source| ConfigError::Read {
                path: path.clone(),
                source,
            })?;
        let installation_id = self
            .installation_id
            .as_deref()
            .map(|id| {
                id.parse::<u64>()
                    .map_err(|_| bad(format!("`installation_id` must be a number, got `{id}`")))
            })
            .transpose()?;
        Ok(SourceAuth::App(AppAuth {
            app_id: app_id.clone(),
            private_key,
            installation_id,
        }))
    }

    /// The token, from `token` or `token_file`.
    pub fn read_token(&self) -> Result<Secret, ConfigError> {
        if self.is_app() {
            return Err(ConfigError::Source {
                id: self.id.clone(),
                message: "a GitHub App source has no token of its own: it asks for installation tokens".into(),
            });
        }
        match (&self.token, &self.token_file) {
            (Some(t), None) => Ok(t.clone()),
            (None, Some(path)) => std::fs::read_to_string(path)
                .map(|t| Secret::new(t.trim_end()))
                .map_err(|source| ConfigError::Read {
                    path: path.clone(),
                    source,
                }),
            _ => Err(ConfigError::Source {
                id: self.id.clone(),
                message: "set exactly one of `token` and `token_file`".into(),
            }),
        }
    }
}

/// `[plugins]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PluginsConfig {
    /// `[plugins.grants.<step_type>]`: interfaces and allow-lists per step type.
    pub grants: BTreeMap<String, GrantConfig>,
    /// `[plugins.pins]`: step type → `"sha256:<64 hex>"`; that type's file in `plugins_dir`
    /// loads only with this digest.
    pub pins: BTreeMap<String, String>,
    /// Built-in step types a file in `plugins_dir` may replace without a pin.
    pub replace_builtin: Vec<String>,
    /// minisign public keys; when set, every plugin file needs a `<file>.minisig` signature
    /// by one of them.
    pub trusted_keys: Vec<String>,
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
    /// Artifact bytes one run may store, in MiB.
    pub max_artifact_mb: u64,
    /// kv data one plugin may keep per repository, in MiB.
    pub kv_mb: u64,
    /// kv keys one plugin may keep per repository.
    pub kv_keys: u64,
    /// Open handles (files, directory listings, HTTP objects) per step.
    pub max_handles: usize,
    /// Directory listings one step may hold open at once.
    pub max_dir_streams: usize,
    /// Size of one set of HTTP header fields a plugin builds, in KiB.
    pub http_field_kb: usize,
    /// What a run's workspace may hold, in MiB (files' apparent size), checked between steps.
    pub max_workspace_mb: u64,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        let host = HostLimits::default();
        LimitsConfig {
            memory_mb: 256,
            max_concurrent_steps: 16,
            log_kb: 1024,
            max_artifact_mb: host.max_artifact_bytes >> 20,
            kv_mb: host.kv.max_bytes >> 20,
            kv_keys: host.kv.max_keys,
            max_handles: host.max_handles,
            max_dir_streams: host.max_dir_streams,
            http_field_kb: host.http_field_bytes >> 10,
            max_workspace_mb: host.max_workspace_bytes >> 20,
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: "127.0.0.1:8080".into(),
            public_url: "http://127.0.0.1:8080".into(),
            api_token: None,
            dashboard: DashboardMode::default(),
            dashboard_token: None,
            pipelines_dir: "pipelines".into(),
            max_body_mb: 25,
            data_dir: "powernode-data".into(),
            plugins_dir: "plugins".into(),
            log_format: LogFormat::Text,
            max_concurrent_runs: 4,
            retention_days: 30,
            keep_failed_workspaces: false,
            secrets: BTreeMap::new(),
            plugins: PluginsConfig::default(),
            limits: LimitsConfig::default(),
            sources: Vec::new(),
            process_sandbox: SandboxMode::default(),
            sandbox: SandboxConfig::default(),
            store: StoreConfig::default(),
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
    /// A `[[sources]]` entry is unusable.
    #[error("config: source `{id}`: {message}")]
    Source {
        /// The source's id.
        id: String,
        /// What is wrong.
        message: String,
    },
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
        if config.api_token.as_ref().is_some_and(|t| t.expose().trim().is_empty()) {
            return Err(parse_err(
                "`api_token` is empty: set it to a long random string, or remove it to keep the API closed".into(),
            ));
        }
        if config
            .dashboard_token
            .as_ref()
            .is_some_and(|t| t.expose().trim().is_empty())
        {
            return Err(parse_err(
                "`dashboard_token` is empty: set it to a long random string, or remove it (api_token then signs in)"
                    .into(),
            ));
        }
        config.store.check().map_err(parse_err)?;
        config.grants()?;
        config.plugin_trust()?;
        config.check_sources()?;
        Ok(config)
    }

    /// The source with this id.
    pub fn source(&self, id: &str) -> Result<&SourceConfig, ConfigError> {
        self.sources.iter().find(|s| s.id == id).ok_or_else(|| {
            let known: Vec<&str> = self.sources.iter().map(|s| s.id.as_str()).collect();
            ConfigError::Source {
                id: id.into(),
                message: if known.is_empty() {
                    "no such source: the config has no [[sources]]".into()
                } else {
                    format!("no such source; configured: {}", known.join(", "))
                },
            }
        })
    }

    fn check_sources(&self) -> Result<(), ConfigError> {
        let mut seen = std::collections::BTreeSet::new();
        for s in &self.sources {
            let bad = |message: String| ConfigError::Source {
                id: s.id.clone(),
                message,
            };
            let id_ok = !s.id.is_empty() && s.id.chars().all(|c| c.is_ascii_alphanumeric() || "-_".contains(c));
            if !id_ok {
                return Err(bad("`id` must be letters, digits, `-` and `_`".into()));
            }
            if !seen.insert(s.id.as_str()) {
                return Err(bad("two sources have this id".into()));
            }
            if s.token.is_some() && s.token_file.is_some() {
                return Err(bad("set only one of `token` and `token_file`".into()));
            }
            check_app_fields(s).map_err(bad)?;
            if !(s.api_url.starts_with("https://") || s.api_url.starts_with("http://")) {
                return Err(bad(format!("`api_url` must be an http(s) URL, got `{}`", s.api_url)));
            }
            if s.bot_login.as_deref().is_some_and(|l| l.trim().is_empty()) {
                return Err(bad(
                    "`bot_login` is empty: set it to the login of the account the token belongs to, or remove it to have the forge asked"
                        .into(),
                ));
            }
        }
        Ok(())
    }

    /// The grants, built-in defaults overlaid by `[plugins.grants]`.
    pub fn grants(&self) -> Result<Grants, PolicyError> {
        Grants::new(&self.plugins.grants)
    }

    /// Which plugin files are trusted: `[plugins.pins]`, `replace_builtin`, `trusted_keys`.
    pub fn plugin_trust(&self) -> Result<PluginTrust, PolicyError> {
        let p = &self.plugins;
        PluginTrust::new(&p.pins, &p.replace_builtin, &p.trusted_keys)
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
            host: HostLimits {
                max_artifact_bytes: self.limits.max_artifact_mb << 20,
                kv: KvQuota {
                    max_bytes: self.limits.kv_mb << 20,
                    max_keys: self.limits.kv_keys,
                },
                max_handles: self.limits.max_handles,
                max_dir_streams: self.limits.max_dir_streams,
                http_field_bytes: self.limits.http_field_kb << 10,
                max_workspace_bytes: self.limits.max_workspace_mb << 20,
            },
            ..RuntimeConfig::default()
        }
    }
}

/// A GitHub App source: `kind = "github"`, `app_id` and `private_key_file` together, no
/// token; `installation_id` a number.
fn check_app_fields(s: &SourceConfig) -> Result<(), String> {
    let app_fields = s.app_id.is_some() || s.private_key_file.is_some() || s.installation_id.is_some();
    if !app_fields {
        return Ok(());
    }
    if s.kind != ForgeKind::Github {
        return Err(
            "`app_id`, `private_key_file` and `installation_id` are for GitHub App sources (`kind = \"github\"`)"
                .into(),
        );
    }
    if s.token.is_some() || s.token_file.is_some() {
        return Err(
            "a GitHub App source authenticates with `app_id` and `private_key_file`: remove `token`/`token_file`"
                .into(),
        );
    }
    match &s.app_id {
        None => return Err("`private_key_file` and `installation_id` need `app_id` (the GitHub App's ID)".into()),
        Some(id) if id.is_empty() || !id.chars().all(|c| c.is_ascii_alphanumeric() || "._-".contains(c)) => {
            return Err(format!("`app_id` must be the App's ID or client ID, got `{id}`"));
        }
        Some(_) => {}
    }
    if s.private_key_file.is_none() {
        return Err("a GitHub App source needs `private_key_file`: the App's private key (PEM)".into());
    }
    if let Some(id) = &s.installation_id
        && id.parse::<u64>().is_err()
    {
        return Err(format!("`installation_id` must be a number, got `{id}`"));
    }
    Ok(())
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
        let g = c.grants().unwrap().for_custom("deploy");
        assert!(g.allows(Capability::Provider) && g.allows(Capability::Http) && !g.allows(Capability::Process));
    }

    #[test]
    fn sources_parse_and_never_print_their_token() {
        let text = r#"
[[sources]]
id = "gitea-main"
kind = "gitea"
api_url = "https://git.example.com/api/v1"
token = "${DEPLOY_SECRET}"
bot_login = "powernode-bot"
"#;
        let c = Config::parse(Path::new("p.toml"), text, &env).unwrap();
        let s = c.source("gitea-main").unwrap();
        assert_eq!(s.kind, ForgeKind::Gitea);
        assert_eq!(s.read_token().unwrap().expose(), "s3cret-value");
        assert!(!format!("{c:?}").contains("s3cret-value"), "{c:?}");
        let err = c.source("github").unwrap_err().to_string();
        assert_eq!(err, "config: source `github`: no such source; configured: gitea-main");
    }

    #[test]
    fn token_file_is_read_and_trimmed() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("token");
        std::fs::write(&file, "tok-from-file\n").unwrap();
        let text = format!(
            "[[sources]]\nid = \"gh\"\nkind = \"github\"\napi_url = \"https://api.github.com\"\ntoken_file = {:?}\n",
            file
        );
        let c = Config::parse(Path::new("p.toml"), &text, &env).unwrap();
        assert_eq!(c.sources[0].read_token().unwrap().expose(), "tok-from-file");
    }

    #[test]
    fn the_documented_server_config_parses() {
        let text = r#"
listen = "127.0.0.1:8080"
data_dir = "powernode-data"
public_url = "http://127.0.0.1:8080"
api_token = "${DEPLOY_SECRET}"
pipelines_dir = "pipelines"
plugins_dir = "plugins"

[[sources]]
id = "gitea-main"              # the {source} in /webhooks/{source}
kind = "gitea"                 # github | gitea | forgejo | gitlab
api_url = "https://git.example.com/api/v1"
token = "${DEPLOY_SECRET}"
webhook_secret = "${DEPLOY_SECRET}"
bot_login = "powernode-bot"    # our own account: its comments trigger nothing

[secrets]
DEPLOY_SECRET = "${DEPLOY_SECRET}"

[plugins.grants.deploy]        # per step type: interfaces and allow-lists
http = ["deploy.example.com"]
"#;
        let c = Config::parse(Path::new("p.toml"), text, &env).unwrap();
        assert_eq!(c.listen, "127.0.0.1:8080");
        assert_eq!(c.max_body_mb, 25);
        assert_eq!(c.api_token.as_ref().map(Secret::expose), Some("s3cret-value"));
        let empty = Config::parse(
            Path::new("p.toml"),
            "api_token = \"${EMPTY}\"",
            &|_| Some(String::new()),
        );
        let message = empty.unwrap_err().to_string();
        assert!(message.contains("`api_token` is empty"), "{message}");
        assert_eq!(
            c.sources[0].webhook_secret.as_ref().map(Secret::expose),
            Some("s3cret-value")
        );
        assert!(!format!("{c:?}").contains("s3cret-value"));
    }

    #[test]
    fn an_empty_bot_login_is_refused() {
        let source =
            "[[sources]]\nid = \"gh\"\nkind = \"github\"\napi_url = \"https://api.github.com\"\ntoken = \"t\"\n";
        for login in ["\"\"", "\"  \"", "\"${EMPTY}\""] {
            let text = format!("{source}bot_login = {login}\n");
            let err = Config::parse(Path::new("p.toml"), &text, &|_| Some(String::new())).unwrap_err();
            assert_eq!(
                err.to_string(),
                "config: source `gh`: `bot_login` is empty: set it to the login of the account the token belongs to, or remove it to have the forge asked",
                "{login}"
            );
        }
        let unset = Config::parse(Path::new("p.toml"), source, &env).unwrap();
        assert_eq!(unset.sources[0].bot_login, None);
    }

    #[test]
    fn plugin_pins_keys_and_replacements_parse_and_bad_ones_are_refused() {
        let pin = format!("sha256:{}", "a".repeat(64));
        let text = format!(
            "[plugins]\nreplace_builtin = [\"run_command\"]\ntrusted_keys = [\"RWQf6LRCGA9i53mlYecO4IzT51TGPpvWucNSCh1CBM0QTaLn73Y7GFO3\"]\n[plugins.pins]\nhello = \"{pin}\"\n"
        );
        let c = Config::parse(Path::new("p.toml"), &text, &env).unwrap();
        let trust = c.plugin_trust().unwrap();
        assert!(trust.wants_signatures());
        assert_eq!(trust.replace_builtin().collect::<Vec<_>>(), ["run_command"]);
        let err = Config::parse(Path::new("p.toml"), "[plugins.pins]\nhello = \"abc\"\n", &env).unwrap_err();
        assert_eq!(
            err.to_string(),
            "config: [plugins.pins] hello = \"abc\": it does not start with `sha256:`; write `sha256:` and the file's 64 hex digits (`sha256sum hello.wasm`)"
        );
        let err = Config::parse(Path::new("p.toml"), "[plugins]\ntrusted_keys = [\"nope\"]\n", &env).unwrap_err();
        assert!(
            err.to_string()
                .contains("trusted_keys entry 0 (`nope`) is not a minisign public key"),
            "{err}"
        );
    }

    #[test]
    fn a_github_app_source_parses_and_reads_its_key() {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("app.pem");
        std::fs::write(
            &key,
            "-----BEGIN RSA PRIVATE KEY-----\nabc\n-----END RSA PRIVATE KEY-----\n",
        )
        .unwrap();
        let text = format!(
            "[[sources]]\nid = \"app\"\nkind = \"github\"\napi_url = \"https://api.github.com\"\napp_id = 12345\nprivate_key_file = {key:?}\ninstallation_id = \"${{INSTALLATION}}\"\n"
        );
        let c = Config::parse(Path::new("p.toml"), &text, &|_| Some("678".into())).unwrap();
        let s = &c.sources[0];
        assert!(s.is_app());
        match s.auth().unwrap() {
            SourceAuth::App(app) => {
                assert_eq!((app.app_id.as_str(), app.installation_id), ("12345", Some(678)));
                assert!(app.private_key.expose().starts_with("-----BEGIN RSA PRIVATE KEY-----"));
            }
            other => panic!("{other:?}"),
        }
        assert!(!format!("{c:?}").contains("abc"));
        let err = s.read_token().unwrap_err().to_string();
        assert!(err.contains("a GitHub App source has no token"), "{err}");
    }

    #[test]
    fn github_app_fields_are_checked() {
        let base = "[[sources]]\nid = \"app\"\napi_url = \"https://api.github.com\"\n";
        let cases = [
            (
                "kind = \"gitea\"\napp_id = 1\nprivate_key_file = \"k.pem\"\n",
                "are for GitHub App sources",
            ),
            (
                "kind = \"github\"\napp_id = 1\nprivate_key_file = \"k.pem\"\ntoken = \"t\"\n",
                "remove `token`/`token_file`",
            ),
            ("kind = \"github\"\napp_id = 1\n", "needs `private_key_file`"),
            ("kind = \"github\"\nprivate_key_file = \"k.pem\"\n", "need `app_id`"),
            (
                "kind = \"github\"\napp_id = \"1 2\"\nprivate_key_file = \"k.pem\"\n",
                "`app_id` must be",
            ),
            (
                "kind = \"github\"\napp_id = 1\nprivate_key_file = \"k.pem\"\ninstallation_id = \"x\"\n",
                "`installation_id` must be a number",
            ),
        ];
        for (fields, expected) in cases {
            let err = Config::parse(Path::new("p.toml"), &format!("{base}{fields}"), &env).unwrap_err();
            assert!(err.to_string().contains(expected), "{fields}: {err}");
        }
        let missing = Config::parse(
            Path::new("p.toml"),
            &format!("{base}kind = \"github\"\napp_id = \"Iv23liAbC.1\"\nprivate_key_file = \"/nonexistent/k.pem\"\n"),
            &env,
        )
        .unwrap();
        let err = missing.sources[0].auth().unwrap_err().to_string();
        assert!(err.contains("cannot read config `/nonexistent/k.pem`"), "{err}");
    }

    #[test]
    fn the_store_section_is_checked_and_its_url_never_printed() {
        let env = |name: &str| (name == "DATABASE_URL").then(|| "postgres://pn:hunter22@db/pn".to_string());
        let config = Config::parse(
            Path::new("p.toml"),
            "[store]\nkind = \"postgres\"\nurl = \"${DATABASE_URL}\"\npool_size = 4\n",
            &env,
        )
        .unwrap();
        let pg = config.store.postgres().unwrap();
        assert_eq!((pg.url.as_str(), pg.pool_size), ("postgres://pn:hunter22@db/pn", 4));
        let printed = format!("{config:?} {pg:?}");
        assert!(!printed.contains("hunter22"), "{printed}");
        assert!(Config::default().store.postgres().is_none(), "embedded by default");
        for (text, expected) in [
            ("[store]\nkind = \"postgres\"\n", "needs `url"),
            (
                "[store]\nkind = \"postgres\"\nurl = \"mysql://x\"\n",
                "must start with postgres://",
            ),
            ("[store]\nurl = \"postgres://x\"\n", "only for kind = \"postgres\""),
            ("[store]\nkind = \"mongo\"\n", "unknown variant `mongo`"),
            (
                "[store]\nkind = \"postgres\"\nurl = \"postgres://x\"\npool_size = 0\n",
                "pool_size must be at least 1",
            ),
        ] {
            let err = Config::parse(Path::new("p.toml"), text, &env).unwrap_err().to_string();
            assert!(err.contains(expected), "{text:?}: {err}");
        }
    }

    #[test]
    fn the_artifacts_section_is_checked_and_its_keys_never_printed() {
        let env = |name: &str| (name == "S3_SECRET").then(|| "s3cr3t-value".to_string());
        let s3 = "[store.artifacts]\nkind = \"s3\"\nbucket = \"ci-east\"\nendpoint = \"https://s3.example.com\"\n\
                  access_key_id = \"AKIA1\"\nsecret_access_key = \"${S3_SECRET}\"\n";
        let config = Config::parse(Path::new("p.toml"), s3, &env).unwrap();
        let settings = config.store.artifacts.s3().unwrap();
        assert_eq!(
            (
                settings.bucket.as_str(),
                settings.region.as_str(),
                settings.secret_access_key.as_str()
            ),
            ("ci-east", "us-east-1", "s3cr3t-value")
        );
        let printed = format!("{config:?}");
        assert!(
            !printed.contains("s3cr3t-value") && !printed.contains("AKIA1"),
            "{printed}"
        );
        let local = Config::parse(Path::new("p.toml"), "[store.artifacts]\ndir = \"/mnt/a\"\n", &env).unwrap();
        assert_eq!(local.store.artifacts.dir.as_deref(), Some(Path::new("/mnt/a")));
        for (text, expected) in [
            ("[store.artifacts]\nkind = \"s3\"\n", "needs `bucket"),
            (
                "[store.artifacts]\nkind = \"s3\"\nbucket = \"ci-east\"\n",
                "needs `access_key_id",
            ),
            (
                &s3.replace("https://s3.example.com", "http://10.0.0.5:9000"),
                "plain http",
            ),
            (&s3.replace("https://s3.example.com", "s3.example.com"), "must be a URL"),
            (&s3.replace("ci-east", "CI_Artifacts"), "is not a bucket name"),
            (&format!("{s3}prefix = \"../other\"\n"), "without `.` or `..`"),
            (&format!("{s3}dir = \"/mnt/a\"\n"), "dir is only for kind = \"local\""),
            (
                "[store.artifacts]\nbucket = \"ci-east\"\n",
                "bucket is only for kind = \"s3\"",
            ),
            ("[store.artifacts]\nkind = \"gcs\"\n", "unknown variant `gcs`"),
            ("[store]\nartifacts_dir = \"/mnt/a\"\n", "unknown field `artifacts_dir`"),
        ] {
            let err = Config::parse(Path::new("p.toml"), text, &env).unwrap_err().to_string();
            assert!(err.contains(expected), "{text:?}: {err}");
        }
        let loopback = s3.replace("https://s3.example.com", "http://127.0.0.1:9000") + "allow_http = true\n";
        assert!(Config::parse(Path::new("p.toml"), &loopback, &env).is_ok());
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
