//! Runs in words for people, shared by the CLI's tables and the dashboard: times, durations,
//! what started a run.

use std::time::{Duration, UNIX_EPOCH};

use serde_json::Value;

/// A time in ms since the epoch as UTC `2026-12-01 12:43:43`; `-` when there is none.
pub fn time(ms: Option<u64>) -> String {
    ms.map_or_else(
        || "-".into(),
        |ms| {
            let t = UNIX_EPOCH + Duration::from_millis(ms);
            humantime::format_rfc3339_seconds(t)
                .to_string()
                .replace('T', " ")
                .trim_end_matches('Z')
                .to_string()
        },
    )
}

/// A duration in ms as `850ms`, `12.3s`, `4m 05s` or `2h 03m`; `-` when there is none.
pub fn duration(ms: &Value) -> String {
    let Some(ms) = ms.as_u64() else {
        return "-".into();
    };
    match ms {
        0..1_000 => format!("{ms}ms"),
        1_000..60_000 => format!("{:.1}s", ms as f64 / 1000.0),
        60_000..3_600_000 => format!("{}m {:02}s", ms / 60_000, ms / 1000 % 60),
        _ => format!("{}h {:02}m", ms / 3_600_000, ms / 60_000 % 60),
    }
}

/// What started a run, in a few words: `PR #42 by alice`, `push main 1a2b3c4`, `manual`.
pub fn trigger_summary(trigger: &Value) -> String {
    let event = trigger["event"].as_str().unwrap_or("-");
    let mut words = vec![];
    match trigger["number"].as_u64() {
        Some(n) if trigger["is_pull_request"] == true => words.push(format!("PR #{n}")),
        Some(n) => words.push(format!("{event} #{n}")),
        None => words.push(event.to_string()),
    }
    let branch = trigger["head_branch"].as_str().or_else(|| {
        trigger["ref"]
            .as_str()
            .map(|r| r.rsplit_once("refs/heads/").map_or(r, |(_, b)| b))
    });
    if let Some(branch) = branch {
        words.push(branch.to_string());
    }
    if let Some(sha) = trigger["head_sha"].as_str().or(trigger["after"].as_str()) {
        words.push(sha.chars().take(7).collect());
    }
    if let Some(sender) = trigger["sender"].as_str() {
        words.push(format!("by {sender}"));
    }
    crate::printable::printable(&words.join(" ")).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn durations_read_at_a_glance() {
        assert_eq!(duration(&json!(850)), "850ms");
        assert_eq!(duration(&json!(12_345)), "12.3s");
        assert_eq!(duration(&json!(245_000)), "4m 05s");
        assert_eq!(duration(&json!(7_380_000)), "2h 03m");
        assert_eq!(duration(&Value::Null), "-");
        assert_eq!(time(Some(0)), "1970-01-01 00:00:00");
    }

    #[test]
    fn a_pull_request_trigger_names_number_branch_sha_and_sender() {
        let pr = json!({"event": "pull_request", "number": 42, "is_pull_request": true,
            "head_branch": "fix", "head_sha": "1a2b3c4d5e", "sender": "alice"});
        assert_eq!(trigger_summary(&pr), "PR #42 fix 1a2b3c4 by alice");
        let push = json!({"event": "push", "ref": "refs/heads/main", "after": "ffeeddccbb"});
        assert_eq!(trigger_summary(&push), "push main ffeeddc");
    }
}
