//! A fake host, so `cargo test` in a step crate runs [`Step::run`] natively (enable the
//! `testing` feature in `[dev-dependencies]`).
//!
//! Set the trigger, repository and config, script the answers of the host calls the step
//! makes (`on_get_pull_request`, `on_process_run`, `on_http_send`, ...; `kv` is a real
//! in-memory store), run it, then assert on its result, its log and the calls it made:
//!
//! ```ignore
//! let mut host = FakeHost::new();
//! host.trigger(Trigger::pull_request(7, "feature", "main"))
//!     .on_post_comment(|number, body| Ok(Comment { id: 1, body: body.into(), author: "bot".into(), url: String::new() }));
//! let run = host.run::<MyStep>(serde_json::json!({"message": "hi"}));
//! assert_eq!(run.output().raw_output, "posted");
//! assert_eq!(run.calls[0].function, "provider::post_comment");
//! ```
//!
//! A call the test did not script panics and names the `on_…` method to use.

use std::any::Any;
use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::rc::Rc;

use crate::log::Level;
use crate::{Context, Error, Output, Repository, Step, Trigger};

/// One line the step logged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    /// Its level.
    pub level: Level,
    /// Its text.
    pub message: String,
}

/// One host call the step made, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    /// `interface::function`, e.g. `"provider::post_comment"`.
    pub function: &'static str,
    /// Each argument as `{:?}` prints it.
    pub args: Vec<String>,
}

impl std::fmt::Display for Call {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}({})", self.function, self.args.join(", "))
    }
}

/// How a step run by [`FakeHost::run`] ended, with what it logged and called.
#[derive(Debug)]
pub struct Run {
    /// What `Step::run` returned (a config that does not parse is `Error::InvalidConfig`).
    pub result: Result<Output, Error>,
    /// Its log lines.
    pub logs: Vec<LogLine>,
    /// The host calls it made, in order.
    pub calls: Vec<Call>,
}

impl Run {
    /// The output; panics with the step's error when it failed.
    #[track_caller]
    pub fn output(&self) -> &Output {
        match &self.result {
            Ok(out) => out,
            Err(e) => panic!("the step failed: {e:?}\nlog:\n{}", self.log_text()),
        }
    }

    /// The error; panics with the output when the step succeeded.
    #[track_caller]
    pub fn error(&self) -> &Error {
        match &self.result {
            Ok(out) => panic!("the step succeeded: {out:?}"),
            Err(e) => e,
        }
    }

    /// The named output `name`, if the step gave one.
    pub fn named(&self, name: &str) -> Option<&str> {
        let out = self.result.as_ref().ok()?;
        out.outputs.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    /// Whether a log line contains `text`.
    pub fn logged(&self, text: &str) -> bool {
        self.logs.iter().any(|l| l.message.contains(text))
    }

    /// The calls to `function` (`"interface::function"`).
    pub fn calls_to(&self, function: &str) -> Vec<&Call> {
        self.calls.iter().filter(|c| c.function == function).collect()
    }

    /// The log as text, one `LEVEL message` per line.
    pub fn log_text(&self) -> String {
        let lines: Vec<String> = self
            .logs
            .iter()
            .map(|l| format!("{:?} {}", l.level, l.message))
            .collect();
        lines.join("\n")
    }
}

type Scripts = HashMap<&'static str, Box<dyn Any>>;

/// The host a test runs a step against: its trigger, repository, scripted answers and kv.
pub struct FakeHost {
    run_id: String,
    pipeline: String,
    step: String,
    repository: Repository,
    trigger: Trigger,
    scripts: Scripts,
    kv: Rc<RefCell<BTreeMap<String, Vec<u8>>>>,
}

impl Default for FakeHost {
    fn default() -> Self {
        Self::new()
    }
}

impl FakeHost {
    /// A manual run (`Trigger::default()`) of step `step` in pipeline `test` on
    /// `Repository::default()`, with an empty kv and no other call scripted.
    pub fn new() -> Self {
        let mut host = FakeHost {
            run_id: "test-run".into(),
            pipeline: "test".into(),
            step: "step".into(),
            repository: Repository::default(),
            trigger: Trigger::default(),
            scripts: HashMap::new(),
            kv: Rc::default(),
        };
        let kv = host.kv.clone();
        host.on_kv_get(move |key| Ok(kv.borrow().get(key).cloned()));
        let kv = host.kv.clone();
        host.on_kv_set(move |key, value| {
            kv.borrow_mut().insert(key.into(), value.into());
            Ok(())
        });
        let kv = host.kv.clone();
        host.on_kv_delete(move |key| {
            kv.borrow_mut().remove(key);
            Ok(())
        });
        host
    }

    /// The event that started the run.
    pub fn trigger(&mut self, trigger: Trigger) -> &mut Self {
        self.trigger = trigger;
        self
    }

    /// The repository the run acts on.
    pub fn repository(&mut self, repository: Repository) -> &mut Self {
        self.repository = repository;
        self
    }

    /// The step's name in the pipeline (error messages of config parsing name it).
    pub fn step_name(&mut self, name: &str) -> &mut Self {
        self.step = name.into();
        self
    }

    /// Seeds the kv store with `key` = `value`.
    pub fn kv_set(&mut self, key: &str, value: impl Into<Vec<u8>>) -> &mut Self {
        self.kv.borrow_mut().insert(key.into(), value.into());
        self
    }

    /// The kv store's value of `key` now (after a run: what the step left there).
    pub fn kv(&self, key: &str) -> Option<Vec<u8>> {
        self.kv.borrow().get(key).cloned()
    }

    /// Runs `S` with `config` (parsed as the real host's adapter parses it) and returns how
    /// it ended. Scripts and kv stay for the next run.
    pub fn run<S: Step>(&mut self, config: serde_json::Value) -> Run {
        let session = Session {
            scripts: std::mem::take(&mut self.scripts),
            logs: Vec::new(),
            calls: Vec::new(),
        };
        CURRENT.with(|c| *c.borrow_mut() = Some(session));
        // Put the scripts back even when the step panics, so the test's panic is its own.
        let restore = Restore(&mut self.scripts);
        let result = crate::parse_config::<S::Config>(&self.step, &config.to_string())
            .map_err(Error::InvalidConfig)
            .and_then(|config| {
                S::run(Context {
                    run_id: self.run_id.clone(),
                    pipeline: self.pipeline.clone(),
                    step: self.step.clone(),
                    repository: self.repository.clone(),
                    trigger: self.trigger.clone(),
                    config,
                })
            });
        let session = restore.finish();
        Run {
            result,
            logs: session.logs,
            calls: session.calls,
        }
    }

    /// Stores the script of `function` (used by the generated `on_…` methods).
    pub(crate) fn script(&mut self, function: &'static str, f: Box<dyn Any>) -> &mut Self {
        self.scripts.insert(function, f);
        self
    }
}

struct Session {
    scripts: Scripts,
    logs: Vec<LogLine>,
    calls: Vec<Call>,
}

thread_local! {
    /// The session of the `FakeHost::run` in progress on this thread: the host functions are
    /// free functions, so this is where they find the test's scripts.
    static CURRENT: RefCell<Option<Session>> = const { RefCell::new(None) };
}

struct Restore<'a>(&'a mut Scripts);

impl Restore<'_> {
    fn finish(self) -> Session {
        let session = CURRENT.with(|c| c.borrow_mut().take()).expect("a session in progress");
        let mut this = std::mem::ManuallyDrop::new(self);
        *this.0 = session.scripts;
        Session {
            scripts: HashMap::new(),
            logs: session.logs,
            calls: session.calls,
        }
    }
}

impl Drop for Restore<'_> {
    fn drop(&mut self) {
        if let Some(session) = CURRENT.with(|c| c.borrow_mut().take()) {
            *self.0 = session.scripts;
        }
    }
}

fn with_session<T>(what: &str, f: impl FnOnce(&mut Session) -> T) -> T {
    CURRENT.with(|c| match c.borrow_mut().as_mut() {
        Some(session) => f(session),
        None => panic!(
            "`{what}` was called outside `FakeHost::run`: run the step with `FakeHost::new().run::<YourStep>(config)`"
        ),
    })
}

/// A log line from the step.
pub(crate) fn log(level: Level, message: &str) {
    with_session("log", |s| {
        s.logs.push(LogLine {
            level,
            message: message.into(),
        })
    })
}

/// Records a call to `function` and answers it with its script (a `Box<F>`); panics naming
/// the `on` method when the test scripted none.
pub(crate) fn answer<F: ?Sized + 'static, R>(
    function: &'static str,
    on: &str,
    args: Vec<String>,
    call: impl FnOnce(&mut Box<F>) -> R,
) -> R {
    let script = with_session(function, |s| {
        s.calls.push(Call { function, args });
        s.scripts.remove(function)
    });
    let Some(mut script) = script else {
        panic!("the step called `{function}`, which the test did not script: call `FakeHost::{on}` before `run`");
    };
    let f = script
        .downcast_mut::<Box<F>>()
        .expect("scripts are stored by their own function");
    // Called with no session borrowed, so a script may log or call the host itself.
    let answer = call(f);
    with_session(function, |s| {
        s.scripts.entry(function).or_insert(script);
    });
    answer
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::FakeHost;
    use crate::http::{self, HttpError, Response};
    use crate::{AnyConfig, Context, Error, Info, Output, Step, kv, log};

    /// Counts its runs in kv and reports the status of one HTTP GET.
    struct Counter;

    impl Step for Counter {
        type Config = AnyConfig;

        fn info() -> Info {
            Info::new("counter", "0.1.0", "counts")
        }

        fn run(ctx: Context<AnyConfig>) -> Result<Output, Error> {
            let seen = kv::get("runs").map_err(Error::failed)?.unwrap_or_default();
            let runs = String::from_utf8_lossy(&seen).parse::<u32>().unwrap_or(0) + 1;
            kv::set("runs", runs.to_string().as_bytes()).map_err(Error::failed)?;
            log::info(&format!("run {runs} on {}", ctx.trigger.event));
            let answer = http::send(&http::Request::get("https://status.test/")).map_err(Error::failed)?;
            Ok(Output::new(runs.to_string()).with("status", answer.status))
        }
    }

    fn ok(status: u16) -> Result<Response, HttpError> {
        Ok(Response {
            status,
            headers: Vec::new(),
            body: Vec::new(),
            truncated: false,
        })
    }

    #[test]
    fn kv_is_a_real_store_that_lasts_across_runs_and_can_be_seeded() {
        let mut host = FakeHost::new();
        host.kv_set("runs", "41").on_http_send(|_| ok(204));
        assert_eq!(host.run::<Counter>(json!({})).output().raw_output, "42");
        let second = host.run::<Counter>(json!(null));
        assert_eq!(second.output().raw_output, "43");
        assert_eq!(host.kv("runs").as_deref(), Some(&b"43"[..]));
        let calls: Vec<String> = second.calls.iter().map(ToString::to_string).collect();
        assert_eq!(
            calls,
            [
                r#"kv::get("runs")"#,
                r#"kv::set("runs", [52, 51])"#,
                r#"http::send(GET https://status.test/)"#
            ]
        );
        assert!(second.logged("run 43 on manual"), "{}", second.log_text());
        assert_eq!(second.named("status"), Some("204"));
    }

    #[test]
    fn a_scripted_failure_reaches_the_step() {
        let mut host = FakeHost::new();
        host.on_kv_get(|_| Err("kv quota exceeded".into()));
        assert!(matches!(host.run::<Counter>(json!({})).error(), Error::Failed(m) if m == "kv quota exceeded"));
    }

    #[test]
    fn a_panicking_step_leaves_the_host_usable() {
        let mut host = FakeHost::new();
        host.on_http_send(|_| panic!("boom"));
        let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| host.run::<Counter>(json!({}))));
        assert!(panicked.is_err());
        host.on_http_send(|_| ok(200));
        assert_eq!(host.run::<Counter>(json!({})).named("status"), Some("200"));
    }
}
