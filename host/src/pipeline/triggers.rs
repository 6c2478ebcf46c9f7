//! Trigger matching: does a pipeline's `triggers:` list accept an event? Pure.
//!
//! A trigger matches when its type is the event's kind, its `events` (empty: any) hold the
//! event's action, its `branches` globs (empty: any) match the branch — the pushed branch
//! for pushes, the tag name for tags, the base (target) branch for pull requests and comments
//! on them — and, when the changed files are known, one of them matches a `paths` glob.
//! When the forge did not say which files changed, `paths` does not filter.

use glob::{MatchOptions, Pattern};

use super::definition::{Pipeline, Trigger};

/// What matching needs to know about an event.
#[derive(Debug, Clone, Copy, Default)]
pub struct EventFacts<'a> {
    /// `push`, `tag`, `pull_request`, `issue_comment` or `manual`.
    pub kind: &'a str,
    /// Normalized action (`opened`, `synchronize`, `created`, ...).
    pub action: Option<&'a str>,
    /// The branch (or tag name) the filters apply to.
    pub branch: Option<&'a str>,
    /// Changed files, when the forge listed them all.
    pub changed_files: Option<&'a [String]>,
}

const PATHS: MatchOptions = MatchOptions {
    case_sensitive: true,
    require_literal_separator: true,
    require_literal_leading_dot: false,
};

impl Trigger {
    /// Whether this trigger accepts the event.
    pub fn matches(&self, e: &EventFacts<'_>) -> bool {
        if self.kind != e.kind {
            return false;
        }
        if !self.events.is_empty() && !e.action.is_some_and(|a| self.events.iter().any(|x| x == a)) {
            return false;
        }
        if !self.branches.is_empty() {
            // `*` stays within one path level, as in GitHub Actions: `release/*` does not
            // match `release/1/hotfix`; `**` crosses levels.
            let Some(branch) = e.branch else { return false };
            if !self.branches.iter().any(|g| glob_matches(g, branch)) {
                return false;
            }
        }
        match (self.paths.is_empty(), e.changed_files) {
            (false, Some(files)) => files.iter().any(|f| self.paths.iter().any(|g| glob_matches(g, f))),
            _ => true,
        }
    }
}

impl Pipeline {
    /// Whether any of the pipeline's triggers accepts the event.
    pub fn triggered_by(&self, e: &EventFacts<'_>) -> bool {
        self.triggers.iter().any(|t| t.matches(e))
    }
}

fn glob_matches(glob: &str, text: &str) -> bool {
    Pattern::new(glob).is_ok_and(|p| p.matches_with(text, PATHS))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trigger(kind: &str, events: &[&str], branches: &[&str], paths: &[&str]) -> Trigger {
        let v = |xs: &[&str]| xs.iter().map(|s| s.to_string()).collect();
        Trigger {
            kind: kind.into(),
            events: v(events),
            branches: v(branches),
            paths: v(paths),
        }
    }

    fn pr<'a>(action: &'a str, base: &'a str) -> EventFacts<'a> {
        EventFacts {
            kind: "pull_request",
            action: Some(action),
            branch: Some(base),
            changed_files: None,
        }
    }

    #[test]
    fn type_and_events_must_match() {
        let t = trigger("pull_request", &["opened", "synchronize"], &[], &[]);
        assert!(t.matches(&pr("opened", "main")));
        assert!(t.matches(&pr("synchronize", "main")));
        assert!(!t.matches(&pr("closed", "main")));
        assert!(!t.matches(&EventFacts {
            kind: "push",
            branch: Some("main"),
            ..Default::default()
        }));
        assert!(
            trigger("pull_request", &[], &[], &[]).matches(&pr("edited", "dev")),
            "no events: any action"
        );
    }

    #[test]
    fn branch_globs_stay_within_a_level_unless_doubled() {
        let t = trigger("push", &[], &["main", "release/*"], &[]);
        let push = |b: &'static str| EventFacts {
            kind: "push",
            branch: Some(b),
            ..Default::default()
        };
        assert!(t.matches(&push("main")));
        assert!(t.matches(&push("release/1.2")));
        assert!(!t.matches(&push("release/1/hotfix")));
        assert!(!t.matches(&push("feature")));
        assert!(trigger("push", &[], &["release/**"], &[]).matches(&push("release/1/hotfix")));
        assert!(
            !t.matches(&EventFacts {
                kind: "push",
                ..Default::default()
            }),
            "no branch: a branch filter fails"
        );
    }

    #[test]
    fn paths_filter_only_when_changed_files_are_known() {
        let t = trigger("push", &[], &[], &["src/**", "*.toml"]);
        let push = |files: &[&str]| {
            let files: Vec<String> = files.iter().map(|f| f.to_string()).collect();
            t.matches(&EventFacts {
                kind: "push",
                branch: Some("main"),
                changed_files: Some(&files),
                action: None,
            })
        };
        assert!(push(&["src/a/b.rs"]));
        assert!(!push(&["docs/x.md", "README.md"]));
        assert!(push(&["Cargo.toml"]));
        assert!(
            t.matches(&EventFacts {
                kind: "push",
                branch: Some("main"),
                ..Default::default()
            }),
            "unknown files"
        );
    }
}
