//! Custom plugins come from the plugins directory and are picked up without a restart;
//! compiled components are cached on disk across restarts.

use std::sync::Arc;

use powernode::catalog::{Catalog, CatalogError};
use powernode::policy::Grants;
use powernode::runtime::{Runtime, RuntimeConfig};
use powernode::services::Services;

use crate::harness::Harness;

#[tokio::test]
async fn a_plugin_added_or_replaced_in_the_directory_is_picked_up() {
    let h = Harness::new();
    let dir = tempfile::tempdir().unwrap();
    let catalog = Catalog::new(h.runtime.clone(), Grants::default(), Some(dir.path().into()));
    assert!(matches!(catalog.get("hello").await, Err(CatalogError::Unknown { .. })));
    assert!(catalog.step_types().unwrap().contains(&"run_command".to_string()));

    std::fs::copy(powernode_tests::HELLO, dir.path().join("hello.wasm")).unwrap();
    let first = catalog.get("hello").await.unwrap();
    assert_eq!(first.info.name, "hello");
    assert!(catalog.step_types().unwrap().contains(&"hello".to_string()));

    // Replaced by a broken file: refused with a clear error, the server keeps going.
    std::fs::write(dir.path().join("hello.wasm.tmp"), b"not wasm").unwrap();
    std::fs::rename(dir.path().join("hello.wasm.tmp"), dir.path().join("hello.wasm")).unwrap();
    let err = catalog.get("hello").await.unwrap_err();
    assert!(
        err.to_string().contains("is not a loadable WebAssembly component"),
        "{err}"
    );

    // Replaced again by a good one: loaded again, no restart.
    std::fs::copy(powernode_tests::HELLO, dir.path().join("hello.wasm.tmp")).unwrap();
    std::fs::rename(dir.path().join("hello.wasm.tmp"), dir.path().join("hello.wasm")).unwrap();
    assert_eq!(catalog.get("hello").await.unwrap().sha256, first.sha256);
}

#[tokio::test]
async fn unknown_step_type_lists_known_ones() {
    let h = Harness::new();
    let catalog = Catalog::new(h.runtime.clone(), Grants::default(), None);
    let err = catalog.get("deploi").await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "unknown step type `deploi`; known step types: checkout, claude_execute, create_pr, deploy, post_comment, run_command, update_status, upload_artifact"
    );
}

#[tokio::test]
async fn restart_with_a_warm_cache_does_not_recompile() {
    let h = Harness::new();
    let cache = tempfile::tempdir().unwrap();
    let runtime = |h: &Harness| {
        let config = RuntimeConfig {
            cache_dir: Some(cache.path().into()),
            ..RuntimeConfig::default()
        };
        Arc::new(Runtime::new(config, Arc::new(Services::new(h.store.clone()))).unwrap())
    };
    let cold = Catalog::new(runtime(&h), Grants::default(), None);
    assert!(!cold.get("run_command").await.unwrap().from_cache);
    let warm = Catalog::new(runtime(&h), Grants::default(), None);
    assert!(warm.get("run_command").await.unwrap().from_cache);
}

#[tokio::test]
async fn an_unreadable_plugins_directory_is_an_error_not_an_empty_one() {
    let h = Harness::new();
    let file = tempfile::NamedTempFile::new().unwrap();
    let catalog = Catalog::new(h.runtime.clone(), Grants::default(), Some(file.path().into()));
    let err = catalog.step_types().unwrap_err();
    assert!(
        err.to_string()
            .starts_with(&format!("cannot read plugin `{}`", file.path().display())),
        "{err}"
    );
    // A lookup does not fall back to the built-ins behind the operator's back either.
    assert!(matches!(
        catalog.get("run_command").await,
        Err(CatalogError::Read { .. })
    ));
    // A directory that does not exist simply holds no plugins.
    let dir = tempfile::tempdir().unwrap();
    let missing = Catalog::new(h.runtime.clone(), Grants::default(), Some(dir.path().join("none")));
    assert!(missing.step_types().unwrap().contains(&"run_command".to_string()));
}
