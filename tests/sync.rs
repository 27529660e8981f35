//! `outreach sync` end to end: the real binary asking Twilio's Message resource and Messages
//! list about what a real `send` recorded. Conformance under Prism (every request validates);
//! statuses and faults with wiremock, whose request log also proves that a message already
//! final is never asked about again.

use crate::common::{Fixture, run};
use crate::sms_gateway::{
    ACCOUNT, FAST, Prism, TOKEN, TOKEN_ENV, fixture, ledger, on_message, runtime, suppressions,
    twilio, twilio_mock, twilio_sent,
};

use wiremock::matchers::{method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

const SID1: &str = "SM11111111111111111111111111111111";
const SID2: &str = "SM22222222222222222222222222222222";
const SID3: &str = "SM33333333333333333333333333333333";

fn message_path(sid: &str) -> String {
    format!("/2010-04-01/Accounts/{ACCOUNT}/Messages/{sid}.json")
}

fn list_path() -> String {
    format!("/2010-04-01/Accounts/{ACCOUNT}/Messages.json")
}

/// `outreach sync campaign.toml` with the token in the environment.
pub(crate) fn sync(f: &Fixture, extra: &[&str]) -> (i32, String, String) {
    let mut args = vec!["sync", "campaign.toml"];
    args.extend_from_slice(extra);
    let mut c = f.cmd(&args);
    c.env(TOKEN_ENV, TOKEN);
    run(c)
}

/// A wiremock Twilio that took the three SMS as SID1..3, and the fixture that sent them.
fn sent_three(rt: &tokio::runtime::Runtime) -> (MockServer, Fixture) {
    let s = twilio_mock(rt);
    on_message(rt, &s, "13125550101", twilio_sent(SID1));
    on_message(rt, &s, "13125550102", twilio_sent(SID2));
    on_message(rt, &s, "13125550103", twilio_sent(SID3));
    let f = fixture(&twilio(&s.uri(), ""), FAST);
    let mut c = f.cmd(&["send", "campaign.toml", "--channel", "sms"]);
    c.env(TOKEN_ENV, TOKEN);
    let (code, out, err) = run(c);
    assert_eq!(code, 0, "{out}{err}");
    (s, f)
}

fn message(sid: &str, status: &str, code: Option<i64>) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(serde_json::json!({
        "sid": sid, "status": status, "error_code": code, "num_segments": "1", "price": "-0.0079"
    }))
}

fn on_status(rt: &tokio::runtime::Runtime, s: &MockServer, sid: &str, r: ResponseTemplate) {
    rt.block_on(
        Mock::given(method("GET"))
            .and(path(message_path(sid)))
            .respond_with(r)
            .mount(s),
    );
}

/// The GETs of message resources `s` received.
pub(crate) fn lookups(rt: &tokio::runtime::Runtime, s: &MockServer) -> Vec<String> {
    rt.block_on(s.received_requests())
        .unwrap()
        .into_iter()
        .filter(|r| r.method.as_str() == "GET" && r.url.path().contains("/Messages"))
        .map(|r| r.url.path().to_string())
        .collect()
}

fn status_counts(f: &Fixture) -> serde_json::Value {
    let (_, out, _) = f.run(&["status", "campaign.toml", "--format", "json"]);
    serde_json::from_str(&out).unwrap()
}

#[test]
fn statuses_are_recorded_once_and_error_codes_suppress() {
    let rt = runtime();
    let (s, f) = sent_three(&rt);
    on_status(&rt, &s, SID1, message(SID1, "delivered", None));
    on_status(&rt, &s, SID2, message(SID2, "failed", Some(21610)));
    on_status(&rt, &s, SID3, message(SID3, "undelivered", Some(30006)));
    let (code, out, err) = sync(&f, &[]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains(
            "asked 3: 1 delivered, 2 undelivered, 0 pending, 0 not found, 0 failed; 2 suppressed"
        ),
        "{out}"
    );
    let mut sup = suppressions(&f);
    sup.sort();
    assert_eq!(
        sup,
        [
            (
                "+13125550102".to_string(),
                "opted out (Twilio 21610)".to_string()
            ),
            ("+13125550103".to_string(), "landline".to_string())
        ]
    );
    let v = status_counts(&f);
    assert_eq!(v["feedback"]["delivered"], 1, "{v}");
    assert_eq!(v["feedback"]["undelivered"], 2, "{v}");
    assert_eq!(lookups(&rt, &s).len(), 3);
    // A rerun asks nothing: every message is final.
    let (code, out, _) = sync(&f, &[]);
    assert_eq!(code, 0);
    assert!(out.contains("asked 0:"), "{out}");
    assert_eq!(lookups(&rt, &s).len(), 3);
}

#[test]
fn unknown_sid_is_counted_throttling_waits_and_pending_is_asked_again() {
    let rt = runtime();
    let (s, f) = sent_three(&rt);
    on_status(&rt, &s, SID1, ResponseTemplate::new(404));
    let throttled = ResponseTemplate::new(429).insert_header("Retry-After", "1");
    rt.block_on(
        Mock::given(method("GET"))
            .and(path(message_path(SID2)))
            .respond_with(throttled)
            .up_to_n_times(1)
            .mount(&s),
    );
    on_status(&rt, &s, SID2, message(SID2, "undelivered", Some(30003)));
    on_status(&rt, &s, SID3, message(SID3, "sent", None));
    let started = std::time::Instant::now();
    let (code, out, err) = sync(&f, &[]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(started.elapsed() >= std::time::Duration::from_secs(1));
    assert!(
        out.contains("1 undelivered, 1 pending, 1 not found, 0 failed; 0 suppressed"),
        "{out}"
    );
    assert!(suppressions(&f).is_empty());
    assert_eq!(lookups(&rt, &s).len(), 4);
    // The unknown sid and the pending one are asked again; the final one is not.
    sync(&f, &[]);
    let asked = lookups(&rt, &s);
    assert_eq!(asked.len(), 6);
    assert_eq!(asked.iter().filter(|p| p.contains(SID2)).count(), 2);
}

#[test]
fn rejected_credentials_stop_the_run() {
    let rt = runtime();
    let (s, f) = sent_three(&rt);
    rt.block_on(
        Mock::given(method("GET"))
            .and(path(message_path(SID1)))
            .respond_with(ResponseTemplate::new(401).set_body_json(serde_json::json!({
                "code": 20003, "message": "Authenticate", "status": 401
            })))
            .mount(&s),
    );
    let (code, out, _) = sync(&f, &[]);
    assert_eq!(code, 3, "{out}");
    assert!(
        out.contains("stopped: the gateway rejects the credentials (HTTP 401)"),
        "{out}"
    );
    assert!(out.contains("3 left for the next run"), "{out}");
    assert_eq!(lookups(&rt, &s).len(), 1);
}

/// Makes every SMS row `unknown`, as a lost reply leaves it, claimed at `claimed`.
fn make_unknown(f: &Fixture, claimed: &[(&str, &str)]) {
    let db = f.ledger();
    db.execute("DELETE FROM sms_parts");
    for (address, at) in claimed {
        db.execute(&format!(
            "UPDATE messages SET state = 'unknown', provider_id = NULL, sent_at = NULL,
                 created_at = '{at}', updated_at = '{at}' WHERE address = '{address}'"
        ));
    }
}

fn listed(to: &str, body: &str, sid: &str) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(serde_json::json!({
        "messages": [{"sid": sid, "to": to, "body": body, "direction": "outbound-api",
                      "status": "delivered", "num_segments": "1"}],
        "page": 0, "page_size": 1000
    }))
}

fn on_list(rt: &tokio::runtime::Runtime, s: &MockServer, to: &str, r: ResponseTemplate) {
    rt.block_on(
        Mock::given(method("GET"))
            .and(path(list_path()))
            .and(query_param("To", to))
            .and(query_param("DateSent>", "2026-11-25T00:00:00Z"))
            .respond_with(r)
            .mount(s),
    );
}

/// A form value decoded (`+` a space, `%XX` a byte).
fn form_decode(raw: &str) -> String {
    let mut bytes = Vec::new();
    let mut it = raw.bytes();
    while let Some(b) = it.next() {
        match b {
            b'+' => bytes.push(b' '),
            b'%' => {
                let hex: Vec<u8> = it.by_ref().take(2).collect();
                bytes.push(u8::from_str_radix(std::str::from_utf8(&hex).unwrap(), 16).unwrap());
            }
            b => bytes.push(b),
        }
    }
    String::from_utf8(bytes).unwrap()
}

/// The text the gateway `s` was asked to send to `to` (form-encoded, as the POST wrote it).
fn sent_body(rt: &tokio::runtime::Runtime, s: &MockServer, to: &str) -> String {
    let posts = rt.block_on(s.received_requests()).unwrap();
    let p = posts
        .iter()
        .find(|r| r.method.as_str() == "POST" && String::from_utf8_lossy(&r.body).contains(to))
        .unwrap();
    let form = String::from_utf8_lossy(&p.body).into_owned();
    let raw = form
        .split('&')
        .find_map(|kv| kv.strip_prefix("Body="))
        .unwrap();
    form_decode(raw)
}

#[test]
fn unknown_sms_are_settled_by_the_gateways_list() {
    let rt = runtime();
    let (s, f) = sent_three(&rt);
    let ann = sent_body(&rt, &s, "%2B13125550101");
    make_unknown(
        &f,
        &[
            ("+13125550101", "2026-11-25T17:00:00.000000Z"),
            ("+13125550102", "2026-11-25T17:00:00.000000Z"),
            ("+13125550103", "2026-11-25T17:55:00.000000Z"),
        ],
    );
    on_list(&rt, &s, "+13125550101", listed("+13125550101", &ann, SID1));
    // Bo's number got another text that day, not this one.
    on_list(
        &rt,
        &s,
        "+13125550102",
        listed("+13125550102", "Another clinic", SID2),
    );
    on_list(
        &rt,
        &s,
        "+13125550103",
        listed("+13125550103", "Another clinic", SID3),
    );
    let (code, out, err) = sync(&f, &[]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("unknown SMS: 1 found sent, 1 retryable, 1 still unknown"),
        "{out}"
    );
    let rows = ledger(&f);
    let ann = &rows["+13125550101"];
    assert_eq!(
        (ann.state.as_str(), ann.provider_id.as_deref()),
        ("sent", Some(SID1))
    );
    let bo = &rows["+13125550102"];
    assert_eq!((bo.state.as_str(), bo.permanent), ("failed", false));
    assert_eq!(rows["+13125550103"].state, "unknown");
    // Rerun: Ann's status is asked now, the rest changes nothing.
    on_status(&rt, &s, SID1, message(SID1, "delivered", None));
    let (code, out, _) = sync(&f, &[]);
    assert_eq!(code, 0);
    assert!(out.contains("1 delivered"), "{out}");
    assert!(
        out.contains("0 found sent, 0 retryable, 1 still unknown"),
        "{out}"
    );
    assert_eq!(ledger(&f), rows);
}

#[test]
fn the_list_is_read_page_by_page_until_the_message_is_found() {
    let rt = runtime();
    let (s, f) = sent_three(&rt);
    let ann = sent_body(&rt, &s, "%2B13125550101");
    make_unknown(&f, &[("+13125550101", "2026-11-25T17:00:00.000000Z")]);
    let next = format!(
        "{}?To=%2B13125550101&DateSent%3E=2026-11-25T00%3A00%3A00Z&PageSize=1000&Page=1\
         &PageToken=PA1",
        list_path()
    );
    // Page 1: another text that day, and a next page; page 2: this one.
    let first = serde_json::json!({
        "messages": [{"sid": SID2, "to": "+13125550101", "body": "Another clinic",
                      "direction": "outbound-api"}],
        "page": 0, "page_size": 1000, "next_page_uri": next
    });
    on_list(
        &rt,
        &s,
        "+13125550101",
        ResponseTemplate::new(200).set_body_json(first),
    );
    rt.block_on(
        Mock::given(method("GET"))
            .and(path(list_path()))
            .and(query_param("PageToken", "PA1"))
            .respond_with(listed("+13125550101", &ann, SID1))
            .with_priority(1)
            .mount(&s),
    );
    let (code, out, err) = sync(&f, &[]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("unknown SMS: 1 found sent, 0 retryable, 0 still unknown"),
        "{out}"
    );
    let rows = ledger(&f);
    assert_eq!(rows["+13125550101"].provider_id.as_deref(), Some(SID1));
    let pages: Vec<String> = rt
        .block_on(s.received_requests())
        .unwrap()
        .into_iter()
        .filter(|r| r.method.as_str() == "GET" && r.url.path() == list_path())
        .map(|r| r.url.query().unwrap_or_default().to_string())
        .collect();
    assert_eq!(pages.len(), 2, "{pages:?}");
    assert!(pages[1].ends_with("Page=1&PageToken=PA1"), "{pages:?}");
}

#[test]
fn vonage_has_no_lookup() {
    let f = fixture(&crate::sms_gateway::vonage("http://127.0.0.1:9"), FAST);
    let (code, out, err) = sync(&f, &[]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(
        out,
        "Vonage's SMS API has no status lookup: use outreach listen\n"
    );
}

#[test]
fn sync_requests_conform_to_twilios_published_api() {
    // Without --errors: the description's own example of a Messages list does not validate
    // against its schema, which --errors turns into a 500 for a request that passed.
    let prism = Prism::start("twilio_api_v2010.json", false);
    let f = fixture(&twilio(&prism.url(), ""), FAST);
    let mut c = f.cmd(&["send", "campaign.toml", "--channel", "sms"]);
    c.env(TOKEN_ENV, TOKEN);
    let (code, out, err) = run(c);
    assert_eq!(code, 0, "{out}{err}");
    // One row left unknown: its settling lists the number's messages.
    let db = f.ledger();
    db.execute(
        "DELETE FROM sms_parts WHERE message =
             (SELECT rowid FROM messages WHERE address = '+13125550103')",
    );
    db.execute("UPDATE messages SET state = 'unknown' WHERE address = '+13125550103'");
    let (code, out, err) = sync(&f, &[]);
    assert_eq!(code, 0, "{out}{err}{}", prism.log());
    // The send's 4 (a credentials check, three messages, every one answered with the
    // example's sid, so one sid is recorded), then 1 status lookup and 2 pages of the list:
    // the first, and the example's next page (whose own next page is itself: not read again).
    prism.assert_all_valid(7);
}
