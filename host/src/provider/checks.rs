//! Check runs (GitHub's Checks API): a named check on a commit with a status, a conclusion,
//! a title, a Markdown summary and annotations on lines of files. Only a GitHub App
//! installation may write them; every other source answers [`unsupported`].

use serde::Serialize;

use super::ForgeError;

/// What a source that cannot write check runs answers.
pub const CHECK_RUNS_UNSUPPORTED: &str =
    "check runs are not supported by this source (a GitHub App source is needed); use a commit status instead";
/// Annotations GitHub takes in one request; more go in following updates.
pub const ANNOTATIONS_PER_REQUEST: usize = 50;
/// Longest summary GitHub takes, in characters.
pub const SUMMARY_LIMIT: usize = 65_535;
/// Longest annotation message GitHub takes, in bytes.
pub const MESSAGE_LIMIT: usize = 64 * 1024;

/// The error of a source that cannot write check runs: a step can fall back to a status.
pub fn unsupported() -> ForgeError {
    ForgeError::Other(CHECK_RUNS_UNSUPPORTED.into())
}

/// Where a check run is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckStatus {
    /// Waiting to start.
    Queued,
    /// Started.
    InProgress,
    /// Ended; needs a conclusion.
    Completed,
}

/// How a completed check run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckConclusion {
    /// Passed.
    Success,
    /// Failed.
    Failure,
    /// Neither passed nor failed.
    Neutral,
    /// Stopped before the end.
    Cancelled,
    /// Not run.
    Skipped,
    /// Ran out of time.
    TimedOut,
    /// Someone must act on it.
    ActionRequired,
}

/// How much an annotation matters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AnnotationLevel {
    /// For information.
    Notice,
    /// A warning.
    Warning,
    /// An error.
    Failure,
}

/// A remark on lines of a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Annotation {
    /// The file's path in the repository.
    pub path: String,
    /// First line, from 1.
    pub start_line: u32,
    /// Last line, at least `start_line`.
    pub end_line: u32,
    /// How much it matters.
    pub level: AnnotationLevel,
    /// What it says.
    pub message: String,
}

/// What a check run shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckOutput {
    /// One line.
    pub title: String,
    /// Markdown, at most [`SUMMARY_LIMIT`] characters (longer is cut with a note).
    pub summary: String,
    /// Any number; sent [`ANNOTATIONS_PER_REQUEST`] at a time.
    pub annotations: Vec<Annotation>,
}

/// A check run to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewCheckRun {
    /// The check's name (`powernode/<pipeline>` for a run's own).
    pub name: String,
    /// The commit it is about.
    pub head_sha: String,
    /// Where it is.
    pub status: CheckStatus,
    /// How it ended; needed when `status` is completed.
    pub conclusion: Option<CheckConclusion>,
    /// Where "Details" leads.
    pub details_url: Option<String>,
    /// Our reference: the run's id, so GitHub's "Re-run" names the run again.
    pub external_id: Option<String>,
    /// Title, summary and annotations.
    pub output: Option<CheckOutput>,
}

/// Changes to a check run; what is `None` stays. Annotations are added to the earlier ones.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CheckRunUpdate {
    /// Where it is now.
    pub status: Option<CheckStatus>,
    /// How it ended; needed when `status` is completed.
    pub conclusion: Option<CheckConclusion>,
    /// Where "Details" leads.
    pub details_url: Option<String>,
    /// Title and summary (replacing the earlier ones), annotations (added).
    pub output: Option<CheckOutput>,
}

/// A check run as the forge knows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CheckRun {
    /// The forge's id.
    pub id: u64,
    /// Its web page.
    pub url: String,
}

/// Refuses what the forge would refuse with a less helpful message: a completed check run
/// without conclusion, annotation lines out of order, an empty name or path.
pub fn validate(
    status: Option<CheckStatus>,
    conclusion: Option<CheckConclusion>,
    output: Option<&CheckOutput>,
) -> Result<(), ForgeError> {
    if status == Some(CheckStatus::Completed) && conclusion.is_none() {
        return Err(ForgeError::Validation(
            "a completed check run needs a conclusion".into(),
        ));
    }
    for a in output.iter().flat_map(|o| &o.annotations) {
        if a.path.trim().is_empty() {
            return Err(ForgeError::Validation("an annotation needs the file's path".into()));
        }
        if a.start_line == 0 || a.end_line < a.start_line {
            return Err(ForgeError::Validation(format!(
                "annotation on {} has lines {}-{}: lines start at 1 and end_line is at least start_line",
                a.path, a.start_line, a.end_line
            )));
        }
    }
    Ok(())
}

/// The output's annotations in request-sized batches: the first goes with the create (or
/// first update), the others in updates that follow. Always at least one batch (maybe empty).
pub fn batches(annotations: &[Annotation]) -> Vec<&[Annotation]> {
    if annotations.is_empty() {
        return vec![&[]];
    }
    annotations.chunks(ANNOTATIONS_PER_REQUEST).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn note(i: u32) -> Annotation {
        Annotation {
            path: "src/lib.rs".into(),
            start_line: i + 1,
            end_line: i + 1,
            level: AnnotationLevel::Notice,
            message: format!("note {i}"),
        }
    }

    #[test]
    fn annotations_go_fifty_at_a_time() {
        let all: Vec<Annotation> = (0..120).map(note).collect();
        let sizes: Vec<usize> = batches(&all).iter().map(|b| b.len()).collect();
        assert_eq!(sizes, [50, 50, 20]);
        assert_eq!(batches(&all[..50]).len(), 1);
        assert_eq!(batches(&[]), [&[] as &[Annotation]]);
    }

    #[test]
    fn what_the_forge_would_refuse_is_refused_first() {
        assert!(validate(Some(CheckStatus::Completed), None, None).is_err());
        assert!(validate(Some(CheckStatus::Completed), Some(CheckConclusion::Success), None).is_ok());
        let output = |a: Annotation| CheckOutput {
            title: "t".into(),
            summary: "s".into(),
            annotations: vec![a],
        };
        let backwards = Annotation {
            start_line: 5,
            end_line: 4,
            ..note(0)
        };
        assert!(validate(None, None, Some(&output(backwards))).is_err());
        assert!(
            validate(
                None,
                None,
                Some(&output(Annotation {
                    start_line: 0,
                    ..note(0)
                }))
            )
            .is_err()
        );
        assert!(
            validate(
                None,
                None,
                Some(&output(Annotation {
                    path: " ".into(),
                    ..note(0)
                }))
            )
            .is_err()
        );
        assert!(validate(None, None, Some(&output(note(3)))).is_ok());
    }

    #[test]
    fn the_unsupported_answer_says_what_is_needed() {
        assert!(unsupported().to_string().contains("not supported by this source"));
    }
}
