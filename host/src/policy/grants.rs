//! Interface grants per step type (the import-list check is `imports.rs`).

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::{AllowList, PolicyError};

/// The WIT package version this host serves.
pub const WIT_VERSION: &str = "0.1.3";

/// A host interface a plugin can be granted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Capability {
    /// `powernode:step/log`, granted to every plugin.
    Log,
    /// `powernode:step/artifacts`.
    Artifacts,
    /// `powernode:step/kv`.
    Kv,
    /// `powernode:step/templates`.
    Templates,
    /// `powernode:step/process`: runs programs on the host; never granted implicitly.
    Process,
    /// `powernode:step/provider`: forge API with the host's credentials.
    Provider,
    /// `powernode:step/git`.
    Git,
    /// `wasi:http/outgoing-handler`, limited by the `http` allow-list.
    Http,
}

impl Capability {
    /// Every capability, in config order.
    pub const ALL: [Capability; 8] = [
        Capability::Log,
        Capability::Artifacts,
        Capability::Kv,
        Capability::Templates,
        Capability::Process,
        Capability::Provider,
        Capability::Git,
        Capability::Http,
    ];

    /// The name used in config files and messages.
    pub fn name(self) -> &'static str {
        match self {
            Capability::Log => "log",
            Capability::Artifacts => "artifacts",
            Capability::Kv => "kv",
            Capability::Templates => "templates",
            Capability::Process => "process",
            Capability::Provider => "provider",
            Capability::Git => "git",
            Capability::Http => "http",
        }
    }

    /// The capability of `powernode:step/<name>`; `http` is `wasi:http`, not a step interface.
    pub(super) fn from_interface(name: &str) -> Option<Capability> {
        Capability::ALL
            .into_iter()
            .find(|c| c.name() == name && *c != Capability::Http)
    }
}

/// `[plugins.grants.<step_type>]` as written in the config file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GrantConfig {
    /// Interfaces granted besides `log`, e.g. `["provider", "git"]`.
    #[serde(default)]
    pub interfaces: Vec<Capability>,
    /// Hosts the plugin may reach over wasi:http; non-empty implies the `http` interface.
    #[serde(default)]
    pub http: Vec<String>,
    /// What the plugin's `process` commands reach on the network.
    #[serde(default)]
    pub network: Network,
}

/// The network of a confined command (`process`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Network {
    /// No network at all (a loopback of its own).
    None,
    /// HTTP and HTTPS through the host's egress proxy, to public addresses only (plus the
    /// `[sandbox] egress_allow` list): no loopback, link-local, metadata or private address.
    #[default]
    Egress,
    /// The server's own network, unfiltered: loopback included. Only for trusted commands.
    Host,
}

/// What one plugin may use, parsed and ready for checks.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Grant {
    capabilities: BTreeSet<Capability>,
    /// Hosts reachable over wasi:http.
    pub http: AllowList,
    /// What `process` commands reach.
    pub network: Network,
}

impl Grant {
    /// Parses one plugin's grant; `log` is always included.
    pub fn from_config(plugin: &str, cfg: &GrantConfig) -> Result<Grant, PolicyError> {
        let http = AllowList::parse(plugin, &cfg.http)?;
        let mut capabilities: BTreeSet<_> = cfg.interfaces.iter().copied().collect();
        capabilities.insert(Capability::Log);
        if !http.is_empty() {
            capabilities.insert(Capability::Http);
        }
        Ok(Grant {
            capabilities,
            http,
            network: cfg.network,
        })
    }

    /// Nothing at all, not even `log`: what `describe()` runs with, since the WIT says it
    /// must not call imports, and what inspecting a file grants it.
    pub fn none() -> Grant {
        Grant::default()
    }

    /// Whether the plugin may use `cap`.
    pub fn allows(&self, cap: Capability) -> bool {
        self.capabilities.contains(&cap)
    }

    /// The granted capabilities, for `plugin inspect` and audits.
    pub fn capabilities(&self) -> impl Iterator<Item = Capability> + '_ {
        self.capabilities.iter().copied()
    }
}

/// What the built-in steps get when the operator configures nothing for them. Only the
/// embedded built-ins get these: a custom file named like one gets only what the config gives.
/// Outbound HTTP defaults only name public services the step exists for; `deploy`'s targets
/// are the operator's to list.
const BUILTIN_DEFAULTS: [(&str, &[Capability], &[&str]); 8] = [
    ("run_command", &[Capability::Process], &[]),
    ("upload_artifact", &[Capability::Artifacts], &[]),
    ("post_comment", &[Capability::Provider], &[]),
    ("update_status", &[Capability::Provider], &[]),
    ("checkout", &[Capability::Provider, Capability::Git], &[]),
    ("create_pr", &[Capability::Provider, Capability::Git], &[]),
    (
        "claude_execute",
        &[
            Capability::Process,
            Capability::Kv,
            Capability::Templates,
            Capability::Http,
        ],
        &["api.anthropic.com"],
    ),
    (
        "deploy",
        &[Capability::Provider, Capability::Process, Capability::Http],
        &[],
    ),
];

/// Every plugin's grant: the operator's config, and the built-ins' defaults where the config
/// says nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grants {
    configured: BTreeMap<String, Grant>,
}

impl Grants {
    /// Parses the operator's `[plugins.grants]`. An entry for a step type replaces the
    /// built-in's default entirely.
    pub fn new(config: &BTreeMap<String, GrantConfig>) -> Result<Grants, PolicyError> {
        let configured = config
            .iter()
            .map(|(name, cfg)| Ok((name.clone(), Grant::from_config(name, cfg)?)))
            .collect::<Result<_, PolicyError>>()?;
        Ok(Grants { configured })
    }

    /// The grant of the embedded built-in `step_type`: the config's entry, else its default.
    pub fn for_builtin(&self, step_type: &str) -> Grant {
        if let Some(grant) = self.configured.get(step_type) {
            return grant.clone();
        }
        let (interfaces, http) = BUILTIN_DEFAULTS
            .iter()
            .find(|(name, _, _)| *name == step_type)
            .map(|(_, caps, http)| (caps.to_vec(), http.iter().map(|h| h.to_string()).collect()))
            .unwrap_or_default();
        let cfg = GrantConfig {
            interfaces,
            http,
            network: Network::default(),
        };
        Grant::from_config(step_type, &cfg).expect("built-in grants are valid")
    }

    /// The grant of a custom plugin file for `step_type`: the config's entry, else only `log`
    /// (also when it replaces a built-in: the built-in's defaults were made for its code).
    pub fn for_custom(&self, step_type: &str) -> Grant {
        self.configured
            .get(step_type)
            .cloned()
            .unwrap_or_else(|| Grant::from_config(step_type, &GrantConfig::default()).expect("empty grant is valid"))
    }
}

impl Default for Grants {
    fn default() -> Self {
        Grants::new(&BTreeMap::new()).expect("an empty config is valid")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_defaults_and_operator_override() {
        let grants = Grants::default();
        assert!(grants.for_builtin("run_command").allows(Capability::Process));
        assert!(!grants.for_builtin("upload_artifact").allows(Capability::Process));
        let mut cfg = BTreeMap::new();
        cfg.insert("run_command".to_string(), GrantConfig::default());
        let grants = Grants::new(&cfg).unwrap();
        assert!(!grants.for_builtin("run_command").allows(Capability::Process));
        assert!(grants.for_builtin("run_command").allows(Capability::Log));
    }

    #[test]
    fn a_custom_file_named_like_a_builtin_gets_no_default() {
        let grants = Grants::default();
        let custom = grants.for_custom("run_command");
        assert_eq!(custom.capabilities().collect::<Vec<_>>(), [Capability::Log]);
        let mut cfg = BTreeMap::new();
        cfg.insert(
            "run_command".to_string(),
            GrantConfig {
                interfaces: vec![Capability::Process],
                http: vec![],
                ..Default::default()
            },
        );
        assert!(
            Grants::new(&cfg)
                .unwrap()
                .for_custom("run_command")
                .allows(Capability::Process)
        );
    }

    #[test]
    fn nothing_is_granted_by_none() {
        assert_eq!(Grant::none().capabilities().count(), 0);
    }
}
