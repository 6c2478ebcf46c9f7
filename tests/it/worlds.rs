//! The Python and JavaScript examples of each world (`sdk/python/examples/*`,
//! `sdk/js/examples/*`): the same three steps in both languages, so one check serves both.
//! Each, built with its real toolchain, imports exactly its world and runs with the grant
//! that world needs.

use std::path::Path;
use std::time::Duration;

use powernode::policy::{Capability, GrantConfig};
use powernode::runtime::StepFailure;
use powernode::store::Store;
use serde_json::json;

use crate::harness::{Harness, reaching_imports};

/// The worlds of `wit/step.wit`, as `-w`/`-n` name them.
pub const WORLDS: [&str; 3] = ["log-only", "forge", "full"];

/// The interfaces `world` imports, beyond WASI's own (but with `wasi:http`), sorted.
fn world_imports(world: &str) -> Vec<&'static str> {
    match world {
        "log-only" => vec!["powernode:step/log@0.1.3", "powernode:step/types@0.1.3"],
        "forge" => vec![
            "powernode:step/git@0.1.3",
            "powernode:step/kv@0.1.3",
            "powernode:step/log@0.1.3",
            "powernode:step/provider@0.1.3",
            "powernode:step/templates@0.1.3",
            "powernode:step/types@0.1.3",
        ],
        "full" => vec![
            "powernode:step/artifacts@0.1.3",
            "powernode:step/git@0.1.3",
            "powernode:step/kv@0.1.3",
            "powernode:step/log@0.1.3",
            "powernode:step/process@0.1.3",
            "powernode:step/provider@0.1.3",
            "powernode:step/templates@0.1.3",
            "powernode:step/types@0.1.3",
            "wasi:http/outgoing-handler@0.2.12",
            "wasi:http/types@0.2.12",
        ],
        other => panic!("no world `{other}`"),
    }
}

/// The grant a step of `world` needs to load: every interface the world imports.
fn world_grant(world: &str) -> GrantConfig {
    use Capability::*;
    let interfaces = match world {
        "log-only" => vec![],
        "forge" => vec![Kv, Templates, Provider, Git],
        _ => vec![Artifacts, Kv, Templates, Process, Provider, Git, Http],
    };
    GrantConfig {
        interfaces,
        ..Default::default()
    }
}

/// Loads the example of `world` built as `wasm`, checks its imports and runs it as that
/// example's step must behave.
pub async fn check_example(wasm: &Path, world: &str) {
    // Room for one 5-byte report: the second is over the run's quota, a host call's failure.
    let h = Harness::with_config(powernode::runtime::RuntimeConfig {
        host: powernode::runtime::HostLimits {
            max_artifact_bytes: 8,
            ..Default::default()
        },
        ..Default::default()
    });
    let step_type = match world {
        "log-only" => "greet",
        "forge" => "visits",
        _ => "report",
    };
    let p = h.load_ok(wasm.to_str().unwrap(), step_type, world_grant(world)).await;
    let ours = reaching_imports(&p.imports);
    assert_eq!(ours, world_imports(world), "{world}: all imports {:?}", p.imports);
    let limit = Duration::from_secs(60);
    let outputs = |config| {
        let h = &h;
        let p = &p;
        async move {
            let report = h.run(p, config, limit).await;
            let out = report
                .outcome
                .unwrap_or_else(|e| panic!("{world}: {e}; log {:?}", report.log));
            let named: Vec<(String, String)> = out.outputs.into_iter().collect();
            (out.raw_output, named, report.log)
        }
    };
    match world {
        "log-only" => {
            let (raw, named, log) = outputs(json!({"name": "Ada"})).await;
            assert_eq!(raw, "hello, Ada");
            assert_eq!(named, [("length".to_string(), "3".to_string())]);
            assert!(log.iter().any(|l| l.message == "greeting Ada"), "{log:?}");
        }
        "forge" => {
            for n in ["1", "2"] {
                let (raw, named, log) = outputs(json!({})).await;
                assert_eq!(raw, format!("run {n}"));
                let expected = [("count", n), ("pull_request", "false")].map(|(k, v)| (k.to_string(), v.to_string()));
                assert_eq!(named, expected);
                assert!(
                    log.iter().any(|l| l.message == format!("run {n} of a local run")),
                    "{log:?}"
                );
            }
        }
        _ => {
            let (raw, named, _) = outputs(json!({"text": "hello"})).await;
            assert_eq!(raw, "report.txt");
            let sha = "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824";
            let expected = [("sha256", sha), ("size", "5")].map(|(k, v)| (k.to_string(), v.to_string()));
            assert_eq!(named, expected);
            let kept = h.store.artifacts("run-1").await.unwrap();
            assert_eq!(
                h.store.artifact_contents().read_to_vec(&kept[0]).await.unwrap(),
                b"hello"
            );
            // Unhandled, the host's refusal is the step's `failed` message (not a trap).
            let over = h.run(&p, json!({"text": "hello"}), limit).await;
            assert!(
                matches!(&over.outcome, Err(StepFailure::Failed(m)) if m.contains("this run may store 3 more bytes (limits.max_artifact_mb)")),
                "{:?}",
                over.outcome
            );
        }
    }
}

/// The world of README's "Your own world", in `dir/my-wit`, Powernode's WIT under its
/// `deps/`; returns that folder.
pub fn own_world(dir: &Path) -> std::path::PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let wit = dir.join("my-wit");
    std::fs::create_dir_all(wit.join("deps")).unwrap();
    for entry in std::fs::read_dir(root.join("wit/deps")).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), wit.join("deps").join(entry.file_name())).unwrap();
    }
    std::fs::copy(root.join("wit/step.wit"), wit.join("deps/powernode-step.wit")).unwrap();
    let world = "package my:steps;\n\nworld counter {\n    import powernode:step/log@0.1.3;\n    \
                 import powernode:step/kv@0.1.3;\n    export powernode:step/handler@0.1.3;\n}\n";
    std::fs::write(wit.join("world.wit"), world).unwrap();
    wit
}

/// The forge example built for [`own_world`]'s `counter`: it imports `log`, `kv` and
/// `types` only, and runs with just `kv` granted.
pub async fn check_own_world(wasm: &Path) {
    let h = Harness::new();
    let grant = GrantConfig {
        interfaces: vec![Capability::Kv],
        ..Default::default()
    };
    let p = h.load_ok(wasm.to_str().unwrap(), "visits", grant).await;
    let ours = reaching_imports(&p.imports);
    assert_eq!(
        ours,
        [
            "powernode:step/kv@0.1.3",
            "powernode:step/log@0.1.3",
            "powernode:step/types@0.1.3"
        ],
        "all imports: {:?}",
        p.imports
    );
    let report = h.run(&p, json!({}), Duration::from_secs(60)).await;
    assert_eq!(report.outcome.map(|o| o.raw_output), Ok("run 1".to_string()));
}
