//! Interface grants per step type, and the load-time check of a plugin's import list
//! (the component's imports are its manifest).

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::{AllowList, PolicyError};

/// The WIT package version this host serves.
pub const WIT_VERSION: &str = "0.1.0";

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

    fn from_interface(name: &str) -> Option<Capability> {
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
}

/// What one plugin may use, parsed and ready for checks.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Grant {
    capabilities: BTreeSet<Capability>,
    /// Hosts reachable over wasi:http.
    pub http: AllowList,
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
        Ok(Grant { capabilities, http })
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

/// Every plugin's grant: built-in defaults overlaid by the operator's config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grants {
    by_type: BTreeMap<String, Grant>,
}

impl Grants {
    /// Built-in steps get what they need by default; anything else gets only `log`.
    /// An operator entry for a step type replaces its default entirely.
    pub fn new(config: &BTreeMap<String, GrantConfig>) -> Result<Grants, PolicyError> {
        let defaults = [
            ("run_command", vec![Capability::Process]),
            ("upload_artifact", vec![Capability::Artifacts]),
        ];
        let mut by_type = BTreeMap::new();
        for (name, interfaces) in defaults {
            let cfg = GrantConfig {
                interfaces,
                http: Vec::new(),
            };
            by_type.insert(name.to_string(), Grant::from_config(name, &cfg)?);
        }
        for (name, cfg) in config {
            by_type.insert(name.clone(), Grant::from_config(name, cfg)?);
        }
        Ok(Grants { by_type })
    }

    /// The grant for a step type (only `log` when none is configured).
    pub fn for_plugin(&self, step_type: &str) -> Grant {
        self.by_type
            .get(step_type)
            .cloned()
            .unwrap_or_else(|| Grant::from_config(step_type, &GrantConfig::default()).expect("empty grant is valid"))
    }
}

impl Default for Grants {
    fn default() -> Self {
        Grants::new(&BTreeMap::new()).expect("built-in grants are valid")
    }
}

/// Checks a component's import list against its grant. WASI 0.2 interfaces are always
/// allowed: the runtime links them with nothing granted (no env, no sockets, workspace only).
pub fn check_imports(plugin: &str, imports: &[String], grant: &Grant) -> Result<(), PolicyError> {
    for import in imports {
        let (path, version) = import.split_once('@').unwrap_or((import, ""));
        let needed = if let Some(iface) = path.strip_prefix("powernode:step/") {
            if !same_minor(version, WIT_VERSION) {
                return Err(PolicyError::VersionMismatch {
                    plugin: plugin.into(),
                    wanted: version.into(),
                    served: WIT_VERSION.into(),
                });
            }
            match iface {
                "types" => None,
                other => Some(Capability::from_interface(other).ok_or_else(|| unknown(plugin, import))?),
            }
        } else if path.starts_with("wasi:http/") {
            Some(Capability::Http)
        } else if path.starts_with("wasi:") {
            None
        } else {
            return Err(unknown(plugin, import));
        };
        if let Some(cap) = needed.filter(|c| !grant.allows(*c)) {
            let hint = match cap {
                Capability::Http => "http = [\"api.example.com\"]".to_string(),
                c => format!("interfaces = [\"{}\"]", c.name()),
            };
            return Err(PolicyError::NotGranted {
                plugin: plugin.into(),
                import: import.clone(),
                hint,
            });
        }
    }
    Ok(())
}

fn unknown(plugin: &str, import: &str) -> PolicyError {
    PolicyError::UnknownImport {
        plugin: plugin.into(),
        import: import.into(),
    }
}

/// Semver compatibility as wasmtime's linker applies it: same major, and for 0.x same minor.
fn same_minor(a: &str, b: &str) -> bool {
    let parts = |v: &str| v.split('.').take(2).map(str::to_owned).collect::<Vec<_>>();
    let (a, b) = (parts(a), parts(b));
    a.first() == b.first() && (a.first().map(String::as_str) != Some("0") || a.get(1) == b.get(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn imports(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn ungranted_interface_is_refused_naming_it_and_the_config() {
        let grants = Grants::default();
        let err = check_imports(
            "my_step",
            &imports(&["powernode:step/log@0.1.0", "powernode:step/process@0.1.0"]),
            &grants.for_plugin("my_step"),
        )
        .unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("`powernode:step/process@0.1.0`"), "{msg}");
        assert!(
            msg.contains("[plugins.grants.my_step]\ninterfaces = [\"process\"]"),
            "{msg}"
        );
    }

    #[test]
    fn builtin_defaults_and_operator_override() {
        let grants = Grants::default();
        assert!(grants.for_plugin("run_command").allows(Capability::Process));
        assert!(!grants.for_plugin("upload_artifact").allows(Capability::Process));
        let mut cfg = BTreeMap::new();
        cfg.insert("run_command".to_string(), GrantConfig::default());
        let grants = Grants::new(&cfg).unwrap();
        assert!(!grants.for_plugin("run_command").allows(Capability::Process));
        assert!(grants.for_plugin("run_command").allows(Capability::Log));
    }

    #[test]
    fn wasi_base_always_allowed_http_needs_allow_list() {
        let wasi = imports(&[
            "wasi:cli/environment@0.2.6",
            "wasi:filesystem/types@0.2.6",
            "wasi:io/streams@0.2.6",
        ]);
        assert_eq!(check_imports("p", &wasi, &Grant::default()), Ok(()));
        let http = imports(&["wasi:http/outgoing-handler@0.2.6"]);
        let err = check_imports("p", &http, &Grants::default().for_plugin("p")).unwrap_err();
        assert!(err.to_string().contains("http = [\"api.example.com\"]"), "{err}");
        let cfg = GrantConfig {
            interfaces: vec![],
            http: vec!["api.example.com".into()],
        };
        assert_eq!(
            check_imports("p", &http, &Grant::from_config("p", &cfg).unwrap()),
            Ok(())
        );
    }

    #[test]
    fn other_wit_version_is_reported_as_such() {
        let err = check_imports(
            "p",
            &imports(&["powernode:step/log@0.2.0"]),
            &Grants::default().for_plugin("p"),
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "plugin `p` was built for powernode:step@0.2.0, this host serves powernode:step@0.1.0; rebuild the plugin against 0.1.0"
        );
        assert_eq!(
            check_imports(
                "p",
                &imports(&["powernode:step/log@0.1.3"]),
                &Grants::default().for_plugin("p")
            ),
            Ok(())
        );
    }

    #[test]
    fn foreign_package_is_unknown() {
        let err = check_imports("p", &imports(&["acme:evil/backdoor@1.0.0"]), &Grant::default()).unwrap_err();
        assert!(matches!(err, PolicyError::UnknownImport { .. }));
    }
}
