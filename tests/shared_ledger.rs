//! A ledger in PostgreSQL shared by hosts: two `send`s of a campaign from two state directories
//! (two hosts) split its messages, every patient messaged once; a run killed mid-run is found
//! dead by the other, which goes on, the dead one's messages in flight reported unknown; the
//! daily cap holds across runs; and a database that goes away mid-run stops the run with exit
//! 3, nobody messaged twice, the rerun resuming once it is back.

use std::time::{Duration, Instant};

use crate::common::{self, Fixture, HEADER};
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

/// `outreach send` of `f`'s campaign, started in the background (stdout and stderr piped),
/// with `env` set.
fn spawn_send(f: &Fixture, env: &[(&str, &str)]) -> std::process::Child {
    std::process::Command::new(assert_cmd::cargo::cargo_bin("outreach"))
        .current_dir(f.path(""))
        .env_remove("RUST_LOG")
        .envs(env.iter().copied())
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
fn two_runs_from_two_hosts_split_the_work_and_every_patient_gets_one() {
    let url = postgres_url();
    let (a, b) = (
        Fixture::sms_only(&contacts(30)),
        Fixture::sms_only(&contacts(30)),
    );
    campaign(&a, &url, "10/s");
    campaign(&b, &url, "10/s");
    let first = spawn_send(&a, &[]);
    wait_until("the first run's first message", || !sent_to(&a).is_empty());
    let second = spawn_send(&b, &[]);
    for (f, child) in [(&a, first), (&b, second)] {
        let out = child.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}: {err}",
            f.path("").display()
        );
    }
    let (from_a, from_b) = (sent_to(&a), sent_to(&b));
    assert!(
        !from_a.is_empty() && !from_b.is_empty(),
        "the work was not split: {} and {}",
        from_a.len(),
        from_b.len()
    );
    let mut all = [from_a, from_b].concat();
    all.sort();
    let total = all.len();
    all.dedup();
    assert_eq!((all.len(), total), (30, 30), "every patient exactly once");
    let (sent, unknown) = counts(&a);
    assert_eq!((sent, unknown), (30, 0));
}

#[test]
fn a_run_killed_mid_run_is_found_dead_by_the_other_which_goes_on() {
    let url = postgres_url();
    let (a, b) = (
        Fixture::sms_only(&contacts(40)),
        Fixture::sms_only(&contacts(40)),
    );
    campaign(&a, &url, "10/s");
    campaign(&b, &url, "10/s");
    let lease = [("OUTREACH_TEST_LEASE_SECONDS", "2")];
    let mut doomed = spawn_send(&a, &lease);
    wait_until("the first run's messages", || sent_to(&a).len() >= 4);
    let survivor = spawn_send(&b, &lease);
    wait_until("the second run's messages", || sent_to(&b).len() >= 2);
    doomed.kill().unwrap(); // SIGKILL
    doomed.wait().unwrap();
    let killed_at = Instant::now();
    let out = survivor.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(
        killed_at.elapsed() > Duration::from_secs(2),
        "the survivor finished too soon to have seen the other die"
    );
    // Every patient at most once; the dead run's messages in flight are unknown, never resent.
    let mut all = [sent_to(&a), sent_to(&b)].concat();
    all.sort();
    let total = all.len() as u64;
    all.dedup();
    assert_eq!(all.len() as u64, total, "a patient got two");
    let (sent, unknown) = counts(&b);
    assert_eq!(sent + unknown, 40);
    assert!(
        total >= sent && total - sent <= unknown,
        "lost {} {sent} {unknown}",
        total - sent
    );
    let runs = crate::postgres::cluster().psql(&url, "SELECT outcome FROM runs ORDER BY id");
    assert_eq!(
        runs.lines().collect::<Vec<_>>(),
        ["lost", "completed"],
        "{runs}"
    );
}

#[test]
fn a_run_that_stops_renewing_its_lease_is_found_lost_and_stops_when_it_wakes() {
    let url = postgres_url();
    let (a, b) = (
        Fixture::sms_only(&contacts(40)),
        Fixture::sms_only(&contacts(40)),
    );
    campaign(&a, &url, "10/s");
    campaign(&b, &url, "10/s");
    let lease = [("OUTREACH_TEST_LEASE_SECONDS", "2")];
    let stuck = spawn_send(&a, &lease);
    wait_until("the first run's messages", || sent_to(&a).len() >= 4);
    let survivor = spawn_send(&b, &lease);
    wait_until("the second run's messages", || sent_to(&b).len() >= 2);
    // Stopped, its connections open: only its lease can say it is gone.
    let signal = |sig: &str| {
        let pid = stuck.id().to_string();
        let ok = std::process::Command::new("kill")
            .args([sig, &pid])
            .status();
        assert!(ok.unwrap().success());
    };
    signal("-STOP");
    std::thread::sleep(Duration::from_secs(4));
    let runs = crate::postgres::cluster().psql(&url, "SELECT outcome FROM runs ORDER BY id");
    assert_eq!(runs.lines().next(), Some("lost"), "{runs}");
    signal("-CONT");
    let out = stuck.wait_with_output().unwrap();
    let said = String::from_utf8_lossy(&out.stdout) + String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{said}");
    assert!(said.contains("lease"), "{said}");
    let out = survivor.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    let mut all = [sent_to(&a), sent_to(&b)].concat();
    all.sort();
    let total = all.len() as u64;
    all.dedup();
    assert_eq!(all.len() as u64, total, "a patient got two");
    let (sent, unknown) = counts(&b);
    assert_eq!(sent + unknown, 40);
    assert!(
        total >= sent && total - sent <= unknown,
        "lost {} {sent} {unknown}",
        total - sent
    );
    let runs = crate::postgres::cluster().psql(&url, "SELECT outcome FROM runs ORDER BY id");
    assert_eq!(
        runs.lines().collect::<Vec<_>>(),
        ["lost", "completed"],
        "{runs}"
    );
}

#[test]
fn the_daily_cap_holds_across_two_runs() {
    let url = postgres_url();
    let (a, b) = (
        Fixture::sms_only(&contacts(30)),
        Fixture::sms_only(&contacts(30)),
    );
    for f in [&a, &b] {
        f.write(
            "campaign.toml",
            &common::campaign_toml_on(
                &["sms"],
                &format!("[sending]\nsms_rate = \"5/s\"\ndaily_cap = 10\nstate_url = {url:?}\n"),
            ),
        );
    }
    let (first, second) = (spawn_send(&a, &[]), spawn_send(&b, &[]));
    for child in [first, second] {
        let out = child.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{err}");
    }
    // Both ran at once (10 at 5/s take two seconds), and each alone would have sent 10.
    let (from_a, from_b) = (sent_to(&a), sent_to(&b));
    assert!(
        !from_a.is_empty() && !from_b.is_empty(),
        "{from_a:?} {from_b:?}"
    );
    let mut all = [from_a, from_b].concat();
    all.sort();
    all.dedup();
    assert_eq!(all.len(), 10, "{all:?}");
    assert_eq!(counts(&a), (10, 0));
}

#[test]
fn the_rate_is_the_campaigns_shared_by_its_runs() {
    let url = postgres_url();
    let (a, b) = (
        Fixture::sms_only(&contacts(20)),
        Fixture::sms_only(&contacts(20)),
    );
    campaign(&a, &url, "5/s");
    campaign(&b, &url, "5/s");
    let started = Instant::now();
    let (first, second) = (spawn_send(&a, &[]), spawn_send(&b, &[]));
    for child in [first, second] {
        let out = child.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{err}");
    }
    // 20 at 5 a second take 3.8 s whoever sends them; each run paced alone, about 2.
    let took = started.elapsed();
    assert!(took > Duration::from_millis(3600), "{took:?}");
    let (from_a, from_b) = (sent_to(&a), sent_to(&b));
    assert!(!from_a.is_empty() && !from_b.is_empty());
    assert_eq!(from_a.len() + from_b.len(), 20);
}

#[test]
fn purge_waits_for_the_campaigns_live_runs() {
    let url = postgres_url();
    let f = Fixture::sms_only(&contacts(20));
    campaign(&f, &url, "2/s");
    let mut child = spawn_send(&f, &[]);
    wait_until("the run's first message", || !sent_to(&f).is_empty());
    let (code, out, err) = f.run(&["purge", "campaign.toml", "--ledger", "--yes"]);
    assert_eq!(code, 4, "{out}{err}");
    assert!(err.contains("another run of campaign"), "{err}");
    // Killed, its connection gone: its lock and its lease go with it.
    child.kill().unwrap();
    child.wait().unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (code, out, err) = f.run(&["purge", "campaign.toml", "--ledger", "--yes"]);
        if code == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "{code} {out}{err}");
        std::thread::sleep(Duration::from_millis(100));
    }
    let runs = crate::postgres::cluster().psql(&url, "SELECT COUNT(*) FROM runs");
    assert_eq!(runs.trim(), "0");
}

/// What `status` counts of `f`'s campaign's SMS: sent, unknown.
fn counts(f: &Fixture) -> (u64, u64) {
    let (code, status, err) = f.run(&["status", "campaign.toml", "--format", "json"]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&status).unwrap();
    let sms = &v["counts"]["sms"];
    let n = |k: &str| sms[k].as_u64().unwrap_or(0);
    (n("sent"), n("unknown"))
}

#[test]
fn the_database_gone_mid_run_stops_it_with_exit_3_and_nobody_gets_two() {
    let cluster = private_cluster();
    let url = cluster.new_database("outage");
    let f = Fixture::sms_only(&contacts(30));
    campaign(&f, &url, "20/s");
    let child = spawn_send(&f, &[]);
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
