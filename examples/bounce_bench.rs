//! The bounce classifier's benchmark (`bench/bounces.sh`): 10,000 DSNs generated from the
//! corpus's DSN templates (`tests/bounces/*.eml`), each to a distinct address, written to a
//! temporary directory and read back, then classified, against the same bytes parsed by
//! `mailparse` alone (the message and every part's body decoded: the least the classifier
//! must do). Best of 5 alternating rounds each; prints messages per second and the ratio.
//!
//! Given a Maildir (`bounce_bench DIR`), it reads the messages there instead of generating
//! them: `bench/bounces.sh` measures `outreach bounces` on such a Maildir beside this.

use std::time::{Duration, Instant};

use outreach::bounce::{Classification, Context, classify};

/// The corpus files that carry a `message/delivery-status` part, and the recipient in each.
const TEMPLATES: &[(&str, &str)] = &[
    ("postfix-dsn-511.eml", "margaret.okafor@example.org"),
    ("postfix-delayed-4xx.eml", "d.kowalski@example.net"),
    ("exim-dsn.eml", "tomas.reyes@example.com"),
    (
        "o365-recipientnotfound.eml",
        "priya.nair@contoso-health.example",
    ),
    ("o365-policy-571.eml", "l.moreau@fabrikam-care.example"),
    ("gmail-511.eml", "samir.haddad@example.com"),
    ("gmail-422-full.eml", "grace.mensah@example.org"),
    ("dmarc-571.eml", "ahmed.saleh@example.org"),
];

const COUNT: usize = 10_000;
const ROUNDS: usize = 5;

/// Parses a message and decodes every part's body, as the classifier's parse does.
fn parse_only(raw: &[u8]) -> usize {
    fn walk(p: &mailparse::ParsedMail<'_>) -> usize {
        let own = if p.subparts.is_empty() {
            p.get_body_raw().map_or(0, |b| b.len())
        } else {
            0
        };
        own + p.subparts.iter().map(walk).sum::<usize>()
    }
    mailparse::parse_mail(raw).map_or(0, |m| walk(&m))
}

fn main() {
    let files = match std::env::args_os().nth(1) {
        Some(dir) => read_maildir(std::path::Path::new(&dir)),
        None => generate(),
    };
    let count = files.len();
    let bytes: usize = files.iter().map(Vec::len).sum();
    let mailto = ["unsubscribe@riverside.example".to_string()];
    let ctx = Context {
        bounce_pattern: Some("bounces+{{token}}@riverside.example"),
        unsubscribe_mailto: &mailto,
    };

    let (mut parse_best, mut classify_best) = (Duration::MAX, Duration::MAX);
    let mut bounces = 0;
    for _ in 0..ROUNDS {
        let t = Instant::now();
        let n: usize = files.iter().map(|f| parse_only(f)).sum();
        parse_best = parse_best.min(t.elapsed());
        std::hint::black_box(n);
        let t = Instant::now();
        bounces = files
            .iter()
            .filter(|f| matches!(classify(f, &ctx), Classification::Bounce(_)))
            .count();
        classify_best = classify_best.min(t.elapsed());
    }
    assert_eq!(bounces, count, "every DSN reads as a bounce");
    let rate = |d: Duration| count as f64 / d.as_secs_f64();
    println!(
        "{count} DSNs, {} KiB in all; best of {ROUNDS} rounds",
        bytes / 1024
    );
    println!(
        "parse only (mailparse): {:>8.1} ms  {:>9.0} msgs/s",
        parse_best.as_secs_f64() * 1e3,
        rate(parse_best)
    );
    println!(
        "classify:               {:>8.1} ms  {:>9.0} msgs/s",
        classify_best.as_secs_f64() * 1e3,
        rate(classify_best)
    );
    println!(
        "classify / parse: {:.2}x the time",
        classify_best.as_secs_f64() / parse_best.as_secs_f64()
    );
}

/// 10,000 DSNs made from the corpus's templates, written to files and read back.
fn generate() -> Vec<Vec<u8>> {
    let corpus = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/bounces");
    let dir = tempfile::tempdir().expect("a temporary directory");
    for i in 0..COUNT {
        let (file, address) = TEMPLATES[i % TEMPLATES.len()];
        let template = std::fs::read_to_string(corpus.join(file)).expect("a corpus file");
        let (local, domain) = address.split_once('@').expect("an address");
        let fresh = format!("{local}.{i}@{domain}");
        let text = template.replace(address, &fresh).replace(
            &address.replace("margaret.okafor", "Margaret.Okafor"),
            &fresh,
        );
        std::fs::write(dir.path().join(format!("{i:05}.eml")), text).expect("written");
    }
    (0..COUNT)
        .map(|i| std::fs::read(dir.path().join(format!("{i:05}.eml"))).expect("read back"))
        .collect()
}

/// Every message of the Maildir `dir` (`new/` and `cur/`).
fn read_maildir(dir: &std::path::Path) -> Vec<Vec<u8>> {
    let mut paths: Vec<_> = ["new", "cur"]
        .iter()
        .flat_map(|sub| std::fs::read_dir(dir.join(sub)).expect("a Maildir"))
        .map(|e| e.expect("an entry").path())
        .collect();
    paths.sort();
    paths
        .iter()
        .map(|p| std::fs::read(p).expect("a message"))
        .collect()
}
