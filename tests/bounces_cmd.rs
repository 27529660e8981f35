//! `outreach bounces` end to end: emails sent through the file transport with a VERP bounce
//! address, then a Maildir (and an mbox) of returned mail made from the corpus in
//! `tests/bounces/` with each email's own token and address put in, read by the real binary;
//! what it suppressed, counted and left alone is read back through `suppressions list` and
//! `status`, a rerun changes nothing, and a run killed mid-way double-counts nothing.

use std::path::Path;

use crate::common::{self, Fixture, HEADER};

pub(crate) const SET_VERP: &str = "email.bounce_address=bounces+{{token}}@riverside.example";

pub(crate) fn fixture(mailbox: &str) -> Fixture {
    let f = Fixture::new(&format!(
        "{HEADER}\n\
         P1,Ann,Lee,ann@example.com,,email,yes,yes,\n\
         P2,Bo,Ng,bo@example.com,,email,yes,yes,\n\
         P3,Cy,Park,cy@example.com,,email,yes,yes,\n\
         P4,Di,Ruiz,di@example.org,,email,yes,yes,\n\
         P5,Ed,Fox,ed@example.com,,email,yes,yes,\n\
         P6,Flo,Gee,flo@example.com,,email,yes,yes,\n"
    ));
    let extra =
        format!("[sending]\nemail_rate = \"0\"\n[feedback]\n{mailbox}\nsoft_bounce_limit = 3\n");
    f.write(
        "campaign.toml",
        &common::campaign_toml_on(&["email"], &extra),
    );
    f.write("opt-outs.csv", "address,reason\n");
    let (code, out, err) = f.run(&["send", "campaign.toml", "-q", "--set", SET_VERP]);
    assert_eq!(code, 0, "{out}{err}");
    f
}

/// The VERP token of the email the outbox holds for `to`.
fn token_of(f: &Fixture, to: &str) -> String {
    for entry in std::fs::read_dir(f.path("outbox/email")).unwrap() {
        let eml = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        if eml.contains(&format!("<{to}>")) {
            let at = eml.find("<bounces+").unwrap() + "<bounces+".len();
            return eml[at..at + 26].to_string();
        }
    }
    panic!("no email to {to}");
}

/// A corpus message with its token and recipient replaced by `to`'s.
fn returned(f: &Fixture, file: &str, token: &str, recipient: &str, to: &str) -> String {
    let text = std::fs::read_to_string(Path::new("tests/bounces").join(file)).unwrap();
    text.replace(token, &token_of(f, to)).replace(recipient, to)
}

/// The returned mail of the fixture: a hard bounce (Ann), a complaint (Bo), three soft bounces
/// (Cy: the limit), a DMARC policy bounce (Di), a mailto opt-out (Ed), an auto-reply.
pub(crate) fn corpus(f: &Fixture) -> Vec<String> {
    let soft = returned(
        f,
        "postfix-delayed-4xx.eml",
        "p7h2c5xkq3m4zn6rw2ty7dva3b",
        "d.kowalski@example.net",
        "cy@example.com",
    );
    vec![
        returned(
            f,
            "postfix-dsn-511.eml",
            "n4d7kq2vzm5xw3rj6tpa2yhc7e",
            "margaret.okafor@example.org",
            "ann@example.com",
        ),
        returned(
            f,
            "arf-abuse.eml",
            "j2x5kq7zm3rt4nd6cya2pvh6lr",
            "ines.duarte@example-mail.com",
            "bo@example.com",
        ),
        soft.clone(),
        soft.clone(),
        soft,
        returned(
            f,
            "dmarc-571.eml",
            "n3q7kx2zm5rt4wd6cya2pvh4lx",
            "ahmed.saleh@example.org",
            "di@example.org",
        ),
        returned(
            f,
            "unsubscribe-mailto.eml",
            "7qkz3xm2r5tw4nd6cya2pvh3lb",
            "walter.brandt@example.com",
            "ed@example.com",
        ),
        std::fs::read_to_string("tests/bounces/ooo-auto-submitted.eml").unwrap(),
    ]
}

pub(crate) fn write_maildir(f: &Fixture, messages: &[String]) {
    for sub in ["new", "cur", "tmp"] {
        std::fs::create_dir_all(f.path("bounces").join(sub)).unwrap();
    }
    for (i, m) in messages.iter().enumerate() {
        let sub = if i % 2 == 0 { "new" } else { "cur" };
        let flags = if i % 2 == 0 { "" } else { ":2,S" };
        let name = format!("1796573642.M{i}P1.mail{flags}");
        std::fs::write(f.path("bounces").join(sub).join(name), m).unwrap();
    }
}

fn write_mbox(f: &Fixture, messages: &[String]) {
    let mut mbox = String::new();
    for m in messages {
        mbox.push_str("From MAILER-DAEMON Mon Dec  7 16:14:02 2026\n");
        for line in m.lines() {
            if line.trim_start_matches('>').starts_with("From ") {
                mbox.push('>');
            }
            mbox.push_str(line);
            mbox.push('\n');
        }
        mbox.push('\n');
    }
    std::fs::write(f.path("bounces.mbox"), mbox).unwrap();
}

pub(crate) fn bounces(f: &Fixture) -> (i32, serde_json::Value) {
    let (code, out, err) = f.run(&[
        "bounces",
        "campaign.toml",
        "--set",
        SET_VERP,
        "--format",
        "json",
    ]);
    assert!(err.is_empty(), "{err}");
    (
        code,
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}")),
    )
}

pub(crate) fn suppressed(f: &Fixture) -> Vec<String> {
    let (code, out, err) = f.run(&["suppressions", "list", "campaign.toml", "--format", "json"]);
    assert_eq!(code, 0, "{out}{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let mut found: Vec<String> = v["suppressed"]
        .as_array()
        .unwrap_or_else(|| panic!("{v}"))
        .iter()
        .map(|s| s["address"].as_str().unwrap().to_string())
        .collect();
    found.sort();
    found
}

fn check_first_run(f: &Fixture) {
    check_effects(f);
    // A rerun reads nothing again and changes nothing.
    let (code, v) = bounces(f);
    assert_eq!(code, 0, "{v}");
    assert_eq!(
        (v["read"].as_u64(), v["already_read"].as_u64()),
        (Some(0), Some(8))
    );
    check_unchanged(f);
}

/// A first run over [`corpus`]: what it read, counted and suppressed.
pub(crate) fn check_effects(f: &Fixture) {
    let (code, v) = bounces(f);
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["read"], 8, "{v}");
    assert_eq!(v["classes"]["bounce"], 5, "{v}");
    assert_eq!(v["classes"]["complaint"], 1, "{v}");
    assert_eq!(v["classes"]["unsubscribe"], 1, "{v}");
    assert_eq!(v["classes"]["auto-reply"], 1, "{v}");
    assert_eq!(v["events"]["hard"], 1, "{v}");
    assert_eq!(v["events"]["soft"], 3, "{v}");
    assert_eq!(v["events"]["policy"], 1, "{v}");
    assert_eq!(v["policy_by_domain"]["example.org"], 1, "{v}");
    assert_eq!(v["suppressed"].as_array().unwrap().len(), 4, "{v}");
    assert_eq!(
        suppressed(f),
        [
            "a***@example.com",
            "b***@example.com",
            "c***@example.com",
            "e***@example.com"
        ]
    );
    assert_eq!(
        f.after_sending(
            "campaign.toml",
            "email",
            &[
                "bounced",
                "soft-bounced",
                "complained",
                "undelivered",
                "opted out"
            ]
        ),
        "1 bounced, 1 soft-bounced, 1 complained, 1 undelivered, 1 opted out"
    );
    // The report says it of each email, with the DSN status.
    let (code, out, err) = f.run(&["report", "campaign.toml", "--out", "r.csv"]);
    assert_eq!(code, 0, "{out}{err}");
    let report = f.read("r.csv");
    let after: Vec<String> = report
        .lines()
        .skip(1)
        .map(|l| l.split(',').skip(13).take(3).collect::<Vec<_>>().join(","))
        .collect();
    assert_eq!(
        after,
        [
            "bounced,5.1.1,",
            "complained,,",
            "soft-bounced,4.4.1,",
            "undelivered,5.7.1,",
            ",,mailto",
            ",,"
        ],
        "{report}"
    );
    let (code, out, err) = f.run(&["status", "campaign.toml"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains(
            "Refused by policy, by domain (all campaigns; check SPF, DKIM, DMARC): example.org 1"
        ),
        "{out}"
    );
}

/// After a rerun: still what the first run recorded.
pub(crate) fn check_unchanged(f: &Fixture) {
    assert_eq!(suppressed(f).len(), 4);
    assert_eq!(rows(f, "SELECT COUNT(*) FROM bounces"), 6);
}

/// A count from the ledger.
pub(crate) fn rows(f: &Fixture, sql: &str) -> u64 {
    f.ledger().count(sql) as u64
}

#[test]
fn a_maildir_suppresses_hard_bounces_complaints_soft_at_the_limit_and_opt_outs() {
    let f = fixture("maildir = \"bounces\"");
    write_maildir(&f, &corpus(&f));
    check_first_run(&f);
    // The files are where they were.
    assert_eq!(std::fs::read_dir(f.path("bounces/new")).unwrap().count(), 4);
    assert_eq!(std::fs::read_dir(f.path("bounces/cur")).unwrap().count(), 4);
}

#[test]
fn an_mbox_of_the_same_mail_gives_the_same_result() {
    let f = fixture("mbox = \"bounces.mbox\"");
    write_mbox(&f, &corpus(&f));
    check_first_run(&f);
}

#[test]
fn a_run_killed_mid_way_loses_and_doubles_nothing() {
    const MANY: u64 = 6000;
    let f = fixture("maildir = \"bounces\"");
    let soft = corpus(&f).swap_remove(2);
    let many: Vec<String> = (0..MANY).map(|_| soft.clone()).collect();
    write_maildir(&f, &many);
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("outreach"))
        .current_dir(f.dir.path())
        .env("OUTREACH_NOW", common::MIDDAY)
        .env_remove("RUST_LOG")
        .args(["bounces", "campaign.toml", "-q", "--set", SET_VERP])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Killed as soon as its first batch is committed.
    // (The send of the fixture made the ledger's tables.)
    let processed = || rows(&f, "SELECT COUNT(*) FROM processed_mail");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while processed() == 0 && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let part = rows(&f, "SELECT COUNT(*) FROM processed_mail");
    assert!(part > 0 && part < MANY, "killed after {part} of {MANY}");
    assert_eq!(rows(&f, "SELECT COUNT(*) FROM bounces"), part);
    let (code, v) = bounces(&f);
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["read"].as_u64().unwrap() + part, MANY, "{v}");
    assert_eq!(rows(&f, "SELECT COUNT(*) FROM processed_mail"), MANY);
    assert_eq!(rows(&f, "SELECT COUNT(*) FROM bounces"), MANY);
    assert_eq!(suppressed(&f), ["c***@example.com"]);
}

#[test]
fn an_unreadable_message_exits_1_and_is_read_next_time() {
    let f = fixture("maildir = \"bounces\"");
    write_maildir(&f, &corpus(&f)[..1]);
    let file = f.path("bounces/new/1796573642.M0P1.mail");
    // A directory where a message should be: listed, but cannot be read.
    std::fs::rename(&file, f.path("saved.eml")).unwrap();
    std::fs::create_dir(&file).unwrap();
    let (code, v) = bounces(&f);
    assert_eq!(code, 1, "{v}");
    assert_eq!(v["unreadable"][0]["id"], "1796573642.M0P1.mail", "{v}");
    std::fs::remove_dir(&file).unwrap();
    std::fs::rename(f.path("saved.eml"), &file).unwrap();
    let (code, v) = bounces(&f);
    assert_eq!((code, v["read"].as_u64()), (0, Some(1)), "{v}");
}

#[test]
fn a_state_directory_stands_for_every_campaign_it_has_sent() {
    let f = fixture("maildir = \"bounces\"");
    let toml = std::fs::read_to_string(f.path("campaign.toml")).unwrap();
    for (file, id) in [("second.toml", "second"), ("gone.toml", "gone")] {
        let other = toml
            .replace("id = \"test-campaign\"", &format!("id = \"{id}\""))
            .replace("outbox/email", &format!("outbox/{id}"));
        f.write(file, &other);
        let (code, out, err) = f.run(&["send", file, "-q", "--set", SET_VERP]);
        assert_eq!(code, 0, "{out}{err}");
    }
    std::fs::remove_file(f.path("gone.toml")).unwrap();
    write_maildir(&f, &corpus(&f));
    let json = |args: &[&str]| {
        let mut all = vec!["bounces"];
        all.extend_from_slice(args);
        all.extend_from_slice(&["--set", SET_VERP, "--format", "json"]);
        let (code, out, err) = f.run(&all);
        let v: serde_json::Value =
            serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {code} {out}{err}"));
        (code, v, err)
    };
    let (code, v, err) = json(&[".outreach"]);
    assert_eq!(code, 0, "{v}{err}");
    assert_eq!(
        v["campaigns"],
        serde_json::json!(["second", "test-campaign"])
    );
    assert_eq!(v["read"], 8, "{v}");
    assert_eq!(v["events"]["hard"], 1, "{v}");
    assert_eq!(suppressed(&f).len(), 4);
    assert!(
        err.contains("left out campaign gone (") && err.contains("its file is gone"),
        "{err}"
    );
    // A campaign file and its own state directory name the same campaign once.
    let (code, v, _) = json(&["campaign.toml", ".outreach"]);
    assert_eq!(code, 0, "{v}");
    assert_eq!(
        v["campaigns"],
        serde_json::json!(["test-campaign", "second"])
    );
    assert_eq!(
        (v["read"].as_u64(), v["already_read"].as_u64()),
        (Some(0), Some(8))
    );
    // A directory without a ledger is refused, naming it.
    let (code, out, err) = f.run(&["bounces", "templates"]);
    assert_eq!(code, 2, "{out}{err}");
    assert!(err.contains("templates: no ledger here"), "{err}");
}
