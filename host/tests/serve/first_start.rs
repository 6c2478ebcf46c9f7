//! The first start: `powernode serve` without a config shows a getting-started page, and
//! `powernode init` writes a set-up that serves and runs as it is (from its own folder,
//! with the variables it printed).

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;

use super::*;

/// Starts `powernode serve --listen 127.0.0.1:0` in `cwd` (no `--config`) with `env`.
fn serve_in(cwd: &Path, env: &BTreeMap<String, String>) -> Server {
    let log = std::fs::File::create(cwd.join("stderr.log")).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_powernode"))
        .args(["serve", "--listen", "127.0.0.1:0"])
        .current_dir(cwd)
        .envs(env)
        .stdout(Stdio::piped())
        .stderr(Stdio::from(log))
        .spawn()
        .unwrap();
    let mut reader = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    reader.read_line(&mut first).unwrap();
    let mut second = String::new();
    reader.read_line(&mut second).unwrap();
    child.stdout = Some(reader.into_inner());
    let url = first
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .unwrap_or_else(|| panic!("no address in `{first}`"))
        .to_string();
    let server = Server {
        child,
        url,
        dir: cwd.to_path_buf(),
        _shared: None,
    };
    // Kept for the test to read: what a person sees in the terminal after the address.
    std::fs::write(cwd.join("second-line"), second).unwrap();
    server
}

/// Lets `nobody` (commands run as it when the tests run as root) reach `dir`.
fn open_up(dir: &Path) {
    for ancestor in dir
        .ancestors()
        .take_while(|a| a.starts_with(std::env::temp_dir()) && *a != std::env::temp_dir())
    {
        std::fs::set_permissions(ancestor, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
}

#[tokio::test]
async fn serve_without_a_config_shows_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    open_up(dir.path());
    let server = serve_in(dir.path(), &BTreeMap::new());
    let said = std::fs::read_to_string(dir.path().join("second-line")).unwrap();
    assert!(
        said.starts_with("no config file:"),
        "the terminal says what is going on: {said}"
    );
    let page = client().get(format!("{}/", server.url)).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(
        page.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("script-src 'self'"),
        "{:?}",
        page.headers()
    );
    let text = page.text().await.unwrap();
    assert!(text.contains("powernode init my-ci"), "{text}");
    assert!(text.contains("POWERNODE_WEBHOOK_SECRET"), "{text}");
    for forge in ["github", "gitea", "forgejo", "gitlab"] {
        assert!(
            text.contains(&format!("{}/webhooks/{forge}", server.url)),
            "{forge}: {text}"
        );
    }
    // Nothing else is open: the runs need a sign-in, which needs a token this server lacks.
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let runs = client.get(format!("{}/runs", server.url)).send().await.unwrap();
    assert_eq!(runs.status(), 303);
    assert_eq!(runs.headers()["location"], "/signin?next=/runs");
    let signin = client
        .get(format!("{}/signin", server.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(signin.contains("has no token to sign in with"), "{signin}");
    let api = client.get(format!("{}/api/runs", server.url)).send().await.unwrap();
    assert_eq!(api.status(), 403);
    server.stop();
}

#[tokio::test]
async fn init_writes_a_set_up_that_serves_and_runs() {
    let dir = tempfile::tempdir().unwrap();
    open_up(dir.path());
    let setup = dir.path().join("my-ci");
    let out = Command::new(env!("CARGO_BIN_EXE_powernode"))
        .args([
            "init",
            setup.to_str().unwrap(),
            "--public-url",
            "https://ci.example.com",
            "--forge",
            "gitea",
        ])
        .output()
        .unwrap();
    let printed = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{printed}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The generated values, printed as the exports the config reads.
    let mut env = BTreeMap::new();
    for line in printed.lines().map(str::trim).filter(|l| l.starts_with("export ")) {
        let (name, value) = line["export ".len()..].split_once('=').unwrap();
        assert_eq!(value.len(), 64, "{name}: 32 random bytes in hex");
        env.insert(name.to_owned(), value.to_owned());
    }
    let names: Vec<&str> = env.keys().map(String::as_str).collect();
    assert_eq!(names, ["POWERNODE_API_TOKEN", "POWERNODE_WEBHOOK_SECRET"]);
    assert_ne!(env["POWERNODE_API_TOKEN"], env["POWERNODE_WEBHOOK_SECRET"]);
    assert!(
        printed.contains("https://ci.example.com/webhooks/gitea (active)"),
        "{printed}"
    );
    assert!(printed.contains("https://ci.example.com/webhooks/gitlab"), "{printed}");
    // The same values in powernode.env, readable by its owner only; the seed's pipeline as is.
    let env_file = setup.join("powernode.env");
    assert_eq!(
        std::fs::metadata(&env_file).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert!(
        std::fs::read_to_string(&env_file)
            .unwrap()
            .contains(&env["POWERNODE_API_TOKEN"])
    );
    assert_eq!(
        std::fs::read_to_string(setup.join("pipelines/review.yml")).unwrap(),
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/it/seed/review.yml")).unwrap()
    );
    let config = std::fs::read_to_string(setup.join("powernode.toml")).unwrap();
    assert!(config.contains("api_token = \"${POWERNODE_API_TOKEN}\""), "{config}");
    assert!(
        !config.contains(&env["POWERNODE_API_TOKEN"]),
        "no secret in the config file"
    );
    // A second init there refuses, saying why (exit 2).
    let again = Command::new(env!("CARGO_BIN_EXE_powernode"))
        .args(["init", setup.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(again.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&again.stderr).contains("already exists"));

    // Served from its folder with the printed variables (and the active source's token).
    env.insert("GITEA_TOKEN".into(), "gitea-token".into());
    let server = serve_in(&setup, &env);
    let said = std::fs::read_to_string(setup.join("second-line")).unwrap();
    assert!(
        said.starts_with("config: powernode.toml"),
        "./powernode.toml was read: {said}"
    );
    let trigger = Command::new(env!("CARGO_BIN_EXE_powernode"))
        .args(["trigger", "hello", "--server", &server.url])
        .env("POWERNODE_API_TOKEN", &env["POWERNODE_API_TOKEN"])
        .env_remove("POWERNODE_TOKEN")
        .output()
        .unwrap();
    assert!(trigger.status.success(), "{}", String::from_utf8_lossy(&trigger.stderr));
    let id = String::from_utf8_lossy(&trigger.stdout).trim().to_owned();
    let logs = Command::new(env!("CARGO_BIN_EXE_powernode"))
        .args(["logs", "--follow", &id, "--server", &server.url])
        .env("POWERNODE_API_TOKEN", &env["POWERNODE_API_TOKEN"])
        .env_remove("POWERNODE_TOKEN")
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&logs.stdout);
    assert_eq!(
        logs.status.code(),
        Some(0),
        "{log}{}",
        String::from_utf8_lossy(&logs.stderr)
    );
    assert!(log.contains("[greet] hello from Powernode on"), "{log}");
    // The webhook secret it printed is the one the gitea source checks.
    let body = br#"{"zen": "x"}"#;
    let signature = hex_hmac_sha256(env["POWERNODE_WEBHOOK_SECRET"].as_bytes(), body);
    let mut headers = BTreeMap::new();
    headers.insert("Content-Type".to_string(), "application/json".to_string());
    headers.insert("X-Gitea-Event".to_string(), "push".to_string());
    headers.insert("X-Gitea-Delivery".to_string(), "d-1".to_string());
    headers.insert("X-Gitea-Signature".to_string(), signature);
    let (status, answer) = post(&format!("{}/webhooks/gitea", server.url), body, &headers).await;
    assert_ne!(status, 401, "signed with the printed secret: {answer}");
    headers.insert("X-Gitea-Signature".to_string(), "00".repeat(32));
    let (status, _) = post(&format!("{}/webhooks/gitea", server.url), body, &headers).await;
    assert_eq!(status, 401, "another secret is refused");
    server.stop();
}
