//! Shared by the binary-driving tests: waiting with a deadline (a test whose child process
//! never finishes fails, saying what it waited for, instead of hanging the suite), and a
//! real third-party component built from source.

use std::process::{Child, ExitStatus};
use std::time::{Duration, Instant};

/// Waits for `child` to exit; past `within`, kills it and panics naming `what` was awaited.
pub fn wait_child(child: &mut Child, within: Duration, what: &str) -> ExitStatus {
    let deadline = Instant::now() + within;
    loop {
        if let Some(status) = child.try_wait().expect("poll the child process") {
            return status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("waited {within:?} for {what}; killed it");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The Python step of `tests/guests/python` (type `hello_python`), built with componentize-py
/// (installed by `scripts/setup.sh --test`) as `name.wasm` in `dir`.
pub fn python_step(dir: &std::path::Path, name: &str) -> std::path::PathBuf {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let out = dir.join(format!("{name}.wasm"));
    let status = std::process::Command::new("componentize-py")
        .arg("-d")
        .arg(root.join("wit"))
        .args(["-w", "powernode:step/log-only", "componentize", "app", "-p"])
        .arg(root.join("tests/guests/python"))
        .arg("-o")
        .arg(&out)
        .status()
        .expect("componentize-py is needed for this test: scripts/setup.sh --test installs it");
    assert!(status.success(), "componentize-py failed");
    out
}
