//! The pipeline model: what a parsed pipeline file says (name, triggers,
//! steps), plus the source positions of its fields for diagnostics. Only
//! structure lives here; `validate` decides whether the values make sense.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::diagnostic::{Diagnostic, Pos, parent_field};

/// Step timeout used when a step sets none.
pub const DEFAULT_STEP_TIMEOUT: Duration = Duration::from_secs(10 * 60);

/// Longest `timeout_minutes` a step may set: 7 days, far beyond any real step, and far
/// below where adding it to a clock would overflow.
pub const MAX_TIMEOUT_MINUTES: f64 = 7.0 * 24.0 * 60.0;

/// Keys allowed at the top level of a pipeline file.
pub const PIPELINE_KEYS: &[&str] = &[
    "name",
    "description",
    "triggers",
    "steps",
    "timeout_minutes",
    "concurrency",
    "report_status",
    "secrets_for_forks",
    "approval",
];
/// Keys allowed in `concurrency:`.
pub const CONCURRENCY_KEYS: &[&str] = &["group", "cancel_in_progress"];
/// Keys allowed in one trigger.
pub const TRIGGER_KEYS: &[&str] = &["type", "events", "branches", "paths"];
/// Keys allowed in one step (its `config` is free-form).
pub const STEP_KEYS: &[&str] = &["name", "type", "config", "timeout_minutes", "if", "continue_on_error"];

/// One pipeline file: when it runs and which steps it runs, in order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Pipeline {
    /// Display name (`name:`).
    pub name: String,
    /// Optional free text (`description:`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Events that start the pipeline; none means it never starts by itself.
    #[serde(default)]
    pub triggers: Vec<Trigger>,
    /// Steps, run in file order.
    #[serde(default)]
    pub steps: Vec<StepDef>,
    /// The whole run's time limit in minutes, as written; none: only the steps' own limits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_minutes: Option<f64>,
    /// Which runs cancel each other (`concurrency:`); pull requests have a default group.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub concurrency: Option<Concurrency>,
    /// Whether the host sets commit statuses for the runs (`report_status:`, default true).
    #[serde(default = "yes")]
    pub report_status: bool,
    /// Whether runs for pull requests from forks get the secrets (`secrets_for_forks:`,
    /// default false: a fork's code must not read them).
    #[serde(default)]
    pub secrets_for_forks: bool,
    /// Which webhook-started runs wait for `POST /api/runs/{id}/approve` (`approval:`,
    /// default `none`).
    #[serde(default, skip_serializing_if = "Approval::is_none")]
    pub approval: Approval,
    /// File name the pipeline was parsed from, used in every diagnostic.
    pub file: String,
    /// Where each field was written; not serialized (re-parse the text instead).
    #[serde(skip)]
    pub spans: Spans,
}

/// `approval:`: which runs a webhook starts wait for someone holding the API token to approve
/// them. Approval decides only whether a run starts; whether a fork's run gets the secrets is
/// still `secrets_for_forks:`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Approval {
    /// Every run starts at once (forks without secrets, as `secrets_for_forks:` says).
    #[default]
    None,
    /// Runs of pull requests from forks (or of unknown origin) wait.
    Forks,
    /// Every run a webhook starts waits; runs started through the API do not.
    Always,
}

impl Approval {
    /// The values `approval:` takes, as written.
    pub const NAMES: &[&str] = &["none", "forks", "always"];

    /// The value written as `name`.
    pub fn from_name(name: &str) -> Option<Approval> {
        match name {
            "none" => Some(Approval::None),
            "forks" => Some(Approval::Forks),
            "always" => Some(Approval::Always),
            _ => None,
        }
    }

    fn is_none(&self) -> bool {
        *self == Approval::None
    }

    /// Whether a run a webhook started for a change from a fork (`is_fork`) waits.
    pub fn holds(self, is_fork: bool) -> bool {
        match self {
            Approval::None => false,
            Approval::Forks => is_fork,
            Approval::Always => true,
        }
    }
}

/// `concurrency:` as GitHub Actions users know it: runs with the same rendered `group`
/// are one group; with `cancel_in_progress`, a new run cancels the group's earlier ones.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Concurrency {
    /// A template over the trigger variables, e.g. `deploy-{{ branch }}`.
    pub group: String,
    /// Whether a new run cancels the group's earlier, unfinished runs.
    pub cancel_in_progress: bool,
}

fn yes() -> bool {
    true
}

impl Pipeline {
    /// The whole run's time limit, when `timeout_minutes` is set at the top level.
    pub fn timeout(&self) -> Option<Duration> {
        self.timeout_minutes
            .filter(|m| *m > 0.0 && *m <= MAX_TIMEOUT_MINUTES)
            .and_then(|m| Duration::try_from_secs_f64(m * 60.0).ok())
    }

    /// The step called `name`, if any.
    pub fn step(&self, name: &str) -> Option<&StepDef> {
        self.steps.iter().find(|s| s.name == name)
    }

    /// A diagnostic for `field` of this pipeline, positioned from the parse,
    /// so callers (e.g. the runner) can report problems the same way.
    pub fn diagnostic(&self, field: &str, message: impl Into<String>) -> Diagnostic {
        Diagnostic::new(&self.file, self.spans.at(field), field, message)
    }
}

/// One `triggers:` entry: an event kind plus optional filters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Trigger {
    /// Trigger type as written (`push`, `pull_request`, ...); see [`Trigger::trigger_kind`].
    #[serde(rename = "type")]
    pub kind: String,
    /// Sub-events (`opened`, `created`, ...); empty means every event of the kind.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub events: Vec<String>,
    /// Branch globs (`main`, `release/*`); empty means any branch.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub branches: Vec<String>,
    /// Changed-path globs (`src/**`); empty means any change.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub paths: Vec<String>,
}

impl Trigger {
    /// The trigger type, or `None` if it is not one Powernode knows (validation reports it).
    pub fn trigger_kind(&self) -> Option<TriggerKind> {
        TriggerKind::from_name(&self.kind)
    }
}

/// The kinds of event that can start a pipeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TriggerKind {
    /// A branch was pushed.
    Push,
    /// A tag was pushed.
    Tag,
    /// Something happened to a pull request (see [`TriggerKind::events`]).
    PullRequest,
    /// A comment on an issue or pull request was created or edited.
    IssueComment,
    /// Started by hand (API or UI).
    Manual,
}

impl TriggerKind {
    /// Every kind, in documentation order.
    pub const ALL: [TriggerKind; 5] = [
        TriggerKind::Push,
        TriggerKind::Tag,
        TriggerKind::PullRequest,
        TriggerKind::IssueComment,
        TriggerKind::Manual,
    ];

    /// The name used in pipeline files.
    pub fn as_str(self) -> &'static str {
        match self {
            TriggerKind::Push => "push",
            TriggerKind::Tag => "tag",
            TriggerKind::PullRequest => "pull_request",
            TriggerKind::IssueComment => "issue_comment",
            TriggerKind::Manual => "manual",
        }
    }

    /// Parses the name used in pipeline files.
    pub fn from_name(name: &str) -> Option<TriggerKind> {
        TriggerKind::ALL.into_iter().find(|k| k.as_str() == name)
    }

    /// The `events:` values this kind accepts; empty if it takes none.
    pub fn events(self) -> &'static [&'static str] {
        match self {
            TriggerKind::PullRequest => &["opened", "synchronize", "reopened", "closed", "merged", "edited"],
            TriggerKind::IssueComment => &["created", "edited"],
            TriggerKind::Push | TriggerKind::Tag | TriggerKind::Manual => &[],
        }
    }
}

/// One step: which plugin runs (`type`) and the config it gets.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepDef {
    /// Identifier other steps use to read this step's outputs.
    pub name: String,
    /// Plugin that runs the step (`checkout`, `run_command`, ...).
    #[serde(rename = "type")]
    pub step_type: String,
    /// Plugin config, a JSON object whose strings are templates (see `render_config`).
    #[serde(default = "empty_object")]
    pub config: serde_json::Value,
    /// Timeout in minutes as written (step level or lifted out of `config`);
    /// kept raw so validation can report a non-positive value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_minutes: Option<f64>,
    /// `if:` — a template (`{{ event == "push" }}`) or a bare expression; the step runs only
    /// when it is true.
    #[serde(default, rename = "if", skip_serializing_if = "Option::is_none")]
    pub condition: Option<String>,
    /// `continue_on_error:` — the step's failure does not fail the run or stop later steps.
    #[serde(default)]
    pub continue_on_error: bool,
    /// 1-based line where the step starts (0 if not parsed from a file).
    #[serde(default)]
    pub line: usize,
}

impl StepDef {
    /// The timeout to enforce: `timeout_minutes`, else [`DEFAULT_STEP_TIMEOUT`]
    /// (also used for values validation rejects).
    pub fn timeout(&self) -> Duration {
        self.timeout_minutes
            .filter(|m| *m > 0.0 && *m <= MAX_TIMEOUT_MINUTES)
            .and_then(|m| Duration::try_from_secs_f64(m * 60.0).ok())
            .unwrap_or(DEFAULT_STEP_TIMEOUT)
    }
}

fn empty_object() -> serde_json::Value {
    serde_json::Value::Object(serde_json::Map::new())
}

/// Source positions of a pipeline's fields, keyed by field path
/// (`steps[1].config.command`); absent fields resolve to their parent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Spans(BTreeMap<String, Pos>);

impl Spans {
    /// Records that `field` was written at `pos` (first record wins).
    pub fn insert(&mut self, field: String, pos: Pos) {
        self.0.entry(field).or_insert(pos);
    }

    /// Where `field` was written, else where its nearest recorded parent was,
    /// else the start of the file.
    pub fn at(&self, field: &str) -> Pos {
        let mut path = Some(field);
        while let Some(p) = path {
            if let Some(pos) = self.0.get(p) {
                return *pos;
            }
            path = parent_field(p);
        }
        Pos::START
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeout_defaults_to_ten_minutes_and_accepts_fractions() {
        let mut step = StepDef {
            name: "s".into(),
            step_type: "run_command".into(),
            config: empty_object(),
            timeout_minutes: None,
            condition: None,
            continue_on_error: false,
            line: 1,
        };
        assert_eq!(step.timeout(), Duration::from_secs(600));
        step.timeout_minutes = Some(0.5);
        assert_eq!(step.timeout(), Duration::from_secs(30));
        step.timeout_minutes = Some(-3.0);
        assert_eq!(step.timeout(), DEFAULT_STEP_TIMEOUT);
    }

    #[test]
    fn spans_fall_back_to_the_nearest_parent() {
        let mut spans = Spans::default();
        spans.insert("steps[1]".into(), Pos { line: 7, column: 5 });
        spans.insert("steps[1].type".into(), Pos { line: 8, column: 11 });
        assert_eq!(spans.at("steps[1].type"), Pos { line: 8, column: 11 });
        assert_eq!(spans.at("steps[1].name"), Pos { line: 7, column: 5 });
        assert_eq!(spans.at("triggers[0]"), Pos::START);
    }

    #[test]
    fn trigger_kinds_round_trip_and_list_their_events() {
        for kind in TriggerKind::ALL {
            assert_eq!(TriggerKind::from_name(kind.as_str()), Some(kind));
        }
        assert_eq!(TriggerKind::from_name("pull-request"), None);
        assert!(TriggerKind::PullRequest.events().contains(&"synchronize"));
        assert_eq!(TriggerKind::IssueComment.events(), ["created", "edited"]);
        assert!(TriggerKind::Push.events().is_empty());
    }

    #[test]
    fn approval_holds_forks_or_every_webhook_run() {
        for name in Approval::NAMES {
            assert!(Approval::from_name(name).is_some(), "{name}");
        }
        assert_eq!(Approval::from_name("fork"), None);
        assert_eq!(
            [false, true].map(|fork| [Approval::None, Approval::Forks, Approval::Always].map(|a| a.holds(fork))),
            [[false, false, true], [false, true, true]]
        );
    }

    #[test]
    fn pipeline_serializes_without_spans() {
        let p = Pipeline {
            name: "n".into(),
            description: None,
            triggers: vec![],
            steps: vec![],
            timeout_minutes: None,
            concurrency: None,
            report_status: true,
            secrets_for_forks: false,
            approval: Approval::None,
            file: "p.yml".into(),
            spans: Spans::default(),
        };
        let json = serde_json::to_value(&p).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"name": "n", "triggers": [], "steps": [], "report_status": true, "secrets_for_forks": false, "file": "p.yml"})
        );
    }
}
