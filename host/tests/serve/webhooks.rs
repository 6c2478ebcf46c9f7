//! Webhook deliveries against the real server.

use super::*;

#[tokio::test]
async fn deliveries_are_verified_matched_stored_and_deduplicated() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    let get = |path: &str| client().get(format!("{}{path}", server.url)).send();
    assert_eq!(get("/healthz").await.unwrap().status(), 200);
    assert_eq!(get("/readyz").await.unwrap().status(), 200);

    let hook = format!("{}/webhooks/github", server.url);
    let (body, headers) = fixture("github", "pull_request.opened");
    let (status, first) = post(&hook, &body, &headers).await;
    assert_eq!(status, 202, "{first}");
    assert_eq!(first["status"], "accepted");
    assert_eq!(first["event"], "pull_request");
    assert_eq!(
        first["runs"].as_array().unwrap().len(),
        1,
        "only `review` matches: {first}"
    );
    assert_eq!(first["runs"][0]["pipeline"], "review");

    let (status, again) = post(&hook, &body, &headers).await;
    assert_eq!(
        (status, &again),
        (202, &first),
        "a redelivery gets the first answer, same run ids"
    );

    // Restarted, the server still knows the delivery.
    server.stop();
    let server = Server::start(dir.path());
    let hook = format!("{}/webhooks/github", server.url);
    let (status, after_restart) = post(&hook, &body, &headers).await;
    assert_eq!((status, &after_restart), (202, &first));
    let stored: Vec<_> = server.inbox().iter().map(Result::unwrap).collect();
    assert_eq!(stored.len(), 1, "stored once");
    assert_eq!(stored[0].raw_body, body);
    assert_eq!(stored[0].runs.len(), 1);
    server.stop();
}

#[tokio::test]
async fn bad_input_gets_a_clear_error_and_stores_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    let hook = format!("{}/webhooks/github", server.url);
    let (body, headers) = fixture("github", "pull_request.opened");

    let mut wrong = headers.clone();
    wrong.insert("X-Hub-Signature-256".into(), format!("sha256={}", "0".repeat(64)));
    let (status, err) = post(&hook, &body, &wrong).await;
    assert_eq!(status, 401, "{err}");
    let mut missing = headers.clone();
    missing.remove("X-Hub-Signature-256");
    assert_eq!(post(&hook, &body, &missing).await.0, 401);

    let (status, err) = post(&format!("{}/webhooks/nope", server.url), &body, &headers).await;
    assert_eq!(status, 404);
    assert!(
        err["error"].as_str().unwrap().contains("unknown source `nope`"),
        "{err}"
    );

    let truncated = &body[..body.len() / 2];
    let mut signed = headers.clone();
    signed.insert(
        "X-Hub-Signature-256".into(),
        format!("sha256={}", hex_hmac_sha256(SECRET.as_bytes(), truncated)),
    );
    let (status, err) = post(&hook, truncated, &signed).await;
    assert_eq!(status, 400, "{err}");
    assert!(err["error"].as_str().unwrap().starts_with("malformed payload"), "{err}");

    let mut form = headers.clone();
    form.insert("Content-Type".into(), "application/x-www-form-urlencoded".into());
    let (status, err) = post(&hook, &body, &form).await;
    assert_eq!(status, 415);
    assert!(err["error"].as_str().unwrap().contains("application/json"), "{err}");

    let big = vec![b' '; 2 << 20];
    assert_eq!(post(&hook, &big, &headers).await.0, 413);

    let (ping, ping_headers) = fixture("github", "ping");
    let (status, ignored) = post(&hook, &ping, &ping_headers).await;
    assert_eq!(
        (status, ignored["status"].as_str()),
        (202, Some("ignored")),
        "{ignored}"
    );

    // Our own bot's comment starts nothing.
    let (comment, comment_headers) = fixture("github", "issue_comment.created.pr");
    let (status, ignored) = post(
        &format!("{}/webhooks/github-as-bot", server.url),
        &comment,
        &comment_headers,
    )
    .await;
    assert_eq!(status, 202);
    assert!(ignored["reason"].as_str().unwrap().contains("our own bot"), "{ignored}");

    // The server still serves, and nothing above was stored.
    assert_eq!(post(&hook, &body, &headers).await.0, 202);
    server.stop();
    let inbox = Inbox::open(&dir.path().join("data/inbox")).unwrap();
    assert_eq!(inbox.len(), 1);
}

/// A source of `id` at `api_url` with no `bot_login`.
fn source_without_bot_login(id: &str, api_url: &str) -> String {
    format!(
        "[[sources]]\nid = \"{id}\"\nkind = \"github\"\napi_url = \"{api_url}\"\ntoken = \"unused\"\nwebhook_secret = \"{SECRET}\"\n"
    )
}

// Multi-threaded: the fake forge must answer while this thread waits for the server to start.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_bot_login_the_server_asks_the_forge_at_start_and_drops_its_own_events() {
    let dir = tempfile::tempdir().unwrap();
    let (api, _task) = github_user_api("runatlantis", false).await;
    let server = Server::start_with_sources(dir.path(), &source_without_bot_login("github-asked", &api));
    let (comment, headers) = fixture("github", "issue_comment.created.pr");
    let (status, answer) = post(&format!("{}/webhooks/github-asked", server.url), &comment, &headers).await;
    assert_eq!(status, 202);
    assert_eq!(
        answer["reason"], "sent by our own bot account `runatlantis`",
        "{answer}"
    );
    assert!(!server.stderr().contains("bot_login"), "{}", server.stderr());
    server.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_the_forge_will_not_say_who_we_are_the_server_warns_and_serves() {
    let dir = tempfile::tempdir().unwrap();
    let (app_api, _task) = github_user_api("runatlantis", true).await;
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let down_api = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let sources = format!(
        "{}\n{}",
        source_without_bot_login("github-app", &app_api),
        source_without_bot_login("github-down", &down_api)
    );
    let server = Server::start_with_sources(dir.path(), &sources);
    let stderr = server.stderr();
    assert!(
        stderr.contains("source `github-app`: the forge did not say which account the token belongs to: forbidden (403): Resource not accessible by integration"),
        "{stderr}"
    );
    assert!(
        stderr.contains("Set `bot_login` for source `github-app` in the config."),
        "{stderr}"
    );
    assert!(
        stderr.contains("source `github-down`: the forge did not say which account the token belongs to: transport:"),
        "{stderr}"
    );
    assert!(
        stderr.contains("Set `bot_login` for source `github-down` in the config."),
        "{stderr}"
    );
    assert!(stderr.contains("WARN"), "{stderr}");
    // Still serving; the bot's own comment cannot be told apart and is accepted.
    let (comment, headers) = fixture("github", "issue_comment.created.pr");
    let (status, answer) = post(&format!("{}/webhooks/github-app", server.url), &comment, &headers).await;
    assert_eq!((status, answer["status"].as_str()), (202, Some("accepted")), "{answer}");
    server.stop();
}

#[tokio::test]
async fn a_sigkill_mid_stream_loses_no_acknowledged_delivery() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    let hook = format!("{}/webhooks/github", server.url);
    let (body, headers) = fixture("github", "pull_request.opened");
    let acked: Arc<Mutex<Vec<String>>> = Arc::default();
    let mut senders = Vec::new();
    for task in 0..8 {
        let (hook, body, headers, acked) = (hook.clone(), body.clone(), headers.clone(), acked.clone());
        senders.push(tokio::spawn(async move {
            for n in 0..10_000 {
                let id = format!("crash-{task}-{n}");
                let mut req = client().post(&hook).body(body.clone());
                for (k, v) in with_delivery(&headers, &id) {
                    req = req.header(k, v);
                }
                match req.send().await {
                    Ok(resp) if resp.status().as_u16() == 202 => acked.lock().unwrap().push(id),
                    Ok(resp) => panic!("unexpected {}", resp.status()),
                    Err(_) => break,
                }
            }
        }));
    }
    // A sender that stopped early (an error answer, a refused connection) ends the wait too:
    // its panic or the count below then says why.
    until(
        Duration::from_secs(120),
        || format!("300 acknowledged deliveries, got {}", acked.lock().unwrap().len()),
        || acked.lock().unwrap().len() >= 300 || senders.iter().any(|s| s.is_finished()),
    )
    .await;
    let dir_path = server.dir.clone();
    server.kill();
    for s in senders {
        s.await.unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    let inbox = Inbox::open(&dir_path.join("data/inbox")).unwrap();
    let mut stored: BTreeMap<String, usize> = BTreeMap::new();
    for d in inbox.iter() {
        *stored.entry(d.unwrap().delivery_id).or_default() += 1;
    }
    assert!(acked.len() >= 300);
    for id in &acked {
        assert_eq!(
            stored.get(id),
            Some(&1),
            "acknowledged delivery {id} is stored exactly once"
        );
    }
    assert!(stored.values().all(|n| *n == 1), "no delivery stored twice");
}

const GITEA_SOURCE: &str = "[[sources]]\nid = \"gitea-old\"\nkind = \"gitea\"\napi_url = \"http://127.0.0.1:9\"\ntoken = \"unused\"\nwebhook_secret = \"It's a Secret to Everybody\"\nbot_login = \"powernode-bot\"\n";

/// The stored deliveries of `source`.
fn stored_from(server: &Server, source: &str) -> Vec<powernode::store::inbox::StoredDelivery> {
    let all = server.inbox().iter().map(Result::unwrap);
    all.filter(|d| d.source == source).collect()
}

#[tokio::test]
async fn an_old_giteas_secret_in_the_body_is_never_stored_and_redeliveries_still_dedupe() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_with_sources(dir.path(), GITEA_SOURCE);
    let hook = format!("{}/webhooks/gitea-old", server.url);
    let (body, headers) = fixture("gitea", "pull_request.opened");
    let sent: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(sent["secret"], "12345", "the fixture carries the hook's secret");
    let (status, first) = post(&hook, &body, &headers).await;
    assert_eq!((status, first["status"].as_str()), (202, Some("accepted")), "{first}");
    assert_eq!(post(&hook, &body, &headers).await, (202, first.clone()), "a redelivery");

    // Without a delivery id header, the stored body identifies a redelivery.
    let mut anonymous = headers.clone();
    anonymous.retain(|k, _| !k.ends_with("-Delivery"));
    let (status, unnamed) = post(&hook, &body, &anonymous).await;
    assert_eq!(status, 202, "{unnamed}");

    // Restarted: the inbox is replayed and both are still known.
    server.stop();
    let server = Server::start_with_sources(dir.path(), GITEA_SOURCE);
    let hook = format!("{}/webhooks/gitea-old", server.url);
    assert_eq!(post(&hook, &body, &headers).await, (202, first.clone()));
    assert_eq!(post(&hook, &body, &anonymous).await, (202, unnamed.clone()));

    let stored = stored_from(&server, "gitea-old");
    assert_eq!(stored.len(), 2, "each stored once");
    let mut expected = sent.clone();
    expected.as_object_mut().unwrap().remove("secret");
    for d in &stored {
        let text = String::from_utf8(d.raw_body.clone()).unwrap();
        assert!(!text.contains("\"secret\"") && !text.contains("12345\""), "{text}");
        assert_eq!(serde_json::from_str::<Value>(&text).unwrap(), expected);
    }
    // The body-derived id is the stored body's digest, not one over the secret.
    let digest = hex_sha256(&stored[1].raw_body);
    assert_eq!(stored[1].delivery_id, format!("sha256:{digest}"));
    assert_eq!(unnamed["delivery"], stored[1].delivery_id);

    // And through the API: the delivery with its normalized event.
    let (status, text) = api_text(
        &server,
        reqwest::Method::GET,
        &format!("/events/{}", stored[0].seq),
        None,
    )
    .await;
    assert_eq!(status, 200, "{text}");
    assert!(!text.contains("12345\""), "{text}");
    let event: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(event["event"]["event"], "pull_request");
    assert_eq!(event["answer"], first);
    server.stop();
}

fn hex_sha256(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}
