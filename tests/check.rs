//! `outreach check` end to end: the shipped campaign's exact report, exit codes, `--strict`,
//! `--format json`, and every kind of bad input in the campaign file, contacts and templates,
//! each named by file, line and field.

use crate::common;

use crate::common::{Fixture, HEADER, MIDDAY, NIGHT, outreach, repo, run};

/// `check` on the shipped campaign, with a state directory of its own (a developer's own sends
/// in the checkout must not change what the test sees).
fn shipped(now: &str, extra: &[&str]) -> (i32, String, String) {
    let state = tempfile::tempdir().unwrap();
    let mut c = outreach();
    c.current_dir(repo())
        .env("OUTREACH_NOW", now)
        .args(["check", "campaigns/psoas.toml"])
        .arg("--set")
        .arg(format!("sending.state_dir={}", state.path().display()))
        .args(extra);
    run(c)
}

#[test]
fn shipped_campaign_report_is_exact() {
    let (code, out, err) = shipped(NIGHT, &[]);
    assert_eq!(err, "");
    assert_eq!(code, 0);
    assert_eq!(
        out,
        r#"Campaign psoas-2026-11 (campaigns/psoas.toml): Psoas: free phone assessment
Contacts contacts/sample.csv (UTF-8, ','-separated): 36 rows, 34 valid, 2 with problems
Suppression lists: 4 addresses
Approval: not approved: send refuses until someone runs outreach approve

                         email     sms
due now                     27       0
deferred                     0      21
  quiet hours                0      21
skipped                      9      15
  not chosen                 3       4
  invalid address            1       1
  no address                 1       1
  duplicate                  1       1
  no consent                 2       7
  suppressed                 1       1
would go, by language
  en (32 contacts)          25      18
  es (4 contacts)            2       3

Errors (2): these rows are skipped on the channels shown
  contacts/sample.csv:15 P0014 email: "frank@@example.com" is not a valid email address (email skipped)
  contacts/sample.csv:16 P0015 phone: "555-010-1234" is not a valid phone number for region US (sms skipped)

Warnings (6):
  templates/psoas/es/sms.txt.hbs: every SMS from this template is UCS-2 (70 characters a segment, 67 when split) because of ó (U+00F3 LATIN SMALL LETTER O WITH ACUTE) in the text it writes for every contact
  contacts/sample.csv:3 P0002: SMS is 3 segments (197 UCS-2 units) [sms]
  contacts/sample.csv:7 P0006: SMS is 3 segments (197 UCS-2 units) [sms]
  contacts/sample.csv:27 P0026: duplicate email of line 13 (P0012): only that row gets it [email]
  contacts/sample.csv:27 P0026: duplicate phone of line 13 (P0012): only that row gets it [sms]
  contacts/sample.csv:32 P0031: SMS is 3 segments (197 UCS-2 units) [sms]

OK with problems: the campaign can run; 48 messages would go; 2 rows have problems and are skipped where shown (--strict fails on them)
"#
    );
}

#[test]
fn strict_fails_on_row_problems_and_quiet_prints_nothing() {
    let (code, out, _) = shipped(MIDDAY, &["--strict"]);
    assert_eq!(code, 2);
    assert!(out.contains("P0014 email"), "{out}");
    let (code, out, err) = shipped(MIDDAY, &["-q"]);
    assert_eq!((code, out.as_str(), err.as_str()), (0, "", ""));
}

#[test]
fn json_report_for_scripts() {
    let (code, out, _) = shipped(MIDDAY, &["--format", "json"]);
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["rows"], 36);
    assert_eq!(v["channels"][0]["channel"], "email");
    assert_eq!(v["channels"][0]["due"], 27);
    assert_eq!(v["channels"][1]["due"], 21);
    assert_eq!(v["channels"][1]["skipped"]["no_consent"], 7);
    assert_eq!(v["errors"][0]["line"], 15);
    assert_eq!(v["errors"][0]["field"], "email");
    assert_eq!(v["errors"][0]["value"], "frank@@example.com");
    assert_eq!(v["errors"][0]["channels"], serde_json::json!(["email"]));
}

#[test]
fn set_errors_name_numbers_in_words() {
    // What a campaign's author types, said back the way they would say it: never `usize`/`u16`.
    for (set, expected) in [
        (
            "sending.concurrency=lots",
            "error: --set sending.concurrency=lots: `sending.concurrency`: invalid type: string \"lots\", expected a whole number\n",
        ),
        (
            "email.smtp.port=99999",
            "error: --set email.smtp.port=99999: `email.smtp.port`: invalid value: integer `99999`, expected a port number (1-65535)\n",
        ),
    ] {
        let (code, out, err) = shipped(MIDDAY, &["--set", set]);
        assert_eq!(
            (code, out.as_str(), err.as_str()),
            (2, "", expected),
            "{set}"
        );
    }
}

#[test]
fn preview_without_a_mode_names_all_three() {
    let mut c = outreach();
    c.current_dir(repo())
        .args(["preview", "campaigns/psoas.toml"]);
    let (code, _, err) = run(c);
    assert_eq!(code, 2, "{err}");
    for mode in ["--contact <KEY>", "--out <DIR>", "--serve [<ADDR>]"] {
        assert!(err.contains(mode), "{mode} missing from: {err}");
    }
}

#[test]
fn set_overrides_one_run() {
    // Quiet hours off: the night's deferred SMS become due.
    let (_, out, _) = shipped(NIGHT, &["--set", "sms.quiet_hours=", "--format", "json"]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["channels"][1]["due"], 21);
    // Only email: no SMS column in the report at all.
    let (_, out, _) = shipped(
        MIDDAY,
        &["--set", "campaign.channels=[\"email\"]", "--format", "json"],
    );
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["channels"].as_array().unwrap().len(), 1);
    // Consent not required: everyone with an address gets the message.
    let (_, out, _) = shipped(
        MIDDAY,
        &[
            "--set",
            "campaign.require_consent=false",
            "--format",
            "json",
        ],
    );
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert!(v["channels"][0]["skipped"].get("no_consent").is_none());
}

#[test]
fn set_paths_are_relative_to_the_current_directory() {
    let f = Fixture::email_only(&format!(
        "{HEADER}\nP1,Ann,Lee,ann@example.com,,email,yes,,\n"
    ));
    f.write(
        "elsewhere/other.csv",
        &format!(
            "{HEADER}\nP1,Bo,Ng,bo@example.com,,email,yes,,\nP2,Cy,Ng,cy@example.com,,email,yes,,\n"
        ),
    );
    let (code, out, err) = f.run(&[
        "check",
        "campaign.toml",
        "--set",
        "contacts.path=elsewhere/other.csv",
        "--format",
        "json",
    ]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["rows"], 2);
}

#[test]
fn set_errors_name_the_argument() {
    let cases = [
        (
            "campaign.id=other",
            "--set campaign.id=other: the campaign id cannot be overridden",
        ),
        (
            "email.fro=x",
            "--set email.fro=x: `email.fro`: unknown field `fro`",
        ),
        (
            "sending.concurrency=lots",
            "--set sending.concurrency=lots: `sending.concurrency`: invalid type",
        ),
        ("nonsense", "--set nonsense: expected KEY=VALUE"),
        (
            "email.smtp.password=hunter2",
            "secrets are never taken from the command line",
        ),
    ];
    for (arg, want) in cases {
        let (code, out, err) = shipped(MIDDAY, &["--set", arg]);
        assert_eq!(code, 2, "{arg}");
        assert_eq!(out, "", "{arg}");
        assert!(
            err.starts_with("error: ") && err.contains(want),
            "{arg}: {err}"
        );
        assert!(!err.contains("hunter2"), "a secret was echoed: {err}");
    }
}

/// The shipped campaign file with one line replaced.
fn edited_campaign(from: &str, to: &str) -> Fixture {
    let f = Fixture::new(&format!(
        "{HEADER}\nP1,Ann,Lee,ann@example.com,,email,yes,,\n"
    ));
    let text = f.read("campaign.toml");
    assert!(text.contains(from), "{from}");
    f.write("campaign.toml", &text.replacen(from, to, 1));
    f
}

fn line_of(f: &Fixture, needle: &str) -> usize {
    f.read("campaign.toml")
        .lines()
        .position(|l| l.contains(needle))
        .unwrap()
        + 1
}

#[test]
fn campaign_file_errors_name_key_and_line() {
    let cases: &[(&str, &str, &str, &str)] = &[
        // (replace, with, the line to expect it on, message)
        (
            "reply_to =",
            "reply_too =",
            "reply_too",
            "`email.reply_too`: unknown field `reply_too`, expected one of",
        ),
        (
            "region = \"US\"",
            "region = 1",
            "region = 1",
            "`clinic.region`: invalid type: integer `1`, expected a string",
        ),
        (
            "region = \"US\"",
            "region = \"USA\"",
            "region = \"USA\"",
            "`clinic.region`: \"USA\" is not an ISO 3166 region code",
        ),
        (
            "timezone = \"America/Chicago\"",
            "timezone = \"America/Chicgo\"",
            "Chicgo",
            "`clinic.timezone`: \"America/Chicgo\" is not an IANA time zone",
        ),
        (
            "phone = \"+1 312 555 0100\"",
            "phone = \"555-010-1234\"",
            "555-010-1234",
            "`clinic.phone`: \"555-010-1234\" is not a valid phone number",
        ),
        (
            "booking_url = \"https://riverside.example/book\"",
            "booking_url = \"riverside.example/book\"",
            "booking_url",
            "`clinic.booking_url`: \"riverside.example/book\" is not an http(s) URL",
        ),
        (
            "channels = [\"email\", \"sms\"]",
            "channels = [\"email\", \"fax\"]",
            "fax",
            "`campaign.channels`: unknown channel \"fax\"",
        ),
        (
            "from = \"Riverside Physio <care@riverside.example>\"",
            "from = \"Riverside Physio care@\"",
            "care@\"",
            "`email.from`:",
        ),
        (
            "unsubscribe_url = \"https://riverside.example/unsubscribe?t={{token}}\"",
            "unsubscribe_url = \"https://riverside.example/unsubscribe\"",
            "unsubscribe_url",
            "must contain {{token}}",
        ),
        (
            "outbox = \"outbox/sms.jsonl\"",
            "outbox = \"outbox/sms.jsonl\"\nquiet_hours = \"9pm-8am\"",
            "quiet_hours",
            "`sms.quiet_hours`: \"9pm\" is not a time of day",
        ),
        (
            "outbox = \"outbox/sms.jsonl\"",
            "outbox = \"outbox/sms.jsonl\"\npassword = \"hunter2\"",
            "password",
            "`sms.password`: secrets are never read from the campaign file",
        ),
    ];
    for (from, to, on, want) in cases {
        let f = edited_campaign(from, to);
        let (code, out, err) = f.run(&["check", "campaign.toml"]);
        let line = line_of(&f, on);
        assert_eq!(code, 2, "{to}: {err}");
        assert_eq!(out, "");
        let prefix = format!("error: campaign.toml:{line}");
        assert!(err.starts_with(&prefix), "{to}: want {prefix}…, got {err}");
        assert!(err.contains(want), "{to}: want {want:?} in {err}");
        assert!(!err.contains("hunter2"));
    }
}

#[test]
fn plain_smtp_is_refused_off_loopback() {
    let extra = "[email.smtp]\nhost = \"smtp.example.net\"\ntls = \"none\"\n";
    let f = Fixture::new(&format!("{HEADER}\n"));
    f.write(
        "campaign.toml",
        &common::campaign_toml(extra).replace("[email]\n", "[email]\ntransport = \"smtp\"\n"),
    );
    let (code, _, err) = f.run(&["check", "campaign.toml"]);
    assert_eq!(code, 2);
    assert!(
        err.contains("`email.smtp.tls`: \"none\" sends patient data in clear text"),
        "{err}"
    );
    let (code, _, err) = f.run(&[
        "check",
        "campaign.toml",
        "--set",
        "email.smtp.host=127.0.0.1",
    ]);
    assert_eq!(code, 0, "{err}");
}

#[test]
fn missing_files_are_errors_naming_them() {
    let f = Fixture::new(&format!("{HEADER}\n"));
    std::fs::remove_file(f.path("contacts.csv")).unwrap();
    let (code, _, err) = f.run(&["check", "campaign.toml"]);
    assert_eq!(code, 2);
    assert!(
        err.contains("contacts.csv") && err.contains("No such file"),
        "{err}"
    );

    let f = Fixture::new(&format!("{HEADER}\n"));
    std::fs::remove_file(f.path("templates/sms.txt.hbs")).unwrap();
    let (code, _, err) = f.run(&["check", "campaign.toml"]);
    assert_eq!(code, 2);
    assert!(
        err.contains("sms.txt.hbs: template missing (sms is enabled)"),
        "{err}"
    );
    // Without SMS, the SMS template is not needed.
    let (code, _, err) = f.run(&[
        "check",
        "campaign.toml",
        "--set",
        "campaign.channels=[\"email\"]",
    ]);
    assert_eq!(code, 0, "{err}");

    let (code, _, err) = f.run(&["check", "nope.toml"]);
    assert_eq!(code, 2);
    assert!(err.contains("cannot read campaign file nope.toml"), "{err}");
}

#[test]
fn template_syntax_error_names_file_line_and_column() {
    let f = Fixture::new(&format!(
        "{HEADER}\nP1,Ann,Lee,ann@example.com,,email,yes,,\n"
    ));
    f.write(
        "templates/email.txt.hbs",
        "Hello\n{{#if contact.first_name}}\nunclosed\n",
    );
    let (code, _, err) = f.run(&["check", "campaign.toml"]);
    assert_eq!(code, 2);
    assert!(err.contains("templates/email.txt.hbs:"), "{err}");
}

#[test]
fn a_column_the_csv_lacks_is_an_error_before_anything_runs() {
    let f = Fixture::email_only(&format!(
        "{HEADER}\nP1,Ann,Lee,ann@example.com,,email,yes,,\n"
    ));
    f.write(
        "templates/subject.hbs",
        "\n{{contact.clinician}} wants to see you",
    );
    let (code, out, err) = f.run(&["check", "campaign.toml"]);
    assert_eq!((code, out.as_str()), (2, ""));
    assert!(
        err.contains("templates/subject.hbs:2: `contact.clinician` is not a column of"),
        "{err}"
    );
    // With a fallback it runs, and says every contact gets the fallback.
    f.write(
        "templates/subject.hbs",
        "{{default contact.clinician \"Your physio\"}} wants to see you",
    );
    let (code, out, err) = f.run(&["check", "campaign.toml"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("`contact.clinician` is not a column"), "{out}");
}

#[test]
fn an_empty_value_without_fallback_is_a_row_error() {
    let f = Fixture::email_only(&format!(
        "{HEADER}\nP1,Ann,Lee,ann@example.com,,email,yes,,\nP2,,Ng,bo@example.com,,email,yes,,\n"
    ));
    f.write("templates/subject.hbs", "Hi {{contact.first_name}}");
    let (code, out, _) = f.run(&["check", "campaign.toml"]);
    assert_eq!(code, 0);
    assert!(
        out.contains("contacts.csv:3 P2: subject.hbs line 1: `contact.first_name` is empty or missing for this contact and the template gives no fallback"),
        "{out}"
    );
    assert!(out.contains("due now                      1"), "{out}");
    let (code, _, _) = f.run(&["check", "campaign.toml", "--strict"]);
    assert_eq!(code, 2);
}

#[test]
fn every_bad_row_is_listed_and_the_rest_go() {
    let csv = format!(
        "{HEADER}\n\
         P1,Ann,Lee,ann@example.com,(312) 555-0101,,yes,yes,\n\
         P2,Bo,Ng,bo@example.com,(312) 555-0102,,maybe,yes,\n\
         P3,Cy,Ox,cy@example.com,(312) 555-0103,,yes,yes,Mars/Olympus\n\
         P4,Di,Po,di@example.com,(312) 555-0104,fax,yes,yes,\n\
         P5,Ed,Qu,ed@example.com\n\
         P6,Fa,Ru,fa@example..com,312 555 01,,yes,yes,\n\
         P7,Gi,Su,gi@example.com,(312) 555-0107,,2025-02-30,yes,\n"
    );
    let f = Fixture::new(&csv);
    let (code, out, _) = f.run(&["check", "campaign.toml", "--format", "json"]);
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let errors: Vec<(u64, String, String, Vec<String>)> = v["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["line"].as_u64().unwrap(),
                e["contact"].as_str().unwrap().to_string(),
                e["field"].as_str().unwrap_or("").to_string(),
                e["channels"]
                    .as_array()
                    .map(|a| a.iter().map(|c| c.as_str().unwrap().to_string()).collect())
                    .unwrap_or_default(),
            )
        })
        .collect();
    let s = |x: &str| x.to_string();
    assert_eq!(
        errors,
        vec![
            (3, s("P2"), s("email_consent"), vec![s("email")]),
            (4, s("P3"), s("timezone"), vec![s("sms")]),
            (5, s("P4"), s("channel"), vec![s("email"), s("sms")]),
            (6, s("P5"), s("row"), vec![s("email"), s("sms")]),
            (7, s("P6"), s("email"), vec![s("email")]),
            (7, s("P6"), s("phone"), vec![s("sms")]),
            (8, s("P7"), s("email_consent"), vec![s("email")]),
        ]
    );
    // The good parts still go: P1 both, P2's SMS, P3's email, P7's SMS.
    assert_eq!(v["channels"][0]["due"], 2);
    assert_eq!(v["channels"][1]["due"], 3);
    assert_eq!(v["rows_with_problems"], 6);
}

#[test]
fn consent_and_channel_rules() {
    let csv = format!(
        "{HEADER}\n\
         P1,Ann,Lee,ann@example.com,(312) 555-0101,email,yes,yes,\n\
         P2,Bo,Ng,bo@example.com,(312) 555-0102,sms,yes,yes,\n\
         P3,Cy,Ox,cy@example.com,(312) 555-0103,both,n,0,\n\
         P4,Di,Po,,,,yes,yes,\n\
         P5,Ed,Qu,ed@example.com,(312) 555-0105,,2024-01-31,X,\n"
    );
    let f = Fixture::new(&csv);
    f.write(
        "opt-outs.csv",
        "address,reason\nED@example.com,unsubscribed\n",
    );
    let (_, out, _) = f.run(&["check", "campaign.toml", "--format", "json"]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let email = &v["channels"][0];
    let sms = &v["channels"][1];
    assert_eq!(email["due"], 1, "{email}"); // P1
    assert_eq!(sms["due"], 2, "{sms}"); // P2, P5
    assert_eq!(
        email["skipped"],
        serde_json::json!({"not_chosen": 1, "no_consent": 1, "no_address": 1, "suppressed": 1})
    );
    assert_eq!(
        sms["skipped"],
        serde_json::json!({"not_chosen": 1, "no_consent": 1, "no_address": 1})
    );
}

/// The `Warnings (N):` section of a text report, up to the blank line after it.
fn warnings_section(out: &str) -> &str {
    let start = out
        .find("Warnings (")
        .unwrap_or_else(|| panic!("no warnings: {out}"));
    let len = out[start..].find("\n\n").unwrap();
    &out[start..start + len + 1]
}

#[test]
fn sms_in_ucs2_is_reported_with_the_characters_that_force_it() {
    // The en dash is the template's, in every SMS: said once, on the template. María's í is
    // hers: said on her row, alone. Ann brings nothing: no warning on her row.
    let f = Fixture::sms_only(&format!(
        "{HEADER}\nP1,María,Lee,,(312) 555-0101,sms,,yes,\nP2,Ann,Lee,,(312) 555-0102,sms,,yes,\n"
    ));
    f.write("templates/sms.txt.hbs", "{{clinic.name}}: Hi {{default contact.first_name \"there\"}} – book now. Reply STOP to opt out");
    let (code, out, _) = f.run(&["check", "campaign.toml"]);
    assert_eq!(code, 0);
    assert_eq!(
        warnings_section(&out),
        "Warnings (2):\n  \
         templates/sms.txt.hbs: every SMS from this template is UCS-2 (70 characters a segment, \
         67 when split) because of – (U+2013 EN DASH) in the text it writes for every contact\n  \
         contacts.csv:2 P1: SMS is UCS-2 (70 characters a segment) because of í (U+00ED LATIN \
         SMALL LETTER I WITH ACUTE) [sms]\n"
    );
    // With smart encoding the dash is a hyphen: nothing of the template's is left to say, and
    // María's í is.
    f.write(
        "campaign.toml",
        &common::campaign_toml_on(&["sms"], "smart_encoding = true"),
    );
    let (code, out, _) = f.run(&["check", "campaign.toml"]);
    assert_eq!(code, 0);
    assert_eq!(
        warnings_section(&out),
        "Warnings (1):\n  \
         contacts.csv:2 P1: SMS is UCS-2 (70 characters a segment) because of í (U+00ED LATIN \
         SMALL LETTER I WITH ACUTE) [sms]\n"
    );
}

#[test]
fn a_template_forcing_ucs2_is_warned_once_and_a_row_only_for_what_it_brings() {
    // Twelve rows of a Spanish template: the ó is said once, naming the file; of the rows only
    // the one whose name adds an emoji (not in the template) is warned, about the emoji only.
    let mut csv = format!("{HEADER}\n");
    for i in 1..=12 {
        let name = if i == 5 { "Ana 🌷" } else { "Ana" };
        csv.push_str(&format!("P{i},{name},Ruiz,,(312) 555-01{i:02},sms,,yes,\n"));
    }
    let f = Fixture::sms_only(&csv);
    f.write(
        "templates/sms.txt.hbs",
        "{{clinic.name}}: Hola {{default contact.first_name \"\"}}. Evaluación gratis.",
    );
    let (code, out, _) = f.run(&["check", "campaign.toml"]);
    assert_eq!(code, 0, "{out}");
    assert_eq!(
        warnings_section(&out),
        "Warnings (2):\n  \
         templates/sms.txt.hbs: every SMS from this template is UCS-2 (70 characters a segment, \
         67 when split) because of ó (U+00F3 LATIN SMALL LETTER O WITH ACUTE) in the text it \
         writes for every contact\n  \
         contacts.csv:6 P5: SMS is UCS-2 (70 characters a segment) because of 🌷 (U+1F337) [sms]\n"
    );
    // The preview of one message still gives the whole reason, the template's ó included.
    let (code, out, err) = f.run(&["preview", "campaign.toml", "--contact", "P5"]);
    assert_eq!((code, err.as_str()), (0, ""));
    assert!(
        out.contains(
            "\nwarning: SMS is UCS-2 (70 characters a segment) because of 🌷 (U+1F337), ó (U+00F3 \
             LATIN SMALL LETTER O WITH ACUTE)\n"
        ),
        "{out}"
    );
    let (_, out, _) = f.run(&["preview", "campaign.toml", "--contact", "P1"]);
    assert!(
        out.contains(
            "\nwarning: SMS is UCS-2 (70 characters a segment) because of ó (U+00F3 LATIN SMALL \
             LETTER O WITH ACUTE)\n"
        ),
        "{out}"
    );
}

#[test]
fn a_warning_many_rows_share_is_one_finding_with_the_count_and_first_lines() {
    // Eleven rows with the same 3-segment SMS (more than ten: one finding), one row whose name
    // makes it longer (its own line), in text and JSON.
    let mut csv = format!("{HEADER}\n");
    for i in 1..=12 {
        let name = if i == 12 { "Maximiliana" } else { "Ana" };
        csv.push_str(&format!("P{i},{name},Ruiz,,(312) 555-01{i:02},sms,,yes,\n"));
    }
    let f = Fixture::sms_only(&csv);
    f.write(
        "templates/sms.txt.hbs",
        "Hola {{contact.first_name}}: ¿dolor lumbar? Evaluación telefónica y plan de tratamiento \
         GRATIS en Riverside Physio: https://riverside.example/book o al +1 312 555 0100. \
         Responda STOP para cancelar",
    );
    let (code, out, _) = f.run(&["check", "campaign.toml"]);
    assert_eq!(code, 0, "{out}");
    assert_eq!(
        warnings_section(&out),
        "Warnings (3):\n  \
         templates/sms.txt.hbs: every SMS from this template is UCS-2 (70 characters a segment, \
         67 when split) because of ó (U+00F3 LATIN SMALL LETTER O WITH ACUTE) in the text it \
         writes for every contact\n  \
         contacts.csv: SMS is 3 segments (177 UCS-2 units) [sms]: 11 rows (lines 2, 3, 4, 5, 6, …)\n  \
         contacts.csv:13 P12: SMS is 3 segments (185 UCS-2 units) [sms]\n"
    );
    let (code, out, _) = f.run(&["check", "campaign.toml", "--format", "json"]);
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let warnings = v["warnings"].as_array().unwrap();
    assert_eq!(warnings.len(), 3, "{out}");
    let mut shared = warnings[1].clone();
    assert!(
        shared["file"].as_str().unwrap().ends_with("contacts.csv"),
        "{shared}"
    );
    shared.as_object_mut().unwrap().remove("file");
    assert_eq!(
        shared,
        serde_json::json!({
            "channels": ["sms"],
            "message": "SMS is 3 segments (177 UCS-2 units)",
            "rows": 11,
            "lines": [2, 3, 4, 5, 6],
        })
    );
    let mut own = warnings[2].clone();
    own.as_object_mut().unwrap().remove("file");
    assert_eq!(
        own,
        serde_json::json!({
            "line": 13,
            "contact": "P12",
            "channels": ["sms"],
            "message": "SMS is 3 segments (185 UCS-2 units)",
        })
    );
}

#[test]
fn sms_over_max_segments_is_an_error_for_that_contact() {
    let f = Fixture::sms_only(&format!("{HEADER}\nP1,Ann,Lee,,(312) 555-0101,sms,,yes,\n"));
    f.write("templates/sms.txt.hbs", &"Psoas! ".repeat(70));
    let (code, out, _) = f.run(&["check", "campaign.toml"]);
    assert_eq!(code, 0);
    assert!(
        out.contains("contacts.csv:2 P1: SMS is 4 segments, over sms.max_segments = 3 [sms]"),
        "{out}"
    );
    assert!(out.contains("due now                      0"), "{out}");
}

#[test]
fn quiet_hours_use_the_patients_own_zone() {
    let csv = format!(
        "{HEADER}\n\
         P1,Ann,Lee,,(312) 555-0101,sms,,yes,America/Chicago\n\
         P2,Bo,Ng,,(312) 555-0102,sms,,yes,Pacific/Honolulu\n\
         P3,Cy,Ox,,(312) 555-0103,sms,,yes,Europe/London\n"
    );
    let f = Fixture::sms_only(&csv);
    // 04:00 UTC: 22:00 Chicago (quiet), 18:00 Honolulu (not), 04:00 London (quiet).
    let mut c = f.cmd(&["check", "campaign.toml", "--format", "json"]);
    c.env("OUTREACH_NOW", "2026-11-25T04:00:00Z");
    let (_, out, _) = run(c);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["channels"][0]["channel"], "sms");
    assert_eq!(v["channels"][0]["due"], 1);
    assert_eq!(v["channels"][0]["deferred"]["quiet_hours"], 2);
}

#[test]
fn bad_clock_override_is_a_clear_error() {
    let f = Fixture::new(&format!("{HEADER}\n"));
    let mut c = f.cmd(&["check", "campaign.toml"]);
    c.env("OUTREACH_NOW", "tomorrow");
    let (code, _, err) = run(c);
    assert_eq!(code, 2);
    assert!(
        err.contains("OUTREACH_NOW=\"tomorrow\" is not an RFC 3339 time"),
        "{err}"
    );
}

#[test]
fn help_lists_exit_codes() {
    let (code, out, _) = run({
        let mut c = outreach();
        c.args(["check", "--help"]);
        c
    });
    assert_eq!(code, 0);
    assert!(
        out.contains("Exit codes:") && out.contains("4  another run"),
        "{out}"
    );
}

#[test]
fn a_short_token_key_is_named_with_what_to_do() {
    // What a run killed while creating the key could leave before: refused, never used.
    let f = Fixture::email_only(&format!(
        "{HEADER}\nP1,Ann,Lee,ann@example.com,,email,yes,,\n"
    ));
    f.write_bytes(".outreach/unsubscribe.key", b"short");
    let (code, out, err) = f.run(&["check", "campaign.toml"]);
    assert_eq!(code, 2, "{out}{err}");
    assert!(
        err.contains("unsubscribe.key: 5 bytes, not a 32-byte key")
            && err.contains("delete it and run again"),
        "{err}"
    );
    // A first run leaves a whole key and nothing else beside it.
    std::fs::remove_file(f.path(".outreach/unsubscribe.key")).unwrap();
    let (code, out, err) = f.run(&["check", "campaign.toml"]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(
        std::fs::read(f.path(".outreach/unsubscribe.key"))
            .unwrap()
            .len(),
        32
    );
    let names: Vec<String> = std::fs::read_dir(f.path(".outreach"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(!names.iter().any(|n| n.ends_with(".tmp")), "{names:?}");
}

#[test]
fn the_readme_shows_what_check_prints() {
    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap();
    let intro = "`check` prints, for the shipped campaign on a fresh checkout at midday";
    let after = &readme[readme.find(intro).expect("the README's check sample")..];
    let start = after.find("```\n").unwrap() + 4;
    let sample = &after[start..start + after[start..].find("```\n").unwrap()];
    let (code, out, err) = shipped(MIDDAY, &[]);
    assert_eq!((code, err.as_str()), (0, ""));
    assert_eq!(out, sample);
}
