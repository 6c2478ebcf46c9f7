//! Unit tests of the signature checks: published test vectors, missing and empty headers, replays.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use http::{HeaderMap, HeaderValue};

use super::*;

const SECRET: &str = "It's a Secret to Everybody";
const BODY: &[u8] = b"Hello, World!";
/// GitHub's documented example: HMAC-SHA256 of `Hello, World!` under `It's a Secret to Everybody`.
const GITHUB_VECTOR: &str = "757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";

fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in pairs {
        map.append(*name, HeaderValue::from_str(value).unwrap());
    }
    map
}

fn check(provider: Provider, pairs: &[(&'static str, &str)], secret: Option<&str>) -> Result<(), SignatureError> {
    verify(provider, &headers(pairs), BODY, secret)
}

#[test]
fn github_documented_test_vector() {
    assert_eq!(hex_hmac_sha256(SECRET.as_bytes(), BODY), GITHUB_VECTOR);
    let sig = format!("sha256={GITHUB_VECTOR}");
    assert_eq!(
        check(Provider::Github, &[("X-Hub-Signature-256", &sig)], Some(SECRET)),
        Ok(())
    );
    let upper = format!("sha256={}", GITHUB_VECTOR.to_uppercase());
    assert_eq!(
        check(Provider::Github, &[("x-hub-signature-256", &upper)], Some(SECRET)),
        Ok(())
    );
}

#[test]
fn github_rejects_wrong_body_secret_and_format() {
    let sig = format!("sha256={GITHUB_VECTOR}");
    let pairs = [("X-Hub-Signature-256", sig.as_str())];
    let mismatch = Err(SignatureError::Mismatch("X-Hub-Signature-256"));
    assert_eq!(
        verify(Provider::Github, &headers(&pairs), b"Hello, World?", Some(SECRET)),
        mismatch
    );
    assert_eq!(check(Provider::Github, &pairs, Some("another secret")), mismatch);
    let bare = check(
        Provider::Github,
        &[("X-Hub-Signature-256", GITHUB_VECTOR)],
        Some(SECRET),
    );
    assert!(matches!(
        bare,
        Err(SignatureError::Malformed {
            header: "X-Hub-Signature-256",
            ..
        })
    ));
    let not_hex = check(Provider::Github, &[("X-Hub-Signature-256", "sha256=zz")], Some(SECRET));
    assert!(matches!(
        not_hex,
        Err(SignatureError::Malformed {
            reason: "expected hex",
            ..
        })
    ));
    assert_eq!(
        check(
            Provider::Github,
            &[("X-Hub-Signature-256", "sha256=abcd")],
            Some(SECRET)
        ),
        mismatch
    );
}

#[test]
fn missing_signature_is_named_in_the_error() {
    let err = check(Provider::Github, &[("X-Hub-Signature", "sha1=00")], Some(SECRET)).unwrap_err();
    assert_eq!(err.to_string(), "missing X-Hub-Signature-256 header");
    let err = check(Provider::Gitea, &[], Some(SECRET)).unwrap_err();
    assert_eq!(err.to_string(), "missing X-Gitea-Signature header");
    let err = check(Provider::Gitlab, &[], Some(SECRET)).unwrap_err();
    assert_eq!(err.to_string(), "missing X-Gitlab-Token header");
}

#[test]
fn gitea_empty_signature_is_rejected_when_a_secret_is_configured() {
    let pairs = [("X-Gitea-Signature", ""), ("X-Hub-Signature-256", "")];
    assert_eq!(
        check(Provider::Gitea, &pairs, Some(SECRET)),
        Err(SignatureError::EmptyHeader("X-Gitea-Signature"))
    );
    assert_eq!(check(Provider::Gitea, &pairs, None), Ok(()));
}

#[test]
fn gitea_uses_its_own_header_not_githubs() {
    let good = [("X-Gitea-Signature", GITHUB_VECTOR)];
    assert_eq!(check(Provider::Gitea, &good, Some(SECRET)), Ok(()));
    let github_only = format!("sha256={GITHUB_VECTOR}");
    let only_hub = [("X-Hub-Signature-256", github_only.as_str())];
    assert_eq!(
        check(Provider::Gitea, &only_hub, Some(SECRET)),
        Err(SignatureError::MissingHeader("X-Gitea-Signature"))
    );
}

#[test]
fn forgejo_accepts_either_of_its_signature_headers() {
    assert_eq!(
        check(
            Provider::Forgejo,
            &[("X-Forgejo-Signature", GITHUB_VECTOR)],
            Some(SECRET)
        ),
        Ok(())
    );
    assert_eq!(
        check(Provider::Forgejo, &[("X-Gitea-Signature", GITHUB_VECTOR)], Some(SECRET)),
        Ok(())
    );
    let empty_then_gitea = [("X-Forgejo-Signature", ""), ("X-Gitea-Signature", GITHUB_VECTOR)];
    assert_eq!(check(Provider::Forgejo, &empty_then_gitea, Some(SECRET)), Ok(()));
    let both_empty = [("X-Forgejo-Signature", ""), ("X-Gitea-Signature", "")];
    assert_eq!(
        check(Provider::Forgejo, &both_empty, Some(SECRET)),
        Err(SignatureError::EmptyHeader("X-Forgejo-Signature"))
    );
    let wrong = [("X-Forgejo-Signature", &"0".repeat(64) as &str)];
    assert_eq!(
        check(Provider::Forgejo, &wrong, Some(SECRET)),
        Err(SignatureError::Mismatch("X-Forgejo-Signature"))
    );
}

#[test]
fn no_secret_accepts_anything_and_an_empty_secret_nothing() {
    for provider in [Provider::Github, Provider::Gitea, Provider::Forgejo, Provider::Gitlab] {
        assert_eq!(check(provider, &[], None), Ok(()));
        assert_eq!(check(provider, &[], Some("")), Err(SignatureError::EmptySecret));
    }
}

#[test]
fn gitlab_token_is_compared_whole() {
    assert_eq!(
        check(Provider::Gitlab, &[("X-Gitlab-Token", SECRET)], Some(SECRET)),
        Ok(())
    );
    let prefix = &SECRET[..SECRET.len() - 1];
    assert_eq!(
        check(Provider::Gitlab, &[("X-Gitlab-Token", prefix)], Some(SECRET)),
        Err(SignatureError::TokenMismatch)
    );
    let longer = format!("{SECRET}x");
    assert_eq!(
        check(Provider::Gitlab, &[("X-Gitlab-Token", &longer)], Some(SECRET)),
        Err(SignatureError::TokenMismatch)
    );
    assert_eq!(
        check(Provider::Gitlab, &[("X-Gitlab-Token", "")], Some(SECRET)),
        Err(SignatureError::EmptyHeader("X-Gitlab-Token"))
    );
}

#[test]
fn errors_never_echo_the_secret() {
    let cases = [
        check(Provider::Gitlab, &[("X-Gitlab-Token", "It's a Secret")], Some(SECRET)),
        check(Provider::Github, &[("X-Hub-Signature-256", "sha256=00")], Some(SECRET)),
        check(Provider::Gitlab, &[("webhook-signature", "v1,AA==")], Some("whsec_@@@")),
    ];
    for result in cases {
        let message = result.unwrap_err().to_string();
        assert!(!message.contains("Secret") && !message.contains("@@@"), "{message}");
    }
}

// Standard Webhooks' published example (also in the svix libraries' tests).
const SW_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const SW_ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
const SW_TIMESTAMP: u64 = 1_614_265_330;
const SW_BODY: &[u8] = br#"{"test": 2432232314}"#;
const SW_SIGNATURE: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

fn standard(signature: &str, secret: &str, now: u64) -> Result<(), SignatureError> {
    let ts = SW_TIMESTAMP.to_string();
    let map = headers(&[
        ("webhook-id", SW_ID),
        ("webhook-timestamp", &ts),
        ("webhook-signature", signature),
    ]);
    verify_at(Provider::Gitlab, &map, SW_BODY, Some(secret), now)
}

#[test]
fn gitlab_signing_token_matches_the_standard_webhooks_vector() {
    assert_eq!(standard(SW_SIGNATURE, SW_SECRET, SW_TIMESTAMP), Ok(()));
    // The same key without the prefix, as some operators paste it.
    assert_eq!(standard(SW_SIGNATURE, &SW_SECRET[6..], SW_TIMESTAMP + 10), Ok(()));
}

#[test]
fn gitlab_signature_list_needs_one_matching_v1_entry() {
    let list = format!("v1,Zm9v v2,{} {SW_SIGNATURE}", &SW_SIGNATURE[3..]);
    assert_eq!(standard(&list, SW_SECRET, SW_TIMESTAMP), Ok(()));
    let only_v2 = format!("v2,{}", &SW_SIGNATURE[3..]);
    assert!(matches!(
        standard(&only_v2, SW_SECRET, SW_TIMESTAMP),
        Err(SignatureError::Malformed { .. })
    ));
    let wrong = format!("v1,{}", STANDARD.encode([0u8; 32]));
    assert_eq!(
        standard(&wrong, SW_SECRET, SW_TIMESTAMP),
        Err(SignatureError::Mismatch("webhook-signature"))
    );
    let other_key = format!("whsec_{}", STANDARD.encode([7u8; 32]));
    assert_eq!(
        standard(SW_SIGNATURE, &other_key, SW_TIMESTAMP),
        Err(SignatureError::Mismatch("webhook-signature"))
    );
}

#[test]
fn gitlab_signature_outside_five_minutes_is_a_replay() {
    let limit = TIMESTAMP_TOLERANCE_SECS;
    assert_eq!(standard(SW_SIGNATURE, SW_SECRET, SW_TIMESTAMP + limit), Ok(()));
    assert_eq!(
        standard(SW_SIGNATURE, SW_SECRET, SW_TIMESTAMP + limit + 1),
        Err(SignatureError::StaleTimestamp)
    );
    assert_eq!(
        standard(SW_SIGNATURE, SW_SECRET, SW_TIMESTAMP - limit - 1),
        Err(SignatureError::StaleTimestamp)
    );
    // `verify` reads the real clock: a 2021 timestamp is long stale.
    let ts = SW_TIMESTAMP.to_string();
    let map = headers(&[
        ("webhook-id", SW_ID),
        ("webhook-timestamp", &ts),
        ("webhook-signature", SW_SIGNATURE),
    ]);
    assert_eq!(
        verify(Provider::Gitlab, &map, SW_BODY, Some(SW_SECRET)),
        Err(SignatureError::StaleTimestamp)
    );
}

#[test]
fn gitlab_signing_headers_must_all_be_present_and_sane() {
    let ts = SW_TIMESTAMP.to_string();
    let no_id = headers(&[("webhook-timestamp", &ts), ("webhook-signature", SW_SIGNATURE)]);
    let result = verify_at(Provider::Gitlab, &no_id, SW_BODY, Some(SW_SECRET), SW_TIMESTAMP);
    assert_eq!(result, Err(SignatureError::MissingHeader("webhook-id")));
    let bad_ts = headers(&[
        ("webhook-id", SW_ID),
        ("webhook-timestamp", "soon"),
        ("webhook-signature", SW_SIGNATURE),
    ]);
    let result = verify_at(Provider::Gitlab, &bad_ts, SW_BODY, Some(SW_SECRET), SW_TIMESTAMP);
    assert!(matches!(
        result,
        Err(SignatureError::Malformed {
            header: "webhook-timestamp",
            ..
        })
    ));
    assert_eq!(
        standard(SW_SIGNATURE, "whsec_not base64!", SW_TIMESTAMP),
        Err(SignatureError::InvalidSigningToken)
    );
}

#[test]
fn gitlab_with_a_signing_token_ignores_the_plain_token_header() {
    let ts = SW_TIMESTAMP.to_string();
    let map = headers(&[
        ("X-Gitlab-Token", "some other secret token"),
        ("webhook-id", SW_ID),
        ("webhook-timestamp", &ts),
        ("webhook-signature", SW_SIGNATURE),
    ]);
    assert_eq!(
        verify_at(Provider::Gitlab, &map, SW_BODY, Some(SW_SECRET), SW_TIMESTAMP),
        Ok(())
    );
    // With the plain token configured, the token decides even though a signature is present.
    let plain = verify_at(
        Provider::Gitlab,
        &map,
        SW_BODY,
        Some("some other secret token"),
        SW_TIMESTAMP,
    );
    assert_eq!(plain, Ok(()));
    let whsec_without_signature = headers(&[("X-Gitlab-Token", SW_SECRET)]);
    let result = verify_at(
        Provider::Gitlab,
        &whsec_without_signature,
        SW_BODY,
        Some(SW_SECRET),
        SW_TIMESTAMP,
    );
    assert_eq!(result, Err(SignatureError::MissingHeader("webhook-id")));
}
