//! Forge credentials for git over HTTP: the `Authorization` header a token is sent in, which
//! forge wants which form, and masking of every form of the secret in text shown to anyone.

use std::fmt;

/// A forge token and how to send it as an `Authorization` header; `Debug` never shows the token.
///
/// Which constructor each forge needs for git over HTTPS:
/// - GitHub: [`GitAuth::github`] (Basic `x-access-token:<token>`); GitHub's git endpoint does
///   not take `Bearer`.
/// - GitLab: [`GitAuth::gitlab`] (Basic `oauth2:<token>`) for personal, project, group and OAuth
///   tokens; CI job tokens need `GitAuth::basic("gitlab-ci-token", token)`.
/// - Gitea and Forgejo: [`GitAuth::gitea`] (Basic with the token as password; the user name is
///   ignored when the password is a token).
/// - Bitbucket Cloud access tokens: `GitAuth::basic("x-token-auth", token)`.
/// - Azure DevOps: `GitAuth::basic("pat", token)` for a PAT, [`GitAuth::bearer`] for an OAuth /
///   Entra ID token.
#[derive(Clone, PartialEq, Eq)]
pub struct GitAuth {
    scheme: Scheme,
    user: String,
    token: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Scheme {
    Basic,
    Bearer,
}

impl GitAuth {
    /// `Authorization: Basic base64(user:token)`: the form git over HTTPS takes on most forges.
    pub fn basic(user: impl Into<String>, token: impl Into<String>) -> Self {
        GitAuth {
            scheme: Scheme::Basic,
            user: user.into(),
            token: token.into(),
        }
    }

    /// `Authorization: Bearer <token>`: for servers that take OAuth bearer tokens on git HTTP
    /// (Azure DevOps); GitHub and GitLab refuse it there.
    pub fn bearer(token: impl Into<String>) -> Self {
        GitAuth {
            scheme: Scheme::Bearer,
            user: String::new(),
            token: token.into(),
        }
    }

    /// GitHub (and GitHub Enterprise): Basic `x-access-token:<token>`, which works for classic and
    /// fine-grained personal tokens, App installation tokens and Actions' `GITHUB_TOKEN`.
    pub fn github(token: impl Into<String>) -> Self {
        Self::basic("x-access-token", token)
    }

    /// GitLab: Basic `oauth2:<token>`, which works for personal, project, group and OAuth tokens.
    pub fn gitlab(token: impl Into<String>) -> Self {
        Self::basic("oauth2", token)
    }

    /// Gitea and Forgejo: Basic with the token as password (the user name is then ignored).
    pub fn gitea(token: impl Into<String>) -> Self {
        Self::basic("x-access-token", token)
    }

    /// Checks that the credentials can go in a header: no empty token, no control characters
    /// (which would let a token inject headers), no `:` in a Basic user name.
    pub(super) fn check(&self) -> Result<(), String> {
        if self.token.is_empty() {
            return Err("the token is empty".into());
        }
        if self.token.chars().chain(self.user.chars()).any(|c| c.is_control()) {
            return Err("the token or user name contains control characters".into());
        }
        if self.scheme == Scheme::Basic && (self.user.is_empty() || self.user.contains(':')) {
            return Err("a Basic user name must be non-empty and contain no ':'".into());
        }
        if self.scheme == Scheme::Bearer && self.token.contains(char::is_whitespace) {
            return Err("a bearer token cannot contain spaces".into());
        }
        Ok(())
    }

    /// The full header line git is told to send, `Authorization: <scheme> <credentials>`.
    pub(super) fn header(&self) -> String {
        format!("Authorization: {}", self.header_value())
    }

    /// The header's value, e.g. `Basic eC1hY2Nlc3MtdG9rZW46...`.
    fn header_value(&self) -> String {
        match self.scheme {
            Scheme::Basic => format!("Basic {}", base64(format!("{}:{}", self.user, self.token).as_bytes())),
            Scheme::Bearer => format!("Bearer {}", self.token),
        }
    }

    /// Every string that would reveal the token, longest first, for [`mask`].
    pub(super) fn secrets(&self) -> Vec<String> {
        let mut s = vec![self.header(), self.header_value(), self.token.clone()];
        if self.scheme == Scheme::Basic {
            let pair = format!("{}:{}", self.user, self.token);
            s.push(base64(pair.as_bytes()));
            s.push(pair);
        }
        s.retain(|x| !x.is_empty());
        s.sort_by_key(|x| std::cmp::Reverse(x.len()));
        s.dedup();
        s
    }
}

impl fmt::Debug for GitAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GitAuth")
            .field("scheme", &self.scheme)
            .field("user", &self.user)
            .field("token", &"***")
            .finish()
    }
}

/// Replaces every occurrence of each secret in `text` with `***`.
pub(super) fn mask(text: &str, secrets: &[String]) -> String {
    let mut out = text.to_owned();
    for s in secrets.iter().filter(|s| !s.is_empty()) {
        if out.contains(s.as_str()) {
            out = out.replace(s.as_str(), "***");
        }
    }
    out
}

/// Standard base64 with padding (RFC 4648), as HTTP Basic wants it.
fn base64(input: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(input.len().div_ceil(3) * 4);
    for chunk in input.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc4648_vectors() {
        let cases = [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ];
        for (plain, encoded) in cases {
            assert_eq!(base64(plain.as_bytes()), encoded);
        }
    }

    #[test]
    fn headers_per_forge() {
        assert_eq!(
            GitAuth::github("t0k").header(),
            format!("Authorization: Basic {}", base64(b"x-access-token:t0k"))
        );
        assert_eq!(
            GitAuth::gitlab("t0k").header(),
            format!("Authorization: Basic {}", base64(b"oauth2:t0k"))
        );
        assert_eq!(GitAuth::bearer("t0k").header(), "Authorization: Bearer t0k");
        assert_eq!(GitAuth::basic("u", "p").header(), "Authorization: Basic dTpw");
    }

    #[test]
    fn debug_hides_the_token() {
        let a = GitAuth::github("ghp_supersecret");
        let d = format!("{a:?}");
        assert!(!d.contains("supersecret") && d.contains("***"), "{d}");
        assert!(!format!("{:?}", GitAuth::bearer("supersecret")).contains("supersecret"));
    }

    #[test]
    fn check_refuses_header_injection_and_empty_tokens() {
        assert!(GitAuth::github("abc\r\nX-Evil: 1").check().is_err());
        assert!(GitAuth::github("").check().is_err());
        assert!(GitAuth::basic("a:b", "t").check().is_err());
        assert!(GitAuth::bearer("a b").check().is_err());
        assert!(GitAuth::gitea("fine").check().is_ok());
    }

    #[test]
    fn mask_removes_every_form_of_the_secret() {
        let a = GitAuth::github("s3cr3t-token");
        let secrets = a.secrets();
        let text = format!(
            "{} | {} | s3cr3t-token | x-access-token:s3cr3t-token",
            a.header(),
            a.header_value()
        );
        let masked = mask(&text, &secrets);
        assert!(!masked.contains("s3cr3t"), "{masked}");
        assert!(!masked.contains(&base64(b"x-access-token:s3cr3t-token")), "{masked}");
    }
}
