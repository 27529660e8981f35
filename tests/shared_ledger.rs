//! A ledger in PostgreSQL shared by hosts: two `send`s of a campaign from two state directories
//! (two hosts) split its messages, every patient messaged once; a run killed mid-run is found
//! dead by the other, which goes on, the dead one's messages in flight reported unknown; the
//! daily cap holds across runs; and a database that goes away mid-run stops the run with exit
//! 3, nobody messaged twice, the rerun resuming once it is back; and a soak: three senders of
//! one email campaign over SMTP, each killed and restarted at random instants, every message
//! the SMTP server received read back from its Maildir and held against the ledger.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::common::{self, Fixture, HEADER, Ledger};
use crate::postgres::{postgres_url, private_cluster};
use crate::smtp::Server;

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
        Fixture::sms_only(&contacts(600)),
        Fixture::sms_only(&contacts(600)),
    );
    campaign(&a, &url, "200/s");
    campaign(&b, &url, "200/s");
    let info = [("RUST_LOG", "outreach=info")];
    let first = spawn_send(&a, &info);
    wait_until("the first run's first message", || !sent_to(&a).is_empty());
    let second = spawn_send(&b, &info);
    // Each run walks on into the messages the other took once its own share is done: the first
    // of those is refused by the ledger, the rest passed over without being made.
    let mut passed = 0;
    for (f, child) in [(&a, first), (&b, second)] {
        let out = child.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}: {err}",
            f.path("").display()
        );
        // The summary's row: sent, deferred, skipped, failed, unknown, already done.
        let summary = String::from_utf8_lossy(&out.stdout);
        let row: Vec<u64> = summary
            .lines()
            .find(|l| l.starts_with("sms "))
            .unwrap_or_else(|| panic!("no sms row: {summary}"))
            .split_whitespace()
            .skip(1)
            .map(|n| n.parse().unwrap())
            .collect();
        let (sent, skipped, already) = (row[0], row[2], row[5]);
        assert_eq!(
            sent + skipped + already,
            600,
            "the run went through the list: {summary}"
        );
        if skipped > 0 {
            assert!(
                summary.contains(&format!("Skipped sms: already sent {skipped}\n")),
                "{summary}"
            );
        }
        passed += err
            .lines()
            .filter(|l| l.contains("passed over messages another run"))
            .map(|l| {
                l.split("passed=")
                    .nth(1)
                    .unwrap()
                    .split_whitespace()
                    .next()
                    .unwrap()
            })
            .map(|n| n.parse::<u64>().unwrap())
            .sum::<u64>();
    }
    assert!(passed > 0, "nothing was passed over");
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
    assert_eq!((all.len(), total), (600, 600), "every patient exactly once");
    let (sent, unknown) = counts(&a);
    assert_eq!((sent, unknown), (600, 0));
}

/// Two runs of one campaign (40 patients by SMS at 10/s, leases of 2 s) from two state
/// directories, `a` and `b`, one database at `url`: the first started, then the second once
/// the first has sent four; both under way (the second has sent two) when it returns.
struct TwoRuns {
    url: String,
    a: Fixture,
    b: Fixture,
    first: std::process::Child,
    second: std::process::Child,
}

fn two_runs() -> TwoRuns {
    let url = postgres_url();
    let (a, b) = (
        Fixture::sms_only(&contacts(40)),
        Fixture::sms_only(&contacts(40)),
    );
    campaign(&a, &url, "10/s");
    campaign(&b, &url, "10/s");
    let lease = [("OUTREACH_TEST_LEASE_SECONDS", "2")];
    let first = spawn_send(&a, &lease);
    wait_until("the first run's messages", || sent_to(&a).len() >= 4);
    let second = spawn_send(&b, &lease);
    wait_until("the second run's messages", || sent_to(&b).len() >= 2);
    TwoRuns {
        url,
        a,
        b,
        first,
        second,
    }
}

#[test]
fn a_run_killed_mid_run_is_found_dead_by_the_other_which_goes_on() {
    let TwoRuns {
        url,
        a,
        b,
        first: mut doomed,
        second: survivor,
    } = two_runs();
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
    the_lost_run_left_nobody_twice(&a, &b, &url, 40);
}

#[test]
fn a_run_that_stops_renewing_its_lease_is_found_lost_and_stops_when_it_wakes() {
    let TwoRuns {
        url,
        a,
        b,
        first: stuck,
        second: survivor,
    } = two_runs();
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
    the_lost_run_left_nobody_twice(&a, &b, &url, 40);
}

/// After a run of `a` was found lost and `b`'s ran to its end (`n` patients, by SMS, one
/// database at `url`): every patient messaged at most once across both outboxes, every row
/// `sent` or `unknown`, no more messages missing than `unknown` rows, and the runs `lost` then
/// `completed`.
fn the_lost_run_left_nobody_twice(a: &Fixture, b: &Fixture, url: &str, n: u64) {
    let mut all = [sent_to(a), sent_to(b)].concat();
    all.sort();
    let total = all.len() as u64;
    all.dedup();
    assert_eq!(all.len() as u64, total, "a patient got two");
    let (sent, unknown) = counts(b);
    assert_eq!(sent + unknown, n);
    assert!(
        total >= sent && total - sent <= unknown,
        "lost {} {sent} {unknown}",
        total - sent
    );
    let runs = crate::postgres::cluster().psql(url, "SELECT outcome FROM runs ORDER BY id");
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

/// `n` patients reachable by email only: `pat{i}@example.com`.
fn email_contacts(n: usize) -> String {
    let mut csv = format!("{HEADER}\n");
    for i in 0..n {
        csv.push_str(&format!(
            "P{i},Pat,Num{i},pat{i}@example.com,,email,yes,,\n"
        ));
    }
    csv
}

/// The soak's seed: `OUTREACH_TEST_SOAK_SEED` to repeat a run's schedule of kills, else the
/// clock's.
fn soak_seed() -> u64 {
    std::env::var("OUTREACH_TEST_SOAK_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
            t.unwrap().as_nanos() as u64
        })
}

/// SplitMix64: the soak's kill instants, repeatable from a seed (no crate for 8 lines).
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A whole number in `lo..=hi`.
    fn between(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo + 1)
    }
}

/// How many messages the Maildir at `dir` holds for each recipient, by each message's `To`
/// header (the address in its angle brackets, lower-cased).
fn maildir_per_recipient(dir: &Path) -> BTreeMap<String, usize> {
    let mut per = BTreeMap::new();
    for entry in std::fs::read_dir(dir.join("new")).unwrap() {
        let path = entry.unwrap().path();
        let raw = std::fs::read(&path).unwrap();
        let text = String::from_utf8_lossy(&raw);
        let head = text.split("\r\n\r\n").next().unwrap_or_default();
        let to = head
            .split("\r\n")
            .find_map(|l| {
                let (name, value) = l.split_once(':')?;
                name.eq_ignore_ascii_case("to").then_some(value)
            })
            .unwrap_or_else(|| panic!("{}: no To header", path.display()));
        let address = match (to.rfind('<'), to.rfind('>')) {
            (Some(a), Some(b)) if a < b => &to[a + 1..b],
            _ => to.trim(),
        };
        *per.entry(address.to_ascii_lowercase()).or_default() += 1;
    }
    per
}

/// The quality bar "never twice across hosts", at the suite's size: three `send`s of one email
/// campaign (three state directories: three hosts) with the ledger in PostgreSQL, over SMTP to
/// aiosmtpd storing every message it receives in a Maildir. Each is SIGKILLed at random
/// instants and restarted, ten times each (30 kills in all), then run to the end;
/// then one more run to the end. The Maildir is read back and held against the ledger: every
/// recipient `sent` has exactly one message, every `unknown` one at most, nobody more than one,
/// no row is left `sending`; the recipients with no message (each must be `unknown`: a claim
/// whose message never went) are no more than the `unknown` rows, and neither are the messages
/// that arrived for a recipient not recorded `sent`. Every killed run is finished in `runs`,
/// `lost` (or `completed`, killed after it ended), every other `completed`.
///
/// Why 30 kills at 0-1.5 s: a debug build's `send` takes a few hundred ms to begin its run on a
/// busy machine, so some kills land before it (they test its start: the schema, the recovery)
/// and most mid-run (13 of 24 to 27 of 30 in trials; at least a third is required, or the
/// test proves little), each sender's runs killed while claiming and sending; the campaign's 600 messages are paced at 60 a
/// second for the three (the rate is the campaign's, shared by its runs) so that the kills span
/// the campaign instead of racing its end: 15-20 s on 2 cores. The full size (3 senders,
/// 20,000 contacts, 60 kills, no rate) is bench/soak-postgres.sh. The kill instants come from a
/// seed, printed, and repeated with `OUTREACH_TEST_SOAK_SEED=N` (the instants, not the
/// scheduler's interleaving).
#[test]
fn three_senders_killed_at_random_instants_nobody_gets_two() {
    const SENDERS: usize = 3;
    const KILLS_PER_SENDER: usize = 10;
    const CONTACTS: usize = 600;
    let seed = soak_seed();
    eprintln!("soak seed {seed} (OUTREACH_TEST_SOAK_SEED={seed} repeats its kill instants)");
    let url = postgres_url();
    let hosts: Vec<Fixture> = (0..SENDERS)
        .map(|_| Fixture::email_only(&email_contacts(CONTACTS)))
        .collect();
    let server = Server::smtpd(&hosts[0], &[]);
    for f in &hosts {
        f.write(
            "campaign.toml",
            &common::campaign_toml_on(
                &["email"],
                &format!(
                    "[email.smtp]\nhost = \"127.0.0.1\"\nport = {}\ntls = \"none\"\n\
                     [sending]\nemail_rate = \"60/s\"\nretry_delay = \"10ms\"\n\
                     state_url = {url:?}\n",
                    server.port
                ),
            ),
        );
    }
    let send = |f: &Fixture| {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(f.path("stderr.log"))
            .unwrap();
        std::process::Command::new(assert_cmd::cargo::cargo_bin("outreach"))
            .current_dir(f.path(""))
            .env_remove("RUST_LOG")
            .env("OUTREACH_NOW", common::MIDDAY)
            .args(["send", "campaign.toml", "--set", "email.transport=smtp"])
            .args(["--format", "json"])
            .stdout(std::process::Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap()
    };
    // Each sender: killed KILLS_PER_SENDER times, then run to its end. (pid, killed) per run.
    let started = Instant::now();
    let runs: Vec<Vec<(u32, bool)>> = std::thread::scope(|s| {
        let senders: Vec<_> = hosts
            .iter()
            .enumerate()
            .map(|(i, f)| {
                let mut rng = SplitMix(seed.wrapping_add(i as u64));
                s.spawn(move || {
                    let mut runs = Vec::new();
                    let mut kills = 0;
                    while kills < KILLS_PER_SENDER {
                        let mut child = send(f);
                        std::thread::sleep(Duration::from_millis(rng.between(0, 1500)));
                        let pid = child.id();
                        match child.try_wait().unwrap() {
                            None => {
                                child.kill().unwrap(); // SIGKILL
                                child.wait().unwrap();
                                kills += 1;
                                runs.push((pid, true));
                            }
                            // It ended before the kill came: it must have ended well.
                            Some(status) => {
                                assert!(status.success(), "seed {seed}: sender {i}: {status}");
                                runs.push((pid, false));
                            }
                        }
                    }
                    let last = send(f);
                    let pid = last.id();
                    let out = last.wait_with_output().unwrap();
                    assert_eq!(
                        out.status.code(),
                        Some(0),
                        "seed {seed}: sender {i}'s last run: {}",
                        std::fs::read_to_string(f.path("stderr.log")).unwrap()
                    );
                    runs.push((pid, false));
                    runs
                })
            })
            .collect();
        senders.into_iter().map(|t| t.join().unwrap()).collect()
    });
    let kills: usize = runs.iter().flatten().filter(|(_, k)| *k).count();
    // One more run: recovers what the last killed runs left in flight; nothing is left to send.
    let (code, out, err) = hosts[0].run(&[
        "send",
        "campaign.toml",
        "--set",
        "email.transport=smtp",
        "--format",
        "json",
    ]);
    assert_eq!(code, 0, "seed {seed}: {out}{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["channels"][0]["sent"], 0, "seed {seed}: {v}");
    let took = started.elapsed();

    let received = maildir_per_recipient(&hosts[0].path("maildir"));
    let ledger = Ledger::Postgres(url.clone());
    let rows: BTreeMap<String, String> = ledger
        .rows("SELECT address, state FROM messages WHERE channel = 'email'")
        .into_iter()
        .map(|r| (r[0].clone(), r[1].clone()))
        .collect();
    assert_eq!(rows.len(), CONTACTS, "seed {seed}: every patient has a row");
    let (mut sent, mut unknown, mut undelivered, mut unrecorded) = (0, 0, 0, 0);
    for (address, state) in &rows {
        let n = received.get(address).copied().unwrap_or(0);
        match state.as_str() {
            "sent" => {
                sent += 1;
                assert_eq!(n, 1, "seed {seed}: {address} is sent and has {n} messages");
            }
            "unknown" => {
                unknown += 1;
                assert!(
                    n <= 1,
                    "seed {seed}: {address} is unknown and has {n} messages"
                );
                undelivered += usize::from(n == 0);
                unrecorded += n;
            }
            other => panic!("seed {seed}: {address} is {other:?} after the last run"),
        }
    }
    for (address, n) in &received {
        assert!(
            rows.contains_key(address),
            "seed {seed}: a message to {address}, no row"
        );
        assert_eq!(*n, 1, "seed {seed}: {address} got {n} messages");
    }
    let messages: usize = received.values().sum();
    assert_eq!(messages, sent + unrecorded, "seed {seed}");
    // Lost: a recipient whose claim was made and whose message never arrived. Each is unknown,
    // never sent; and neither they nor the messages that went unrecorded outnumber the unknown.
    assert!(
        undelivered <= unknown && unrecorded <= unknown,
        "seed {seed}"
    );

    // Every run is finished: each killed one lost (or completed, killed after it ended), every
    // other completed.
    let outcomes: BTreeMap<u32, String> = ledger
        .query("SELECT pid, outcome FROM runs")
        .into_iter()
        .map(|r| {
            let pid = r[0].as_deref().unwrap().parse().unwrap();
            (pid, r[1].clone().unwrap_or_else(|| "(unfinished)".into()))
        })
        .collect();
    let mut lost = 0;
    for &(pid, killed) in runs.iter().flatten() {
        match (outcomes.get(&pid).map(String::as_str), killed) {
            // Killed before it began its run, or after it ended: no row, or a completed one.
            (None | Some("completed"), true) => {}
            (Some("lost"), true) => lost += 1,
            (Some("completed"), false) => {}
            (other, _) => panic!("seed {seed}: run of pid {pid} (killed: {killed}): {other:?}"),
        }
    }
    eprintln!(
        "soak: {kills} kills, {lost} of them mid-run, {messages} messages, {sent} sent, \
         {unknown} unknown ({undelivered} never arrived), {took:?}"
    );
    assert!(
        lost >= kills / 3,
        "seed {seed}: only {lost} of {kills} kills hit a run that had begun"
    );
}
