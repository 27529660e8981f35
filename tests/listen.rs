//! `outreach listen` end to end: the real binary serving on 127.0.0.1, driven by an HTTP client
//! as a mail provider, a patient's browser and an SMS provider would drive it. Requests are
//! signed here exactly as Twilio and Vonage sign them (by this file's own code, not the
//! program's), and what they recorded is read back with `status`, `check`, `inbox` and the
//! ledger itself.

use crate::common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use crate::common::{Fixture, HEADER, run};
use hmac::{Hmac, Mac};
use wiremock::matchers::{body_string_contains, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

pub(crate) const BASE: &str = "https://outreach.riverside.example";
pub(crate) const ACCOUNT: &str = "ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
pub(crate) const TOKEN_ENV: &str = "OUTREACH_TEST_SMS_TOKEN";
pub(crate) const TOKEN: &str = "test-token-0123";

/// A running `outreach listen`, stopped with SIGTERM when dropped.
pub(crate) struct Listening {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    url: String,
    /// What it printed at start.
    banner: String,
}

impl Listening {
    /// Starts `outreach listen ARGS` in `f` on a free port and waits for its first line.
    pub(crate) fn start(f: &Fixture, args: &[&str]) -> Listening {
        let mut args = args.to_vec();
        args.extend(["--addr", "127.0.0.1:0"]);
        Self::start_as(f, &args)
    }

    /// Starts `outreach listen ARGS` (its address theirs to say) and waits for its first line.
    fn start_as(f: &Fixture, args: &[&str]) -> Listening {
        let mut child = Command::new(assert_cmd::cargo::cargo_bin("outreach"))
            .current_dir(f.dir.path())
            .env("OUTREACH_NOW", common::MIDDAY)
            .env(TOKEN_ENV, TOKEN)
            .env("OUTREACH_TEST_VONAGE_SIG", "vonage-signature-secret")
            .env_remove("RUST_LOG")
            .arg("listen")
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let mut banner = String::new();
        out.read_line(&mut banner).unwrap();
        let bound = banner
            .strip_prefix("Listening on ")
            .and_then(|r| r.split(' ').next())
            .unwrap_or_else(|| panic!("no banner: {banner:?}"))
            .to_string();
        // The rest of the banner came in the same write.
        let mut more = String::new();
        while out.buffer().contains(&b'\n') {
            out.read_line(&mut more).unwrap();
        }
        Listening {
            child,
            url: format!("http://{bound}"),
            banner: banner + &more,
        }
    }

    /// Sends SIGTERM and waits; the exit code.
    pub(crate) fn stop(mut self) -> Option<i32> {
        let pid = self.child.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        let code = self.child.wait().unwrap().code();
        std::mem::forget(self);
        code
    }
}

impl Drop for Listening {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An answer: status, headers (lowercase names), body.
pub(crate) struct Answer {
    pub(crate) status: u16,
    headers: reqwest::header::HeaderMap,
    pub(crate) body: String,
}

/// One HTTP request, as a provider or a browser makes it.
fn http(method: &str, url: &str, headers: &[(&str, &str)], body: impl Into<Vec<u8>>) -> Answer {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let mut req = client.request(method.parse().unwrap(), url);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let r = req.body(body.into()).send().await.unwrap();
        Answer {
            status: r.status().as_u16(),
            headers: r.headers().clone(),
            body: r.text().await.unwrap(),
        }
    })
}

fn form(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            b' ' => "+".to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// `X-Twilio-Signature` as Twilio computes it: HMAC-SHA1 with the auth token over the full
/// URL followed by each POST parameter's name and value, sorted by name; base64.
fn twilio_signature(url: &str, params: &[(&str, &str)]) -> String {
    let mut sorted = params.to_vec();
    sorted.sort();
    let mut data = url.to_string();
    for (k, v) in sorted {
        data.push_str(k);
        data.push_str(v);
    }
    let mut mac = Hmac::<sha1::Sha1>::new_from_slice(TOKEN.as_bytes()).unwrap();
    mac.update(data.as_bytes());
    data_encoding::BASE64.encode(&mac.finalize().into_bytes())
}

/// A Twilio webhook POST to `route` (`status` or `inbound`) of test-campaign, signed (or with
/// `signature` instead when given).
pub(crate) fn twilio_post(
    l: &Listening,
    route: &str,
    params: &[(&str, &str)],
    signature: Option<&str>,
) -> Answer {
    let public = format!("{BASE}/sms/test-campaign/{route}");
    let sig = signature.map_or_else(|| twilio_signature(&public, params), str::to_string);
    let mut headers = vec![("content-type", "application/x-www-form-urlencoded")];
    if !sig.is_empty() {
        headers.push(("x-twilio-signature", sig.as_str()));
    }
    http(
        "POST",
        &format!("{}/sms/test-campaign/{route}", l.url),
        &headers,
        form(params),
    )
}

fn status(f: &Fixture, file: &str) -> String {
    let (code, out, err) = f.run(&["status", file]);
    assert_eq!(code, 0, "{err}");
    out
}

/// A Twilio status callback's parameters: `ErrorCode` only when `code` is not empty.
pub(crate) fn twilio_receipt(sid: &str, status: &str, code: &str) -> Vec<(String, String)> {
    let mut p = vec![
        ("MessageSid", sid),
        ("MessageStatus", status),
        ("AccountSid", ACCOUNT),
    ];
    if !code.is_empty() {
        p.push(("ErrorCode", code));
    }
    p.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// The security headers every answer carries.
fn assert_secure(a: &Answer) {
    let h = |n: &str| a.headers.get(n).and_then(|v| v.to_str().ok()).unwrap_or("");
    assert!(
        h("content-security-policy").contains("default-src 'none'"),
        "{:?}",
        a.headers
    );
    assert!(!h("content-security-policy").contains("script-src"));
    assert_eq!(h("x-content-type-options"), "nosniff");
    assert_eq!(h("referrer-policy"), "no-referrer");
    assert_eq!(h("cache-control"), "no-store");
}

/// An email campaign whose unsubscribe links are `listen`'s (no unsubscribe_url of its own).
fn email_fixture() -> Fixture {
    let f = Fixture::email_only(&format!(
        "{HEADER}\nP1,Ann,Lee,ann@example.com,,email,yes,,\n\
         P2,Bo,Ng,bo@example.com,,email,yes,,\nP3,Cy,Ox,cy@example.com,,email,yes,,\n"
    ));
    let campaign = common::campaign_toml_on(
        &["email"],
        &format!("[sending]\nemail_rate = \"0\"\n\n[listen]\nbase_url = \"{BASE}\"\n"),
    );
    let campaign: String = campaign
        .lines()
        .filter(|l| !l.starts_with("unsubscribe_url"))
        .map(|l| format!("{l}\n"))
        .collect();
    f.write("campaign.toml", &campaign);
    f
}

/// The unsubscribe link of each email in the outbox, by recipient.
fn links(f: &Fixture) -> std::collections::BTreeMap<String, String> {
    let mut links = std::collections::BTreeMap::new();
    for e in std::fs::read_dir(f.path("outbox/email")).unwrap() {
        let text = std::fs::read_to_string(e.unwrap().path()).unwrap();
        let field = |name: &str| {
            text.lines()
                .find(|l| l.starts_with(name))
                .unwrap()
                .to_string()
        };
        let to = field("To: ");
        let to = to[to.find('<').unwrap() + 1..to.find('>').unwrap()].to_string();
        let header = field("List-Unsubscribe: ");
        let url = header
            .split(['<', '>'])
            .find(|p| p.starts_with("https://"))
            .unwrap()
            .to_string();
        links.insert(to, url);
    }
    links
}

/// The ledger does not say which language an email went in: the page answers in the one the
/// browser asks for among the campaign's (its templates' languages), else English.
#[test]
fn the_unsubscribe_page_speaks_the_language_the_browser_asks_for() {
    let f = email_fixture().with_language("es");
    let (code, out, err) = f.run(&["send", "campaign.toml"]);
    assert_eq!(code, 0, "{out}{err}");
    let links = links(&f);
    let link = |l: &Listening, who: &str| format!("{}{}", l.url, links[who].replace(BASE, ""));
    let l = Listening::start(&f, &["campaign.toml"]);
    let at = |who: &str| link(&l, who);
    let spanish = [("accept-language", "es-MX,es;q=0.9,en;q=0.8")];

    let page = http("GET", &at("ann@example.com"), &spanish, "");
    assert_eq!(page.status, 200, "{}", page.body);
    assert_secure(&page);
    assert_eq!(page.headers["vary"], "accept-language");
    for words in [
        "<html lang=\"es\">",
        "<title>Cancelar la suscripción a Riverside Physio</title>",
        "<p>¿Dejar de recibir correos de Riverside Physio en <strong>a***@example.com</strong>?</p>",
        "<button type=\"submit\">Cancelar la suscripción</button>",
    ] {
        assert!(page.body.contains(words), "{words} in {}", page.body);
    }
    let done = http("POST", &at("ann@example.com"), &spanish, "unsubscribe=page");
    assert!(
        done.body.contains("<h1>Su suscripción está cancelada</h1>"),
        "{}",
        done.body
    );

    // French is not among the campaign's languages: English, as without the header.
    for headers in [&[("accept-language", "fr-CA,fr;q=0.9")][..], &[]] {
        let page = http("GET", &at("bo@example.com"), headers, "");
        assert!(page.body.contains("<html lang=\"en\">"), "{}", page.body);
        assert!(
            page.body
                .contains("<h1>Unsubscribe from Riverside Physio</h1>")
        );
    }
    drop(l);

    // A campaign without Spanish templates answers in English whatever the browser asks.
    std::fs::remove_dir_all(f.path("templates/es")).unwrap();
    let l = Listening::start(&f, &["campaign.toml"]);
    let page = http("GET", &link(&l, "cy@example.com"), &spanish, "");
    assert!(page.body.contains("<html lang=\"en\">"), "{}", page.body);
}

#[test]
fn an_unsubscribe_link_shows_a_page_and_a_one_click_post_unsubscribes_once() {
    let f = email_fixture();
    let (code, out, err) = f.run(&["send", "campaign.toml"]);
    assert_eq!(code, 0, "{out}{err}");
    let links = links(&f);
    let ann = &links["ann@example.com"];
    assert!(ann.starts_with(&format!("{BASE}/unsubscribe/")), "{ann}");
    let local = |link: &str| link.replace(BASE, "");

    let l = Listening::start(&f, &["campaign.toml"]);
    assert!(
        l.banner.contains(&format!(
            "unsubscribe links: {BASE}/unsubscribe/{{{{token}}}}"
        )),
        "{}",
        l.banner
    );
    // A mail scanner's GET unsubscribes nobody: it shows the page.
    let page = http("GET", &format!("{}{}", l.url, local(ann)), &[], "");
    assert_eq!(page.status, 200, "{}", page.body);
    assert_secure(&page);
    assert!(
        page.body.contains("Unsubscribe from Riverside Physio"),
        "{}",
        page.body
    );
    assert!(page.body.contains("a***@example.com"), "{}", page.body);
    assert!(
        !page.body.contains("ann@example.com"),
        "the page masks the address"
    );
    assert!(
        page.body.contains("<form method=\"post\">"),
        "{}",
        page.body
    );
    assert!(
        !page.body.contains("<script") && !page.body.contains("src="),
        "{}",
        page.body
    );
    assert_eq!(
        f.after_sending("campaign.toml", "email", &["opted out"]),
        "0 opted out"
    );

    // RFC 8058 one-click, urlencoded; twice is once.
    for _ in 0..2 {
        let a = http(
            "POST",
            &format!("{}{}", l.url, local(ann)),
            &[("content-type", "application/x-www-form-urlencoded")],
            "List-Unsubscribe=One-Click",
        );
        assert_eq!(a.status, 200, "{}", a.body);
        assert!(a.body.contains("You are unsubscribed"), "{}", a.body);
    }
    assert_eq!(
        f.after_sending("campaign.toml", "email", &["opted out"]),
        "1 opted out"
    );
    // Multipart form data, as the RFC recommends.
    let boundary = "----outreachtest";
    let body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"List-Unsubscribe\"\r\n\r\n\
         One-Click\r\n--{boundary}--\r\n"
    );
    let a = http(
        "POST",
        &format!("{}{}", l.url, local(&links["bo@example.com"])),
        &[(
            "content-type",
            &format!("multipart/form-data; boundary={boundary}"),
        )],
        body,
    );
    assert_eq!(a.status, 200, "{}", a.body);
    // A visit after unsubscribing says so, with no button.
    let again = http("GET", &format!("{}{}", l.url, local(ann)), &[], "");
    assert!(again.body.contains("You are unsubscribed") && !again.body.contains("<form"));

    // Malformed and unknown tokens: a 404 that says nothing about anyone.
    for path in [
        "/unsubscribe/abc",
        "/unsubscribe/aaaaaaaaaaaaaaaaaaaaaaaaaa",
        "/unsubscribe?t=zz",
        "/ledger.sqlite",
    ] {
        let a = http("GET", &format!("{}{path}", l.url), &[], "");
        assert_eq!(a.status, 404, "{path}");
        assert_secure(&a);
        assert!(
            !a.body.contains('@') && !a.body.contains("Riverside"),
            "{}",
            a.body
        );
        let a = http(
            "POST",
            &format!("{}{path}", l.url),
            &[],
            "List-Unsubscribe=One-Click",
        );
        assert_eq!(a.status, 404, "{path}");
    }
    // Over 64 KiB: refused before it is read.
    let a = http(
        "POST",
        &format!("{}{}", l.url, local(&links["cy@example.com"])),
        &[],
        vec![b'x'; 70_000],
    );
    assert_eq!(a.status, 413);
    assert_eq!(l.stop(), Some(0), "SIGTERM ends it cleanly");
    assert_eq!(
        f.after_sending("campaign.toml", "email", &["opted out"]),
        "2 opted out"
    );

    // The very next run of any campaign of the state directory skips them.
    let v = second_campaign(&f);
    assert_eq!(v["channels"][0]["skipped"]["suppressed"], 2, "{v}");
    assert_eq!(v["channels"][0]["due"], 1, "{v}");
}

/// `check` of a second campaign of the state directory (`second.toml`, written once), as JSON.
fn second_campaign(f: &Fixture) -> serde_json::Value {
    if !f.path("second.toml").exists() {
        f.write(
            "second.toml",
            &f.read("campaign.toml")
                .replace("id = \"test-campaign\"", "id = \"second\""),
        );
    }
    let (_, out, _) = f.run(&["check", "second.toml", "--format", "json"]);
    serde_json::from_str(&out).unwrap()
}

/// SMS to three patients through a Twilio mock that gives SM…1, SM…2, SM…3; P3's number is on
/// the clinic's own opt-out list after the send.
fn twilio_fixture(rt: &tokio::runtime::Runtime, listen: &str) -> (Fixture, MockServer) {
    let s = rt.block_on(async {
        let s = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path(format!("/2010-04-01/Accounts/{ACCOUNT}.json")))
            .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({
                "sid": ACCOUNT, "status": "active"
            })))
            .mount(&s)
            .await;
        for n in 1..=3 {
            Mock::given(method("POST"))
                .and(path(format!(
                    "/2010-04-01/Accounts/{ACCOUNT}/Messages.json"
                )))
                .and(body_string_contains(format!("To=%2B131255501{n:02}")))
                .respond_with(ResponseTemplate::new(201).set_body_json(serde_json::json!({
                    "sid": format!("SM{n:032}"), "status": "queued"
                })))
                .mount(&s)
                .await;
        }
        s
    });
    let f = Fixture::sms_only(&format!(
        "{HEADER}\nP1,Ann,Lee,,(312) 555-0101,sms,,yes,\n\
         P2,Bo,Ng,,(312) 555-0102,sms,,yes,\nP3,Cy,Ox,,(312) 555-0103,sms,,yes,\n"
    ));
    f.write(
        "campaign.toml",
        &common::campaign_toml_on(
            &["sms"],
            &format!(
                "transport = \"http\"\nquiet_hours = \"\"\n\n[sms.gateway]\npreset = \"twilio\"\n\
                 base_url = \"{}\"\naccount = \"{ACCOUNT}\"\ntoken_env = \"{TOKEN_ENV}\"\n\n\
                 [sending]\nsms_rate = \"0\"\n\n[listen]\nbase_url = \"{BASE}\"\n{listen}",
                s.uri()
            ),
        ),
    );
    let mut c = f.cmd(&["send", "campaign.toml"]);
    c.env(TOKEN_ENV, TOKEN);
    let (code, out, err) = run(c);
    assert_eq!(code, 0, "{out}{err}");
    (f, s)
}

#[test]
fn twilio_receipts_are_checked_recorded_once_and_never_go_back() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (f, s) = twilio_fixture(&rt, "");
    // The messages asked Twilio to call `listen` back.
    let requests = rt.block_on(s.received_requests()).unwrap();
    let post = requests
        .iter()
        .find(|r| r.method.as_str() == "POST")
        .unwrap();
    let sent = String::from_utf8_lossy(&post.body);
    assert!(
        sent.contains(&format!(
            "StatusCallback={}",
            encode(&format!("{BASE}/sms/test-campaign/status"))
        )),
        "{sent}"
    );
    let l = Listening::start(&f, &["campaign.toml"]);
    assert!(
        l.banner
            .contains(&format!("{BASE}/sms/test-campaign/status")),
        "{}",
        l.banner
    );
    let sid = |n: u32| format!("SM{n:032}");
    let receipt = |n: u32, status: &str, code: &str| twilio_receipt(&sid(n), status, code);
    let send = |p: &[(String, String)], sig: Option<&str>| {
        let p: Vec<(&str, &str)> = p.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        twilio_post(&l, "status", &p, sig)
    };
    // Forged, tampered or unsigned: 403, and nothing recorded.
    let r1 = receipt(1, "delivered", "");
    assert_eq!(send(&r1, Some("")).status, 403);
    assert_eq!(send(&r1, Some("AAAAAAAAAAAAAAAAAAAAAAAAAAA=")).status, 403);
    let signed = twilio_signature(
        &format!("{BASE}/sms/test-campaign/status"),
        &[
            ("MessageSid", sid(1).as_str()),
            ("MessageStatus", "undelivered"),
            ("AccountSid", ACCOUNT),
        ],
    );
    assert_eq!(
        send(&r1, Some(&signed)).status,
        403,
        "the signature of another status"
    );
    assert_eq!(
        f.after_sending("campaign.toml", "sms", &["delivered", "undelivered"]),
        "0 delivered, 0 undelivered"
    );
    // Out of order: SM1 delivered then a late "sent"; SM2 undelivered then "delivered"; SM3
    // sent then delivered, twice.
    for (n, st, code) in [
        (1, "delivered", ""),
        (1, "sent", ""),
        (2, "undelivered", "30003"),
        (2, "delivered", ""),
        (3, "sent", ""),
        (3, "delivered", ""),
        (3, "delivered", ""),
        (9, "delivered", ""),
    ] {
        let a = send(&receipt(n, st, code), None);
        assert_eq!(a.status, 204, "{n} {st}: {}", a.body);
    }
    // A malformed one, signed: 400.
    let a = twilio_post(&l, "status", &[("MessageStatus", "delivered")], None);
    assert_eq!(a.status, 400, "{}", a.body);
    assert_eq!(
        f.after_sending("campaign.toml", "sms", &["delivered", "undelivered"]),
        "2 delivered, 1 undelivered"
    );
    let out = status(&f, "campaign.toml");
    assert!(
        out.contains("Receipts for no message this ledger holds: 1"),
        "{out}"
    );
    let db = f.ledger();
    let receipt = db.query(&format!(
        "SELECT state, code FROM receipts WHERE provider_id = '{}'",
        sid(2)
    ));
    let [state, code] = <[Option<String>; 2]>::try_from(receipt[0].clone()).unwrap();
    assert_eq!(
        (state.as_deref(), code.as_deref()),
        (Some("undelivered"), Some("30003"))
    );
    let rows = db.count("SELECT COUNT(*) FROM receipts");
    assert_eq!(rows, 4);
    // The next run's summary says how its SMS fared so far.
    let mut c = f.cmd(&["send", "campaign.toml"]);
    c.env(TOKEN_ENV, TOKEN);
    let (code, out, err) = run(c);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("SMS delivery so far (receipts): 2 delivered, 1 undelivered"),
        "{out}"
    );
    // The report has each patient's delivery state and the carrier's code.
    let (code, out, err) = f.run(&["report", "campaign.toml", "--out", "r.csv"]);
    assert_eq!(code, 0, "{out}{err}");
    let report = f.read("r.csv");
    let row = |id: &str| {
        report
            .lines()
            .find(|l| l.contains(&format!(",{id},")))
            .unwrap()
            .to_string()
    };
    // The delivery, its code and how the patient opted out (columns 14 to 16).
    let after = |id: &str| {
        row(id)
            .split(',')
            .skip(13)
            .take(3)
            .collect::<Vec<_>>()
            .join(",")
    };
    assert_eq!(after("P1"), "delivered,,", "{report}");
    assert_eq!(after("P2"), "undelivered,30003,", "{report}");
    assert_eq!(after("P3"), "delivered,,", "{report}");
    // Replies are not status callbacks: a GET is refused.
    assert_eq!(
        http(
            "GET",
            &format!("{}/sms/test-campaign/status", l.url),
            &[],
            ""
        )
        .status,
        405
    );
    // A campaign this listen does not serve: 404.
    let a = http("POST", &format!("{}/sms/other/status", l.url), &[], "");
    assert_eq!(a.status, 404);
    assert_eq!(l.stop(), Some(0));
    // `purge --ledger` takes what came back with the campaign's rows; the unmatched receipt
    // (no campaign's) stays.
    let (code, out, err) = f.run(&["purge", "campaign.toml", "--ledger", "--yes"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains(
            "6 rows of unsubscribe tokens, SMS ids, receipts, unsubscribes, bounces and replies"
        ),
        "{out}"
    );
    let db = f.ledger();
    for (table, left) in [("receipts", 1), ("sms_parts", 0), ("messages", 0)] {
        let n = db.count(&format!("SELECT COUNT(*) FROM {table}"));
        assert_eq!(n, left, "{table}");
    }
}

/// The suppressions table: address, reason, source, by address.
fn suppression_rows(f: &Fixture) -> Vec<(String, String, String)> {
    f.ledger()
        .rows("SELECT address, reason, source FROM suppressions ORDER BY address")
        .into_iter()
        .map(|r| {
            let [address, reason, source] = <[String; 3]>::try_from(r).unwrap();
            (address, reason, source)
        })
        .collect()
}

#[test]
fn twilio_error_codes_in_status_callbacks_suppress_as_sync_does() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (f, _s) = twilio_fixture(&rt, "");
    let l = Listening::start(&f, &["campaign.toml"]);
    let callback = |sid: &str, status: &str, code: &str, to: &str| {
        let p = [
            ("MessageSid", sid),
            ("MessageStatus", status),
            ("ErrorCode", code),
            ("To", to),
            ("AccountSid", ACCOUNT),
        ];
        twilio_post(&l, "status", &p, None).status
    };
    let sid = |n: u32| format!("SM{n:032}");
    // Forged: nothing recorded, nothing suppressed.
    let forged = [
        ("MessageSid", sid(1)),
        ("MessageStatus", "undelivered".to_string()),
        ("ErrorCode", "30006".to_string()),
    ];
    let forged: Vec<(&str, &str)> = forged.iter().map(|(k, v)| (*k, v.as_str())).collect();
    assert_eq!(twilio_post(&l, "status", &forged, Some("AAAA")).status, 403);
    assert!(suppression_rows(&f).is_empty());
    // A landline, an opt-out (twice), an error that says nothing of the number, and an
    // opt-out for a message this ledger does not hold: suppressed by the number Twilio names.
    assert_eq!(
        callback(&sid(1), "undelivered", "30006", "+13125550101"),
        204
    );
    assert_eq!(callback(&sid(2), "failed", "21610", "+13125550102"), 204);
    assert_eq!(callback(&sid(2), "failed", "21610", "+13125550102"), 204);
    assert_eq!(
        callback(&sid(3), "undelivered", "30003", "+13125550103"),
        204
    );
    assert_eq!(callback(&sid(9), "failed", "21610", "+13125550109"), 204);
    let row = |a: &str, r: &str, s: &str| (a.to_string(), r.to_string(), s.to_string());
    assert_eq!(
        suppression_rows(&f),
        [
            row("+13125550101", "landline", "outreach listen (Twilio 30006)"),
            row(
                "+13125550102",
                "opted out (Twilio 21610)",
                "outreach listen (Twilio 21610)"
            ),
            row(
                "+13125550109",
                "opted out (Twilio 21610)",
                "outreach listen (Twilio 21610)"
            ),
        ]
    );
    assert_eq!(
        f.after_sending("campaign.toml", "sms", &["delivered", "undelivered"]),
        "0 delivered, 3 undelivered"
    );
    assert_eq!(l.stop(), Some(0));
    // A later campaign texts neither number.
    let v = second_campaign(&f);
    assert_eq!(v["channels"][0]["skipped"]["suppressed"], 2, "{v}");
    assert_eq!(v["channels"][0]["due"], 1, "{v}");
}

#[test]
fn stop_and_parar_suppress_start_lifts_only_a_stop_and_other_replies_wait_for_staff() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (f, _s) = twilio_fixture(&rt, "help_reply = true\n");
    // P3 is on the clinic's own opt-out list: no START lifts that.
    f.write(
        "opt-outs.csv",
        "address,reason\n(312) 555-0103,asked at the desk\n",
    );
    let l = Listening::start(&f, &["campaign.toml"]);
    let reply = |n: u32, from: &str, body: &str| {
        let sid = format!("SM{n:032}");
        twilio_post(
            &l,
            "inbound",
            &[
                ("MessageSid", &sid),
                ("From", from),
                ("To", "+13125550100"),
                ("Body", body),
                ("AccountSid", ACCOUNT),
            ],
            None,
        )
    };
    let a = reply(101, "+13125550101", " Stop. ");
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(
        a.body,
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response/>"
    );
    assert_eq!(reply(101, "+13125550101", " Stop. ").status, 200, "a retry");
    assert_eq!(reply(102, "+13125550102", "PARAR").status, 200);
    assert_eq!(reply(103, "+13125550103", "START").status, 200);
    let help = reply(104, "+13125550104", "help");
    assert!(
        help.body.contains(
            "<Message>Riverside Physio: call +1 312 555 0100. Reply STOP to opt out.</Message>"
        ),
        "{}",
        help.body
    );
    assert_eq!(
        reply(105, "+13125550105", "please stop texting me").status,
        200
    );
    assert_eq!(reply(106, "+13125550106", "YES").status, 200);
    // A reply signed for another number is forged.
    let forged = twilio_signature(
        &format!("{BASE}/sms/test-campaign/inbound"),
        &[("From", "+13125550199")],
    );
    let a = twilio_post(
        &l,
        "inbound",
        &[
            ("MessageSid", "SMx"),
            ("From", "+13125550101"),
            ("To", "+13125550100"),
            ("Body", "START"),
        ],
        Some(&forged),
    );
    assert_eq!(a.status, 403);

    // Another campaign of the state directory: STOP and PARAR suppress at once; the list's
    // opt-out stays.
    let check = second_campaign;
    let v = check(&f);
    assert_eq!(v["channels"][0]["skipped"]["suppressed"], 3, "{v}");
    // START from P1, who sent STOP to this number: lifted.
    assert_eq!(reply(107, "+13125550101", "start").status, 200);
    let v = check(&f);
    assert_eq!(v["channels"][0]["skipped"]["suppressed"], 2, "{v}");
    assert_eq!(v["channels"][0]["due"], 1, "{v}");
    // The lift is in the history, the reply as the patient's consent.
    let (code, out, err) = f.run(&[
        "suppressions",
        "list",
        "campaign.toml",
        "--address",
        "+13125550101",
        "--format",
        "json",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("replied \\\"start\\\" to +13125550100"),
        "{out}"
    );
    assert!(out.contains("START reply"), "{out}");

    // The rest waits for staff, masked.
    let (code, out, err) = f.run(&["inbox", "campaign.toml"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("2 unread replies"), "{out}");
    assert!(
        out.contains("from +1312***05 (test-campaign): \"please stop texting me\""),
        "{out}"
    );
    assert!(!out.contains("+13125550105"), "{out}");
    let id = out
        .lines()
        .find(|l| l.contains("please stop"))
        .unwrap()
        .trim()
        .split(' ')
        .next()
        .unwrap()
        .trim_start_matches('#')
        .to_string();
    let (code, out, _) = f.run(&["inbox", "campaign.toml", "--opt-out", &id]);
    assert_eq!(code, 0);
    assert!(
        out.contains(&format!("#{id} recorded as an opt-out")),
        "{out}"
    );
    let out = status(&f, "campaign.toml");
    assert!(
        out.contains(
            "SMS replies (all campaigns of this state directory): 7, 2 opt-outs, 1 unread"
        ),
        "{out}"
    );
    assert_eq!(l.stop(), Some(0));
}

#[tokio::test(flavor = "multi_thread")]
async fn in_chromium_the_pages_own_button_unsubscribes_and_the_next_send_skips_the_patient() {
    let f = email_fixture();
    let (code, out, err) = f.run(&["send", "campaign.toml"]);
    assert_eq!(code, 0, "{out}{err}");
    let link = links(&f)["ann@example.com"].replace(BASE, "");
    let l = Listening::start(&f, &["campaign.toml"]);
    let b = crate::browser::Browser::start(800, 600).await;
    b.goto(&format!("{}{link}", l.url)).await;
    b.wait_text("h1", |t| t == "Unsubscribe from Riverside Physio")
        .await;
    assert!(b.text("body").await.contains("a***@example.com"));
    let button = b.element("form button").await;
    b.cmd(
        reqwest::Method::POST,
        &format!("/element/{button}/click"),
        Some(serde_json::json!({})),
    )
    .await;
    b.wait_text("h1", |t| t == "You are unsubscribed").await;
    // Nothing from the network but the page itself (Chromium's own `chrome:`, `data:` aside),
    // and no script.
    let requested = b.requested().await;
    assert!(
        requested.iter().any(|u| u.starts_with(&l.url)),
        "{requested:?}"
    );
    for url in requested.iter().filter(|u| u.starts_with("http")) {
        assert!(url.starts_with(&l.url), "{url}");
    }
    assert_eq!(b.js("return document.scripts.length").await, 0);
    drop(b);
    assert_eq!(l.stop(), Some(0));
    let how = f.ledger().value("SELECT how FROM unsubscribes");
    assert_eq!(how, "page");
    // The next campaign of this state directory does not message her.
    f.write(
        "second.toml",
        &f.read("campaign.toml")
            .replace("id = \"test-campaign\"", "id = \"second\""),
    );
    let (code, out, err) = f.run(&["send", "second.toml", "--format", "json"]);
    assert_eq!(code, 0, "{out}{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["channels"][0]["sent"], 2, "{out}");
    assert_eq!(v["channels"][0]["skipped"]["suppressed"], 1, "{out}");
}

/// Vonage's signature of `params` (every one but `sig`, sorted, `&name=value`, with `&` and `=`
/// in values as `_`): HMAC-SHA256 with the signature secret, hex.
fn vonage_sig(params: &[(&str, String)]) -> String {
    let mut sorted: Vec<&(&str, String)> = params.iter().collect();
    sorted.sort_by_key(|(k, _)| *k);
    let mut data = String::new();
    for (k, v) in sorted {
        data.push('&');
        data.push_str(k);
        data.push('=');
        data.push_str(&v.replace(['&', '='], "_"));
    }
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(b"vonage-signature-secret").unwrap();
    mac.update(data.as_bytes());
    data_encoding::HEXUPPER.encode(&mac.finalize().into_bytes())
}

/// SMS to two patients through a Vonage mock: P1's in two parts (P1-A, P1-B), P2's in one
/// (P2-A); `listen` checks Vonage's SHA-256 signatures.
fn vonage_fixture(rt: &tokio::runtime::Runtime) -> (Fixture, MockServer) {
    let s = rt.block_on(async {
        let s = MockServer::start().await;
        // P1's text goes in two parts, P2's in one.
        for (to, ids) in [
            ("13125550101", vec!["P1-A", "P1-B"]),
            ("13125550102", vec!["P2-A"]),
        ] {
            let parts: Vec<serde_json::Value> = ids
                .iter()
                .map(|id| serde_json::json!({"to": to, "status": "0", "message-id": id}))
                .collect();
            Mock::given(method("POST"))
                .and(path("/json"))
                .and(body_string_contains(format!("&to={to}&")))
                .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({
                    "message-count": parts.len().to_string(), "messages": parts
                })))
                .mount(&s)
                .await;
        }
        s
    });
    let f = Fixture::sms_only(&format!(
        "{HEADER}\nP1,Ann,Lee,,(312) 555-0101,sms,,yes,\nP2,Bo,Ng,,(312) 555-0102,sms,,yes,\n"
    ));
    f.write(
        "campaign.toml",
        &common::campaign_toml_on(
            &["sms"],
            &format!(
                "transport = \"http\"\nquiet_hours = \"\"\n\n[sms.gateway]\npreset = \"vonage\"\n\
                 base_url = \"{}\"\napi_key = \"abcd1234\"\ntoken_env = \"{TOKEN_ENV}\"\n\n\
                 [sms.gateway.webhook]\nkey_env = \"OUTREACH_TEST_VONAGE_SIG\"\n\
                 algorithm = \"sha256\"\n\n[sending]\nsms_rate = \"0\"\n\n\
                 [listen]\nbase_url = \"{BASE}\"\n",
                s.uri()
            ),
        ),
    );
    let mut c = f.cmd(&["send", "campaign.toml"]);
    c.env(TOKEN_ENV, TOKEN);
    let (code, out, err) = run(c);
    assert_eq!(code, 0, "{out}{err}");
    (f, s)
}

/// `common::MIDDAY` in Unix seconds.
fn midday() -> i64 {
    chrono::DateTime::parse_from_rfc3339(common::MIDDAY)
        .unwrap()
        .timestamp()
}

/// A JSON receipt POSTed to test-campaign's status route.
fn json_status(l: &Listening, body: String) -> Answer {
    http(
        "POST",
        &format!("{}/sms/test-campaign/status", l.url),
        &[("content-type", "application/json")],
        body,
    )
}

/// A Vonage delivery receipt for `id` to P1's number, signed, as JSON.
fn vonage_dlr(id: &str, status: &str, err_code: &str, timestamp: i64) -> String {
    let p = vec![
        ("msisdn", "13125550101".to_string()),
        ("to", "13125550100".to_string()),
        ("messageId", id.to_string()),
        ("status", status.to_string()),
        ("err-code", err_code.to_string()),
        ("scts", "2611251800".to_string()),
        ("api-key", "abcd1234".to_string()),
        ("message-timestamp", "2026-11-25 18:00:00".to_string()),
        ("timestamp", timestamp.to_string()),
        ("nonce", format!("n-{id}-{status}")),
    ];
    vonage_signed_json(p)
}

/// Vonage's parameters `p`, signed, as a JSON body.
fn vonage_signed_json(mut p: Vec<(&str, String)>) -> String {
    let sig = vonage_sig(&p);
    p.push(("sig", sig));
    let body: serde_json::Map<String, serde_json::Value> = p
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.into()))
        .collect();
    serde_json::Value::Object(body).to_string()
}

#[test]
fn vonage_receipts_are_signed_json_and_a_message_in_parts_is_delivered_when_every_part_is() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (f, _s) = vonage_fixture(&rt);
    let l = Listening::start(&f, &["campaign.toml"]);
    let now = midday();
    let dlr = |id: &str, status: &str, timestamp: i64| vonage_dlr(id, status, "0", timestamp);
    let post = |body: String| json_status(&l, body);
    let delivered = || f.after_sending("campaign.toml", "sms", &["delivered", "undelivered"]);
    // One part of two: not delivered yet.
    assert_eq!(post(dlr("P1-A", "delivered", now)).status, 204);
    assert_eq!(post(dlr("P2-A", "delivered", now)).status, 204);
    assert_eq!(delivered(), "1 delivered, 0 undelivered");
    // Tampered, stale (a replay from an hour ago) or by GET: refused, nothing recorded.
    let tampered = dlr("P1-B", "delivered", now).replace("\"delivered\"", "\"expired\"");
    assert_eq!(post(tampered).status, 403);
    assert_eq!(post(dlr("P1-B", "delivered", now - 3600)).status, 403);
    let get = http(
        "GET",
        &format!(
            "{}/sms/test-campaign/status?messageId=P1-B&status=delivered",
            l.url
        ),
        &[],
        "",
    );
    assert_eq!(get.status, 405);
    assert_eq!(delivered(), "1 delivered, 0 undelivered");
    // The second part: the whole message is delivered.
    assert_eq!(post(dlr("P1-B", "delivered", now)).status, 204);
    assert_eq!(delivered(), "2 delivered, 0 undelivered");
    // A signed inbound STOP (Vonage writes numbers without the +): the number is suppressed.
    let p = vec![
        ("msisdn", "13125550102".to_string()),
        ("to", "13125550100".to_string()),
        ("messageId", "IN-1".to_string()),
        ("text", "Stop!".to_string()),
        ("type", "text".to_string()),
        ("keyword", "STOP".to_string()),
        ("message-timestamp", "2026-11-25 18:00:00".to_string()),
        ("timestamp", now.to_string()),
        ("nonce", "n-in-1".to_string()),
    ];
    let a = http(
        "POST",
        &format!("{}/sms/test-campaign/inbound", l.url),
        &[("content-type", "application/json")],
        vonage_signed_json(p),
    );
    assert_eq!(a.status, 204, "{}", a.body);
    assert!(
        status(&f, "campaign.toml")
            .contains("SMS replies (all campaigns of this state directory): 1, 1 opt-outs")
    );
    // The STOP came from a number this campaign texted, after it did.
    assert_eq!(
        f.after_sending("campaign.toml", "sms", &["opted out"]),
        "1 opted out"
    );
    let source = f
        .ledger()
        .value("SELECT source FROM suppressions WHERE address = '+13125550102'");
    assert_eq!(source, "STOP reply to +13125550100");
    assert_eq!(l.stop(), Some(0));
}

#[test]
fn a_vonage_receipts_opt_out_code_suppresses_the_number() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (f, _s) = vonage_fixture(&rt);
    let l = Listening::start(&f, &["campaign.toml"]);
    let now = midday();
    let post = |body: String| json_status(&l, body).status;
    // err-code 4 (barred by the user's network) says nothing of consent; 9 is the opt-out.
    assert_eq!(post(vonage_dlr("P1-A", "failed", "4", now)), 204);
    assert!(suppression_rows(&f).is_empty());
    assert_eq!(post(vonage_dlr("P1-B", "failed", "9", now)), 204);
    assert_eq!(
        suppression_rows(&f),
        [(
            "+13125550101".to_string(),
            "opted out (Vonage 9)".to_string(),
            "outreach listen (Vonage 9)".to_string()
        )]
    );
    assert_eq!(l.stop(), Some(0));
}

#[test]
fn it_listens_on_loopback_unless_told_otherwise_and_refuses_what_it_cannot_serve() {
    let f = email_fixture();
    let l = Listening::start_as(&f, &["campaign.toml"]);
    assert!(
        l.banner
            .starts_with("Listening on 127.0.0.1:8026 for https://outreach.riverside.example"),
        "{}",
        l.banner
    );
    assert_eq!(
        http("GET", "http://127.0.0.1:8026/unsubscribe/x", &[], "").status,
        404
    );
    assert_eq!(l.stop(), Some(0));
    // No [listen]: nothing to serve, and it says what to add.
    let plain = Fixture::email_only(&format!(
        "{HEADER}\nP1,Ann,Lee,ann@example.com,,email,yes,,\n"
    ));
    let (code, _, err) = plain.run(&["listen", "campaign.toml"]);
    assert_eq!(code, 2);
    assert!(err.contains("campaign.toml has no [listen] table"), "{err}");
    // Campaigns of two state directories: one listen each.
    f.write(
        "other.toml",
        &f.read("campaign.toml")
            .replace("id = \"test-campaign\"", "id = \"other\"")
            .replace("[sending]", "[sending]\nstate_dir = \"elsewhere\""),
    );
    let (code, _, err) = f.run(&["listen", "campaign.toml", "other.toml"]);
    assert_eq!(code, 2);
    assert!(err.contains("different state directories"), "{err}");
    // One state directory, two ledgers (a `state_url` on one only, or two databases): named.
    let elsewhere = "postgres://outreach@127.0.0.1:1/elsewhere";
    let other: String = f
        .read("campaign.toml")
        .replace("id = \"test-campaign\"", "id = \"other\"")
        .lines()
        .filter(|l| !l.trim_start().starts_with("state_url"))
        .map(|l| match l.trim() {
            "[sending]" => format!("{l}\nstate_url = \"{elsewhere}\"\n"),
            _ => format!("{l}\n"),
        })
        .collect();
    f.write("other.toml", &other);
    let (code, _, err) = f.run(&["listen", "campaign.toml", "other.toml"]);
    assert_eq!(code, 2);
    assert!(
        err.contains("keep their ledgers in different databases")
            && err.contains("postgres://outreach@127.0.0.1:1/elsewhere?sslmode=disable")
            && !err.contains("state directories"),
        "{err}"
    );
    // A base URL in clear text off this machine: refused, naming the key.
    let (code, _, err) = f.run(&[
        "listen",
        "campaign.toml",
        "--set",
        "listen.base_url=http://outreach.riverside.example",
    ]);
    assert_eq!(code, 2);
    assert!(
        err.contains("`listen.base_url`: is http:// off this machine"),
        "{err}"
    );
}

#[test]
fn a_generic_gateways_receipts_are_read_by_pointers_after_their_hmac_checks_out() {
    // Sent through the file transport (ids `CAMPAIGN/sms.jsonl@OFFSET`); `listen` takes the receipts of
    // the campaign's generic gateway for those ids.
    let f = Fixture::sms_only(&format!(
        "{HEADER}\nP1,Ann,Lee,,(312) 555-0101,sms,,yes,\nP2,Bo,Ng,,(312) 555-0102,sms,,yes,\n"
    ));
    f.write(
        "campaign.toml",
        &common::campaign_toml_on(
            &["sms"],
            &format!(
                "transport = \"http\"\nquiet_hours = \"\"\n\n[sms.gateway]\npreset = \"generic\"\n\
                 url = \"https://api.telnyx.example/v2/messages\"\nauth = \"bearer\"\n\
                 token_env = \"{TOKEN_ENV}\"\nbody_format = \"json\"\n\
                 body_template = '{{\"to\": \"{{{{to}}}}\", \"text\": \"{{{{body}}}}\"}}'\n\
                 success_status = [200]\nid_pointer = \"/data/id\"\n\n\
                 [sms.gateway.webhook]\nkey_env = \"OUTREACH_TEST_VONAGE_SIG\"\n\
                 header = \"X-Signature\"\nalgorithm = \"hmac-sha256\"\nprefix = \"sha256=\"\n\
                 id_pointer = \"/data/payload/id\"\nstatus_pointer = \"/data/payload/status\"\n\
                 error_pointer = \"/data/payload/errors/0/code\"\n\
                 delivered = [\"delivered\"]\nundelivered = [\"delivery_failed\"]\n\n\
                 [listen]\nbase_url = \"{BASE}\"\n"
            ),
        ),
    );
    let (code, out, err) = f.run(&["send", "campaign.toml", "--set", "sms.transport=file"]);
    assert_eq!(code, 0, "{out}{err}");
    let ids: Vec<String> = f
        .read("outbox/sms.jsonl")
        .lines()
        .scan(0usize, |offset, line| {
            let id = format!("test-campaign/sms.jsonl@{offset}");
            *offset += line.len() + 1;
            Some(id)
        })
        .collect();
    let l = Listening::start(&f, &["campaign.toml"]);
    let post = |id: &str, status: &str, sign: bool| {
        let body = serde_json::json!({"data": {"payload": {
            "id": id, "status": status, "errors": [{"code": "40001"}]
        }}})
        .to_string();
        let mut mac = Hmac::<sha2::Sha256>::new_from_slice(b"vonage-signature-secret").unwrap();
        mac.update(body.as_bytes());
        let sig = format!(
            "sha256={}",
            data_encoding::HEXLOWER.encode(&mac.finalize().into_bytes())
        );
        let mut headers = vec![("content-type", "application/json")];
        if sign {
            headers.push(("x-signature", sig.as_str()));
        }
        http(
            "POST",
            &format!("{}/sms/test-campaign/status", l.url),
            &headers,
            body,
        )
    };
    assert_eq!(post(&ids[0], "delivered", false).status, 403);
    assert_eq!(
        f.after_sending("campaign.toml", "sms", &["delivered", "undelivered"]),
        "0 delivered, 0 undelivered"
    );
    assert_eq!(post(&ids[0], "delivered", true).status, 204);
    assert_eq!(post(&ids[1], "delivery_failed", true).status, 204);
    assert_eq!(
        f.after_sending("campaign.toml", "sms", &["delivered", "undelivered"]),
        "1 delivered, 1 undelivered"
    );
    assert_eq!(l.stop(), Some(0));
}
