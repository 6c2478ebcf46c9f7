//! What of a delivery's body may be kept at rest. Gitea before 1.13 put the webhook secret
//! itself in the payload, as a top-level `"secret"` field; it is removed before the body is
//! stored, so the inbox never holds a credential.

use std::borrow::Cow;
use std::fmt;

use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;

use super::Provider;

/// The name of the field old Gitea versions put the webhook secret in.
const SECRET_FIELD: &str = "secret";

/// The body to store for a delivery from `provider` whose signature was already checked:
/// the bytes as received, except that a Gitea or Forgejo body's top-level `secret` members
/// are removed. Only that object's top level is written anew — its other members keep their
/// order and their values' exact bytes; only the whitespace between them goes — so the stored
/// body is no longer the signed one (its signature was checked on the received bytes and is
/// never checked again). Nested fields named `secret` are the payload's own and stay.
pub fn body_to_store(provider: Provider, body: &[u8]) -> Cow<'_, [u8]> {
    if !matches!(provider, Provider::Gitea | Provider::Forgejo) {
        return Cow::Borrowed(body);
    }
    // Parsed even without a literal `"secret"` in the bytes: the key may be written with
    // escapes (`"\u0073ecret"`). A body that does not parse was refused before this.
    let Ok(Members(members)) = serde_json::from_slice::<Members<'_>>(body) else {
        return Cow::Borrowed(body);
    };
    if !members.iter().any(|(key, _)| key == SECRET_FIELD) {
        return Cow::Borrowed(body);
    }
    let mut out = Vec::with_capacity(body.len());
    out.push(b'{');
    for (key, value) in members.iter().filter(|(key, _)| key != SECRET_FIELD) {
        if out.len() > 1 {
            out.push(b',');
        }
        // A string always serializes; the fallback only keeps this free of panics.
        out.extend(serde_json::to_vec(key).unwrap_or_default());
        out.push(b':');
        out.extend_from_slice(value.get().as_bytes());
    }
    out.push(b'}');
    Cow::Owned(out)
}

/// A JSON object's top-level members in order, each value as its raw text.
struct Members<'a>(Vec<(String, &'a RawValue)>);

impl<'de> Deserialize<'de> for Members<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct InOrder;
        impl<'de> Visitor<'de> for InOrder {
            type Value = Members<'de>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut members = Vec::new();
                while let Some(member) = map.next_entry::<String, &'de RawValue>()? {
                    members.push(member);
                }
                Ok(Members(members))
            }
        }
        d.deserialize_map(InOrder)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stored(provider: Provider, body: &str) -> String {
        String::from_utf8(body_to_store(provider, body.as_bytes()).into_owned()).unwrap()
    }

    #[test]
    fn an_old_giteas_secret_is_removed_and_nothing_else_changes() {
        let body = r#"{
  "secret": "hunter22-webhook",
  "ref": "refs/heads/main",
  "number": 12345678901234567890123,
  "z": {"b": 1, "a": [1.50, "x"]},
  "a": null
}"#;
        // Order, big numbers and nested bytes kept as sent.
        assert_eq!(
            stored(Provider::Gitea, body),
            r#"{"ref":"refs/heads/main","number":12345678901234567890123,"z":{"b": 1, "a": [1.50, "x"]},"a":null}"#
        );
        let escaped = r#"{"ref": "x", "\u0073ecret": "s", "secret": "again"}"#;
        assert_eq!(stored(Provider::Forgejo, escaped), r#"{"ref":"x"}"#);
    }

    #[test]
    fn other_bodies_are_stored_as_received() {
        // Nested fields of that name are the payload's own, and other forges never send it.
        let nested = r#"{"repository": {"secret": false}}"#;
        assert!(matches!(
            body_to_store(Provider::Gitea, nested.as_bytes()),
            Cow::Borrowed(_)
        ));
        let top = r#"{"secret": "s"}"#;
        assert!(matches!(
            body_to_store(Provider::Github, top.as_bytes()),
            Cow::Borrowed(_)
        ));
        assert!(matches!(
            body_to_store(Provider::Gitlab, top.as_bytes()),
            Cow::Borrowed(_)
        ));
        assert_eq!(stored(Provider::Gitea, top), "{}");
        assert!(matches!(body_to_store(Provider::Gitea, b"[1]"), Cow::Borrowed(_)));
    }
}
