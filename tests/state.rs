//! `outreach state migrate`: a state directory's SQLite ledger copied into PostgreSQL, table by
//! table, then used in its place: the same status, nothing sent again, old unsubscribe links
//! still working, new rows numbered past the copied ones. Run again it changes nothing; into a
//! database that holds another ledger it is refused and copies nothing.

use crate::common::{self, Fixture, HEADER};
use crate::postgres::{cluster, postgres_url};

/// The tables `state migrate` copies (every table of the ledger).
const TABLES: [&str; 15] = [
    "campaigns",
    "campaign_files",
    "messages",
    "runs",
    "suppressions",
    "suppression_lifts",
    "approvals",
    "approval_rows",
    "tokens",
    "sms_parts",
    "receipts",
    "replies",
    "unsubscribes",
    "processed_mail",
    "bounces",
];

fn contacts() -> String {
    format!(
        "{HEADER}\n\
         P1,Ann,Lee,ann@example.com,+13125550101,both,yes,yes,\n\
         P2,Bo,Chen,bo@example.com,+13125550102,both,yes,yes,\n\
         P3,Cy,Diaz,cy@example.com,,email,yes,,\n\
         P4,Di,Eng,,+13125550104,sms,,yes,\n"
    )
}

/// A campaign sent on SQLite (the fixture's own ledger, whatever store the suite runs on).
fn sent(now: &str) -> Fixture {
    let f = Fixture::new(&contacts());
    f.write(
        "campaign.toml",
        &common::campaign_toml("[sending]\nemail_rate = \"0\"\nsms_rate = \"0\"\n"),
    );
    let mut send = f.cmd(&["send", "campaign.toml"]);
    send.env("OUTREACH_NOW", now);
    let (code, out, err) = common::run(send);
    assert_eq!(code, 0, "{out}{err}");
    f
}

/// The unsubscribe tokens of the emails in the outbox, by recipient.
fn tokens(f: &Fixture) -> Vec<(String, String)> {
    let mut found = Vec::new();
    for e in std::fs::read_dir(f.path("outbox/email")).unwrap() {
        let text = std::fs::read_to_string(e.unwrap().path()).unwrap();
        let to = text.lines().find(|l| l.starts_with("To: ")).unwrap();
        let link = text
            .lines()
            .find_map(|l| l.strip_prefix("List-Unsubscribe: <"))
            .unwrap();
        let token = link.split('>').next().unwrap().rsplit('=').next().unwrap();
        found.push((to.to_string(), token.to_string()));
    }
    found.sort();
    found
}

fn sqlite_count(f: &Fixture, table: &str) -> i64 {
    let c = rusqlite::Connection::open(f.path(".outreach/ledger.sqlite")).unwrap();
    c.query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |r| r.get(0))
        .unwrap()
}

fn pg_count(url: &str, table: &str) -> i64 {
    let n = cluster().psql(url, &format!("SELECT COUNT(*) FROM {table}"));
    n.trim().parse().unwrap()
}

fn migrate(f: &Fixture, url: &str) -> (i32, String, String) {
    f.run(&["state", "migrate", "--from", ".outreach", "--to", url])
}

/// `status --format json`, without the line naming the ledger (a file, then a URL).
fn status(f: &Fixture, extra: &[&str]) -> serde_json::Value {
    let mut args = vec!["status", "campaign.toml", "--format", "json"];
    args.extend_from_slice(extra);
    let (code, out, err) = f.run(&args);
    assert_eq!(code, 0, "{out}{err}");
    let mut v: serde_json::Value = serde_json::from_str(&out).unwrap();
    v.as_object_mut().unwrap().remove("ledger");
    v
}

#[test]
fn a_sqlite_ledger_moves_to_postgresql_and_carries_on_where_it_was() {
    let f = sent(common::MIDDAY);
    let links = tokens(&f);
    assert_eq!(links.len(), 3, "{links:?}");
    // One patient unsubscribed by link before the move: a suppression.
    let (code, out, err) = f.run(&["unsubscribe", "campaign.toml", &links[0].1]);
    assert_eq!(code, 0, "{out}{err}");
    let before = status(&f, &[]);

    let url = postgres_url();
    let (code, out, err) = migrate(&f, &url);
    assert_eq!(code, 0, "{out}{err}");
    for table in TABLES {
        let n = sqlite_count(&f, table);
        assert_eq!(pg_count(&url, table), n, "{table}");
        assert!(
            out.contains(&format!("  {table:<18} {n:>9} {n:>9} {:>9}\n", 0)),
            "{table}: {out}"
        );
    }
    let copied: Vec<i64> = [
        "messages",
        "tokens",
        "sms_parts",
        "suppressions",
        "approvals",
    ]
    .map(|t| sqlite_count(&f, t))
    .to_vec();
    assert_eq!(copied, [6, 3, 3, 1, 0]);
    assert!(
        out.contains(&format!("state_url = {url:?}"))
            && out.contains("campaign.toml")
            && out.contains("Copy .outreach/unsubscribe.key (owner-only)"),
        "{out}"
    );

    // Again: every row is found the same, nothing is copied twice.
    let (code, again, err) = migrate(&f, &url);
    assert_eq!(code, 0, "{again}{err}");
    assert!(
        again.contains("Every row was there already (migrated before): nothing copied"),
        "{again}"
    );
    for table in TABLES {
        assert_eq!(pg_count(&url, table), sqlite_count(&f, table), "{table}");
    }

    // The campaign on the database: the same counts, nothing new to send.
    let state = format!("sending.state_url={url:?}");
    let set = ["--set", state.as_str()];
    assert_eq!(status(&f, &set), before);
    let (code, out, err) = f.run(&["send", "campaign.toml", set[0], set[1], "--format", "json"]);
    assert_eq!(code, 0, "{out}{err}");
    let summary: serde_json::Value = serde_json::from_str(&out).unwrap();
    for channel in summary["channels"].as_array().unwrap() {
        assert_eq!(
            (&channel["sent"], &channel["already"]["sent"]),
            (&0.into(), &3.into()),
            "{summary}"
        );
    }
    // Its run is numbered after the copied one, its rows keep their ids.
    assert_eq!(cluster().psql(&url, "SELECT MAX(id) FROM runs").trim(), "2");
    // A link sent before the move still unsubscribes its patient, now in the database.
    let (code, out, err) = f.run(&["unsubscribe", "campaign.toml", &links[1].1, set[0], set[1]]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(pg_count(&url, "suppressions"), 2);
    assert_eq!(
        sqlite_count(&f, "suppressions"),
        1,
        "the file is no longer written"
    );
}

#[test]
fn a_database_holding_another_ledger_is_refused_and_nothing_is_copied() {
    let url = postgres_url();
    let first = sent(common::MIDDAY);
    let (code, out, err) = migrate(&first, &url);
    assert_eq!(code, 0, "{out}{err}");
    // Another state directory, sent an hour later: its rows have the same keys, other values.
    let other = sent("2026-11-25T19:00:00Z");
    let (code, out, err) = migrate(&other, &url);
    assert_eq!(code, 2, "{out}{err}");
    assert!(
        err.contains("it is not this ledger's copy; migrate into an empty database"),
        "{err}"
    );
    assert!(
        !err.contains("example.com") && !err.contains("+1312"),
        "{err}"
    );
    for table in TABLES {
        assert_eq!(
            pg_count(&url, table),
            sqlite_count(&first, table),
            "{table}"
        );
    }
}

#[test]
fn no_ledger_or_a_password_in_the_url_is_refused_before_anything_is_made() {
    let f = Fixture::new(&contacts());
    let url = postgres_url();
    let (code, out, err) = migrate(&f, &url);
    assert_eq!(code, 2, "{out}{err}");
    assert!(err.contains(".outreach: no ledger here"), "{err}");
    assert_eq!(
        cluster()
            .psql(
                &url,
                "SELECT COUNT(*) FROM pg_tables WHERE schemaname = 'public'"
            )
            .trim(),
        "0"
    );
    let f = sent(common::MIDDAY);
    let (code, out, err) = migrate(&f, "postgres://outreach:hunter2@127.0.0.1/x");
    assert_eq!(code, 2, "{out}{err}");
    assert!(
        err.contains("state_password_env") && !err.contains("hunter2"),
        "{err}"
    );
}
