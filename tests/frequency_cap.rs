//! `sending.max_per_patient`: campaigns of one state directory count each other's messages to a
//! patient. A second campaign defers (or, past its window, skips) whom the first reached, until
//! the cap's window frees them; and two campaigns sending at once never both pass the cap.

use crate::common::{self, Fixture, HEADER};

const CAP: &str = "[sending]\nemail_rate = \"0\"\nmax_per_patient = \"1/7d\"\n";

/// Two email campaigns, `first.toml` and `second.toml`, on one state directory, each capped at
/// one message per patient a week, writing to their own outboxes, for `contacts` rows.
fn two_campaigns(contacts: usize) -> Fixture {
    let mut csv = format!("{HEADER}\n");
    for i in 0..contacts {
        csv.push_str(&format!(
            "P{i},Pat,Doe,pat{i}@example.com,,email,yes,yes,\n"
        ));
    }
    let f = Fixture::new(&csv);
    let toml = common::campaign_toml_on(&["email"], CAP);
    for id in ["first", "second"] {
        let own = toml
            .replace("id = \"test-campaign\"", &format!("id = \"{id}\""))
            .replace("outbox/email", &format!("outbox/{id}"));
        f.write(&format!("{id}.toml"), &own);
    }
    f
}

/// `send FILE` at `now` (RFC 3339): its JSON summary's email channel.
fn send(f: &Fixture, file: &str, now: &str) -> serde_json::Value {
    let mut c = f.cmd(&["send", file, "--format", "json"]);
    c.env("OUTREACH_NOW", now);
    let (code, out, err) = common::run(c);
    assert_eq!(code, 0, "{out}{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    v["channels"][0].clone()
}

#[test]
fn a_second_campaign_waits_until_the_cap_frees_the_patient() {
    let f = two_campaigns(3);
    assert_eq!(send(&f, "first.toml", common::MIDDAY)["sent"], 3);
    let (code, out, err) = f.run(&["check", "second.toml", "--format", "json"]);
    assert_eq!(code, 0, "{out}{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["channels"][0]["deferred"]["frequency_cap"], 3, "{v}");
    let (_, out, _) = f.run(&["preview", "second.toml", "--contact", "P1"]);
    assert!(
        out.contains("deferred: frequency cap (until 2026-12-02 12:00 CST)"),
        "{out}"
    );
    let second = send(&f, "second.toml", common::MIDDAY);
    assert_eq!(
        (&second["sent"], &second["deferred"]["frequency_cap"]),
        (&0.into(), &3.into()),
        "{second}"
    );
    // A week later the first campaign's messages have left the window.
    let second = send(&f, "second.toml", "2026-12-02T18:00:01Z");
    assert_eq!(second["sent"], 3, "{second}");
    // A campaign that ends before the cap frees its patients skips them.
    let third = f
        .read("first.toml")
        .replace("id = \"first\"", "id = \"third\"")
        .replace("outbox/first", "outbox/third")
        .replace(
            "channels = [\"email\"]",
            "channels = [\"email\"]\nnot_after = 2026-12-05",
        );
    f.write("third.toml", &third);
    let v = send(&f, "third.toml", "2026-12-03T18:00:00Z");
    assert_eq!(v["skipped"]["frequency_cap"], 3, "{v}");
}

#[test]
fn two_campaigns_sending_at_once_never_both_pass_the_cap() {
    const N: usize = 1500;
    let f = two_campaigns(N);
    let start = |file: &str| {
        std::process::Command::new(assert_cmd::cargo::cargo_bin("outreach"))
            .current_dir(f.dir.path())
            .env("OUTREACH_NOW", common::MIDDAY)
            .env_remove("RUST_LOG")
            .args(["send", file, "--format", "json"])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (a, b) = (start("first.toml"), start("second.toml"));
    let mut sent = 0;
    let mut capped = 0;
    for child in [a, b] {
        let out = child.wait_with_output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        sent += v["channels"][0]["sent"].as_u64().unwrap();
        capped += v["channels"][0]["deferred"]["frequency_cap"]
            .as_u64()
            .unwrap_or(0);
    }
    assert_eq!((sent, capped), (N as u64, N as u64));
    let twice = f.ledger().count(
        "SELECT COUNT(*) FROM (SELECT address FROM messages WHERE state = 'sent'
                               GROUP BY address HAVING COUNT(*) > 1) AS twice",
    );
    assert_eq!(twice, 0, "a patient got both campaigns within the week");
    let files =
        |id: &str| std::fs::read_dir(f.path(&format!("outbox/{id}"))).map_or(0, |d| d.count());
    assert_eq!(files("first") + files("second"), N);
}
