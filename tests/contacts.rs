//! Contacts files as real exports write them, through the real binary: each dialect reads the same
//! patients; each unusable file stops with file and line; encodings are decoded or refused, never
//! garbled.

use crate::common::{Fixture, HEADER};

/// The same three patients in a plain file, as `check --format json` reports them.
fn report(f: &Fixture, extra: &[&str]) -> (i32, serde_json::Value, String) {
    let mut args = vec!["check", "campaign.toml", "--format", "json"];
    args.extend_from_slice(extra);
    let (code, out, err) = f.run(&args);
    let v = serde_json::from_str(&out).unwrap_or(serde_json::Value::Null);
    (code, v, err)
}

fn preview_names(f: &Fixture) -> String {
    let (code, out, err) = f.run(&[
        "preview",
        "campaign.toml",
        "--contact",
        "P3",
        "--channel",
        "sms",
    ]);
    assert_eq!(code, 0, "{err}");
    out.lines().next().unwrap().to_string()
}

const PLAIN: &str = "id,first_name,last_name,email,phone,channel,email_consent,sms_consent,timezone\n\
P1,Ann,Lee,ann@example.com,(312) 555-0101,,yes,yes,\n\
P2,Bo,\"Ng, Jr.\",bo@example.com,312.555.0102,,yes,yes,America/New_York\n\
P3,María,O'Brien & Sons,maria@example.com,+1 312 555 0103,,yes,yes,\n";

fn assert_same_patients(f: &Fixture) {
    let (code, v, err) = report(f, &["--strict"]);
    assert_eq!(code, 0, "{err} {v}");
    assert_eq!(v["rows"], 3, "{v}");
    assert_eq!(v["valid_rows"], 3, "{v}");
    assert_eq!(v["channels"][0]["due"], 3);
    assert_eq!(v["channels"][1]["due"], 3);
    assert_eq!(
        preview_names(f),
        "Contact P3 (line 4): María O'Brien & Sons"
    );
}

#[test]
fn plain_utf8() {
    assert_same_patients(&Fixture::new(PLAIN));
}

#[test]
fn excel_utf8_with_bom_crlf_and_semicolons() {
    let text = PLAIN
        .replace(',', ";")
        .replace("\"Ng; Jr.\"", "\"Ng, Jr.\"")
        .replace('\n', "\r\n");
    let f = Fixture::new("");
    f.write_bytes(
        "contacts.csv",
        &[
            b"\xEF\xBB\xBF".as_slice(),
            text.as_bytes(),
            b"\r\n;;;;;;;;\r\n\r\n",
        ]
        .concat(),
    );
    assert_same_patients(&f);
    let (_, v, _) = report(&f, &[]);
    assert_eq!(v["delimiter"], ";");
}

#[test]
fn tab_separated_with_stray_spaces_and_blank_lines() {
    let text = PLAIN
        .replace(',', " \t ")
        .replace("\"Ng \t  Jr.\"", "\"Ng, Jr.\"")
        .replace("\nP2", "\n\n\nP2");
    let f = Fixture::new(&text);
    let (code, v, err) = report(&f, &["--strict"]);
    assert_eq!(code, 0, "{err} {v}");
    assert_eq!(v["delimiter"], "tab");
    assert_eq!(v["valid_rows"], 3);
    // Line numbers count the blank lines.
    let (_, out, _) = f.run(&["preview", "campaign.toml", "--contact", "P3"]);
    assert!(
        out.starts_with("Contact P3 (line 6): María O'Brien & Sons"),
        "{out}"
    );
}

#[test]
fn quoted_fields_with_newlines_keep_line_numbers() {
    let text = format!(
        "{HEADER},notes\nP1,Ann,Lee,ann@example.com,,email,yes,,,\"first line\nsecond, line\"\nP2,Bo,Ng,not-an-email,,email,yes,,,\n"
    );
    let f = Fixture::email_only(&text);
    let (_, v, _) = report(&f, &[]);
    assert_eq!(v["errors"][0]["line"], 4, "{v}");
    assert_eq!(v["errors"][0]["contact"], "P2");
}

#[test]
fn windows_1252_export_is_decoded_and_flagged() {
    let (bytes, _, _) = encoding_rs::WINDOWS_1252.encode(PLAIN);
    let f = Fixture::new("");
    f.write_bytes("contacts.csv", &bytes);
    let (code, v, _) = report(&f, &[]);
    assert_eq!(code, 0);
    assert_eq!(v["encoding"], "windows-1252");
    let w = &v["warnings"][0];
    assert_eq!(w["line"], 4);
    assert!(
        w["message"]
            .as_str()
            .unwrap()
            .contains("read as Windows-1252"),
        "{w}"
    );
    assert!(
        w["message"].as_str().unwrap().contains("María"),
        "the warning shows the decoded name: {w}"
    );
    assert_eq!(
        preview_names(&f),
        "Contact P3 (line 4): María O'Brien & Sons"
    );
    // Naming the encoding silences the warning.
    let (_, v, _) = report(&f, &["--set", "contacts.encoding=windows-1252"]);
    assert_eq!(v["warnings"], serde_json::json!([]));
}

#[test]
fn utf16_with_bom_is_decoded() {
    let mut bytes = vec![0xFF, 0xFE];
    for unit in PLAIN.encode_utf16() {
        bytes.extend_from_slice(&unit.to_le_bytes());
    }
    let f = Fixture::new("");
    f.write_bytes("contacts.csv", &bytes);
    assert_same_patients(&f);
}

#[test]
fn an_encoding_that_cannot_be_told_apart_is_refused_with_its_line() {
    // Shift_JIS bytes: neither UTF-8 nor Windows-1252. Guessing would garble the name.
    let text = format!(
        "{HEADER}\nP1,Ann,Lee,ann@example.com,,email,yes,,\nP2,山田,花子,hanako@example.com,,email,yes,,\n"
    );
    let (bytes, _, _) = encoding_rs::SHIFT_JIS.encode(&text);
    let f = Fixture::email_only("");
    f.write_bytes("contacts.csv", &bytes);
    let (code, out, err) = f.run(&["check", "campaign.toml"]);
    assert_eq!((code, out.as_str()), (2, ""));
    assert!(err.starts_with("error: "), "{err}");
    assert!(
        err.contains("contacts.csv:3: not valid UTF-8 (it looks like Shift_JIS)"),
        "{err}"
    );
    // Told the encoding, it reads the file.
    let (code, _, err) = f.run(&[
        "check",
        "campaign.toml",
        "--set",
        "contacts.encoding=shift_jis",
    ]);
    assert_eq!(code, 0, "{err}");
    // A declared encoding that the bytes break is refused at the line.
    let (code, _, err) = f.run(&["check", "campaign.toml", "--set", "contacts.encoding=utf-8"]);
    assert_eq!(code, 2);
    assert!(
        err.contains("contacts.csv:3: bytes that are not valid UTF-8"),
        "{err}"
    );
}

#[test]
fn header_mapping_for_real_exports() {
    let text = "Patient ID,Given Name,Family Name,E-mail Address,Mobile,Email OK,Text OK\n\
                P1,Ann,Lee,Ann.Lee@Example.com,(312) 555-0101,Y,Y\n";
    let f = Fixture::new(text);
    let campaign = f.read("campaign.toml").replace(
        "suppress = [\"opt-outs.csv\"]\n",
        "suppress = [\"opt-outs.csv\"]\n[contacts.columns]\nid = \"Patient ID\"\nfirst_name = \"Given Name\"\nlast_name = \"Family Name\"\nemail = \"E-mail Address\"\nphone = \"Mobile\"\nemail_consent = \"Email OK\"\nsms_consent = \"Text OK\"\n",
    );
    f.write("campaign.toml", &campaign);
    let (code, v, err) = report(&f, &["--strict"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(v["channels"][0]["due"], 1);
    assert_eq!(v["channels"][1]["due"], 1);
    let (_, out, _) = f.run(&[
        "preview",
        "campaign.toml",
        "--contact",
        "ann.lee@example.com",
        "--channel",
        "email",
    ]);
    assert!(
        out.contains("=== email to Ann.Lee@Example.com: due ==="),
        "{out}"
    );
    assert!(
        out.contains("To: \"Ann Lee\" <Ann.Lee@Example.com>"),
        "{out}"
    );

    // A mapping to a header the file does not have.
    f.write("campaign.toml", &campaign.replace("\"Mobile\"", "\"Cell\""));
    let (code, out, err) = f.run(&["check", "campaign.toml"]);
    assert_eq!((code, out.as_str()), (2, ""));
    assert!(
        err.contains("contacts.csv:1: contacts.columns.phone = \"Cell\": no such column"),
        "{err}"
    );
}

#[test]
fn unusable_files_stop_with_file_and_line() {
    let cases: &[(&str, &str)] = &[
        (
            "",
            "contacts.csv:1: the file is empty: expected a header row",
        ),
        ("\n\n", "contacts.csv:1: the file is empty"),
        (
            "id,name,notes\nP1,Ann,x\n",
            "contacts.csv:1: no `email` or `phone` column (the header has: id, name, notes)",
        ),
        (
            "id,Email,EMAIL\nP1,a@example.com,b@example.com\n",
            "contacts.csv:1: columns 2 and 3 are both named \"EMAIL\"",
        ),
    ];
    for (text, want) in cases {
        let f = Fixture::new(text);
        let (code, out, err) = f.run(&["check", "campaign.toml"]);
        assert_eq!((code, out.as_str()), (2, ""), "{text:?}");
        assert!(err.contains(want), "{text:?}: want {want:?}, got {err}");
    }
}

#[test]
fn suppression_lists_in_either_form() {
    let f = Fixture::new(PLAIN);
    f.write(
        "opt-outs.csv",
        "address,reason,date\nANN@example.com,unsubscribed,2025-01-01\n",
    );
    f.write(
        "stop.txt",
        "# STOP replies\n+1 (312) 555-0102\nnot a number\n",
    );
    let campaign = f.read("campaign.toml").replace(
        "suppress = [\"opt-outs.csv\"]",
        "suppress = [\"opt-outs.csv\", \"stop.txt\"]",
    );
    f.write("campaign.toml", &campaign);
    let (code, v, _) = report(&f, &[]);
    assert_eq!(code, 0);
    assert_eq!(v["suppressed_addresses"], 2);
    assert_eq!(v["channels"][0]["skipped"]["suppressed"], 1);
    assert_eq!(v["channels"][1]["skipped"]["suppressed"], 1);
    let w = &v["warnings"][0];
    assert_eq!(w["line"], 3, "{v}");
    assert!(
        w["message"]
            .as_str()
            .unwrap()
            .contains("\"not a number\" is neither a valid email nor a valid phone number")
    );
    let (_, out, _) = f.run(&[
        "preview",
        "campaign.toml",
        "--contact",
        "P2",
        "--channel",
        "sms",
    ]);
    assert!(out.contains("skipped: suppressed (stop.txt:2)"), "{out}");
}

#[test]
fn usual_export_spellings_are_read_as_their_fields() {
    // Without a [contacts.columns] table: before, `E-mail` passed `check --strict` with every
    // email skipped as "no address".
    let text = "Patient ID,Given name,Surname,E-mail,Cell,Email Opt In,Text Consent\n\
                P1,Ann,Lee,ann@example.com,(312) 555-0101,yes,yes\n\
                P2,Bo,Ng,bo@example.com,(312) 555-0102,yes,no\n";
    let f = Fixture::new(text);
    let (code, v, err) = report(&f, &["--strict"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(v["channels"][0]["due"], 2, "{v}");
    assert_eq!(v["channels"][1]["due"], 1, "{v}");
    assert_eq!(v["read_as"]["E-mail"], "email", "{v}");
    assert_eq!(v["read_as"]["Cell"], "phone", "{v}");
    assert_eq!(v["read_as"]["Given name"], "first_name", "{v}");
    let (_, out, _) = f.run(&["check", "campaign.toml"]);
    assert!(
        out.contains(
            "Columns read by their usual spelling: \"Cell\" as phone, \"E-mail\" as email, \
             \"Email Opt In\" as email_consent, \"Given name\" as first_name, \"Patient ID\" as \
             id, \"Surname\" as last_name, \"Text Consent\" as sms_consent\n"
        ),
        "{out}"
    );
    let (code, out, err) = f.run(&["preview", "campaign.toml", "--contact", "P1"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("=== email to ann@example.com: due ==="),
        "{out}"
    );
    assert!(out.contains("Hi Ann"), "{out}");
    // Two spellings of one field: which one is the clinic's to say.
    f.write(
        "contacts.csv",
        "id,email,Mobile,Phone Number\nP1,ann@example.com,(312) 555-0101,(312) 555-0199\n",
    );
    let (code, out, err) = f.run(&["check", "campaign.toml"]);
    assert_eq!((code, out.as_str()), (2, ""), "{err}");
    assert_eq!(
        err,
        "error: contacts.csv:1: columns \"Mobile\" and \"Phone Number\" could both be `phone`; \
         say which in the campaign file: [contacts.columns] phone = \"Mobile\"\n"
    );
}

#[test]
fn an_enabled_channel_nobody_can_be_reached_on_stops_check_and_send() {
    // `Correo` is no spelling of email: its cells show what it holds.
    let text = "id,first_name,Correo,phone,sms_consent,email_consent\n\
                P1,Ann,ann@example.com,(312) 555-0101,yes,yes\n\
                P2,Bo,bo@example.com,(312) 555-0102,yes,yes\n";
    let f = Fixture::new(text);
    for args in [
        &["check", "campaign.toml"][..],
        &["check", "campaign.toml", "--strict"],
        &["send", "campaign.toml"],
        &["preview", "campaign.toml", "--out", "pv"],
    ] {
        let (code, out, err) = f.run(args);
        assert_eq!((code, out.as_str()), (2, ""), "{args:?}: {err}");
        assert_eq!(
            err,
            "error: contacts.csv:1: email is enabled but the file has no `email` column, so \
             every email would be skipped (the header has: id, first_name, Correo, phone, \
             sms_consent, email_consent); the closest is \"Correo\" (2 of its first 2 cells are \
             email addresses): add to the campaign file\n  [contacts.columns]\n  email = \
             \"Correo\"\nor, if this campaign sends no email, leave it out of `channels` in \
             [campaign]\n",
            "{args:?}"
        );
    }
    assert!(!f.path("outbox").exists(), "nothing was sent");
    // A run limited to the other channel is not stopped by it.
    let (code, out, err) = f.run(&["send", "campaign.toml", "--channel", "sms"]);
    assert_eq!(code, 0, "{out}{err}");
    // The line it gives fixes it.
    let campaign = f.read("campaign.toml").replace(
        "suppress = [\"opt-outs.csv\"]\n",
        "suppress = [\"opt-outs.csv\"]\n[contacts.columns]\nemail = \"Correo\"\n",
    );
    f.write("campaign.toml", &campaign);
    let (code, v, err) = report(&f, &["--strict"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(v["channels"][0]["due"], 2, "{v}");
}

#[test]
fn an_address_column_empty_on_every_row_is_named_with_the_likeliest_one() {
    // The export has an empty `phone` column and the numbers under "Home Tel".
    let text = "id,first_name,email,phone,Home Tel,sms_consent,email_consent\n\
                P1,Ann,ann@example.com,,(312) 555-0101,yes,yes\n\
                P2,Bo,bo@example.com,,(312) 555-0102,yes,yes\n";
    let f = Fixture::new(text);
    let (code, _, err) = f.run(&["check", "campaign.toml"]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.starts_with(
            "error: contacts.csv:1: sms is enabled but its `phone` column (\"phone\") is empty \
             on every row, so every SMS would be skipped (the header has: id, first_name, \
             email, phone, Home Tel, sms_consent, email_consent); the closest is \"Home Tel\" \
             (2 of its first 2 cells are phone numbers)"
        ),
        "{err}"
    );
    // No cell looks like an address: the name that is most alike is offered.
    f.write(
        "contacts.csv",
        "id,first_name,Emial,phone,sms_consent\nP1,Ann,,(312) 555-0101,yes\n",
    );
    let (code, _, err) = f.run(&["check", "campaign.toml"]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains(
            "email is enabled but the file has no `email` column, so every email would be \
             skipped (the header has: id, first_name, Emial, phone, sms_consent); the closest \
             is \"Emial\" (its name is like `email`)"
        ),
        "{err}"
    );
    // Nothing like it: no guess, the ways out.
    f.write(
        "contacts.csv",
        "id,first_name,phone,sms_consent\nP1,Ann,(312) 555-0101,yes\n",
    );
    let (code, _, err) = f.run(&["check", "campaign.toml"]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains(
            "no column looks like one: add it to the file, or name it in the campaign file \
             with [contacts.columns] email = \"…\"\nor, if this campaign sends no email, leave \
             it out of `channels` in [campaign]"
        ),
        "{err}"
    );
    // An SMS-only campaign over the same file is fine.
    let (code, _, err) = f.run(&[
        "check",
        "campaign.toml",
        "--set",
        "campaign.channels=[\"sms\"]",
    ]);
    assert_eq!(code, 0, "{err}");
}
