//! Who may see and do what on the dashboard: sign-in with the API token (or
//! `dashboard_token`), sessions behind an HttpOnly SameSite=Strict cookie, a CSRF token per
//! session on every state-changing form, and `read-only-public`.

use std::collections::HashMap;
use std::sync::Mutex;

use axum::http::{HeaderMap, header};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::config::DashboardMode;
use crate::scheduler::now_ms;
use crate::secret::Secret;

/// The session cookie's name.
const COOKIE: &str = "pn_session";
/// How long a session lasts from its sign-in.
const SESSION_MS: u64 = 12 * 3600 * 1000;
/// Sessions kept at most; past it the oldest goes, so signing in in a loop cannot fill memory.
const MAX_SESSIONS: usize = 10_000;

/// How the dashboard is set up, from the config.
#[derive(Debug, Clone, Default)]
pub struct DashboardSettings {
    /// The server started without a config file: `/` is the getting-started page.
    pub first_start: bool,
    /// Who may look.
    pub mode: DashboardMode,
    /// Tokens that sign in: `api_token` and `dashboard_token`, those set.
    pub tokens: Vec<Secret>,
    /// `public_url`: an `https` one makes the cookie `Secure`.
    pub public_url: String,
}

struct Session {
    csrf: String,
    expires_ms: u64,
}

/// The dashboard's settings and its signed-in sessions (in memory: a restart signs
/// everyone out).
#[derive(Default)]
pub struct Dashboard {
    /// How it is set up.
    pub settings: DashboardSettings,
    /// The webhooks that arrived since the start, with their outcome.
    pub deliveries: super::deliveries::Recent,
    /// By the SHA-256 of the session id, so the map holds nothing a cookie could be made from.
    sessions: Mutex<HashMap<[u8; 32], Session>>,
}

/// Who is looking: signed in (with the session's CSRF token) or not.
#[derive(Debug, Clone)]
pub(super) struct Viewer {
    /// The CSRF token of the session, when signed in.
    pub csrf: Option<String>,
}

impl Viewer {
    /// Whether the viewer may act (cancel, rerun, start runs).
    pub fn signed_in(&self) -> bool {
        self.csrf.is_some()
    }
}

impl Dashboard {
    /// A dashboard with these settings and no session.
    pub fn new(settings: DashboardSettings) -> Dashboard {
        Dashboard {
            settings,
            deliveries: Default::default(),
            sessions: Mutex::default(),
        }
    }

    /// Whether anyone may look without signing in.
    pub(super) fn public(&self) -> bool {
        self.settings.mode == DashboardMode::ReadOnlyPublic
    }

    /// Whether any token can sign in at all.
    pub(super) fn can_sign_in(&self) -> bool {
        !self.settings.tokens.is_empty()
    }

    /// Checks `given` against every sign-in token in constant time; on a match, a new
    /// session: the `Set-Cookie` value to send.
    pub(super) fn sign_in(&self, given: &str) -> Option<String> {
        let given = Sha256::digest(given.trim().as_bytes());
        // Every token is compared (no early exit), digests first: equal lengths.
        let matched = self.settings.tokens.iter().fold(subtle::Choice::from(0), |ok, token| {
            ok | given.ct_eq(&Sha256::digest(token.expose().as_bytes()))
        });
        if !bool::from(matched) {
            return None;
        }
        let id = Secret::generate().ok()?;
        let csrf = Secret::generate().ok()?;
        let now = now_ms();
        let mut sessions = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
        sessions.retain(|_, s| s.expires_ms > now);
        if sessions.len() >= MAX_SESSIONS
            && let Some(oldest) = sessions.iter().min_by_key(|(_, s)| s.expires_ms).map(|(k, _)| *k)
        {
            sessions.remove(&oldest);
        }
        sessions.insert(
            digest(id.expose()),
            Session {
                csrf: csrf.expose().to_owned(),
                expires_ms: now + SESSION_MS,
            },
        );
        Some(self.cookie(id.expose(), SESSION_MS / 1000))
    }

    /// Ends the session of `headers`' cookie; the `Set-Cookie` value that clears it.
    pub(super) fn sign_out(&self, headers: &HeaderMap) -> String {
        if let Some(id) = session_id(headers) {
            self.sessions
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&digest(id));
        }
        self.cookie("", 0)
    }

    /// Who sent `headers`.
    pub(super) fn viewer(&self, headers: &HeaderMap) -> Viewer {
        let csrf = session_id(headers).and_then(|id| {
            let sessions = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
            sessions
                .get(&digest(id))
                .filter(|s| s.expires_ms > now_ms())
                .map(|s| s.csrf.clone())
        });
        Viewer { csrf }
    }

    /// Whether a state-changing form from `headers` may act: a signed-in session whose CSRF
    /// token is `csrf` (compared in constant time), sent from this site.
    pub(super) fn may_act(&self, headers: &HeaderMap, csrf: &str) -> bool {
        let viewer = self.viewer(headers);
        let Some(expected) = viewer.csrf else { return false };
        self.same_site(headers) && bool::from(Sha256::digest(csrf).ct_eq(&Sha256::digest(expected)))
    }

    fn cookie(&self, value: &str, max_age_s: u64) -> String {
        let secure = if self.settings.public_url.starts_with("https://") {
            "; Secure"
        } else {
            ""
        };
        format!("{COOKIE}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age_s}{secure}")
    }
}

impl Dashboard {
    /// Whether a request comes from this site by what the browser says: `Sec-Fetch-Site`
    /// (same-origin, or none for a typed URL) and `Origin` (when sent: the `Host` it went
    /// to, or `public_url`'s origin, for a proxy that rewrites `Host`). A form posted from
    /// another site fails this even if it somehow carried the cookie.
    pub(super) fn same_site(&self, headers: &HeaderMap) -> bool {
        let fetch_site = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok());
        if fetch_site.is_some_and(|s| s != "same-origin" && s != "none") {
            return false;
        }
        let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
            return true;
        };
        let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
        let public = self.settings.public_url.trim_end_matches('/');
        let origin_host = origin.split_once("://").map(|(_, rest)| rest);
        (origin_host.is_some() && origin_host == host) || (!public.is_empty() && origin == public)
    }
}

fn session_id(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|pair| pair.trim().strip_prefix(COOKIE)?.strip_prefix('='))
        .filter(|id| !id.is_empty())
}

fn digest(id: &str) -> [u8; 32] {
    Sha256::digest(id.as_bytes()).into()
}

/// A path to go back to after signing in: only a local one (`/...`, not `//host`), so the
/// sign-in page cannot be made to send anyone elsewhere.
pub(super) fn local_path(next: Option<&str>) -> &str {
    match next {
        Some(p) if p.starts_with('/') && !p.starts_with("//") && !p.contains('\\') => p,
        _ => "/runs",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn dashboard() -> Dashboard {
        Dashboard::new(DashboardSettings {
            tokens: vec![Secret::new("api-token"), Secret::new("dash-token")],
            public_url: "https://ci.example.com".into(),
            ..DashboardSettings::default()
        })
    }

    fn with_cookie(set_cookie: &str) -> HeaderMap {
        let pair = set_cookie.split(';').next().unwrap();
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_str(&format!("other=1; {pair}")).unwrap(),
        );
        headers
    }

    #[test]
    fn either_token_signs_in_and_the_session_needs_its_csrf_token() {
        let d = dashboard();
        assert!(d.sign_in("wrong").is_none());
        let cookie = d.sign_in("dash-token").unwrap();
        assert!(
            cookie.contains("HttpOnly; SameSite=Strict") && cookie.ends_with("; Secure"),
            "{cookie}"
        );
        let headers = with_cookie(&cookie);
        let csrf = d.viewer(&headers).csrf.expect("signed in");
        assert!(d.may_act(&headers, &csrf));
        assert!(!d.may_act(&headers, "forged"));
        assert!(!d.may_act(&HeaderMap::new(), &csrf), "no session, no action");
        d.sign_out(&headers);
        assert!(!d.viewer(&headers).signed_in(), "signed out");
        assert!(d.sign_in("api-token").is_some());
    }

    #[test]
    fn a_cross_site_post_is_not_same_site() {
        let d = dashboard();
        let mut headers = HeaderMap::new();
        headers.insert(header::HOST, HeaderValue::from_static("10.0.0.5:8080"));
        assert!(d.same_site(&headers));
        headers.insert(header::ORIGIN, HeaderValue::from_static("http://10.0.0.5:8080"));
        assert!(d.same_site(&headers));
        headers.insert(header::ORIGIN, HeaderValue::from_static("https://ci.example.com"));
        assert!(d.same_site(&headers), "public_url's origin, behind a proxy");
        headers.insert(header::ORIGIN, HeaderValue::from_static("https://evil.example"));
        assert!(!d.same_site(&headers));
        headers.remove(header::ORIGIN);
        headers.insert("sec-fetch-site", HeaderValue::from_static("cross-site"));
        assert!(!d.same_site(&headers));
    }

    #[test]
    fn only_local_paths_are_followed_after_sign_in() {
        assert_eq!(local_path(Some("/runs/1")), "/runs/1");
        assert_eq!(local_path(Some("//evil.example/")), "/runs");
        assert_eq!(local_path(Some("https://evil.example/")), "/runs");
        assert_eq!(local_path(None), "/runs");
    }
}
