//! `outreach report --html` and `report --all` end to end: a campaign sent for real (file
//! transports, two runs on two days), SMS receipts and a STOP reply through `listen`, returned
//! mail through `bounces`; then the report is read as its reader would: every chart's plotted
//! values (the `<title>` of each mark) against the ledger's own counts, every contact's name,
//! address, phone (as written and in E.164) and id searched for and not found, and in Chromium,
//! opened from disk, no request and no console error.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::bounces_cmd::{SET_VERP, bounces, corpus, write_maildir};
use crate::browser::Browser;
use crate::common::{self, Fixture, HEADER, Ledger};
use crate::listen::{ACCOUNT, BASE, Listening, TOKEN_ENV, twilio_post, twilio_receipt};

/// The second run's day.
const NEXT_DAY: &str = "2026-11-26T18:00:00Z";

/// The contacts: (id, first, last, email, phone as written, the phone's other written forms).
const PATIENTS: &[(&str, &str, &str, &str, &str)] = &[
    (
        "pat-0001-ann",
        "Annika",
        "Okafor",
        "ann@example.com",
        "(312) 555-0101",
    ),
    (
        "pat-0002-bo",
        "Borislav",
        "Nakamura",
        "bo@example.com",
        "312.555.0102",
    ),
    (
        "pat-0003-cy",
        "Cyrielle",
        "Whitby",
        "cy@example.com",
        "+1 312 555 0103",
    ),
    (
        "pat-0004-di",
        "Dimitra",
        "Ruizabal",
        "di@example.org",
        "3125550104",
    ),
    (
        "pat-0005-ed",
        "Edmundo",
        "Foxworth",
        "ed@example.com",
        "312-555-0105",
    ),
    (
        "pat-0006-flo",
        "Florentyna",
        "Geeslin",
        "flo@example.com",
        "(312) 555-0106",
    ),
    (
        "pat-0007-gus",
        "Gustavo",
        "Halvorsen",
        "gus@example.com",
        "(312) 555-0107",
    ),
    (
        "pat-0008-hal",
        "Halldora",
        "Ivanescu",
        "hal@example.com",
        "555-0108",
    ),
    (
        "pat-0009-ida",
        "Idalina",
        "Jurgensen",
        "ann@example.com",
        "(312) 555-0109",
    ),
    (
        "pat-0010-jo",
        "Jovanka",
        "Kowalczyk",
        "jo@example.com",
        "(312) 555-0110",
    ),
    (
        "pat-0011-kai",
        "Kaitlyn",
        "Lindqvist",
        "kai@example.com",
        "(312) 555-0111",
    ),
    // The earlier campaign's.
    (
        "pat-0901-lu",
        "Lucinda",
        "Marchetti",
        "lu@example.net",
        "(312) 555-0121",
    ),
    (
        "pat-0902-mo",
        "Mortimer",
        "Nilsson",
        "mo@example.net",
        "(312) 555-0122",
    ),
    (
        "pat-0903-ny",
        "Nyree",
        "Oyelaran",
        "ny@example.net",
        "(312) 555-0123",
    ),
];

/// A contacts row; Florentyna chose SMS, Gustavo gave no email consent.
fn row(p: &(&str, &str, &str, &str, &str)) -> String {
    let (id, first, last, email, phone) = p;
    let channel = if *id == "pat-0006-flo" { "sms" } else { "" };
    let email_consent = if *id == "pat-0007-gus" { "no" } else { "yes" };
    format!("{id},{first},{last},{email},{phone},{channel},{email_consent},yes,\n")
}

fn contacts(range: std::ops::Range<usize>) -> String {
    let mut csv = format!("{HEADER}\n");
    for p in &PATIENTS[range] {
        csv.push_str(&row(p));
    }
    csv
}

/// The campaign: both channels through the file transports, a bounce mailbox, `listen`'s
/// Twilio settings, a price per SMS segment.
fn campaign(id: &str) -> String {
    let extra = format!(
        "quiet_hours = \"\"\n\n[sms.gateway]\npreset = \"twilio\"\naccount = \"{ACCOUNT}\"\n\
         token_env = \"{TOKEN_ENV}\"\nbase_url = \"http://127.0.0.1:9\"\n\n\
         [sending]\nemail_rate = \"0\"\nsms_rate = \"0\"\n\n[listen]\nbase_url = \"{BASE}\"\n\n\
         [feedback]\nmaildir = \"bounces\"\nsoft_bounce_limit = 3\n\n\
         [report]\nsms_price_per_segment = \"0.0079\"\ncurrency = \"USD\"\n"
    );
    common::campaign_toml(&extra).replace("id = \"test-campaign\"", &format!("id = \"{id}\""))
}

fn send(f: &Fixture, file: &str, now: &str) {
    let mut c = f.cmd(&["send", file, "-q", "--set", SET_VERP]);
    c.env("OUTREACH_NOW", now);
    let (code, out, err) = common::run(c);
    assert_eq!(code, 0, "{out}{err}");
}

/// The provider id of the SMS sent to `phone` (E.164).
fn sms_id(db: &Ledger, phone: &str) -> String {
    db.value(&format!(
        "SELECT p.provider_id FROM sms_parts p JOIN messages m ON m.rowid = p.message
         WHERE m.address = '{phone}' AND m.campaign = 'test-campaign'"
    ))
}

/// A campaign sent on two days, with receipts, a STOP reply and returned mail; and a second
/// campaign sent a week before it.
pub(crate) fn reported() -> Fixture {
    let f = Fixture::new(&contacts(0..10));
    f.write("campaign.toml", &campaign("test-campaign"));
    f.write(
        "opt-outs.csv",
        "address,reason\njo@example.com,asked at the desk\n",
    );
    // A week before: an earlier campaign, to three other patients.
    f.write(
        "earlier.toml",
        &campaign("earlier").replace("contacts.csv", "earlier.csv"),
    );
    f.write("earlier.csv", &contacts(11..14));
    send(&f, "earlier.toml", "2026-11-18T18:00:00Z");
    send(&f, "campaign.toml", common::MIDDAY);
    // Returned mail: Annika's hard bounce, Borislav's complaint, Cyrielle's three soft
    // bounces, Dimitra's DMARC refusal, Edmundo's mailto opt-out, an auto-reply.
    write_maildir(&f, &corpus(&f));
    let (code, v) = bounces(&f);
    assert_eq!(code, 0, "{v}");
    // Receipts: Annika, Cyrielle, Dimitra delivered; Borislav's undelivered (30003); and a
    // STOP from Edmundo.
    let l = Listening::start(&f, &["campaign.toml", "--set", "sms.transport=http"]);
    let db = f.ledger();
    for (phone, status, code) in [
        ("+13125550101", "delivered", ""),
        ("+13125550102", "undelivered", "30003"),
        ("+13125550103", "delivered", ""),
        ("+13125550104", "delivered", ""),
    ] {
        let params = twilio_receipt(&sms_id(&db, phone), status, code);
        let p: Vec<(&str, &str)> = params
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let a = twilio_post(&l, "status", &p, None);
        assert_eq!(a.status, 204, "{phone}: {}", a.body);
    }
    let stop = twilio_post(
        &l,
        "inbound",
        &[
            ("MessageSid", &format!("SM{:032}", 5)),
            ("From", "+13125550105"),
            ("To", "+13125550100"),
            ("Body", "STOP"),
            ("AccountSid", ACCOUNT),
        ],
        None,
    );
    assert_eq!(stop.status, 200, "{}", stop.body);
    assert_eq!(l.stop(), Some(0));
    // The next day, one more patient in the file: a second run.
    f.write("contacts.csv", &contacts(0..11));
    send(&f, "campaign.toml", NEXT_DAY);
    f
}

/// Every `<title>` of the page, unescaped.
fn titles(html: &str) -> Vec<String> {
    html.split("<title>")
        .skip(1)
        .map(|t| {
            t[..t.find("</title>").unwrap()]
                .replace("&lt;", "<")
                .replace("&gt;", ">")
                .replace("&quot;", "\"")
                .replace("&#39;", "'")
                .replace("&amp;", "&")
        })
        .collect()
}

/// The values of the marks whose titles read `CATEGORY: N WHAT`, by category.
fn plotted(titles: &[String], what: &str) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    for t in titles {
        if let Some((category, rest)) = t.rsplit_once(": ")
            && let Some((n, w)) = rest.split_once(' ')
            && w == what
        {
            out.insert(category.to_string(), n.parse().unwrap());
        }
    }
    out
}

/// A number the ledger gives for `sql`.
fn count(db: &Ledger, sql: &str) -> u64 {
    db.count(sql) as u64
}

/// The ledger's counts of `sql` (`SELECT key, COUNT(*) … GROUP BY key`), without zeros.
fn grouped(db: &Ledger, sql: &str) -> BTreeMap<String, u64> {
    db.rows(sql)
        .into_iter()
        .map(|r| {
            let [key, n] = <[String; 2]>::try_from(r).unwrap();
            (key, n.parse().unwrap())
        })
        .collect()
}

fn without_zeros(m: BTreeMap<String, u64>) -> BTreeMap<String, u64> {
    m.into_iter().filter(|(_, n)| *n > 0).collect()
}

fn status(f: &Fixture) -> Value {
    let mut c = f.cmd(&["status", "campaign.toml", "--format", "json"]);
    c.env("OUTREACH_NOW", NEXT_DAY);
    let (code, out, err) = common::run(c);
    assert_eq!(code, 0, "{out}{err}");
    serde_json::from_str(&out).unwrap()
}

fn html_report(f: &Fixture) -> String {
    let mut c = f.cmd(&["report", "campaign.toml", "--html"]);
    c.env("OUTREACH_NOW", NEXT_DAY);
    let (code, out, err) = common::run(c);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(
        out,
        "HTML report of 11 contacts written to .outreach/reports/test-campaign-report.html \
         (aggregate counts only: safe to share)\n"
    );
    let path = f.path(".outreach/reports/test-campaign-report.html");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    std::fs::read_to_string(path).unwrap()
}

#[test]
fn the_html_reports_charts_plot_the_ledgers_counts() {
    let f = reported();
    let html = html_report(&f);
    let t = titles(&html);
    let db = f.ledger();
    let v = status(&f);
    let ours = "FROM messages WHERE campaign = 'test-campaign'";
    // Sent per clinic day (Chicago is UTC-6 in November), per channel.
    let day = if db.is_sqlite() {
        "date(substr(sent_at, 1, 19), '-6 hours')"
    } else {
        "to_char(CAST(substr(sent_at, 1, 19) AS timestamp) - interval '6 hours', 'YYYY-MM-DD')"
    };
    for channel in ["email", "sms"] {
        let per_day = grouped(
            &db,
            &format!(
                "SELECT {day}, COUNT(*) {ours}
                 AND channel = '{channel}' AND state = 'sent' GROUP BY 1"
            ),
        );
        assert_eq!(per_day.len(), 2, "{per_day:?}");
        assert_eq!(
            without_zeros(plotted(&t, &format!("{channel} sent"))),
            per_day
        );
        let sent = count(
            &db,
            &format!("SELECT COUNT(*) {ours} AND channel = '{channel}' AND state = 'sent'"),
        );
        assert_eq!(v["counts"][channel]["sent"], sent);
        assert!(
            t.contains(&format!(
                "{channel} sent: {sent} ({})",
                share(&t, channel, sent)
            )),
            "{t:#?}"
        );
        let failed: u64 = plotted(&t, &format!("{channel} failed")).values().sum();
        assert_eq!(failed, v["counts"][channel]["failed"].as_u64().unwrap());
        let opted: u64 = plotted(&t, &format!("{channel} opted out")).values().sum();
        assert_eq!(
            opted,
            v["after_sending"][channel]["opted out"].as_u64().unwrap()
        );
        assert_eq!(opted, 1, "{channel}");
    }
    // Delivered SMS: by the receipts, on the first day.
    let delivered = v["after_sending"]["sms"]["delivered"].as_u64().unwrap();
    assert_eq!(delivered, 3);
    assert_eq!(
        without_zeros(plotted(&t, "sms delivered")),
        BTreeMap::from([("2026-11-25".to_string(), 3)])
    );
    assert!(
        t.iter().any(|x| x.starts_with("sms delivered: 3 (")),
        "{t:#?}"
    );
    // The funnel's plan stages.
    let stage = |channel: &str, name: &str| -> u64 {
        let prefix = format!("{channel} {name}: ");
        let t = t
            .iter()
            .find(|x| x.starts_with(&prefix))
            .unwrap_or_else(|| panic!("{prefix}"));
        t[prefix.len()..]
            .split(' ')
            .next()
            .unwrap()
            .parse()
            .unwrap()
    };
    assert_eq!(
        ["contacts", "chosen", "reachable", "consented", "due"].map(|s| stage("email", s)),
        // Florentyna chose SMS; Idalina shares Annika's address; Gustavo gave no consent;
        // Jovanka is on the clinic's opt-out list (and the bounces suppressed nobody due).
        [11, 10, 9, 8, 7]
    );
    // Messages per run, as the ledger has each run's claims.
    let runs = grouped(
        &db,
        &format!(
            "SELECT 'run ' || (run_id - (SELECT MIN(id) FROM runs WHERE campaign = 'test-campaign') + 1), COUNT(*) {ours} AND channel = 'email' AND state = 'sent' GROUP BY run_id"
        ),
    );
    assert_eq!(plotted(&t, "emails sent"), runs);
    assert_eq!(runs.values().copied().collect::<Vec<_>>(), [6, 1]);
    // Failures: codes and domains, never an address.
    for cells in [
        "<td>Email</td><td>bounced: bad address</td><td>5.1.1</td><td>example.com</td><td class=\"n\">1</td>",
        "<td>Email</td><td>refused by policy</td><td>5.7.1</td><td>example.org</td><td class=\"n\">1</td>",
        "<td>SMS</td><td>undelivered (carrier)</td><td>30003</td><td>–</td><td class=\"n\">1</td>",
    ] {
        assert!(html.contains(cells), "{cells}\n{html}");
    }
    // The SMS cost: the segments the runs recorded, at 0.0079 each.
    let segments = count(
        &db,
        &format!("SELECT SUM(segments) {ours} AND channel = 'sms' AND state = 'sent'"),
    );
    assert_eq!(segments, 20, "two segments each");
    assert!(html.contains(&format!(
        "<tr><td>segments (as sent)</td><td class=\"n\">{segments}</td></tr>"
    )));
    assert!(html.contains("<b>0.16 USD</b>"), "{html}");
    // Self-contained: a policy that allows no request, and nothing that would make one.
    assert!(html.contains(&format!(
        "<meta http-equiv=\"Content-Security-Policy\" content=\"{}\">",
        "default-src 'none'; style-src 'unsafe-inline'; img-src data:"
    )));
    for needle in ["<script", " src=", " href=", "url(", "@import"] {
        assert!(!html.contains(needle), "{needle}");
    }
    assert!(html.contains("Aggregate counts only: no names, addresses or ids; safe to share."));
}

/// The share the funnel shows for `n` of `channel`'s first stage.
fn share(titles: &[String], channel: &str, n: u64) -> String {
    let prefix = format!("{channel} contacts: ");
    let first: u64 = titles
        .iter()
        .find_map(|t| t.strip_prefix(&prefix))
        .and_then(|r| r.split(' ').next())
        .unwrap()
        .parse()
        .unwrap();
    format!("{:.1}%", n as f64 * 100.0 / first as f64)
}

/// Every written form of a contact's details that must not be in a shareable report.
fn private_forms(p: &(&str, &str, &str, &str, &str)) -> Vec<String> {
    let (id, first, last, email, phone) = p;
    let digits: String = phone.chars().filter(char::is_ascii_digit).collect();
    let national = &digits[digits.len().saturating_sub(10)..];
    let mut forms = vec![
        id.to_string(),
        first.to_string(),
        last.to_string(),
        email.to_string(),
        email.split('@').next().unwrap().to_string() + "@",
        phone.to_string(),
        digits.clone(),
    ];
    if national.len() == 10 {
        let (a, b, c) = (&national[..3], &national[3..6], &national[6..]);
        forms.extend([
            format!("+1{national}"),
            format!("+1 {a} {b} {c}"),
            format!("({a}) {b}-{c}"),
            format!("{a}.{b}.{c}"),
            format!("{a}-{b}-{c}"),
            format!("{b}-{c}"),
            format!("{b}{c}"),
        ]);
    }
    forms
}

#[test]
fn the_html_and_all_reports_hold_no_patient_data() {
    let f = reported();
    let mut pages = vec![html_report(&f)];
    for args in [
        &["report", "--all", ".outreach", "--html"][..],
        &["report", "--all", ".outreach"][..],
    ] {
        let (code, out, err) = f.run(args);
        assert_eq!(code, 0, "{out}{err}");
        let file = if args.len() == 4 {
            "all-campaigns.html"
        } else {
            "all-campaigns.csv"
        };
        pages.push(f.read(&format!(".outreach/reports/{file}")));
    }
    for page in &pages {
        let lower = page.to_lowercase();
        for p in PATIENTS {
            for form in private_forms(p) {
                assert!(
                    !lower.contains(&form.to_lowercase()),
                    "{form:?} of {} is in the report:\n{page}",
                    p.0
                );
            }
        }
    }
}

#[test]
fn report_all_lists_each_campaign_oldest_first_with_the_ledgers_counts() {
    let f = reported();
    let (code, out, err) = f.run(&["report", "--all", ".outreach"]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(
        out,
        "Report of 2 campaigns written to .outreach/reports/all-campaigns.csv (aggregate counts only)\n"
    );
    let csv = f.read(".outreach/reports/all-campaigns.csv");
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(
        lines[0],
        "campaign,name,started_at,runs,last_run,email_sent,email_failed,email_bounced,\
         email_complained,email_opted_out,sms_sent,sms_failed,sms_delivered,sms_undelivered,\
         sms_opted_out,sms_segments,unknown,days"
    );
    let cells = |l: &str| l.split(',').map(str::to_string).collect::<Vec<_>>();
    let earlier = cells(lines[1]);
    let ours = cells(lines[2]);
    assert_eq!(lines.len(), 3, "{csv}");
    assert_eq!(
        (earlier[0].as_str(), ours[0].as_str()),
        ("earlier", "test-campaign")
    );
    assert_eq!(
        &ours[3..],
        [
            "2",
            "completed",
            "7",
            "0",
            "1",
            "1",
            "1",
            "10",
            "0",
            "3",
            "1",
            "1",
            "20",
            "0",
            "2"
        ]
        .map(String::from),
        "{csv}"
    );
    assert_eq!(
        &earlier[5..16],
        ["3", "0", "0", "0", "0", "3", "0", "0", "0", "0", "6"].map(String::from),
        "{csv}"
    );
    // The HTML: one sparkline per campaign, its marks the campaign's sends per day.
    let (code, out, err) = f.run(&[
        "report",
        "--all",
        ".outreach",
        "--html",
        "--out",
        "all.html",
    ]);
    assert_eq!(code, 0, "{out}{err}");
    let html = f.read("all.html");
    let t = titles(&html);
    let sent = plotted(&t, "sent");
    assert_eq!(sent.values().sum::<u64>(), 6 + 7 + 10, "{t:#?}");
    // The earlier campaign went in one hour: its sparkline is per hour.
    assert_eq!(sent.get("2026-11-18 12:00"), Some(&6), "{t:#?}");
    assert_eq!(sent.get("2026-11-26"), Some(&2), "{t:#?}");
    assert!(
        html.find("<code>earlier</code>").unwrap()
            < html.find("<code>test-campaign</code>").unwrap()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn in_chromium_the_report_opened_from_disk_requests_nothing_and_logs_no_error() {
    let f = tokio::task::spawn_blocking(reported).await.unwrap();
    let html = html_report(&f);
    let (code, out, err) = f.run(&["report", "--all", ".outreach", "--html"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(html.contains("<svg"));
    let b = Browser::start(1280, 900).await;
    for file in ["test-campaign-report.html", "all-campaigns.html"] {
        let url = format!(
            "file://{}",
            f.path(".outreach/reports").join(file).display()
        );
        // What the browser loaded before (its start page) is not the report's.
        b.goto("about:blank").await;
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        b.requested().await;
        b.log("browser").await;
        b.goto(&url).await;
        b.wait_text("footer", |t| t.contains("safe to share")).await;
        let requested: Vec<String> = b
            .requested()
            .await
            .into_iter()
            .filter(|u| *u != url)
            .collect();
        assert!(requested.is_empty(), "{file} requested {requested:?}");
        let resources = b
            .js("return performance.getEntriesByType('resource').length")
            .await;
        assert_eq!(resources, 0, "{file}");
        let errors: Vec<Value> = b
            .log("browser")
            .await
            .into_iter()
            .filter(|e| e["level"] == "SEVERE" || e["level"] == "WARNING")
            .collect();
        assert!(errors.is_empty(), "{file}: {errors:?}");
        // Every chart drew: its SVG has a size on the page.
        let drawn = b
            .js("return Array.from(document.querySelectorAll('svg')).every(s => s.getBoundingClientRect().width > 50)")
            .await;
        assert_eq!(drawn, true, "{file}");
    }
}

/// The README's screenshots of the report (docs/report-*.png), not a check:
/// `scripts/screenshots` runs it. Print: the page as Chromium lays it out for print media at
/// A4's width (794 CSS px), its first page's height.
#[tokio::test(flavor = "multi_thread")]
#[ignore = "writes docs/report-*.png; run by scripts/screenshots"]
async fn screenshots_for_the_readme() {
    let f = tokio::task::spawn_blocking(reported).await.unwrap();
    html_report(&f);
    let (code, out, err) = f.run(&["report", "--all", ".outreach", "--html"]);
    assert_eq!(code, 0, "{out}{err}");
    let docs = common::repo().join("docs");
    let b = Browser::start(1280, 900).await;
    let reports = f.path(".outreach/reports");
    for (png, file, width, height, print) in [
        (
            "report-desktop.png",
            "test-campaign-report.html",
            1280,
            1400,
            false,
        ),
        (
            "report-print.png",
            "test-campaign-report.html",
            794,
            1123,
            true,
        ),
        ("report-all.png", "all-campaigns.html", 1280, 420, false),
    ] {
        b.resize(width, height).await;
        let media = if print { "print" } else { "" };
        b.cmd(
            reqwest::Method::POST,
            "/goog/cdp/execute",
            Some(serde_json::json!({"cmd": "Emulation.setEmulatedMedia", "params": {"media": media}})),
        )
        .await;
        b.goto(&format!("file://{}", reports.join(file).display()))
            .await;
        b.wait_text("footer", |t| t.contains("safe to share")).await;
        std::fs::write(docs.join(png), b.screenshot().await).unwrap();
        eprintln!("docs/{png}");
    }
}

/// Whether `word` stands in `text` as a word of its own (not inside another: `park` is in
/// `sparkline`, and no patient's).
fn has_word(text: &str, word: &str) -> bool {
    let boundary = |c: Option<char>| c.is_none_or(|c| !c.is_alphanumeric());
    text.match_indices(word).any(|(at, _)| {
        boundary(text[..at].chars().next_back()) && boundary(text[at + word.len()..].chars().next())
    })
}

#[test]
fn the_report_of_the_shipped_sample_contacts_names_none_of_them() {
    let sample = std::fs::read_to_string(common::repo().join("contacts/sample.csv")).unwrap();
    let f = Fixture::new(&sample);
    let (code, out, err) = f.run(&["send", "campaign.toml", "-q"]);
    assert!(code == 0 || code == 1, "{out}{err}");
    let (code, out, err) = f.run(&["report", "campaign.toml", "--html", "--out", "r.html"]);
    assert_eq!(code, 0, "{out}{err}");
    let html = f.read("r.html").to_lowercase();
    assert!(html.contains("<title>email sent: "), "{html}");
    let mut rows = csv::ReaderBuilder::new()
        .flexible(true)
        .from_reader(sample.trim_start_matches('\u{feff}').as_bytes());
    let header = rows.headers().unwrap().clone();
    let mut checked = 0;
    for row in rows.records() {
        let row = row.unwrap();
        let get = |name: &str| {
            header
                .iter()
                .position(|h| h.trim() == name)
                .and_then(|i| row.get(i))
                .unwrap_or("")
                .trim()
                .to_lowercase()
        };
        let mut forms = vec![get("id"), get("first_name"), get("last_name"), get("email")];
        let phone = get("phone");
        let digits: String = phone.chars().filter(char::is_ascii_digit).collect();
        forms.push(phone);
        if digits.len() >= 10 {
            let national = &digits[digits.len() - 10..];
            forms.extend([
                format!("+1{national}"),
                national.to_string(),
                format!("{}-{}", &national[3..6], &national[6..]),
            ]);
        }
        for form in forms.into_iter().filter(|f| f.chars().count() >= 2) {
            assert!(!has_word(&html, &form), "{form:?} is in the report");
            checked += 1;
        }
    }
    assert!(checked > 100, "{checked}");
}

/// The Twilio mock of [`a_report_longer_than_a_chunk_shows_each_messages_ledger_row`]: each SMS
/// sent with an id of its own; the one to `moved` (E.164) moves its ledger row to another row
/// id first, as a `purge` that rebuilds the file mid-run does, so the run holds a stale id.
struct MovingGateway {
    ledger: Ledger,
    moved: String,
    sent: std::sync::atomic::AtomicUsize,
}

impl wiremock::Respond for MovingGateway {
    fn respond(&self, request: &wiremock::Request) -> wiremock::ResponseTemplate {
        let n = self.sent.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let to = format!("To=%2B{}", &self.moved[1..]);
        if String::from_utf8_lossy(&request.body).contains(&to) {
            self.ledger.execute(&format!(
                "UPDATE messages SET rowid = rowid + 1000000 \
                 WHERE channel = 'sms' AND address = '{}'",
                self.moved
            ));
        }
        crate::sms_gateway::twilio_sent(&format!("SM{n:032}"))
    }
}

/// A cell as the report writes it: a spreadsheet formula's first character neutralised.
fn escaped(cell: &str) -> String {
    if cell.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{cell}")
    } else {
        cell.to_string()
    }
}

/// The ledger reads a report's rows a chunk of 500 messages at a time: a run report of 1,040
/// messages and `outreach report` of 520 contacts on two channels, every line checked byte for
/// byte against the ledger's row of its message, read here with SQL. One SMS's row moved while
/// it was sent: the run's row id for it is stale and its line is found by its address.
#[test]
fn a_report_longer_than_a_chunk_shows_each_messages_ledger_row() {
    const CONTACTS: usize = 520;
    let mut csv = format!("{HEADER}\n");
    for i in 0..CONTACTS {
        let line = 1000 + i;
        csv.push_str(&format!(
            "P{i:04},Ann,Lee{i:04},p{i:04}@example.com,312-234-{line},,yes,yes,\n"
        ));
    }
    let f = Fixture::new(&csv);
    let rt = crate::sms_gateway::runtime();
    let server = crate::sms_gateway::twilio_mock(&rt);
    let moved = "+13122341505".to_string();
    let gateway = MovingGateway {
        ledger: f.ledger(),
        moved: moved.clone(),
        sent: Default::default(),
    };
    rt.block_on(
        wiremock::Mock::given(wiremock::matchers::method("POST"))
            .and(wiremock::matchers::path(crate::sms_gateway::MESSAGES))
            .respond_with(gateway)
            .mount(&server),
    );
    let twilio = crate::sms_gateway::twilio(&server.uri(), "");
    f.write(
        "campaign.toml",
        &common::campaign_toml(&format!(
            "transport = \"http\"\nquiet_hours = \"\"\n\n[sms.gateway]\n{twilio}\n\n\
             [sending]\nemail_rate = \"0\"\nsms_rate = \"0\"\n"
        )),
    );
    let mut c = f.cmd(&["send", "campaign.toml", "-q"]);
    c.env(TOKEN_ENV, crate::sms_gateway::TOKEN);
    let (code, out, err) = common::run(c);
    assert_eq!(code, 0, "{out}{err}");
    let (code, out, err) = f.run(&["report", "campaign.toml", "--out", "r.csv"]);
    assert_eq!(code, 0, "{out}{err}");
    let db = f.ledger();
    assert_eq!(
        db.count(&format!(
            "SELECT COUNT(*) FROM messages WHERE address = '{moved}' AND rowid > 1000000 \
             AND state = 'sent'"
        )),
        1,
        "the moved row is recorded sent"
    );
    // Each message's line, from its contact and its ledger row (nothing came back: the
    // delivery, its code and the opt-out are empty).
    let mut expected: BTreeMap<(String, String), String> = BTreeMap::new();
    for row in db.rows(
        "SELECT channel, address, contact_id, attempts, COALESCE(provider_id, ''),
                COALESCE(last_error, ''), COALESCE(sent_at, ''), updated_at,
                COALESCE(consent, ''), COALESCE(consent_source, '')
         FROM messages WHERE campaign = 'test-campaign'",
    ) {
        let i: usize = row[2][1..].parse().unwrap();
        let (line, name) = ((i + 2).to_string(), format!("Ann Lee{i:04}"));
        let mut cells = vec!["test-campaign", &row[0], &row[2], &line, &name, &row[1]];
        cells.extend(["sent", "", &row[3], &row[4], &row[5], &row[6], &row[7]]);
        cells.extend(["", "", "", &row[8], &row[9]]);
        let mut w = csv::Writer::from_writer(Vec::new());
        w.write_record(cells.iter().map(|c| escaped(c))).unwrap();
        let bytes = w.into_inner().unwrap();
        let key = (row[0].clone(), row[2].clone());
        expected.insert(key, String::from_utf8(bytes).unwrap());
    }
    assert_eq!(expected.len(), 2 * CONTACTS);
    let header = "campaign,channel,contact_id,line,name,address,state,reason,attempts,\
                  provider_id,last_error,sent_at,updated_at,delivery,delivery_code,opted_out,\
                  consent,consent_source\n";
    // `outreach report`: the contacts in the file's order, email then SMS.
    let mut report = header.to_string();
    for channel in ["email", "sms"] {
        for i in 0..CONTACTS {
            report.push_str(&expected[&(channel.to_string(), format!("P{i:04}"))]);
        }
    }
    assert_eq!(f.read("r.csv"), report);
    // The run's report: the same lines, in the order the run finished its messages.
    let run = f.read(".outreach/reports/test-campaign-run1.csv");
    let (head, lines) = run.split_at(header.len());
    assert_eq!(head, header);
    let mut lines: Vec<String> = lines.split_inclusive('\n').map(str::to_string).collect();
    lines.sort();
    let mut all: Vec<String> = expected.into_values().collect();
    all.sort();
    assert_eq!(lines, all);
}
