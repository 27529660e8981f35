//! `contacts.where`: the rows a campaign is for, typed by what they are compared with, with the
//! declared date forms; a cell it cannot read is that row's error; a column the file lacks, or an
//! expression it cannot parse, stops everything with the key's line; and the approval covers the
//! audience, so a patient who joins it as days pass stops `send`.

use crate::common::{self, Fixture};

const CONTACTS: &str = "\
id,first_name,last_name,email,phone,channel,email_consent,sms_consent,timezone,last_visit,Age,Deceased,Next Visit
P1,Ann,Lee,ann@example.com,,email,yes,yes,,2026-01-10,40,,
P2,Bo,Ng,bo@example.com,,email,yes,yes,,2026-11-01,40,,
P3,Cy,Ox,cy@example.com,,email,yes,yes,,2025-12-01T09:30:00,17,,
P4,Di,Ruiz,di@example.com,,email,yes,yes,,2026-02-02,52,YES,
P5,Ed,Fox,ed@example.com,,email,yes,yes,,,60,,
P6,Flo,Gee,flo@example.com,,email,yes,yes,,2026-03-03,forty,,
P7,Gus,Hay,gus@example.com,,email,yes,yes,,2026-06-20,33,,01/12/2026
P8,Hal,Ivy,hal@example.com,,email,yes,yes,,03/04/2026,33,,
P9,Bo,Ng,BO@example.com,,email,yes,yes,,2026-01-01,41,,
";

/// Not seen for 180 days, adult, alive: the example (MIDDAY is 2026-11-25).
const RECALL: &str = "last_visit < today - 180d and age >= 18 and deceased != \"yes\"";

fn fixture(filter: &str) -> Fixture {
    let f = Fixture::email_only(CONTACTS);
    let toml = common::campaign_toml_on(&["email"], "[sending]\nemail_rate = \"0\"\n")
        .replace("[contacts]\n", &format!("[contacts]\nwhere = {filter:?}\n"));
    f.write("campaign.toml", &toml);
    f
}

fn check(f: &Fixture, extra: &[&str]) -> serde_json::Value {
    let mut args = vec!["check", "campaign.toml", "--format", "json"];
    args.extend_from_slice(extra);
    let (code, out, err) = f.run(&args);
    assert!(code == 0 || code == 1, "{code} {out}{err}");
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}{err}"))
}

#[test]
fn the_filter_selects_by_dates_numbers_and_text_and_names_what_it_cannot_read() {
    let f = fixture(RECALL);
    let v = check(&f, &[]);
    let email = &v["channels"][0];
    // P1 (seen in January, 40) and P9: P2 was seen this month, P3 (an ISO date-time) is 17, P4
    // is deceased, P5 has no visit on record, P7 was seen in June. P9 has P2's address, and
    // keeps it: a row outside the audience does not take a later row's message (P2 is the
    // duplicate).
    assert_eq!(email["due"], 2, "{v}");
    assert_eq!(email["skipped"]["duplicate"], 1, "{v}");
    assert!(
        v["warnings"]
            .to_string()
            .contains("duplicate email of line 10 (P9)"),
        "{v}"
    );
    assert_eq!(email["skipped"]["not_in_audience"], 4, "{v}");
    // P6's age and P8's undeclared US date: that row's error, with line, column and value.
    assert_eq!(v["rows_with_problems"], 2, "{v}");
    let errors = v["errors"].to_string();
    assert!(
        errors.contains("Age") && errors.contains("forty"),
        "{errors}"
    );
    assert!(
        errors.contains("last_visit") && errors.contains("03/04/2026"),
        "{errors}"
    );
    // Declared US (month first), 03/04/2026 is March: before the cut, so P8 joins.
    let v = check(&f, &["--set", "contacts.date_formats.last_visit=us"]);
    assert_eq!(v["channels"][0]["due"], 3, "{v}");
    assert_eq!(v["rows_with_problems"], 1, "{v}");
    // Declared European, it is 3 April: still before the cut.
    let v = check(&f, &["--set", "contacts.date_formats.last_visit=eu"]);
    assert_eq!(v["channels"][0]["due"], 3, "{v}");
    // A header with a space, in back quotes; a European date the cell holds.
    let f = fixture("`Next Visit` >= 2026-12-01");
    let v = check(&f, &["--set", "contacts.date_formats.next_visit=eu"]);
    assert_eq!(v["channels"][0]["due"], 1, "{v}");
    // Preview says why a row is left out.
    let (_, out, _) = f.run(&["preview", "campaign.toml", "--contact", "P1"]);
    assert!(out.contains("skipped: not in audience"), "{out}");
}

#[test]
fn a_missing_column_or_a_bad_expression_stops_before_anything_runs() {
    let f = fixture("age >= 18 and postcode = \"60601\"");
    let (code, out, err) = f.run(&["check", "campaign.toml"]);
    assert_eq!(code, 2, "{out}{err}");
    let line = f
        .read("campaign.toml")
        .lines()
        .position(|l| l.starts_with("where = "))
        .unwrap()
        + 1;
    assert!(
        err.contains(&format!("campaign.toml:{line}: `contacts.where`: "))
            && err.contains("has no column \"postcode\""),
        "{err}"
    );
    let f = fixture("age >== 18");
    let (code, _, err) = f.run(&["check", "campaign.toml"]);
    assert_eq!(code, 2);
    assert!(
        err.contains(&format!(
            "campaign.toml:{line}: `contacts.where`: at character 7: expected a value"
        )),
        "{err}"
    );
    let (code, _, err) = f.run(&[
        "check",
        "campaign.toml",
        "--set",
        "contacts.where=age > 1",
        "--set",
        "contacts.date_formats.last_visit=ymd",
    ]);
    assert_eq!(code, 2);
    assert!(
        err.contains("`contacts.date_formats.last_visit`: \"ymd\" is not a date form"),
        "{err}"
    );
}

#[test]
fn a_patient_who_joins_the_audience_after_approval_stops_send() {
    let f = fixture(RECALL);
    let toml = f.read("campaign.toml");
    f.write(
        "campaign.toml",
        &toml.replace("[campaign]\n", "[campaign]\nrequire_approval = true\n"),
    );
    let at = |now: &str, args: &[&str]| {
        let mut c = f.cmd(args);
        c.env("OUTREACH_NOW", now);
        common::run(c)
    };
    let (code, out, err) = at(
        common::MIDDAY,
        &["approve", "campaign.toml", "--by", "Dr Lee"],
    );
    assert_eq!(code, 0, "{out}{err}");
    // Thirty days on, P7 (last seen 2026-06-20) has not been seen for 180 days.
    let later = "2026-12-25T18:00:00Z";
    let (code, out, err) = at(later, &["send", "campaign.toml"]);
    assert_eq!(code, 2, "{out}{err}");
    assert!(
        err.contains("1 patient joined the audience since it was approved"),
        "{err}"
    );
    assert!(!f.path("outbox/email").exists(), "nothing sent");
    // Approved again: another filter is another audience, and needs its own approval.
    let (code, _, _) = at(later, &["approve", "campaign.toml"]);
    assert_eq!(code, 0);
    let approved = f.read("campaign.toml");
    let other: String = (approved.lines())
        .map(|l| match l.starts_with("where = ") {
            true => "where = \"age >= 18\"".to_string(),
            false => l.to_string(),
        })
        .collect::<Vec<_>>()
        .join("\n");
    f.write("campaign.toml", &other);
    let (code, out, err) = at(later, &["send", "campaign.toml"]);
    assert_eq!(code, 2, "{out}{err}");
    assert!(err.contains("setting contacts.where changed"), "{err}");
    // A patient who leaves the audience (P1, seen again) keeps the approval: it goes to P7 and
    // P9.
    f.write("campaign.toml", &approved);
    let visited = f
        .read("contacts.csv")
        .replace(",2026-01-10,", ",2026-12-20,");
    f.write("contacts.csv", &visited);
    let (code, out, err) = at(later, &["send", "campaign.toml", "--format", "json"]);
    assert_eq!(code, 0, "{out}{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["channels"][0]["sent"], 2, "{v}");
    let mut to: Vec<String> = std::fs::read_dir(f.path("outbox/email"))
        .unwrap()
        .map(|e| {
            let eml = std::fs::read_to_string(e.unwrap().path()).unwrap();
            let line = eml.lines().find(|l| l.starts_with("To: ")).unwrap();
            line.to_string()
        })
        .collect();
    to.sort();
    assert_eq!(
        to,
        [
            "To: \"Bo Ng\" <BO@example.com>",
            "To: \"Gus Hay\" <gus@example.com>"
        ]
    );
}
