//! First start: what `powernode init` writes (a commented config, the seed's review pipeline
//! and a manual `hello` pipeline) and the webhook instructions it prints, which the
//! getting-started page of a server without a config shows too. Pure text, no I/O.

use crate::provider::ForgeKind;

/// The environment variable the generated config reads the API token from.
pub const TOKEN_VAR: &str = "POWERNODE_API_TOKEN";
/// The environment variable the generated config reads the webhook secret from.
pub const SECRET_VAR: &str = "POWERNODE_WEBHOOK_SECRET";
/// The seed's AI review pipeline, as the seed wrote it.
pub const REVIEW_PIPELINE: &str = include_str!("../../tests/it/seed/review.yml");
/// A pipeline that needs no forge: `powernode trigger hello` shows a run at once.
pub const HELLO_PIPELINE: &str = "\
# Started by hand: `powernode trigger hello` (no forge needed).
name: hello
triggers:
  - type: manual
steps:
  - name: greet
    type: run_command
    config:
      command: echo \"hello from Powernode on $(uname -sr)\"
";

/// The forges `init` knows, as `[[sources]]` kinds.
pub const FORGES: [ForgeKind; 4] = [
    ForgeKind::Github,
    ForgeKind::Gitea,
    ForgeKind::Forgejo,
    ForgeKind::Gitlab,
];

/// What a person pastes into one forge's webhook settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookHint {
    /// The forge's name, for people.
    pub forge: &'static str,
    /// The `[[sources]]` id the config gives it.
    pub source: String,
    /// `public_url/webhooks/<source>`.
    pub url: String,
    /// Where in the forge's settings, and which events to choose.
    pub where_: &'static str,
}

/// The webhook URL and settings for each forge, on a server reached at `public_url`.
pub fn webhook_hints(public_url: &str) -> Vec<WebhookHint> {
    FORGES
        .iter()
        .map(|&kind| {
            let source = kind.as_str().to_string();
            let (forge, where_) = match kind {
                ForgeKind::Github => (
                    "GitHub",
                    "repository Settings → Webhooks → Add webhook; content type application/json; events: Pull requests, Pushes, Issue comments",
                ),
                ForgeKind::Gitea => (
                    "Gitea",
                    "repository Settings → Webhooks → Add Webhook → Gitea; POST, application/json; events: Push, Pull Request, Issue Comment",
                ),
                ForgeKind::Forgejo => (
                    "Forgejo",
                    "repository Settings → Webhooks → Add webhook → Forgejo; POST, application/json; events: Push, Pull request, Issue comment",
                ),
                ForgeKind::Gitlab => (
                    "GitLab",
                    "project Settings → Webhooks → Add new webhook; the secret goes in \"Secret token\"; triggers: Push, Merge request, Comments",
                ),
            };
            WebhookHint {
                forge,
                url: format!("{}/webhooks/{source}", public_url.trim_end_matches('/')),
                source,
                where_,
            }
        })
        .collect()
}

/// The environment variable holding the forge token of `kind`'s source.
pub fn token_var(kind: ForgeKind) -> String {
    format!("{}_TOKEN", kind.as_str().to_uppercase())
}

fn api_url(kind: ForgeKind) -> &'static str {
    match kind {
        ForgeKind::Github => "https://api.github.com",
        ForgeKind::Gitea => "https://gitea.example.com/api/v1",
        ForgeKind::Forgejo => "https://codeberg.org/api/v1",
        ForgeKind::Gitlab => "https://gitlab.com/api/v4",
    }
}

/// The commented `powernode.toml` `init` writes: the token and secret read from
/// [`TOKEN_VAR`] and [`SECRET_VAR`], one `[[sources]]` per forge, those in `active`
/// uncommented (the others ready to uncomment).
pub fn config_text(listen: &str, public_url: &str, active: &[ForgeKind]) -> String {
    let mut text = format!(
        "# Powernode's config, written by `powernode init`. Every field is optional; README.md
# (\"Configuration\") lists them all. Paths are relative to the folder `powernode serve`
# is started in: start it here. `${{NAME}}` reads an environment variable (an unset one is
# an error that names it), so the secrets stay out of this file.

listen = \"{listen}\"
public_url = \"{public_url}\"      # how forges and people reach this server: commit status links, webhook URLs
api_token = \"${{{TOKEN_VAR}}}\"   # the bearer token of the API and the CLI
pipelines_dir = \"pipelines\"          # *.yml pipelines; changes are picked up without a restart
data_dir = \"powernode-data\"          # store, webhook inbox, artifacts, run workspaces
plugins_dir = \"plugins\"              # your own <step_type>.wasm steps

[secrets]                            # pipelines read these as ${{NAME}}; masked in every log
# ANTHROPIC_API_KEY = \"${{ANTHROPIC_API_KEY}}\"

# One [[sources]] per forge connection: webhooks arrive at public_url/webhooks/<id>,
# signed with webhook_secret; `token` is what steps act on the forge with.
"
    );
    for kind in FORGES {
        let on = active.contains(&kind);
        let c = if on { "" } else { "# " };
        let name = kind.as_str();
        text.push_str(&format!(
            "\n{c}[[sources]]\n{c}id = \"{name}\"\n{c}kind = \"{name}\"\n{c}api_url = \"{}\"\n{c}token = \"${{{}}}\"\n{c}webhook_secret = \"${{{SECRET_VAR}}}\"\n",
            api_url(kind),
            token_var(kind),
        ));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_written_config_parses_and_reads_its_secrets_from_the_environment() {
        let text = config_text("127.0.0.1:8080", "http://127.0.0.1:8080", &[ForgeKind::Gitea]);
        let env = |name: &str| match name {
            TOKEN_VAR => Some("t".repeat(64)),
            SECRET_VAR => Some("s".repeat(64)),
            "GITEA_TOKEN" => Some("gitea".into()),
            _ => None,
        };
        let config = crate::config::Config::parse("powernode.toml".as_ref(), &text, &env).unwrap();
        assert_eq!(config.api_token.unwrap().expose(), "t".repeat(64));
        assert_eq!(config.sources.len(), 1, "only the chosen forge is active");
        assert_eq!(config.sources[0].id, "gitea");
        assert_eq!(
            config.sources[0].webhook_secret.as_ref().unwrap().expose(),
            "s".repeat(64)
        );
    }

    #[test]
    fn each_forge_gets_its_own_webhook_url() {
        let hints = webhook_hints("https://ci.example.com/");
        let urls: Vec<&str> = hints.iter().map(|h| h.url.as_str()).collect();
        assert_eq!(
            urls,
            [
                "https://ci.example.com/webhooks/github",
                "https://ci.example.com/webhooks/gitea",
                "https://ci.example.com/webhooks/forgejo",
                "https://ci.example.com/webhooks/gitlab"
            ]
        );
    }
}
