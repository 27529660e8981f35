//! The `http` SMS transport end to end: the real binary against real HTTP servers on 127.0.0.1.
//!
//! Conformance: Prism (installed by `scripts/test` under `.tools/prism`) serves the vendors' own
//! published API descriptions (`tests/gateways/`) as a validating mock; every request the tool
//! sends must pass its validation, and the ids in Prism's answers must reach the ledger.
//! Faults: `wiremock` answers what Prism cannot (the descriptions define no error replies).

use crate::common;

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::common::{Fixture, HEADER, run};
use wiremock::matchers::{body_string_contains, header, method, path};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

pub(crate) const ACCOUNT: &str = "ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
pub(crate) const TOKEN_ENV: &str = "OUTREACH_TEST_SMS_TOKEN";
pub(crate) const TOKEN: &str = "test-token-0123";
/// Unlimited rate, fast retries.
pub(crate) const FAST: &str = "[sending]\nsms_rate = \"0\"\nretry_delay = \"10ms\"\n";

/// Three SMS contacts; P3 is María (`í` is not GSM-7: her SMS is UCS-2).
fn contacts() -> String {
    format!(
        "{HEADER}\n\
         P1,Ann,Lee,,(312) 555-0101,sms,,yes,\n\
         P2,Bo,Ng,,(312) 555-0102,sms,,yes,\n\
         P3,María,Gonzalez,,(312) 555-0103,sms,,yes,\n"
    )
}

/// A fixture sending SMS through `gateway` (the `[sms.gateway]` table's lines).
pub(crate) fn fixture(gateway: &str, sending: &str) -> Fixture {
    let f = Fixture::new(&contacts());
    // Greets by name as written, so María's SMS is UCS-2.
    f.write(
        "templates/sms.txt.hbs",
        "{{clinic.name}}: Hi {{contact.first_name}}, book a free phone assessment: \
         {{clinic.booking_url}} Reply STOP to opt out",
    );
    f.write(
        "campaign.toml",
        &common::campaign_toml_on(
            &["sms"],
            &format!(
                "transport = \"http\"\nquiet_hours = \"\"\n\n[sms.gateway]\n{gateway}\n\n{sending}"
            ),
        ),
    );
    f
}

pub(crate) fn twilio(base: &str, extra: &str) -> String {
    format!(
        "preset = \"twilio\"\nbase_url = \"{base}\"\naccount = \"{ACCOUNT}\"\ntoken_env = \"{TOKEN_ENV}\"\n{extra}"
    )
}

pub(crate) fn vonage(base: &str) -> String {
    format!(
        "preset = \"vonage\"\nbase_url = \"{base}\"\napi_key = \"abcd1234\"\ntoken_env = \"{TOKEN_ENV}\"\n"
    )
}

/// `outreach send campaign.toml --channel sms` with the token in the environment.
pub(crate) fn send(f: &Fixture, extra: &[&str]) -> (i32, String, String) {
    let mut args = vec!["send", "campaign.toml", "--channel", "sms"];
    args.extend_from_slice(extra);
    let mut c = f.cmd(&args);
    c.env(TOKEN_ENV, TOKEN);
    run(c)
}

/// One ledger row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Row {
    pub(crate) state: String,
    pub(crate) permanent: bool,
    attempts: u32,
    pub(crate) provider_id: Option<String>,
    error: Option<String>,
}

/// The ledger's SMS rows by address (empty when there is no ledger).
pub(crate) fn ledger(f: &Fixture) -> BTreeMap<String, Row> {
    let db = f.ledger();
    if !db.exists() {
        return BTreeMap::new();
    }
    db.query(
        "SELECT address, state, permanent, attempts, provider_id, last_error FROM messages \
         WHERE channel = 'sms'",
    )
    .into_iter()
    .map(|r| {
        let [address, state, permanent, attempts, provider_id, error] =
            <[Option<String>; 6]>::try_from(r).unwrap();
        let int = |v: Option<String>| v.unwrap().parse::<i64>().unwrap();
        (
            address.unwrap(),
            Row {
                state: state.unwrap(),
                permanent: int(permanent) != 0,
                attempts: int(attempts) as u32,
                provider_id,
                error,
            },
        )
    })
    .collect()
}

/// Asserts that the ledger has SMS rows and every one is a retryable failure (nobody failed for
/// good), and that `status` counts no failure; returns the rows.
fn all_retryable(f: &Fixture) -> BTreeMap<String, Row> {
    let rows = ledger(f);
    assert!(!rows.is_empty());
    for row in rows.values() {
        assert_eq!(
            (row.state.as_str(), row.permanent),
            ("failed", false),
            "{row:?}"
        );
    }
    let (_, out, _) = f.run(&["status", "campaign.toml", "--format", "json"]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["counts"]["sms"]["failed"], 0, "{out}");
    rows
}

pub(crate) fn suppressions(f: &Fixture) -> Vec<(String, String)> {
    f.ledger()
        .rows("SELECT address, reason FROM suppressions")
        .into_iter()
        .map(|r| {
            let [address, reason] = <[String; 2]>::try_from(r).unwrap();
            (address, reason)
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Prism: the published API descriptions.
// ---------------------------------------------------------------------------------------------

/// A running Prism mock; killed on drop.
pub(crate) struct Prism {
    child: Child,
    port: u16,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Prism {
    /// `prism mock` of `spec` (under tests/gateways); `errors`: also fail responses that do not
    /// match the description.
    pub(crate) fn start(spec: &str, errors: bool) -> Prism {
        let bin = std::env::var_os("OUTREACH_PRISM")
            .map(PathBuf::from)
            .unwrap_or_else(|| common::repo().join(".tools/prism/node_modules/.bin/prism"));
        assert!(
            bin.exists(),
            "Prism is not installed at {} (scripts/test installs it: npm install --prefix \
             .tools/prism @stoplight/prism-cli@5.14.2)",
            bin.display()
        );
        let port = common::free_port();
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("prism.log");
        let out = std::fs::File::create(&log).unwrap();
        let mut cmd = Command::new(&bin);
        cmd.args(["mock", "-h", "127.0.0.1", "-p", &port.to_string()]);
        if errors {
            cmd.arg("--errors");
        }
        let child = cmd
            .arg(common::repo().join("tests/gateways").join(spec))
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", bin.display()));
        let mut p = Prism {
            child,
            port,
            log,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(90);
        while !p.log().contains("Prism is listening") {
            if let Some(status) = p.child.try_wait().unwrap() {
                panic!("Prism exited ({status}):\n{}", p.log());
            }
            assert!(
                Instant::now() < deadline,
                "Prism did not start:\n{}",
                p.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        p
    }

    pub(crate) fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub(crate) fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Asserts that Prism received `n` requests and that every one passed its validation.
    pub(crate) fn assert_all_valid(&self, n: usize) {
        let log = self.log();
        let received = log.matches("Request received").count();
        let passed = log
            .matches("The request passed the validation rules")
            .count();
        assert_eq!(received, n, "requests received by Prism:\n{log}");
        assert_eq!(passed, n, "requests that passed validation:\n{log}");
        assert!(!log.contains("did not pass"), "{log}");
        assert!(!log.contains("Violation: request"), "{log}");
    }
}

impl Drop for Prism {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn twilio_requests_conform_to_the_published_api_and_its_answers_are_read() {
    // --errors: a response that does not match the description is an error too.
    let prism = Prism::start("twilio_api_v2010.json", true);
    let f = fixture(
        &twilio(
            &prism.url(),
            "status_callback = \"https://riverside.example/sms-status\"\n",
        ),
        FAST,
    );
    let (code, out, err) = send(&f, &[]);
    assert_eq!(code, 0, "{out}{err}");
    // One GET (the credentials check) and three messages (one of them UCS-2).
    prism.assert_all_valid(4);
    assert!(!prism.log().contains("Violation"), "{}", prism.log());
    let rows = ledger(&f);
    assert_eq!(rows.len(), 3);
    for row in rows.values() {
        assert_eq!(row.state, "sent");
        // The sid of the description's example answer.
        assert_eq!(
            row.provider_id.as_deref(),
            Some("SMaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa")
        );
    }

    // The Messaging Service form (no From) is valid too.
    let g = fixture(
        &twilio(
            &prism.url(),
            "messaging_service_sid = \"MGaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"\n",
        ),
        FAST,
    );
    let (code, out, err) = send(&g, &[]);
    assert_eq!(code, 0, "{out}{err}");
    prism.assert_all_valid(8);
}

#[test]
fn vonage_requests_conform_to_the_published_api_and_its_answers_are_read() {
    // Without --errors: the description's own example answer matches both schemas of its
    // `oneOf` (SMS and Error), so with --errors Prism turns every valid request into a 500.
    // Requests are still validated and reported.
    let prism = Prism::start("vonage_sms.yml", false);
    let f = fixture(&vonage(&prism.url()), FAST);
    let (code, out, err) = send(&f, &[]);
    assert_eq!(code, 0, "{out}{err}");
    prism.assert_all_valid(3);
    for row in ledger(&f).values() {
        assert_eq!(row.state, "sent");
        assert_eq!(row.provider_id.as_deref(), Some("0A0000000123ABCD1"));
    }
}

// ---------------------------------------------------------------------------------------------
// wiremock: faults.
// ---------------------------------------------------------------------------------------------

/// A runtime for the mock server (the binary runs on the test thread meanwhile).
pub(crate) fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

pub(crate) fn twilio_sent(sid: &str) -> ResponseTemplate {
    ResponseTemplate::new(201).set_body_json(serde_json::json!({"sid": sid, "status": "queued"}))
}

pub(crate) fn twilio_error(status: u16, code: i64, message: &str) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_json(serde_json::json!({
        "code": code,
        "message": message,
        "more_info": format!("https://www.twilio.com/docs/errors/{code}"),
        "status": status
    }))
}

pub(crate) const MESSAGES: &str =
    "/2010-04-01/Accounts/ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa/Messages.json";
const ACCOUNT_PATH: &str = "/2010-04-01/Accounts/ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.json";

/// A Twilio mock whose credentials check passes.
pub(crate) fn twilio_mock(rt: &tokio::runtime::Runtime) -> MockServer {
    rt.block_on(async {
        let s = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path(ACCOUNT_PATH))
            .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({
                "sid": ACCOUNT, "status": "active"
            })))
            .mount(&s)
            .await;
        s
    })
}

/// Mounts `response` for messages to `to` (digits of the number as Twilio's form encodes it).
pub(crate) fn on_message(
    rt: &tokio::runtime::Runtime,
    s: &MockServer,
    to: &str,
    r: impl Respond + 'static,
) {
    rt.block_on(
        Mock::given(method("POST"))
            .and(path(MESSAGES))
            .and(body_string_contains(format!("To=%2B{to}")))
            .respond_with(r)
            .mount(s),
    );
}

fn posts(rt: &tokio::runtime::Runtime, s: &MockServer) -> Vec<Request> {
    rt.block_on(s.received_requests())
        .unwrap()
        .into_iter()
        .filter(|r| r.method.as_str() == "POST")
        .collect()
}

/// `outreach send campaign.toml --channel sms` started in the background, output piped.
fn spawn_send(f: &Fixture) -> Child {
    Command::new(assert_cmd::cargo::cargo_bin("outreach"))
        .current_dir(f.dir.path())
        .env("OUTREACH_NOW", common::MIDDAY)
        .env_remove("RUST_LOG")
        .args(["send", "campaign.toml", "--channel", "sms"])
        .env(TOKEN_ENV, TOKEN)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Waits (20 s at most) until `s` has had `n` message POSTs.
fn wait_for_posts(rt: &tokio::runtime::Runtime, s: &MockServer, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while posts(rt, s).len() < n {
        assert!(Instant::now() < deadline, "the messages were not tried");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Answers in turn (the last one again when they run out), recording when each request came.
#[derive(Clone)]
struct Sequence {
    answers: Vec<ResponseTemplate>,
    times: Arc<Mutex<Vec<Instant>>>,
}

impl Sequence {
    fn new(answers: Vec<ResponseTemplate>) -> Self {
        Sequence {
            answers,
            times: Arc::default(),
        }
    }

    fn times(&self) -> Vec<Instant> {
        self.times.lock().unwrap().clone()
    }
}

impl Respond for Sequence {
    fn respond(&self, _: &Request) -> ResponseTemplate {
        let mut t = self.times.lock().unwrap();
        t.push(Instant::now());
        self.answers[(t.len() - 1).min(self.answers.len() - 1)].clone()
    }
}

#[test]
fn twilio_request_is_exactly_what_the_api_takes() {
    let rt = runtime();
    let s = twilio_mock(&rt);
    rt.block_on(
        Mock::given(method("POST"))
            .and(path(MESSAGES))
            // Basic auth, account:token.
            .and(header(
                "authorization",
                "Basic QUNhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYTp0ZXN0LXRva2VuLTAxMjM=",
            ))
            .respond_with(twilio_sent("SM0001"))
            .mount(&s),
    );
    let f = fixture(&twilio(&s.uri(), ""), FAST);
    let (code, out, err) = send(&f, &[]);
    assert_eq!(code, 0, "{out}{err}");
    let mut bodies: Vec<String> = posts(&rt, &s)
        .iter()
        .map(|r| String::from_utf8(r.body.clone()).unwrap())
        .collect();
    bodies.sort();
    assert_eq!(bodies.len(), 3);
    assert!(
        bodies[2].starts_with("To=%2B13125550103&Body=Riverside+Physio%3A+Hi+Mar%C3%ADa%2C+"),
        "{}",
        bodies[2]
    );
    assert!(bodies[2].ends_with("&From=%2B13125550100"), "{}", bodies[2]);
    assert_eq!(
        ledger(&f)["+13125550101"].provider_id.as_deref(),
        Some("SM0001")
    );
}

#[test]
fn invalid_number_fails_that_patient_only_and_is_not_retried() {
    let rt = runtime();
    let s = twilio_mock(&rt);
    on_message(
        &rt,
        &s,
        "13125550101",
        twilio_error(
            400,
            21211,
            "The 'To' number +13125550101 is not a valid phone number.",
        ),
    );
    on_message(&rt, &s, "13125550102", twilio_sent("SM0002"));
    on_message(&rt, &s, "13125550103", twilio_sent("SM0003"));
    let f = fixture(&twilio(&s.uri(), ""), FAST);
    let (code, out, err) = send(&f, &["-v"]);
    assert_eq!(code, 1, "{out}{err}");
    assert_eq!(posts(&rt, &s).len(), 3, "not retried");
    let rows = ledger(&f);
    let bad = &rows["+13125550101"];
    assert_eq!((bad.state.as_str(), bad.permanent), ("failed", true));
    let error = bad.error.as_deref().unwrap();
    assert!(error.contains("Twilio error 21211"), "{error}");
    // The number quoted by the gateway is masked, in the ledger and in the logs.
    assert!(
        error.contains("+1312***01") && !error.contains("+13125550101"),
        "{error}"
    );
    assert!(
        !err.contains("13125550101") && !out.contains("13125550101"),
        "{err}"
    );
    assert_eq!(rows["+13125550102"].state, "sent");
    assert_eq!(suppressions(&f), vec![]);
}

#[test]
fn opted_out_number_is_suppressed_and_alone_does_not_fail_the_run() {
    let rt = runtime();
    let s = twilio_mock(&rt);
    on_message(
        &rt,
        &s,
        "13125550102",
        twilio_error(400, 21610, "Attempt to send to unsubscribed recipient"),
    );
    on_message(&rt, &s, "13125550101", twilio_sent("SM0001"));
    on_message(&rt, &s, "13125550103", twilio_sent("SM0003"));
    let f = fixture(&twilio(&s.uri(), ""), FAST);
    let (code, out, err) = send(&f, &[]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("Opted out sms: 1 (now suppressed)"), "{out}");
    let row = &ledger(&f)["+13125550102"];
    assert_eq!((row.state.as_str(), row.permanent), ("failed", true));
    let supp = suppressions(&f);
    assert_eq!(supp.len(), 1);
    assert_eq!(supp[0].0, "+13125550102");
    assert!(
        supp[0].1.starts_with("opted out: HTTP 400"),
        "{}",
        supp[0].1
    );
    assert!(supp[0].1.contains("21610"), "{}", supp[0].1);
    let (code, out, _) = f.run(&["status", "campaign.toml"]);
    assert_eq!(code, 0);
    assert!(
        out.contains(
            "Suppressed while sending (opt-out replies, all campaigns of this state directory): 1"
        ),
        "{out}"
    );
    // Another campaign of the same state directory skips the number.
    let other = f
        .read("campaign.toml")
        .replace("id = \"test-campaign\"", "id = \"another-campaign\"");
    f.write("other.toml", &other);
    let (_, out, _) = f.run(&["check", "other.toml", "--format", "json"]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["channels"][0]["skipped"]["suppressed"], 1, "{out}");
}

/// A Twilio fixture at `base` whose one patient, Ann, takes SMS at +13125550101.
fn ann_only(base: &str) -> Fixture {
    let f = fixture(&twilio(base, ""), FAST);
    f.write(
        "contacts.csv",
        &format!("{HEADER}\nP1,Ann,Lee,,(312) 555-0101,sms,,yes,\n"),
    );
    f
}

#[test]
fn too_many_requests_waits_for_retry_after() {
    let rt = runtime();
    let s = twilio_mock(&rt);
    let seq = Sequence::new(vec![
        twilio_error(429, 20429, "Too Many Requests").insert_header("Retry-After", "1"),
        twilio_sent("SM0001"),
    ]);
    on_message(&rt, &s, "13125550101", seq.clone());
    let f = ann_only(&s.uri());
    let (code, out, err) = send(&f, &[]);
    assert_eq!(code, 0, "{out}{err}");
    let times = seq.times();
    assert_eq!(times.len(), 2);
    // retry_delay is 10 ms: only Retry-After explains a wait of a second.
    let waited = times[1] - times[0];
    assert!(
        waited >= Duration::from_millis(950) && waited < Duration::from_secs(5),
        "{waited:?}"
    );
    let row = &ledger(&f)["+13125550101"];
    assert_eq!((row.state.as_str(), row.attempts), ("sent", 2));
}

#[test]
fn server_error_is_retried_then_sent() {
    let rt = runtime();
    let s = twilio_mock(&rt);
    let seq = Sequence::new(vec![ResponseTemplate::new(500), twilio_sent("SM0001")]);
    on_message(&rt, &s, "13125550101", seq.clone());
    let f = ann_only(&s.uri());
    let (code, out, err) = send(&f, &[]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(seq.times().len(), 2);
    let row = &ledger(&f)["+13125550101"];
    assert_eq!(row.state, "sent");
    assert_eq!(row.provider_id.as_deref(), Some("SM0001"));
}

#[test]
fn a_run_that_stops_before_its_first_message_shows_as_stopped_with_its_reason() {
    // A missing secret (exit 2), then a gateway out of reach (exit 3): `status` says the run
    // stopped, and why, instead of "not finished (still running, or it died)".
    let port = common::free_port();
    let f = fixture(&twilio(&format!("http://127.0.0.1:{port}"), ""), FAST);
    let (code, out, err) = f.run(&["send", "campaign.toml", "--channel", "sms"]);
    assert_eq!(code, 2, "{out}{err}");
    let (code, out, err) = f.run(&["status", "campaign.toml"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains(", stopped (sms transport: ") && out.contains(TOKEN_ENV),
        "{out}"
    );
    assert!(
        !out.contains("not finished") && !out.contains("()"),
        "{out}"
    );
    let (code, out, err) = send(&f, &[]);
    assert_eq!(code, 3, "{out}{err}");
    let (_, out, _) = f.run(&["status", "campaign.toml"]);
    assert!(out.contains("Last run: 2 started "), "{out}");
    assert!(
        out.contains(", stopped (sms transport: ") && out.contains("nothing was sent"),
        "{out}"
    );
}

#[test]
fn a_proxys_bad_gateway_or_timeout_is_unknown_and_never_sent_again() {
    // 502 and 504 come from a proxy in front of the gateway, possibly after the provider took
    // the message: unknown, not retried, not resent by the next run; 503 stays transient.
    for status in [502, 504] {
        let rt = runtime();
        let s = twilio_mock(&rt);
        let seq = Sequence::new(vec![ResponseTemplate::new(status), twilio_sent("SM0001")]);
        on_message(&rt, &s, "13125550101", seq.clone());
        let f = ann_only(&s.uri());
        let (code, out, err) = send(&f, &[]);
        assert_eq!(code, 1, "{status}: {out}{err}");
        assert_eq!(seq.times().len(), 1, "{status}: sent once, not retried");
        let row = &ledger(&f)["+13125550101"];
        assert_eq!(
            (row.state.as_str(), row.attempts),
            ("unknown", 1),
            "{status}"
        );
        assert!(
            row.error.as_deref().unwrap().contains(&status.to_string()),
            "{row:?}"
        );
        let (code, out, err) = send(&f, &[]);
        assert_eq!(code, 0, "{status}: {out}{err}");
        assert_eq!(
            seq.times().len(),
            1,
            "{status}: the next run does not resend it"
        );
    }
    let rt = runtime();
    let s = twilio_mock(&rt);
    let seq = Sequence::new(vec![ResponseTemplate::new(503), twilio_sent("SM0001")]);
    on_message(&rt, &s, "13125550101", seq.clone());
    let f = ann_only(&s.uri());
    let (code, out, err) = send(&f, &[]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(seq.times().len(), 2, "503 is retried");
    assert_eq!(ledger(&f)["+13125550101"].state, "sent");
}

#[test]
fn refused_connection_is_retried_and_left_retryable() {
    // Nothing listens on this port: the request never went, so it is transient, never unknown.
    let port = common::free_port();
    let f = fixture(
        &format!(
            "preset = \"generic\"\nurl = \"http://127.0.0.1:{port}/send\"\nbody_template = \"to={{{{to}}}}\"\n"
        ),
        "[sending]\nsms_rate = \"0\"\nretry_delay = \"10ms\"\nmax_attempts = 2\n",
    );
    let (code, out, err) = send(&f, &[]);
    assert_eq!(code, 3, "{out}{err}");
    for row in ledger(&f).values() {
        assert_eq!((row.state.as_str(), row.permanent), ("failed", false));
        assert_eq!(row.attempts, 2);
        assert!(
            row.error.as_deref().unwrap().contains("cannot connect"),
            "{row:?}"
        );
    }
}

#[test]
fn a_reply_that_never_comes_is_unknown_and_not_retried() {
    let rt = runtime();
    let s = twilio_mock(&rt);
    on_message(
        &rt,
        &s,
        "13125550101",
        twilio_sent("SM0001").set_delay(Duration::from_secs(3)),
    );
    let f = fixture(&twilio(&s.uri(), "timeout = \"300ms\"\n"), FAST);
    f.write(
        "contacts.csv",
        &format!("{HEADER}\nP1,Ann,Lee,,(312) 555-0101,sms,,yes,\n"),
    );
    let (code, out, err) = send(&f, &[]);
    assert_eq!(code, 1, "{out}{err}");
    assert_eq!(posts(&rt, &s).len(), 1, "not retried");
    let row = &ledger(&f)["+13125550101"];
    assert_eq!(row.state, "unknown");
    assert!(
        row.error
            .as_deref()
            .unwrap()
            .contains("the message may have gone"),
        "{row:?}"
    );
    // A rerun does not resend it.
    let (code, _, _) = send(&f, &[]);
    assert_eq!(code, 0);
    assert_eq!(posts(&rt, &s).len(), 1);
}

/// A Twilio look-alike on a raw socket whose accepted replies (201, chunked) never end: it
/// answers the credentials check, then streams each message's reply until the client hangs up.
/// Returns its base URL.
fn endless_gateway() -> String {
    use std::io::{BufRead, BufReader, Read, Write};
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for socket in listener.incoming() {
            let Ok(socket) = socket else { return };
            std::thread::spawn(move || {
                let mut reader = BufReader::new(socket.try_clone().unwrap());
                let mut out = socket;
                loop {
                    let (mut line, mut length) = (String::new(), 0usize);
                    if reader.read_line(&mut line).unwrap_or(0) == 0 {
                        return;
                    }
                    let get = line.starts_with("GET ");
                    loop {
                        let mut h = String::new();
                        reader.read_line(&mut h).unwrap();
                        if h == "\r\n" {
                            break;
                        }
                        if let Some(v) = h.to_ascii_lowercase().strip_prefix("content-length:") {
                            length = v.trim().parse().unwrap();
                        }
                    }
                    reader.read_exact(&mut vec![0; length]).unwrap();
                    if get {
                        let body = format!(r#"{{"sid":"{ACCOUNT}","status":"active"}}"#);
                        write!(
                            out,
                            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n\
                             content-length: {}\r\n\r\n{body}",
                            body.len()
                        )
                        .unwrap();
                        continue;
                    }
                    out.write_all(
                        b"HTTP/1.1 201 Created\r\ncontent-type: application/json\r\n\
                          transfer-encoding: chunked\r\n\r\n",
                    )
                    .unwrap();
                    let chunk = format!("1000\r\n{}\r\n", " ".repeat(0x1000));
                    while out.write_all(chunk.as_bytes()).is_ok() {}
                    return;
                }
            });
        }
    });
    base
}

#[test]
fn a_reply_without_end_is_read_no_further_than_64_kib() {
    let base = endless_gateway();
    let f = fixture(&twilio(&base, "timeout = \"20s\"\n"), FAST);
    f.write(
        "contacts.csv",
        &format!("{HEADER}\nP1,Ann,Lee,,(312) 555-0101,sms,,yes,\n"),
    );
    let started = Instant::now();
    let (code, out, err) = send(&f, &[]);
    // Accepted (201), its sid not found in what was read: sent, at once, not `unknown` when
    // the 20 s ran out.
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    let row = &ledger(&f)["+13125550101"];
    assert_eq!(row.state, "sent", "{row:?}");
    assert_eq!(
        row.provider_id.as_deref(),
        Some("(HTTP 201 Created, no sid in the reply)")
    );
}

#[test]
fn rejected_credentials_at_the_check_send_nothing() {
    let rt = runtime();
    let s = rt.block_on(MockServer::start());
    rt.block_on(
        Mock::given(method("GET"))
            .and(path(ACCOUNT_PATH))
            .respond_with(twilio_error(401, 20003, "Authenticate"))
            .mount(&s),
    );
    let f = fixture(&twilio(&s.uri(), ""), FAST);
    let (code, out, err) = send(&f, &[]);
    assert_eq!(code, 2, "{out}{err}");
    assert!(
        err.contains("sms transport: the gateway rejected the credentials (HTTP 401 Unauthorized for the account)"),
        "{err}"
    );
    assert_eq!(posts(&rt, &s).len(), 0);
    assert_eq!(ledger(&f), BTreeMap::new());
}

#[test]
fn missing_secret_is_exit_2_naming_the_variable() {
    let f = fixture(&twilio("http://127.0.0.1:9", ""), FAST);
    let (code, _, err) = f.run(&["send", "campaign.toml", "--channel", "sms"]);
    assert_eq!(code, 2);
    assert!(
        err.contains(
            "sms.gateway.token: the environment variable OUTREACH_TEST_SMS_TOKEN is not set"
        ),
        "{err}"
    );
}

#[test]
fn rejected_credentials_mid_run_stop_it_and_fail_nobody() {
    let rt = runtime();
    let s = twilio_mock(&rt);
    rt.block_on(
        Mock::given(method("POST"))
            .and(path(MESSAGES))
            .respond_with(twilio_error(401, 20003, "Authenticate"))
            .mount(&s),
    );
    let f = fixture(&twilio(&s.uri(), ""), FAST);
    let (code, out, err) = send(&f, &[]);
    assert_eq!(code, 3, "{out}{err}");
    assert!(
        out.contains("Stopped early: sms: credentials rejected: HTTP 401"),
        "{out}"
    );
    for row in ledger(&f).values() {
        assert!(!row.permanent, "{row:?}");
        assert_ne!(row.state, "sent");
    }
    let (_, out, _) = f.run(&["status", "campaign.toml", "--format", "json"]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["counts"]["sms"]["failed"], 0, "{out}");
}

#[test]
fn default_sms_rate_is_one_a_second() {
    let rt = runtime();
    let s = twilio_mock(&rt);
    let seq = Sequence::new(vec![twilio_sent("SM1")]);
    rt.block_on(
        Mock::given(method("POST"))
            .and(path(MESSAGES))
            .respond_with(seq.clone())
            .mount(&s),
    );
    // No [sending]: the default rate.
    let f = fixture(&twilio(&s.uri(), ""), "");
    let (code, out, err) = send(&f, &[]);
    assert_eq!(code, 0, "{out}{err}");
    let mut times = seq.times();
    times.sort();
    assert_eq!(times.len(), 3);
    // Arrival times at the server jitter with connection setup and scheduling (a loaded CI
    // machine): the rate shows in the span, each gap only roughly. Unlimited, all three arrive
    // within milliseconds.
    assert!(
        times[2] - times[0] >= Duration::from_millis(1700),
        "{times:?}"
    );
    for w in times.windows(2) {
        assert!(
            w[1] - w[0] >= Duration::from_millis(600),
            "{:?}",
            w[1] - w[0]
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Vonage: HTTP 200 whatever happened.
// ---------------------------------------------------------------------------------------------

fn vonage_answer(status: &str, id: &str, error: &str) -> ResponseTemplate {
    let mut m = serde_json::json!({"to": "13125550101", "status": status});
    if status == "0" {
        m["message-id"] = id.into();
    } else {
        m["error-text"] = error.into();
    }
    ResponseTemplate::new(200).set_body_json(serde_json::json!({
        "message-count": "1",
        "messages": [m]
    }))
}

fn on_vonage(rt: &tokio::runtime::Runtime, s: &MockServer, to: &str, r: impl Respond + 'static) {
    rt.block_on(
        Mock::given(method("POST"))
            .and(path("/json"))
            .and(body_string_contains(format!("&to={to}&")))
            .respond_with(r)
            .mount(s),
    );
}

#[test]
fn vonage_statuses_in_a_200_are_classified() {
    let rt = runtime();
    let s = rt.block_on(MockServer::start());
    on_vonage(
        &rt,
        &s,
        "13125550101",
        vonage_answer("7", "", "Number barred."),
    );
    on_vonage(
        &rt,
        &s,
        "13125550102",
        vonage_answer("3", "", "Invalid to parameter"),
    );
    let seq = Sequence::new(vec![
        vonage_answer("1", "", "Throughput Rate Exceeded"),
        vonage_answer("0", "0A0000000123ABCD1", ""),
    ]);
    on_vonage(&rt, &s, "13125550103", seq.clone());
    let f = fixture(&vonage(&s.uri()), FAST);
    let (code, out, err) = send(&f, &[]);
    assert_eq!(code, 1, "{out}{err}");
    let rows = ledger(&f);
    let opted = &rows["+13125550101"];
    assert_eq!(opted.state, "failed");
    assert!(
        opted
            .error
            .as_deref()
            .unwrap()
            .starts_with("opted out: Vonage status 7")
    );
    assert_eq!(suppressions(&f).len(), 1);
    let invalid = &rows["+13125550102"];
    assert_eq!(
        (invalid.state.as_str(), invalid.permanent),
        ("failed", true)
    );
    assert_eq!(
        invalid.error.as_deref(),
        Some("Vonage status 3: Invalid to parameter")
    );
    let maria = &rows["+13125550103"];
    assert_eq!(maria.state, "sent");
    assert_eq!(maria.provider_id.as_deref(), Some("0A0000000123ABCD1"));
    assert_eq!(seq.times().len(), 2, "status 1 is retried");
    // The form: key and secret, digits only, unicode for María.
    let body = posts(&rt, &s)
        .iter()
        .map(|r| String::from_utf8(r.body.clone()).unwrap())
        .find(|b| b.contains("to=13125550103"))
        .unwrap();
    assert!(
        body.starts_with(
            "api_key=abcd1234&api_secret=test-token-0123&from=13125550100&to=13125550103&text=Riverside+Physio%3A+Hi+Mar%C3%ADa"
        ),
        "{body}"
    );
    assert!(body.ends_with("&type=unicode"), "{body}");
}

#[test]
fn vonage_bad_credentials_stop_the_run() {
    let rt = runtime();
    let s = rt.block_on(MockServer::start());
    rt.block_on(
        Mock::given(method("POST"))
            .and(path("/json"))
            .respond_with(vonage_answer("4", "", "Bad Credentials"))
            .mount(&s),
    );
    let f = fixture(&vonage(&s.uri()), FAST);
    let (code, out, err) = send(&f, &[]);
    assert_eq!(code, 3, "{out}{err}");
    assert!(
        out.contains("Stopped early: sms: Vonage status 4: Bad Credentials"),
        "{out}"
    );
    assert!(ledger(&f).values().all(|r| !r.permanent));
}

#[test]
fn a_wrong_gateway_address_stops_the_run_and_fails_nobody() {
    // Twilio's answer to a message for an account it does not have; Vonage's legacy API posted
    // at a `base_url` without its `/sms`. Every message would meet the same.
    let rt = runtime();
    let s = twilio_mock(&rt);
    rt.block_on(
        Mock::given(method("POST"))
            .and(path(MESSAGES))
            .respond_with(twilio_error(
                404,
                20404,
                "The requested resource was not found",
            ))
            .mount(&s),
    );
    rt.block_on(
        Mock::given(method("POST"))
            .and(path("/json"))
            .respond_with(ResponseTemplate::new(405).set_body_string("Method Not Allowed"))
            .mount(&s),
    );
    for (gateway, says) in [
        (
            twilio(&s.uri(), ""),
            "HTTP 404 Not Found, Twilio error 20404: The requested resource was not found",
        ),
        (
            vonage(&s.uri()),
            "HTTP 405 Method Not Allowed: Method Not Allowed",
        ),
    ] {
        let f = fixture(&gateway, FAST);
        let (code, out, err) = send(&f, &[]);
        assert_eq!(code, 3, "{out}{err}");
        assert!(
            out.contains(&format!(
                "Stopped early: sms: the gateway takes no messages there: {says} (check \
                 [sms.gateway]'s URL and account)"
            )),
            "{out}"
        );
        all_retryable(&f);
    }
}

/// `n` SMS contacts, P1… at (312) 555-0101….
fn many(n: usize) -> String {
    let mut csv = format!("{HEADER}\n");
    for i in 1..=n {
        csv.push_str(&format!("P{i},Pat,Lee,,(312) 555-01{i:02},sms,,yes,\n"));
    }
    csv
}

#[test]
fn a_gateway_that_never_answers_stops_the_run() {
    // Each message taken and never answered is `unknown` (it may have gone): without a stop,
    // the whole list would be left so.
    let rt = runtime();
    let s = twilio_mock(&rt);
    rt.block_on(
        Mock::given(method("POST"))
            .and(path(MESSAGES))
            .respond_with(twilio_sent("SM1").set_delay(Duration::from_secs(5)))
            .mount(&s),
    );
    let f = fixture(
        &twilio(&s.uri(), "timeout = \"300ms\"\n"),
        &format!("{FAST}concurrency = 1\nmax_consecutive_failures = 2\n"),
    );
    f.write("contacts.csv", &many(6));
    let (code, out, err) = send(&f, &[]);
    assert_eq!(code, 3, "{out}{err}");
    assert!(
        out.contains(
            "Stopped early: sms: 2 messages in a row failed or went unanswered \
             (sending.max_consecutive_failures = 2)"
        ),
        "{out}"
    );
    assert_eq!(posts(&rt, &s).len(), 2);
    let unknown = ledger(&f).values().filter(|r| r.state == "unknown").count();
    assert_eq!(unknown, 2);
}

#[test]
fn a_resumed_unknown_released_unsent_stays_unknown() {
    // Run 1 leaves three messages unknown (they may have gone). Run 2 resumes them
    // (--resend-unknown) and halts at its first (credentials rejected): the two claimed behind
    // it are released unsent. They must be unknown again, not retryable failures that the next
    // plain run would send without being asked.
    let rt = runtime();
    let silent = twilio_mock(&rt);
    rt.block_on(
        Mock::given(method("POST"))
            .and(path(MESSAGES))
            .respond_with(twilio_sent("SM1").set_delay(Duration::from_secs(5)))
            .mount(&silent),
    );
    let f = fixture(
        &twilio(&silent.uri(), "timeout = \"300ms\"\n"),
        &format!("{FAST}concurrency = 1\n"),
    );
    let (code, out, err) = send(&f, &[]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(ledger(&f).values().all(|r| r.state == "unknown"));

    let rejecting = twilio_mock(&rt);
    rt.block_on(
        Mock::given(method("POST"))
            .and(path(MESSAGES))
            .respond_with(twilio_error(401, 20003, "Authenticate"))
            .mount(&rejecting),
    );
    let base = format!("sms.gateway.base_url={}", rejecting.uri());
    let (code, out, err) = send(&f, &["--resend-unknown", "--set", &base]);
    assert_eq!(code, 3, "{out}{err}");
    assert_eq!(posts(&rt, &rejecting).len(), 1);
    let rows = ledger(&f);
    let states: Vec<_> = rows.values().map(|r| r.state.as_str()).collect();
    assert_eq!(
        states.iter().filter(|s| **s == "unknown").count(),
        2,
        "{rows:?}"
    );
    for row in rows.values().filter(|r| r.state == "unknown") {
        assert_eq!(row.attempts, 1, "a release is no attempt: {row:?}");
        assert!(
            row.error.as_deref().unwrap().contains("no reply within"),
            "{row:?}"
        );
    }

    let accepting = twilio_mock(&rt);
    rt.block_on(
        Mock::given(method("POST"))
            .and(path(MESSAGES))
            .respond_with(twilio_sent("SM2"))
            .mount(&accepting),
    );
    let base = format!("sms.gateway.base_url={}", accepting.uri());
    let (code, out, err) = send(&f, &["--set", &base]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(
        posts(&rt, &accepting).len(),
        1,
        "only the one refused for its credentials"
    );
}

#[test]
fn a_ledger_another_process_holds_for_a_while_loses_no_outcome() {
    // Another process (a purge of another campaign, say) holds the ledger's write lock for
    // longer than SQLite waits (10 s): the run waits for it and records every outcome, where
    // it used to give up, stop, and leave the messages that went `sending` (then `unknown`).
    let rt = runtime();
    let s = twilio_mock(&rt);
    rt.block_on(
        Mock::given(method("POST"))
            .and(path(MESSAGES))
            .respond_with(twilio_sent("SM1").set_delay(Duration::from_millis(100)))
            .mount(&s),
    );
    let f = fixture(&twilio(&s.uri(), ""), &format!("{FAST}concurrency = 1\n"));
    f.write("contacts.csv", &many(60));
    let child = spawn_send(&f);
    wait_for_posts(&rt, &s, 3);
    let other = rusqlite::Connection::open(f.path(".outreach/ledger.sqlite")).unwrap();
    other.busy_timeout(Duration::from_secs(10)).unwrap();
    other.execute_batch("BEGIN IMMEDIATE").unwrap();
    std::thread::sleep(Duration::from_secs(12));
    other.execute_batch("COMMIT").unwrap();
    drop(other);
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    assert!(
        stderr.contains("another process is writing it; trying again"),
        "{stderr}"
    );
    assert_eq!(posts(&rt, &s).len(), 60);
    let rows = ledger(&f);
    assert_eq!(rows.len(), 60);
    assert!(rows.values().all(|r| r.state == "sent"), "{rows:?}");
}

#[test]
fn a_retry_after_beyond_five_minutes_stops_the_run_at_once() {
    let rt = runtime();
    let s = twilio_mock(&rt);
    rt.block_on(
        Mock::given(method("POST"))
            .and(path(MESSAGES))
            .respond_with(
                twilio_error(429, 20429, "Too Many Requests").insert_header("retry-after", "3600"),
            )
            .mount(&s),
    );
    let f = fixture(&twilio(&s.uri(), ""), FAST);
    let started = Instant::now();
    let (code, out, err) = send(&f, &[]);
    assert_eq!(code, 3, "{out}{err}");
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(
        out.contains(
            "Stopped early: sms: the server asks to wait 3600 s (Retry-After), longer than a run \
             waits (300 s); a later run resumes"
        ),
        "{out}"
    );
    all_retryable(&f);
}

#[test]
fn a_signal_cuts_a_retry_wait_short() {
    // Server errors, retried after 30-60 s: a SIGTERM does not wait for that.
    let rt = runtime();
    let s = twilio_mock(&rt);
    rt.block_on(
        Mock::given(method("POST"))
            .and(path(MESSAGES))
            .respond_with(ResponseTemplate::new(503))
            .mount(&s),
    );
    let f = fixture(
        &twilio(&s.uri(), ""),
        "[sending]\nsms_rate = \"0\"\nretry_delay = \"60s\"\n",
    );
    let child = spawn_send(&f);
    wait_for_posts(&rt, &s, 3);
    std::thread::sleep(Duration::from_millis(200));
    let signalled = Instant::now();
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(signalled.elapsed() < Duration::from_secs(10), "{stdout}");
    assert_eq!(out.status.code(), Some(3), "{stdout}");
    assert!(
        stdout.contains("Stopped early: interrupted by a signal"),
        "{stdout}"
    );
    assert_eq!(posts(&rt, &s).len(), 3, "no retry after the signal");
    all_retryable(&f);
}

#[test]
fn a_credentials_check_the_server_cannot_answer_now_is_exit_3() {
    // Busy or out of reach at cron time: a later run may work (exit 3), where rejected
    // credentials are exit 2.
    let rt = runtime();
    let s = rt.block_on(MockServer::start());
    rt.block_on(
        Mock::given(method("GET"))
            .and(path(ACCOUNT_PATH))
            .respond_with(ResponseTemplate::new(503))
            .mount(&s),
    );
    let closed = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", l.local_addr().unwrap())
    };
    for (base, says) in [
        (
            s.uri(),
            "sms transport: could not check the credentials: HTTP 503 Service Unavailable for \
             the account"
                .to_string(),
        ),
        (
            closed,
            "sms transport: could not check the credentials: error sending request".to_string(),
        ),
    ] {
        let f = fixture(&twilio(&base, ""), FAST);
        let (code, out, err) = send(&f, &[]);
        assert_eq!(code, 3, "{out}{err}");
        assert!(err.contains(&says), "{err}");
        assert!(!err.contains(ACCOUNT_PATH), "no URL in the error: {err}");
        assert_eq!(ledger(&f), BTreeMap::new());
    }
    assert_eq!(posts(&rt, &s).len(), 0);
}

#[test]
fn a_secret_a_header_cannot_carry_is_exit_2_and_a_final_line_end_is_dropped() {
    let rt = runtime();
    let s = rt.block_on(MockServer::start());
    rt.block_on(
        Mock::given(method("POST"))
            .and(path("/send"))
            .and(header("authorization", "Bearer test-token-0123"))
            .respond_with(ResponseTemplate::new(200))
            .mount(&s),
    );
    let gateway = format!(
        "preset = \"generic\"\nbase_url = \"{}\"\nurl = \"/send\"\nauth = \"bearer\"\n\
         token_env = \"{TOKEN_ENV}\"\nbody_template = \"to={{{{to}}}}\"\n",
        s.uri()
    );
    let f = fixture(&gateway, FAST);
    let sms = |token: &str| {
        let mut c = f.cmd(&["send", "campaign.toml", "--channel", "sms"]);
        c.env(TOKEN_ENV, token);
        run(c)
    };
    let (code, out, err) = sms("test-token\u{1}0123");
    assert_eq!(code, 2, "{out}{err}");
    assert!(
        err.contains("sms.gateway.token: the secret holds a character an HTTP header cannot carry"),
        "{err}"
    );
    assert!(!err.contains("test-token"), "{err}");
    assert_eq!(ledger(&f), BTreeMap::new());
    // An environment file written on Windows: the `\r` goes.
    let (code, out, err) = sms("test-token-0123\r\n");
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(posts(&rt, &s).len(), 3);
}

#[test]
fn a_connection_that_cannot_be_made_in_time_is_retried_not_unknown() {
    // A listener that never accepts, its queue full: a new connection hangs as one to a host
    // that drops packets does. The connect timeout (half of `timeout` here) must go off before
    // the whole request's, or nothing that provably went nowhere would be left `unknown`.
    let rt = runtime();
    let (listener, addr) = rt.block_on(async {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let listener = socket.listen(0).unwrap();
        let addr = listener.local_addr().unwrap();
        (listener, addr)
    });
    let queued: Vec<_> = (0..4)
        .filter_map(|_| {
            std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200)).ok()
        })
        .collect();
    let gateway = format!(
        "preset = \"generic\"\nurl = \"http://{addr}/send\"\ntimeout = \"1s\"\n\
         body_template = \"to={{{{to}}}}\"\n"
    );
    let f = fixture(&gateway, FAST);
    let (code, out, err) = send(&f, &[]);
    assert_eq!(code, 3, "{out}{err}");
    let rows = ledger(&f);
    assert_eq!(rows.len(), 3);
    for row in rows.values() {
        assert_eq!(
            (row.state.as_str(), row.permanent),
            ("failed", false),
            "{row:?}"
        );
        assert!(
            row.error
                .as_deref()
                .unwrap()
                .starts_with("cannot connect: "),
            "{row:?}"
        );
    }
    drop((listener, queued));
}

#[test]
fn errors_do_not_quote_the_request_url() {
    // A generic GET carries the message in its query: a failed request's error (logged, and
    // kept in the ledger) must not.
    let closed = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let gateway = format!(
        "preset = \"generic\"\nmethod = \"GET\"\nurl = \"http://{closed}/send?key=k3y\"\n\
         body_template = \"to={{{{to}}}}&text={{{{body}}}}\"\n"
    );
    let f = fixture(&gateway, FAST);
    let (code, out, err) = send(&f, &[]);
    assert_eq!(code, 3, "{out}{err}");
    let rows = ledger(&f);
    assert_eq!(rows.len(), 3);
    for row in rows.values() {
        let error = row.error.as_deref().unwrap();
        assert!(error.starts_with("cannot connect: "), "{error}");
        for secret in ["k3y", "text=", "Riverside", "/send"] {
            assert!(!error.contains(secret), "{error}");
        }
    }
    assert!(!err.contains("Riverside") && !err.contains("k3y"), "{err}");
}

#[test]
fn an_environment_proxy_is_not_used_for_a_gateway_on_this_machine() {
    // Plain http is allowed to this machine; through a proxy it would cross the network.
    let rt = runtime();
    let s = twilio_mock(&rt);
    on_message(&rt, &s, "13125550101", twilio_sent("SM1"));
    on_message(&rt, &s, "13125550102", twilio_sent("SM2"));
    on_message(&rt, &s, "13125550103", twilio_sent("SM3"));
    rt.block_on(
        Mock::given(method("POST"))
            .and(path("/send"))
            .respond_with(ResponseTemplate::new(200))
            .mount(&s),
    );
    let proxy = elsewhere(&rt);
    // The Twilio preset by its base_url; a generic gateway by its whole url (no base_url).
    let generic = format!(
        "preset = \"generic\"\nurl = \"{}/send\"\nbody_template = \"to={{{{to}}}}\"\n",
        s.uri()
    );
    for (n, gateway) in [twilio(&s.uri(), ""), generic].into_iter().enumerate() {
        let f = fixture(&gateway, FAST);
        let mut c = f.cmd(&["send", "campaign.toml", "--channel", "sms"]);
        c.env(TOKEN_ENV, TOKEN);
        for var in ["http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"] {
            c.env(var, proxy.uri());
        }
        c.env_remove("no_proxy").env_remove("NO_PROXY");
        let (code, out, err) = run(c);
        assert_eq!(code, 0, "{gateway}: {out}{err}");
        assert_eq!(rt.block_on(proxy.received_requests()).unwrap().len(), 0);
        assert_eq!(posts(&rt, &s).len(), 3 * (n + 1), "{gateway}");
    }
}

/// A server that takes anything (and would accept any message): where a redirect points.
fn elsewhere(rt: &tokio::runtime::Runtime) -> MockServer {
    rt.block_on(async {
        let s = MockServer::start().await;
        Mock::given(wiremock::matchers::any())
            .respond_with(twilio_sent("SM_elsewhere"))
            .mount(&s)
            .await;
        s
    })
}

#[test]
fn a_redirect_is_not_followed_and_stops_the_run_failing_nobody() {
    // Vonage's secret travels in the form: a 307 followed would post it, with each patient's
    // number and message, to wherever the Location says, in clear text here.
    let rt = runtime();
    let away = elsewhere(&rt);
    let s = rt.block_on(MockServer::start());
    let location = format!("{}/json", away.uri());
    // As a moved gateway may answer: the request's query repeated, secret and message included.
    let with_query =
        location.replace("http://", "http://user:pw@") + "?api_secret=test-token-0123&text=Hi+Ann";
    rt.block_on(
        Mock::given(method("POST"))
            .and(path("/json"))
            .respond_with(ResponseTemplate::new(307).insert_header("location", with_query.as_str()))
            .mount(&s),
    );
    let f = fixture(&vonage(&s.uri()), FAST);
    let (code, out, err) = send(&f, &[]);
    assert_eq!(code, 3, "{out}{err}");
    assert!(
        out.contains(&format!(
            "Stopped early: sms: HTTP 307 Temporary Redirect to {location}: outreach does not \
             follow a gateway's redirects"
        )),
        "{out}"
    );
    for secret in ["test-token-0123", "Hi+Ann", "pw@"] {
        assert!(!out.contains(secret) && !err.contains(secret), "{out}{err}");
        for row in ledger(&f).values() {
            assert!(
                !row.error.as_deref().unwrap_or("").contains(secret),
                "{row:?}"
            );
        }
    }
    assert_eq!(rt.block_on(away.received_requests()).unwrap().len(), 0);
    assert!(!posts(&rt, &s).is_empty());
    all_retryable(&f);
}

#[test]
fn a_redirected_credentials_check_sends_nothing() {
    let rt = runtime();
    let away = elsewhere(&rt);
    let s = rt.block_on(MockServer::start());
    let location = format!("{}{ACCOUNT_PATH}", away.uri());
    rt.block_on(
        Mock::given(method("GET"))
            .and(path(ACCOUNT_PATH))
            .respond_with(ResponseTemplate::new(301).insert_header("location", location.as_str()))
            .mount(&s),
    );
    let f = fixture(&twilio(&s.uri(), ""), FAST);
    let (code, out, err) = send(&f, &[]);
    assert_eq!(code, 2, "{out}{err}");
    assert!(
        err.contains(&format!(
            "sms transport: could not check the credentials: HTTP 301 Moved Permanently to \
             {location}: outreach does not follow a gateway's redirects"
        )),
        "{err}"
    );
    assert_eq!(rt.block_on(away.received_requests()).unwrap().len(), 0);
    assert_eq!(posts(&rt, &s).len(), 0);
    assert_eq!(ledger(&f), BTreeMap::new());
}

// ---------------------------------------------------------------------------------------------
// Generic: a Telnyx-style JSON API configured without code.
// ---------------------------------------------------------------------------------------------

#[test]
fn generic_preset_speaks_json_with_bearer_auth_and_reads_pointers() {
    let rt = runtime();
    let s = rt.block_on(MockServer::start());
    rt.block_on(async {
        Mock::given(method("GET"))
            .and(path("/v2/balance"))
            .and(header("authorization", "Bearer test-token-0123"))
            .respond_with(ResponseTemplate::new(200))
            .mount(&s)
            .await;
        Mock::given(method("POST"))
            .and(path("/v2/messages"))
            .and(body_string_contains("+13125550102"))
            .respond_with(ResponseTemplate::new(400).set_body_json(serde_json::json!({
                "errors": [{"code": "40300", "title": "Blocked due to STOP message"}]
            })))
            .mount(&s)
            .await;
        Mock::given(method("POST"))
            .and(path("/v2/messages"))
            .and(header("authorization", "Bearer test-token-0123"))
            .and(header("content-type", "application/json"))
            .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({
                "data": {"id": "40017f1e-0001", "to": [{"status": "queued"}]}
            })))
            .mount(&s)
            .await;
    });
    let gateway = format!(
        r#"preset = "generic"
base_url = "{}"
url = "/v2/messages"
check_url = "/v2/balance"
auth = "bearer"
token_env = "{TOKEN_ENV}"
body_format = "json"
body_template = '{{"from": "{{{{from}}}}", "to": "{{{{to}}}}", "text": "{{{{body}}}}", "type": "SMS"}}'
success_status = [200]
success_pointer = "/data/id"
id_pointer = "/data/id"
error_pointer = "/errors/0/code"
opted_out_codes = [40300]
"#,
        s.uri()
    );
    let f = fixture(&gateway, FAST);
    f.write(
        "templates/sms.txt.hbs",
        "{{clinic.name}}: \"{{contact.first_name}}\"\\ book now",
    );
    let (code, out, err) = send(&f, &[]);
    assert_eq!(code, 0, "{out}{err}");
    let rows = ledger(&f);
    assert_eq!(
        rows["+13125550101"].provider_id.as_deref(),
        Some("40017f1e-0001")
    );
    assert!(
        rows["+13125550102"]
            .error
            .as_deref()
            .unwrap()
            .starts_with("opted out: HTTP 400 Bad Request, error 40300")
    );
    let body: serde_json::Value = posts(&rt, &s)
        .iter()
        .map(|r| serde_json::from_slice::<serde_json::Value>(&r.body).unwrap())
        .find(|v| v["to"] == "+13125550103")
        .unwrap();
    assert_eq!(
        body,
        serde_json::json!({
            "from": "+13125550100",
            "to": "+13125550103",
            "text": "Riverside Physio: \"María\"\\ book now",
            "type": "SMS"
        })
    );
}

// ---------------------------------------------------------------------------------------------
// Configuration and encoding.
// ---------------------------------------------------------------------------------------------

fn config_error(gateway: &str) -> String {
    let f = fixture(gateway, FAST);
    let (code, _, err) = f.run(&["check", "campaign.toml"]);
    assert_eq!(code, 2, "{err}");
    err
}

#[test]
fn gateway_settings_are_checked_with_key_and_line() {
    // The [sms.gateway] table starts on line 35 of the fixture's campaign file.
    let err = config_error("preset = \"twilio\"\naccount = \"AC123\"\ntoken_env = \"T\"\n");
    assert!(
        err.contains("campaign.toml:37: `sms.gateway.account`: \"AC123\" is not a Twilio Account SID (AC followed by 32 hex digits)"),
        "{err}"
    );
    let err =
        config_error("preset = \"twilio\"\naccount = \"ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"\n");
    assert!(
        err.contains("`sms.gateway.token_env`: the twilio preset needs the auth token"),
        "{err}"
    );
    let err = config_error(
        "preset = \"vonage\"\napi_key = \"abcd1234\"\naccount = \"abcd1234\"\ntoken_env = \"T\"\n",
    );
    assert!(
        err.contains("campaign.toml:37: `sms.gateway.api_key`: give either api_key or account"),
        "{err}"
    );
    let err = config_error("preset = \"vonage\"\napi_key = \"abcd1234\"\napi_secret = \"x\"\n");
    assert!(
        err.contains("campaign.toml:38: `sms.gateway.api_secret`: secrets are never read from the campaign file"),
        "{err}"
    );
    let err = config_error(
        "preset = \"twilio\"\naccount = \"ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"\ntoken_env = \"T\"\nurl = \"https://x.example\"\n",
    );
    assert!(err.contains("campaign.toml:39: `sms.gateway.url`: is not used by the twilio preset (only by generic)"), "{err}");
    let err = config_error(
        "preset = \"generic\"\nmethod = \"GET\"\nurl = \"https://gw.example/send#v2\"\nbody_template = \"to={{to}}\"\n",
    );
    assert!(
        err.contains("campaign.toml:38: `sms.gateway.url`: \"https://gw.example/send#v2\" has a #fragment, which is never sent to the server: remove it"),
        "{err}"
    );
    let err = config_error(
        "preset = \"generic\"\nurl = \"https://gw.example/send\"\nbody_template = \"to={{phone}}\"\n",
    );
    assert!(
        err.contains("campaign.toml:38: `sms.gateway.body_template`: unknown placeholder {{phone}}; known: to, to_digits,"),
        "{err}"
    );
    let err = config_error(
        "preset = \"generic\"\nurl = \"https://gw.example/send\"\nbody_format = \"json\"\nbody_template = '{\"to\": {{to}}}'\n",
    );
    assert!(
        err.contains("campaign.toml:39: `sms.gateway.body_template`: is not JSON once filled in"),
        "{err}"
    );
    let err = config_error(
        "preset = \"generic\"\nurl = \"https://gw.example/send\"\nbody_template = \"to={{to}}\"\nauth = \"bearer\"\n",
    );
    assert!(
        err.contains("`sms.gateway.token_env`: the generic preset needs a secret for its auth"),
        "{err}"
    );
    let err = config_error(
        "preset = \"generic\"\nurl = \"https://gw.example/send\"\nbody_template = \"to={{to}}\"\nsurprise = 1\n",
    );
    assert!(err.contains("campaign.toml:39"), "{err}");
    assert!(err.contains("unknown field `surprise`"), "{err}");
}

#[test]
fn plain_http_is_refused_off_this_machine_unless_allowed() {
    // TLS by default, as for SMTP: each URL the gateway's traffic would take in clear text is
    // named, with its line (the [sms.gateway] table starts on line 35).
    let generic =
        |lines: &str| format!("preset = \"generic\"\n{lines}body_template = \"to={{{{to}}}}\"\n");
    for (gateway, line, key, url) in [
        (
            twilio("http://api.twilio.example", ""),
            37,
            "base_url",
            "http://api.twilio.example",
        ),
        (
            twilio(
                "https://api.twilio.com",
                "status_callback = \"http://riverside.example/sms-status\"\n",
            ),
            40,
            "status_callback",
            "http://riverside.example/sms-status",
        ),
        (
            vonage("HTTP://rest.nexmo.com/sms").replace("HTTP", "http"),
            37,
            "base_url",
            "http://rest.nexmo.com/sms",
        ),
        (
            generic("url = \"http://gw.example/send\"\n"),
            37,
            "url",
            "http://gw.example/send",
        ),
        // A path joined to an http base_url: the base_url is named.
        (
            generic("base_url = \"http://gw.example\"\nurl = \"/send\"\n"),
            37,
            "base_url",
            "http://gw.example",
        ),
        (
            generic(
                "url = \"https://gw.example/send\"\ncheck_url = \"http://gw.example:8080/balance\"\n",
            ),
            38,
            "check_url",
            "http://gw.example:8080/balance",
        ),
        // Only the host counts: a loopback address in the user part or path does not.
        (
            generic("url = \"http://127.0.0.1@gw.example/localhost\"\n"),
            37,
            "url",
            "http://127.0.0.1@gw.example/localhost",
        ),
        // Read as the HTTP client reads it: after a backslash comes the path, so the host is
        // gw.example, not 127.0.0.1.
        (
            generic("url = \"http://gw.example\\\\@127.0.0.1/send\"\n"),
            37,
            "url",
            "http://gw.example\\\\@127.0.0.1/send",
        ),
    ] {
        let err = config_error(&gateway);
        let expected = format!("campaign.toml:{line}: `sms.gateway.{key}`: \"{url}\" would carry ");
        assert!(err.contains(&expected), "{expected}\n{err}");
        assert!(
            err.contains(
                "in clear text: use https://, or set sms.gateway.allow_insecure = true (plain \
                 http is allowed to this machine)"
            ),
            "{err}"
        );
    }
    // This machine, by name or address, and any URL once allowed, pass.
    for gateway in [
        twilio("http://localhost:8080", ""),
        twilio("http://[::1]:8080", ""),
        twilio("http://user@127.0.0.2:8080/api", ""),
        generic("url = \"http://gw.example/send\"\nallow_insecure = true\n"),
        twilio(
            "http://api.twilio.example",
            "status_callback = \"http://riverside.example/cb\"\nallow_insecure = true\n",
        ),
    ] {
        let f = fixture(&gateway, FAST);
        let (code, out, err) = f.run(&["check", "campaign.toml"]);
        assert_eq!(code, 0, "{gateway}\n{out}{err}");
    }
}

#[test]
fn smart_encoding_is_shown_by_preview_and_sent_as_gsm7() {
    let rt = runtime();
    let s = twilio_mock(&rt);
    rt.block_on(
        Mock::given(method("POST"))
            .and(path(MESSAGES))
            .respond_with(twilio_sent("SM1"))
            .mount(&s),
    );
    let f = ann_only(&s.uri());
    // The article's en dash, bullet, no-break space, curly quotes and ellipsis.
    f.write(
        "templates/sms.txt.hbs",
        "Psoas \u{2013} \u{2022} \u{201c}free\u{201d}\u{a0}call\u{2026} Reply STOP",
    );
    let (_, out, _) = f.run(&[
        "preview",
        "campaign.toml",
        "--contact",
        "P1",
        "--channel",
        "sms",
    ]);
    assert!(out.contains("UCS-2"), "{out}");
    let campaign = f.read("campaign.toml").replace(
        "transport = \"http\"",
        "transport = \"http\"\nsmart_encoding = true",
    );
    f.write("campaign.toml", &campaign);
    let (_, out, _) = f.run(&[
        "preview",
        "campaign.toml",
        "--contact",
        "P1",
        "--channel",
        "sms",
    ]);
    assert!(out.contains("GSM-7"), "{out}");
    assert!(
        out.contains("(smart encoding replaced characters outside GSM-7)"),
        "{out}"
    );
    let (code, out, err) = send(&f, &[]);
    assert_eq!(code, 0, "{out}{err}");
    let body = String::from_utf8(posts(&rt, &s)[0].body.clone()).unwrap();
    assert!(
        body.contains("Body=Psoas+-+-+%22free%22+call...+Reply+STOP"),
        "{body}"
    );
}
