//! Comment bodies: the hidden marker of comments that are created once and then edited in
//! place, truncation to a forge's size limit, and the upsert built on the [`Forge`] calls.

use super::{BotLogin, Comment, Forge, ForgeError, Thread};

const TAG_OPEN: &str = "<!-- powernode:";
const TAG_CLOSE: &str = " -->";

/// The hidden HTML comment that identifies a comment written for `marker`.
pub fn marker_tag(marker: &str) -> Result<String, ForgeError> {
    let ok = !marker.is_empty()
        && marker.len() <= 100
        && marker.chars().all(|c| c.is_ascii_alphanumeric() || "._-".contains(c));
    if !ok {
        return Err(ForgeError::Validation(format!(
            "comment marker `{marker}` must be 1 to 100 letters, digits, `.`, `_` or `-`"
        )));
    }
    Ok(format!("{TAG_OPEN}{marker}{TAG_CLOSE}"))
}

/// Cuts `body` to at most `limit` characters, ending with a note saying how much was cut.
/// A trailing marker tag is kept whole, so a truncated comment can still be found again.
pub fn truncate_body(body: &str, limit: usize) -> String {
    if body.chars().count() <= limit {
        return body.to_string();
    }
    let (text, tag) = match body.rfind(TAG_OPEN) {
        Some(i) if body.ends_with(TAG_CLOSE) => (&body[..i], &body[i..]),
        _ => (body, ""),
    };
    let total = text.chars().count();
    let note_for =
        |cut: usize| format!("\n\n… _(truncated: {cut} characters cut to fit the forge's limit of {limit})_\n");
    // The note's length depends on the number in it; reserve room for the longest.
    let reserve = note_for(total).chars().count() + tag.chars().count();
    let keep = limit.saturating_sub(reserve);
    let kept: String = text.chars().take(keep).collect();
    format!("{kept}{}{tag}", note_for(total - keep))
}

/// Creates the comment carrying `marker` in `thread`, or edits it in place if it exists.
/// Only comments written by `bot` count: anyone can paste a marker, and a comment whose
/// author the forge does not name is never ours.
pub async fn upsert(
    forge: &dyn Forge,
    repo: &str,
    thread: Thread,
    marker: &str,
    body: &str,
    bot: &BotLogin,
) -> Result<Comment, ForgeError> {
    let tag = marker_tag(marker)?;
    let full = format!("{body}\n\n{tag}");
    let existing = forge
        .list_comments(repo, thread)
        .await?
        .into_iter()
        .find(|c| bot.is(&c.author) && c.body.contains(&tag));
    match existing {
        Some(c) => forge.update_comment(repo, thread, c.id, &full).await,
        None => forge.post_comment(repo, thread, &full).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markers_are_restricted_so_they_cannot_close_the_html_comment() {
        assert_eq!(marker_tag("claude-review").unwrap(), "<!-- powernode:claude-review -->");
        assert!(marker_tag("x --> <script>").is_err());
        assert!(marker_tag("").is_err());
    }

    #[test]
    fn short_bodies_are_untouched() {
        assert_eq!(truncate_body("hello", 10), "hello");
    }

    #[test]
    fn long_bodies_fit_the_limit_keep_the_marker_and_say_so() {
        let body = format!("{}\n\n<!-- powernode:review -->", "é".repeat(70_000));
        let out = truncate_body(&body, 65_536);
        assert!(out.chars().count() <= 65_536, "{}", out.chars().count());
        assert!(out.ends_with("<!-- powernode:review -->"));
        assert!(
            out.contains("characters cut to fit the forge's limit of 65536"),
            "{}",
            &out[out.len() - 200..]
        );
        assert!(out.starts_with("éééé"));
    }
}
