//! Campaign-tagged links (`[campaign.utm]`) end to end: the shipped psoas templates sent to the
//! file outbox and read back link by link (the `.eml` by Python's `email` package, its HTML
//! `href`s by Python's `html.parser`, so the attribute escaping is checked by a parser that is not
//! ours; the SMS from the JSON lines); links an author writes (configured hosts, look-alike hosts,
//! a `utm_` key already there, punctuation after a URL) through `preview`; off by default, byte
//! for byte against a golden message; `check` counting the tagged SMS; the approval voided by
//! any change to the tags.

use std::path::{Path, PathBuf};

use crate::common::{self, Fixture, HEADER, repo};

const ANN: &str = "P1,Ann,Lee,ann@example.com,(312) 555-0101,,yes,yes,America/Chicago";

/// The booking link the tests give the clinic: another host than the website, a query whose `&`
/// HTML must escape, and a fragment.
const BOOKING: &str = "https://book.riverside.example/new?a=1&b=2#slots";

/// The shipped templates and `ANN`, the booking URL above, a fixed unsubscribe key, and `utm`
/// appended to the campaign file (a `[campaign.utm]` table, or nothing).
fn fixture(utm: &str) -> Fixture {
    let f = Fixture::new(&format!("{HEADER}\n{ANN}\n"));
    f.write_bytes(".outreach/unsubscribe.key", &(0u8..32).collect::<Vec<u8>>());
    let toml = common::campaign_toml(utm).replacen(
        "booking_url = \"https://riverside.example/book\"",
        &format!("booking_url = \"{BOOKING}\""),
        1,
    );
    f.write("campaign.toml", &toml);
    f
}

fn send(f: &Fixture) {
    let (code, out, err) = f.run(&["send", "campaign.toml", "-q"]);
    assert_eq!((code, out.as_str(), err.as_str()), (0, "", ""));
}

/// The one `.eml` of the outbox.
fn eml(f: &Fixture) -> PathBuf {
    let files: Vec<PathBuf> = std::fs::read_dir(f.path("outbox/email"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    files.into_iter().next().unwrap()
}

/// The one SMS body of the outbox.
fn sms_body(f: &Fixture) -> String {
    let line = f.read("outbox/sms.jsonl");
    let v: serde_json::Value = serde_json::from_str(line.trim()).unwrap();
    v["body"].as_str().unwrap().to_string()
}

/// The message read back by Python's `email` package: each part decoded, the HTML part's `href`s
/// as `html.parser` decodes them, the text part's URLs, and the https `List-Unsubscribe` link.
fn read_back(path: &Path) -> serde_json::Value {
    let script = r#"
import email, email.policy, html.parser, json, re, sys
m = email.message_from_bytes(open(sys.argv[1], 'rb').read(), policy=email.policy.default)
parts = {p.get_content_type(): p.get_content() for p in m.walk() if not p.is_multipart()}
class Links(html.parser.HTMLParser):
    hrefs = []
    def handle_starttag(self, tag, attrs):
        self.hrefs += [v for k, v in attrs if k == 'href']
links = Links()
links.feed(parts['text/html'])
print(json.dumps({
    'html': parts['text/html'],
    'text': parts['text/plain'],
    'hrefs': links.hrefs,
    'text_urls': re.findall(r'https?://[^\s<>"]+', parts['text/plain']),
    'unsubscribe': re.search(r'<(https://[^>]+)>', str(m['List-Unsubscribe'])).group(1),
    'list_unsubscribe': str(m['List-Unsubscribe']),
}))
"#;
    common::python_json(script, &[path])
}

fn strings(v: &serde_json::Value) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_string())
        .collect()
}

const TAGS: &str = "utm_source=outreach&utm_medium=email&utm_campaign=test-campaign";

#[test]
fn the_shipped_templates_link_by_link() {
    let f = fixture("[campaign.utm]\nsource = \"outreach\"\n");
    send(&f);
    let m = read_back(&eml(&f));
    let unsubscribe = m["unsubscribe"].as_str().unwrap().to_string();
    assert!(
        unsubscribe.starts_with("https://riverside.example/unsubscribe?t="),
        "{unsubscribe}"
    );
    let booking = format!("https://book.riverside.example/new?a=1&b=2&{TAGS}#slots");
    let website = format!("https://riverside.example?{TAGS}");
    let tel = "tel:+13125550100";
    let video = "https://youtu.be/fvee--yJGME";
    // Every link of the HTML part, in order: the clinic's tagged (the query kept, the tags before
    // the fragment), the video, the phone, the unsubscribe link (on the clinic's own host) and
    // the mailto left exactly as the templates wrote them.
    assert_eq!(
        strings(&m["hrefs"]),
        [
            &booking,
            tel,
            video,
            &booking,
            tel,
            &website,
            tel,
            &unsubscribe,
            "mailto:unsubscribe@riverside.example?subject=Unsubscribe",
        ]
    );
    // The attribute as written: every `&` escaped, the URL shown as text left for reading.
    let html = m["html"].as_str().unwrap();
    let escaped = booking.replace('&', "&amp;");
    assert_eq!(html.matches(&format!("href=\"{escaped}\"")).count(), 2);
    assert!(html.contains(&format!("href=\"{}\"", website.replace('&', "&amp;"))));
    assert!(html.contains(">https://riverside.example</a>"), "{html}");
    assert!(
        html.contains(">https://youtu.be/fvee--yJGME</span>"),
        "{html}"
    );
    // The text part: the same links, tagged alike.
    assert_eq!(
        strings(&m["text_urls"]),
        [video, &booking, &website, &unsubscribe]
    );
    // The headers: List-Unsubscribe as always.
    let list = m["list_unsubscribe"].as_str().unwrap();
    assert!(!list.contains("utm_"), "{list}");
    // The SMS: the booking link tagged with the SMS medium.
    assert_eq!(
        sms_body(&f),
        format!(
            "Riverside Physio: Hi Ann, lower back or hip pain? A tight psoas muscle may be the \
             cause. Get a FREE phone assessment & treatment plan: \
             https://book.riverside.example/new?a=1&b=2&utm_source=outreach&utm_medium=sms\
             &utm_campaign=test-campaign#slots or call +1 312 555 0100. Reply STOP to opt out"
        )
    );
}

/// Masks what differs between runs of the same message: its Date and MIME boundary.
fn mask(raw: &str) -> String {
    let boundary = raw
        .split("boundary=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .expect("a boundary")
        .to_string();
    raw.split("\r\n")
        .map(|l| {
            if l.starts_with("Date: ") {
                "Date: <date>".to_string()
            } else {
                l.replace(&boundary, "<boundary>")
            }
        })
        .collect::<Vec<_>>()
        .join("\r\n")
}

#[test]
fn off_by_default_every_byte_as_before() {
    // The golden file was written by the program before `[campaign.utm]` existed.
    let f = fixture("");
    send(&f);
    let got = format!(
        "{}\n=== sms ===\n{}\n",
        mask(&std::fs::read_to_string(eml(&f)).unwrap()),
        sms_body(&f)
    );
    let golden = repo().join("tests/golden/send-no-utm.txt");
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&golden, &got).unwrap();
    }
    assert_eq!(got, std::fs::read_to_string(golden).unwrap());
}

/// `preview` of `ANN`'s SMS: (exit code, stdout, stderr).
fn preview_sms(f: &Fixture) -> (i32, String, String) {
    f.run(&[
        "preview",
        "campaign.toml",
        "--contact",
        "P1",
        "--channel",
        "sms",
    ])
}

#[test]
fn links_an_author_writes_through_preview() {
    let f = fixture(
        "[campaign.utm]\nmedium = \"text\"\ncampaign = \"psoas-spring\"\n\
         content = \"teaser a\"\nhosts = [\"Shop.Riverside.Example\"]\n",
    );
    f.write(
        "templates/sms.txt.hbs",
        "{{clinic.name}}: https://shop.riverside.example/mats, \
         https://riverside.example.evil.com/x https://sub.riverside.example/x \
         (HTTPS://Riverside.Example/pain?utm_source=flyer#top). Reply STOP to opt out\n",
    );
    let (code, out, err) = preview_sms(&f);
    assert_eq!((code, err.as_str()), (0, ""));
    let tags = "utm_medium=text&utm_campaign=psoas-spring&utm_content=teaser+a";
    assert!(
        out.ends_with(&format!(
            "\nRiverside Physio: https://shop.riverside.example/mats?utm_source=outreach&{tags}, \
             https://riverside.example.evil.com/x https://sub.riverside.example/x \
             (HTTPS://Riverside.Example/pain?utm_source=flyer&{tags}#top). Reply STOP to opt \
             out\n"
        )),
        "{out}"
    );
}

#[test]
fn check_counts_the_tagged_sms() {
    // 230 characters untagged (2 segments); the tags make it 317 (3).
    let utm = "[campaign.utm]\ncontent = \"sms-teaser-a\"\n";
    for (extra, line) in [
        (
            "",
            "GSM-7, 230 characters (230 units), 2 segments of up to 153",
        ),
        (
            utm,
            "GSM-7, 317 characters (317 units), 3 segments of up to 153",
        ),
    ] {
        let f = fixture(extra);
        let (code, out, err) = preview_sms(&f);
        assert_eq!((code, err.as_str()), (0, ""));
        assert!(out.contains(line), "{out}");
        let (code, out, err) = f.run(&["check", "campaign.toml", "--set", "sms.max_segments=2"]);
        assert_eq!(code, 0, "{err}");
        let over = "contacts.csv:2 P1: SMS is 3 segments, over sms.max_segments = 2 [sms]";
        assert_eq!(out.contains(over), !extra.is_empty(), "{out}");
    }
}

#[test]
fn the_approval_covers_the_tags() {
    let gated = |utm: &str| {
        let f = fixture(utm);
        let toml = f.read("campaign.toml").replacen(
            "channels = [\"email\", \"sms\"]\n",
            "channels = [\"email\", \"sms\"]\nrequire_approval = true\n",
            1,
        );
        f.write("campaign.toml", &toml);
        f
    };
    let refused = |f: &Fixture, changes: &[&str]| {
        let (code, out, err) = f.run(&["send", "campaign.toml"]);
        assert_eq!((code, out.as_str()), (2, ""), "{err}");
        let listed: String = changes.iter().map(|c| format!("  {c}\n")).collect();
        assert!(
            err.contains(&format!("nothing sent:\n{listed}review it")),
            "{err}"
        );
        assert!(!f.path("outbox").exists(), "nothing sent");
    };
    let approve = |f: &Fixture| {
        let (code, _, err) = f.run(&["approve", "campaign.toml", "--by", "alice", "-q"]);
        assert_eq!(code, 0, "{err}");
    };
    // Turned on after the approval: every tag is a change.
    let f = gated("");
    approve(&f);
    let toml = f.read("campaign.toml");
    f.write("campaign.toml", &format!("{toml}\n[campaign.utm]\n"));
    refused(
        &f,
        &[
            "setting campaign.utm.campaign changed",
            "setting campaign.utm.content changed",
            "setting campaign.utm.hosts changed",
            "setting campaign.utm.medium changed",
            "setting campaign.utm.source changed",
        ],
    );
    // Approved with tags, then one of them changed, then a host added.
    let f = gated("[campaign.utm]\n");
    approve(&f);
    let toml = f.read("campaign.toml");
    f.write("campaign.toml", &format!("{toml}source = \"newsletter\"\n"));
    refused(&f, &["setting campaign.utm.source changed"]);
    approve(&f);
    let toml = f.read("campaign.toml");
    f.write(
        "campaign.toml",
        &format!("{toml}hosts = [\"shop.riverside.example\"]\n"),
    );
    refused(&f, &["setting campaign.utm.hosts changed"]);
    // `--set` is the effective campaign too.
    let (code, _, err) = f.run(&["send", "campaign.toml", "--set", "campaign.utm.medium=x"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("setting campaign.utm.medium changed"), "{err}");
    approve(&f);
    send(&f);
}
