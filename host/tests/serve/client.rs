//! The CLI client (`powernode runs`, `logs`, `trigger`, `cancel`, `rerun`, `pipelines push`)
//! against the real server: what it prints for people and for scripts, `logs --follow` on a
//! running run, and every documented exit code.

use std::io::BufRead;
use std::process::Output;
use std::sync::mpsc;

use reqwest::Method;

use super::runs::{api, ended, wait_for};
use super::*;

/// Three steps: a line, a pause long enough to follow the run while it goes on, a line.
const SLOW: &str = "name: slow\ntriggers:\n  - type: push\n    branches: [nowhere]\nsteps:\n  - name: first\n    type: run_command\n    config:\n      command: echo first line\n  - name: wait\n    type: run_command\n    config:\n      command: sleep 3\n  - name: last\n    type: run_command\n    config:\n      command: echo last line\n";
/// Fails in its one step.
const BROKEN: &str = "name: broken\ntriggers:\n  - type: push\n    branches: [nowhere]\nsteps:\n  - name: fail\n    type: run_command\n    config:\n      command: echo about to fail; exit 3\n";

fn start(dir: &Path) -> Server {
    std::fs::create_dir_all(dir.join("pipelines")).unwrap();
    std::fs::write(dir.join("pipelines/slow.yml"), SLOW).unwrap();
    std::fs::write(dir.join("pipelines/broken.yml"), BROKEN).unwrap();
    Server::start_with_sources(dir, "")
}

/// `powernode ARGS` against `server` with the right token in POWERNODE_TOKEN.
fn cli(server: &Server, args: &[&str]) -> Output {
    cli_with(server, args, &[("POWERNODE_TOKEN", API_TOKEN)])
}

fn cli_with(server: &Server, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_powernode"));
    cmd.args(args)
        .env("POWERNODE_SERVER", &server.url)
        .env_remove("POWERNODE_TOKEN")
        .env_remove("POWERNODE_API_TOKEN")
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let child = cmd.spawn().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || tx.send(child.wait_with_output()));
    rx.recv_timeout(REQUEST * 2)
        .unwrap_or_else(|_| panic!("`powernode {}` did not finish", args.join(" ")))
        .unwrap()
}

fn code(out: &Output) -> i32 {
    out.status.code().expect("exited, not killed")
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Queues a run of `pipeline` with `powernode trigger` and returns its id.
fn trigger(server: &Server, pipeline: &str) -> String {
    let out = cli(server, &["trigger", pipeline]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let id = stdout(&out).trim().to_owned();
    assert_eq!(id.len(), 36, "the run's id alone on stdout: {id}");
    id
}

#[tokio::test]
async fn logs_follow_streams_a_running_run_and_exits_with_its_result() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path());
    let id = trigger(&server, "slow");
    let mut child = Command::new(env!("CARGO_BIN_EXE_powernode"))
        .args(["logs", "--follow", &id, "--server", &server.url])
        .env("POWERNODE_TOKEN", API_TOKEN)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, rx) = mpsc::channel();
    let out = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(out).lines() {
            let _ = tx.send(line.unwrap());
        }
    });
    // run_command logs its command line, then the command's output.
    let first = rx.recv_timeout(Duration::from_secs(60)).expect("a first log line");
    assert_eq!(first, "[first] $ echo first line");
    let second = rx.recv_timeout(Duration::from_secs(60)).expect("a second log line");
    assert_eq!(second, "[first] first line");
    // The line came while the run went on: its pause had not ended yet.
    let (_, run) = api(&server, Method::GET, &format!("/runs/{id}"), None).await;
    assert_eq!(run["state"], "running", "{run}");
    let status = common::wait_child(
        &mut child,
        Duration::from_secs(60),
        "`logs --follow` to end with the run",
    );
    let rest: Vec<String> = rx.try_iter().collect();
    assert_eq!(
        rest,
        ["[wait] $ sleep 3", "[last] $ echo last line", "[last] last line"]
    );
    assert_eq!(status.code(), Some(0), "a successful run exits 0");
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    assert!(err.contains("run ended: success"), "{err}");

    // A failed run: the log up to the failure, then exit 1; the same as JSON lines.
    let failed = trigger(&server, "broken");
    let out = cli(&server, &["logs", "--follow", &failed]);
    assert_eq!(code(&out), 1, "a failed run exits 1: {}", stderr(&out));
    assert!(stdout(&out).contains("[fail] about to fail"), "{}", stdout(&out));
    assert!(stderr(&out).contains("run ended: failure"), "{}", stderr(&out));
    let out = cli(&server, &["logs", "--follow", "--json", &failed]);
    assert_eq!(code(&out), 1);
    let lines: Vec<Value> = stdout(&out).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.last().unwrap(), &serde_json::json!({"end": "failure"}));
    assert!(
        lines
            .iter()
            .any(|l| l["line"] == "[fail] about to fail" && l["id"].is_u64()),
        "{lines:?}"
    );
    // Without --follow: the log as it is, exit 0 whatever the run's result.
    let out = cli(&server, &["logs", &failed]);
    assert_eq!(code(&out), 0);
    assert!(stdout(&out).contains("[fail] about to fail"), "{}", stdout(&out));
    server.stop();
}

#[tokio::test]
async fn runs_cancel_and_rerun_print_tables_json_and_exit_codes() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path());
    let done = trigger(&server, "broken");
    wait_for(&server, &done, "ended", ended).await;
    let running = trigger(&server, "slow");
    wait_for(&server, &running, "started", |r| r["state"] == "running").await;

    // A table for people, newest first.
    let out = cli(&server, &["runs"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let table = stdout(&out);
    let rows: Vec<&str> = table.lines().collect();
    assert!(
        rows[0].starts_with("ID") && rows[0].contains("STATUS") && rows[0].contains("DURATION"),
        "{table}"
    );
    assert!(
        rows[1].starts_with(&running) && rows[1].contains("running") && rows[1].contains("manual"),
        "{table}"
    );
    assert!(
        rows[2].starts_with(&done) && rows[2].contains("failure") && rows[2].contains("broken"),
        "{table}"
    );
    // JSON for scripts, with the filters.
    let out = cli(&server, &["runs", "--status", "failure", "--json"]);
    let answer: Value = serde_json::from_str(&stdout(&out)).unwrap();
    let ids: Vec<&str> = answer["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [done.as_str()]);
    let out = cli(&server, &["runs", "--pipeline", "slow", "--json"]);
    let answer: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(answer["runs"].as_array().unwrap().len(), 1, "{answer}");
    let out = cli(&server, &["runs", "--status", "finished"]);
    assert_eq!(code(&out), 3, "a bad filter is refused by the server");
    assert!(stderr(&out).contains("unknown `status` `finished`"), "{}", stderr(&out));

    // Cancel the running run; cancelling an ended run is refused (3).
    let out = cli(&server, &["cancel", &running]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(stdout(&out).trim(), format!("run {running} is being stopped"));
    let run = wait_for(&server, &running, "ended", ended).await;
    assert_eq!(run["state"], "cancelled");
    let out = cli(&server, &["cancel", &running]);
    assert_eq!(code(&out), 3);
    assert!(
        stderr(&out).contains("409 Conflict") && stderr(&out).contains("already ended"),
        "{}",
        stderr(&out)
    );
    let out = cli(&server, &["logs", "--follow", &running]);
    assert_eq!(code(&out), 1, "a cancelled run is not a success");
    assert!(stderr(&out).contains("run ended: cancelled"), "{}", stderr(&out));

    // Rerun: a new run of the same pipeline.
    let out = cli(&server, &["rerun", &done, "--json"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let answer: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(answer["rerun_of"], done.as_str());
    assert_eq!(answer["pipeline"], "broken");

    // Unknown things (3), the token (4), the server (5), the arguments (2).
    let out = cli(&server, &["logs", "no-such-run"]);
    assert_eq!(code(&out), 3);
    assert!(stderr(&out).contains("no run `no-such-run`"), "{}", stderr(&out));
    let out = cli(&server, &["trigger", "no-such-pipeline"]);
    assert_eq!(code(&out), 3);
    let out = cli_with(&server, &["runs"], &[]);
    assert_eq!(code(&out), 4);
    assert!(
        stderr(&out).contains("POWERNODE_TOKEN"),
        "says how to give the token: {}",
        stderr(&out)
    );
    let out = cli_with(&server, &["runs", "--token", "not-the-token"], &[]);
    assert_eq!(code(&out), 4);
    let out = cli_with(&server, &["runs"], &[("POWERNODE_API_TOKEN", API_TOKEN)]);
    assert_eq!(
        code(&out),
        0,
        "the variable `powernode init` prints works too: {}",
        stderr(&out)
    );
    let out = cli(&server, &["runs", "--server", "http://127.0.0.1:9"]);
    assert_eq!(code(&out), 5);
    assert!(
        stderr(&out).contains("is `powernode serve` running there?"),
        "{}",
        stderr(&out)
    );
    let out = cli(&server, &["trigger", "slow", "--event", "/nonexistent/event.json"]);
    assert_eq!(code(&out), 2);
    assert!(
        stderr(&out).contains("cannot read the event file `/nonexistent/event.json`"),
        "{}",
        stderr(&out)
    );
    let out = cli(&server, &["cancel"]);
    assert_eq!(code(&out), 2, "a missing argument is a usage error");
    server.stop();
}

#[tokio::test]
async fn pipelines_push_stores_a_pipeline_and_points_at_the_file_s_errors() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path());
    let file = dir.path().join("triage.yml");
    std::fs::write(
        &file,
        "name: triage\ntriggers:\n  - type: manual\nsteps:\n  - name: hello\n    type: run_command\n    config:\n      command: echo triaged\n",
    )
    .unwrap();
    let path = file.to_str().unwrap();
    let out = cli(&server, &["pipelines", "push", path]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(stdout(&out).trim(), "pipeline `triage` created");
    let out = cli(&server, &["pipelines", "push", path]);
    assert_eq!(stdout(&out).trim(), "pipeline `triage` replaced");

    // Trigger it with an event file and follow it to its end.
    let event = dir.path().join("event.json");
    std::fs::write(
        &event,
        r#"{"event": "push", "ref": "refs/heads/main", "sender": "alice"}"#,
    )
    .unwrap();
    let out = cli(
        &server,
        &["trigger", "triage", "--event", event.to_str().unwrap(), "--json"],
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let answer: Value = serde_json::from_str(&stdout(&out)).unwrap();
    let id = answer["id"].as_str().unwrap();
    let out = cli(&server, &["logs", "-f", id]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(stdout(&out), "[hello] $ echo triaged\n[hello] triaged\n");
    let out = cli(&server, &["runs", "--pipeline", "triage"]);
    assert!(
        stdout(&out).contains("push main by alice"),
        "the trigger in a few words: {}",
        stdout(&out)
    );

    // A step config the server's plugin refuses: exit 3, positioned in the file itself.
    std::fs::write(
        &file,
        "name: triage\ntriggers:\n  - type: manual\nsteps:\n  - name: hello\n    type: run_command\n    config:\n      comand: echo typo\n",
    )
    .unwrap();
    let out = cli(&server, &["pipelines", "push", path]);
    assert_eq!(code(&out), 3);
    let err = stderr(&out);
    assert!(err.contains(&format!("{path}:8:")), "positioned in the file: {err}");
    assert!(err.contains("unknown field `comand`"), "{err}");
    // Not YAML at all: a usage error before anything is sent.
    std::fs::write(&file, "name: [unclosed\n").unwrap();
    let out = cli(&server, &["pipelines", "push", path]);
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    assert!(stderr(&out).contains(path), "{}", stderr(&out));
    server.stop();
}
