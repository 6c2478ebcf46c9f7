//! Waiting with a deadline: a test whose child process never finishes fails, saying what it
//! waited for, instead of hanging the suite.

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
