//! The runner's run controls with real plugins: `if:`, `continue_on_error`, the run's own
//! `timeout_minutes`, secrets for pull requests from forks, and `max_workspace_mb`.

use powernode::catalog::Catalog;
use powernode::model::TriggerContext;
use powernode::policy::Grants;
use powernode::runner::{RunRequest, RunSummary, StepError, run_pipeline};
use powernode::runtime::{HostLimits, RuntimeConfig, StepFailure};

use crate::harness::Harness;

async fn run(h: &Harness, text: &str, trigger: TriggerContext) -> (powernode::pipeline::Pipeline, RunSummary) {
    let catalog = Catalog::new(h.runtime.clone(), Grants::default(), None);
    let pipeline = powernode::pipeline::check("p.yml", text, &catalog.describe_types().await.unwrap(), None).unwrap();
    let req = RunRequest {
        run_id: "run-1".into(),
        trigger,
        secrets: [("TOKEN".to_string(), "t0ps3cret".to_string())].into(),
        workspace: h.workspace.path().into(),
        forge: None,
        log_tap: None,
        run_url: None,
    };
    let summary = run_pipeline(&catalog, &pipeline, req, |_| {}).await;
    (pipeline, summary)
}

fn push() -> TriggerContext {
    TriggerContext {
        event: "push".into(),
        ..TriggerContext::default()
    }
}

#[tokio::test]
async fn a_step_runs_only_when_its_condition_holds() {
    let h = Harness::new();
    let text = "name: p\nsteps:\n  - name: on_push\n    type: run_command\n    if: \"{{ event == 'push' }}\"\n    config:\n      command: echo pushed\n  - name: on_pr\n    type: run_command\n    if: event == 'pull_request' and number > 3\n    config:\n      command: echo pr\n  - name: last\n    type: run_command\n    config:\n      command: echo done\n";
    let (pipeline, summary) = run(&h, text, push()).await;
    assert!(summary.succeeded(&pipeline), "{summary:?}");
    let ran: Vec<(&str, bool)> = summary.steps.iter().map(|s| (s.name.as_str(), s.skipped)).collect();
    // `number` is not set on a push: in a condition it reads as none, not as an error.
    assert_eq!(ran, [("on_push", false), ("on_pr", true), ("last", false)]);
    assert_eq!(summary.steps[0].outcome.as_ref().unwrap().raw_output, "pushed\n");
}

#[tokio::test]
async fn a_step_allowed_to_fail_does_not_stop_or_fail_the_run() {
    let h = Harness::new();
    let text = "name: p\nsteps:\n  - name: flaky\n    type: run_command\n    continue_on_error: true\n    config:\n      command: exit 7\n  - name: next\n    type: run_command\n    config:\n      command: echo still here\n";
    let (pipeline, summary) = run(&h, text, push()).await;
    assert!(summary.steps[0].outcome.is_err());
    assert_eq!(summary.steps[1].outcome.as_ref().unwrap().raw_output, "still here\n");
    assert!(summary.succeeded(&pipeline), "{summary:?}");
}

#[tokio::test]
async fn the_runs_own_limit_cuts_the_step_that_runs_past_it() {
    let h = Harness::new();
    let text = "name: p\ntimeout_minutes: 0.01\nsteps:\n  - name: slow\n    type: run_command\n    config:\n      command: sleep 30\n  - name: never\n    type: run_command\n    config:\n      command: echo never\n";
    let (pipeline, summary) = run(&h, text, push()).await;
    assert!(summary.timed_out, "{summary:?}");
    assert!(!summary.succeeded(&pipeline));
    assert!(
        matches!(&summary.steps[0].outcome, Err(StepError::Run(StepFailure::Timeout(_)))),
        "{:?}",
        summary.steps[0].outcome
    );
    assert_eq!(summary.steps.len(), 1, "no step starts after the run's time is up");
}

#[tokio::test]
async fn a_fork_gets_secrets_only_when_the_pipeline_says_so() {
    let h = Harness::new();
    let fork = TriggerContext {
        event: "pull_request".into(),
        is_pull_request: true,
        is_fork: true,
        ..TriggerContext::default()
    };
    let text =
        "name: p\nsteps:\n  - name: use\n    type: run_command\n    config:\n      command: test -n \"${TOKEN}\"\n";
    let (_, summary) = run(&h, text, fork.clone()).await;
    let err = summary.steps[0].outcome.as_ref().unwrap_err().to_string();
    assert!(
        err.contains("secret `TOKEN` is withheld from pull requests from forks"),
        "{err}"
    );
    let opted_in = text.replace("name: p\n", "name: p\nsecrets_for_forks: true\n");
    let (pipeline, summary) = run(&h, &opted_in, fork).await;
    assert!(summary.succeeded(&pipeline), "{summary:?}");
}

#[tokio::test]
async fn a_workspace_over_its_limit_fails_the_run_before_the_next_step() {
    let h = Harness::with_config(RuntimeConfig {
        host: HostLimits {
            max_workspace_bytes: 1 << 20,
            ..HostLimits::default()
        },
        ..RuntimeConfig::default()
    });
    // A sparse file counts by its length (3 MiB), not by the few blocks it occupies; the step
    // may fail without failing the run, but the limit ends the run all the same.
    let text = "name: p\nsteps:\n  - name: small\n    type: run_command\n    config:\n      command: echo small > small.txt && rm small.txt\n  - name: big\n    type: run_command\n    continue_on_error: true\n    config:\n      command: truncate -s 3M big.bin\n  - name: never\n    type: run_command\n    config:\n      command: touch never-ran\n";
    let (pipeline, summary) = run(&h, text, push()).await;
    assert!(!summary.succeeded(&pipeline), "{summary:?}");
    assert!(summary.steps[0].outcome.is_ok(), "{summary:?}");
    assert_eq!(
        summary.steps.len(),
        2,
        "no step runs after the limit is hit: {summary:?}"
    );
    let err = summary.steps[1].outcome.as_ref().unwrap_err();
    assert!(matches!(err, StepError::WorkspaceLimit { limit_mib: 1, .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        "workspace_limit: the workspace holds at least 3 MiB, over max_workspace_mb = 1"
    );
    assert!(!h.workspace.path().join("never-ran").exists());
}
