//! Which plugin files are trusted, with real components in a temporary plugins directory:
//! `[plugins.pins]`, minisign signatures by `[plugins] trusted_keys`, and a file named like a
//! built-in, which needs a pin or `replace_builtin`. Every check runs again when a file changes.

use std::collections::BTreeMap;
use std::path::Path;

use powernode::catalog::{Catalog, CatalogError};
use powernode::policy::{Capability, GrantConfig, Grants, PluginTrust, TrustError};
use sha2::{Digest, Sha256};

use crate::harness::Harness;

fn sha256(path: &str) -> String {
    hex::encode(Sha256::digest(std::fs::read(path).unwrap()))
}

fn pins(entries: &[(&str, &str)]) -> BTreeMap<String, String> {
    entries
        .iter()
        .map(|(k, v)| (k.to_string(), format!("sha256:{v}")))
        .collect()
}

fn catalog(h: &Harness, dir: &Path, trust: PluginTrust) -> Catalog {
    Catalog::new(h.runtime.clone(), Grants::default(), Some(dir.into()))
        .with_trust(trust)
        .unwrap()
}

/// Replaces `dst` with a copy of `src` the way an operator would: write beside it, rename over.
fn install(src: &Path, dst: &Path) {
    let tmp = dst.with_extension("tmp");
    std::fs::copy(src, &tmp).unwrap();
    std::fs::rename(&tmp, dst).unwrap();
}

fn untrusted(result: Result<impl std::fmt::Debug, CatalogError>) -> TrustError {
    match result {
        Err(CatalogError::Untrusted(e)) => e,
        other => panic!("expected a trust refusal, got {other:?}"),
    }
}

#[tokio::test]
async fn a_pinned_plugin_loads_only_with_its_digest_also_after_a_hot_reload() {
    let h = Harness::new();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("hello.wasm");
    std::fs::copy(powernode_tests::HELLO, &file).unwrap();
    let good = sha256(powernode_tests::HELLO);
    let catalog = catalog(
        &h,
        dir.path(),
        PluginTrust::new(&pins(&[("hello", &good)]), &[], &[]).unwrap(),
    );
    let (plugin, vetted) = catalog.get_vetted("hello").await.unwrap();
    assert_eq!(plugin.sha256, good);
    assert!(vetted.pinned);

    // Replaced while the server runs by another component: refused at the next lookup.
    install(Path::new(powernode_tests::SPIN_LOOP), &file);
    let other = sha256(powernode_tests::SPIN_LOOP);
    let err = untrusted(catalog.get("hello").await);
    let message = err.to_string();
    assert!(matches!(err, TrustError::PinMismatch { .. }), "{message}");
    assert!(
        message.contains(&format!("sha256:{good}")) && message.contains(&format!("sha256:{other}")),
        "both digests: {message}"
    );
    assert!(
        message.contains("re-pin it") && message.contains("put the pinned file back"),
        "{message}"
    );

    // The pinned file put back: loaded again, no restart.
    install(Path::new(powernode_tests::HELLO), &file);
    assert_eq!(catalog.get("hello").await.unwrap().sha256, good);
}

#[tokio::test]
async fn a_wrong_pin_refuses_the_file_before_it_is_compiled() {
    let h = Harness::new();
    let dir = tempfile::tempdir().unwrap();
    // Not even a component: the pin is checked first, so the message is about the pin.
    std::fs::write(dir.path().join("hello.wasm"), b"not wasm").unwrap();
    let pinned = sha256(powernode_tests::HELLO);
    let catalog = catalog(
        &h,
        dir.path(),
        PluginTrust::new(&pins(&[("hello", &pinned)]), &[], &[]).unwrap(),
    );
    let message = untrusted(catalog.get("hello").await).to_string();
    assert!(message.contains(&pinned), "{message}");
    assert!(message.contains(&hex::encode(Sha256::digest(b"not wasm"))), "{message}");
}

/// A fresh minisign key pair: the public key's base64 line, and a signer.
fn key_pair() -> (String, impl Fn(&[u8]) -> String) {
    let kp = minisign::KeyPair::generate_unencrypted_keypair().unwrap();
    let public = kp.pk.to_base64();
    let sign = move |bytes: &[u8]| {
        minisign::sign(Some(&kp.pk), &kp.sk, std::io::Cursor::new(bytes), None, None)
            .unwrap()
            .into_string()
    };
    (public, sign)
}

#[tokio::test]
async fn with_trusted_keys_a_plugin_needs_a_good_signature() {
    let h = Harness::new();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("hello.wasm");
    let signature = dir.path().join("hello.wasm.minisig");
    let wasm = std::fs::read(powernode_tests::HELLO).unwrap();
    std::fs::write(&file, &wasm).unwrap();
    let (public, sign) = key_pair();
    let catalog = catalog(
        &h,
        dir.path(),
        PluginTrust::new(&BTreeMap::new(), &[], &[public]).unwrap(),
    );

    // No signature yet.
    let err = untrusted(catalog.get("hello").await);
    assert!(matches!(err, TrustError::Unsigned { .. }), "{err}");
    assert!(err.to_string().contains("hello.wasm.minisig"), "{err}");

    // Signed: loads, and says by which key.
    std::fs::write(&signature, sign(&wasm)).unwrap();
    let (_, vetted) = catalog.get_vetted("hello").await.unwrap();
    assert!(vetted.signed_by.is_some());

    // Tampered after signing: one bit of the last byte flipped.
    let mut tampered = wasm.clone();
    *tampered.last_mut().unwrap() ^= 0x01;
    std::fs::write(dir.path().join("tampered"), &tampered).unwrap();
    install(&dir.path().join("tampered"), &file);
    let err = untrusted(catalog.get("hello").await);
    assert!(matches!(err, TrustError::BadSignature { .. }), "{err}");
    assert!(err.to_string().contains("does not match the file's contents"), "{err}");

    // Signed by a key that is not trusted.
    install(Path::new(powernode_tests::HELLO), &file);
    let (_, stranger) = key_pair();
    std::fs::write(&signature, stranger(&wasm)).unwrap();
    let err = untrusted(catalog.get("hello").await).to_string();
    assert!(err.contains("which is not in [plugins] trusted_keys"), "{err}");

    // The signature removed: refused again, without a restart.
    std::fs::write(&signature, sign(&wasm)).unwrap();
    assert!(catalog.get("hello").await.is_ok());
    std::fs::remove_file(&signature).unwrap();
    assert!(matches!(
        untrusted(catalog.get("hello").await),
        TrustError::Unsigned { .. }
    ));
}

#[tokio::test]
async fn a_file_named_like_a_builtin_is_refused_unless_pinned_or_allowed() {
    let h = Harness::new();
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        powernode_tests::BUILTIN_RUN_COMMAND,
        dir.path().join("run_command.wasm"),
    )
    .unwrap();
    let grant = GrantConfig {
        interfaces: vec![Capability::Process],
        ..Default::default()
    };
    let grants = Grants::new(&[("run_command".to_string(), grant)].into()).unwrap();
    let with = |trust: PluginTrust| {
        Catalog::new(h.runtime.clone(), grants.clone(), Some(dir.path().into()))
            .with_trust(trust)
            .unwrap()
    };

    // Unapproved: refused, even though the config grants the type `process`; the built-in is
    // not quietly used instead either.
    let unapproved = with(PluginTrust::default());
    let err = untrusted(unapproved.get("run_command").await);
    assert!(matches!(err, TrustError::UnapprovedReplacement { .. }), "{err}");
    let digest = sha256(powernode_tests::BUILTIN_RUN_COMMAND);
    assert!(
        err.to_string().contains(&format!("run_command = \"sha256:{digest}\"")),
        "{err}"
    );
    assert!(err.to_string().contains("replace_builtin = [\"run_command\"]"), "{err}");

    let allowed = with(PluginTrust::new(&BTreeMap::new(), &["run_command".into()], &[]).unwrap());
    assert!(
        allowed
            .get("run_command")
            .await
            .unwrap()
            .grant
            .allows(Capability::Process)
    );
    let pinned = with(PluginTrust::new(&pins(&[("run_command", &digest)]), &[], &[]).unwrap());
    assert!(pinned.get_vetted("run_command").await.unwrap().1.pinned);

    // A name in replace_builtin that is no built-in is a config error, not a silent no-op.
    let typo = Catalog::new(h.runtime.clone(), Grants::default(), None)
        .with_trust(PluginTrust::new(&BTreeMap::new(), &["run_comand".into()], &[]).unwrap());
    let err = typo.err().expect("a typo is refused").to_string();
    assert!(err.contains("replace_builtin names `run_comand`"), "{err}");
}

#[tokio::test]
async fn inspect_gives_the_trust_verdict_installing_would_give() {
    let h = Harness::new();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("hello.wasm");
    std::fs::copy(powernode_tests::HELLO, &file).unwrap();
    let wrong = "0".repeat(64);
    let catalog = catalog(
        &h,
        dir.path(),
        PluginTrust::new(&pins(&[("hello", &wrong)]), &[], &[]).unwrap(),
    );
    let inspected = catalog.inspect(&file).await.unwrap();
    assert!(
        matches!(
            inspected.verdict,
            Err(CatalogError::Untrusted(TrustError::PinMismatch { .. }))
        ),
        "{:?}",
        inspected.verdict.err()
    );
}
