//! Plain functions over the host interfaces. Calling one makes the component import it,
//! so the operator must grant it (see `powernode plugin inspect`).
//!
//! Built for `wasm32` each function calls the host. Built natively (a step crate's
//! `cargo test`) it calls the fake host of [`crate::testing`] with the `testing` feature, and
//! otherwise panics saying so: calling the generated import natively would abort the test
//! process with "panic in a function that cannot unwind".

/// Defines each function of a host interface once: the call into the host on `wasm32`, the
/// call into the fake host natively, and the fake host's `on_…` method to script its answer.
macro_rules! host_fns {
    ($iface:ident; $( $(#[$doc:meta])* fn $name:ident ( $($arg:ident : $ty:ty),* ) -> $ret:ty, script $on:ident; )*) => {
        $(
            $(#[$doc])*
            pub fn $name($($arg: $ty),*) -> $ret {
                #[cfg(target_arch = "wasm32")]
                return crate::wit::powernode::step::$iface::$name($($arg),*);
                #[cfg(all(not(target_arch = "wasm32"), feature = "testing"))]
                return crate::testing::answer(
                    concat!(stringify!($iface), "::", stringify!($name)),
                    stringify!($on),
                    vec![$(format!("{:?}", $arg)),*],
                    |f: &mut Box<dyn FnMut($($ty),*) -> $ret>| f($($arg),*),
                );
                #[cfg(all(not(target_arch = "wasm32"), not(feature = "testing")))]
                {
                    $(let _ = $arg;)*
                    crate::outside_host(concat!(stringify!($iface), "::", stringify!($name)))
                }
            }
        )*

        #[cfg(feature = "testing")]
        impl crate::testing::FakeHost {
            $(
                #[doc = concat!("Scripts the answer of `", stringify!($iface), "::", stringify!($name),
                    "`: `f` gets its arguments; the last script given wins.")]
                pub fn $on(&mut self, f: impl FnMut($($ty),*) -> $ret + 'static) -> &mut Self {
                    let f: Box<dyn FnMut($($ty),*) -> $ret> = Box::new(f);
                    self.script(concat!(stringify!($iface), "::", stringify!($name)), Box::new(f))
                }
            )*
        }
    };
}

/// Lines into the step log; the host masks secrets and bounds the log.
pub mod log {
    pub use crate::wit::powernode::step::log::Level;

    /// Logs at debug level.
    pub fn debug(message: &str) {
        write(Level::Debug, message)
    }
    /// Logs at info level.
    pub fn info(message: &str) {
        write(Level::Info, message)
    }
    /// Logs at warn level.
    pub fn warn(message: &str) {
        write(Level::Warn, message)
    }
    /// Logs at error level.
    pub fn error(message: &str) {
        write(Level::Error, message)
    }

    /// Logs at `level`.
    pub fn write(level: Level, message: &str) {
        #[cfg(target_arch = "wasm32")]
        crate::wit::powernode::step::log::log(level, message);
        #[cfg(all(not(target_arch = "wasm32"), feature = "testing"))]
        crate::testing::log(level, message);
        #[cfg(all(not(target_arch = "wasm32"), not(feature = "testing")))]
        {
            let _ = (level, message);
            crate::outside_host("log")
        }
    }
}

/// Running programs in the workspace (grant `process`).
pub mod process {
    pub use crate::wit::powernode::step::process::{Command, Output};

    host_fns! { process;
        /// Runs `cmd` and waits for it; `Err` when it could not be started at all.
        fn run(cmd: &Command) -> Result<Output, String>, script on_process_run;
    }

    /// Why a command named `what` (e.g. `"command"`) counts as failed, or `None` when it
    /// exited 0: its exit code, the timeout or the signal, then its last 10 non-empty stderr lines.
    pub fn failure(
        what: &str,
        exit_code: Option<i32>,
        timed_out: bool,
        timeout_minutes: Option<f64>,
        stderr: &str,
    ) -> Option<String> {
        let mut message = match (exit_code, timed_out) {
            (_, true) => match timeout_minutes {
                Some(m) => format!("{what} timed out after {m} minutes"),
                None => format!("{what} timed out"),
            },
            (Some(0), false) => return None,
            (Some(code), false) => format!("{what} exited with code {code}"),
            (None, false) => format!("{what} was killed by a signal"),
        };
        let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
        let tail = &lines[lines.len().saturating_sub(10)..];
        if !tail.is_empty() {
            message.push_str("\nstderr (last lines):\n");
            message.push_str(&tail.join("\n"));
        }
        Some(message)
    }

    /// A command running `program` with `args`, in the workspace root, with no environment.
    pub fn command(program: &str, args: &[&str]) -> Command {
        Command {
            program: program.into(),
            args: args.iter().map(|a| a.to_string()).collect(),
            cwd: None,
            env: Vec::new(),
            timeout_ms: None,
            stdin: None,
        }
    }
}

/// Run artifacts (grant `artifacts`).
pub mod artifacts {
    pub use crate::wit::powernode::step::artifacts::Artifact;

    host_fns! { artifacts;
        /// Publishes the workspace file `path` as the run's artifact `name`.
        fn store(name: &str, path: &str) -> Result<Artifact, String>, script on_artifacts_store;
        /// Publishes `content` as the run's artifact `name`, with no workspace file (host 0.1.3+).
        fn store_bytes(name: &str, content: &[u8]) -> Result<Artifact, String>, script on_artifacts_store_bytes;
    }
}

/// Key-value store scoped to (plugin, repository) (grant `kv`). The fake host keeps a real
/// in-memory store: seed it with [`crate::testing::FakeHost::kv_set`].
pub mod kv {
    host_fns! { kv;
        /// The value of `key`, `None` when it was never set.
        fn get(key: &str) -> Result<Option<Vec<u8>>, String>, script on_kv_get;
        /// Sets `key` to `value`.
        fn set(key: &str, value: &[u8]) -> Result<(), String>, script on_kv_set;
        /// Removes `key`.
        fn delete(key: &str) -> Result<(), String>, script on_kv_delete;
    }
}

/// Stored prompt templates (grant `templates`).
pub mod templates {
    host_fns! { templates;
        /// The stored template `id` as written, `None` when there is none.
        fn get(id: &str) -> Result<Option<String>, String>, script on_templates_get;
        /// The stored template `id` rendered with the run's variables.
        fn render(id: &str) -> Result<Option<String>, String>, script on_templates_render;
    }
}

/// Forge operations on the run's repository (grant `provider`).
pub mod provider {
    pub use crate::wit::powernode::step::provider::{
        Annotation, AnnotationLevel, CheckConclusion, CheckOutput, CheckRun, CheckRunUpdate, CheckStatus, Comment,
        CommitState, NewCheckRun, NewPullRequest, PullRequest, Status,
    };
    use crate::{ProviderError, Repository};

    host_fns! { provider;
        /// The run's repository as the forge describes it.
        fn get_repository() -> Result<Repository, ProviderError>, script on_get_repository;
        /// Sets a commit status.
        fn update_status(status: &Status) -> Result<(), ProviderError>, script on_update_status;
        /// Opens a pull request.
        fn create_pull_request(pr: &NewPullRequest) -> Result<PullRequest, ProviderError>, script on_create_pull_request;
        /// The open pull request from `head` into `base`, if any.
        fn find_pull_request(head: &str, base: &str) -> Result<Option<PullRequest>, ProviderError>, script on_find_pull_request;
        /// Pull request `number`.
        fn get_pull_request(number: u64) -> Result<PullRequest, ProviderError>, script on_get_pull_request;
        /// The unified diff of pull request `number`.
        fn get_pull_request_diff(number: u64) -> Result<String, ProviderError>, script on_get_pull_request_diff;
        /// Posts a comment on issue or pull request `number`.
        fn post_comment(number: u64, body: &str) -> Result<Comment, ProviderError>, script on_post_comment;
        /// The comments of issue or pull request `number`.
        fn list_comments(number: u64) -> Result<Vec<Comment>, ProviderError>, script on_list_comments;
        /// Replaces the body of a comment.
        fn update_comment(number: u64, comment_id: u64, body: &str) -> Result<Comment, ProviderError>, script on_update_comment;
        /// Edits the comment holding `marker`, or posts a new one.
        fn upsert_comment(number: u64, marker: &str, body: &str) -> Result<Comment, ProviderError>, script on_upsert_comment;
        /// Starts a workflow (GitHub Actions, Gitea Actions, a GitLab pipeline) on `git_ref`.
        fn trigger_workflow(workflow: &str, git_ref: &str, inputs: &[(String, String)]) -> Result<(), ProviderError>, script on_trigger_workflow;
        /// Creates a check run (GitHub).
        fn create_check_run(run: &NewCheckRun) -> Result<CheckRun, ProviderError>, script on_create_check_run;
        /// Updates check run `id`.
        fn update_check_run(id: u64, update: &CheckRunUpdate) -> Result<CheckRun, ProviderError>, script on_update_check_run;
    }
}

/// Git clone and push in the workspace (grant `git`).
pub mod git {
    pub use crate::wit::powernode::step::git::{CloneOptions, FetchOptions, PushOptions};

    host_fns! { git;
        /// Clones the run's repository into the workspace; the commit checked out.
        fn clone(opts: &CloneOptions) -> Result<String, String>, script on_git_clone;
        /// Commits every change and pushes it (fast-forward); the new commit, `None` when nothing changed.
        fn commit_and_push(opts: &PushOptions) -> Result<Option<String>, String>, script on_git_commit_and_push;
        /// Fetches a branch; its head commit.
        fn fetch(opts: &FetchOptions) -> Result<String, String>, script on_git_fetch;
        /// Commits and replaces a branch (never the default one) with a lease.
        fn replace_branch(opts: &PushOptions) -> Result<Option<String>, String>, script on_git_replace_branch;
    }
}
