//! What each plugin may use: interface grants and outbound HTTP allow-lists; and which
//! plugin files are trusted at all (pins, signatures, replacing a built-in).
//!
//! Pure: parsed once from the operator's config into types, then asked questions. The catalog
//! calls [`PluginTrust::vet`] on a file's bytes before loading it, the runtime calls
//! [`check_imports`] when it loads a plugin and [`AllowList::check`] on every request.

mod allow;
mod grants;
mod imports;
mod trust;

pub use allow::{AllowList, Denied};
pub use grants::{Capability, Grant, GrantConfig, Grants, Network};
pub use imports::{Built, check_imports, check_manifest, check_version};
pub use trust::{Candidate, MAX_SIGNATURE_BYTES, PluginTrust, SIGNATURE_SUFFIX, TrustError, Vetted};

/// A grant or allow-list that cannot be used, or a plugin that asks for more than it was given.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PolicyError {
    /// The plugin imports interfaces the operator did not grant it: all of them, with the
    /// grant table that would let it load.
    #[error("{}", not_granted(plugin, imports, table, *replace, note))]
    NotGranted {
        /// Step type of the plugin.
        plugin: String,
        /// Every import refused, full names, e.g. `powernode:step/process@0.1.3`.
        imports: Vec<String>,
        /// The `[plugins.grants.<plugin>]` table granting what it has and what it lacks.
        table: String,
        /// It already has a grant beyond `log`: the table replaces it rather than adds to it.
        replace: bool,
        /// Advice besides the grant (a build flag that would remove the imports), or empty.
        note: String,
    },
    /// The plugin was built against a version of the WIT package this host does not serve.
    #[error(
        "plugin `{plugin}` was built for powernode:step@{wanted}, this host serves powernode:step@{served}; rebuild the plugin against {served}"
    )]
    VersionMismatch {
        /// Step type of the plugin.
        plugin: String,
        /// The version the plugin imports.
        wanted: String,
        /// The version this host serves.
        served: String,
    },
    /// The plugin imports something this host does not offer at all.
    #[error(
        "plugin `{plugin}` imports `{import}`, which this host does not offer (it offers powernode:step interfaces, wasi:http/outgoing-handler and WASI 0.2)"
    )]
    UnknownImport {
        /// Step type of the plugin.
        plugin: String,
        /// The import name.
        import: String,
    },
    /// An allow-list entry that is not a host, host:port, IP or CIDR.
    #[error(
        "invalid http allow-list entry `{entry}` for plugin `{plugin}`: {reason} (write a host like `api.example.com`, `*.example.com`, `host:8443`, an IP or a CIDR like `10.0.0.0/8`)"
    )]
    BadAllowEntry {
        /// Step type of the plugin.
        plugin: String,
        /// The entry as written.
        entry: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A `[plugins.pins]` entry that is not `sha256:` and 64 hex digits.
    #[error(
        "[plugins.pins] {plugin} = \"{pin}\": {reason}; write `sha256:` and the file's 64 hex digits (`sha256sum {plugin}.wasm`)"
    )]
    BadPin {
        /// Step type of the plugin.
        plugin: String,
        /// The pin as written.
        pin: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A `[plugins] trusted_keys` entry that is not a minisign public key.
    #[error(
        "[plugins] trusted_keys entry {index} (`{key}`) is not a minisign public key: {reason}; give the key line of its `.pub` file (it starts with `RW`)"
    )]
    BadTrustedKey {
        /// Position in the list, from 0.
        index: usize,
        /// The entry as written.
        key: String,
        /// What is wrong with it.
        reason: String,
    },
}

/// The message of [`PolicyError::NotGranted`].
fn not_granted(plugin: &str, imports: &[String], table: &str, replace: bool, note: &str) -> String {
    let names: Vec<String> = imports.iter().map(|i| format!("`{i}`")).collect();
    let (list, which) = match names.split_last() {
        Some((last, rest)) if !rest.is_empty() => (format!("{} and {last}", rest.join(", ")), "which are"),
        _ => (names.concat(), "which is"),
    };
    let them = if imports.len() == 1 { "it" } else { "them" };
    let how = if replace {
        "replace its grant in the config with"
    } else {
        "add to the config"
    };
    format!("plugin `{plugin}` imports {list}, {which} not granted to it; to grant {them} {how}:\n\n{table}{note}")
}
