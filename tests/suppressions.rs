//! `outreach suppressions list|remove` end to end: suppressions made the ways a clinic meets
//! them (an SMS provider's opt-out during `send`, injected with the file transport's faults; an
//! unsubscribe link's token fed to `outreach unsubscribe`; the clinic's own opt-out file), then
//! listed, looked up and lifted through the real binary, and the lift read back.

use crate::common::{self, Fixture, HEADER, run};

const FAST: &str = "[sending]\nemail_rate = \"0\"\nsms_rate = \"0\"\nretry_delay = \"10ms\"\n";

/// Ann and Bo get an email, Cy an SMS; Di and one number are on the clinic's opt-out file.
fn fixture() -> Fixture {
    let f = Fixture::new(&format!(
        "{HEADER}\n\
         P1,Ann,Lee,ann@example.com,(312) 555-0101,email,yes,yes,\n\
         P2,Bo,Ng,bo@example.com,(312) 555-0102,email,yes,yes,\n\
         P3,Cy,Park,cy@example.com,(312) 555-0103,sms,yes,yes,\n\
         P4,Di,Ruiz,di@example.com,(312) 555-0104,email,yes,yes,\n"
    ));
    f.write("campaign.toml", &common::campaign_toml(FAST));
    f.write(
        "opt-outs.csv",
        "address,reason\nDI@example.com,asked at the desk\n(312) 555-0199,STOP list\n",
    );
    f
}

/// [`fixture`] after a send where Cy's provider says she opted out, and Ann's unsubscribe link.
fn suppressed() -> Fixture {
    let f = fixture();
    let mut c = f.cmd(&["send", "campaign.toml", "-q"]);
    c.env("OUTREACH_FILE_FAULTS", "P3=optout");
    let (code, out, err) = run(c);
    assert_eq!(code, 0, "{out}{err}");
    let token = token_of(&f, "ann@example.com");
    let (code, out, err) = f.run(&["unsubscribe", "campaign.toml", &token]);
    assert_eq!(code, 0, "{out}{err}");
    f
}

/// The unsubscribe token in the email the outbox holds for `to`.
fn token_of(f: &Fixture, to: &str) -> String {
    for entry in std::fs::read_dir(f.path("outbox/email")).unwrap() {
        let eml = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        if eml.contains(&format!("<{to}>")) {
            let at = eml.find("unsubscribe?t=").unwrap() + "unsubscribe?t=".len();
            return eml[at..at + 26].to_string();
        }
    }
    panic!("no email to {to}");
}

/// `suppressions ARGS` as the OS user alice.
fn suppressions(f: &Fixture, args: &[&str]) -> (i32, String, String) {
    let mut c = f.cmd(&[&["suppressions"], args].concat());
    c.env("USER", "alice");
    run(c)
}

/// The list's first line: the ledger as `outreach` names it (`.outreach/ledger.sqlite`).
fn ledger_line(f: &Fixture) -> String {
    format!(
        "Suppressions in the ledger {} (every campaign of its state directory)",
        f.ledger_name()
    )
}

const HINT: &str =
    "Lift a ledger suppression with `outreach suppressions remove CAMPAIGN ADDRESS --reason TEXT`.";

#[test]
fn list_shows_the_ledgers_suppressions_and_the_clinics_files_masked() {
    let f = suppressed();
    let (code, out, err) = suppressions(&f, &["list", "campaign.toml"]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(
        out,
        format!(
            "{}: 2\n\
             \x20 +1312***03        since 2026-11-25 12:00 CST  sms reply, campaign test-campaign: \
             opted out: injected optout fault (OUTREACH_FILE_FAULTS)\n\
             \x20 a***@example.com  since 2026-11-25 12:00 CST  outreach unsubscribe \
             (test-campaign): unsubscribed\n\
             The clinic's suppression files (opt-outs.csv; yours to edit, outreach never does): 2\n\
             \x20 opt-outs.csv:2  d***@example.com\n\
             \x20 opt-outs.csv:3  +1312***99\n\
             {HINT}\n",
            ledger_line(&f)
        )
    );
}

#[test]
fn one_address_is_shown_in_full_by_email_in_any_case_or_phone_in_any_form() {
    let f = suppressed();
    let (code, out, err) = suppressions(
        &f,
        &["list", "campaign.toml", "--address", "ANN@Example.COM"],
    );
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(
        out,
        format!(
            "Suppressions of ann@example.com in the ledger {} (every \
             campaign of its state directory): 1\n\
             \x20 ann@example.com  since 2026-11-25 12:00 CST  outreach unsubscribe \
             (test-campaign): unsubscribed\n\
             The clinic's suppression files (opt-outs.csv; yours to edit, outreach never does) \
             of ann@example.com: 0\n\
             {HINT}\n",
            f.ledger_name()
        )
    );
    for phone in ["312.555.0103", "+1 (312) 555-0103", "3125550103"] {
        let (code, out, _) = suppressions(&f, &["list", "campaign.toml", "--address", phone]);
        assert_eq!(code, 0, "{out}");
        assert!(
            out.contains("\n  +13125550103  since 2026-11-25 12:00 CST  sms reply"),
            "{phone}: {out}"
        );
        assert!(!out.contains("ann@"), "{out}");
    }
    // On the clinic's file only, written another way there.
    let (_, out, _) = suppressions(
        &f,
        &["list", "campaign.toml", "--address", "di@EXAMPLE.com"],
    );
    assert!(out.contains("of di@example.com in the ledger"), "{out}");
    assert!(out.contains("): 0\n"), "{out}");
    assert!(
        out.contains("\n  opt-outs.csv:2  di@example.com\n"),
        "{out}"
    );
    // Not an address: exit 2, nothing shown.
    let (code, out, err) = suppressions(&f, &["list", "campaign.toml", "--address", "ann"]);
    assert_eq!((code, out.as_str()), (2, ""), "{err}");
    assert!(
        err.contains("\"ann\" is neither an email address nor a phone number of region US"),
        "{err}"
    );
}

#[test]
fn list_as_json() {
    let f = suppressed();
    let (code, out, err) = suppressions(&f, &["list", "campaign.toml", "--format", "json"]);
    assert_eq!(code, 0, "{out}{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        v["suppressed"][1],
        serde_json::json!({
            "channel": "email",
            "address": "a***@example.com",
            "reason": "unsubscribed",
            "source": "outreach unsubscribe (test-campaign)",
            "added_at": "2026-11-25T18:00:00.000000Z"
        })
    );
    assert_eq!(v["suppressed"][0]["channel"], "sms");
    assert_eq!(
        v["files"],
        serde_json::json!([
            {"file": "opt-outs.csv", "line": 2, "channel": "email", "address": "d***@example.com"},
            {"file": "opt-outs.csv", "line": 3, "channel": "sms", "address": "+1312***99"}
        ])
    );
    assert_eq!(v["lifted"], serde_json::json!([]));
    assert_eq!(v["address"], serde_json::Value::Null);
    assert!(!out.contains("ann@") && !out.contains("0103"), "{out}");
}

/// `check`'s skipped-as-suppressed count for a second campaign of the same state directory.
fn suppressed_in_next(f: &Fixture) -> (u64, u64) {
    f.write(
        "next.toml",
        &f.read("campaign.toml")
            .replace("test-campaign", "next-campaign"),
    );
    let (_, out, _) = f.run(&["check", "next.toml", "--format", "json"]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let count = |channel: usize| {
        v["channels"][channel]["skipped"]["suppressed"]
            .as_u64()
            .unwrap_or(0)
    };
    (count(0), count(1))
}

#[test]
fn remove_lifts_a_ledger_suppression_and_keeps_the_lift() {
    let f = suppressed();
    // Di on the clinic's file, Ann by her link; Cy's number by the provider.
    assert_eq!(suppressed_in_next(&f), (2, 1));
    let (code, out, err) = suppressions(
        &f,
        &[
            "remove",
            "campaign.toml",
            "Ann@Example.com",
            "--reason",
            "clicked by her mail scanner",
        ],
    );
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(
        out,
        "Lifted the suppression of ann@example.com (since 2026-11-25 12:00 CST, outreach \
         unsubscribe (test-campaign): unsubscribed); kept in the ledger with your reason.\n\
         Every campaign of the state directory may message it again from its next send.\n"
    );
    assert_eq!(suppressed_in_next(&f), (1, 1));
    // Again: nothing left to lift.
    let (code, out, err) = suppressions(
        &f,
        &[
            "remove",
            "campaign.toml",
            "ann@example.com",
            "--reason",
            "x",
        ],
    );
    assert_eq!((code, out.as_str()), (2, ""));
    assert_eq!(
        err,
        "error: ann@example.com is not suppressed (the ledger holds no suppression of it): \
         nothing to lift\n"
    );

    // The lift shows in the list, with who lifted it, and the address is no longer suppressed.
    let (_, out, _) = suppressions(&f, &["list", "campaign.toml"]);
    assert!(
        out.starts_with(&format!("{}: 1\n  +1312***03 ", ledger_line(&f))),
        "{out}"
    );
    assert!(
        out.contains(
            "\nLifted: 1\n  a***@example.com  lifted 2026-11-25 12:00 CST by alice: \"clicked by \
             her mail scanner\"; was, since 2026-11-25 12:00 CST, outreach unsubscribe \
             (test-campaign): unsubscribed\n"
        ),
        "{out}"
    );

    // A provider's opt-out, lifted under another name: the provider still holds the STOP.
    let (code, out, _) = suppressions(
        &f,
        &[
            "remove",
            "campaign.toml",
            "(312) 555-0103",
            "--reason",
            "texted START to the clinic",
            "--by",
            "Dr Admin",
        ],
    );
    assert_eq!(code, 0, "{out}");
    assert!(
        out.ends_with(
            "\nIts STOP is also held by the SMS provider until the patient texts START: a message \
             to it fails as opted out and suppresses it again.\n"
        ),
        "{out}"
    );
    let (_, out, _) = suppressions(
        &f,
        &[
            "list",
            "campaign.toml",
            "--address",
            "+13125550103",
            "--format",
            "json",
        ],
    );
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["suppressed"], serde_json::json!([]));
    assert_eq!(
        v["lifted"],
        serde_json::json!([{
            "channel": "sms",
            "address": "+13125550103",
            "reason": "texted START to the clinic",
            "lifted_by": "Dr Admin",
            "lifted_at": "2026-11-25T18:00:00.000000Z",
            "reason_was": "opted out: injected optout fault (OUTREACH_FILE_FAULTS)",
            "source_was": "sms reply, campaign test-campaign",
            "added_at_was": "2026-11-25T18:00:00.000000Z"
        }])
    );
    assert_eq!(suppressed_in_next(&f), (1, 0));

    // The lifts belong to the state directory: purging the campaign's rows keeps them.
    let (code, out, err) = f.run(&["purge", "campaign.toml", "--ledger", "--yes"]);
    assert_eq!(code, 0, "{out}{err}");
    let (_, out, _) = suppressions(&f, &["list", "campaign.toml"]);
    assert!(out.contains("\nLifted: 2\n"), "{out}");
}

#[test]
fn remove_refuses_what_only_the_clinics_files_hold_and_what_is_not_suppressed() {
    let f = suppressed();
    let before = suppressions(&f, &["list", "campaign.toml", "--format", "json"]).1;
    let (code, out, err) = suppressions(
        &f,
        &["remove", "campaign.toml", "DI@example.com", "--reason", "x"],
    );
    assert_eq!((code, out.as_str()), (2, ""));
    assert_eq!(
        err,
        "error: di@example.com is suppressed only by the clinic's suppression file: \
         opt-outs.csv:2; outreach does not edit those files, remove the line there (nothing \
         lifted)\n"
    );
    let (code, _, err) = suppressions(
        &f,
        &["remove", "campaign.toml", "bo@example.com", "--reason", "x"],
    );
    assert_eq!(code, 2);
    assert!(err.contains("bo@example.com is not suppressed"), "{err}");
    // A reason is required, and must say something.
    let (code, _, err) = suppressions(&f, &["remove", "campaign.toml", "ann@example.com"]);
    assert_eq!(code, 2);
    assert!(err.contains("--reason <TEXT>"), "{err}");
    let (code, _, err) = suppressions(
        &f,
        &[
            "remove",
            "campaign.toml",
            "ann@example.com",
            "--reason",
            "  ",
        ],
    );
    assert_eq!(code, 2);
    assert!(err.contains("--reason is empty"), "{err}");
    let (code, _, err) = suppressions(&f, &["remove", "campaign.toml", "ann@", "--reason", "x"]);
    assert_eq!(code, 2);
    assert!(
        err.contains("\"ann@\" is neither an email address"),
        "{err}"
    );
    // Nothing changed.
    assert_eq!(
        suppressions(&f, &["list", "campaign.toml", "--format", "json"]).1,
        before
    );
}

#[test]
fn an_address_on_the_ledger_and_a_file_is_lifted_from_the_ledger_and_the_file_named() {
    let f = suppressed();
    f.write(
        "opt-outs.csv",
        "address,reason\nDI@example.com,asked at the desk\n(312) 555-0199,STOP list\nann@example.com,asked\n",
    );
    let (code, out, err) = suppressions(
        &f,
        &[
            "remove",
            "campaign.toml",
            "ann@example.com",
            "--reason",
            "x",
        ],
    );
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.ends_with(
            "\nStill suppressed by the clinic's file: opt-outs.csv:4 (remove the line there to \
             reach it).\n"
        ),
        "{out}"
    );
}

#[test]
fn a_state_directory_without_a_ledger_lists_the_files_and_creates_none() {
    let f = fixture();
    let (code, out, err) = suppressions(&f, &["list", "campaign.toml"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.starts_with(&format!("{}: 0\nThe clinic's", ledger_line(&f))),
        "{out}"
    );
    let (code, _, err) = suppressions(
        &f,
        &["remove", "campaign.toml", "+13125550199", "--reason", "x"],
    );
    assert_eq!(code, 2);
    assert!(err.contains("opt-outs.csv:3"), "{err}");
    assert!(!f.path(".outreach").exists());
}
