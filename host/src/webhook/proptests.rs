//! Property tests: arbitrary headers and bodies never panic, a body that is not JSON is never
//! an event, and the sparse parse normalizes exactly like a full one.

use http::{HeaderMap, HeaderName, HeaderValue};
use proptest::prelude::*;

use super::tests::{FIXTURES, SECRET};
use super::*;

const PROVIDERS: [Provider; 4] = [Provider::Github, Provider::Gitea, Provider::Forgejo, Provider::Gitlab];

/// Header names the code reads, plus arbitrary ones.
fn header_name() -> impl Strategy<Value = String> {
    const KNOWN: &[&str] = &[
        "x-github-event",
        "x-github-delivery",
        "x-hub-signature-256",
        "x-gitea-event",
        "x-gitea-event-type",
        "x-gitea-delivery",
        "x-gitea-signature",
        "x-forgejo-event",
        "x-forgejo-event-type",
        "x-forgejo-delivery",
        "x-forgejo-signature",
        "x-gitlab-event",
        "x-gitlab-token",
        "x-gitlab-event-uuid",
        "idempotency-key",
        "webhook-id",
        "webhook-timestamp",
        "webhook-signature",
    ];
    prop_oneof![3 => proptest::sample::select(KNOWN).prop_map(str::to_owned), 1 => "[a-z-]{1,20}"]
}

fn header_value() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        Just(b"push".to_vec()),
        Just(b"pull_request".to_vec()),
        Just(b"Merge Request Hook".to_vec()),
        Just(b"v1,AAAA v1,".to_vec()),
        Just(b"sha256=".to_vec()),
        "[ -~]{0,80}".prop_map(String::into_bytes),
        proptest::collection::vec(any::<u8>(), 0..40),
    ]
}

fn headers() -> impl Strategy<Value = HeaderMap> {
    proptest::collection::vec((header_name(), header_value()), 0..8).prop_map(|pairs| {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            if let (Ok(name), Ok(value)) = (HeaderName::from_bytes(name.as_bytes()), HeaderValue::from_bytes(&value)) {
                map.append(name, value);
            }
        }
        map
    })
}

fn body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..256),
        "[ -~]{0,200}".prop_map(String::into_bytes),
        Just(b"{}".to_vec()),
        Just(b"null".to_vec()),
        Just(br#"{"object_kind":"note","object_attributes":{"noteable_type":"MergeRequest"}}"#.to_vec()),
        Just(br#"{"ref":"refs/heads/x","after":"1","repository":{"full_name":1}}"#.to_vec()),
    ]
}

/// Bytes that are not a JSON document: noise, a `{` and noise, or a fixture cut short.
fn non_json_body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..256),
        "[ -~]{0,200}".prop_map(|text| format!("{{{text}").into_bytes()),
        (0..FIXTURES.len(), any::<prop::sample::Index>()).prop_map(|(index, at)| {
            let body = FIXTURES[index].body;
            body[..at.index(body.len() - 2)].to_vec()
        }),
    ]
    .prop_filter("valid JSON", |body| !is_json(body))
}

fn is_json(bytes: &[u8]) -> bool {
    serde_json::from_slice::<serde::de::IgnoredAny>(bytes).is_ok()
}

proptest! {
    #[test]
    fn arbitrary_deliveries_never_panic(headers in headers(), body in body(), secret in proptest::option::of("[ -~]{0,20}"), now in any::<u64>()) {
        let _ = detect(&headers);
        for provider in PROVIDERS {
            let _ = verify(provider, &headers, &body, secret.as_deref());
            let _ = verify_at(provider, &headers, &body, secret.as_deref(), now);
            let result = normalize(provider, &headers, &body);
            if !is_json(&body) {
                prop_assert!(matches!(result, Err(NormalizeError::InvalidJson(_) | NormalizeError::FormEncoded)));
            }
        }
    }

    #[test]
    fn non_json_bodies_are_errors_even_with_real_headers(index in 0..FIXTURES.len(), body in non_json_body()) {
        let headers = FIXTURES[index].header_map();
        let provider = detect(&headers).unwrap();
        prop_assert!(verify(provider, &headers, &body, Some(SECRET)).is_err() || provider == Provider::Gitlab);
        let result = normalize(provider, &headers, &body);
        prop_assert!(matches!(result, Err(NormalizeError::InvalidJson(_) | NormalizeError::FormEncoded)), "{result:?}");
    }

    #[test]
    fn mutated_fixtures_never_panic(index in 0..FIXTURES.len(), edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4)) {
        let fixture = &FIXTURES[index];
        let headers = fixture.header_map();
        let mut body = fixture.body.to_vec();
        for (at, byte) in edits {
            let at = at.index(body.len());
            body[at] = byte;
        }
        let provider = detect(&headers).unwrap();
        let _ = verify(provider, &headers, &body, Some(SECRET));
        let outcome = normalize(provider, &headers, &body);
        if let Ok(full) = serde_json::from_slice::<serde_json::Value>(&body) {
            prop_assert_eq!(outcome, normalize_payload(provider, &headers, &full));
        } else {
            prop_assert!(!matches!(outcome, Ok(Outcome::Event(_))));
        }
    }

    #[test]
    fn arbitrary_json_with_real_headers_never_panics(index in 0..FIXTURES.len(), value in json_value()) {
        let headers = FIXTURES[index].header_map();
        let provider = detect(&headers).unwrap();
        let body = serde_json::to_vec(&value).unwrap();
        prop_assert_eq!(normalize(provider, &headers, &body), normalize_payload(provider, &headers, &value));
    }

    #[test]
    fn sparse_parse_normalizes_like_the_full_parse(index in 0..FIXTURES.len(), edits in proptest::collection::vec((any::<prop::sample::Index>(), proptest::option::of(json_value())), 1..6)) {
        // Replace (Some) or remove (None) random nodes of a real payload: every field a normalizer
        // reads must survive the sparse parse, or the two outcomes differ.
        let fixture = &FIXTURES[index];
        let headers = fixture.header_map();
        let provider = detect(&headers).unwrap();
        let mut full: serde_json::Value = serde_json::from_slice(fixture.body).unwrap();
        for (at, replacement) in edits {
            let pointers = pointers(&full);
            let pointer = &pointers[at.index(pointers.len())];
            match replacement {
                Some(value) => *full.pointer_mut(pointer).unwrap() = value,
                None => remove(&mut full, pointer),
            }
        }
        let body = serde_json::to_vec(&full).unwrap();
        prop_assert_eq!(normalize(provider, &headers, &body), normalize_payload(provider, &headers, &full));
    }
}

/// JSON pointers of every node below the root.
fn pointers(value: &serde_json::Value) -> Vec<String> {
    fn walk(value: &serde_json::Value, at: String, out: &mut Vec<String>) {
        let children: Vec<(String, &serde_json::Value)> = match value {
            serde_json::Value::Object(map) => map
                .iter()
                .map(|(k, v)| (k.replace('~', "~0").replace('/', "~1"), v))
                .collect(),
            serde_json::Value::Array(items) => items.iter().enumerate().map(|(i, v)| (i.to_string(), v)).collect(),
            _ => Vec::new(),
        };
        for (key, child) in children {
            let pointer = format!("{at}/{key}");
            walk(child, pointer.clone(), out);
            out.push(pointer);
        }
    }
    let mut out = Vec::new();
    walk(value, String::new(), &mut out);
    if out.is_empty() {
        out.push(String::new());
    }
    out
}

/// Removes the node at `pointer` from its parent object or array (the root becomes null).
fn remove(value: &mut serde_json::Value, pointer: &str) {
    let Some((parent, key)) = pointer.rsplit_once('/') else {
        *value = serde_json::Value::Null;
        return;
    };
    let key = key.replace("~1", "/").replace("~0", "~");
    match value.pointer_mut(parent) {
        Some(serde_json::Value::Object(map)) => {
            map.remove(&key);
        }
        Some(serde_json::Value::Array(items)) => {
            items.remove(key.parse::<usize>().unwrap());
        }
        _ => {}
    }
}

/// JSON values biased towards the keys the normalizers read.
fn json_value() -> impl Strategy<Value = serde_json::Value> {
    let keys = proptest::sample::select(
        &[
            "action",
            "ref",
            "after",
            "before",
            "repository",
            "full_name",
            "clone_url",
            "sender",
            "login",
            "number",
            "pull_request",
            "head",
            "base",
            "sha",
            "repo",
            "id",
            "merged",
            "issue",
            "comment",
            "body",
            "object_kind",
            "object_attributes",
            "project",
            "path_with_namespace",
            "git_http_url",
            "user",
            "username",
            "iid",
            "noteable_type",
            "merge_request",
            "last_commit",
            "commits",
            "user_username",
            "is_pull",
            "oldrev",
        ][..],
    );
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<u64>().prop_map(serde_json::Value::from),
        proptest::sample::select(
            &[
                "push",
                "opened",
                "closed",
                "update",
                "refs/heads/a",
                "refs/tags/b",
                "0000",
                "Issue",
                "MergeRequest",
                "note",
                "merge_request",
                "tag_push"
            ][..]
        )
        .prop_map(serde_json::Value::from),
    ];
    leaf.prop_recursive(4, 64, 8, move |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::from),
            proptest::collection::btree_map(keys.clone(), inner, 0..8)
                .prop_map(|map| serde_json::Value::Object(map.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())),
        ]
    })
}
