//! `outreach send` with the file transports, end to end: the outbox and the ledger (SQLite, or
//! PostgreSQL in the PostgreSQL pass: `common::store`) are read back after every run. Nobody is
//! messaged twice, whatever happens to the process.

use crate::common;

use std::collections::BTreeMap;
use std::time::Duration;

use crate::common::{Fixture, HEADER, MIDDAY, NIGHT, run};

const FAST: &str = "[sending]\nemail_rate = \"0\"\nsms_rate = \"0\"\nretry_delay = \"10ms\"\n";

/// A fixture with unlimited rates and `n` contacts on both channels (every 7th only email,
/// every 11th without SMS consent).
fn many(n: usize) -> Fixture {
    let mut csv = String::from(HEADER);
    csv.push('\n');
    for i in 0..n {
        let channel = if i % 7 == 0 { "email" } else { "" };
        let sms_consent = if i % 11 == 0 { "no" } else { "yes" };
        // Unique valid US numbers (exchange 2xx-9xx of a real area code).
        csv.push_str(&format!(
            "P{i:05},Pat{i},Lee,pat{i}@example.com,(312) {}-{:04},{channel},yes,{sms_consent},\n",
            200 + i / 10000,
            i % 10000
        ));
    }
    let f = Fixture::new(&csv);
    f.write("campaign.toml", &common::campaign_toml(FAST));
    f
}

fn fast(csv: &str) -> Fixture {
    let f = Fixture::new(csv);
    f.write("campaign.toml", &common::campaign_toml(FAST));
    f
}

/// [`fast`] with email only enabled: for contacts with no phone numbers.
fn fast_email(csv: &str) -> Fixture {
    let f = Fixture::new(csv);
    f.write("campaign.toml", &common::campaign_toml_on(&["email"], FAST));
    f
}

/// [`fast`] with SMS only enabled: for contacts with no email addresses.
fn fast_sms(csv: &str) -> Fixture {
    let f = Fixture::new(csv);
    f.write("campaign.toml", &common::campaign_toml_on(&["sms"], FAST));
    f
}

/// Recipients in the outbox: address → number of messages.
fn outbox(f: &Fixture) -> (BTreeMap<String, usize>, BTreeMap<String, usize>) {
    let mut email = BTreeMap::new();
    if let Ok(dir) = std::fs::read_dir(f.path("outbox/email")) {
        for entry in dir {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "eml") {
                let text = std::fs::read_to_string(&path).unwrap();
                let to = text
                    .lines()
                    .find_map(|l| l.strip_prefix("To: "))
                    .expect("a To header");
                let addr = to
                    .rsplit('<')
                    .next()
                    .unwrap()
                    .trim_end_matches('>')
                    .to_lowercase();
                *email.entry(addr).or_default() += 1;
            }
        }
    }
    let mut sms = BTreeMap::new();
    if let Ok(text) = std::fs::read_to_string(f.path("outbox/sms.jsonl")) {
        for line in text.lines() {
            let v: serde_json::Value = serde_json::from_str(line).expect("whole JSON lines");
            *sms.entry(v["to"].as_str().unwrap().to_string())
                .or_default() += 1;
        }
    }
    (email, sms)
}

/// The ledger's rows: (channel, address) → state.
fn ledger(f: &Fixture) -> BTreeMap<(String, String), String> {
    f.ledger()
        .rows("SELECT channel, address, state FROM messages")
        .into_iter()
        .map(|r| {
            let [channel, address, state] = <[String; 3]>::try_from(r).unwrap();
            ((channel, address), state)
        })
        .collect()
}

fn json(out: &str) -> serde_json::Value {
    serde_json::from_str(out).unwrap_or_else(|e| panic!("{e}: {out}"))
}

/// Masks the run's duration in a summary.
fn mask_seconds(s: &str) -> String {
    s.lines()
        .map(|l| match l.rfind(": ") {
            Some(i) if l.starts_with("Campaign ") && l.ends_with('s') => {
                format!("{}: <s>", &l[..i])
            }
            _ => l.to_string(),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn shipped_campaign_cron_summary_is_exact_and_a_rerun_sends_nothing() {
    let dir = tempfile::tempdir().unwrap();
    // On PostgreSQL, a database of the test's own for the ledger.
    let state = common::state_args();
    // The shipped campaign, with its state and outbox in a temporary directory.
    let args = |extra: &[&str]| {
        let mut c = common::outreach();
        c.current_dir(common::repo())
            .env("OUTREACH_NOW", NIGHT)
            .args(["send", "campaigns/psoas.toml"])
            .arg("--set")
            .arg(format!(
                "sending.state_dir={}",
                dir.path().join("state").display()
            ))
            .arg("--set")
            .arg(format!(
                "email.outbox={}",
                dir.path().join("outbox/email").display()
            ))
            .arg("--set")
            .arg(format!(
                "sms.outbox={}",
                dir.path().join("outbox/sms.jsonl").display()
            ))
            .args(["--set", "sending.email_rate=0"])
            .args(&state)
            // A fresh state directory on purpose: the test's own.
            .arg("--new-ledger")
            .args(extra);
        c
    };
    // The shipped campaign requires approval: nothing goes before an admin approves it.
    let (code, out, err) = run(args(&[]));
    assert_eq!(code, 2, "{out}{err}");
    assert!(err.contains("is not approved"), "{err}");
    assert!(!dir.path().join("outbox").exists());
    let mut approve = common::outreach();
    approve
        .current_dir(common::repo())
        .env("OUTREACH_NOW", NIGHT)
        .args(["approve", "campaigns/psoas.toml", "--by", "admin", "-q"])
        .arg("--set")
        .arg(format!(
            "sending.state_dir={}",
            dir.path().join("state").display()
        ))
        .args(&state);
    assert_eq!(run(approve).0, 0);

    let (code, out, err) = run(args(&[]));
    assert_eq!((code, err.as_str()), (0, ""));
    let report = dir.path().join("state/reports/psoas-2026-11-run1.csv");
    assert_eq!(
        mask_seconds(&out),
        format!(
            "Campaign psoas-2026-11, run 1: <s>
              sent  deferred  skipped  failed  unknown  already done
email           27         0        9       0        0             0
sms              0        21       15       0        0             0
Skipped email: not chosen 3, invalid address 1, no address 1, duplicate 1, no consent 2, suppressed 1
Skipped sms: not chosen 4, invalid address 1, no address 1, duplicate 1, no consent 7, suppressed 1
Deferred sms to a later run: quiet hours 21
Report: {}
",
            report.display()
        )
        .trim_end()
    );
    assert_eq!(
        std::fs::read_dir(dir.path().join("outbox/email"))
            .unwrap()
            .count(),
        27
    );

    // The night is over: the deferred SMS go, nothing else.
    let mut c = args(&["--set", "sms.sms_rate=0"]);
    c.env("OUTREACH_NOW", MIDDAY);
    let (code, out, _) = run(c);
    assert_eq!(code, 2, "a mistyped key is refused: {out}");
    let mut c = args(&["--set", "sending.sms_rate=0", "--format", "json"]);
    c.env("OUTREACH_NOW", MIDDAY);
    let (code, out, _) = run(c);
    assert_eq!(code, 0);
    let v = json(&out);
    assert_eq!(v["channels"][0]["sent"], 0);
    assert_eq!(v["channels"][0]["already"]["sent"], 27);
    assert_eq!(v["channels"][1]["sent"], 21);

    // And again: nothing new at all.
    let mut c = args(&["--set", "sending.sms_rate=0", "--format", "json"]);
    c.env("OUTREACH_NOW", MIDDAY);
    let (code, out, _) = run(c);
    assert_eq!(code, 0);
    let v = json(&out);
    assert_eq!(v["channels"][0]["sent"], 0);
    assert_eq!(v["channels"][1]["sent"], 0);
    assert_eq!(
        std::fs::read_dir(dir.path().join("outbox/email"))
            .unwrap()
            .count(),
        27
    );
    let sms = std::fs::read_to_string(dir.path().join("outbox/sms.jsonl")).unwrap();
    assert_eq!(sms.lines().count(), 21);
}

#[test]
fn check_preview_and_dry_run_show_what_the_ledger_settled() {
    let f = fast_email(&format!(
        "{HEADER}\nP1,Ann,Lee,ann@example.com,,email,yes,,\nP2,Bo,Ng,bo@example.com,,email,yes,,\nP3,Cy,Ox,cy@example.com,,email,yes,,\n"
    ));
    let mut c = f.cmd(&["send", "campaign.toml", "-q", "--channel", "email"]);
    c.env("OUTREACH_FILE_FAULTS", "P2=permanent,P3=unknown");
    assert_eq!(run(c).0, 1);
    let (_, out, _) = f.run(&["check", "campaign.toml", "--format", "json"]);
    let v = json(&out);
    assert_eq!(v["channels"][0]["due"], 0);
    assert_eq!(
        v["channels"][0]["done"],
        serde_json::json!({"sent": 1, "failed": 1, "unknown": 1})
    );
    let (_, out, _) = f.run(&["check", "campaign.toml"]);
    assert!(
        out.contains("done by earlier runs         3\n  sent                       1\n"),
        "{out}"
    );
    let (_, out, _) = f.run(&["preview", "campaign.toml", "--contact", "P1"]);
    assert!(
        out.contains("=== email to ann@example.com: sent by an earlier run ==="),
        "{out}"
    );
    let (_, out, _) = f.run(&["preview", "campaign.toml", "--contact", "P3"]);
    assert!(
        out.contains(
            "unknown: an earlier run died while sending it (--resend-unknown sends it again)"
        ),
        "{out}"
    );
    let (_, out, _) = f.run(&["send", "campaign.toml", "--dry-run", "--format", "json"]);
    let v = json(&out);
    assert_eq!(v["channels"][0]["sent"], 0);
    assert_eq!(
        v["channels"][0]["already"],
        serde_json::json!({"sent": 1, "failed": 1, "unknown": 1})
    );
    let (_, out, _) = f.run(&[
        "send",
        "campaign.toml",
        "--dry-run",
        "--resend-unknown",
        "--format",
        "json",
    ]);
    assert_eq!(json(&out)["channels"][0]["sent"], 1);
}

#[test]
fn sms_lines_carry_what_gateways_need() {
    let f = fast_sms(&format!("{HEADER}\nP1,Ann,Lee,,(312) 555-0101,sms,,yes,\n"));
    let (code, _, err) = f.run(&["send", "campaign.toml", "-q"]);
    assert_eq!(code, 0, "{err}");
    let line: serde_json::Value = json(f.read("outbox/sms.jsonl").lines().next().unwrap());
    assert_eq!(line["to"], "+13125550101");
    assert_eq!(line["from"], "+13125550100");
    assert_eq!(line["encoding"], "GSM-7");
    assert_eq!(line["segments"], 2);
    assert_eq!(line["campaign"], "test-campaign");
    assert_eq!(line["contact"], "P1");
    assert!(
        line["body"]
            .as_str()
            .unwrap()
            .starts_with("Riverside Physio: Hi Ann, ")
    );
}

#[test]
fn eml_in_the_outbox_is_the_message_preview_shows() {
    let f = fast_email(&format!(
        "{HEADER}\nP1,Ann,Lee,ann@example.com,,email,yes,,\n"
    ));
    let (code, _, _) = f.run(&["send", "campaign.toml", "-q"]);
    assert_eq!(code, 0);
    let dir: Vec<_> = std::fs::read_dir(f.path("outbox/email")).unwrap().collect();
    assert_eq!(dir.len(), 1);
    let eml = std::fs::read(dir[0].as_ref().unwrap().path()).unwrap();
    let text = String::from_utf8(eml.clone()).unwrap();
    assert!(
        text.contains("\r\nTo: \"Ann Lee\" <ann@example.com>\r\n"),
        "{text}"
    );
    assert!(text.contains("\r\nList-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n"));
    assert!(
        !eml.windows(2).any(|w| w[1] == b'\n' && w[0] != b'\r'),
        "CRLF only"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&dir[0].as_ref().unwrap().path()), 0o600);
        assert_eq!(mode(&f.path("outbox/email")), 0o700);
        assert_eq!(mode(&f.path(".outreach")), 0o700);
        if f.ledger().is_sqlite() {
            assert_eq!(mode(&f.path(".outreach/ledger.sqlite")), 0o600);
        }
    }
}

#[test]
fn killed_at_any_instant_nobody_gets_two() {
    let f = many(400);
    let bin = assert_cmd::cargo::cargo_bin("outreach");
    let mut kills = 0;
    // Kill -9 at many different moments, resuming each time.
    for delay_ms in [0u64, 5, 15, 30, 50, 80, 120, 170, 230, 300, 400, 550] {
        let mut child = std::process::Command::new(&bin)
            .current_dir(f.dir.path())
            .env("OUTREACH_NOW", MIDDAY)
            .args(["send", "campaign.toml", "-q"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(delay_ms));
        if child.try_wait().unwrap().is_none() {
            kills += 1;
        }
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
    }
    assert!(kills >= 4, "the runs finished before any kill: {kills}");
    // A last run to completion.
    let (code, out, err) = f.run(&["send", "campaign.toml", "--format", "json"]);
    assert!(code == 0, "{code} {err}");
    let v = json(&out);
    assert_eq!(
        v["channels"][0]["sent"].as_u64().unwrap() + v["channels"][0]["already"].values_sum(),
        400
    );

    let (email, sms) = outbox(&f);
    // Every file is a whole message, and no kill left a temporary file behind.
    for entry in std::fs::read_dir(f.path("outbox/email")).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        assert!(
            name.ends_with(".eml") && !name.starts_with('.'),
            "left behind: {name}"
        );
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.ends_with("--\r\n"), "{name} is not whole");
    }
    let rows = ledger(&f);
    let mut unknown = 0;
    for i in 0..400 {
        let addr = format!("pat{i}@example.com");
        let state = rows
            .get(&("email".to_string(), addr.clone()))
            .map(String::as_str);
        let n = email.get(&addr).copied().unwrap_or(0);
        match state {
            Some("sent") => assert_eq!(n, 1, "{addr}: {n} messages"),
            Some("unknown") => {
                unknown += 1;
                assert!(n <= 1, "{addr}: {n} messages");
            }
            other => panic!("{addr}: ledger state {other:?}"),
        }
    }
    for (addr, n) in &sms {
        assert!(*n <= 1, "{addr}: {n} SMS");
        let state = &rows[&("sms".to_string(), addr.clone())];
        if state == "sent" {
            assert_eq!(*n, 1);
        }
    }
    for ((channel, addr), state) in &rows {
        if channel == "sms" && state == "sent" {
            assert_eq!(
                sms.get(addr),
                Some(&1),
                "{addr} is sent in the ledger but not in the outbox"
            );
        }
    }
    assert!(
        rows.values().all(|s| s != "sending"),
        "no row is left in flight"
    );
    // Unknown ones go again only when asked, and then each at most once more.
    let (code, out, _) = f.run(&[
        "send",
        "campaign.toml",
        "--resend-unknown",
        "--format",
        "json",
    ]);
    assert_eq!(code, 0, "{out}");
    let (email_after, _) = outbox(&f);
    for (addr, n) in &email_after {
        assert!(*n <= 2, "{addr}: {n}");
    }
    // Only messages in flight at a kill can be unknown: at most the pipeline's depth per channel.
    assert!(
        unknown <= kills * 128,
        "{unknown} unknown after {kills} kills"
    );
}

trait ValuesSum {
    fn values_sum(&self) -> u64;
}

impl ValuesSum for serde_json::Value {
    fn values_sum(&self) -> u64 {
        self.as_object()
            .map(|m| m.values().filter_map(|v| v.as_u64()).sum())
            .unwrap_or(0)
    }
}

/// SQLite only: exit 4 and the run lock are SQLite's (on PostgreSQL runs share the work).
#[test]
fn a_second_run_exits_4_naming_the_holder() {
    common::sqlite_only("exit 4: another run holds the lock");
    let f = fast_sms(&format!(
        "{HEADER}\nP1,Ann,Lee,,(312) 555-0101,sms,,yes,\nP2,Bo,Ng,,(312) 555-0102,sms,,yes,\nP3,Cy,Ox,,(312) 555-0103,sms,,yes,\n"
    ));
    let bin = assert_cmd::cargo::cargo_bin("outreach");
    // One SMS every 2 s: the first run holds the lock for a while.
    let mut first = std::process::Command::new(&bin)
        .current_dir(f.dir.path())
        .env("OUTREACH_NOW", MIDDAY)
        .args([
            "send",
            "campaign.toml",
            "-q",
            "--set",
            "sending.sms_rate=30/min",
        ])
        .spawn()
        .unwrap();
    // Wait until it holds the lock (the lock file names its holder), however slow the machine.
    let holder = format!("pid {}", first.id());
    let lock = f.path(".outreach/test-campaign.lock");
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !std::fs::read_to_string(&lock).is_ok_and(|s| s.starts_with(&holder)) {
        assert!(
            std::time::Instant::now() < deadline,
            "the first run never took the lock"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let (code, out, err) = f.run(&["send", "campaign.toml"]);
    first.kill().unwrap();
    first.wait().unwrap();
    assert_eq!((code, out.as_str()), (4, ""), "{err}");
    assert!(
        err.starts_with(&format!(
            "error: another run of campaign test-campaign is in progress (pid {}, started ",
            first.id()
        )),
        "{err}"
    );
    assert!(err.contains("test-campaign.lock"), "{err}");
    // The holder died: the lock is free again.
    let (code, _, err) = f.run(&["send", "campaign.toml", "-q"]);
    assert_eq!(code, 0, "{err}");
}

#[test]
fn an_address_suppressed_during_a_run_is_not_sent_to() {
    // Another process adds a suppression while the run goes (an opt-out another campaign's run
    // learned, `outreach unsubscribe`): the claim, not only the plan, honours it.
    let mut csv = format!("{HEADER}\n");
    for i in 1..=10 {
        csv.push_str(&format!("P{i},Pat,Lee,,(312) 555-01{i:02},sms,,yes,\n"));
    }
    let f = fast_sms(&csv);
    let child = std::process::Command::new(assert_cmd::cargo::cargo_bin("outreach"))
        .current_dir(f.dir.path())
        .env("OUTREACH_NOW", MIDDAY)
        // 2 a second, evenly spaced: the last message's turn comes 4.5 s in, time enough for
        // this test to add the suppression however busy the machine.
        .args(["send", "campaign.toml", "--set", "sending.sms_rate=2/s"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while std::fs::read_to_string(f.path("outbox/sms.jsonl")).map_or(0, |t| t.lines().count()) < 1 {
        assert!(std::time::Instant::now() < deadline, "nothing was sent");
        std::thread::sleep(Duration::from_millis(20));
    }
    f.ledger().execute(
        "INSERT INTO suppressions (address, reason, source, added_at)
         VALUES ('+13125550110', 'opted out', 'another campaign', '2026-11-25T18:00:00Z')",
    );
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("suppressed 1"), "{stdout}");
    let (_, sms) = outbox(&f);
    assert_eq!(sms.len(), 9);
    assert!(!sms.contains_key("+13125550110"));
    assert!(!ledger(&f).contains_key(&("sms".to_string(), "+13125550110".to_string())));
}

#[test]
fn sigterm_stops_cleanly_and_a_rerun_resumes() {
    let mut csv = format!("{HEADER}\n");
    for i in 0..20 {
        csv.push_str(&format!("P{i},Pat,Lee,,(312) 555-01{i:02},sms,,yes,\n"));
    }
    let f = fast_sms(&csv);
    let bin = assert_cmd::cargo::cargo_bin("outreach");
    let child = std::process::Command::new(&bin)
        .current_dir(f.dir.path())
        .env("OUTREACH_NOW", MIDDAY)
        .args(["send", "campaign.toml", "--set", "sending.sms_rate=5/s"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Stop it once a few have gone, however slow the machine.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while std::fs::read_to_string(f.path("outbox/sms.jsonl")).map_or(0, |t| t.lines().count()) < 2 {
        assert!(std::time::Instant::now() < deadline, "nothing was sent");
        std::thread::sleep(Duration::from_millis(20));
    }
    let status = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(3), "{stdout}");
    assert!(
        stdout.contains("Stopped early: interrupted by a signal"),
        "{stdout}"
    );
    assert!(stdout.contains("Not attempted sms: "), "{stdout}");
    let rows = ledger(&f);
    assert!(
        rows.values().all(|s| s == "sent"),
        "in-flight messages finished and were recorded: {rows:?}"
    );
    let sent_first = rows.len();
    assert!((2..20).contains(&sent_first), "{sent_first}");
    let (_, sms) = outbox(&f);
    assert_eq!(sms.len(), sent_first);

    let (code, out, _) = f.run(&["send", "campaign.toml", "--format", "json"]);
    assert_eq!(code, 0);
    assert_eq!(
        json(&out)["channels"][0]["sent"].as_u64().unwrap() as usize,
        20 - sent_first
    );
    let (_, sms) = outbox(&f);
    assert_eq!(sms.len(), 20);
    assert!(sms.values().all(|n| *n == 1));
}

#[test]
fn quiet_hours_defer_to_the_next_run() {
    let f = fast_sms(&format!(
        "{HEADER}\nP1,Ann,Lee,,(312) 555-0101,sms,,yes,America/Chicago\nP2,Bo,Ng,,(312) 555-0102,sms,,yes,Pacific/Honolulu\n"
    ));
    // 04:30 UTC: 22:30 in Chicago (quiet), 18:30 in Honolulu.
    let mut c = f.cmd(&["send", "campaign.toml", "--format", "json"]);
    c.env("OUTREACH_NOW", "2026-11-25T04:30:00Z");
    let (code, out, _) = run(c);
    assert_eq!(code, 0, "deferred is not a failure");
    let v = json(&out);
    assert_eq!(v["channels"][0]["sent"], 1);
    assert_eq!(v["channels"][0]["deferred"]["quiet_hours"], 1);
    // 14:00 UTC: 08:00 in Chicago.
    let mut c = f.cmd(&["send", "campaign.toml", "--format", "json"]);
    c.env("OUTREACH_NOW", "2026-11-25T14:00:00Z");
    let (_, out, _) = run(c);
    assert_eq!(json(&out)["channels"][0]["sent"], 1);
    let (_, sms) = outbox(&f);
    assert_eq!(sms.len(), 2);
}

#[test]
fn daily_cap_paces_each_channel_by_the_clinics_day() {
    let f = many(20);
    let campaign = f
        .read("campaign.toml")
        .replace("[sending]\n", "[sending]\ndaily_cap = 5\n");
    f.write("campaign.toml", &campaign);
    let at = |now: &str| {
        let mut c = f.cmd(&["send", "campaign.toml", "--format", "json"]);
        c.env("OUTREACH_NOW", now);
        let (code, out, _) = run(c);
        assert_eq!(code, 0);
        json(&out)
    };
    let v = at("2026-11-25T15:00:00Z");
    assert_eq!(v["channels"][0]["sent"], 5);
    assert_eq!(v["channels"][1]["sent"], 5);
    assert_eq!(v["channels"][0]["deferred"]["daily_cap"], 15);
    // Later the same day in Chicago (05:30 UTC next day is 23:30 on the 25th): nothing more.
    let v = at("2026-11-26T05:30:00Z");
    assert_eq!(v["channels"][0]["sent"], 0);
    // The next day: five more.
    let v = at("2026-11-26T15:00:00Z");
    assert_eq!(v["channels"][0]["sent"], 5);
    let (email, _) = outbox(&f);
    assert_eq!(email.len(), 10);
}

#[test]
fn consent_suppression_and_choice_hold_in_the_outbox() {
    let csv = format!(
        "{HEADER}\n\
         P1,Ann,Lee,ann@example.com,(312) 555-0101,,yes,no,\n\
         P2,Bo,Ng,bo@example.com,(312) 555-0102,sms,yes,yes,\n\
         P3,Cy,Ox,cy@example.com,(312) 555-0103,,yes,yes,\n\
         P4,Di,Po,di@example.com,(312) 555-0104,,,yes,\n"
    );
    let f = fast(&csv);
    f.write("opt-outs.csv", "address\ncy@example.com\n");
    let (code, _, _) = f.run(&["send", "campaign.toml", "-q"]);
    assert_eq!(code, 0);
    let (email, sms) = outbox(&f);
    assert_eq!(email.keys().collect::<Vec<_>>(), ["ann@example.com"]);
    assert_eq!(
        sms.keys().collect::<Vec<_>>(),
        ["+13125550102", "+13125550103", "+13125550104"]
    );
}

#[test]
fn a_duplicate_address_goes_to_the_row_that_can_take_it() {
    // Line 2 has Ann's email but chose SMS; line 3, the same email in capitals, chose email
    // and consented: she gets the email (once), as line 3's; line 2 keeps its SMS. Line 4
    // repeats line 3's email without consent: a duplicate of line 3, nothing more.
    let csv = format!(
        "{HEADER}\n\
         P1,Ann,Lee,ann@example.com,(312) 555-0101,sms,no,yes,\n\
         P2,Annie,Lee,ANN@example.com,,email,yes,,\n\
         P3,Ann,Lee,ann@example.com,,email,no,,\n"
    );
    let f = fast(&csv);
    let (code, out, err) = f.run(&["check", "campaign.toml"]);
    assert_eq!(code, 0, "{out}{err}");
    // Line 2 did not choose email: that is what it is skipped for.
    assert!(!out.contains("contacts.csv:2 P1: duplicate"), "{out}");
    assert!(
        out.contains("contacts.csv:4 P3: duplicate email of line 3 (P2): only that row gets it"),
        "{out}"
    );
    let (code, out, err) = f.run(&["send", "campaign.toml", "-q"]);
    assert_eq!(code, 0, "{out}{err}");
    let (email, sms) = outbox(&f);
    assert_eq!(email, BTreeMap::from([("ann@example.com".to_string(), 1)]));
    assert_eq!(sms, BTreeMap::from([("+13125550101".to_string(), 1)]));
    let eml = std::fs::read_dir(f.path("outbox/email"))
        .unwrap()
        .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
        .find(|t| t.contains("To: "))
        .unwrap();
    assert!(eml.contains("Annie"), "line 3's data: {eml}");
    // Asked for by that address, preview shows the row that gets the email.
    let (code, out, err) = f.run(&[
        "preview",
        "campaign.toml",
        "--contact",
        "Ann@Example.com",
        "--channel",
        "email",
    ]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("Annie"), "{out}");
}
#[test]
fn dry_run_records_nothing_and_matches_check() {
    let f = fast(&format!(
        "{HEADER}\nP1,Ann,Lee,ann@example.com,(312) 555-0101,,yes,yes,\nP2,Bo,Ng,bo@example.com,,,no,,\n"
    ));
    let (code, out, _) = f.run(&["send", "campaign.toml", "--dry-run", "--format", "json"]);
    assert_eq!(code, 0);
    let v = json(&out);
    assert_eq!(v["dry_run"], true);
    assert_eq!(v["channels"][0]["sent"], 1);
    assert_eq!(v["channels"][1]["sent"], 1);
    assert!(!f.path("outbox").exists());
    assert!(!f.ledger().exists());
    let (_, check, _) = f.run(&["check", "campaign.toml", "--format", "json"]);
    let c = json(&check);
    assert_eq!(c["channels"][0]["due"], v["channels"][0]["sent"]);
    assert_eq!(c["channels"][0]["skipped"], v["channels"][0]["skipped"]);
    let (_, text, _) = f.run(&["send", "campaign.toml", "--dry-run"]);
    assert!(
        text.contains("dry run (nothing sent)") && text.contains("would send"),
        "{text}"
    );
}

#[test]
fn a_dry_run_is_not_paced_by_the_rate_limits() {
    // One message a minute on each channel: paced, 4 contacts would take 3 minutes.
    let f = Fixture::new(&format!(
        "{HEADER}\nP1,Ann,Lee,ann@example.com,(312) 555-0101,,yes,yes,\n\
         P2,Bo,Ng,bo@example.com,(312) 555-0102,,yes,yes,\n\
         P3,Cy,Oh,cy@example.com,(312) 555-0103,,yes,yes,\n\
         P4,Di,Po,di@example.com,(312) 555-0104,,yes,yes,\n"
    ));
    f.write(
        "campaign.toml",
        &common::campaign_toml("[sending]\nemail_rate = \"1/min\"\nsms_rate = \"1/min\"\n"),
    );
    let started = std::time::Instant::now();
    let (code, out, _) = f.run(&["send", "campaign.toml", "--dry-run", "--format", "json"]);
    assert_eq!(code, 0);
    let v = json(&out);
    assert_eq!(v["channels"][0]["sent"], 4);
    assert_eq!(v["channels"][1]["sent"], 4);
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "the dry run waited for the rate limiter: {:?}",
        started.elapsed()
    );
}

#[test]
fn limit_counts_messages_of_all_channels() {
    let f = many(10);
    let (code, out, _) = f.run(&["send", "campaign.toml", "--limit", "7", "--format", "json"]);
    assert_eq!(code, 0);
    let v = json(&out);
    let sent =
        v["channels"][0]["sent"].as_u64().unwrap() + v["channels"][1]["sent"].as_u64().unwrap();
    assert_eq!(sent, 7);
    let (email, sms) = outbox(&f);
    assert_eq!(email.len() + sms.len(), 7);
    let (_, out, _) = f.run(&["send", "campaign.toml", "--format", "json"]);
    let v = json(&out);
    let (email, sms) = outbox(&f);
    assert_eq!(email.len(), 10);
    assert_eq!(sms.len(), 8, "{v}"); // P0 and P7 are email-only
    assert!(email.values().chain(sms.values()).all(|n| *n == 1));
}

#[test]
fn channel_option_sends_one_channel() {
    let f = many(5);
    let (code, _, _) = f.run(&["send", "campaign.toml", "--channel", "sms", "-q"]);
    assert_eq!(code, 0);
    let (email, sms) = outbox(&f);
    assert!(email.is_empty());
    assert_eq!(sms.len(), 4);
}

#[test]
fn test_to_sends_to_staff_and_records_nothing() {
    let f = fast(&format!(
        "{HEADER}\nP1,Ann,Lee,ann@example.com,(312) 555-0101,,no,no,\n"
    ));
    let (code, out, err) = f.run(&[
        "send",
        "campaign.toml",
        "--test-to",
        "frontdesk@riverside.example",
        "--contact",
        "P1",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.starts_with("Test email of contact P1 to frontdesk@riverside.example: sent"),
        "{out}"
    );
    let (email, _) = outbox(&f);
    assert_eq!(
        email.keys().collect::<Vec<_>>(),
        ["frontdesk@riverside.example"]
    );
    let dir: Vec<_> = std::fs::read_dir(f.path("outbox/email")).unwrap().collect();
    let text = std::fs::read_to_string(dir[0].as_ref().unwrap().path()).unwrap();
    assert!(
        text.contains("unsubscribe?t=test-message-not-a-patient"),
        "inert link"
    );
    assert!(!text.contains("ann@example.com"));
    assert!(!f.ledger().exists());
    // A phone picks the SMS channel; in quiet hours too.
    let mut c = f.cmd(&[
        "send",
        "campaign.toml",
        "--test-to",
        "+1 312 555 0199",
        "--contact",
        "ann@example.com",
    ]);
    c.env("OUTREACH_NOW", NIGHT);
    let (code, out, _) = run(c);
    assert_eq!(code, 0);
    assert!(
        out.starts_with("Test sms of contact P1 to +13125550199: sent"),
        "{out}"
    );
    // The patient still gets nothing (no consent), and is not marked in the ledger.
    let (_, out, _) = f.run(&["send", "campaign.toml", "--format", "json"]);
    assert_eq!(json(&out)["channels"][0]["skipped"]["no_consent"], 1);
}

#[test]
fn failures_retry_record_and_set_the_exit_code() {
    let f = many(6);
    let run_with = |faults: &str, extra: &[&str]| {
        let mut args = vec![
            "send",
            "campaign.toml",
            "--format",
            "json",
            "--channel",
            "email",
        ];
        args.extend_from_slice(extra);
        let mut c = f.cmd(&args);
        c.env("OUTREACH_FILE_FAULTS", faults);
        let (code, out, err) = run(c);
        (code, json(&out), err)
    };
    // Two transient failures then success: retried within the run, sent once.
    // A permanent failure: failed, exit 1, not retried by the next run.
    let (code, v, _) = run_with("P00001=transient*2,P00002=permanent,P00003=unknown", &[]);
    assert_eq!(code, 1);
    assert_eq!(v["channels"][0]["sent"], 4);
    assert_eq!(v["channels"][0]["failed"], 1);
    assert_eq!(v["channels"][0]["unknown"], 1);
    let rows = ledger(&f);
    assert_eq!(rows[&("email".into(), "pat1@example.com".into())], "sent");
    assert_eq!(rows[&("email".into(), "pat2@example.com".into())], "failed");
    assert_eq!(
        rows[&("email".into(), "pat3@example.com".into())],
        "unknown"
    );
    let db = f.ledger();
    let attempts = db.count("SELECT attempts FROM messages WHERE address = 'pat1@example.com'");
    assert_eq!(attempts, 3);
    let err = db.value("SELECT last_error FROM messages WHERE address = 'pat2@example.com'");
    assert!(err.contains("injected permanent fault"), "{err}");
    // A rerun leaves failed and unknown alone.
    let (code, v, _) = run_with("", &[]);
    assert_eq!(code, 0);
    assert_eq!(v["channels"][0]["sent"], 0);
    assert_eq!(
        v["channels"][0]["already"],
        serde_json::json!({"sent": 4, "failed": 1, "unknown": 1})
    );
    // --retry-failed and --resend-unknown take them.
    let (code, v, _) = run_with("", &["--retry-failed", "--resend-unknown"]);
    assert_eq!(code, 0);
    assert_eq!(v["channels"][0]["sent"], 2);
    let (email, _) = outbox(&f);
    assert_eq!(email.len(), 6);
}

#[test]
fn an_outage_stops_the_run_with_exit_3_and_nobody_failed() {
    let f = many(30);
    let campaign = f.read("campaign.toml").replace(
        "[sending]\n",
        "[sending]\nmax_consecutive_failures = 3\nmax_attempts = 2\nconcurrency = 1\n",
    );
    f.write("campaign.toml", &campaign);
    let faults: Vec<String> = (0..30).map(|i| format!("P{i:05}=transient")).collect();
    let mut c = f.cmd(&["send", "campaign.toml", "--channel", "email"]);
    c.env("OUTREACH_FILE_FAULTS", faults.join(","));
    let (code, out, _) = run(c);
    assert_eq!(code, 3, "{out}");
    assert!(
        out.contains(
            "Stopped early: email: 3 messages in a row failed or went unanswered \
             (sending.max_consecutive_failures = 3)"
        ),
        "{out}"
    );
    let rows = ledger(&f);
    assert!(rows.values().all(|s| s == "failed"), "{rows:?}");
    let (_, status, _) = f.run(&["status", "campaign.toml", "--format", "json"]);
    let s = json(&status);
    assert_eq!(
        s["counts"]["email"]["failed"], 0,
        "nobody is marked failed for the server's fault"
    );
    assert!(s["counts"]["email"]["retry"].as_u64().unwrap() >= 2);
    // The outage is over: the rerun sends everyone, once.
    let (code, _, _) = f.run(&["send", "campaign.toml", "--channel", "email", "-q"]);
    assert_eq!(code, 0);
    let (email, _) = outbox(&f);
    assert_eq!(email.len(), 30);
    assert!(email.values().all(|n| *n == 1));
}

#[test]
fn fatal_transport_error_stops_at_once() {
    let f = many(10);
    let mut c = f.cmd(&[
        "send",
        "campaign.toml",
        "--channel",
        "email",
        "--set",
        "sending.concurrency=1",
    ]);
    c.env("OUTREACH_FILE_FAULTS", "P00002=fatal");
    let (code, out, _) = run(c);
    assert_eq!(code, 3, "{out}");
    assert!(
        out.contains("Stopped early: email: injected fatal fault"),
        "{out}"
    );
}

#[test]
fn opted_out_replies_suppress_and_do_not_fail_the_run() {
    let f = many(3);
    let mut c = f.cmd(&[
        "send",
        "campaign.toml",
        "--channel",
        "sms",
        "--format",
        "json",
    ]);
    c.env("OUTREACH_FILE_FAULTS", "P00001=optout");
    let (code, out, _) = run(c);
    assert_eq!(code, 0, "{out}");
    assert_eq!(json(&out)["channels"][0]["opted_out"], 1);
    // The reply suppresses the number for every campaign of the state directory.
    let reason = f.ledger().value("SELECT reason FROM suppressions");
    assert!(
        reason.starts_with("opted out: injected optout fault"),
        "{reason}"
    );
}

#[test]
fn status_and_report() {
    let f = fast(&format!(
        "{HEADER}\nP1,=HYPERLINK(\"http://evil\"),Lee,ann@example.com,(312) 555-0101,,yes,yes,\nP2,Bo,Ng,bo@example.com,,email,no,,\n"
    ));
    let (code, out, _) = f.run(&["status", "campaign.toml"]);
    assert_eq!(code, 0);
    assert!(out.contains("No run yet."), "{out}");
    f.run(&["send", "campaign.toml", "-q"]);
    let (code, out, _) = f.run(&["status", "campaign.toml"]);
    assert_eq!(code, 0);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines[0],
        format!("Campaign test-campaign (ledger {})", f.ledger_name())
    );
    assert_eq!(
        lines[1],
        "            sent   failed    retry  unknown  sending"
    );
    assert_eq!(
        lines[2],
        "email          1        0        0        0        0"
    );
    assert_eq!(
        lines[3],
        "sms            1        0        0        0        0"
    );
    assert!(
        lines[4].starts_with("Last run: 1 started 2026-11-25T18:00:00.000000Z, completed ("),
        "{out}"
    );
    assert!(
        !out.contains("ann@example.com"),
        "status never shows an address"
    );

    let (code, out, _) = f.run(&["report", "campaign.toml", "--out", "r.csv"]);
    assert_eq!(code, 0);
    assert_eq!(
        out,
        "Report of 4 recipients written to r.csv (owner-only: it holds patient addresses)\n"
    );
    let csv = f.read("r.csv");
    let mut lines = csv.lines();
    assert_eq!(
        lines.next().unwrap(),
        "campaign,channel,contact_id,line,name,address,state,reason,attempts,provider_id,last_error,sent_at,updated_at,delivery,delivery_code,opted_out,consent,consent_source"
    );
    let rows: Vec<&str> = lines.collect();
    assert!(rows[0].starts_with("test-campaign,email,P1,2,\"'=HYPERLINK(\"\"http://evil\"\") Lee\",ann@example.com,sent,,1,"), "{}", rows[0]);
    assert!(
        rows[1].starts_with("test-campaign,email,P2,3,Bo Ng,bo@example.com,skipped,no consent,0,"),
        "{}",
        rows[1]
    );
    assert!(rows[2].contains(",'+13125550101,sent,"), "{}", rows[2]);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(f.path("r.csv"))
                .unwrap()
                .permissions()
                .mode()
                & 0o777,
            0o600
        );
    }
}

#[test]
fn logs_mask_addresses() {
    let f = fast(&format!(
        "{HEADER}\nP1,Ann,Lee,ann.lee@example.com,(312) 555-0101,,yes,yes,\n"
    ));
    let (code, out, err) = f.run(&["send", "campaign.toml", "-v"]);
    assert_eq!(code, 0);
    assert!(err.contains("a***@example.com"), "{err}");
    assert!(err.contains("+1312***01"), "{err}");
    for full in ["ann.lee@example.com", "+13125550101", "5550101"] {
        assert!(!err.contains(full), "{full} in logs: {err}");
        assert!(!out.contains(full), "{full} in output: {out}");
    }
}

#[test]
fn changed_templates_are_announced() {
    let f = fast_email(&format!(
        "{HEADER}\nP1,Ann,Lee,ann@example.com,,email,yes,,\nP2,Bo,Ng,bo@example.com,,email,yes,,\n"
    ));
    f.run(&["send", "campaign.toml", "--limit", "1", "-q"]);
    f.write("templates/subject.hbs", "A new subject");
    let (code, out, _) = f.run(&["send", "campaign.toml"]);
    assert_eq!(code, 0);
    assert!(out.contains("Warning: the templates changed since this campaign first sent (2026-11-25T18:00:00.000000Z)"), "{out}");
}

#[test]
fn a_campaign_that_cannot_run_sends_nothing() {
    let f = fast_email(&format!(
        "{HEADER}\nP1,Ann,Lee,ann@example.com,,email,yes,,\n"
    ));
    std::fs::write(
        f.path("outbox"),
        "a file where the outbox directory should be",
    )
    .unwrap();
    let (code, out, err) = f.run(&["send", "campaign.toml"]);
    assert_eq!((code, out.as_str()), (2, ""));
    assert!(err.contains("email transport: outbox"), "{err}");
    let (code, _, err) = f.run(&["send", "campaign.toml", "--set", "campaign.id=x"]);
    assert_eq!(code, 2);
    assert!(err.contains("cannot be overridden"));
}

/// SQLite only: the state directory is where the SQLite ledger is (on PostgreSQL the URL is).
#[test]
fn a_state_directory_set_on_the_command_line_must_know_the_campaign() {
    common::sqlite_only("sending.state_dir picks the ledger");
    let f = Fixture::email_only(&format!(
        "{HEADER}\nP1,Ann,Lee,ann@example.com,,email,yes,,\nP2,Bo,Ng,bo@example.com,,email,yes,,\n"
    ));
    let fresh = ["send", "campaign.toml", "--set", "sending.state_dir=fresh"];
    let (code, out, err) = f.run(&fresh);
    assert_eq!(code, 2, "{out}{err}");
    assert_eq!(
        err,
        "error: --set sending.state_dir=fresh: the ledger in fresh has never seen campaign \
         test-campaign; nothing sent. Sending there would message everyone again, and its new \
         token key would break every unsubscribe link already sent (the campaign's own state \
         directory is .outreach). Drop the --set, or add --new-ledger if a fresh ledger is \
         really meant\n"
    );
    assert!(!f.path("fresh").exists() && !f.path("outbox").exists());
    // On purpose: sent, and from then on that ledger knows the campaign.
    let (code, out, err) = f.run(&[&fresh[..], &["--new-ledger"]].concat());
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(
        std::fs::read_dir(f.path("outbox/email")).unwrap().count(),
        2
    );
    let (code, out, err) = f.run(&fresh);
    assert_eq!(code, 0, "{out}{err}");
    // The campaign's own directory, named with --set after a run there, is no new ledger.
    let (code, out, err) = f.run(&["send", "campaign.toml"]);
    assert_eq!(code, 0, "{out}{err}");
    let (code, out, err) = f.run(&[
        "send",
        "campaign.toml",
        "--set",
        "sending.state_dir=.outreach",
    ]);
    assert_eq!(code, 0, "{out}{err}");
    // A dry run sends nothing, so it is not refused.
    let (code, out, err) = f.run(&[
        "send",
        "campaign.toml",
        "--dry-run",
        "--set",
        "sending.state_dir=other",
    ]);
    assert_eq!(code, 0, "{out}{err}");
}

#[test]
fn run_numbers_count_per_campaign() {
    let f = Fixture::email_only(&format!(
        "{HEADER}\nP1,Ann,Lee,ann@example.com,,email,yes,,\n"
    ));
    f.write(
        "second.toml",
        &f.read("campaign.toml")
            .replace("id = \"test-campaign\"", "id = \"second-campaign\""),
    );
    for _ in 0..2 {
        let (code, out, err) = f.run(&["send", "campaign.toml"]);
        assert_eq!(code, 0, "{out}{err}");
    }
    let (code, out, err) = f.run(&["send", "second.toml"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.starts_with("Campaign second-campaign, run 1: "),
        "{out}"
    );
    assert!(
        f.path(".outreach/reports/second-campaign-run1.csv")
            .exists()
    );
    let (_, out, _) = f.run(&["status", "second.toml"]);
    assert!(out.contains("Last run: 1 started "), "{out}");
    let (_, out, _) = f.run(&["status", "campaign.toml"]);
    assert!(out.contains("Last run: 2 started "), "{out}");
}

#[test]
fn smart_encoding_covers_twilios_table_but_never_a_name() {
    let f = fast(&format!(
        "{HEADER}\nP1,Ann,Lee,,(312) 555-0101,sms,,yes,\nP2,Mun\u{0303}oz,Lee,,(312) 555-0102,sms,,yes,\n"
    ));
    let campaign = f
        .read("campaign.toml")
        .replace("[sms]\n", "[sms]\nsmart_encoding = true\n");
    f.write("campaign.toml", &campaign);
    // Fullwidth capitals, guillemets, a fraction: Twilio's table has them all.
    f.write(
        "templates/sms.txt.hbs",
        "{{contact.first_name}}: «ＦＲＥＥ» assessment, ½ an hour. Reply STOP",
    );
    let (code, _, err) = f.run(&["send", "campaign.toml", "-q", "--channel", "sms"]);
    assert_eq!(code, 0, "{err}");
    let lines: Vec<serde_json::Value> = f.read("outbox/sms.jsonl").lines().map(json).collect();
    let by = |id: &str| lines.iter().find(|l| l["contact"] == id).unwrap();
    assert_eq!(
        by("P1")["body"],
        "Ann: \"FREE\" assessment, 1/2 an hour. Reply STOP"
    );
    assert_eq!(by("P1")["encoding"], "GSM-7");
    // A decomposed ñ keeps its combining tilde: the name is not rewritten, the SMS is UCS-2.
    assert_eq!(
        by("P2")["body"],
        "Mun\u{0303}oz: \"FREE\" assessment, 1/2 an hour. Reply STOP"
    );
    assert_eq!(by("P2")["encoding"], "UCS-2");
}
