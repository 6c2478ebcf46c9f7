//! The load-time check of a plugin's import list against its grant (a component's imports
//! are its manifest): every missing grant reported at once, as one table to paste, and an
//! import a build flag would remove named with that flag.

use std::collections::BTreeSet;

use super::grants::WIT_VERSION;
use super::{Capability, Grant, PolicyError};

/// Checks a component's import list against its grant. WASI 0.2 interfaces are always
/// allowed: the runtime links them with nothing granted (no env, no sockets, workspace only).
/// Every import not granted is named in one error.
pub fn check_imports(plugin: &str, imports: &[String], grant: &Grant) -> Result<(), PolicyError> {
    check_manifest(plugin, imports, &Built::default(), grant)
}

/// What a component says about how it was built: a refusal uses it to say when the imports
/// come from a toolchain's default features rather than from the step's code.
#[derive(Debug, Clone, Copy, Default)]
pub struct Built<'a> {
    /// Its top-level exports.
    pub exports: &'a [String],
    /// The tools of its producers section (`processed-by`).
    pub processed_by: &'a [String],
}

/// [`check_imports`], knowing how the component was built (see [`Built`]).
pub fn check_manifest(plugin: &str, imports: &[String], built: &Built, grant: &Grant) -> Result<(), PolicyError> {
    check_version(plugin, imports)?;
    let mut missing = BTreeSet::new();
    let mut refused = Vec::new();
    for import in imports {
        if let Some(cap) = needed(plugin, import)?.filter(|c| !grant.allows(*c)) {
            missing.insert(cap);
            refused.push(import.clone());
        }
    }
    if refused.is_empty() {
        return Ok(());
    }
    Err(PolicyError::NotGranted {
        plugin: plugin.into(),
        table: table(plugin, grant, &missing),
        replace: grant.capabilities().any(|c| c != Capability::Log),
        note: build_flag_note(&missing, built),
        imports: refused,
    })
}

/// The capability `import` needs: none for `types` and WASI 0.2 besides HTTP; an error for
/// anything this host does not offer.
fn needed(plugin: &str, import: &str) -> Result<Option<Capability>, PolicyError> {
    let (path, _) = import.split_once('@').unwrap_or((import, ""));
    if let Some(iface) = path.strip_prefix("powernode:step/") {
        return match iface {
            "types" => Ok(None),
            other => Capability::from_interface(other)
                .map(Some)
                .ok_or_else(|| unknown(plugin, import)),
        };
    }
    if path.starts_with("wasi:http/") {
        Ok(Some(Capability::Http))
    } else if path.starts_with("wasi:") {
        Ok(None)
    } else {
        Err(unknown(plugin, import))
    }
}

/// The `[plugins.grants.<plugin>]` table granting what it has plus what is `missing`, so it
/// can replace the one in the config as a whole (pasting one line per refusal made duplicate
/// tables).
fn table(plugin: &str, grant: &Grant, missing: &BTreeSet<Capability>) -> String {
    let interfaces: BTreeSet<Capability> = grant
        .capabilities()
        .chain(missing.iter().copied())
        .filter(|c| !matches!(c, Capability::Log | Capability::Http))
        .collect();
    let mut table = format!("[plugins.grants.{plugin}]\n");
    if !interfaces.is_empty() {
        let names: Vec<String> = Capability::ALL
            .into_iter()
            .filter(|c| interfaces.contains(c))
            .map(|c| format!("\"{}\"", c.name()))
            .collect();
        table.push_str(&format!("interfaces = [{}]\n", names.join(", ")));
    }
    if missing.contains(&Capability::Http) {
        table.push_str("http = [\"api.example.com\"]  # the hosts it may reach\n");
    } else if grant.allows(Capability::Http) {
        table.push_str("# keep the `http` line you have\n");
    }
    table
}

/// What to say when the HTTP imports come from a JavaScript build's default features:
/// componentize-js imports `wasi:http` (for `fetch`, and exports `wasi:http/incoming-handler`
/// for its fetch-event handler) unless both features are disabled.
fn build_flag_note(missing: &BTreeSet<Capability>, built: &Built) -> String {
    let fetch_event = built
        .exports
        .iter()
        .any(|e| e.starts_with("wasi:http/incoming-handler"));
    let componentize_js = built
        .processed_by
        .iter()
        .any(|t| t.eq_ignore_ascii_case("ComponentizeJS"));
    if !(missing.contains(&Capability::Http) && (fetch_event || componentize_js)) {
        return String::new();
    }
    "\nThis is a componentize-js (jco) build, whose default features import `wasi:http` \
     whether the step uses it or not. If the step makes no HTTP requests, rebuild it with \
     them disabled instead of granting `http`: `jco componentize ... --disable http fetch-event` \
     (`-d http fetch-event`).\n"
        .into()
}

/// Refuses a plugin built against a `powernode:step` version this host does not serve, before
/// the linker would report it as a missing import.
pub fn check_version(plugin: &str, imports: &[String]) -> Result<(), PolicyError> {
    let wanted = imports
        .iter()
        .filter_map(|i| i.strip_prefix("powernode:step/")?.split_once('@'))
        .map(|(_, version)| version)
        .find(|version| !same_minor(version, WIT_VERSION));
    match wanted {
        Some(version) => Err(PolicyError::VersionMismatch {
            plugin: plugin.into(),
            wanted: version.into(),
            served: WIT_VERSION.into(),
        }),
        None => Ok(()),
    }
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
    use crate::policy::{GrantConfig, Grants};

    fn imports(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn ungranted_interface_is_refused_naming_it_and_the_config() {
        let grants = Grants::default();
        let err = check_imports(
            "my_step",
            &imports(&["powernode:step/log@0.1.3", "powernode:step/process@0.1.3"]),
            &grants.for_custom("my_step"),
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "plugin `my_step` imports `powernode:step/process@0.1.3`, which is not granted to it; \
             to grant it add to the config:\n\n[plugins.grants.my_step]\ninterfaces = [\"process\"]\n"
        );
    }

    #[test]
    fn every_missing_grant_is_named_at_once_in_one_table() {
        let granted = GrantConfig {
            interfaces: vec![Capability::Kv],
            ..Default::default()
        };
        let err = check_imports(
            "my_step",
            &imports(&[
                "powernode:step/log@0.1.3",
                "powernode:step/kv@0.1.3",
                "powernode:step/process@0.1.3",
                "powernode:step/provider@0.1.3",
                "wasi:http/types@0.2.6",
                "wasi:http/outgoing-handler@0.2.6",
            ]),
            &Grant::from_config("my_step", &granted).unwrap(),
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "plugin `my_step` imports `powernode:step/process@0.1.3`, `powernode:step/provider@0.1.3`, \
             `wasi:http/types@0.2.6` and `wasi:http/outgoing-handler@0.2.6`, which are not granted to it; \
             to grant them replace its grant in the config with:\n\n[plugins.grants.my_step]\n\
             interfaces = [\"kv\", \"process\", \"provider\"]\nhttp = [\"api.example.com\"]  # the hosts it may reach\n"
        );
        let toml: toml::Table = err.to_string().split_once("\n\n").unwrap().1.parse().unwrap();
        let cfg: GrantConfig = toml["plugins"]["grants"]["my_step"].clone().try_into().unwrap();
        assert_eq!(
            cfg.interfaces,
            [Capability::Kv, Capability::Process, Capability::Provider]
        );
    }

    #[test]
    fn http_imports_of_a_componentize_js_build_name_the_jco_flag() {
        let http = imports(&["wasi:http/types@0.2.3", "wasi:http/outgoing-handler@0.2.3"]);
        let js_exports = imports(&["powernode:step/handler@0.1.3", "wasi:http/incoming-handler@0.2.3"]);
        let fetch_event = Built {
            exports: &js_exports,
            processed_by: &[],
        };
        let err = check_manifest("js_step", &http, &fetch_event, &Grant::default()).unwrap_err();
        assert!(
            err.to_string()
                .contains("`jco componentize ... --disable http fetch-event`"),
            "{err}"
        );
        let tools = imports(&["wit-component", "ComponentizeJS"]);
        let by_componentize_js = Built {
            exports: &[],
            processed_by: &tools,
        };
        let err = check_manifest("js_step", &http, &by_componentize_js, &Grant::default()).unwrap_err();
        assert!(err.to_string().contains("-d http fetch-event"), "{err}");
        let (exports, tools) = (
            imports(&["powernode:step/handler@0.1.3"]),
            imports(&["rustc", "wit-component"]),
        );
        let rust = Built {
            exports: &exports,
            processed_by: &tools,
        };
        let err = check_manifest("rust_step", &http, &rust, &Grant::default()).unwrap_err();
        assert!(!err.to_string().contains("jco"), "{err}");
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
        let err = check_imports("p", &http, &Grants::default().for_custom("p")).unwrap_err();
        assert!(err.to_string().contains("http = [\"api.example.com\"]"), "{err}");
        let cfg = GrantConfig {
            interfaces: vec![],
            http: vec!["api.example.com".into()],
            ..Default::default()
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
            &Grants::default().for_custom("p"),
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "plugin `p` was built for powernode:step@0.2.0, this host serves powernode:step@0.1.3; rebuild the plugin against 0.1.3"
        );
        assert_eq!(
            check_imports(
                "p",
                &imports(&["powernode:step/log@0.1.3"]),
                &Grants::default().for_custom("p")
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
