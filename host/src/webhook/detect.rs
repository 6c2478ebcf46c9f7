//! Which forge sent a delivery, from its headers alone.
//!
//! Gitea also sends GitHub's headers (`X-GitHub-Event`, `X-Hub-Signature-256`, ...) and Forgejo
//! sends Gitea's and GitHub's, so the most specific header wins: Forgejo, then Gitea, then
//! GitLab, then GitHub.

use std::fmt;

use http::HeaderMap;
use serde::{Deserialize, Serialize};

/// A forge that sends webhooks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Provider {
    /// github.com or GitHub Enterprise Server.
    Github,
    /// Gitea.
    Gitea,
    /// Forgejo (Gitea's payloads, its own headers).
    Forgejo,
    /// gitlab.com or self-managed GitLab.
    Gitlab,
}

impl Provider {
    /// The lowercase name used in config files and events.
    pub fn as_str(self) -> &'static str {
        match self {
            Provider::Github => "github",
            Provider::Gitea => "gitea",
            Provider::Forgejo => "forgejo",
            Provider::Gitlab => "gitlab",
        }
    }
}

impl fmt::Display for Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The forge whose event header is present, checked in the order Forgejo, Gitea, GitLab, GitHub.
pub fn detect(headers: &HeaderMap) -> Option<Provider> {
    [
        ("x-forgejo-event", Provider::Forgejo),
        ("x-gitea-event", Provider::Gitea),
        ("x-gitlab-event", Provider::Gitlab),
        ("x-github-event", Provider::Github),
    ]
    .into_iter()
    .find(|(name, _)| headers.contains_key(*name))
    .map(|(_, provider)| provider)
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn headers(names: &[&'static str]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for name in names {
            map.insert(*name, HeaderValue::from_static("push"));
        }
        map
    }

    #[test]
    fn github_alone_is_github() {
        assert_eq!(detect(&headers(&["X-GitHub-Event"])), Some(Provider::Github));
    }

    #[test]
    fn gitea_with_github_compatibility_headers_is_gitea() {
        let map = headers(&["X-GitHub-Event", "X-Gogs-Event", "X-Gitea-Event"]);
        assert_eq!(detect(&map), Some(Provider::Gitea));
    }

    #[test]
    fn forgejo_with_gitea_and_github_headers_is_forgejo() {
        let map = headers(&["X-GitHub-Event", "X-Gitea-Event", "X-Gogs-Event", "X-Forgejo-Event"]);
        assert_eq!(detect(&map), Some(Provider::Forgejo));
    }

    #[test]
    fn gitlab_is_gitlab() {
        assert_eq!(detect(&headers(&["X-Gitlab-Event"])), Some(Provider::Gitlab));
    }

    #[test]
    fn no_event_header_is_none() {
        assert_eq!(detect(&headers(&["X-Hub-Signature-256", "Content-Type"])), None);
        assert_eq!(detect(&HeaderMap::new()), None);
    }

    #[test]
    fn names_round_trip_through_serde() {
        for provider in [Provider::Github, Provider::Gitea, Provider::Forgejo, Provider::Gitlab] {
            let json = serde_json::to_string(&provider).unwrap();
            assert_eq!(json, format!("\"{provider}\""));
            assert_eq!(serde_json::from_str::<Provider>(&json).unwrap(), provider);
        }
    }
}
