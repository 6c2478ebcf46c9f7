//! A plugin's import list is its manifest: ungranted imports are refused at load.

use std::time::Duration;

use powernode::catalog::CatalogError;
use powernode::policy::PolicyError;
use powernode::policy::{Capability, GrantConfig};
use powernode::runtime::LoadError;
use serde_json::json;

use crate::harness::Harness;

#[tokio::test]
async fn plugin_importing_an_ungranted_interface_is_refused_at_load() {
    let h = Harness::new();
    let err = h
        .load(powernode_tests::PROCESS_USER, "process_user", GrantConfig::default())
        .await
        .unwrap_err();
    assert!(matches!(err, LoadError::Policy(_)), "{err:?}");
    assert_eq!(
        err.to_string(),
        "plugin `process_user` imports `powernode:step/process@0.1.3`, which is not granted to it; \
         to grant it add to the config:\n\n[plugins.grants.process_user]\ninterfaces = [\"process\"]\n"
    );
}

#[tokio::test]
async fn the_same_plugin_granted_process_runs() {
    let h = Harness::new();
    let grant = GrantConfig {
        interfaces: vec![Capability::Process],
        http: vec![],
        ..Default::default()
    };
    let p = h.load_ok(powernode_tests::PROCESS_USER, "process_user", grant).await;
    assert!(
        p.imports.iter().any(|i| i == "powernode:step/process@0.1.3"),
        "{:?}",
        p.imports
    );
    let out = h.run(&p, json!({}), Duration::from_secs(30)).await.outcome.unwrap();
    assert!(out.raw_output.contains("hi"), "{}", out.raw_output);
}

#[tokio::test]
async fn an_installed_name_must_match_what_the_plugin_describes() {
    let h = Harness::new();
    let err = h
        .load(powernode_tests::ECHO_CONTEXT, "deploy", GrantConfig::default())
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "`{}` describes itself as step type `echo_context`, but is installed as `deploy`; rename the file to `echo_context.wasm`",
            powernode_tests::ECHO_CONTEXT
        )
    );
}

#[tokio::test]
async fn garbage_is_not_a_component() {
    let h = Harness::new();
    let wasm = b"\0asm not really";
    let grant = powernode::policy::Grant::from_config("x", &GrantConfig::default()).unwrap();
    let err = h.runtime.load("x", "garbage.wasm", wasm, grant).await.unwrap_err();
    assert!(
        err.to_string()
            .starts_with("`garbage.wasm` is not a loadable WebAssembly component"),
        "{err}"
    );
}

#[tokio::test]
async fn rust_guests_import_only_what_they_call() {
    let h = Harness::new();
    let hello = h.load_ok(powernode_tests::HELLO, "hello", GrantConfig::default()).await;
    let mut ours: Vec<&str> = hello
        .imports
        .iter()
        .filter(|i| i.starts_with("powernode:"))
        .map(String::as_str)
        .collect();
    ours.sort();
    assert_eq!(ours, ["powernode:step/log@0.1.3", "powernode:step/types@0.1.3"]);
}

#[tokio::test]
async fn inspect_shows_imports_and_the_verdict_without_installing() {
    let h = Harness::new();
    let catalog = powernode::catalog::Catalog::new(h.runtime.clone(), powernode::policy::Grants::default(), None);
    let refused = catalog
        .inspect(std::path::Path::new(powernode_tests::PROCESS_USER))
        .await
        .unwrap();
    assert_eq!(refused.plugin.info.name, "process_user");
    assert!(
        refused
            .plugin
            .imports
            .contains(&"powernode:step/process@0.1.3".to_string())
    );
    assert!(
        matches!(&refused.verdict, Err(CatalogError::Load(e)) if matches!(**e, LoadError::Policy(PolicyError::NotGranted { .. }))),
        "{:?}",
        refused.verdict
    );
    let fine = catalog
        .inspect(std::path::Path::new(powernode_tests::HELLO))
        .await
        .unwrap();
    assert_eq!(fine.plugin.info.summary, "Greets someone by name");
    assert!(fine.verdict.is_ok(), "{:?}", fine.verdict);
}

#[tokio::test]
async fn inspect_says_a_file_under_another_name_would_not_load() {
    let h = Harness::new();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("greeter.wasm");
    std::fs::copy(powernode_tests::HELLO, &file).unwrap();
    let catalog = powernode::catalog::Catalog::new(h.runtime.clone(), powernode::policy::Grants::default(), None);
    let inspected = catalog.inspect(&file).await.unwrap();
    let err = inspected.verdict.unwrap_err();
    assert!(
        err.to_string()
            .contains("describes itself as step type `hello`, but is installed as `greeter`"),
        "{err}"
    );
}

#[tokio::test]
async fn a_plugin_missing_three_grants_gets_one_message_listing_all_three_before_any_compile() {
    let cache = tempfile::tempdir().unwrap();
    let h = Harness::with_config(powernode::runtime::RuntimeConfig {
        cache_dir: Some(cache.path().to_path_buf()),
        ..Default::default()
    });
    let compiled = || std::fs::read_dir(cache.path()).unwrap().count();
    let err = h
        .load(powernode_tests::HOSTILE, "hostile", GrantConfig::default())
        .await
        .unwrap_err();
    let message = err.to_string();
    for import in ["powernode:step/artifacts@", "powernode:step/kv@", "wasi:http/types@"] {
        assert!(message.contains(import), "`{import}` not named in:\n{message}");
    }
    let table = message.split_once("\n\n").map(|(_, t)| t).unwrap_or_default();
    assert_eq!(
        table,
        "[plugins.grants.hostile]\ninterfaces = [\"artifacts\", \"kv\"]\nhttp = [\"api.example.com\"]  # the hosts it may reach\n"
    );
    assert_eq!(compiled(), 0, "the refused plugin was compiled");
    // The table, pasted as given, is a grant under which it loads (and is then compiled).
    let config: toml::Table = table.parse().unwrap();
    let grant: GrantConfig = config["plugins"]["grants"]["hostile"].clone().try_into().unwrap();
    h.load_ok(powernode_tests::HOSTILE, "hostile", grant).await;
    assert_eq!(compiled(), 1);
}
