//! Which plugin files the operator trusts: `[plugins.pins]` (a step type's file must have this
//! SHA-256), `[plugins] replace_builtin` (built-ins a file may replace without a pin) and
//! `[plugins] trusted_keys` (every file must carry a detached minisign signature by one of
//! these keys). Pure: the catalog reads the files and hands their bytes to [`PluginTrust::vet`]
//! before anything is compiled.

use std::collections::{BTreeMap, BTreeSet};

use base64::Engine as _;
use sha2::{Digest, Sha256};

use super::PolicyError;

/// What a plugin file's detached signature is called: `<step_type>.wasm.minisig`, minisign's
/// own default name.
pub const SIGNATURE_SUFFIX: &str = ".minisig";

/// Largest signature file read; a minisign signature is a few hundred bytes.
pub const MAX_SIGNATURE_BYTES: usize = 16 << 10;

/// The operator's trust settings, parsed and ready for checks. The default pins nothing,
/// trusts no key (signatures not required) and lets no file replace a built-in unpinned.
#[derive(Debug, Clone, Default)]
pub struct PluginTrust {
    /// Step type → lowercase hex SHA-256.
    pins: BTreeMap<String, String>,
    replace_builtin: BTreeSet<String>,
    keys: Vec<TrustedKey>,
}

#[derive(Debug, Clone)]
struct TrustedKey {
    /// minisign's key id, as `minisign` prints it (16 uppercase hex digits).
    id: String,
    key: minisign_verify::PublicKey,
}

/// A plugin file about to be loaded, as the checks see it.
#[derive(Debug, Clone, Copy)]
pub struct Candidate<'a> {
    /// The step type it would serve (its file name without `.wasm`).
    pub step_type: &'a str,
    /// The file, for messages.
    pub file: &'a str,
    /// Whether a built-in of that step type exists, which the file would replace.
    pub replaces_builtin: bool,
    /// The component's bytes, exactly as they will be loaded.
    pub wasm: &'a [u8],
    /// The bytes of `<file>.minisig`, or none when there is no such file.
    pub signature: Option<&'a [u8]>,
}

/// What the checks established about a file that passed them.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Vetted {
    /// Its digest matched a `[plugins.pins]` entry.
    pub pinned: bool,
    /// The id of the trusted key whose signature verified, when keys are configured.
    pub signed_by: Option<String>,
}

/// Why a plugin file is not trusted. Each message says what to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TrustError {
    /// A file named like a built-in, neither pinned nor allowed by `replace_builtin`.
    #[error(
        "plugin `{plugin}`: `{file}` would replace the built-in step `{plugin}`, and the config does not approve that; to use this file pin it:\n\n[plugins.pins]\n{plugin} = \"sha256:{actual}\"\n\n(or allow any file for it with `[plugins] replace_builtin = [\"{plugin}\"]`); to keep the built-in, remove the file"
    )]
    UnapprovedReplacement {
        /// The step type.
        plugin: String,
        /// The file.
        file: String,
        /// The file's SHA-256, hex.
        actual: String,
    },
    /// The file's digest is not the pinned one.
    #[error(
        "plugin `{plugin}`: `{file}` does not match its pin: [plugins.pins] says `{plugin} = \"sha256:{pinned}\"`, the file is sha256:{actual}; if this file is the one you meant to install, re-pin it with `{plugin} = \"sha256:{actual}\"`, otherwise put the pinned file back"
    )]
    PinMismatch {
        /// The step type.
        plugin: String,
        /// The file.
        file: String,
        /// The pinned SHA-256, hex.
        pinned: String,
        /// The file's SHA-256, hex.
        actual: String,
    },
    /// Keys are configured and the file has no signature.
    #[error(
        "plugin `{plugin}`: `{file}` is not signed: [plugins] trusted_keys is set, so every plugin file needs a minisign signature `{file}.minisig` by one of those keys (`minisign -S -m {file}`)"
    )]
    Unsigned {
        /// The step type.
        plugin: String,
        /// The file.
        file: String,
    },
    /// The signature is malformed, by an untrusted key, or not over these bytes.
    #[error("plugin `{plugin}`: the signature `{file}.minisig` does not verify: {reason}")]
    BadSignature {
        /// The step type.
        plugin: String,
        /// The signed file.
        file: String,
        /// What is wrong, and what to do.
        reason: String,
    },
}

impl PluginTrust {
    /// Parses `[plugins.pins]` (step type → `sha256:<64 hex>`), `replace_builtin` (step
    /// types) and `trusted_keys` (minisign public keys: the base64 line of a `.pub` file, or
    /// the whole file).
    pub fn new(
        pins: &BTreeMap<String, String>,
        replace_builtin: &[String],
        trusted_keys: &[String],
    ) -> Result<PluginTrust, PolicyError> {
        let pins = pins
            .iter()
            .map(|(plugin, pin)| Ok((plugin.clone(), parse_pin(plugin, pin)?)))
            .collect::<Result<_, PolicyError>>()?;
        let keys = trusted_keys
            .iter()
            .enumerate()
            .map(|(index, key)| parse_key(index, key))
            .collect::<Result<_, PolicyError>>()?;
        Ok(PluginTrust {
            pins,
            replace_builtin: replace_builtin.iter().cloned().collect(),
            keys,
        })
    }

    /// Whether plugin files must be signed.
    pub fn wants_signatures(&self) -> bool {
        !self.keys.is_empty()
    }

    /// The step types `replace_builtin` names.
    pub fn replace_builtin(&self) -> impl Iterator<Item = &str> {
        self.replace_builtin.iter().map(String::as_str)
    }

    /// Checks a plugin file before it is compiled: a replacement of a built-in must be
    /// pinned or allowed, a pinned file must match its pin, and with trusted keys its
    /// signature must verify with one of them. Digests are public, so they are compared
    /// plainly.
    pub fn vet(&self, c: &Candidate<'_>) -> Result<Vetted, TrustError> {
        let actual = hex::encode(Sha256::digest(c.wasm));
        let pin = self.pins.get(c.step_type);
        if c.replaces_builtin && pin.is_none() && !self.replace_builtin.contains(c.step_type) {
            return Err(TrustError::UnapprovedReplacement {
                plugin: c.step_type.into(),
                file: c.file.into(),
                actual,
            });
        }
        if let Some(pinned) = pin
            && *pinned != actual
        {
            return Err(TrustError::PinMismatch {
                plugin: c.step_type.into(),
                file: c.file.into(),
                pinned: pinned.clone(),
                actual,
            });
        }
        let signed_by = if self.wants_signatures() {
            Some(self.verify_signature(c)?)
        } else {
            None
        };
        Ok(Vetted {
            pinned: pin.is_some(),
            signed_by,
        })
    }

    /// The id of the trusted key whose signature over `c.wasm` verifies.
    fn verify_signature(&self, c: &Candidate<'_>) -> Result<String, TrustError> {
        let bad = |reason: String| TrustError::BadSignature {
            plugin: c.step_type.into(),
            file: c.file.into(),
            reason,
        };
        let Some(bytes) = c.signature else {
            return Err(TrustError::Unsigned {
                plugin: c.step_type.into(),
                file: c.file.into(),
            });
        };
        let not_minisign = || bad("it is not a minisign signature file; sign the file again with `minisign -S`".into());
        let text = std::str::from_utf8(bytes).map_err(|_| not_minisign())?;
        let signature = minisign_verify::Signature::decode(text).map_err(|_| not_minisign())?;
        let signer = signature_key_id(text).ok_or_else(not_minisign)?;
        let Some(key) = self.keys.iter().find(|k| k.id == signer) else {
            let trusted: Vec<&str> = self.keys.iter().map(|k| k.id.as_str()).collect();
            return Err(bad(format!(
                "it was made by key {signer}, which is not in [plugins] trusted_keys (trusted: {}); sign with a trusted key or add the signer's public key",
                trusted.join(", ")
            )));
        };
        match key.key.verify(c.wasm, &signature, false) {
            Ok(()) => Ok(key.id.clone()),
            Err(minisign_verify::Error::UnexpectedAlgorithm) => Err(bad(
                "it is a legacy (not prehashed) signature; sign again with a current minisign (`minisign -S`)".into(),
            )),
            Err(_) => Err(bad(format!(
                "it does not match the file's contents (signed by trusted key {signer}): the file was changed after it was signed; replace it with the signed file, or sign this one if you trust it"
            ))),
        }
    }
}

fn parse_pin(plugin: &str, pin: &str) -> Result<String, PolicyError> {
    let bad = |reason: &str| PolicyError::BadPin {
        plugin: plugin.into(),
        pin: pin.into(),
        reason: reason.into(),
    };
    let digest = pin
        .trim()
        .strip_prefix("sha256:")
        .ok_or_else(|| bad("it does not start with `sha256:`"))?;
    if digest.len() != 64 || !digest.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(bad("the digest is not 64 hex digits"));
    }
    Ok(digest.to_ascii_lowercase())
}

fn parse_key(index: usize, text: &str) -> Result<TrustedKey, PolicyError> {
    let bad = |reason: String| PolicyError::BadTrustedKey {
        index,
        key: text.trim().into(),
        reason,
    };
    let text = text.trim();
    // The whole `.pub` file (comment line, key line) or just its key line.
    let line = text.lines().map(str::trim).rfind(|l| !l.is_empty()).unwrap_or_default();
    let key = minisign_verify::PublicKey::from_base64(line).map_err(|e| bad(e.to_string()))?;
    let id = key_id(line, 2).ok_or_else(|| bad("too short".into()))?;
    Ok(TrustedKey { id, key })
}

/// The key id of a signature file: bytes 2..10 of its second line.
fn signature_key_id(text: &str) -> Option<String> {
    key_id(text.lines().nth(1)?, 2)
}

/// minisign's printed key id (a little-endian u64 in hex) at `at` in a base64 line.
fn key_id(base64_line: &str, at: usize) -> Option<String> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(base64_line.trim())
        .ok()?;
    let id: [u8; 8] = bytes.get(at..at + 8)?.try_into().ok()?;
    Some(format!("{:016X}", u64::from_le_bytes(id)))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// minisign's own example key and its signature of `test` (from minisign-verify's docs).
    const KEY: &str = "RWQf6LRCGA9i53mlYecO4IzT51TGPpvWucNSCh1CBM0QTaLn73Y7GFO3";
    const SIG: &str = "untrusted comment: signature from minisign secret key
RUQf6LRCGA9i559r3g7V1qNyJDApGip8MfqcadIgT9CuhV3EMhHoN1mGTkUidF/z7SrlQgXdy8ofjb7bNJJylDOocrCo8KLzZwo=
trusted comment: timestamp:1633700835\tfile:test\tprehashed
wLMDjy9FLAuxZ3q4NlEvkgtyhrr0gtTu6KC4KBJdITbbOeAi1zBIYo0v4iTgt8jJpIidRJnp94ABQkJAgAooBQ==
";

    fn candidate<'a>(wasm: &'a [u8], signature: Option<&'a [u8]>) -> Candidate<'a> {
        Candidate {
            step_type: "hello",
            file: "plugins/hello.wasm",
            replaces_builtin: false,
            wasm,
            signature,
        }
    }

    fn sha(bytes: &[u8]) -> String {
        hex::encode(Sha256::digest(bytes))
    }

    fn trust(pins: &[(&str, String)], replace: &[&str], keys: &[&str]) -> PluginTrust {
        let pins = pins.iter().map(|(k, v)| (k.to_string(), v.clone())).collect();
        let replace: Vec<String> = replace.iter().map(|s| s.to_string()).collect();
        let keys: Vec<String> = keys.iter().map(|s| s.to_string()).collect();
        PluginTrust::new(&pins, &replace, &keys).unwrap()
    }

    #[test]
    fn a_pin_must_match_and_the_message_has_both_digests() {
        let pinned = sha(b"good");
        let t = trust(&[("hello", format!("sha256:{}", pinned.to_uppercase()))], &[], &[]);
        assert!(t.vet(&candidate(b"good", None)).unwrap().pinned);
        let err = t.vet(&candidate(b"evil", None)).unwrap_err().to_string();
        assert!(err.contains(&pinned) && err.contains(&sha(b"evil")), "{err}");
        assert!(err.contains("re-pin it"), "{err}");
    }

    #[test]
    fn a_replacement_of_a_builtin_needs_a_pin_or_approval() {
        let replacing = Candidate {
            step_type: "run_command",
            replaces_builtin: true,
            ..candidate(b"code", None)
        };
        let err = PluginTrust::default().vet(&replacing).unwrap_err();
        assert!(matches!(err, TrustError::UnapprovedReplacement { .. }), "{err}");
        assert!(
            err.to_string()
                .contains(&format!("run_command = \"sha256:{}\"", sha(b"code")))
        );
        assert!(trust(&[], &["run_command"], &[]).vet(&replacing).is_ok());
        let pinned = trust(&[("run_command", format!("sha256:{}", sha(b"code")))], &[], &[]);
        assert!(pinned.vet(&replacing).unwrap().pinned);
        // Allowed to replace, but pinned to other bytes: the pin wins.
        let both = trust(
            &[("run_command", format!("sha256:{}", sha(b"x")))],
            &["run_command"],
            &[],
        );
        assert!(matches!(both.vet(&replacing), Err(TrustError::PinMismatch { .. })));
    }

    #[test]
    fn with_trusted_keys_a_signature_must_verify() {
        let t = trust(&[], &[], &[KEY]);
        let ok = t.vet(&candidate(b"test", Some(SIG.as_bytes()))).unwrap();
        assert_eq!(ok.signed_by.as_deref(), Some("E7620F1842B4E81F"));
        let tampered = t
            .vet(&candidate(b"tesT", Some(SIG.as_bytes())))
            .unwrap_err()
            .to_string();
        assert!(tampered.contains("does not match the file's contents"), "{tampered}");
        let missing = t.vet(&candidate(b"test", None)).unwrap_err();
        assert!(matches!(missing, TrustError::Unsigned { .. }), "{missing}");
        let garbage = t
            .vet(&candidate(b"test", Some(b"\xff not a signature")))
            .unwrap_err()
            .to_string();
        assert!(garbage.contains("not a minisign signature"), "{garbage}");
        // No keys: no signature needed.
        assert_eq!(
            PluginTrust::default().vet(&candidate(b"x", None)),
            Ok(Vetted::default())
        );
    }

    #[test]
    fn a_signature_by_another_key_names_it() {
        // Same key bytes, another id: the signature's key is not trusted.
        let mut other = base64::engine::general_purpose::STANDARD.decode(KEY).unwrap();
        other[2] ^= 1;
        let other = base64::engine::general_purpose::STANDARD.encode(other);
        let t = trust(&[], &[], &[&other]);
        let err = t
            .vet(&candidate(b"test", Some(SIG.as_bytes())))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("made by key E7620F1842B4E81F, which is not in [plugins] trusted_keys"),
            "{err}"
        );
    }

    #[test]
    fn bad_pins_and_keys_are_config_errors() {
        let pins = |pin: &str| [("hello".to_string(), pin.to_string())].into();
        for pin in ["abc", "sha256:xyz", &format!("sha1:{}", "0".repeat(64))] {
            let err = PluginTrust::new(&pins(pin), &[], &[]).unwrap_err();
            assert!(matches!(err, PolicyError::BadPin { .. }), "{pin}: {err}");
        }
        let err = PluginTrust::new(&BTreeMap::new(), &[], &["not a key".into()]).unwrap_err();
        assert!(err.to_string().contains("trusted_keys entry 0"), "{err}");
        let file = format!("untrusted comment: minisign public key\n{KEY}\n");
        assert!(PluginTrust::new(&BTreeMap::new(), &[], &[file]).is_ok());
    }
}
