//! A ledger in PostgreSQL shared by hosts: a campaign's run holds its lock in the database, so a
//! second `send` from another state directory (another host) exits 4 and sends nothing; and a
//! database that goes away mid-run stops the run with exit 3, nobody messaged twice, the rerun
//! resuming once it is back.

use std::time::{Duration, Instant};

use crate::common::{self, Fixture, HEADER, Killed};
use crate::postgres::{postgres_url, private_cluster};

/// `n` patients reachable by SMS only.
fn contacts(n: usize) -> String {
    let mut csv = format!("{HEADER}\n");
    for i in 0..n {
        csv.push_str(&format!(
            "P{i},Pat,Num{i},,+1312555{:04},sms,,yes,\n",
            100 + i
        ));
    }
    csv
}

/// An SMS campaign paced at `rate`, its ledger in the database `url`.
fn campaign(f: &Fixture, url: &str, rate: &str) {
    f.write(
        "campaign.toml",
        &common::campaign_toml_on(
            &["sms"],
            &format!("[sending]\nsms_rate = {rate:?}\nstate_url = {url:?}\n"),
        ),
    );
}

/// `outreach send` of `f`'s campaign, started in the background (stdout and stderr piped).
fn spawn_send(f: &Fixture) -> std::process::Child {
    std::process::Command::new(assert_cmd::cargo::cargo_bin("outreach"))
        .current_dir(f.path(""))
        .env_remove("RUST_LOG")
        .env("OUTREACH_NOW", common::MIDDAY)
        .args(["send", "campaign.toml"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap()
}

/// The numbers the SMS outbox holds, one per line.
fn sent_to(f: &Fixture) -> Vec<String> {
    let text = std::fs::read_to_string(f.path("outbox/sms.jsonl")).unwrap_or_default();
    text.lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            v["to"].as_str().unwrap().to_string()
        })
        .collect()
}

fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !done() {
        assert!(Instant::now() < deadline, "waited 30 s for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_second_run_from_another_host_exits_4_and_sends_nothing() {
    let url = postgres_url();
    let (a, b) = (
        Fixture::sms_only(&contacts(8)),
        Fixture::sms_only(&contacts(8)),
    );
    campaign(&a, &url, "4/s");
    campaign(&b, &url, "4/s");
    let mut first = Killed(spawn_send(&a));
    wait_until("the first run's first message", || !sent_to(&a).is_empty());
    let (code, out, err) = b.run(&["send", "campaign.toml"]);
    assert_eq!(code, 4, "{out}{err}");
    assert!(
        err.contains("holds the campaign's lock in postgres://")
            && err.contains("perhaps from another host"),
        "{err}"
    );
    assert!(sent_to(&b).is_empty());
    let status = first.0.wait().unwrap();
    assert_eq!(status.code(), Some(0));
    let mut numbers = sent_to(&a);
    numbers.sort();
    numbers.dedup();
    assert_eq!(numbers.len(), 8);
    // Its lock went with its connection: the other host's run now finds nothing left to send.
    let (code, out, err) = b.run(&["send", "campaign.toml"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(sent_to(&b).is_empty(), "{out}");
}

#[test]
fn the_database_gone_mid_run_stops_it_with_exit_3_and_nobody_gets_two() {
    let cluster = private_cluster();
    let url = cluster.new_database("outage");
    let f = Fixture::sms_only(&contacts(30));
    campaign(&f, &url, "20/s");
    let child = spawn_send(&f);
    wait_until("a few messages", || sent_to(&f).len() >= 5);
    cluster.stop();
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(err.contains("ledger postgres://"), "{err}");
    let before = sent_to(&f).len();
    assert!(before < 30, "the run went on without its database");

    cluster.start_again();
    let (code, out, err) = f.run(&["send", "campaign.toml", "--format", "json"]);
    assert!(code == 0 || code == 1, "{out}{err}");
    let numbers = sent_to(&f);
    let mut once = numbers.clone();
    once.sort();
    once.dedup();
    assert_eq!(once.len(), numbers.len(), "a patient got two: {numbers:?}");
    // Every patient has one message, or is reported unknown (claimed, its outcome lost with the
    // database): what went and was not recorded is never more than what is unknown.
    let (code, status, err) = f.run(&["status", "campaign.toml", "--format", "json"]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&status).unwrap();
    let sms = &v["counts"]["sms"];
    let (sent, unknown) = (
        sms["sent"].as_u64().unwrap(),
        sms["unknown"].as_u64().unwrap(),
    );
    assert_eq!(sent + unknown, 30, "{v}");
    assert!(numbers.len() as u64 >= sent, "{v}");
    assert!(
        numbers.len() as u64 - sent <= unknown,
        "lost {} {v}",
        numbers.len()
    );
}
