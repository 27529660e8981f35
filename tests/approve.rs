//! Approval, the campaign window and patient data at rest, end to end: `approve` → `send`; every
//! kind of change named exactly (or, when it can only remove recipients, let through); the window
//! before, inside and after with an injected clock; the modes of every file and directory a run
//! creates; `purge`.

use crate::common;

use std::path::Path;
use std::time::Duration;

use crate::common::{Fixture, HEADER, Ledger, MIDDAY, run};

const FAST: &str = "[sending]\nemail_rate = \"0\"\nsms_rate = \"0\"\nretry_delay = \"10ms\"\n";

const CONTACTS: &str = "P1,Ann,Lee,ann@example.com,(312) 555-0101,,yes,yes,
P2,Bo,Ng,bo@example.com,(312) 555-0102,,yes,yes,
P3,Cy,Ox,cy@example.com,(312) 555-0103,,yes,yes,
";

/// The test campaign with `lines` added to its `[campaign]` table (from line 5 on).
fn campaign(lines: &str) -> String {
    common::campaign_toml(FAST).replacen(
        "channels = [\"email\", \"sms\"]\n",
        &format!("channels = [\"email\", \"sms\"]\n{lines}"),
        1,
    )
}

fn fixture(lines: &str) -> Fixture {
    let f = Fixture::new(&format!("{HEADER}\n{CONTACTS}"));
    f.write("campaign.toml", &campaign(lines));
    f
}

fn gated() -> Fixture {
    fixture("require_approval = true\n")
}

/// Messages in the outbox: (.eml files, SMS lines).
fn sent(f: &Fixture) -> (usize, usize) {
    let eml = std::fs::read_dir(f.path("outbox/email"))
        .map(|d| d.count())
        .unwrap_or(0);
    let sms = std::fs::read_to_string(f.path("outbox/sms.jsonl"))
        .map(|s| s.lines().count())
        .unwrap_or(0);
    (eml, sms)
}

fn sql_count(db: &Ledger, sql: &str) -> i64 {
    db.count(sql)
}

fn message_rows(f: &Fixture) -> i64 {
    let db = f.ledger();
    if !db.exists() {
        return 0;
    }
    sql_count(&db, "SELECT COUNT(*) FROM messages")
}

const REFUSED_HEAD: &str = "error: campaign test-campaign changed since it was approved by \
                            alice at 2026-11-25 12:00 CST; nothing sent:\n";
const REFUSED_TAIL: &str =
    "review it (outreach check / preview), then approve again: outreach approve campaign.toml\n";

/// `send` refuses with exactly these changes, and sends and records nothing.
fn refuses(f: &Fixture, changes: &[&str]) {
    let before = (sent(f), message_rows(f));
    let (code, out, err) = f.run(&["send", "campaign.toml"]);
    let listed: String = changes.iter().map(|c| format!("  {c}\n")).collect();
    assert_eq!(
        (code, out.as_str(), err.as_str()),
        (
            2,
            "",
            format!("{REFUSED_HEAD}{listed}{REFUSED_TAIL}").as_str()
        )
    );
    assert_eq!(
        (sent(f), message_rows(f)),
        before,
        "nothing sent or recorded"
    );
}

fn approval_line(f: &Fixture) -> String {
    let (code, out, err) = f.run(&["check", "campaign.toml"]);
    assert_eq!(code, 0, "{err}");
    out.lines()
        .find(|l| l.starts_with("Approval: "))
        .unwrap_or("(none)")
        .to_string()
}

#[test]
fn approve_then_send_and_every_change_is_named() {
    let f = gated();
    // Not approved: nothing goes, no ledger is made.
    let (code, out, err) = f.run(&["send", "campaign.toml"]);
    assert_eq!(
        (code, out.as_str(), err.as_str()),
        (
            2,
            "",
            "error: campaign test-campaign is not approved and campaign.require_approval = true; \
             nothing sent. Review it (outreach check / preview), then: outreach approve \
             campaign.toml\n"
        )
    );
    assert_eq!(sent(&f), (0, 0));
    assert!(!f.ledger().exists());
    assert_eq!(
        approval_line(&f),
        "Approval: not approved: send refuses until someone runs outreach approve"
    );
    let (_, out, _) = f.run(&["approve", "campaign.toml", "--show"]);
    assert_eq!(out, "Campaign test-campaign: no approval recorded\n");

    let (code, out, err) = f.run(&["approve", "campaign.toml", "--by", "alice"]);
    assert_eq!((code, err.as_str()), (0, ""));
    assert_eq!(
        out,
        "Approved campaign test-campaign by alice at 2026-11-25 12:00 CST: 6 messages would go \
         (3 email, 3 sms); fingerprinted 3 contact rows, 8 templates, 1 suppression list\n\
         send now sends this; a changed template, message or audience setting, an added or \
         changed contact row or a removed opt-out needs a new approval\n"
    );
    assert_eq!(
        approval_line(&f),
        "Approval: approved by alice at 2026-11-25 12:00 CST"
    );

    // A template.
    let sms = f.read("templates/sms.txt.hbs");
    f.write("templates/sms.txt.hbs", &format!("{sms} "));
    refuses(&f, &["template sms.txt.hbs changed"]);
    f.write("templates/partials/footer_text.hbs", "new partial");
    f.write("templates/partials/extra.hbs", "another");
    refuses(
        &f,
        &[
            "template partials/extra.hbs added",
            "template partials/footer_text.hbs changed",
            "template sms.txt.hbs changed",
        ],
    );
    restore_templates(&f);

    // An audience or message setting voids it, in the file or with --set; a transport one does not.
    let toml = f.read("campaign.toml");
    f.write(
        "campaign.toml",
        &toml.replace(
            "name = \"Riverside Physio\"",
            "name = \"Riverside Physio & Spa\"",
        ),
    );
    refuses(&f, &["setting clinic.name changed"]);
    f.write("campaign.toml", &toml);
    let (code, _, err) = f.run(&[
        "send",
        "campaign.toml",
        "--dry-run",
        "--set",
        "campaign.require_consent=false",
    ]);
    assert_eq!(code, 0, "a dry run is allowed: {err}");
    let (code, _, err) = f.run(&[
        "send",
        "campaign.toml",
        "--set",
        "campaign.require_consent=false",
    ]);
    assert_eq!(code, 2);
    assert!(
        err.contains("\n  setting campaign.require_consent changed\n"),
        "{err}"
    );
    f.write(
        "campaign.toml",
        &format!(
            "{}\n[email.smtp]\nhost = \"relay.example.net\"\n",
            toml.replace(
                "email_rate = \"0\"",
                "email_rate = \"5/s\"\nconcurrency = 2"
            )
            .replace("outbox/email", "outbox2/email")
            .replace(
                "outbox = \"outbox/sms.jsonl\"",
                "outbox = \"outbox/sms.jsonl\"\nmax_segments = 3"
            )
        ),
    );
    assert_eq!(
        approval_line(&f),
        "Approval: approved by alice at 2026-11-25 12:00 CST"
    );
    f.write("campaign.toml", &toml);

    // Contact rows: changed and added void it, with counts; deleted rows do not.
    let csv = f.read("contacts.csv");
    f.write(
        "contacts.csv",
        &format!(
            "{}P4,Di,Ma,di@example.com,,,yes,,\nP5,Ed,Wu,ed@example.com,,,yes,,\n",
            csv.replace("Bo,Ng", "Bob,Ng")
        ),
    );
    refuses(&f, &["contacts.csv: 2 rows added, 1 changed"]);
    f.write(
        "contacts.csv",
        &csv.replace("P3,Cy,Ox,cy@example.com,(312) 555-0103,,yes,yes,\n", ""),
    );
    assert_eq!(
        approval_line(&f),
        "Approval: approved by alice at 2026-11-25 12:00 CST (since then: contacts.csv: 1 row \
         removed)"
    );

    // A new opt-out does not wait for an admin.
    f.write(
        "opt-outs.csv",
        "address,reason\nbo@example.com,unsubscribed\n",
    );
    assert_eq!(
        approval_line(&f),
        "Approval: approved by alice at 2026-11-25 12:00 CST (since then: contacts.csv: 1 row \
         removed; opt-outs.csv: 1 opt-out entry added)"
    );
    let (code, out, err) = f.run(&["send", "campaign.toml", "-q"]);
    assert_eq!((code, out.as_str(), err.as_str()), (0, "", ""));
    // Ann on both channels, Bo by SMS only (his email opted out), Cy deleted.
    assert_eq!(sent(&f), (1, 2));

    // Re-approve after a change: send works again.
    f.write("templates/subject.hbs", "A new subject\n");
    f.write("contacts.csv", &csv);
    refuses(
        &f,
        // Cy's row is back as approved: no change there.
        &["template subject.hbs changed"],
    );
    let (code, _, err) = f.run(&["approve", "campaign.toml", "--by", "bob", "-q"]);
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = f.run(&["send", "campaign.toml", "-q"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(sent(&f), (2, 3));

    // Removing an opt-out voids it: that patient could be messaged again.
    f.write("opt-outs.csv", "address,reason\n");
    let (code, _, err) = f.run(&["send", "campaign.toml"]);
    assert_eq!(code, 2);
    assert!(
        err.starts_with(
            "error: campaign test-campaign changed since it was approved by bob at 2026-11-25 \
             12:00 CST; nothing sent:\n  opt-outs.csv: 1 opt-out entry removed\n"
        ),
        "{err}"
    );

    // --show: the record, text and JSON.
    let (code, out, _) = f.run(&["approve", "campaign.toml", "--show"]);
    assert_eq!(code, 0);
    assert!(
        out.starts_with(
            "Campaign test-campaign: changed since approved by bob at 2026-11-25 12:00 CST: \
             opt-outs.csv: 1 opt-out entry removed\nApproved by bob at 2026-11-25T18:00:00+00:00\n"
        ),
        "{out}"
    );
    assert!(out.contains("\n  sms.txt.hbs "), "{out}");
    assert!(
        out.contains("\nContacts contacts.csv: 3 rows (each hashed by its id or address)\n"),
        "{out}"
    );
    let (_, out, _) = f.run(&["approve", "campaign.toml", "--show", "--format", "json"]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["record"]["by"], "bob");
    assert_eq!(v["record"]["contact_rows"], 3);
    assert_eq!(v["status"]["state"], "changed");
    assert_eq!(
        v["status"]["changes"],
        serde_json::json!(["opt-outs.csv: 1 opt-out entry removed"])
    );
    // Transport, rates, concurrency and state_dir are not in it.
    let settings = v["record"]["settings"].as_object().unwrap();
    for key in ["email.transport", "sending.email_rate", "sending.state_dir"] {
        assert!(!settings.contains_key(key), "{key}");
    }
    for key in [
        "clinic.name",
        "campaign.not_after",
        "sms.quiet_hours",
        "email.from",
    ] {
        assert!(settings.contains_key(key), "{key}");
    }

    // Hashes only: no address, name or phone of a patient in the ledger file.
    let approvals = sql_count(&f.ledger(), "SELECT COUNT(*) FROM approval_rows");
    assert_eq!(
        approvals, 4,
        "the latest approval's rows only: 3 contacts, 1 opt-out"
    );
    let dump = f
        .ledger()
        .rows("SELECT file || key || hash FROM approval_rows");
    for row in dump.into_iter().flatten() {
        assert!(!row.contains("Ann") && !row.contains("P1"), "{row}");
    }
}

/// The shipped templates again, exactly: the default set, as `Fixture::new` copies it (no
/// language folders).
fn restore_templates(f: &Fixture) {
    fn walk(src: &Path, dst: &Path) {
        std::fs::create_dir_all(dst).unwrap();
        for e in std::fs::read_dir(src).unwrap() {
            let e = e.unwrap();
            if e.file_type().unwrap().is_dir() && e.file_name() != "partials" {
                continue;
            }
            if e.file_type().unwrap().is_dir() {
                walk(&e.path(), &dst.join(e.file_name()));
            } else {
                std::fs::copy(e.path(), dst.join(e.file_name())).unwrap();
            }
        }
    }
    std::fs::remove_dir_all(f.path("templates")).unwrap();
    walk(
        &common::repo().join("templates/psoas"),
        &f.path("templates"),
    );
}

#[test]
fn approve_refuses_what_check_refuses_and_test_to_needs_no_approval() {
    let f = gated();
    let (code, out, err) = f.run(&["send", "campaign.toml", "--test-to", "staff@clinic.example"]);
    assert_eq!((code, err.as_str()), (0, ""), "{out}");
    assert!(
        out.starts_with("Test email of contact P1 to staff@clinic.example: sent"),
        "{out}"
    );
    assert_eq!(message_rows(&f), 0);

    f.write("templates/subject.hbs", "{{#if}}");
    let (code, out, err) = f.run(&["approve", "campaign.toml"]);
    assert_eq!((code, out.as_str()), (2, ""));
    assert!(err.starts_with("error: "), "{err}");
    assert!(!f.ledger().exists());
}

/// SQLite only: a ledger file as the previous release wrote it (PostgreSQL has no such past).
#[test]
fn an_existing_ledger_gains_the_approval_tables() {
    common::sqlite_only("a previous release's SQLite ledger");
    let f = gated();
    // A ledger as the previous release wrote it: no approval tables.
    std::fs::create_dir_all(f.path(".outreach")).unwrap();
    let conn = rusqlite::Connection::open(f.path(".outreach/ledger.sqlite")).unwrap();
    conn.execute_batch(
        "CREATE TABLE campaigns (id TEXT PRIMARY KEY, fingerprint TEXT NOT NULL,
             started_at TEXT NOT NULL);
         CREATE TABLE suppressions (address TEXT PRIMARY KEY, reason TEXT NOT NULL, source TEXT,
             added_at TEXT NOT NULL);
         INSERT INTO suppressions VALUES ('+13125550103', 'opted out', 'sms reply', 'x');",
    )
    .unwrap();
    drop(conn);
    let (code, _, err) = f.run(&["approve", "campaign.toml", "--by", "alice", "-q"]);
    assert_eq!((code, err.as_str()), (0, ""));
    let (code, _, err) = f.run(&["send", "campaign.toml", "-q"]);
    assert_eq!((code, err.as_str()), (0, ""));
    assert_eq!(sent(&f), (3, 2), "the learnt suppression still holds");
}

#[test]
fn the_window_before_inside_and_after() {
    let f = fixture("not_before = 2026-12-01\nnot_after = \"2026-12-31T17:30\"\n");
    let at = |now: &str, args: &[&str]| {
        let mut c = f.cmd(args);
        c.env("OUTREACH_NOW", now);
        run(c)
    };
    // Before: nothing sent, exit 0, says when it opens.
    let (code, out, err) = at(MIDDAY, &["send", "campaign.toml"]);
    assert_eq!(
        (code, out.as_str(), err.as_str()),
        (
            0,
            "Campaign test-campaign: nothing sent; its window opens 2026-12-01 00:00 CST \
             (campaign.not_before = 2026-12-01)\n",
            ""
        )
    );
    assert_eq!(sent(&f), (0, 0));
    assert!(!f.ledger().exists());
    let (_, out, _) = at(MIDDAY, &["check", "campaign.toml"]);
    assert!(
        out.contains("\n  window not open            3       3\n"),
        "{out}"
    );
    let (_, out, _) = at(MIDDAY, &["preview", "campaign.toml", "--contact", "P1"]);
    assert!(
        out.contains("=== email to ann@example.com: deferred: the campaign window opens 2026-12-01 00:00 CST ==="),
        "{out}"
    );
    // A dry run shows the plan.
    let (code, out, _) = at(MIDDAY, &["send", "campaign.toml", "--dry-run"]);
    assert_eq!(code, 0);
    assert!(
        out.contains("Deferred email to a later run: window not open 3"),
        "{out}"
    );

    // Inside: it sends.
    let (code, _, err) = at("2026-12-01T06:00:00Z", &["send", "campaign.toml", "-q"]);
    assert_eq!((code, err.as_str()), (0, ""));
    assert_eq!(sent(&f), (3, 0), "SMS wait for the end of quiet hours");

    // After (17:30 Chicago on the 31st): the deferred SMS are dropped, exit 0, one line.
    let (code, out, err) = at("2026-12-31T23:30:00Z", &["send", "campaign.toml"]);
    assert_eq!(
        (code, out.as_str(), err.as_str()),
        (
            0,
            "Campaign test-campaign ended 2026-12-31 17:30 CST (campaign.not_after = \
             2026-12-31T17:30): nothing sent; 3 messages dropped (campaign ended); remove it from \
             crontab\n",
            ""
        )
    );
    assert_eq!(sent(&f), (3, 0));
    let (_, out, _) = at("2026-12-31T23:30:00Z", &["check", "campaign.toml"]);
    assert!(
        out.contains("\n  campaign ended             0       3\n"),
        "{out}"
    );
    let (code, _, err) = at("2026-12-31T23:30:00Z", &["report", "campaign.toml"]);
    assert_eq!(code, 0, "{err}");
    let report = f.read(".outreach/reports/test-campaign-report.csv");
    assert_eq!(report.matches("campaign ended").count(), 3, "{report}");
    let (code, out, _) = at(
        "2026-12-31T23:30:00Z",
        &["send", "campaign.toml", "--format", "json"],
    );
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        (v["window"].as_str(), v["dropped"].as_u64()),
        (Some("ended"), Some(3))
    );

    // Bad values name the key and line; the window is in the approval.
    f.write("campaign.toml", &campaign("not_before = \"next week\"\n"));
    let (code, _, err) = f.run(&["check", "campaign.toml"]);
    assert_eq!(code, 2);
    assert_eq!(
        err,
        "error: campaign.toml:5: `campaign.not_before`: \"next week\" is not a date (2026-12-01) \
         or a date and time (2026-12-01T09:00) in the clinic's time zone\n"
    );
    f.write(
        "campaign.toml",
        &campaign("not_before = 2026-12-02\nnot_after = 2026-12-01\n"),
    );
    let (code, _, err) = f.run(&["check", "campaign.toml"]);
    assert_eq!(code, 2);
    assert_eq!(
        err,
        "error: campaign.toml:6: `campaign.not_after`: 2026-12-01 is not after \
         campaign.not_before = 2026-12-02: the window would be empty\n"
    );
    let g = fixture("require_approval = true\nnot_after = 2026-12-31\n");
    assert_eq!(
        g.run(&["approve", "campaign.toml", "--by", "alice", "-q"])
            .0,
        0
    );
    let (code, _, err) = g.run(&[
        "send",
        "campaign.toml",
        "--set",
        "campaign.not_after=2027-01-31",
    ]);
    assert_eq!(code, 2);
    assert!(
        err.contains("\n  setting campaign.not_after changed\n"),
        "{err}"
    );
}

/// The full mode: type and permission bits.
#[cfg(unix)]
fn mode(p: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).unwrap().permissions().mode()
}

/// Every file and directory under `root` made by `outreach` (not the ones the test wrote).
#[cfg(unix)]
fn made(root: &Path, dir: &Path, out: &mut Vec<(String, u32)>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        let rel = p.strip_prefix(root).unwrap().display().to_string();
        if ["campaign.toml", "contacts.csv", "opt-outs.csv", "templates"].contains(&rel.as_str()) {
            continue;
        }
        out.push((rel, mode(&p)));
        if p.is_dir() {
            made(root, &p, out);
        }
    }
}

/// SQLite only: the modes of the ledger file and of SQLite's -wal and -shm files.
#[cfg(unix)]
#[test]
fn every_file_and_directory_made_is_private() {
    common::sqlite_only("the modes of ledger.sqlite and its -wal and -shm");
    let f = fixture("");
    // A slow SMS lane keeps the run (and SQLite's -wal and -shm files) alive while we look.
    let bin = assert_cmd::cargo::cargo_bin("outreach");
    let mut child = std::process::Command::new(&bin)
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
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    // Every email written (the email lane is not paced) and the first SMS.
    while sent(&f).0 < 3 || sent(&f).1 < 1 || !f.path(".outreach/ledger.sqlite-wal").exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "the run never wrote its emails and first SMS"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut live = Vec::new();
    made(f.dir.path(), f.dir.path(), &mut live);
    child.kill().unwrap();
    child.wait().unwrap();
    let names: Vec<&str> = live.iter().map(|(n, _)| n.as_str()).collect();
    for wanted in [
        ".outreach",
        ".outreach/ledger.sqlite",
        ".outreach/ledger.sqlite-wal",
        ".outreach/ledger.sqlite-shm",
        ".outreach/test-campaign.lock",
        ".outreach/unsubscribe.key",
        "outbox",
        "outbox/email",
        "outbox/sms.jsonl",
    ] {
        assert!(names.contains(&wanted), "{wanted} in {names:?}");
    }

    // The rest: a finished run's report, approve, preview, report.
    assert_eq!(f.run(&["send", "campaign.toml", "-q"]).0, 0);
    assert_eq!(f.run(&["approve", "campaign.toml", "-q"]).0, 0);
    assert_eq!(
        f.run(&["preview", "campaign.toml", "--out", "pv/deep"]).0,
        0
    );
    assert_eq!(f.run(&["report", "campaign.toml", "-q"]).0, 0);
    let mut all = Vec::new();
    made(f.dir.path(), f.dir.path(), &mut all);
    let eml = all
        .iter()
        .filter(|(n, _)| n.starts_with("outbox/email/"))
        .count();
    assert_eq!(eml, 3, "{all:?}");
    all.extend(live);
    let names: Vec<&str> = all.iter().map(|(n, _)| n.as_str()).collect();
    for wanted in [
        ".outreach/reports",
        ".outreach/reports/test-campaign-run2.csv",
        ".outreach/reports/test-campaign-report.csv",
        "pv",
        "pv/deep/index.html",
        "pv/deep/.outreach-preview",
        "pv/deep/messages/000002-P1/message.eml",
    ] {
        assert!(names.contains(&wanted), "{wanted} in {names:?}");
    }
    assert!(all.len() > 20, "{all:?}");
    // Directories 0700, files 0600 (the type bits tell which, even for files gone since).
    let wrong: Vec<_> = all
        .iter()
        .filter(|(_, m)| {
            m & 0o777
                != if m & 0o170000 == 0o040000 {
                    0o700
                } else {
                    0o600
                }
        })
        .collect();
    assert!(wrong.is_empty(), "not private: {wrong:?}");
}

/// Two campaigns sharing a state directory and outboxes, both sent, both previewed.
fn two_campaigns() -> Fixture {
    let f = fixture("");
    f.write(
        "other.toml",
        &campaign("").replace("id = \"test-campaign\"", "id = \"test-campaign.2\""),
    );
    for (file, pv) in [("campaign.toml", "pv-a"), ("other.toml", "pv-b")] {
        let mut c = f.cmd(&["send", file, "-q"]);
        c.env("OUTREACH_FILE_FAULTS", "P3=optout");
        assert_eq!(run(c).0, 0);
        assert_eq!(f.run(&["report", file, "-q"]).0, 0);
        assert_eq!(f.run(&["preview", file, "--out", pv, "-q"]).0, 0);
    }
    f
}

fn purge(f: &Fixture, args: &[&str]) -> (i32, String, String) {
    let mut c = f.cmd(&[&["purge", "campaign.toml"], args].concat());
    // Not a terminal, and an answer that must never be read.
    c.write_stdin("y\n");
    run(c)
}

fn files_in(f: &Fixture, dir: &str) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(f.path(dir))
        .map(|d| {
            d.map(|e| e.unwrap().file_name().to_string_lossy().to_string())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

fn size(f: &Fixture, names: &[String], dir: &str) -> u64 {
    names
        .iter()
        .map(|n| {
            std::fs::metadata(f.path(&format!("{dir}/{n}")))
                .unwrap()
                .len()
        })
        .sum()
}

#[test]
fn purge_deletes_only_what_it_names_after_saying_how_much() {
    let f = two_campaigns();
    let (code, out, err) = purge(&f, &[]);
    assert_eq!(
        (code, out.as_str(), err.as_str()),
        (
            2,
            "",
            "error: say what to purge: --outbox, --reports, --ledger, --preview DIR, or --all \
             (nothing deleted)\n"
        )
    );

    // Off a terminal, without --yes: says what it would delete, deletes nothing, exit 2.
    let emails = files_in(&f, "outbox/email");
    let (ours, theirs): (Vec<String>, Vec<String>) = emails
        .iter()
        .cloned()
        .partition(|n| n.starts_with("test-campaign+"));
    // Cy's opt-out reply (an injected fault) leaves two of the three in each campaign.
    assert_eq!((ours.len(), theirs.len()), (2, 2));
    let sms = f.read("outbox/sms.jsonl");
    let our_sms: Vec<&str> = sms
        .split_inclusive('\n')
        .filter(|l| l.contains("\"campaign\":\"test-campaign\""))
        .collect();
    assert_eq!(our_sms.len(), 2, "{sms}");
    let plan = format!(
        "Campaign test-campaign: purge will delete\n  email outbox outbox/email: 2 files, {} \
         bytes\n  SMS outbox outbox/sms.jsonl: 2 lines of this campaign, {} bytes (other \
         campaigns' lines stay)\n",
        size(&f, &ours, "outbox/email"),
        our_sms.iter().map(|l| l.len()).sum::<usize>()
    );
    let (code, out, err) = purge(&f, &["--outbox"]);
    assert_eq!(
        (code, out.as_str(), err.as_str()),
        (
            2,
            plan.as_str(),
            "error: not deleting: stdin is not a terminal, so there is no one to ask; run again \
             with --yes to delete what is listed above\n"
        )
    );
    assert_eq!(files_in(&f, "outbox/email"), emails);

    let (code, out, err) = purge(&f, &["--outbox", "--yes"]);
    assert_eq!(
        (code, out, err),
        (0, format!("{plan}Deleted\n"), String::new())
    );
    assert_eq!(files_in(&f, "outbox/email"), theirs);
    let left = f.read("outbox/sms.jsonl");
    assert_eq!(left.lines().count(), 2);
    assert!(!left.contains("\"campaign\":\"test-campaign\""), "{left}");
    let (_, out, _) = purge(&f, &["--outbox", "--yes"]);
    assert_eq!(out, "Campaign test-campaign: nothing to purge\n");

    // Reports.
    let reports = files_in(&f, ".outreach/reports");
    assert_eq!(
        reports,
        [
            "test-campaign-report.csv",
            "test-campaign-run1.csv",
            "test-campaign.2-report.csv",
            // Run numbers count per campaign: the second campaign's first run is run 1.
            "test-campaign.2-run1.csv"
        ]
    );
    let bytes = size(&f, &reports[..2], ".outreach/reports");
    let (code, out, _) = purge(&f, &["--reports", "--yes"]);
    assert_eq!(code, 0);
    assert!(
        out.contains(&format!(
            "  reports .outreach/reports: 2 files, {bytes} bytes\n"
        )),
        "{out}"
    );
    assert_eq!(
        files_in(&f, ".outreach/reports"),
        ["test-campaign.2-report.csv", "test-campaign.2-run1.csv"]
    );

    // A preview folder: only one this campaign wrote.
    let (code, _, err) = purge(&f, &["--preview", "pv-b", "--yes"]);
    assert_eq!(code, 2);
    assert_eq!(
        err,
        "error: --preview pv-b: not a preview folder of campaign test-campaign (no \
         .outreach-preview naming it); nothing deleted\n"
    );
    let (code, _, err) = purge(&f, &["--preview", "templates", "--yes"]);
    assert_eq!(code, 2, "{err}");
    assert!(f.path("templates/subject.hbs").exists());
    let (code, out, _) = purge(&f, &["--preview", "pv-a", "--yes"]);
    assert_eq!(code, 0);
    assert!(out.contains("  preview pv-a: "), "{out}");
    assert!(!f.path("pv-a").exists() && f.path("pv-b/index.html").exists());

    // The ledger: this campaign's rows only; the shared suppressions stay.
    let db = f.ledger();
    let count = |sql: &str| sql_count(&db, sql);
    // SQLite only: the file's bytes (below).
    let file = f.path(".outreach/ledger.sqlite");
    let ann_before = db
        .is_sqlite()
        .then(|| (ann(&file, PURGED), ann(&file, KEPT)));
    // Suppressions learnt while sending (P3's opt-out replies on both channels), shared by every
    // campaign of the state directory.
    assert_eq!(count("SELECT COUNT(*) FROM suppressions"), 2);
    let (code, out, _) = purge(&f, &["--ledger", "--yes"]);
    assert_eq!(code, 0);
    assert!(
        out.contains(&format!(
            "  ledger {}: 6 message rows, 1 run, 0 approvals, 5 rows of \
             unsubscribe tokens, SMS ids, receipts, unsubscribes, bounces and replies of this campaign (shared suppressions and other campaigns stay; a later send would message \
             everyone again{})\n",
            f.ledger_name(),
            // Where deleting cannot promise the bytes are gone, purge says so.
            match db.is_sqlite() {
                true => "",
                false =>
                    "; PostgreSQL may keep old versions of the rows in its write-ahead log and \
                     backups until it recycles them",
            }
        )),
        "{out}"
    );
    assert_eq!(
        count("SELECT COUNT(*) FROM messages WHERE campaign = 'test-campaign'"),
        0
    );
    // The second campaign never messaged P3, who opted out during the first.
    assert_eq!(
        count("SELECT COUNT(*) FROM messages WHERE campaign = 'test-campaign.2'"),
        4
    );
    assert_eq!(
        count("SELECT COUNT(*) FROM runs WHERE campaign = 'test-campaign'"),
        0
    );
    assert_eq!(count("SELECT COUNT(*) FROM suppressions"), 2);
    // Deleted rows are overwritten, not left in free pages, the WAL or b-tree dividers: the
    // purged campaign's key for Ann (campaign, channel, address, stored side by side) is nowhere
    // in the file any more; the other campaign's still is. (A PostgreSQL server's files are
    // its own: not the test's to read.)
    if let Some(ann_before) = ann_before {
        assert!(ann_before.0 >= 1 && ann_before.1 >= 1, "{ann_before:?}");
        assert_eq!(ann(&file, PURGED), 0);
        assert!(ann(&file, KEPT) >= 1);
    }
}

/// Ann's email key in the purged campaign and in the kept one, as SQLite stores a record's text
/// columns: side by side.
const PURGED: &[u8] = b"test-campaignemailann@example.com";
const KEPT: &[u8] = b"test-campaign.2emailann@example.com";

/// How many times `needle` is in the bytes of the ledger file (and its WAL).
fn ann(db: &Path, needle: &[u8]) -> usize {
    let mut bytes = std::fs::read(db).unwrap();
    bytes.extend(std::fs::read(db.with_extension("sqlite-wal")).unwrap_or_default());
    bytes.windows(needle.len()).filter(|w| w == &needle).count()
}

#[test]
fn purge_leaves_an_sms_outbox_another_campaigns_run_is_writing() {
    // Both campaigns write outbox/sms.jsonl. Rewriting it under test-campaign.2's running send
    // would send that run's later lines to a file no longer in the directory.
    let f = two_campaigns();
    let outbox = f.path("outbox/sms.jsonl");
    let lines = || std::fs::read_to_string(&outbox).unwrap().lines().count();
    let before = lines();
    f.ledger().remove();
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("outreach"))
        .current_dir(f.dir.path())
        .env("OUTREACH_NOW", MIDDAY)
        .args([
            "send",
            "other.toml",
            "-q",
            "--channel",
            "sms",
            "--set",
            "sending.sms_rate=30/min",
        ])
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while lines() == before {
        assert!(
            std::time::Instant::now() < deadline,
            "the other run wrote nothing"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let reports = files_in(&f, ".outreach/reports");
    assert!(!reports.is_empty());
    // --all: the busy outbox is tried first, and nothing else goes either.
    let (code, out, err) = purge(&f, &["--all", "--yes"]);
    assert_eq!(files_in(&f, ".outreach/reports"), reports, "{out}{err}");
    let written = lines();
    child.kill().unwrap();
    child.wait().unwrap();
    let others = std::fs::read_to_string(&outbox)
        .unwrap()
        .lines()
        .filter(|l| !l.contains("\"campaign\":\"test-campaign\""))
        .count();
    assert_eq!(code, 4, "{out}{err}");
    assert!(
        err.contains(
            "outbox/sms.jsonl: a send of another campaign is writing to this SMS outbox; purge it \
             when that run is over (nothing deleted)"
        ),
        "{err}"
    );
    assert!(written > before, "{written}");
    assert!(
        std::fs::read_to_string(&outbox)
            .unwrap()
            .contains("\"campaign\":\"test-campaign\""),
        "test-campaign's lines are still there"
    );
    // Once that run is over, the purge goes through.
    let (code, _, err) = purge(&f, &["--outbox", "--yes"]);
    assert_eq!(code, 0, "{err}");
    let left = std::fs::read_to_string(&outbox).unwrap();
    assert!(!left.contains("\"campaign\":\"test-campaign\""), "{left}");
    assert_eq!(left.lines().count(), others);
}

/// SQLite only: exit 4 and the run lock are SQLite's (on PostgreSQL runs share the work).
#[test]
fn purge_takes_the_run_lock_and_all_means_all() {
    common::sqlite_only("exit 4: another run holds the lock");
    let f = two_campaigns();
    let bin = assert_cmd::cargo::cargo_bin("outreach");
    f.ledger().remove();
    let mut child = std::process::Command::new(&bin)
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
    let holder = format!("pid {}", child.id());
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !std::fs::read_to_string(f.path(".outreach/test-campaign.lock"))
        .is_ok_and(|s| s.starts_with(&holder))
    {
        assert!(std::time::Instant::now() < deadline, "never took the lock");
        std::thread::sleep(Duration::from_millis(20));
    }
    let (code, out, err) = purge(&f, &["--all", "--yes"]);
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!((code, out.as_str()), (4, ""), "{err}");
    assert!(
        err.contains("another run of campaign test-campaign is in progress"),
        "{err}"
    );

    let (code, _, err) = purge(&f, &["--all", "--yes"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        files_in(&f, "outbox/email")
            .iter()
            .all(|n| n.starts_with("test-campaign.2+"))
    );
    assert_eq!(files_in(&f, ".outreach/reports").len(), 2);
    assert!(
        f.path("pv-a/index.html").exists(),
        "no --preview DIR, no preview purge"
    );
    assert_eq!(
        sql_count(
            &f.ledger(),
            "SELECT COUNT(*) FROM messages WHERE campaign = 'test-campaign'"
        ),
        0
    );
}
