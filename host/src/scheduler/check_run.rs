//! What a run's own check run says on a GitHub App source (`powernode/<pipeline>`): its
//! status and conclusion from the run's state, a title, and a Markdown summary listing the
//! steps with their state and time. Pure: `status.rs` sends it.

use std::fmt::Write;

use crate::provider::checks::SUMMARY_LIMIT;
use crate::provider::{CheckConclusion, CheckOutput, CheckStatus};
use crate::store::runs::{RunRecord, RunState, StepRecord};

use super::status::Phase;

/// The check run's status and, once the run ended, its conclusion.
pub(super) fn status(phase: Phase) -> (CheckStatus, Option<CheckConclusion>) {
    match phase {
        Phase::WaitingApproval | Phase::Queued => (CheckStatus::Queued, None),
        Phase::Running => (CheckStatus::InProgress, None),
        Phase::Finished(end) => (CheckStatus::Completed, Some(conclusion(end))),
    }
}

fn conclusion(end: RunState) -> CheckConclusion {
    match end {
        RunState::Success => CheckConclusion::Success,
        RunState::Cancelled => CheckConclusion::Cancelled,
        RunState::TimedOut => CheckConclusion::TimedOut,
        RunState::Skipped => CheckConclusion::Skipped,
        RunState::Failure | RunState::WaitingApproval | RunState::Queued | RunState::Running => {
            CheckConclusion::Failure
        }
    }
}

/// Title and summary: one line, then the run and a table of the steps. `planned` are the
/// pipeline's step names, for the steps not recorded yet.
pub(super) fn output(run: &RunRecord, phase: Phase, planned: &[String], run_url: &str) -> CheckOutput {
    let title = match phase {
        Phase::WaitingApproval => "Waiting for approval".to_string(),
        Phase::Queued => "Queued".to_string(),
        Phase::Running => "Running".to_string(),
        Phase::Finished(RunState::Success) => "All steps succeeded".to_string(),
        Phase::Finished(RunState::Cancelled) => "Cancelled".to_string(),
        Phase::Finished(RunState::TimedOut) => "Timed out".to_string(),
        Phase::Finished(_) => one_line(run.error.as_deref().unwrap_or("Failed"), 120),
    };
    let mut summary = format!("Run [`{}`]({run_url}) of pipeline `{}`", run.id, run.pipeline);
    if run.attempt > 1 {
        let _ = write!(summary, " (attempt {})", run.attempt);
    }
    if matches!(phase, Phase::WaitingApproval) {
        let _ = write!(
            summary,
            ".\n\nIt starts once approved: `POST /api/runs/{}/approve` with the API token",
            run.id
        );
    }
    summary.push_str("\n\n| Step | State | Time |\n|---|---|---|\n");
    for step in &run.steps {
        let _ = writeln!(
            summary,
            "| `{}` | {} | {} |",
            cell(&step.name),
            state(step.state),
            time(step)
        );
    }
    let waiting = if matches!(phase, Phase::Finished(_)) {
        "not run"
    } else {
        "waiting"
    };
    for name in planned.iter().skip(run.steps.len()) {
        let _ = writeln!(summary, "| `{}` | {waiting} | — |", cell(name));
    }
    if let (Phase::Finished(end), Some(error)) = (phase, &run.error)
        && end != RunState::Success
    {
        let _ = write!(summary, "\n{}\n", quote(error));
    }
    if let Some((failed, error)) = run.steps.iter().find_map(|s| {
        s.error
            .as_ref()
            .filter(|_| s.state == RunState::Failure)
            .map(|e| (s, e))
    }) && run.error.as_deref().is_none_or(|e| !e.contains(error.as_str()))
    {
        let _ = write!(summary, "\n**{}**:\n{}\n", cell(&failed.name), quote(error));
    }
    CheckOutput {
        title,
        summary: summary.chars().take(SUMMARY_LIMIT).collect(),
        annotations: Vec::new(),
    }
}

fn state(s: RunState) -> &'static str {
    match s {
        RunState::Success => "✅ success",
        RunState::Failure => "❌ failure",
        RunState::TimedOut => "⏱ timed out",
        RunState::Cancelled => "⏹ cancelled",
        RunState::Skipped => "⏭ skipped",
        RunState::Running => "▶ running",
        RunState::WaitingApproval => "waiting for approval",
        RunState::Queued => "queued",
    }
}

/// `1.2 s`, `3 min 4 s`, or `—` for a step that did not run.
fn time(step: &StepRecord) -> String {
    let (Some(start), Some(end)) = (step.started_at_ms, step.finished_at_ms) else {
        return match step.started_at_ms {
            Some(_) => "…".into(),
            None => "—".into(),
        };
    };
    let ms = end.saturating_sub(start);
    if ms < 60_000 {
        format!("{:.1} s", ms as f64 / 1000.0)
    } else {
        format!("{} min {} s", ms / 60_000, ms % 60_000 / 1000)
    }
}

/// Text safe inside a table cell.
fn cell(text: &str) -> String {
    one_line(text, 200).replace('|', "\\|").replace('`', "'")
}

/// A Markdown quote of `text`, every line of at most 20 kept.
fn quote(text: &str) -> String {
    text.lines()
        .take(20)
        .map(|l| format!("> {}", l.chars().take(500).collect::<String>()))
        .collect::<Vec<_>>()
        .join("\n")
}

fn one_line(text: &str, max: usize) -> String {
    let line = text.lines().next().unwrap_or("").trim();
    match line.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &line[..i]),
        None => line.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::TriggerContext;

    fn step(name: &str, state: RunState, ms: Option<(u64, u64)>, error: Option<&str>) -> StepRecord {
        StepRecord {
            name: name.into(),
            step_type: "run_command".into(),
            state,
            started_at_ms: ms.map(|m| m.0),
            finished_at_ms: ms.map(|m| m.1),
            error: error.map(str::to_string),
            raw_output: None,
            outputs: Default::default(),
        }
    }

    fn run(steps: Vec<StepRecord>, error: Option<&str>) -> RunRecord {
        RunRecord {
            id: "r1".into(),
            pipeline: "build".into(),
            source: Some("gh".into()),
            trigger: TriggerContext::default(),
            group: None,
            state: RunState::Failure,
            attempt: 1,
            queued_at_ms: 0,
            started_at_ms: Some(0),
            finished_at_ms: None,
            error: error.map(str::to_string),
            steps,
            cancel_requested: false,
            lease: None,
            previous_attempts: vec![],
            approved_at_ms: None,
        }
    }

    #[test]
    fn the_summary_lists_every_step_with_its_state_and_time() {
        let planned: Vec<String> = ["compile", "test", "deploy"].map(String::from).to_vec();
        let r = run(
            vec![
                step("compile", RunState::Success, Some((1_000, 2_200)), None),
                step(
                    "test",
                    RunState::Failure,
                    Some((2_200, 185_000)),
                    Some("exit 1: 2 tests failed"),
                ),
            ],
            Some("step `test` failed: exit 1: 2 tests failed"),
        );
        let o = output(&r, Phase::Finished(RunState::Failure), &planned, "http://ci/runs/r1");
        assert_eq!(o.title, "step `test` failed: exit 1: 2 tests failed");
        assert!(
            o.summary
                .starts_with("Run [`r1`](http://ci/runs/r1) of pipeline `build`"),
            "{}",
            o.summary
        );
        assert!(
            o.summary.contains("| `compile` | ✅ success | 1.2 s |"),
            "{}",
            o.summary
        );
        assert!(
            o.summary.contains("| `test` | ❌ failure | 3 min 2 s |"),
            "{}",
            o.summary
        );
        assert!(o.summary.contains("| `deploy` | not run | — |"), "{}", o.summary);
        assert!(
            o.summary.contains("> step `test` failed: exit 1: 2 tests failed"),
            "{}",
            o.summary
        );
        assert_eq!(
            status(Phase::Finished(RunState::Failure)),
            (CheckStatus::Completed, Some(CheckConclusion::Failure))
        );
    }

    #[test]
    fn queued_and_running_runs_show_the_steps_waiting() {
        let planned: Vec<String> = ["a|b", "c"].map(String::from).to_vec();
        let queued = output(&run(vec![], None), Phase::Queued, &planned, "u");
        assert_eq!(queued.title, "Queued");
        assert!(
            queued.summary.contains("| `a\\|b` | waiting | — |"),
            "{}",
            queued.summary
        );
        let running = run(vec![step("a|b", RunState::Running, None, None)], None);
        let o = output(&running, Phase::Running, &planned, "u");
        assert!(o.summary.contains("| `c` | waiting | — |"), "{}", o.summary);
        assert_eq!(status(Phase::Running), (CheckStatus::InProgress, None));
        assert_eq!(
            status(Phase::Finished(RunState::TimedOut)).1,
            Some(CheckConclusion::TimedOut)
        );
        assert_eq!(
            status(Phase::Finished(RunState::Cancelled)).1,
            Some(CheckConclusion::Cancelled)
        );
    }
}
