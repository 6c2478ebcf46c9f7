//! Checks on everything a request hands to git: remote URLs (http(s) only, no credentials), ref
//! names, commit ids, commit identities and messages. All of it runs before any git process.

use super::GitError;

/// A remote URL that passed [`remote_url`], with the origin the token is scoped to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct RemoteUrl {
    /// The URL as given.
    pub url: String,
    /// `scheme://host[:port]/`: git sends the `Authorization` header only to URLs under it.
    pub origin: String,
}

/// Accepts `http://` and `https://` URLs with a host and no user info, query or fragment.
pub(super) fn remote_url(url: &str) -> Result<RemoteUrl, GitError> {
    let bad = |why: &str| Err(GitError::InvalidUrl(format!("{why} (got {})", shown_url(url))));
    if url.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return bad("the URL contains whitespace or control characters");
    }
    let Some((scheme, rest)) = url.split_once("://") else {
        return bad("expected an http:// or https:// URL");
    };
    let scheme = scheme.to_ascii_lowercase();
    if scheme != "https" && scheme != "http" {
        return bad("only http:// and https:// remotes are supported (no ssh, git, file or ext)");
    }
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if authority.contains('@') {
        return bad("credentials in the URL are refused; pass the token as GitAuth instead");
    }
    if url.contains(['?', '#', '\\']) {
        return bad("the URL must not contain '?', '#' or '\\'");
    }
    let host = match authority.strip_prefix('[') {
        Some(v6) => v6.split_once(']').map(|(h, _)| h).unwrap_or_default(),
        None => authority.split(':').next().unwrap_or_default(),
    };
    if host.is_empty() {
        return bad("the URL has no host");
    }
    if let Some(port) = authority
        .rsplit_once(']')
        .map_or(authority, |(_, p)| p)
        .split_once(':')
        .map(|(_, p)| p)
        && (port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()))
    {
        return bad("the URL's port is not a number");
    }
    if rest.len() <= authority.len() + 1 {
        return bad("the URL has no repository path");
    }
    Ok(RemoteUrl {
        url: url.to_owned(),
        origin: format!("{scheme}://{}/", authority.to_ascii_lowercase()),
    })
}

/// The URL for an error message, with anything between `://` and `@` masked: a URL refused for
/// carrying credentials must not echo them.
fn shown_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => format!("{}***{}", &url[..s + 3], &url[at..]),
        _ => url.to_owned(),
    }
}

/// Checks a branch or tag name for fetching (`main`, `v1`, `refs/tags/v1`, `HEAD`) against
/// git's ref-name rules, and refuses anything git could read as an option.
pub(super) fn ref_name(name: &str) -> Result<&str, GitError> {
    let bad = |why: &str| Err(GitError::InvalidRef(format!("{name:?}: {why}")));
    if name.is_empty() {
        return bad("empty");
    }
    if name.len() > 255 {
        return bad("longer than 255 bytes");
    }
    if name.starts_with('-') {
        return bad("starts with '-'");
    }
    if name
        .chars()
        .any(|c| c.is_control() || c == ' ' || "~^:?*[\\".contains(c))
    {
        return bad("contains a space, a control character or one of ~ ^ : ? * [ \\");
    }
    if name.contains("..") || name.contains("@{") || name.contains("//") || name == "@" {
        return bad("contains '..', '@{' or '//', or is '@'");
    }
    if name.starts_with('/') || name.ends_with('/') || name.ends_with('.') {
        return bad("starts or ends with '/' or ends with '.'");
    }
    if name
        .split('/')
        .any(|part| part.starts_with('.') || part.ends_with(".lock"))
    {
        return bad("a component starts with '.' or ends with '.lock'");
    }
    Ok(name)
}

/// Checks a branch name to push to: a valid ref name that is a short branch name.
pub(super) fn branch_name(name: &str) -> Result<&str, GitError> {
    ref_name(name)?;
    if name == "HEAD" || name.starts_with("refs/") {
        return Err(GitError::InvalidRef(format!(
            "{name:?}: give a short branch name (it is pushed to refs/heads/<name>)"
        )));
    }
    Ok(name)
}

/// Checks a full commit id (40 hex digits for SHA-1, 64 for SHA-256) and lower-cases it.
pub(super) fn sha(sha: &str) -> Result<String, GitError> {
    if (sha.len() == 40 || sha.len() == 64) && sha.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(sha.to_ascii_lowercase())
    } else {
        Err(GitError::InvalidRef(format!(
            "{sha:?}: a commit id must be 40 (or 64) hexadecimal digits"
        )))
    }
}

/// Checks an author name or email: non-empty, no `<`, `>` or control characters (which git
/// would strip or choke on).
pub(super) fn identity_part(what: &str, value: &str) -> Result<(), GitError> {
    if value.trim().is_empty() || value.chars().any(|c| c.is_control() || c == '<' || c == '>') {
        return Err(GitError::InvalidRequest(format!(
            "the commit {what} must be non-empty and contain no '<', '>' or control characters (got {value:?})"
        )));
    }
    Ok(())
}

/// Checks a commit message: not blank, no NUL bytes.
pub(super) fn message(message: &str) -> Result<(), GitError> {
    if message.trim().is_empty() || message.contains('\0') {
        return Err(GitError::InvalidRequest(
            "the commit message must be non-blank and contain no NUL".into(),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let ok = remote_url("https://GitHub.com/o/r.git").unwrap();
        assert_eq!(ok.origin, "https://github.com/");
        assert_eq!(
            remote_url("http://127.0.0.1:8080/r.git").unwrap().origin,
            "http://127.0.0.1:8080/"
        );
        assert_eq!(remote_url("http://[::1]:81/r").unwrap().origin, "http://[::1]:81/");
        for bad in [
            "ssh://git@github.com/o/r.git",
            "git@github.com:o/r.git",
            "file:///tmp/r",
            "ext::sh -c touch% /tmp/pwned",
            "https://github.com",
            "https://github.com/",
            "https:///o/r",
            "https://h:x/r",
            "https://h/r?x=1",
            "https://h/r#frag",
            "https://h/r name",
            "https://h/r\n",
        ] {
            assert!(matches!(remote_url(bad), Err(GitError::InvalidUrl(_))), "{bad}");
        }
    }

    #[test]
    fn urls_with_credentials_are_refused_without_echoing_them() {
        for url in [
            "https://user:hunter2@github.com/o/r.git",
            "https://hunter2@github.com/o/r.git",
        ] {
            let e = remote_url(url).unwrap_err().to_string();
            assert!(e.contains("credentials"), "{e}");
            assert!(!e.contains("hunter2"), "{e}");
        }
    }

    #[test]
    fn refs() {
        for ok in [
            "main",
            "v1.2.3",
            "refs/heads/feature/x",
            "refs/tags/v1",
            "HEAD",
            "a-b_c",
        ] {
            assert!(ref_name(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "-b",
            "--upload-pack=evil",
            "a..b",
            "a b",
            "a~1",
            "a^",
            "a:b",
            "x?",
            "x*",
            "[x",
            "a\\b",
            "@{-1}",
            "@",
            "a//b",
            "/a",
            "a/",
            "a.",
            ".a",
            "a/.b",
            "a.lock",
            "a/b.lock/c",
            "a\u{7f}",
        ] {
            assert!(matches!(ref_name(bad), Err(GitError::InvalidRef(_))), "{bad:?}");
        }
        assert!(branch_name("powernode/update").is_ok());
        assert!(branch_name("HEAD").is_err());
        assert!(branch_name("refs/heads/x").is_err());
    }

    #[test]
    fn shas() {
        assert_eq!(sha(&"A".repeat(40)).unwrap(), "a".repeat(40));
        assert!(sha(&"0".repeat(64)).is_ok());
        assert!(sha("abc123").is_err());
        assert!(sha(&"g".repeat(40)).is_err());
    }

    #[test]
    fn identities_and_messages() {
        assert!(identity_part("author name", "Powernode Bot").is_ok());
        assert!(identity_part("author name", "").is_err());
        assert!(identity_part("author email", "a<b").is_err());
        assert!(identity_part("author email", "a\nb").is_err());
        assert!(message("fix: x\n\nbody").is_ok());
        assert!(message(" \n").is_err());
    }
}
