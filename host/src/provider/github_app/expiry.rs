//! When an installation token must be replaced: GitHub says when it expires (`expires_at`,
//! one hour after it was made); it is replaced once less than [`REFRESH_MARGIN`] is left,
//! so no request, nor a git push that takes a while, goes out with a token about to expire.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::secret::Secret;

/// A token with less than this left is replaced before its next use.
pub const REFRESH_MARGIN: Duration = Duration::from_secs(5 * 60);
/// How long a token is taken to live when GitHub's `expires_at` cannot be read.
const UNREADABLE_EXPIRY: Duration = Duration::from_secs(10 * 60);

/// An installation token and when it expires.
#[derive(Debug, Clone)]
pub struct Expiring {
    /// The token.
    pub token: Secret,
    /// When GitHub stops taking it.
    pub expires_at: SystemTime,
}

impl Expiring {
    /// `token`, expiring at `expires_at` as GitHub writes it (`2016-07-11T22:14:10Z`); a
    /// time that cannot be read counts as ten minutes from `now`.
    pub fn new(token: Secret, expires_at: &str, now: SystemTime) -> Expiring {
        let expires_at = parse_rfc3339(expires_at).unwrap_or_else(|| {
            tracing::warn!(
                expires_at,
                "cannot read an installation token's expiry; taking ten minutes"
            );
            now + UNREADABLE_EXPIRY
        });
        Expiring { token, expires_at }
    }

    /// Whether the token can still be used at `now`: more than [`REFRESH_MARGIN`] is left.
    pub fn fresh_at(&self, now: SystemTime) -> bool {
        self.expires_at
            .duration_since(now)
            .is_ok_and(|left| left > REFRESH_MARGIN)
    }
}

/// An RFC 3339 time in UTC as GitHub writes them: `YYYY-MM-DDTHH:MM:SS`, optional fraction
/// (dropped: a token is never believed to live longer than it does), then `Z` or `+00:00`.
pub fn parse_rfc3339(text: &str) -> Option<SystemTime> {
    let text = text.trim().to_ascii_uppercase();
    let utc = match text.strip_suffix("+00:00") {
        Some(time) => format!("{time}Z"),
        None => text,
    };
    let time = humantime::parse_rfc3339(&utc).ok()?;
    let secs = time.duration_since(UNIX_EPOCH).ok()?.as_secs();
    Some(UNIX_EPOCH + Duration::from_secs(secs))
}

/// `time` as RFC 3339 in UTC, to the second (`2016-07-11T22:14:10Z`).
pub fn format_rfc3339(time: SystemTime) -> String {
    humantime::format_rfc3339_seconds(time).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn githubs_times_are_read() {
        assert_eq!(parse_rfc3339("2016-07-11T22:14:10Z"), Some(at(1_468_275_250)));
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Some(at(0)));
        assert_eq!(parse_rfc3339("2024-02-29T12:00:00.123Z"), Some(at(1_709_208_000)));
        assert_eq!(parse_rfc3339("2000-03-01T00:00:00+00:00"), Some(at(951_868_800)));
        for bad in [
            "",
            "2016-07-11",
            "2016-07-11T22:14:10",
            "2016-13-11T22:14:10Z",
            "2016-07-11T22:14:10+02:00",
            "x-y-zTa:b:cZ",
        ] {
            assert_eq!(parse_rfc3339(bad), None, "{bad}");
        }
    }

    #[test]
    fn times_round_trip() {
        for secs in [0, 951_868_800, 1_468_275_250, 1_709_208_000, 4_102_444_799] {
            let text = format_rfc3339(at(secs));
            assert_eq!(parse_rfc3339(&text), Some(at(secs)), "{text}");
        }
        assert_eq!(format_rfc3339(at(1_468_275_250)), "2016-07-11T22:14:10Z");
    }

    #[test]
    fn a_token_is_replaced_once_less_than_five_minutes_are_left() {
        let now = at(1_000_000);
        let token = |left: u64| Expiring {
            token: Secret::new("t"),
            expires_at: now + Duration::from_secs(left),
        };
        assert!(token(3600).fresh_at(now));
        assert!(token(301).fresh_at(now));
        assert!(!token(300).fresh_at(now));
        assert!(!token(2).fresh_at(now));
        assert!(!token(3600).fresh_at(now + Duration::from_secs(3600)));
        let unreadable = Expiring::new(Secret::new("t"), "soon", now);
        assert_eq!(unreadable.expires_at, now + UNREADABLE_EXPIRY);
    }
}
