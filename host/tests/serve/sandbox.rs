//! Commands confined: `run_command` steps run by `powernode serve` try what a hostile pull
//! request's `npm test` would — read the config file with the forge token, the data
//! directory, the server's environment through `/proc`, another run's workspace; reach the
//! server's own port and a stand-in metadata service on loopback; fork-bomb, write a huge
//! file, leave a process behind — and each is refused or stopped, while the next step and
//! a normal build (git, python3, node) work.

use reqwest::Method;

use super::runs::{api, ended, wait_for};
use super::*;

const FORGE_TOKEN: &str = "forge-token-the-step-must-not-see-8d1f";

/// A server with `pipeline` (YAML) as `pipelines/probe.yml` and `extra` TOML in its config.
fn start(dir: &Path, pipeline: &str, extra: &str) -> Server {
    std::fs::create_dir_all(dir.join("pipelines")).unwrap();
    std::fs::write(dir.join("pipelines/probe.yml"), pipeline).unwrap();
    let extra = format!(
        "\n[[sources]]\nid = \"forge\"\nkind = \"github\"\napi_url = \"http://127.0.0.1:9\"\ntoken = \"{FORGE_TOKEN}\"\nwebhook_secret = \"{SECRET}\"\nbot_login = \"powernode-bot\"\n{extra}"
    );
    Server::start_with_env(dir, &extra, &[("POWERNODE_TEST_ENV_SECRET", FORGE_TOKEN.to_string())])
}

/// Runs `probe` by hand with `trigger` (JSON); returns the run and its log.
async fn manual_run(server: &Server, trigger: &str) -> (Value, String) {
    let (status, created) = api(server, Method::POST, "/pipelines/probe/runs", Some(trigger)).await;
    assert_eq!(status, 201, "{created}\n{}", server.stderr());
    let id = created["id"].as_str().unwrap().to_owned();
    let run = wait_for(server, &id, "ended", ended).await;
    let (_, logs) = api_text(server, Method::GET, &format!("/runs/{id}/logs"), None).await;
    (run, logs)
}

fn step<'a>(run: &'a Value, name: &str) -> &'a Value {
    run["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == name)
        .unwrap()
}

#[tokio::test]
async fn a_hostile_command_reaches_nothing_of_the_server() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    // Another run's workspace, with a file that must stay unreadable.
    std::fs::create_dir_all(dir.join("data/workspaces/other-run")).unwrap();
    std::fs::write(dir.join("data/workspaces/other-run/secret.txt"), "other run's file").unwrap();
    // A stand-in for a metadata service, on loopback.
    let metadata = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let metadata_port = metadata.local_addr().unwrap().port();
    let config = dir.join("powernode.toml").display().to_string();
    let data = dir.join("data").display().to_string();
    let pipeline = format!(
        r#"name: probe
steps:
  - name: look
    type: run_command
    config:
      allow_failure: true
      command: |
        cat {config} 2>&1 | head -c 300
        ls {data} 2>&1; cat {data}/workspaces/other-run/secret.txt 2>&1
        cat /proc/*/environ 2>/dev/null | tr '\0' '\n' | grep -c POWERNODE_TEST_ENV_SECRET
        cat /etc/shadow 2>&1 | head -1
        id -u
        head -c 64M /dev/zero > big.bin; echo "big: $(stat -c %s big.bin)"; rm -f big.bin
  - name: reach
    type: run_command
    config:
      allow_failure: true
      command: |
        curl -sS -m 5 http://{{{{ title }}}}/healthz 2>&1 | head -1
        curl -sS -m 5 --noproxy '' --proxy http://127.0.0.1:3128 http://{{{{ title }}}}/healthz 2>&1 | head -1
        curl -sS -m 5 --noproxy '' --proxy http://127.0.0.1:3128 http://127.0.0.1:{metadata_port}/latest/meta-data 2>&1 | head -1
        curl -sS -m 5 http://169.254.169.254/latest/meta-data 2>&1 | head -1
  - name: bomb
    type: run_command
    timeout_minutes: 0.2
    config:
      allow_failure: true
      command: |
        (setsid sleep 31337 &)
        bomb() {{ bomb | bomb & }}; bomb; sleep 2; echo bombed
  - name: build
    type: run_command
    config:
      command: |
        git init -q . && git -c user.name=a -c user.email=a@b commit -q --allow-empty -m one && git log --oneline | wc -l
        python3 -c 'print("python ok")'
        node -e 'console.log("node ok")'
"#
    );
    let server = start(dir, &pipeline, "[sandbox]\nmax_file_mb = 16\nmax_processes = 64\n");
    let address = server.url.trim_start_matches("http://").to_owned();
    let (run, logs) = manual_run(&server, &format!(r#"{{"title": "{address}"}}"#)).await;
    assert_eq!(run["state"], "success", "{run}\n{logs}");
    assert!(!logs.contains(FORGE_TOKEN), "the forge token leaked:\n{logs}");
    let look = step(&run, "look")["raw_output"].as_str().unwrap().to_owned();
    let lines: Vec<&str> = look.lines().collect();
    assert!(lines[0].contains("No such file or directory"), "config: {look}");
    // Only the folders leading to the run's own workspace exist: no store, inbox or cache.
    assert_eq!(lines[1], "workspaces", "data dir: {look}");
    assert!(lines[2].contains("No such file or directory"), "other run: {look}");
    assert_eq!(lines[3], "0", "the server's environment through /proc: {look}");
    assert!(
        lines[4].contains("Permission denied") || lines[4].contains("No such file"),
        "shadow: {look}"
    );
    assert_ne!(lines[5], "0", "commands do not run as root: {look}");
    assert_eq!(lines[6], format!("big: {}", 16 << 20), "the file size limit: {look}");

    let reach = step(&run, "reach")["raw_output"].as_str().unwrap().to_owned();
    let lines: Vec<&str> = reach.lines().collect();
    // 127.0.0.1 is the sandbox's own loopback; through the proxy, loopback is refused.
    assert!(lines[0].contains("Couldn't connect"), "own port direct: {reach}");
    assert!(
        lines[1].contains("powernode egress refused") && lines[1].contains("loopback"),
        "own port via proxy: {reach}"
    );
    assert!(
        lines[2].contains("powernode egress refused"),
        "loopback metadata stand-in: {reach}"
    );
    assert!(
        lines[3].contains("powernode egress refused") && lines[3].contains("link-local"),
        "metadata: {reach}"
    );

    assert!(
        std::process::Command::new("pgrep")
            .args(["-f", "sleep 31337"])
            .status()
            .unwrap()
            .code()
            == Some(1),
        "a process outlived its step"
    );
    assert_eq!(
        step(&run, "build")["raw_output"].as_str().unwrap(),
        "1\npython ok\nnode ok\n",
        "{logs}"
    );
    drop(metadata);
    server.stop();
}

#[tokio::test]
async fn egress_reaches_a_listed_address_through_the_proxy_and_network_none_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let target = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = target.local_addr().unwrap().port();
    let app = axum::Router::new().route("/hello", axum::routing::get(|| async { "hello through the proxy" }));
    tokio::spawn(async move { axum::serve(target, app).await.unwrap() });
    // NO_PROXY sends 127.0.0.1 straight to the sandbox's own loopback: name the proxy.
    let pipeline = format!(
        "name: probe\nsteps:\n  - name: fetch\n    type: run_command\n    config:\n      command: curl -sS -m 5 --noproxy '' --proxy http://127.0.0.1:3128 http://127.0.0.1:{port}/hello\n"
    );
    let extra = "[sandbox]\negress_allow = [\"127.0.0.1/32\"]\n";
    let server = start(dir.path(), &pipeline, extra);
    let (run, logs) = manual_run(&server, "{}").await;
    assert_eq!(run["state"], "success", "{run}\n{logs}");
    assert_eq!(step(&run, "fetch")["raw_output"], "hello through the proxy", "{logs}");
    server.stop();

    // With `network = "none"` the same command reaches nothing.
    let dir = tempfile::tempdir().unwrap();
    let extra = format!("{extra}\n[plugins.grants.run_command]\ninterfaces = [\"process\"]\nnetwork = \"none\"\n");
    let server = start(dir.path(), &pipeline, &extra);
    let (run, logs) = manual_run(&server, "{}").await;
    assert_eq!(run["state"], "failure", "{run}\n{logs}");
    assert!(
        logs.contains("Failed to connect") || logs.contains("Couldn't connect"),
        "{logs}"
    );
    server.stop();
}
