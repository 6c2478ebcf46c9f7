//! The webhooks that arrived since the server started, whatever their outcome (accepted,
//! ignored and why, refused and why), kept in memory — the inbox stores only accepted ones.

use std::collections::VecDeque;
use std::sync::Mutex;

use serde_json::Value;

/// Deliveries remembered; older ones are forgotten.
const KEEP: usize = 200;

/// One delivery as the dashboard lists it.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// When it arrived, ms since the epoch.
    pub at_ms: u64,
    /// The `{source}` of its URL, as sent.
    pub source: String,
    /// The forge's event header (`X-GitHub-Event`, `X-Gitea-Event`, `X-Gitlab-Event`, ...).
    pub event: String,
    /// The HTTP status it was answered with.
    pub status: u16,
    /// `accepted`, `ignored` or `refused`.
    pub outcome: &'static str,
    /// Why it was ignored or refused.
    pub reason: Option<String>,
    /// The runs it started: (id, pipeline).
    pub runs: Vec<(String, String)>,
}

/// The last [`KEEP`] deliveries, newest last.
#[derive(Default)]
pub struct Recent(Mutex<VecDeque<Delivery>>);

impl Recent {
    /// Remembers a delivery answered with `status` and `body` (an answer) or `error` (a refusal).
    pub fn record(&self, source: &str, event: &str, status: u16, answer: Result<&Value, &str>) {
        let (outcome, reason, runs) = match answer {
            Ok(body) if body["status"] == "ignored" => ("ignored", body["reason"].as_str().map(str::to_owned), vec![]),
            Ok(body) => {
                let runs = body["runs"]
                    .as_array()
                    .map(|runs| {
                        runs.iter()
                            .map(|r| {
                                let text = |k: &str| r[k].as_str().unwrap_or_default().to_owned();
                                (text("id"), text("pipeline"))
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                ("accepted", None, runs)
            }
            Err(message) => ("refused", Some(message.to_owned()), vec![]),
        };
        let delivery = Delivery {
            at_ms: crate::scheduler::now_ms(),
            // The path and headers are the sender's: kept short and printable.
            source: crate::printable::printable(&source.chars().take(100).collect::<String>()).into_owned(),
            event: crate::printable::printable(&event.chars().take(100).collect::<String>()).into_owned(),
            status,
            outcome,
            reason,
            runs,
        };
        let mut recent = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if recent.len() == KEEP {
            recent.pop_front();
        }
        recent.push_back(delivery);
    }

    /// The deliveries, newest first.
    pub fn list(&self) -> Vec<Delivery> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .rev()
            .cloned()
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn each_outcome_is_kept_with_its_reason_and_runs() {
        let recent = Recent::default();
        recent.record(
            "gh",
            "push",
            202,
            Ok(&json!({"status": "accepted", "runs": [{"id": "r1", "pipeline": "build"}]})),
        );
        recent.record(
            "gh",
            "ping",
            202,
            Ok(&json!({"status": "ignored", "reason": "event `ping` starts nothing"})),
        );
        recent.record("gh", "push", 401, Err("the signature does not match"));
        let list = recent.list();
        assert_eq!(list[0].outcome, "refused");
        assert_eq!(list[0].reason.as_deref(), Some("the signature does not match"));
        assert_eq!(list[1].reason.as_deref(), Some("event `ping` starts nothing"));
        assert_eq!(list[2].runs, [("r1".to_string(), "build".to_string())]);
        for _ in 0..KEEP {
            recent.record("gh", "push", 202, Ok(&json!({})));
        }
        assert_eq!(recent.list().len(), KEEP, "bounded");
    }
}
