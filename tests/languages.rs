//! The patient's language end to end: the `language` column picks the template set through
//! its fallbacks (`es-MX` → `es` → the campaign's default), every set is checked at load,
//! `check` counts per language, `preview` shows it, the approval covers every set, the Spanish
//! email parses back with Python's `email` package, and the Spanish SMS is counted as the
//! reference package counts it.

use crate::common::{self, Fixture, HEADER, repo};
use crate::preview::{header, parse_eml};

/// Patients in every case the chain has: a folder of their own tag's prefix, no folder at all,
/// no language, a tag in another case.
const CONTACTS: &str = "P1,Ana,Ruiz,ana@example.com,(312) 555-0101,,yes,yes,,es-MX
P2,Luis,Vega,luis@example.com,(312) 555-0102,,yes,yes,,ES
P3,Marie,Roux,marie@example.com,(312) 555-0103,,yes,yes,,fr
P4,Tom,Hale,tom@example.com,(312) 555-0104,,yes,yes,,
P5,Sue,Park,sue@example.com,(312) 555-0105,,yes,yes,,EN
";

/// The shipped psoas templates (English and `es/`), the contacts above.
fn fixture() -> Fixture {
    Fixture::new(&format!("{HEADER},language\n{CONTACTS}")).with_language("es")
}

/// The test campaign on `channels` with `line` added to its `[campaign]` table.
fn campaign_with(channels: &[&str], line: &str) -> String {
    common::campaign_toml_on(channels, "").replacen(
        "name = \"Test campaign\"\n",
        &format!("name = \"Test campaign\"\n{line}\n"),
        1,
    )
}

/// `preview --contact KEY` on email: its stdout.
fn preview(f: &Fixture, key: &str) -> String {
    let args = [
        "preview",
        "campaign.toml",
        "--contact",
        key,
        "--channel",
        "email",
    ];
    let (code, out, err) = f.run(&args);
    assert_eq!(code, 0, "{err}");
    out
}

#[test]
fn the_language_picks_the_templates_through_its_fallbacks() {
    let f = fixture();
    let p1 = preview(&f, "P1");
    assert!(
        p1.starts_with("Contact P1 (line 2): Ana Ruiz\nLanguage: es (for es-MX)\n"),
        "{p1}"
    );
    assert!(
        p1.contains("\nHola, Ana:\n"),
        "es-MX falls back to es: {p1}"
    );
    let p2 = preview(&f, "P2");
    assert!(
        p2.contains("Language: es\n") && p2.contains("\nHola, Luis:\n"),
        "{p2}"
    );
    let p3 = preview(&f, "P3");
    assert!(
        p3.contains("Language: en (default: no fr templates)\n"),
        "{p3}"
    );
    assert!(
        p3.contains("\nHi Marie,\n"),
        "fr has no set: the default: {p3}"
    );
    for (key, name) in [("P4", "Tom"), ("P5", "Sue")] {
        let out = preview(&f, key);
        assert!(out.contains("Language: en\n"), "{out}");
        assert!(out.contains(&format!("\nHi {name},\n")), "{out}");
    }

    // A folder for the full tag comes first; the rest of the chain is unchanged.
    f.write("templates/es-MX/subject.hbs", "Hola desde México\n");
    for file in ["email.html.hbs", "email.txt.hbs", "sms.txt.hbs"] {
        f.write(
            &format!("templates/es-MX/{file}"),
            &f.read(&format!("templates/es/{file}")),
        );
    }
    let (code, out, err) = f.run(&["check", "campaign.toml", "--format", "json"]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let languages: Vec<_> = v["languages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            (
                l["language"].as_str().unwrap(),
                l["contacts"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(languages, [("en", 3), ("es", 1), ("es-MX", 1)]);
    assert!(preview(&f, "P1").contains("Language: es-MX\n"));
    assert!(preview(&f, "P2").contains("Language: es\n"));
}

#[test]
fn check_counts_per_language_in_text_and_json() {
    let f = fixture();
    // Luis has no SMS consent: one message fewer in Spanish.
    f.write(
        "contacts.csv",
        &format!(
            "{HEADER},language\n{}",
            CONTACTS.replace(
                "luis@example.com,(312) 555-0102,,yes,yes",
                "luis@example.com,(312) 555-0102,,yes,no"
            )
        ),
    );
    let (code, out, err) = f.run(&["check", "campaign.toml"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains(
            "\nwould go, by language\n  en (3 contacts)            3       3\n  es (2 contacts)            2       1\n"
        ),
        "{out}"
    );
    let (_, out, _) = f.run(&["check", "campaign.toml", "--format", "json"]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        v["languages"],
        serde_json::json!([
            {"language": "en", "contacts": 3, "messages": {"email": 3, "sms": 3}},
            {"language": "es", "contacts": 2, "messages": {"email": 2, "sms": 1}},
        ])
    );

    // Without a language column, the text report is as it always was; JSON still counts.
    let g = Fixture::new(&format!("{HEADER}\nP1,Ann,Lee,ann@example.com,,,yes,,\n"))
        .with_language("es");
    g.write("campaign.toml", &common::campaign_toml_on(&["email"], ""));
    let (code, out, _) = g.run(&["check", "campaign.toml"]);
    assert_eq!(code, 0, "{out}");
    assert!(!out.contains("by language"), "{out}");
    let (_, out, _) = g.run(&["check", "campaign.toml", "--format", "json"]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["languages"][1]["language"], "es");
    assert_eq!(v["languages"][0]["contacts"], 1);
}

#[test]
fn the_usual_header_spellings_and_a_bad_value() {
    let f = Fixture::new(&format!(
        "{HEADER},Preferred Language\n{}",
        "P1,Ana,Ruiz,ana@example.com,(312) 555-0101,,yes,yes,,es_mx\nP2,Luis,Vega,luis@example.com,(312) 555-0102,,yes,yes,,Español\n"
    ))
    .with_language("es");
    let (code, out, err) = f.run(&["check", "campaign.toml"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("Columns read by their usual spelling: \"Preferred Language\" as language\n"),
        "{out}"
    );
    assert!(
        out.contains(
            "  contacts.csv:3 P2 language: \"Español\" is not a language tag (BCP 47, like en, \
             es or es-MX) (email and sms skipped)\n"
        ),
        "{out}"
    );
    assert!(out.contains("  es (1 contacts)"), "{out}");
    let (code, _, _) = f.run(&["check", "campaign.toml", "--strict"]);
    assert_eq!(code, 2);
}

#[test]
fn a_set_missing_a_file_is_an_error_naming_it() {
    let f = fixture();
    std::fs::remove_file(f.path("templates/es/sms.txt.hbs")).unwrap();
    let (code, out, err) = f.run(&["check", "campaign.toml"]);
    assert_eq!((code, out.as_str()), (2, ""));
    assert!(
        err.starts_with("error: ")
            && err.contains("templates/es/sms.txt.hbs: template missing (sms is enabled)"),
        "{err}"
    );
    // Without SMS, the set has every file it needs.
    f.write("campaign.toml", &common::campaign_toml_on(&["email"], ""));
    let (code, _, err) = f.run(&["check", "campaign.toml"]);
    assert_eq!(code, 0, "{err}");

    // A partial the set lacks is the default set's.
    std::fs::remove_file(f.path("templates/es/partials/footer_text.hbs")).unwrap();
    let out = preview(&f, "P2");
    assert!(out.contains("\nHola, Luis:\n"), "{out}");
    assert!(
        out.contains("You are receiving this email because"),
        "{out}"
    );

    // A bad campaign.language names the key.
    f.write(
        "campaign.toml",
        &campaign_with(&["email"], "language = \"en_US.UTF-8\""),
    );
    let (code, _, err) = f.run(&["check", "campaign.toml"]);
    assert_eq!(code, 2);
    assert!(
        err.contains("campaign.language") && err.contains("\"en_US.UTF-8\" is not a language tag"),
        "{err}"
    );
}

#[test]
fn the_default_language_is_the_campaigns() {
    // A Spanish-first clinic: its own files are Spanish, an `en/` folder English.
    let f = fixture();
    for file in [
        "subject.hbs",
        "email.html.hbs",
        "email.txt.hbs",
        "sms.txt.hbs",
    ] {
        let en = f.read(&format!("templates/{file}"));
        let es = f.read(&format!("templates/es/{file}"));
        f.write(&format!("templates/en/{file}"), &en);
        f.write(&format!("templates/{file}"), &es);
    }
    std::fs::remove_dir_all(f.path("templates/es")).unwrap();
    f.write(
        "campaign.toml",
        &campaign_with(&["email", "sms"], "language = \"es\""),
    );
    assert!(preview(&f, "P1").contains("Language: es (for es-MX)\n"));
    assert!(preview(&f, "P2").contains("Language: es\n"));
    assert!(preview(&f, "P3").contains("Language: es (default: no fr templates)\n"));
    let p5 = preview(&f, "P5");
    assert!(
        p5.contains("Language: en\n") && p5.contains("\nHi Sue,\n"),
        "{p5}"
    );
}

#[test]
fn preview_folder_lists_the_language() {
    let f = fixture();
    let (code, _, err) = f.run(&["preview", "campaign.toml", "--out", "pv"]);
    assert_eq!(code, 0, "{err}");
    let index = f.read("pv/index.html");
    assert!(
        index.contains("<th>name</th><th>language</th><th>email</th>"),
        "{index}"
    );
    assert!(
        index.contains("<td>Ana Ruiz</td><td>es (for es-MX)</td>"),
        "{index}"
    );
    assert!(
        index.contains("<td>en (default: no fr templates)</td>"),
        "{index}"
    );
}

/// `send` refuses after a Spanish template changed since the approval, naming it.
#[test]
fn changing_a_spanish_template_after_approval_makes_send_refuse() {
    let f = fixture();
    f.write(
        "campaign.toml",
        &campaign_with(&["email", "sms"], "require_approval = true"),
    );
    let (code, _, err) = f.run(&["approve", "campaign.toml", "--by", "alice", "-q"]);
    assert_eq!(code, 0, "{err}");
    let (_, out, _) = f.run(&["approve", "campaign.toml", "--show"]);
    assert!(out.contains("\n  es/subject.hbs "), "{out}");
    f.write("templates/es/subject.hbs", "Otra cosa\n");
    let (code, out, err) = f.run(&["send", "campaign.toml"]);
    assert_eq!((code, out.as_str()), (2, ""), "{err}");
    assert!(
        err.contains("\n  template es/subject.hbs changed\n"),
        "{err}"
    );
    assert!(!f.path("outbox").exists(), "nothing sent");
}

#[test]
fn the_spanish_email_parses_back_with_python() {
    let f = Fixture::new(&format!(
        "{HEADER},language\nP1,Ana,Ruiz,ana@example.com,,,yes,,,es-MX\n"
    ))
    .with_language("es");
    f.write("campaign.toml", &common::campaign_toml_on(&["email"], ""));
    let (code, _, err) = f.run(&["send", "campaign.toml", "-q"]);
    assert_eq!(code, 0, "{err}");
    let emls: Vec<_> = std::fs::read_dir(f.path("outbox/email"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(emls.len(), 1);
    let raw = String::from_utf8_lossy(&std::fs::read(&emls[0]).unwrap()).to_string();
    assert!(
        raw.contains("\r\nSubject: =?utf-8?"),
        "the subject is RFC 2047 encoded: {raw}"
    );
    // Python's `email` package, default policy: RFC 2047 words and transfer encodings decoded.
    let msg = parse_eml(&emls[0]);
    assert_eq!(msg["defects"], serde_json::json!([]));
    assert_eq!(msg["type"], "multipart/alternative");
    assert_eq!(
        header(&msg, "Subject"),
        ["Evaluación telefónica y plan de tratamiento gratis: conozca más sobre su psoas"]
    );
    let part = |kind: &str| {
        let parts = msg["parts"].as_array().unwrap();
        let part = parts.iter().find(|p| p["type"] == kind).unwrap();
        // The parts' lines end in CRLF on the wire, as `get_content` gives them.
        part["body"].as_str().unwrap().replace("\r\n", "\n")
    };
    let text = part("text/plain");
    for words in [
        "¡EVALUACIÓN TELEFÓNICA Y PLAN DE TRATAMIENTO GRATIS!",
        "Hola, Ana:",
        "Conozca más sobre el músculo psoas (se pronuncia «sóas»)",
        "¡el psoas influye\ndirectamente en su respuesta de lucha o huida!",
        "  • Dolor en la ingle\n",
        "https://youtu.be/fvee--yJGME",
        "Recibe este correo porque es paciente de",
    ] {
        assert!(text.contains(words), "{words:?} not in {text}");
    }
    let html = part("text/html");
    for words in [
        "<html lang=\"es\">",
        "¡EVALUACIÓN TELEFÓNICA Y PLAN DE TRATAMIENTO GRATIS!",
        "Hola, Ana:",
        "Sistema inmunitario debilitado",
        "Cancele su suscripción</a>",
    ] {
        assert!(html.contains(words), "{words:?} not in {html}");
    }
}

/// The reference package's row for `body` in `tests/data/sms-segments.tsv` (see
/// `scripts/sms-reference.mjs`): (encoding, segments, units).
fn reference(body: &str) -> Option<(String, u64, u64)> {
    let table = std::fs::read_to_string(repo().join("tests/data/sms-segments.tsv")).unwrap();
    table.lines().find_map(|row| {
        let cells: Vec<&str> = row.split('\t').collect();
        let text: String = serde_json::from_str(cells[0]).ok()?;
        (text == body).then(|| {
            (
                cells[1].to_string(),
                cells[2].parse().unwrap(),
                cells[3].parse().unwrap(),
            )
        })
    })
}

#[test]
fn the_spanish_sms_is_counted_as_the_reference_counts_it() {
    let f = Fixture::new(&format!(
        "{HEADER},language\n\
         P1,María José,Fernández-Villanueva,,(312) 555-0101,,,yes,,es-MX\n\
         P2,Tom,Hale,,(312) 555-0104,,,yes,,\n"
    ))
    .with_language("es");
    f.write("campaign.toml", &common::campaign_toml_on(&["sms"], ""));
    let (code, out, err) = f.run(&["check", "campaign.toml"]);
    assert_eq!(code, 0, "{err}");
    // The Spanish set's ó is said once, on its template; the row, whose name brings nothing
    // the template does not have (é is GSM-7), is warned about its segments only.
    let start = out.find("Warnings (").unwrap();
    assert_eq!(
        &out[start..start + out[start..].find("\n\n").unwrap() + 1],
        "Warnings (2):\n  \
         templates/es/sms.txt.hbs: every SMS from this template is UCS-2 (70 characters a \
         segment, 67 when split) because of ó (U+00F3 LATIN SMALL LETTER O WITH ACUTE) in the \
         text it writes for every contact\n  \
         contacts.csv:2 P1: SMS is 3 segments (197 UCS-2 units) [sms]\n",
        "check shows the Spanish SMS's segments: {out}"
    );
    let (code, _, err) = f.run(&["send", "campaign.toml", "-q"]);
    assert_eq!(code, 0, "{err}");
    let sent: Vec<serde_json::Value> = f
        .read("outbox/sms.jsonl")
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(sent.len(), 2);
    for sms in &sent {
        let body = sms["body"].as_str().unwrap();
        let (encoding, segments, _) = reference(body).unwrap_or_else(|| {
            panic!("no reference row for {body:?}: add it to scripts/sms-reference.mjs")
        });
        assert_eq!(sms["encoding"], encoding, "{body}");
        assert_eq!(sms["segments"], segments, "{body}");
        assert!(segments <= 3, "within sms.max_segments: {body}");
    }
    let spanish = &sent.iter().find(|s| s["contact"] == "P1").unwrap()["body"];
    assert_eq!(
        spanish,
        "Riverside Physio: ¿Dolor lumbar o de cadera? Puede ser el psoas. Evaluación telefónica y \
         plan de tratamiento GRATIS: https://riverside.example/book o al +1 312 555 0100. \
         Responda STOP para cancelar"
    );
}
