//! Signature checks over the raw request bytes, in constant time.
//!
//! - GitHub: `X-Hub-Signature-256: sha256=<hex HMAC-SHA256(secret, body)>`.
//! - Gitea: `X-Gitea-Signature: <hex>`; Forgejo: `X-Forgejo-Signature: <hex>`, else the
//!   `X-Gitea-Signature` it also sends.
//! - GitLab: `X-Gitlab-Token: <secret>` compared in constant time; or, when the configured secret
//!   is a signing token (`whsec_<base64>`) or only a signature was sent, the Standard Webhooks
//!   signature `webhook-signature: v1,<base64 HMAC-SHA256(key, "{webhook-id}.{webhook-timestamp}.{body}")>`
//!   (several space-separated entries allowed) with `webhook-timestamp` within 5 minutes.
//!
//! A source with a secret rejects a missing or empty signature (Gitea sends empty signature
//! headers when it has no secret). No secret configured: `Ok` (the server warns). Errors name
//! what is wrong and never echo the secret.

use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use http::HeaderMap;
use sha2::Sha256;
use subtle::ConstantTimeEq;

use super::Provider;

type HmacSha256 = Hmac<Sha256>;

/// How far `webhook-timestamp` may be from the clock, either way, in seconds.
pub const TIMESTAMP_TOLERANCE_SECS: u64 = 300;

/// Why a delivery's signature was refused; the message names the header, never the secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// The configured secret is the empty string (a missing environment variable, most often).
    #[error("the configured webhook secret is empty")]
    EmptySecret,
    /// The configured GitLab signing token starts with `whsec_` but the rest is not base64.
    #[error("the configured GitLab signing token is not `whsec_` followed by base64")]
    InvalidSigningToken,
    /// The signature header is absent.
    #[error("missing {0} header")]
    MissingHeader(&'static str),
    /// The signature header is present but empty (Gitea without a secret).
    #[error("empty {0} header")]
    EmptyHeader(&'static str),
    /// The header is not in the forge's format.
    #[error("malformed {header} header: {reason}")]
    Malformed {
        /// The header's name.
        header: &'static str,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The HMAC does not match the body.
    #[error("signature does not match ({0})")]
    Mismatch(&'static str),
    /// `X-Gitlab-Token` is not the configured secret.
    #[error("X-Gitlab-Token does not match the configured secret")]
    TokenMismatch,
    /// `webhook-timestamp` is more than five minutes from the clock.
    #[error("webhook-timestamp is more than 5 minutes from the server clock (replayed or clock skew)")]
    StaleTimestamp,
}

/// Checks a delivery's signature against the source's secret, using the system clock.
pub fn verify(
    provider: Provider,
    headers: &HeaderMap,
    raw_body: &[u8],
    secret: Option<&str>,
) -> Result<(), SignatureError> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    verify_at(provider, headers, raw_body, secret, now)
}

/// Like [`verify`], with the current time given as Unix seconds (for tests and replays).
pub fn verify_at(
    provider: Provider,
    headers: &HeaderMap,
    raw_body: &[u8],
    secret: Option<&str>,
    now: u64,
) -> Result<(), SignatureError> {
    let Some(secret) = secret else { return Ok(()) };
    if secret.is_empty() {
        return Err(SignatureError::EmptySecret);
    }
    match provider {
        Provider::Github => {
            let value = required(headers, &["X-Hub-Signature-256"])?;
            let hex = value.strip_prefix("sha256=").ok_or(SignatureError::Malformed {
                header: "X-Hub-Signature-256",
                reason: "expected sha256=<hex>",
            })?;
            check_hex_hmac("X-Hub-Signature-256", hex, secret.as_bytes(), raw_body)
        }
        Provider::Gitea => {
            let value = required(headers, &["X-Gitea-Signature"])?;
            check_hex_hmac("X-Gitea-Signature", value, secret.as_bytes(), raw_body)
        }
        Provider::Forgejo => {
            let names = ["X-Forgejo-Signature", "X-Gitea-Signature"];
            let value = required(headers, &names)?;
            let name = if non_empty(headers, names[0]).is_some() {
                names[0]
            } else {
                names[1]
            };
            check_hex_hmac(name, value, secret.as_bytes(), raw_body)
        }
        Provider::Gitlab => verify_gitlab(headers, raw_body, secret, now),
    }
}

/// GitLab: a `whsec_` secret, or a delivery with only `webhook-signature`, is checked as a
/// Standard Webhooks signature; otherwise `X-Gitlab-Token` must equal the secret.
fn verify_gitlab(headers: &HeaderMap, body: &[u8], secret: &str, now: u64) -> Result<(), SignatureError> {
    let has_token = headers.contains_key("x-gitlab-token");
    let has_signature = headers.contains_key("webhook-signature");
    if secret.starts_with("whsec_") || (has_signature && !has_token) {
        return verify_standard_webhook(headers, body, &signing_key(secret)?, now);
    }
    let token = required(headers, &["X-Gitlab-Token"])?;
    if bool::from(token.as_bytes().ct_eq(secret.as_bytes())) {
        Ok(())
    } else {
        Err(SignatureError::TokenMismatch)
    }
}

/// The HMAC key of a Standard Webhooks secret: base64 after an optional `whsec_` prefix; an
/// unprefixed secret that is not base64 is used as raw bytes.
fn signing_key(secret: &str) -> Result<Vec<u8>, SignatureError> {
    match secret.strip_prefix("whsec_") {
        Some(encoded) => STANDARD
            .decode(encoded)
            .map_err(|_| SignatureError::InvalidSigningToken),
        None => Ok(STANDARD.decode(secret).unwrap_or_else(|_| secret.as_bytes().to_vec())),
    }
}

fn verify_standard_webhook(headers: &HeaderMap, body: &[u8], key: &[u8], now: u64) -> Result<(), SignatureError> {
    let id = required(headers, &["webhook-id"])?;
    let timestamp = required(headers, &["webhook-timestamp"])?;
    let signatures = required(headers, &["webhook-signature"])?;
    let seconds: u64 = timestamp.parse().map_err(|_| SignatureError::Malformed {
        header: "webhook-timestamp",
        reason: "expected Unix seconds",
    })?;
    if seconds.abs_diff(now) > TIMESTAMP_TOLERANCE_SECS {
        return Err(SignatureError::StaleTimestamp);
    }
    let mut mac = new_mac(key);
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    let expected = mac.finalize().into_bytes();
    let mut saw_v1 = false;
    let mut matched = subtle::Choice::from(0u8);
    for entry in signatures.split(' ').filter(|entry| !entry.is_empty()) {
        let Some(encoded) = entry.strip_prefix("v1,") else {
            continue;
        };
        saw_v1 = true;
        if let Ok(candidate) = STANDARD.decode(encoded)
            && candidate.len() == expected.len()
        {
            matched |= candidate.as_slice().ct_eq(expected.as_slice());
        }
    }
    if !saw_v1 {
        return Err(SignatureError::Malformed {
            header: "webhook-signature",
            reason: "no v1,<base64> entry",
        });
    }
    if bool::from(matched) {
        Ok(())
    } else {
        Err(SignatureError::Mismatch("webhook-signature"))
    }
}

fn check_hex_hmac(header: &'static str, hex_value: &str, key: &[u8], body: &[u8]) -> Result<(), SignatureError> {
    let given = hex::decode(hex_value.trim()).map_err(|_| SignatureError::Malformed {
        header,
        reason: "expected hex",
    })?;
    let mut mac = new_mac(key);
    mac.update(body);
    mac.verify_slice(&given).map_err(|_| SignatureError::Mismatch(header))
}

fn new_mac(key: &[u8]) -> HmacSha256 {
    <HmacSha256 as Mac>::new_from_slice(key).expect("HMAC takes keys of any length")
}

/// The first of `names` that is present and non-empty; else which one is missing or empty.
fn required<'h>(headers: &'h HeaderMap, names: &[&'static str]) -> Result<&'h str, SignatureError> {
    if let Some(value) = names.iter().find_map(|name| non_empty(headers, name)) {
        return value.to_str().map_err(|_| SignatureError::Malformed {
            header: names[0],
            reason: "not visible ASCII",
        });
    }
    match names.iter().find(|name| headers.contains_key(**name)) {
        Some(name) => Err(SignatureError::EmptyHeader(name)),
        None => Err(SignatureError::MissingHeader(names[0])),
    }
}

fn non_empty<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h http::HeaderValue> {
    headers
        .get(name)
        .filter(|value| !value.as_bytes().iter().all(u8::is_ascii_whitespace))
}

/// The hex HMAC-SHA256 of `body` under `secret`, as Gitea, Forgejo and GitHub (after `sha256=`) send it.
pub fn hex_hmac_sha256(secret: &[u8], body: &[u8]) -> String {
    let mut mac = new_mac(secret);
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

#[cfg(test)]
#[path = "signature_tests.rs"]
mod tests;
