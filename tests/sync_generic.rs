//! `outreach sync` for a generic gateway, end to end: the real binary sends through a wiremock
//! gateway described only in the campaign file, then asks its `status_url` about each message
//! and reads the answers by the configured pointers and status lists. Requests are counted per
//! id: a final message is never asked about twice, even by a rerun after a SIGKILL.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::common::Fixture;
use crate::sms_gateway::{TOKEN, TOKEN_ENV, fixture, ledger, runtime, suppressions};
use crate::sync::sync;

use wiremock::matchers::{body_string_contains, header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

/// The gateway's lines: JSON sends answered with `/id`, statuses at `/v1/messages/{{id}}`.
fn generic(base: &str, status: &str) -> String {
    format!(
        r#"preset = "generic"
base_url = "{base}"
url = "/v1/messages"
auth = "bearer"
token_env = "{TOKEN_ENV}"
body_format = "json"
body_template = '{{"to": "{{{{to}}}}", "text": "{{{{body}}}}"}}'
id_pointer = "/id"
error_pointer = "/error"
opted_out_codes = ["STOPPED"]
{status}"#
    )
}

/// The status keys of the tests: the state and error under `/message`, ENROUTE pending.
const STATUS: &str = r#"status_url = "/v1/messages/{{id}}"
status_pointer = "/message/state"
status_error_pointer = "/message/error"
status_delivered = ["DELIVRD"]
status_undelivered = ["UNDELIV", "REJECTD"]
status_pending = ["ACCEPTD", "ENROUTE"]
"#;

/// A wiremock gateway that took the three SMS as G1..G3, and the fixture that sent them.
fn sent_three(rt: &tokio::runtime::Runtime, sending: &str) -> (MockServer, Fixture) {
    let s = rt.block_on(MockServer::start());
    for n in 1..=3 {
        rt.block_on(
            Mock::given(method("POST"))
                .and(path("/v1/messages"))
                .and(body_string_contains(format!("+131255501{n:02}")))
                .respond_with(
                    ResponseTemplate::new(200)
                        .set_body_json(serde_json::json!({"id": format!("G{n}")})),
                )
                .mount(&s),
        );
    }
    let f = fixture(&generic(&s.uri(), STATUS), sending);
    let mut c = f.cmd(&["send", "campaign.toml", "--channel", "sms"]);
    c.env(TOKEN_ENV, TOKEN);
    let (code, out, err) = crate::common::run(c);
    assert_eq!(code, 0, "{out}{err}");
    (s, f)
}

fn state(state: &str, error: Option<&str>) -> ResponseTemplate {
    ResponseTemplate::new(200)
        .set_body_json(serde_json::json!({"message": {"state": state, "error": error}}))
}

fn on_status(rt: &tokio::runtime::Runtime, s: &MockServer, id: &str, r: ResponseTemplate) {
    rt.block_on(
        Mock::given(method("GET"))
            .and(path(format!("/v1/messages/{id}")))
            .and(header("authorization", format!("Bearer {TOKEN}").as_str()))
            .respond_with(r)
            .mount(s),
    );
}

/// How many times each id's status was asked.
fn asked(rt: &tokio::runtime::Runtime, s: &MockServer) -> BTreeMap<String, usize> {
    let mut n = BTreeMap::new();
    for r in rt.block_on(s.received_requests()).unwrap() {
        if let Some(id) = r.url.path().strip_prefix("/v1/messages/") {
            *n.entry(id.to_string()).or_default() += 1;
        }
    }
    n
}

fn counts(pairs: &[(&str, usize)]) -> BTreeMap<String, usize> {
    pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
}

#[test]
fn statuses_are_read_by_pointers_paced_and_final_ones_never_asked_again() {
    let rt = runtime();
    // Two lookups a second: three take at least a second.
    let (s, f) = sent_three(&rt, "[sending]\nsms_rate = \"2/s\"\n");
    on_status(&rt, &s, "G1", state("DELIVRD", None));
    on_status(&rt, &s, "G2", state("REJECTD", Some("STOPPED")));
    rt.block_on(
        Mock::given(method("GET"))
            .and(path("/v1/messages/G3"))
            .respond_with(state("ENROUTE", None))
            .up_to_n_times(1)
            .mount(&s),
    );
    on_status(&rt, &s, "G3", state("DELIVRD", None));
    let started = Instant::now();
    let (code, out, err) = sync(&f, &[]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(started.elapsed() >= Duration::from_secs(1));
    assert_eq!(
        out,
        "test-campaign: asked 3: 1 delivered, 1 undelivered, 1 pending, 0 not found, 0 failed; \
         1 suppressed\nunknown SMS: 0 found sent, 0 retryable, 0 still unknown\n"
    );
    assert_eq!(
        suppressions(&f),
        [(
            "+13125550102".to_string(),
            "opted out (gateway code STOPPED)".to_string()
        )]
    );
    // The rerun asks only about the pending one, now delivered.
    let (code, out, _) = sync(&f, &[]);
    assert_eq!(code, 0);
    assert!(out.contains("asked 1: 1 delivered"), "{out}");
    assert_eq!(asked(&rt, &s), counts(&[("G1", 1), ("G2", 1), ("G3", 2)]));
    let (_, out, _) = sync(&f, &[]);
    assert!(out.contains("asked 0:"), "{out}");
    assert_eq!(asked(&rt, &s).values().sum::<usize>(), 4);
}

#[test]
fn unknown_rows_stay_unknown_and_a_status_outside_the_lists_fails() {
    let rt = runtime();
    let (s, f) = sent_three(&rt, crate::sms_gateway::FAST);
    let db = f.ledger();
    db.execute("DELETE FROM sms_parts WHERE provider_id = 'G3'");
    db.execute("UPDATE messages SET state = 'unknown' WHERE address = '+13125550103'");
    on_status(&rt, &s, "G1", state("DELIVRD", None));
    on_status(&rt, &s, "G2", state("HELD", None));
    let (code, out, err) = sync(&f, &[]);
    assert_eq!(code, 1, "{out}{err}");
    assert_eq!(
        out,
        "test-campaign: asked 2: 1 delivered, 0 undelivered, 0 pending, 0 not found, 1 failed; \
         0 suppressed\nunknown SMS: 0 found sent, 0 retryable, 1 still unknown\nthe gateway has \
         no list of sent messages to settle unknown SMS: they stay unknown (send \
         --resend-unknown sends them again, at the risk of a second text)\n"
    );
    assert!(
        err.contains(
            "status \"HELD\" is in none of status_delivered, status_undelivered and status_pending"
        ),
        "{err}"
    );
    assert_eq!(ledger(&f)["+13125550103"].state, "unknown");
}

#[test]
fn not_found_is_counted_throttling_waits_and_rejected_credentials_stop() {
    let rt = runtime();
    let (s, f) = sent_three(&rt, crate::sms_gateway::FAST);
    on_status(&rt, &s, "G1", ResponseTemplate::new(404));
    rt.block_on(
        Mock::given(method("GET"))
            .and(path("/v1/messages/G2"))
            .respond_with(ResponseTemplate::new(429).insert_header("Retry-After", "1"))
            .up_to_n_times(1)
            .with_priority(1)
            .mount(&s),
    );
    on_status(&rt, &s, "G2", state("DELIVRD", None));
    on_status(
        &rt,
        &s,
        "G3",
        ResponseTemplate::new(401).set_body_string("bad token"),
    );
    let started = Instant::now();
    let (code, out, err) = sync(&f, &[]);
    assert_eq!(code, 3, "{out}{err}");
    assert!(started.elapsed() >= Duration::from_secs(1));
    assert_eq!(
        out,
        "test-campaign: asked 4: 1 delivered, 0 undelivered, 0 pending, 1 not found, 0 failed; \
         0 suppressed\nunknown SMS: 0 found sent, 0 retryable, 0 still unknown\n1 left for the \
         next run\nstopped: the gateway rejects the credentials (HTTP 401): bad token\n"
    );
    assert_eq!(asked(&rt, &s), counts(&[("G1", 1), ("G2", 2), ("G3", 1)]));
    // --limit bounds a run: the unknown id and the rejected one, one asked.
    let (code, out, _) = sync(&f, &["--limit", "1"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("asked 1: 0 delivered"), "{out}");
    assert!(out.contains("1 left for the next run"), "{out}");
}

#[test]
fn a_generic_gateway_without_status_url_points_to_listen() {
    let f = fixture(&generic("http://127.0.0.1:9", ""), crate::sms_gateway::FAST);
    let (code, out, err) = sync(&f, &[]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(
        out,
        "this generic gateway has no status lookup (sms.gateway.status_url): use outreach \
         listen for its receipts\n"
    );
}

#[test]
fn a_sync_killed_mid_run_loses_nothing_and_never_asks_twice_about_a_final_message() {
    let rt = runtime();
    let (s, f) = sent_three(&rt, crate::sms_gateway::FAST);
    // A slow gateway: each answer takes 400 ms.
    let slow = |st: &str| state(st, None).set_delay(Duration::from_millis(400));
    on_status(&rt, &s, "G1", slow("DELIVRD"));
    on_status(&rt, &s, "G2", slow("UNDELIV"));
    on_status(&rt, &s, "G3", slow("DELIVRD"));
    let receipts = |f: &Fixture| -> Vec<String> {
        f.ledger()
            .rows("SELECT provider_id FROM receipts ORDER BY provider_id")
            .into_iter()
            .flatten()
            .collect()
    };
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("outreach"))
        .current_dir(f.dir.path())
        .env("OUTREACH_NOW", crate::common::MIDDAY)
        .env(TOKEN_ENV, TOKEN)
        .env_remove("RUST_LOG")
        .args(["sync", "campaign.toml"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while receipts(&f).is_empty() {
        assert!(Instant::now() < deadline, "no answer was recorded");
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let before = receipts(&f);
    assert!(before.len() < 3, "the run finished before it was killed");
    // The rerun asks only about what was not recorded, and settles everything.
    let (code, out, err) = sync(&f, &[]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains(&format!("asked {}:", 3 - before.len())),
        "{out}"
    );
    assert_eq!(receipts(&f), ["G1", "G2", "G3"]);
    let per_id = asked(&rt, &s);
    for id in &before {
        assert_eq!(per_id[id], 1, "{id} was final and asked again: {per_id:?}");
    }
    // The one in flight at the kill may have been asked twice, never more.
    assert!(per_id.values().all(|n| *n <= 2), "{per_id:?}");
    let v: serde_json::Value =
        serde_json::from_str(&f.run(&["status", "campaign.toml", "--format", "json"]).1).unwrap();
    assert_eq!(v["feedback"]["delivered"], 2, "{v}");
    assert_eq!(v["feedback"]["undelivered"], 1, "{v}");
    // A third run changes nothing and asks nothing.
    let rows = ledger(&f);
    let (code, out, _) = sync(&f, &[]);
    assert_eq!(code, 0);
    assert!(out.contains("asked 0:"), "{out}");
    assert_eq!(ledger(&f), rows);
    assert_eq!(asked(&rt, &s), per_id);
}
