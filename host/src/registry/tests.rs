//! Loading, adding and deleting pipelines: what the intake sees after each change, what a
//! restart sees, and what is refused.

use super::*;
use crate::store::SledStore;

fn pipeline(name: &str, event: &str) -> String {
    format!(
        "name: {name}\ntriggers:\n  - type: {event}\nsteps:\n  - name: s\n    type: run_command\n    config:\n      command: echo ${{TOKEN}}\n"
    )
}

struct Setup {
    dir: tempfile::TempDir,
    store: Arc<SledStore>,
}

impl Setup {
    fn new() -> Setup {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("pipelines")).unwrap();
        let store = Arc::new(SledStore::open(&dir.path().join("data")).unwrap());
        Setup { dir, store }
    }

    fn file(&self, name: &str, text: &str) {
        std::fs::write(self.dir.path().join("pipelines").join(name), text).unwrap();
    }

    async fn registry(&self) -> Registry {
        let secrets = BTreeSet::from(["TOKEN".to_string()]);
        Registry::load(
            &self.dir.path().join("pipelines"),
            crate::pipeline::StepTypes::new(["run_command"]),
            Some(secrets),
            self.store.clone(),
        )
        .await
        .unwrap()
    }
}

fn names(active: &Active) -> Vec<String> {
    active.get().iter().map(|p| p.name.clone()).collect()
}

#[tokio::test]
async fn files_load_and_bad_or_duplicate_ones_are_skipped() {
    let setup = Setup::new();
    setup.file("a.yml", &pipeline("build", "push"));
    setup.file("b.yaml", &pipeline("review", "pull_request"));
    setup.file("c.yml", &pipeline("build", "tag"));
    setup.file("d.yml", "name: broken\nsteps: [");
    setup.file("notes.txt", "not a pipeline");
    let registry = setup.registry().await;
    assert_eq!(names(&registry.active()), ["build", "review"]);
    let build = registry.get("build").unwrap();
    assert_eq!(
        build.origin,
        Origin::File {
            path: setup.dir.path().join("pipelines/a.yml")
        }
    );
    assert_eq!(build.text, pipeline("build", "push"));
}

#[tokio::test]
async fn api_pipelines_take_effect_at_once_and_survive_a_reload() {
    let setup = Setup::new();
    setup.file("a.yml", &pipeline("build", "push"));
    let registry = setup.registry().await;
    let active = registry.active();
    assert_eq!(
        registry
            .put("review", &pipeline("review", "pull_request"))
            .await
            .unwrap(),
        Put::Created
    );
    assert_eq!(names(&active), ["build", "review"], "the intake's snapshot follows");
    assert_eq!(
        registry
            .put("review", &pipeline("review", "issue_comment"))
            .await
            .unwrap(),
        Put::Replaced
    );
    let review = &active.get()[1];
    assert_eq!(review.triggers[0].kind, "issue_comment");

    drop(registry);
    let reloaded = setup.registry().await;
    assert_eq!(names(&reloaded.active()), ["build", "review"]);
    assert_eq!(reloaded.get("review").unwrap().origin, Origin::Api);
    assert_eq!(
        reloaded.get("review").unwrap().text,
        pipeline("review", "issue_comment")
    );

    reloaded.delete("review").await.unwrap();
    assert_eq!(names(&reloaded.active()), ["build"]);
    drop(reloaded);
    assert_eq!(names(&setup.registry().await.active()), ["build"]);
}

#[tokio::test]
async fn bad_changes_are_refused_and_change_nothing() {
    let setup = Setup::new();
    setup.file("a.yml", &pipeline("build", "push"));
    let registry = setup.registry().await;
    let invalid = |result: Result<Put, RegistryError>| match result {
        Err(RegistryError::Invalid(message)) => message,
        other => panic!("expected Invalid, got {other:?}"),
    };
    let message = invalid(registry.put("x", "name: x\nsteps: [").await);
    assert!(message.starts_with("api:x:"), "{message}");
    let message = invalid(registry.put("other", &pipeline("review", "push")).await);
    assert!(message.contains("`review`") && message.contains("`other`"), "{message}");
    let unknown_secret = pipeline("x", "push").replace("TOKEN", "MISSING");
    assert!(invalid(registry.put("x", &unknown_secret).await).contains("unknown secret `MISSING`"));
    let huge = format!("{}# {}\n", pipeline("x", "push"), "a".repeat(MAX_PIPELINE_BYTES));
    assert!(invalid(registry.put("x", &huge).await).contains("at most"));

    assert!(matches!(
        registry.put("build", &pipeline("build", "tag")).await,
        Err(RegistryError::FromFile { .. })
    ));
    assert!(matches!(
        registry.delete("build").await,
        Err(RegistryError::FromFile { .. })
    ));
    assert!(matches!(registry.delete("nope").await, Err(RegistryError::NotFound(_))));
    assert_eq!(names(&registry.active()), ["build"]);
    assert!(setup.store.pipelines().await.unwrap().is_empty());
}

#[tokio::test]
async fn a_stored_pipeline_that_no_longer_validates_is_skipped() {
    let setup = Setup::new();
    setup
        .store
        .put_pipeline("old", &pipeline("old", "push").replace("run_command", "gone"))
        .await
        .unwrap();
    setup.store.put_pipeline("ok", &pipeline("ok", "push")).await.unwrap();
    let registry = setup.registry().await;
    assert_eq!(names(&registry.active()), ["ok"]);
    // Not listed, yet deletable, so it cannot linger in the store.
    registry.delete("old").await.unwrap();
    assert_eq!(setup.store.pipelines().await.unwrap().len(), 1);
    assert!(matches!(registry.delete("old").await, Err(RegistryError::NotFound(_))));
}

#[tokio::test]
async fn a_step_type_added_later_is_accepted_once_the_registry_is_told() {
    let setup = Setup::new();
    let uses_hello = "name: greet\nsteps:\n  - name: s\n    type: hello\n    config:\n      name: Ada\n";
    setup.file("greet.yml", uses_hello);
    let registry = setup.registry().await;
    assert!(registry.get("greet").is_none(), "unknown type: the file is skipped");
    let refused = registry
        .put("greet2", &uses_hello.replace("greet", "greet2"))
        .await
        .unwrap_err();
    assert!(refused.to_string().contains("unknown step type `hello`"), "{refused}");
    let mut types = crate::pipeline::StepTypes::new(["run_command"]);
    types
        .add(
            "hello",
            r#"{"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]}"#,
        )
        .unwrap();
    registry.set_step_types(types).await.unwrap();
    assert!(
        registry.get("greet").is_some(),
        "the file is read again against the new types"
    );
    assert_eq!(
        registry
            .put("greet2", &uses_hello.replace("greet", "greet2"))
            .await
            .unwrap(),
        Put::Created
    );
    let bad = registry
        .put(
            "greet3",
            "name: greet3\nsteps:\n  - name: s\n    type: hello\n    config: {}\n",
        )
        .await
        .unwrap_err();
    assert!(bad.to_string().contains("name"), "the new type's schema is used: {bad}");
}

#[tokio::test]
async fn a_pipeline_another_node_stored_is_picked_up_by_the_watch() {
    let setup = Setup::new();
    let registry = Arc::new(setup.registry().await);
    let watch = tokio::spawn(registry.clone().watch(std::time::Duration::from_millis(20)));
    // Another node shares the store: its change reaches this one without a restart.
    setup
        .store
        .put_pipeline("elsewhere", &pipeline("elsewhere", "push"))
        .await
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while registry.get("elsewhere").is_none() {
        assert!(std::time::Instant::now() < deadline, "never picked up");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    setup.store.delete_pipeline("elsewhere").await.unwrap();
    while registry.get("elsewhere").is_some() {
        assert!(std::time::Instant::now() < deadline, "its deletion never picked up");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    watch.abort();
}
