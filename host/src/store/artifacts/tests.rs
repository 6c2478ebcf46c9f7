//! Artifact contents in a local folder and in a real S3-compatible server on loopback
//! (`s3s-fs`, checking SigV4 signatures): the store suite, multipart uploads, aborted
//! uploads, refused keys, a missing bucket and a server that went away.

use std::time::{Duration, Instant};

use super::*;
use crate::store::throwaway_s3::S3Server;
use crate::store::{SledStore, Store};

/// The contents of `bucket` on `server`, from the section [`S3Server::config`] writes.
fn s3(server: &S3Server, bucket: &str) -> Artifacts {
    server.bucket(bucket).unwrap();
    from_section(&server.config(bucket))
}

fn from_section(section: &str) -> Artifacts {
    let body = section.strip_prefix("[store.artifacts]\n").unwrap();
    let config: ArtifactsConfig = toml::from_str(body).unwrap();
    Artifacts::from_config(&config, Path::new("/nonexistent")).unwrap()
}

fn budget(max_bytes: u64, within: Duration) -> CopyBudget {
    CopyBudget {
        max_bytes,
        deadline: Instant::now() + within,
    }
}

/// Bytes that do not repeat within a part, so a part sent twice or out of order shows.
fn pattern(len: usize) -> Vec<u8> {
    let mut state = 0x2545_f491_4f6c_dd1du64;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect()
}

#[tokio::test]
async fn sled_store_with_s3_artifacts_conforms() {
    let server = S3Server::start().unwrap();
    let counter = std::sync::atomic::AtomicUsize::new(0);
    let (server, counter) = (&server, &counter);
    crate::store::conformance::run(|dir| async move {
        let n = counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let artifacts = s3(server, &format!("bucket-{n}"));
        Box::new(SledStore::open_with(&dir.join("data"), artifacts).unwrap()) as Box<dyn Store>
    })
    .await;
}

/// 20 MiB go up in three parts and come back whole; a source that grows past the budget
/// while it is read (a FIFO) is aborted mid-upload and leaves nothing, in the bucket and in
/// a local folder alike.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_artifact_goes_up_in_parts_and_one_past_its_budget_leaves_nothing() {
    let server = S3Server::start().unwrap();
    let local = tempfile::tempdir().unwrap();
    let scratch = tempfile::tempdir().unwrap();
    let big = pattern(20 << 20);
    let src = scratch.path().join("big.bin");
    std::fs::write(&src, &big).unwrap();
    for artifacts in [s3(&server, "parts"), Artifacts::local(local.path()).unwrap()] {
        let record = artifacts
            .write(
                "run-1",
                "dist/big.bin",
                ArtifactSource::File(src.clone()),
                &budget(64 << 20, Duration::from_secs(120)),
            )
            .await
            .unwrap();
        assert_eq!(record.size, big.len() as u64, "{artifacts:?}");
        assert_eq!(record.sha256, hex::encode(Sha256::digest(&big)));
        assert!(
            artifacts.read_to_vec(&record).await.unwrap() == big,
            "{artifacts:?}: the bytes differ"
        );

        let fifo = scratch.path().join(format!("fifo-{}", artifacts.is_local()));
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).unwrap();
        let writer = {
            let (fifo, big) = (fifo.clone(), big.clone());
            // The reader stops early, so the writer may see a broken pipe.
            std::thread::spawn(move || {
                let _ = std::io::Write::write_all(&mut std::fs::File::create(fifo).unwrap(), &big);
            })
        };
        let err = artifacts
            .write(
                "run-2",
                "grown.bin",
                ArtifactSource::File(fifo),
                &budget(12 << 20, Duration::from_secs(120)),
            )
            .await
            .unwrap_err();
        writer.join().unwrap();
        assert!(matches!(err, StoreError::Quota(_)), "{err}");
        assert!(artifacts.names("run-2").await.unwrap().is_empty(), "{artifacts:?}");
        assert_eq!(artifacts.names("run-1").await.unwrap(), ["dist/big.bin"]);
    }
    // Nothing of the aborted upload is left in the server's folders either: only the big
    // object and the two files of its metadata (named by its key in base64).
    use base64::Engine;
    let kept = base64::engine::general_purpose::STANDARD_NO_PAD.encode("run-1/dist/big.bin");
    let leftovers: Vec<_> = walk(server.root())
        .into_iter()
        .filter(|p| !p.ends_with("parts/run-1/dist/big.bin") && !p.to_string_lossy().contains(&kept))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

/// Wrong keys and a bucket that is not there are found by the check at start, and a write
/// fails with what the server said; nothing is kept.
#[tokio::test]
async fn wrong_keys_and_a_missing_bucket_are_refused_with_what_the_server_said() {
    let server = S3Server::start().unwrap();
    server.bucket("real").unwrap();
    let wrong_key = from_section(&server.config("real").replace("powernode-test-secret", "guessed-secret"));
    let err = wrong_key.check().await.unwrap_err().to_string();
    assert!(err.contains("SignatureDoesNotMatch") || err.contains("403"), "{err}");
    assert!(err.contains("s3://real/"), "the error names the bucket: {err}");
    assert!(!err.contains("powernode-test-secret"), "{err}");
    let err = wrong_key
        .write(
            "run-1",
            "a.txt",
            ArtifactSource::Bytes(b"a".to_vec()),
            &budget(10, Duration::from_secs(30)),
        )
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("SignatureDoesNotMatch") || err.contains("403"), "{err}");

    let missing = from_section(&server.config("no-such-bucket"));
    let err = missing.check().await.unwrap_err().to_string();
    assert!(err.contains("NoSuchBucket") || err.contains("404"), "{err}");
    assert!(s3(&server, "real").check().await.is_ok());
    assert!(s3(&server, "real").names("run-1").await.unwrap().is_empty());
}

/// A server that went away fails the write before the step's deadline, and the server
/// coming back serves what was stored before.
#[tokio::test]
async fn a_store_that_went_away_fails_the_write_within_the_deadline() {
    let root = tempfile::tempdir().unwrap();
    let mut server = S3Server::start_in(root.path()).unwrap();
    let artifacts = s3(&server, "gone");
    let kept = artifacts
        .write(
            "run-1",
            "kept.txt",
            ArtifactSource::Bytes(b"kept".to_vec()),
            &budget(10, Duration::from_secs(30)),
        )
        .await
        .unwrap();
    server.kill();
    let started = Instant::now();
    let err = artifacts
        .write(
            "run-1",
            "lost.txt",
            ArtifactSource::Bytes(b"lost".to_vec()),
            &budget(10, Duration::from_secs(5)),
        )
        .await
        .unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(15), "{:?}", started.elapsed());
    assert!(matches!(err, StoreError::Objects(_) | StoreError::Deadline), "{err}");
    let back = S3Server::start_in(root.path()).unwrap();
    let artifacts = from_section(&back.config("gone"));
    assert_eq!(artifacts.read_to_vec(&kept).await.unwrap(), b"kept");
    assert_eq!(artifacts.names("run-1").await.unwrap(), ["kept.txt"]);
}

/// Runs whose ids share a beginning are apart: removing one leaves the other.
#[tokio::test]
async fn a_run_is_removed_without_touching_a_run_whose_id_it_begins() {
    let server = S3Server::start().unwrap();
    let local = tempfile::tempdir().unwrap();
    let prefixed = from_section(
        &server
            .config("shared")
            .replace("[store.artifacts]\n", "[store.artifacts]\nprefix = \"ci-east\"\n"),
    );
    server.bucket("shared").unwrap();
    for artifacts in [s3(&server, "ids"), Artifacts::local(local.path()).unwrap(), prefixed] {
        for run in ["run-1", "run-10"] {
            artifacts
                .write(
                    run,
                    "a.txt",
                    ArtifactSource::Bytes(b"a".to_vec()),
                    &budget(10, Duration::from_secs(30)),
                )
                .await
                .unwrap();
        }
        artifacts.remove_run("run-1").await.unwrap();
        artifacts.remove_run("never-stored").await.unwrap();
        assert!(artifacts.names("run-1").await.unwrap().is_empty(), "{artifacts:?}");
        assert_eq!(artifacts.names("run-10").await.unwrap(), ["a.txt"], "{artifacts:?}");
    }
    assert!(
        server.root().join("shared/ci-east/run-10/a.txt").is_file(),
        "a prefix is a folder within the bucket"
    );
}

/// Every file under `dir`.
fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                files.push(path);
            }
        }
    }
    files
}
