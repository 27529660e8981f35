//! `outreach preview` end to end: the exact rendered output of one contact on each channel, the
//! `.eml` parsed back by an independent parser (Python's `email` package), header and HTML
//! injection from contact fields, and the browsable folder.

use crate::common;

use std::collections::BTreeSet;
use std::path::Path;

use crate::common::{Fixture, HEADER, repo};

/// A fixture whose token key is fixed, so unsubscribe links are the same on every run.
fn fixture(csv: &str) -> Fixture {
    let f = Fixture::new(csv);
    f.write_bytes(".outreach/unsubscribe.key", &(0u8..32).collect::<Vec<u8>>());
    f
}

/// [`fixture`] with email only enabled: for contacts with no phone numbers.
fn email_fixture(csv: &str) -> Fixture {
    let f = fixture(csv);
    f.write("campaign.toml", &common::campaign_toml_on(&["email"], ""));
    f
}

/// Masks what differs between runs: the Date header and the MIME boundary.
fn mask(s: &str) -> String {
    s.lines()
        .map(|l| {
            if l.starts_with("Date: ") {
                "Date: <date>".to_string()
            } else if let Some(i) = l.find("boundary=\"") {
                format!("{}boundary=\"<boundary>\"", &l[..i])
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
        + "\n"
}

const SIOBHAN: &str =
    "P1,Siobhán,O'Brien & Sons,Siobhan.OBrien@Example.com,(312) 555-0142,,yes,yes,America/New_York";

#[test]
fn one_contact_on_each_channel_is_exact() {
    let f = fixture(&format!("{HEADER}\n{SIOBHAN}\n"));
    let (code, out, err) = f.run(&["preview", "campaign.toml", "--contact", "P1"]);
    assert_eq!((code, err.as_str()), (0, ""));
    let golden = repo().join("tests/golden/preview-contact.txt");
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&golden, mask(&out)).unwrap();
    }
    assert_eq!(mask(&out), std::fs::read_to_string(golden).unwrap());
}

#[test]
fn contact_found_by_id_email_or_phone() {
    let f = fixture(&format!("{HEADER}\n{SIOBHAN}\n"));
    for key in [
        "P1",
        "siobhan.obrien@example.com",
        "SIOBHAN.OBRIEN@EXAMPLE.COM",
        "312.555.0142",
        "+1 312 555 0142",
    ] {
        let (code, out, err) = f.run(&[
            "preview",
            "campaign.toml",
            "--contact",
            key,
            "--channel",
            "sms",
        ]);
        assert_eq!(code, 0, "{key}: {err}");
        assert!(
            out.starts_with("Contact P1 (line 2): Siobhán O'Brien & Sons\n"),
            "{key}: {out}"
        );
        assert!(out.contains("=== sms to +13125550142: due ==="), "{out}");
        assert!(!out.contains("=== email"), "{out}");
    }
    let (code, out, err) = f.run(&["preview", "campaign.toml", "--contact", "P9"]);
    assert_eq!((code, out.as_str()), (2, ""));
    assert!(
        err.contains("no contact with id, email or phone \"P9\""),
        "{err}"
    );
}

#[test]
fn skipped_contacts_show_why_and_what_they_would_get() {
    let f = fixture(&format!(
        "{HEADER}\nP1,Ann,Lee,ann@example.com,(312) 555-0101,,no,yes,\n"
    ));
    let mut c = f.cmd(&["preview", "campaign.toml", "--contact", "P1"]);
    c.env("OUTREACH_NOW", common::NIGHT);
    let (code, out, _) = common::run(c);
    assert_eq!(code, 0);
    assert!(
        out.contains("=== email to ann@example.com: skipped: no consent ==="),
        "{out}"
    );
    assert!(
        out.contains(
            "=== sms to +13125550101: deferred: quiet hours (until 08:00 America/Chicago) ==="
        ),
        "{out}"
    );
    assert!(
        out.contains("Subject: "),
        "the skipped email is still rendered: {out}"
    );
}

/// Parses an .eml with Python's standard `email` package and returns its headers and parts.
pub(crate) fn parse_eml(path: &Path) -> serde_json::Value {
    let script = r#"
import email, json, sys
from email import policy
raw = open(sys.argv[1], 'rb').read()
msg = email.message_from_bytes(raw, policy=policy.default)
parts = []
for part in msg.walk():
    if part.is_multipart():
        continue
    parts.append({"type": part.get_content_type(), "charset": part.get_content_charset(),
                  "cte": part.get("Content-Transfer-Encoding"), "body": part.get_content()})
print(json.dumps({
    "headers": [[k, str(v)] for k, v in msg.items()],
    "type": msg.get_content_type(),
    "defects": [str(d) for d in msg.defects],
    "max_line": max(len(l) for l in raw.split(b"\r\n")),
    "bare_lf": raw.replace(b"\r\n", b"").count(b"\n"),
    "parts": parts,
}))
"#;
    let out = std::process::Command::new("python3")
        .args(["-c", script])
        .arg(path)
        .output()
        .expect("python3 is needed to parse messages back (the test command installs it)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

pub(crate) fn header<'a>(msg: &'a serde_json::Value, name: &str) -> Vec<&'a str> {
    msg["headers"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|h| h[0].as_str().unwrap().eq_ignore_ascii_case(name))
        .map(|h| h[1].as_str().unwrap())
        .collect()
}

#[test]
fn eml_parses_back_with_every_header_and_part() {
    let f = fixture(&format!("{HEADER}\n{SIOBHAN}\n"));
    let (code, _, err) = f.run(&["preview", "campaign.toml", "--out", "pv"]);
    assert_eq!(code, 0, "{err}");
    let msg = parse_eml(&f.path("pv/messages/000002-P1/message.eml"));
    assert_eq!(msg["defects"], serde_json::json!([]));
    assert_eq!(msg["type"], "multipart/alternative");
    assert!(msg["max_line"].as_u64().unwrap() <= 998);
    assert_eq!(msg["bare_lf"], 0, "every line ends in CRLF");
    assert_eq!(
        header(&msg, "From"),
        ["Riverside Physio <care@riverside.example>"]
    );
    assert_eq!(
        header(&msg, "To"),
        ["Siobhán O'Brien & Sons <Siobhan.OBrien@Example.com>"]
    );
    assert_eq!(header(&msg, "Reply-To"), ["frontdesk@riverside.example"]);
    assert_eq!(
        header(&msg, "Subject"),
        ["Free phone assessment & treatment plan: know more about your psoas"]
    );
    assert_eq!(header(&msg, "MIME-Version"), ["1.0"]);
    assert_eq!(header(&msg, "Date").len(), 1);
    let mid = header(&msg, "Message-ID");
    assert!(
        mid.len() == 1
            && mid[0].starts_with("<test-campaign.")
            && mid[0].ends_with("@riverside.example>"),
        "{mid:?}"
    );
    let token = "zpophhuouhvtzksr5lbas2vipy";
    assert_eq!(
        header(&msg, "List-Unsubscribe"),
        [format!(
            "<https://riverside.example/unsubscribe?t={token}>, <mailto:unsubscribe@riverside.example?subject=unsubscribe%20{token}>"
        )]
    );
    assert_eq!(
        header(&msg, "List-Unsubscribe-Post"),
        ["List-Unsubscribe=One-Click"]
    );

    let parts = msg["parts"].as_array().unwrap();
    assert_eq!(parts.len(), 2);
    assert_eq!(parts[0]["type"], "text/plain");
    assert_eq!(parts[1]["type"], "text/html");
    for p in parts {
        assert_eq!(p["charset"], "utf-8");
    }
    let text = parts[0]["body"].as_str().unwrap();
    let html = parts[1]["body"].as_str().unwrap();
    assert!(text.contains("Hi Siobhán,"), "{text}");
    assert!(html.contains("Hi Siobhán,"), "{html}");
    // The article, the fixed video link, the offer and the call to action, in both parts.
    for needle in [
        "Know More About Psoas Muscle",
        "the only muscles that connect your spine to your legs",
        "https://youtu.be/fvee--yJGME",
        "Groin pain",
        "https://riverside.example/book",
        "+1 312 555 0100",
        "12 Example St, Springfield, IL 62701",
    ] {
        assert!(text.contains(needle), "text part lacks {needle}");
        assert!(html.contains(needle), "html part lacks {needle}");
    }
    assert!(
        text.to_uppercase()
            .contains("FREE PHONE ASSESSMENT & TREATMENT PLAN")
    );
    assert!(html.contains("FREE PHONE ASSESSMENT &amp; TREATMENT PLAN"));
    assert!(
        !html.contains("fvee–yJGME") && !text.contains("fvee–yJGME"),
        "the mangled link"
    );
    // Email-safe HTML: inlined CSS, nothing remote, no scripts.
    assert!(!html.contains("<style"), "CSS is inlined");
    assert!(html.contains("style=\""));
    for banned in ["<script", "<img", "<link", "url(", "{{"] {
        assert!(!html.contains(banned), "{banned} in html");
    }
    assert!(html.contains(&format!(
        "href=\"https://riverside.example/unsubscribe?t={token}\""
    )));
}

#[test]
fn contact_fields_cannot_inject_headers_or_markup() {
    let csv = format!(
        "{HEADER}\nP1,\"Ann\r\nBcc: evil@example.com\",\"<script>alert(1)</script> & Co\",ann@example.com,,email,yes,,\n"
    );
    let f = email_fixture(&csv);
    f.write(
        "templates/subject.hbs",
        "Hi {{contact.first_name}}, from {{contact.last_name}}",
    );
    let (code, _, err) = f.run(&["preview", "campaign.toml", "--out", "pv"]);
    assert_eq!(code, 0, "{err}");
    let msg = parse_eml(&f.path("pv/messages/000002-P1/message.eml"));
    assert_eq!(msg["defects"], serde_json::json!([]));
    assert!(header(&msg, "Bcc").is_empty(), "{msg}");
    assert_eq!(
        header(&msg, "Subject"),
        ["Hi Ann Bcc: evil@example.com, from <script>alert(1)</script> & Co"]
    );
    let to = header(&msg, "To");
    assert_eq!(to.len(), 1);
    assert!(!to[0].contains('\n') && !to[0].contains('\r'), "{to:?}");
    assert!(to[0].ends_with("<ann@example.com>"), "{to:?}");
    let html = msg["parts"][1]["body"].as_str().unwrap();
    assert!(!html.contains("<script>"), "{html}");
    let text = msg["parts"][0]["body"].as_str().unwrap();
    assert!(
        text.contains("Hi Ann\r\nBcc: evil@example.com,")
            || text.contains("Hi Ann\nBcc: evil@example.com,"),
        "text keeps the value as written: {text}"
    );
    // The subject template is text: not escaped, but one line.
    let index = f.read("pv/index.html");
    assert!(
        index.contains("&lt;script&gt;alert(1)&lt;/script&gt; &amp; Co"),
        "index escapes names"
    );
    assert!(!index.contains("<script>"));
}

#[test]
fn html_escapes_contact_data_but_text_and_sms_keep_it_as_written() {
    let f = fixture(&format!(
        "{HEADER}\nP1,O'Brien & Sons <Ltd>,Lee,ann@example.com,(312) 555-0101,,yes,yes,\n"
    ));
    f.write(
        "templates/sms.txt.hbs",
        "Hi {{contact.first_name}}. Reply STOP to opt out",
    );
    let (code, out, err) = f.run(&["preview", "campaign.toml", "--contact", "P1"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("Hi O'Brien & Sons <Ltd>,\n"),
        "text part: {out}"
    );
    assert!(
        out.contains("\nHi O'Brien & Sons <Ltd>. Reply STOP to opt out\n"),
        "sms: {out}"
    );
    let (_, _, _) = f.run(&["preview", "campaign.toml", "--out", "pv"]);
    let html = f.read("pv/messages/000002-P1/email.html");
    assert!(
        html.contains("Hi O&#39;Brien &amp; Sons &lt;Ltd&gt;,"),
        "{html}"
    );
}

#[test]
fn preview_folder_links_every_message_and_is_private() {
    let mut c = common::outreach();
    let dir = tempfile::tempdir().unwrap();
    c.current_dir(repo())
        .env("OUTREACH_NOW", common::MIDDAY)
        .args(["preview", "campaigns/psoas.toml", "--out"])
        .arg(dir.path().join("pv"))
        .arg("--set")
        .arg(format!(
            "sending.state_dir={}",
            dir.path().join("state").display()
        ));
    let (code, out, err) = common::run(c);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.starts_with("Preview of 36 contacts written; open "),
        "{out}"
    );
    let root = dir.path().join("pv");
    let index = std::fs::read_to_string(root.join("index.html")).unwrap();

    // Every link resolves to a file in the folder: it works opened from disk.
    let mut links = BTreeSet::new();
    for piece in index.split("href=\"").skip(1) {
        links.insert(piece[..piece.find('"').unwrap()].to_string());
    }
    assert!(links.len() > 100, "{}", links.len());
    for link in &links {
        assert!(
            !link.starts_with("http") && !link.starts_with('/'),
            "{link}"
        );
        assert!(root.join(link).is_file(), "broken link {link}");
    }
    // Every contact is listed, with decisions and reasons.
    assert_eq!(index.matches("<tr><td>").count(), 36);
    assert!(
        index.contains("skipped: suppressed (opt-outs.csv:2)"),
        "{index}"
    );
    assert!(index.contains("skipped: duplicate of line 13 (P0012)"));
    assert!(index.contains(
        "skipped: invalid address: &quot;frank@@example.com&quot; is not a valid email address"
    ));
    assert!(index.contains("María González"));
    assert!(index.contains("GSM-7 · 2 segments"));
    assert!(index.contains("<b>email</b>: 27 due, 0 deferred, 9 skipped"));
    // The SMS page carries the counts.
    let sms = std::fs::read_to_string(root.join("messages/000002-P0001/sms.html")).unwrap();
    assert!(
        sms.contains("GSM-7, 214 characters (214 units), 2 segments of up to 153"),
        "{sms}"
    );

    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&root), 0o700);
        assert_eq!(mode(&root.join("index.html")), 0o600);
        assert_eq!(mode(&root.join("messages/000002-P0001")), 0o700);
        assert_eq!(mode(&root.join("messages/000002-P0001/message.eml")), 0o600);
    }
}

#[test]
fn after_a_send_the_preview_does_not_say_nothing_was_sent() {
    let f = email_fixture(&format!(
        "{HEADER}\nP1,Ann,Lee,ann@example.com,,email,yes,,\nP2,Bo,Ng,bo@example.com,,email,yes,,\n"
    ));
    let (code, out, err) = f.run(&["send", "campaign.toml"]);
    assert_eq!(code, 0, "{out}{err}");
    let (code, out, err) = f.run(&["preview", "campaign.toml", "--out", "pv"]);
    assert_eq!(code, 0, "{out}{err}");
    let index = f.read("pv/index.html");
    assert!(index.contains("2 settled by earlier runs"), "{index}");
    assert!(!index.contains("Nothing has been sent"), "{index}");
    assert!(index.contains("A preview sends nothing."), "{index}");
}

#[test]
fn control_characters_reach_neither_a_terminal_nor_a_patient() {
    // A name that recolours and retitles a terminal (ESC [31m, an OSC title), a name over two
    // lines, and a column no template reads.
    let csv = format!(
        "{HEADER},note\n\
         P1,\"Ann\u{1b}[31m\u{1b}]0;pwned\u{7}\",Lee,ann@example.com,(312) 555-0101,,yes,yes,,\n\
         P2,Bo,Ng,bo@example.com,(312) 555-0102,,yes,yes,,\"ok\u{1b}[2J\"\n\
         P3,\"Cy\r\nBcc: evil@example.com\",Ox,cy@example.com,(312) 555-0103,,yes,yes,,\n"
    );
    let f = fixture(&csv);
    let esc = |s: &str| s.contains('\u{1b}') || s.contains('\u{7}');
    let (code, out, err) = f.run(&["check", "campaign.toml"]);
    assert_eq!(code, 0, "{err}");
    assert!(!esc(&out) && !esc(&err), "{out:?}{err:?}");
    assert!(
        out.contains(
            "contacts.csv:2 P1 first_name: holds the control character U+001B (escape: the start \
             of a terminal control sequence), which would reach the patient's message and the \
             terminal of anyone previewing it; fix the cell in the export (email and sms skipped)"
        ),
        "{out}"
    );
    assert!(
        out.contains(
            "contacts.csv:4 P3 first_name: holds a line break, and this field is one line: the \
             message would break where it shows it; fix the cell in the export (email and sms \
             skipped)"
        ),
        "{out}"
    );
    assert!(
        !out.contains("P2"),
        "an unread column is nobody's problem: {out}"
    );
    assert!(
        out.contains("due now                      1       1"),
        "{out}"
    );
    let (code, _, _) = f.run(&["check", "campaign.toml", "--strict"]);
    assert_eq!(code, 2);
    // JSON keeps the cell as written, escaped as JSON escapes it.
    let (_, out, _) = f.run(&["check", "campaign.toml", "--format", "json"]);
    assert!(!esc(&out), "{out:?}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["errors"][0]["value"], "Ann\u{1b}[31m\u{1b}]0;pwned\u{7}");
    // The admin's terminal sees the sequence written out, not obeyed.
    let (code, out, err) = f.run(&["preview", "campaign.toml", "--contact", "P1"]);
    assert_eq!(code, 0, "{err}");
    assert!(!esc(&out), "{out:?}");
    assert!(
        out.contains("Ann\\u{1b}[31m\\u{1b}]0;pwned\\u{7} Lee"),
        "{out}"
    );
    // Whatever the source: a template, an argument echoed in an error.
    f.write(
        "templates/sms.txt.hbs",
        "Riverside\u{1b}[5m: hi {{contact.first_name}}. Reply STOP to opt out",
    );
    let (_, out, _) = f.run(&["preview", "campaign.toml", "--contact", "P2"]);
    assert!(
        out.contains("Riverside\\u{1b}[5m: hi Bo. Reply STOP to opt out"),
        "{out}"
    );
    let (code, out, err) = f.run(&["preview", "campaign.toml", "--contact", "X\u{1b}]0;t\u{7}"]);
    assert_eq!(code, 2);
    assert!(!esc(&out) && !esc(&err), "{err:?}");
    assert!(err.contains("X\\u{1b}]0;t\\u{7}"), "{err}");
    // Nothing of P1 or P3 is sent; Bo's messages go.
    f.write(
        "templates/sms.txt.hbs",
        "Riverside: hi {{contact.first_name}}. Reply STOP to opt out",
    );
    let (code, out, err) = f.run(&["send", "campaign.toml"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(!esc(&out) && !esc(&err), "{out:?}{err:?}");
    let sms = f.read("outbox/sms.jsonl");
    assert_eq!(sms.lines().count(), 1, "{sms}");
    assert!(sms.contains("+13125550102"), "{sms}");
    let emails: Vec<_> = std::fs::read_dir(f.path("outbox/email")).unwrap().collect();
    assert_eq!(emails.len(), 1);
}
