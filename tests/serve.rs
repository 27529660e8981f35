//! `outreach preview --serve` end to end: the real binary on a free port, a copy of the shipped
//! campaign in a temporary directory. Over HTTP: the recipient list and its filters, one email
//! and one SMS page, the token off loopback, a template error shown and then fixed, and a change
//! pushed on the SSE stream. In headless Chromium (Debian's `chromium` and `chromium-driver`,
//! driven over WebDriver with the HTTP client the project already has): what a person sees, no
//! console error, no request to any host but the server, and the open page following an edit.

use crate::browser::Browser;
use crate::common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// The shipped campaign (file, templates, contacts) copied into a temporary directory, so tests
/// can edit it.
struct Shipped {
    dir: tempfile::TempDir,
}

impl Shipped {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let repo = common::repo();
        for rel in ["campaigns", "contacts", "templates/psoas"] {
            copy_dir(&repo.join(rel), &dir.path().join(rel));
        }
        Shipped { dir }
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    fn edit(&self, rel: &str, f: impl FnOnce(String) -> String) {
        let p = self.path(rel);
        let s = std::fs::read_to_string(&p).unwrap();
        std::fs::write(&p, f(s)).unwrap();
    }

    /// `outreach preview campaigns/psoas.toml --serve ADDR EXTRA…`, at midday.
    fn serve(&self, addr: &str, extra: &[&str]) -> Server {
        let (log, stderr) = common::ServerLog::new(self.dir.path(), "preview-serve");
        let mut child = Command::new(env!("CARGO_BIN_EXE_outreach"))
            .current_dir(self.dir.path())
            .env("OUTREACH_NOW", common::MIDDAY)
            .env_remove("RUST_LOG")
            .args(["preview", "campaigns/psoas.toml", "--serve", addr])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .unwrap();
        let mut first = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut first)
            .unwrap();
        let at = first
            .find("http://")
            .unwrap_or_else(|| panic!("no address in {first:?}"));
        let printed = first[at..].trim().to_string();
        let base = printed[..printed[7..].find('/').unwrap() + 7].to_string();
        Server {
            _child: common::Killed(child),
            _log: log,
            base,
            printed,
        }
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// A running `preview --serve`, stopped when dropped.
struct Server {
    _child: common::Killed,
    /// Its stderr (the re-load warnings), shown if the test fails.
    _log: common::ServerLog,
    /// `http://127.0.0.1:PORT`
    base: String,
    /// The address it printed (with the token, when there is one).
    printed: String,
}

impl Server {
    async fn get(&self, path: &str) -> (u16, String) {
        let r = reqwest::get(format!("{}{path}", self.base)).await.unwrap();
        (r.status().as_u16(), r.text().await.unwrap())
    }

    async fn version(&self) -> u64 {
        self.get("/version").await.1.trim().parse().unwrap()
    }

    /// Waits until the server has re-loaded past version `v`.
    async fn wait_past(&self, v: u64) -> Duration {
        let start = Instant::now();
        while self.version().await <= v {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "no re-load within 10 s"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        start.elapsed()
    }
}

/// The rows of the recipient list (its `<tbody>`).
fn rows(html: &str) -> usize {
    html.matches("<tr><td>").count()
}

/// The sample contacts' languages, beside their names: the set each gets, and the tag asked.
#[tokio::test]
async fn index_shows_each_patients_language() {
    let s = Shipped::new();
    let server = s.serve("127.0.0.1:0", &[]);
    let (status, html) = server.get("/").await;
    assert_eq!(status, 200);
    assert!(html.contains("<th>name</th><th>language</th>"), "{html}");
    // Each row: its id, then (after the name and its findings) the language.
    for (id, language) in [
        ("P0002", "es (for es-MX)"),
        ("P0006", "es"),
        ("P0004", "en (default: no fr templates)"),
        ("P0003", "en"),
    ] {
        let row = html
            .lines()
            .find(|l| l.contains(&format!("<td>{id}</td>")))
            .unwrap_or_else(|| panic!("no row {id} in {html}"));
        assert!(
            row.contains(&format!("</td><td>{language}</td><td data-channel=")),
            "{row}"
        );
    }
}

#[tokio::test]
async fn index_lists_every_contact_and_filters() {
    let s = Shipped::new();
    let server = s.serve("127.0.0.1:0", &[]);
    assert!(
        server.printed.starts_with("http://127.0.0.1:") && server.printed.ends_with('/'),
        "{}",
        server.printed
    );
    let r = reqwest::get(&server.base).await.unwrap();
    assert_eq!(r.status(), 200);
    let csp = r.headers()["content-security-policy"].to_str().unwrap();
    assert!(
        csp.starts_with("default-src 'none'; script-src 'self';"),
        "{csp}"
    );
    let html = r.text().await.unwrap();
    assert_eq!(rows(&html), 36);
    assert!(html.contains("María González"));
    assert!(html.contains("36 of 36 contacts shown"));
    assert!(
        html.contains("<b>email</b>: 27 due, 0 deferred, 9 skipped"),
        "{html}"
    );
    // check's warnings beside the row they concern.
    assert!(
        html.contains("contacts/sample.csv:27 P0026: duplicate email of line 13 (P0012)"),
        "{html}"
    );
    // Nothing in the page comes from elsewhere.
    for needle in ["src=\"http", "href=\"http", "@import", "url("] {
        assert!(!html.contains(needle), "{needle}");
    }

    // The check totals: 15 SMS skipped, 4 of them not chosen.
    let (_, html) = server.get("/?channel=sms&state=skipped").await;
    assert_eq!(rows(&html), 15);
    assert!(html.contains("15 of 36 contacts shown"));
    assert!(html.contains("skipped: duplicate of line 13 (P0012)"));
    let (_, html) = server.get("/?channel=email&state=due").await;
    assert_eq!(rows(&html), 27);
    let (_, html) = server.get("/?q=gonz").await;
    assert_eq!(rows(&html), 1);
    assert!(html.contains("María González"));
    let (_, html) = server.get("/?q=zzzz-nobody").await;
    assert_eq!(rows(&html), 0);
    // It only shows: no outbox, no ledger.
    assert!(!s.path("outbox").exists());
    assert!(!s.path(".outreach/ledger.sqlite").exists());
}

#[tokio::test]
async fn a_long_list_is_cut_at_500_rows_and_search_reaches_the_rest() {
    let s = Shipped::new();
    s.edit("contacts/sample.csv", |mut csv| {
        for i in 0..600 {
            csv.push_str(&format!(
                "X{i:04},Test,Patient{i:04},test{i}@example.com,,email,yes,no,America/Chicago,\n"
            ));
        }
        csv
    });
    let server = s.serve("127.0.0.1:0", &[]);
    let (_, html) = server.get("/").await;
    assert_eq!(rows(&html), 500);
    assert!(
        html.contains("636 of 636 contacts match; the first 500 are listed"),
        "{html}"
    );
    assert!(html.contains("<b>email</b>: 627 due"), "{html}");
    let (_, html) = server.get("/?q=patient0599").await;
    assert_eq!(rows(&html), 1);
    assert!(html.contains("Test Patient0599"));
}

#[tokio::test]
async fn email_and_sms_pages() {
    let s = Shipped::new();
    let server = s.serve("127.0.0.1:0", &[]);
    let (code, html) = server.get("/m/2/email").await;
    assert_eq!(code, 200);
    assert!(html.contains("<h1>Email to María González</h1>"), "{html}");
    assert!(html.contains("Free phone assessment &amp; treatment plan"));
    // The email is in sandboxed frames (nothing in it runs), at two widths.
    assert_eq!(html.matches("<iframe ").count(), 2);
    assert_eq!(html.matches("sandbox=\"\"").count(), 2);
    assert!(html.contains("class=\"desktop\"") && html.contains("class=\"phone\""));
    assert!(
        html.contains("<h2 id=\"text\">Text part</h2><pre>FREE PHONE ASSESSMENT"),
        "{html}"
    );
    assert!(html.contains("\nHi María,\n"), "{html}");
    assert!(
        html.contains("To: =?utf-8?") || html.contains("To: María"),
        "{html}"
    );
    let (code, eml) = server.get("/m/2/message.eml").await;
    assert_eq!(code, 200);
    assert!(eml.contains("\r\nSubject: "), "{eml}");
    assert!(eml.contains("Content-Type: multipart/alternative"));

    let (code, html) = server.get("/m/2/sms").await;
    assert_eq!(code, 200);
    assert!(html.contains("<h1>SMS to María González</h1>"));
    assert!(
        html.contains(
            "<p id=\"counts\">GSM-7, 214 characters (214 units), 2 segments of up to 153</p>"
        ),
        "{html}"
    );
    assert!(!html.contains("<mark"));
    // check's warning beside the message it concerns.
    let (_, html) = server.get("/m/27/email").await;
    assert!(
        html.contains("contacts/sample.csv:27 P0026: duplicate email of line 13 (P0012)"),
        "{html}"
    );
    assert_eq!(server.get("/m/9999/sms").await.0, 404);
    assert_eq!(server.get("/m/2/nothing").await.0, 404);
}

#[tokio::test]
async fn off_loopback_every_request_needs_the_token() {
    let s = Shipped::new();
    // Not without --allow-remote: nothing listens, exit 2.
    let out = Command::new(env!("CARGO_BIN_EXE_outreach"))
        .current_dir(s.dir.path())
        .args(["preview", "campaigns/psoas.toml", "--serve", "0.0.0.0:0"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("not a loopback address"), "{err}");
    assert!(err.contains("--allow-remote"), "{err}");

    // -q prints nothing but the address with its token.
    let server = s.serve("0.0.0.0:0", &["--allow-remote", "-q"]);
    let token = server.printed.split("?token=").nth(1).unwrap().to_string();
    assert_eq!(token.len(), 32, "{}", server.printed);
    let base = server.base.replace("0.0.0.0", "127.0.0.1");
    let client = reqwest::Client::new();
    for path in [
        "/",
        "/m/2/sms",
        "/m/2/message.eml",
        "/events",
        "/version",
        "/app.js",
    ] {
        let r = client.get(format!("{base}{path}")).send().await.unwrap();
        assert_eq!(r.status(), 401, "{path}");
        // One character changed: never the real token, whatever its first character is.
        let wrong = if token.starts_with('0') { '1' } else { '0' };
        let r = client
            .get(format!("{base}{path}?token={wrong}{}", &token[1..]))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401, "{path} with a wrong token");
    }
    let r = client
        .get(format!("{base}/?token={token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let cookie = r.headers()["set-cookie"].to_str().unwrap().to_string();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    assert!(r.text().await.unwrap().contains("María González"));
    // The cookie alone then opens the other pages.
    let r = client
        .get(format!("{base}/m/2/sms"))
        .header("cookie", cookie.split(';').next().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn on_loopback_another_host_name_is_refused() {
    let s = Shipped::new();
    let server = s.serve("127.0.0.1:0", &[]);
    let r = reqwest::Client::new()
        .get(&server.base)
        .header("host", "attacker.example")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 421);
}

#[tokio::test]
async fn a_template_error_shows_with_file_and_line_then_the_fix_shows() {
    let s = Shipped::new();
    let server = s.serve("127.0.0.1:0", &[]);
    let v = server.version().await;
    s.edit("templates/psoas/sms.txt.hbs", |t| {
        "\n{{#if contact.first_name}}\n".to_string() + &t
    });
    server.wait_past(v).await;
    for path in ["/", "/m/2/sms"] {
        let (code, html) = server.get(path).await;
        assert_eq!(code, 200);
        assert!(html.contains("The campaign does not load"), "{html}");
        assert!(html.contains("templates/psoas/sms.txt.hbs:"), "{html}");
    }
    let (_, html) = server.get("/").await;
    let at = html.find("sms.txt.hbs:").unwrap();
    let line: String = html[at + 12..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    assert!(!line.is_empty(), "no line in {}", &html[at..at + 80]);

    let v = server.version().await;
    s.edit("templates/psoas/sms.txt.hbs", |t| {
        t.replacen("\n{{#if contact.first_name}}\n", "", 1)
    });
    server.wait_past(v).await;
    let (_, html) = server.get("/").await;
    assert!(!html.contains("does not load"));
    assert_eq!(rows(&html), 36);
}

#[tokio::test]
async fn started_on_a_broken_template_the_fix_shows() {
    let s = Shipped::new();
    s.edit("templates/psoas/sms.txt.hbs", |t| {
        "{{#if x}}\n".to_string() + &t
    });
    let server = s.serve("127.0.0.1:0", &[]);
    let (code, html) = server.get("/").await;
    assert_eq!(code, 200);
    assert!(html.contains("The campaign does not load"), "{html}");
    assert!(html.contains("templates/psoas/sms.txt.hbs:"), "{html}");
    let v = server.version().await;
    s.edit("templates/psoas/sms.txt.hbs", |t| {
        t.replacen("{{#if x}}\n", "", 1)
    });
    server.wait_past(v).await;
    let (_, html) = server.get("/").await;
    assert_eq!(rows(&html), 36, "{html}");
}

#[tokio::test]
async fn what_a_send_recorded_shows_as_already_sent() {
    let s = Shipped::new();
    let server = s.serve("127.0.0.1:0", &[]);
    assert_eq!(rows(&server.get("/?state=sent").await.1), 0);
    let v = server.version().await;
    let out = Command::new(env!("CARGO_BIN_EXE_outreach"))
        .current_dir(s.dir.path())
        .env("OUTREACH_NOW", common::MIDDAY)
        .args(["send", "campaigns/psoas.toml", "--channel", "email", "-q"])
        .args(["--set", "campaign.require_approval=false"])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The ledger changed: the server re-loads by itself.
    server.wait_past(v).await;
    let start = Instant::now();
    loop {
        let (_, html) = server.get("/?channel=email&state=sent").await;
        if rows(&html) == 27 {
            assert!(html.contains("sent by an earlier run"));
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(5), "{html}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(rows(&server.get("/?channel=email&state=due").await.1), 0);
    assert_eq!(rows(&server.get("/?channel=sms&state=due").await.1), 21);
}

#[tokio::test]
async fn a_change_is_pushed_on_the_event_stream_within_a_second() {
    let s = Shipped::new();
    let server = s.serve("127.0.0.1:0", &[]);
    let mut events = reqwest::get(format!("{}/events", server.base))
        .await
        .unwrap();
    assert_eq!(
        events.headers()["content-type"].to_str().unwrap(),
        "text/event-stream"
    );
    let first = next_event(&mut events).await;
    assert_eq!(first, "0");
    let start = Instant::now();
    s.edit("templates/psoas/sms.txt.hbs", |t| {
        t.replace("Hi ", "Hello again 🙂 ")
    });
    let second = next_event(&mut events).await;
    let took = start.elapsed();
    assert_eq!(second, "1");
    assert!(took < Duration::from_secs(1), "took {took:?}");
    let (_, html) = server.get("/m/2/sms").await;
    assert!(html.contains("Hello again "), "{html}");
    // The emoji makes it UCS-2, and is marked.
    assert!(
        html.contains("<mark class=\"nongsm\" title=\"not in GSM-7: 🙂 (U+1F642)\">🙂</mark>"),
        "{html}"
    );
    assert!(html.contains("<p id=\"counts\">UCS-2, "), "{html}");
}

/// The data of the next SSE event that has data (keep-alive comments skipped).
async fn next_event(r: &mut reqwest::Response) -> String {
    let mut buf = String::new();
    loop {
        let chunk = tokio::time::timeout(Duration::from_secs(5), r.chunk())
            .await
            .expect("an event within 5 s")
            .unwrap()
            .expect("the stream stays open");
        buf.push_str(&String::from_utf8_lossy(&chunk));
        if let Some(end) = buf.find("\n\n") {
            let event = &buf[..end];
            if let Some(data) = event.lines().find_map(|l| l.strip_prefix("data: ")) {
                return data.to_string();
            }
            buf.drain(..end + 2);
        }
    }
}

#[tokio::test]
async fn in_chromium_a_person_sees_the_patients_and_the_page_follows_edits() {
    let s = Shipped::new();
    let server = s.serve("127.0.0.1:0", &[]);
    let b = Browser::start(1280, 1000).await;

    // The list: every patient, then filtered by typing in the search box.
    b.goto(&format!("{}/", server.base)).await;
    b.wait_text("tbody", |t| t.contains("María González")).await;
    assert_eq!(
        b.js("return document.querySelectorAll('tbody tr').length")
            .await,
        36
    );
    let search = b.element("input[name=q]").await;
    b.cmd(
        reqwest::Method::POST,
        &format!("/element/{search}/value"),
        Some(json!({"text": "whitf"})),
    )
    .await;
    b.wait_text("#shown", |t| t == "1 of 36 contacts shown")
        .await;
    assert!(b.text("tbody").await.contains("Zoë Whitfield"));
    assert!(
        b.js("return location.search")
            .await
            .as_str()
            .unwrap()
            .contains("q=whitf")
    );
    b.cmd(
        reqwest::Method::POST,
        &format!("/element/{search}/clear"),
        Some(json!({})),
    )
    .await;
    for option in [
        "select[name=channel] option[value=sms]",
        "select[name=state] option[value=skipped]",
    ] {
        let el = b.element(option).await;
        b.cmd(
            reqwest::Method::POST,
            &format!("/element/{el}/click"),
            Some(json!({})),
        )
        .await;
    }
    b.wait_text("#shown", |t| t == "15 of 36 contacts shown")
        .await;

    // One email: the patient's name in the message itself, inside the sandboxed frame.
    b.goto(&format!("{}/m/2/email", server.base)).await;
    assert_eq!(b.text("h1").await, "Email to María González");
    let frame = b
        .cmd(
            reqwest::Method::POST,
            "/element",
            Some(json!({"using": "css selector", "value": "iframe.phone"})),
        )
        .await;
    b.cmd(
        reqwest::Method::POST,
        "/frame",
        Some(json!({ "id": frame })),
    )
    .await;
    let inside = b.text("body").await;
    assert!(inside.contains("Hi María,"), "{inside}");
    // Nothing runs in the message: the frame has no scripts (its document is opaque to us only
    // through WebDriver, which may enter it).
    b.cmd(reqwest::Method::POST, "/frame/parent", Some(json!({})))
        .await;
    assert_eq!(
        b.js("return document.querySelector('iframe.phone').getAttribute('sandbox')")
            .await,
        ""
    );

    // One SMS: its segment count; then an edit of the template shows in the open page.
    b.goto(&format!("{}/m/2/sms", server.base)).await;
    assert_eq!(b.text("h1").await, "SMS to María González");
    let counts = b.text("#counts").await;
    assert!(counts.contains("2 segments of up to 153"), "{counts}");
    assert!(
        b.text("#bubble").await.starts_with("Riverside"),
        "{}",
        b.text("#bubble").await
    );
    s.edit("templates/psoas/sms.txt.hbs", |t| {
        t.replace("Hi ", "Hello again 🙂 ")
    });
    let took = b
        .wait_text("#bubble", |t| t.contains("Hello again 🙂 there"))
        .await;
    eprintln!("the open page followed the edit in {took:?}");
    assert!(
        took < Duration::from_millis(1500),
        "the page followed in {took:?}"
    );
    assert!(b.text("#counts").await.starts_with("UCS-2"));
    assert_eq!(
        b.js("return document.querySelectorAll('mark.nongsm').length")
            .await,
        1
    );

    // A syntax error shows in the open page, with its file and line; the fix shows too.
    s.edit("templates/psoas/sms.txt.hbs", |t| {
        "{{#if x}}\n".to_string() + &t
    });
    b.wait_text("#content", |t| t.contains("The campaign does not load"))
        .await;
    assert!(
        b.text("#load-error pre")
            .await
            .contains("templates/psoas/sms.txt.hbs:")
    );
    s.edit("templates/psoas/sms.txt.hbs", |t| {
        t.replacen("{{#if x}}\n", "", 1)
    });
    b.wait_text("#content", |t| t.contains("Hello again")).await;

    // No console error, and no request to any host but the server.
    let errors: Vec<Value> = b
        .log("browser")
        .await
        .into_iter()
        .filter(|e| e["level"] == "SEVERE")
        .collect();
    assert!(errors.is_empty(), "console errors: {errors:?}");
    let urls = b.requested().await;
    assert!(urls.len() >= 6, "{urls:?}");
    for u in &urls {
        // chrome:// is the browser's own new-tab page, before the first navigation: no network.
        let local = ["about:", "data:", "chrome:"]
            .iter()
            .any(|s| u.starts_with(s));
        assert!(
            u.starts_with(&format!("{}/", server.base)) || local,
            "a request to {u}"
        );
    }
    assert!(urls.iter().any(|u| u.ends_with("/app.js")), "{urls:?}");
    assert!(urls.iter().any(|u| u.ends_with("/events")), "{urls:?}");
}

/// The README's screenshots (docs/preview-*.png), not a check: `scripts/screenshots` runs it.
/// WebDriver rather than `chromium --screenshot`, which shoots before a sandboxed frame paints.
#[tokio::test]
#[ignore = "writes docs/preview-*.png; run by scripts/screenshots"]
async fn screenshots_for_the_readme() {
    let s = Shipped::new();
    let server = s.serve("127.0.0.1:0", &[]);
    let b = Browser::start(1280, 900).await;
    let docs = common::repo().join("docs");
    std::fs::create_dir_all(&docs).unwrap();
    for (file, width, height, path, frame) in [
        ("preview-index.png", 1280, 900, "/", None),
        (
            "preview-email-desktop.png",
            1280,
            1000,
            "/m/2/email",
            Some("iframe.desktop"),
        ),
        (
            "preview-email-phone.png",
            390,
            844,
            "/m/2/email",
            Some("iframe.phone"),
        ),
        ("preview-sms-phone.png", 390, 844, "/m/2/sms", None),
    ] {
        b.resize(width, height).await;
        b.goto(&format!("{}{path}", server.base)).await;
        b.wait_text("h1", |t| {
            t.contains("María González") || t.starts_with("Preview")
        })
        .await;
        if let Some(css) = frame {
            let el = b
                .cmd(
                    reqwest::Method::POST,
                    "/element",
                    Some(json!({"using": "css selector", "value": css})),
                )
                .await;
            b.cmd(reqwest::Method::POST, "/frame", Some(json!({ "id": el })))
                .await;
            b.wait_text("body", |t| t.contains("Hi María")).await;
            b.cmd(reqwest::Method::POST, "/frame/parent", Some(json!({})))
                .await;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        std::fs::write(docs.join(file), b.screenshot().await).unwrap();
        eprintln!("docs/{file}");
    }
}
