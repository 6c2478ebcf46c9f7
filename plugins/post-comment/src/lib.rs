//! The `post_comment` step: a comment on the run's pull request, merge request or issue
//! (or a given `number`), with an optional header and footer. With a `marker`, the step's
//! earlier comment is found (among our bot's comments, by a hidden marker) and edited in
//! place, so a review posted on every push stays one comment. The host cuts bodies over the
//! forge's limit with a note.

use powernode_sdk::{Context, Error, Info, Output, Step, provider};
use serde::Deserialize;

/// The step's `config` block.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The comment's text.
    pub body: String,
    /// Text above the body.
    #[serde(default)]
    pub header: Option<String>,
    /// Text below the body.
    #[serde(default)]
    pub footer: Option<String>,
    /// Hidden marker: the comment carrying it is edited in place.
    #[serde(default)]
    pub marker: Option<String>,
    /// Pull request, merge request or issue number; the trigger's by default.
    #[serde(default)]
    pub number: Option<u64>,
}

/// Header, body and footer, each separated by a blank line; empty parts are left out.
pub fn compose(config: &Config) -> String {
    [
        config.header.as_deref(),
        Some(config.body.as_str()),
        config.footer.as_deref(),
    ]
    .into_iter()
    .flatten()
    .map(str::trim_end)
    .filter(|part| !part.is_empty())
    .collect::<Vec<_>>()
    .join("\n\n")
}

struct PostComment;

impl Step for PostComment {
    type Config = Config;

    fn info() -> Info {
        Info::new(
            "post_comment",
            env!("CARGO_PKG_VERSION"),
            "Comments on the run's pull request or issue, or edits its earlier comment",
        )
    }

    fn run(ctx: Context<Config>) -> Result<Output, Error> {
        let number = ctx.config.number.or(ctx.trigger.number).ok_or_else(|| {
            Error::config("this run has no pull request or issue: set `number` to say where to comment")
        })?;
        let body = compose(&ctx.config);
        if body.is_empty() {
            return Err(Error::config(
                "the comment is empty: `body` (or `body_from`) gave nothing",
            ));
        }
        let comment = match &ctx.config.marker {
            Some(marker) => provider::upsert_comment(number, marker, &body),
            None => provider::post_comment(number, &body),
        }
        .map_err(Error::from)?;
        Ok(Output::new(comment.url.clone())
            .with("id", comment.id)
            .with("url", comment.url)
            .with("number", number))
    }
}

powernode_sdk::step!(PostComment);

#[cfg(test)]
mod tests {
    use super::*;

    fn config(header: Option<&str>, body: &str, footer: Option<&str>) -> Config {
        Config {
            body: body.into(),
            header: header.map(Into::into),
            footer: footer.map(Into::into),
            marker: None,
            number: None,
        }
    }

    #[test]
    fn header_and_footer_frame_the_body() {
        let c = config(
            Some("## 🤖 AI Analysis"),
            "Looks good.\n",
            Some("---\n*Powered by Claude*"),
        );
        assert_eq!(
            compose(&c),
            "## 🤖 AI Analysis\n\nLooks good.\n\n---\n*Powered by Claude*"
        );
        assert_eq!(compose(&config(None, "only", None)), "only");
        assert_eq!(compose(&config(Some(""), "  ", None)), "");
    }

    #[test]
    fn unknown_fields_are_refused() {
        let err = serde_json::from_str::<Config>(r#"{"body": "x", "bodyy": "y"}"#).unwrap_err();
        assert!(err.to_string().contains("unknown field `bodyy`"), "{err}");
    }

    /// The step against the SDK's fake host: the calls it makes and what it outputs.
    mod with_fake_host {
        use powernode_sdk::provider::Comment;
        use powernode_sdk::testing::FakeHost;
        use powernode_sdk::{ProviderError, Trigger};
        use serde_json::json;

        use super::super::PostComment;

        fn comment(id: u64, body: &str) -> Comment {
            Comment {
                id,
                body: body.into(),
                author: "powernode-bot".into(),
                url: format!("https://forge.test/octo/hello/pull/7#comment-{id}"),
            }
        }

        #[test]
        fn a_marker_edits_the_earlier_comment_on_the_triggers_pull_request() {
            let mut host = FakeHost::new();
            host.trigger(Trigger::pull_request(7, "feature", "main"))
                .on_upsert_comment(|_, _, body| Ok(comment(42, body)));
            let run =
                host.run::<PostComment>(json!({"body": "Looks good.", "header": "## Review", "marker": "review"}));
            assert_eq!(
                run.output().raw_output,
                "https://forge.test/octo/hello/pull/7#comment-42"
            );
            assert_eq!((run.named("id"), run.named("number")), (Some("42"), Some("7")));
            let calls: Vec<String> = run.calls.iter().map(ToString::to_string).collect();
            assert_eq!(
                calls,
                [r###"provider::upsert_comment(7, "review", "## Review\n\nLooks good.")"###]
            );
        }

        #[test]
        fn a_forge_refusal_is_the_steps_provider_error() {
            let mut host = FakeHost::new();
            host.trigger(Trigger::pull_request(7, "feature", "main"))
                .on_post_comment(|_, _| Err(ProviderError::Forbidden("resource not accessible".into())));
            let run = host.run::<PostComment>(json!({"body": "hi"}));
            assert!(
                matches!(run.error(), powernode_sdk::Error::Provider(ProviderError::Forbidden(m)) if m == "resource not accessible")
            );
        }

        #[test]
        fn no_number_anywhere_is_a_config_error_before_any_call() {
            let run = FakeHost::new().run::<PostComment>(json!({"body": "hi"}));
            assert!(matches!(run.error(), powernode_sdk::Error::InvalidConfig(m) if m.contains("set `number`")));
            assert!(run.calls.is_empty(), "{:?}", run.calls);
        }
    }
}
