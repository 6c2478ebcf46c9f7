//! The dashboard in a real headless Chromium against the real server: signed out it shows
//! nothing; signed in, a run appears after a signed webhook, its log lines arrive while it
//! runs, its artifact downloads, a run is cancelled from its page, a refused plugin shows
//! its reason; a forged cross-site POST is refused. Screenshots go to
//! `target/tmp/dashboard-screenshots`.

use fantoccini::Locator;
use reqwest::Method;

use super::browser::Browser;
use super::runs::{api, wait_for};
use super::*;

/// On a push to main: a line, a pause to watch the page during, a line, an artifact.
const LIVE: &str = "name: live\ntriggers:\n  - type: push\n    branches: [main]\nsteps:\n  - name: first\n    type: run_command\n    config:\n      command: printf \"\\\\033[1;31mstep one\\\\033[0m says hello\\\\n\"\n  - name: wait\n    type: run_command\n    config:\n      command: sleep 4\n  - name: build\n    type: run_command\n    config:\n      command: echo artifact-body > report.txt; echo built the report\n  - name: keep\n    type: upload_artifact\n    config:\n      path: report.txt\n";
/// Started by hand and cancelled.
const SLOW: &str =
    "name: slow\nsteps:\n  - name: nap\n    type: run_command\n    config:\n      command: echo napping; sleep 120\n";

/// A 50,000-line log.
const BIG: &str =
    "name: big\nsteps:\n  - name: count\n    type: run_command\n    config:\n      command: seq 1 50000\n";

/// Invalid: a misspelt config field on line 7.
const BROKEN: &str = "name: broken\nsteps:\n  - name: hello\n    type: run_command\n    config:\n      command: echo hi\n      comand: typo\n";

/// The pin the refused plugin's file does not match.
const PIN: &str =
    "[plugins.pins]\nevil = \"sha256:0000000000000000000000000000000000000000000000000000000000000000\"\n";

fn start(dir: &Path) -> Server {
    std::fs::create_dir_all(dir.join("pipelines")).unwrap();
    std::fs::create_dir_all(dir.join("plugins")).unwrap();
    std::fs::write(dir.join("pipelines/live.yml"), LIVE).unwrap();
    std::fs::write(dir.join("pipelines/slow.yml"), SLOW).unwrap();
    std::fs::write(dir.join("pipelines/big.yml"), BIG).unwrap();
    std::fs::write(dir.join("pipelines/broken.yml"), BROKEN).unwrap();
    std::fs::write(dir.join("plugins/evil.wasm"), b"not the pinned file").unwrap();
    let source = format!(
        "{PIN}\n[[sources]]\nid = \"forge\"\nkind = \"github\"\napi_url = \"http://127.0.0.1:9\"\ntoken = \"t0ken\"\nwebhook_secret = \"{SECRET}\"\nbot_login = \"powernode-bot\"\n"
    );
    Server::start_with_sources(dir, &source)
}

async fn text_of(browser: &Browser, css: &str) -> String {
    browser
        .client
        .find(Locator::Css(css))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// Waits until `css` matches an element whose text contains `text`; panics with the page's
/// text after `within`.
async fn wait_text(browser: &Browser, css: &str, text: &str, within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        if let Ok(elements) = browser.client.find_all(Locator::Css(css)).await {
            for e in elements {
                if e.text().await.is_ok_and(|t| t.contains(text)) {
                    return;
                }
            }
        }
        if Instant::now() > deadline {
            let body = text_of(browser, "body").await;
            panic!("waited {within:?} for `{css}` to say `{text}`; the page says:\n{body}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_person_watches_runs_live_and_acts_on_them() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path());
    let browser = Browser::start().await;
    let b = &browser.client;

    // Signed out: every page sends to the sign-in page, which shows nothing of the server.
    let (_, started) = api(&server, Method::POST, "/pipelines/slow/runs", None).await;
    let earlier = started["id"].as_str().unwrap().to_owned();
    for path in [
        "/runs",
        &format!("/runs/{earlier}"),
        "/pipelines",
        "/plugins",
        "/deliveries",
    ] {
        b.goto(&format!("{}{path}", server.url)).await.unwrap();
        assert_eq!(b.current_url().await.unwrap().path(), "/signin", "{path}");
        // Only the sign-in form: no run, pipeline or plugin (the form's `next` field holds the
        // path that was asked for, and nothing else).
        let shown = text_of(&browser, "body").await;
        assert!(
            !shown.contains(&earlier) && !shown.contains("slow"),
            "{path} shows nothing: {shown}"
        );
        assert!(
            b.find_all(Locator::Css("table, #log")).await.unwrap().is_empty(),
            "{path}"
        );
    }
    browser.screenshot("signed-out").await;
    api(&server, Method::POST, &format!("/runs/{earlier}/cancel"), None).await;

    // A wrong token, then the right one.
    b.find(Locator::Id("token"))
        .await
        .unwrap()
        .send_keys("not-the-token")
        .await
        .unwrap();
    b.find(Locator::Css("button[type=submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_text(&browser, ".error", "not this server's", Duration::from_secs(10)).await;
    b.find(Locator::Id("token"))
        .await
        .unwrap()
        .send_keys(API_TOKEN)
        .await
        .unwrap();
    b.find(Locator::Css("button[type=submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    // Back to the page asked for before signing in.
    wait_text(&browser, "h1", "Deliveries", Duration::from_secs(10)).await;
    b.goto(&format!("{}/runs", server.url)).await.unwrap();
    wait_text(&browser, "h1", "Runs", Duration::from_secs(10)).await;

    // A signed push arrives: its run shows up in the open list without a reload.
    let (body, headers) = fixture("github", "push");
    let (status, answer) = post(
        &format!("{}/webhooks/forge", server.url),
        &body,
        &with_delivery(&headers, "dash-1"),
    )
    .await;
    assert_eq!(status, 202, "{answer}");
    let id = answer["runs"][0]["id"].as_str().unwrap().to_owned();
    wait_text(&browser, "#runs tbody", "live", Duration::from_secs(20)).await;
    wait_text(
        &browser,
        "#runs tbody",
        "woodpecker-ci/woodpecker",
        Duration::from_secs(5),
    )
    .await;
    browser.screenshot("runs").await;

    // Its page: the first step's line arrives while the run still runs, then the rest.
    b.find(Locator::LinkText("live")).await.unwrap().click().await.unwrap();
    wait_text(&browser, "#log", "step one says hello", Duration::from_secs(30)).await;
    let (_, run) = api(&server, Method::GET, &format!("/runs/{id}"), None).await;
    assert_eq!(run["state"], "running", "the line came while the run went on: {run}");
    let log_now = text_of(&browser, "#log").await;
    assert!(!log_now.contains("built the report"), "not yet: {log_now}");
    // Its colours, rendered from the line's SGR codes by the stylesheet's classes.
    assert_eq!(text_of(&browser, "#log span.f1.sb").await, "step one");
    let red = b
        .execute(
            "return getComputedStyle(document.querySelector('#log span.f1')).color",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(red, "rgb(255, 123, 114)", "the palette's red");
    browser.screenshot("run-running").await;
    wait_text(&browser, "#log", "built the report", Duration::from_secs(60)).await;
    // At the end the page reloads with the final state and the artifact.
    wait_text(&browser, "h1", "success", Duration::from_secs(30)).await;
    browser.screenshot("run").await;
    b.wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::LinkText("report.txt"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let downloaded = browser.downloads.join("report.txt");
    let deadline = Instant::now() + Duration::from_secs(20);
    while !std::fs::read_to_string(&downloaded).is_ok_and(|t| t == "artifact-body\n") {
        assert!(
            Instant::now() < deadline,
            "the artifact was not downloaded to {downloaded:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // A manual run from its pipeline's Run button; a forged cross-site POST cannot cancel it,
    // its own Cancel button does.
    b.goto(&format!("{}/pipelines/slow", server.url)).await.unwrap();
    b.find(Locator::Id("run")).await.unwrap().click().await.unwrap();
    wait_text(&browser, "#log", "napping", Duration::from_secs(30)).await;
    let slow = b
        .current_url()
        .await
        .unwrap()
        .path()
        .trim_start_matches("/runs/")
        .to_owned();
    let evil = evil_site(&format!("{}/runs/{slow}/cancel", server.url)).await;
    b.goto(&evil).await.unwrap();
    wait_text(&browser, "body", "Refused", Duration::from_secs(10)).await;
    browser.screenshot("forged-post-refused").await;
    let (_, run) = api(&server, Method::GET, &format!("/runs/{slow}"), None).await;
    assert_eq!(run["state"], "running", "the forged cancel did nothing: {run}");
    b.goto(&format!("{}/runs/{slow}", server.url)).await.unwrap();
    b.find(Locator::Id("cancel")).await.unwrap().click().await.unwrap();
    wait_text(&browser, "h1", "cancelled", Duration::from_secs(30)).await;
    let run = wait_for(&server, &slow, "cancelled", |r| r["state"] == "cancelled").await;
    assert_eq!(run["pipeline"], "slow");

    // The refused plugin, with its reason.
    b.goto(&format!("{}/plugins", server.url)).await.unwrap();
    wait_text(&browser, "#plugins", "does not match its pin", Duration::from_secs(10)).await;
    let refused = text_of(&browser, "tr.refused-row").await;
    assert!(refused.contains("evil") && refused.contains("refused"), "{refused}");
    browser.screenshot("plugins").await;

    // The invalid pipeline file, with its positioned error and numbered YAML.
    b.goto(&format!("{}/pipelines", server.url)).await.unwrap();
    wait_text(&browser, "h2", "Invalid pipelines", Duration::from_secs(10)).await;
    let rejected = text_of(&browser, "section.rejected").await;
    assert!(
        rejected.contains("broken.yml:7:") && rejected.contains("unknown field `comand`"),
        "{rejected}"
    );
    browser.screenshot("pipelines").await;

    // A phone's screen: nothing wider than the screen.
    b.set_window_size(390, 844).await.unwrap();
    b.goto(&format!("{}/runs", server.url)).await.unwrap();
    let overflow = b
        .execute(
            "return document.documentElement.scrollWidth - document.documentElement.clientWidth",
            vec![],
        )
        .await
        .unwrap();
    assert!(
        overflow.as_i64().unwrap() <= 0,
        "the runs page is wider than a phone by {overflow} px"
    );
    browser.screenshot("runs-phone").await;
    b.set_window_size(1280, 900).await.unwrap();

    // The delivery, with the run it started.
    b.goto(&format!("{}/deliveries", server.url)).await.unwrap();
    wait_text(&browser, "#deliveries", "accepted", Duration::from_secs(10)).await;
    b.find(Locator::Css("#deliveries a")).await.unwrap();

    // A 50,000-line log: the page loads and scrolls end to end quickly.
    let (_, started) = api(&server, Method::POST, "/pipelines/big/runs", None).await;
    let big = started["id"].as_str().unwrap().to_owned();
    wait_for(&server, &big, "ended", super::runs::ended).await;
    let began = Instant::now();
    b.goto(&format!("{}/runs/{big}", server.url)).await.unwrap();
    let loaded = began.elapsed();
    let lines = b
        .execute("return document.querySelectorAll('#log .l').length", vec![])
        .await
        .unwrap();
    assert!(lines.as_u64().unwrap() >= 50_000, "{lines}");
    // Twenty jumps through the log, each waiting for the frame that paints it.
    let scrolled = b
        .execute_async(
            "const done = arguments[arguments.length - 1]; const log = document.getElementById('log');
             const start = performance.now(); let i = 0;
             function step() { if (i > 20) { done(performance.now() - start); return; }
               log.scrollTop = log.scrollHeight * i / 20; i += 1; requestAnimationFrame(step); }
             requestAnimationFrame(step);",
            vec![],
        )
        .await
        .unwrap();
    let scrolled = scrolled.as_f64().unwrap();
    println!("50,000-line log: page loaded in {loaded:?}, 21 scroll jumps painted in {scrolled:.0} ms");
    assert!(loaded < Duration::from_secs(15), "loading took {loaded:?}");
    assert!(scrolled < 5_000.0, "scrolling took {scrolled} ms");
    browser.screenshot("long-log").await;

    // Signing out ends the session: the runs are hidden again.
    b.find(Locator::Css("nav button")).await.unwrap().click().await.unwrap();
    b.goto(&format!("{}/runs/{id}", server.url)).await.unwrap();
    assert_eq!(b.current_url().await.unwrap().path(), "/signin");
    browser.stop().await;
    server.stop();
}

/// A page on another site (`localhost` rather than `127.0.0.1`, another port) that posts a
/// form to `target` as soon as it loads, as a cross-site request forgery would.
async fn evil_site(target: &str) -> String {
    let page = format!(
        "<!doctype html><form id=f method=post action=\"{target}\"><input name=csrf value=guessed></form>\
         <script>document.getElementById('f').submit()</script>"
    );
    let app = axum::Router::new().route(
        "/",
        axum::routing::get(move || async move { axum::response::Html(page) }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://localhost:{port}/")
}

#[tokio::test]
async fn read_only_public_shows_runs_to_anyone_and_acting_needs_a_session_and_its_csrf_token() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("pipelines")).unwrap();
    std::fs::write(dir.path().join("pipelines/slow.yml"), SLOW).unwrap();
    let server = Server::start_with_sources(
        dir.path(),
        "dashboard = \"read-only-public\"\ndashboard_token = \"dash-token-0123456789\"\n",
    );
    let (_, started) = api(&server, Method::POST, "/pipelines/slow/runs", None).await;
    let id = started["id"].as_str().unwrap().to_owned();
    wait_for(&server, &id, "running", |r| r["state"] == "running").await;
    let anyone = no_redirects();
    // Anyone may look: the run, its log (once the step has printed it); no Cancel button
    // without a sign-in.
    let deadline = Instant::now() + Duration::from_secs(30);
    let page = loop {
        let page = anyone.get(format!("{}/runs/{id}", server.url)).send().await.unwrap();
        assert_eq!(page.status(), 200);
        let page = page.text().await.unwrap();
        if page.contains("napping") || Instant::now() > deadline {
            break page;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(page.contains("napping") && !page.contains("id=\"cancel\""), "{page}");
    let cancel = format!("{}/runs/{id}/cancel", server.url);
    let refused = anyone.post(&cancel).form(&[("csrf", "x")]).send().await.unwrap();
    assert_eq!(refused.status(), 403, "acting needs a sign-in");
    // Signed in with dashboard_token: a POST without the session's CSRF token, or from
    // another origin, is refused; with both it cancels.
    let (cookie, line) = sign_in(&anyone, &server, "dash-token-0123456789").await;
    assert!(line.contains("HttpOnly") && line.contains("SameSite=Strict"), "{line}");
    let page = page_as(&anyone, &server, &format!("/runs/{id}"), &cookie).await;
    let csrf = csrf_of(&page);
    let forged = anyone
        .post(&cancel)
        .header("cookie", &cookie)
        .form(&[("csrf", "guessed")])
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 403);
    let cross = anyone
        .post(&cancel)
        .header("cookie", &cookie)
        .header("origin", "http://evil.example")
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(cross.status(), 403, "another origin is refused even with the token");
    let (_, run) = api(&server, Method::GET, &format!("/runs/{id}"), None).await;
    assert_eq!(run["state"], "running", "nothing was cancelled: {run}");
    let ok = anyone
        .post(&cancel)
        .header("cookie", &cookie)
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 303);
    wait_for(&server, &id, "cancelled", |r| r["state"] == "cancelled").await;
    // A delivery with a wrong signature and an ignored one are listed with why.
    let (body, headers) = fixture("github", "push");
    let mut forged = with_delivery(&headers, "forged-1");
    forged.insert("X-Hub-Signature-256".into(), format!("sha256={}", "0".repeat(64)));
    let (status, _) = post(&format!("{}/webhooks/github", server.url), &body, &forged).await;
    assert_eq!(status, 401);
    let (status, answer) = post(
        &format!("{}/webhooks/github", server.url),
        &body,
        &with_delivery(&headers, "push-1"),
    )
    .await;
    assert_eq!(status, 202, "{answer}");
    let page = anyone
        .get(format!("{}/deliveries", server.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("refused") && page.contains("signature"), "{page}");
    assert!(page.contains("ignored") || page.contains("accepted"), "{page}");
    if let Some(reason) = answer["reason"].as_str() {
        assert!(
            page.contains(&maud::html! { (reason) }.into_string()),
            "the reason it was ignored: {page}"
        );
    }

    // The security headers on every page.
    let page = anyone.get(format!("{}/runs", server.url)).send().await.unwrap();
    let csp = page.headers()["content-security-policy"].to_str().unwrap().to_owned();
    assert!(
        csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"),
        "{csp}"
    );
    server.stop();
}

#[tokio::test]
async fn the_dashboard_follows_a_dark_system_theme() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_with_sources(dir.path(), "");
    let background = |browser: &Browser| {
        let client = browser.client.clone();
        let url = format!("{}/signin", server.url);
        async move {
            client.goto(&url).await.unwrap();
            let color = client
                .execute("return getComputedStyle(document.body).backgroundColor", vec![])
                .await
                .unwrap();
            color.as_str().unwrap().to_owned()
        }
    };
    let light = Browser::start().await;
    assert_eq!(background(&light).await, "rgb(255, 255, 255)");
    light.stop().await;
    let dark = Browser::start_with(&["--force-dark-mode"]).await;
    assert_eq!(
        background(&dark).await,
        "rgb(13, 17, 23)",
        "the dark palette of style.css"
    );
    dark.screenshot("signin-dark").await;
    dark.stop().await;
    server.stop();
}
