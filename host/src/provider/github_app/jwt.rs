//! The JWT a GitHub App authenticates as itself with: RS256 over `{iat, exp, iss}`, signed
//! with the App's private key (the PEM GitHub lets you download), valid for at most ten minutes.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::Serialize;

use crate::secret::Secret;

/// How far back `iat` is set, for a server clock a little ahead of GitHub's.
pub const CLOCK_DRIFT: Duration = Duration::from_secs(60);
/// How long a JWT is valid after it is made; GitHub refuses `exp` more than ten minutes ahead.
pub const LIFETIME: Duration = Duration::from_secs(9 * 60);

/// A private key that cannot sign JWTs.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// Not an RSA private key in PEM (PKCS#1 `RSA PRIVATE KEY` or PKCS#8 `PRIVATE KEY`).
    #[error("the private key is not an RSA private key in PEM form: {0}")]
    NotRsaPem(String),
    /// Signing failed.
    #[error("cannot sign the App's JWT: {0}")]
    Sign(String),
}

/// A GitHub App's id and private key; `Debug` shows only the id.
#[derive(Clone)]
pub struct AppKey {
    app_id: String,
    key: EncodingKey,
}

impl std::fmt::Debug for AppKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppKey")
            .field("app_id", &self.app_id)
            .finish_non_exhaustive()
    }
}

#[derive(Serialize)]
struct Claims<'a> {
    iat: u64,
    exp: u64,
    iss: &'a str,
}

impl AppKey {
    /// The key of App `app_id` (its numeric App ID or its client ID) from `pem`.
    pub fn new(app_id: &str, pem: &Secret) -> Result<AppKey, KeyError> {
        let key = EncodingKey::from_rsa_pem(pem.expose().as_bytes()).map_err(|e| KeyError::NotRsaPem(e.to_string()))?;
        let key = AppKey {
            app_id: app_id.to_string(),
            key,
        };
        // The PEM is only decoded above: a public key passes until it is used to sign.
        key.sign(UNIX_EPOCH).map_err(|e| KeyError::NotRsaPem(e.to_string()))?;
        Ok(key)
    }

    /// The App's id, as `iss` carries it.
    pub fn app_id(&self) -> &str {
        &self.app_id
    }

    /// A JWT made at `now`: `iat` = now − [`CLOCK_DRIFT`], `exp` = now + [`LIFETIME`].
    pub fn sign(&self, now: SystemTime) -> Result<Secret, KeyError> {
        let secs = now.duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
        let claims = Claims {
            iat: secs.saturating_sub(CLOCK_DRIFT.as_secs()),
            exp: secs + LIFETIME.as_secs(),
            iss: &self.app_id,
        };
        jsonwebtoken::encode(&Header::new(Algorithm::RS256), &claims, &self.key)
            .map(Secret::new)
            .map_err(|e| KeyError::Sign(e.to_string()))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A throwaway 2048-bit RSA key pair made for these tests only; it guards nothing.
    pub(crate) const TEST_PRIVATE_KEY: &str = include_str!("../../../../tests/it/fakes/github/test_app_key.pem");
    /// The public half of [`TEST_PRIVATE_KEY`].
    pub(crate) const TEST_PUBLIC_KEY: &str = include_str!("../../../../tests/it/fakes/github/test_app_key.pub.pem");

    #[test]
    fn the_jwt_is_rs256_with_iat_a_minute_back_and_exp_within_ten_minutes() {
        let key = AppKey::new("12345", &Secret::new(TEST_PRIVATE_KEY)).unwrap();
        let now = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let jwt = key.sign(now).unwrap();
        let header = jsonwebtoken::decode_header(jwt.expose()).unwrap();
        assert_eq!(header.alg, Algorithm::RS256);
        let mut validation = jsonwebtoken::Validation::new(Algorithm::RS256);
        validation.validate_exp = false;
        validation.set_required_spec_claims(&["iat", "exp", "iss"]);
        validation.set_issuer(&["12345"]);
        let decoding = jsonwebtoken::DecodingKey::from_rsa_pem(TEST_PUBLIC_KEY.as_bytes()).unwrap();
        let claims = jsonwebtoken::decode::<serde_json::Value>(jwt.expose(), &decoding, &validation)
            .unwrap()
            .claims;
        assert_eq!(claims["iat"], 1_700_000_000 - 60);
        assert_eq!(claims["exp"], 1_700_000_000 + 540);
        assert_eq!(claims["iss"], "12345");
        assert!(!format!("{key:?}").contains("PRIVATE"));
    }

    #[test]
    fn a_key_that_is_not_rsa_pem_is_refused() {
        for bad in [
            "",
            "not a key",
            "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n",
        ] {
            assert!(
                matches!(AppKey::new("1", &Secret::new(bad)), Err(KeyError::NotRsaPem(_))),
                "{bad}"
            );
        }
        assert!(AppKey::new("1", &Secret::new(TEST_PUBLIC_KEY)).is_err());
    }
}
