//! WIT check-run types (`powernode:step/provider@0.1.2`) ↔ the provider's; used by `forge.rs`.

use crate::provider as domain;
use crate::runtime::bindings::powernode::step::provider::{
    Annotation, AnnotationLevel, CheckConclusion, CheckOutput, CheckRun, CheckRunUpdate, CheckStatus, NewCheckRun,
};

/// A plugin's new check run; `details-url` defaults to `run_url`, and `external_id` is the
/// run, so GitHub's "Re-run" on it runs the run again.
pub(super) fn new_run(r: NewCheckRun, run_id: &str, run_url: Option<&String>) -> domain::NewCheckRun {
    domain::NewCheckRun {
        name: r.name,
        head_sha: r.head_sha,
        status: status(r.status),
        conclusion: r.conclusion.map(conclusion),
        details_url: r.details_url.or_else(|| run_url.cloned()),
        external_id: Some(run_id.to_string()),
        output: r.output.map(output),
    }
}

/// A plugin's check run update.
pub(super) fn update(u: CheckRunUpdate) -> domain::CheckRunUpdate {
    domain::CheckRunUpdate {
        status: u.status.map(status),
        conclusion: u.conclusion.map(conclusion),
        details_url: u.details_url,
        output: u.output.map(output),
    }
}

/// The forge's check run, for the plugin.
pub(super) fn wit_run(r: domain::CheckRun) -> CheckRun {
    CheckRun { id: r.id, url: r.url }
}

fn status(s: CheckStatus) -> domain::CheckStatus {
    match s {
        CheckStatus::Queued => domain::CheckStatus::Queued,
        CheckStatus::InProgress => domain::CheckStatus::InProgress,
        CheckStatus::Completed => domain::CheckStatus::Completed,
    }
}

fn conclusion(c: CheckConclusion) -> domain::CheckConclusion {
    match c {
        CheckConclusion::Success => domain::CheckConclusion::Success,
        CheckConclusion::Failure => domain::CheckConclusion::Failure,
        CheckConclusion::Neutral => domain::CheckConclusion::Neutral,
        CheckConclusion::Cancelled => domain::CheckConclusion::Cancelled,
        CheckConclusion::Skipped => domain::CheckConclusion::Skipped,
        CheckConclusion::TimedOut => domain::CheckConclusion::TimedOut,
        CheckConclusion::ActionRequired => domain::CheckConclusion::ActionRequired,
    }
}

fn output(o: CheckOutput) -> domain::CheckOutput {
    domain::CheckOutput {
        title: o.title,
        summary: o.summary,
        annotations: o.annotations.into_iter().map(annotation).collect(),
    }
}

fn annotation(a: Annotation) -> domain::Annotation {
    domain::Annotation {
        path: a.path,
        start_line: a.start_line,
        end_line: a.end_line,
        level: match a.level {
            AnnotationLevel::Notice => domain::AnnotationLevel::Notice,
            AnnotationLevel::Warning => domain::AnnotationLevel::Warning,
            AnnotationLevel::Failure => domain::AnnotationLevel::Failure,
        },
        message: a.message,
    }
}
