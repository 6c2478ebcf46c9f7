//! The checks every [`Store`] must pass, run against the embedded store and PostgreSQL.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::{ArtifactSource, KvQuota, KvScope, MAX_KV_VALUE, Store, StoreError};

/// Runs every check against a fresh store that `open` makes in a fresh folder.
pub(crate) async fn run<F, Fut>(open: F)
where
    F: Fn(PathBuf) -> Fut,
    Fut: std::future::Future<Output = Box<dyn Store>>,
{
    let dir = tempfile::tempdir().unwrap();
    let mut n = 0;
    let mut fresh = || {
        n += 1;
        let path = dir.path().join(n.to_string());
        std::fs::create_dir_all(&path).unwrap();
        path
    };
    kv_is_scoped_by_plugin_and_repository(&*open(fresh()).await).await;
    kv_quota_counts_keys_and_bytes_and_frees_on_delete(&*open(fresh()).await).await;
    let src = fresh();
    artifacts_are_copied_hashed_and_listed(&*open(fresh()).await, &src).await;
    artifacts_over_budget_or_past_the_deadline_are_not_kept(&*open(fresh()).await, &src).await;
    templates_and_pipelines_are_kept_by_name(&*open(fresh()).await).await;
}

async fn kv_is_scoped_by_plugin_and_repository(store: &dyn Store) {
    let a = KvScope {
        plugin: "claude_execute",
        repository: "org/a",
    };
    let b = KvScope {
        plugin: "claude_execute",
        repository: "org/b",
    };
    let other_plugin = KvScope {
        plugin: "deploy",
        repository: "org/a",
    };
    let quota = KvQuota::default();
    store.kv_set(&a, "session", b"one", &quota).await.unwrap();
    assert_eq!(store.kv_get(&a, "session").await.unwrap().as_deref(), Some(&b"one"[..]));
    assert_eq!(store.kv_get(&b, "session").await.unwrap(), None);
    assert_eq!(store.kv_get(&other_plugin, "session").await.unwrap(), None);
    store.kv_set(&a, "session", b"two", &quota).await.unwrap();
    assert_eq!(store.kv_get(&a, "session").await.unwrap().as_deref(), Some(&b"two"[..]));
    store.kv_delete(&a, "session").await.unwrap();
    store.kv_delete(&a, "session").await.unwrap();
    assert_eq!(store.kv_get(&a, "session").await.unwrap(), None);
    let err = store
        .kv_set(&a, "big", &vec![0; MAX_KV_VALUE + 1], &quota)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Invalid(_)), "{err}");
    assert!(store.kv_set(&a, "", b"x", &quota).await.is_err(), "an empty key");
    assert!(
        store.kv_set(&a, &"k".repeat(513), b"x", &quota).await.is_err(),
        "an overlong key"
    );
}

async fn kv_quota_counts_keys_and_bytes_and_frees_on_delete(store: &dyn Store) {
    let scope = KvScope {
        plugin: "p",
        repository: "org/a",
    };
    let other = KvScope {
        plugin: "p",
        repository: "org/b",
    };
    let quota = KvQuota {
        max_bytes: 100,
        max_keys: 2,
    };
    store.kv_set(&scope, "a", &[0; 40], &quota).await.unwrap();
    // Overwriting replaces the old size rather than adding to it.
    store.kv_set(&scope, "a", &[0; 49], &quota).await.unwrap();
    store.kv_set(&scope, "b", &[0; 49], &quota).await.unwrap();
    let err = store.kv_set(&scope, "c", &[0; 1], &quota).await.unwrap_err();
    assert!(err.to_string().contains("may keep 2 keys"), "{err}");
    store.kv_delete(&scope, "b").await.unwrap();
    let err = store.kv_set(&scope, "b", &[0; 51], &quota).await.unwrap_err();
    assert!(err.to_string().contains("may keep 100 bytes"), "{err}");
    assert_eq!(
        store.kv_get(&scope, "b").await.unwrap(),
        None,
        "a refused value is not stored"
    );
    // Keys count too: 1 + 49 twice is exactly the quota.
    store.kv_set(&scope, "b", &[0; 49], &quota).await.unwrap();
    // Each scope has its own quota.
    store.kv_set(&other, "a", &[0; 99], &quota).await.unwrap();
}

async fn artifacts_are_copied_hashed_and_listed(store: &dyn Store, scratch: &Path) {
    let src = scratch.join("report.txt");
    std::fs::write(&src, "hello").unwrap();
    let later = Instant::now() + Duration::from_secs(3600);
    let rec = store
        .put_artifact(
            "run-1",
            "reports/report.txt",
            ArtifactSource::File(src.clone()),
            5,
            later,
        )
        .await
        .unwrap();
    assert_eq!(rec.size, 5);
    assert_eq!(
        rec.sha256,
        "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
    );
    assert_eq!(store.artifact_contents().read_to_vec(&rec).await.unwrap(), b"hello");
    assert_eq!(store.artifacts("run-1").await.unwrap(), vec![rec.clone()]);
    // The run's budget counts what it stored already.
    let err = store
        .put_artifact("run-1", "again.txt", ArtifactSource::File(src.clone()), 9, later)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Quota(_)), "{err}");
    for bad in ["../escape", "/abs", "a/../b", ""] {
        assert!(
            store
                .put_artifact("run-1", bad, ArtifactSource::File(src.clone()), 100, later)
                .await
                .is_err(),
            "{bad:?}"
        );
    }
    // Bytes a step hands over are kept like a file, within the same budget.
    let bytes = store
        .put_artifact("run-2", "hello.txt", ArtifactSource::Bytes(b"hello".to_vec()), 5, later)
        .await
        .unwrap();
    assert_eq!((bytes.size, bytes.sha256.as_str()), (5, rec.sha256.as_str()));
    let err = store
        .put_artifact("run-2", "more.txt", ArtifactSource::Bytes(b"!".to_vec()), 5, later)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Quota(_)), "{err}");
    assert_eq!(store.delete_artifacts("run-1").await.unwrap(), 1);
    assert_eq!(store.artifacts("run-1").await.unwrap(), vec![]);
    assert!(store.artifact_contents().names("run-1").await.unwrap().is_empty());
    assert_eq!(
        store.artifact_contents().names("run-2").await.unwrap(),
        ["hello.txt"],
        "another run's content stays"
    );
}

async fn artifacts_over_budget_or_past_the_deadline_are_not_kept(store: &dyn Store, scratch: &Path) {
    let src = scratch.join("sparse.bin");
    std::fs::File::create(&src).unwrap().set_len(1 << 40).unwrap();
    let later = Instant::now() + Duration::from_secs(3600);
    let err = store
        .put_artifact("run-1", "big", ArtifactSource::File(src.clone()), 1 << 20, later)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Quota(_)), "{err}");
    let err = store
        .put_artifact(
            "run-1",
            "big",
            ArtifactSource::File(src.clone()),
            2 << 40,
            Instant::now(),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Deadline), "{err}");
    assert_eq!(store.artifacts("run-1").await.unwrap(), vec![]);
    store
        .put_artifact("run-1", "probe", ArtifactSource::Bytes(b"probe".to_vec()), 100, later)
        .await
        .unwrap();
    let left = store.artifact_contents().names("run-1").await.unwrap();
    assert_eq!(left, ["probe"], "partial contents left behind");
}

async fn templates_and_pipelines_are_kept_by_name(store: &dyn Store) {
    assert!(!store.put_template("review", "Review {{ pr }}").await.unwrap());
    assert!(
        store.put_template("review", "Review {{ pr }} again").await.unwrap(),
        "replaced"
    );
    assert!(!store.put_template("b.summary", "Sum").await.unwrap());
    assert_eq!(
        store.template("review").await.unwrap().as_deref(),
        Some("Review {{ pr }} again")
    );
    assert_eq!(store.template("nope").await.unwrap(), None);
    assert_eq!(store.template_ids().await.unwrap(), ["b.summary", "review"]);
    assert!(store.delete_template("review").await.unwrap());
    assert!(!store.delete_template("review").await.unwrap());
    assert_eq!(store.template_ids().await.unwrap(), ["b.summary"]);

    assert!(store.pipelines().await.unwrap().is_empty());
    store.put_pipeline("zeta", "name: zeta\n").await.unwrap();
    store.put_pipeline("alpha", "name: alpha\n").await.unwrap();
    store.put_pipeline("zeta", "name: zeta\n# 2\n").await.unwrap();
    assert_eq!(
        store.pipelines().await.unwrap(),
        [
            ("alpha".to_string(), "name: alpha\n".to_string()),
            ("zeta".into(), "name: zeta\n# 2\n".into())
        ]
    );
    assert!(store.delete_pipeline("alpha").await.unwrap());
    assert!(!store.delete_pipeline("alpha").await.unwrap());
    assert_eq!(store.pipelines().await.unwrap().len(), 1);
}
