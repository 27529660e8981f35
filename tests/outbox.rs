//! The file outboxes are as durable as the ledger, end to end. Under `strace`, every message the
//! ledger records `sent` is on disk before the ledger's write that records it; on a full disk
//! (a small tmpfs in a mount namespace of its own) a message that does not fit is a transient
//! failure, retried by the next run, and leaves no part of itself in the outbox.

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

use crate::common::{self, Fixture, HEADER, MIDDAY};

const FAST: &str = "[sending]\nemail_rate = \"0\"\nsms_rate = \"0\"\nretry_delay = \"10ms\"\n";

/// `n` contacts on both channels (every line of the SMS outbox as long as the others), with
/// unlimited rates.
fn both_channels(n: usize) -> Fixture {
    let mut csv = format!("{HEADER}\n");
    for i in 0..n {
        csv.push_str(&format!(
            "P{i:03},Pat{i:03},Lee,pat{i:03}@example.com,(312) 200-{i:04},,yes,yes,\n"
        ));
    }
    let f = Fixture::new(&csv);
    f.write("campaign.toml", &common::campaign_toml(FAST));
    f
}

/// The ledger's rows: (channel, address) → (state, permanent, provider id, last error).
type Rows = BTreeMap<(String, String), (String, bool, Option<String>, Option<String>)>;

fn ledger(f: &Fixture) -> Rows {
    let conn = rusqlite::Connection::open(f.path(".outreach/ledger.sqlite")).unwrap();
    let mut stmt = conn
        .prepare("SELECT channel, address, state, permanent, provider_id, last_error FROM messages")
        .unwrap();
    stmt.query_map([], |r| {
        Ok((
            (r.get(0)?, r.get(1)?),
            (r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?),
        ))
    })
    .unwrap()
    .map(Result::unwrap)
    .collect()
}

/// One system call as `strace -f -y -xx` wrote it: where its entry and its exit are in the
/// trace, its arguments (strings and descriptors' paths decoded) and its result.
#[derive(Debug)]
struct Call {
    name: String,
    entry: usize,
    exit: usize,
    /// The quoted strings among the arguments, decoded.
    strings: Vec<Vec<u8>>,
    /// The paths of the descriptors among the arguments (`-y`), decoded.
    paths: Vec<String>,
    result: i64,
}

/// Decodes strace's `\xHH` escapes (`-xx` escapes every byte).
fn unhex(s: &str) -> Vec<u8> {
    s.split("\\x")
        .skip(1)
        .map(|h| u8::from_str_radix(&h[..2], 16).expect("a \\xHH escape"))
        .collect()
}

/// The calls of a trace written by `strace -f -y -xx -o`, in the order their exits were seen.
fn calls(trace: &str) -> Vec<Call> {
    let mut pending: BTreeMap<&str, (String, usize, String)> = BTreeMap::new();
    let mut calls = Vec::new();
    for (i, line) in trace.lines().enumerate() {
        let Some((pid, rest)) = line.split_once(' ') else {
            continue;
        };
        let rest = rest.trim_start();
        let (name, entry, args, tail) = if let Some(resumed) = rest.strip_prefix("<... ") {
            let Some((name, args)) = resumed.split_once(" resumed>") else {
                continue;
            };
            let (n, entry, mut before) = pending.remove(pid).expect("a resumed call was begun");
            assert_eq!(n, name, "{line}");
            before.push_str(args);
            (n, entry, before, args.to_string())
        } else if let Some(open) = rest.find('(').filter(|_| !rest.starts_with("+++")) {
            let (name, args) = (&rest[..open], &rest[open + 1..]);
            if let Some(args) = args.strip_suffix(" <unfinished ...>") {
                pending.insert(pid, (name.to_string(), i, args.to_string()));
                continue;
            }
            (name.to_string(), i, args.to_string(), args.to_string())
        } else {
            continue;
        };
        // `= N`, after the closing parenthesis and strace's padding on a resumed line.
        let Some((_, result)) = tail.rsplit_once(" = ") else {
            continue;
        };
        let result = result
            .split([' ', '<'])
            .next()
            .unwrap()
            .parse()
            .unwrap_or(-1);
        let strings = args.split('"').skip(1).step_by(2).map(unhex).collect();
        let paths = args
            .split('<')
            .skip(1)
            .filter_map(|p| p.split_once('>'))
            .map(|(p, _)| String::from_utf8(unhex(p)).unwrap())
            .collect();
        calls.push(Call {
            name,
            entry,
            exit: i,
            strings,
            paths,
            result,
        });
    }
    calls
}

/// A SQLite varint at `at`: its value and length.
fn varint(b: &[u8], at: usize) -> (u64, usize) {
    let mut v = 0u64;
    for i in 0..9 {
        let byte = b[at + i];
        if i == 8 {
            return ((v << 8) | byte as u64, 9);
        }
        v = (v << 7) | (byte & 0x7f) as u64;
        if byte < 0x80 {
            return (v, i + 1);
        }
    }
    unreachable!()
}

/// The rows of the ledger's `messages` table in one page of the write-ahead log (a table leaf
/// page): each row's (channel, state, provider id).
fn message_rows(page: &[u8]) -> Vec<(String, String, Option<String>)> {
    let mut rows = Vec::new();
    if page.first() != Some(&0x0d) {
        return rows;
    }
    let cells = u16::from_be_bytes([page[3], page[4]]) as usize;
    for c in 0..cells {
        let at = u16::from_be_bytes([page[8 + 2 * c], page[9 + 2 * c]]) as usize;
        let (size, n1) = varint(page, at);
        let (_rowid, n2) = varint(page, at + n1);
        let payload = at + n1 + n2;
        if payload + size as usize > page.len() {
            continue; // spills to an overflow page: no ledger row is that long
        }
        let (header, mut h) = varint(page, payload);
        let mut body = payload + header as usize;
        let mut values = Vec::new();
        while h < header as usize {
            let (serial, n) = varint(page, payload + h);
            h += n;
            let len = match serial {
                0 | 8 | 9 => 0,
                1..=4 => serial as usize,
                5 => 6,
                6 | 7 => 8,
                s => (s as usize - 12) / 2,
            };
            let text = (serial >= 13 && serial % 2 == 1)
                .then(|| String::from_utf8_lossy(&page[body..body + len]).into_owned());
            values.push(text);
            body += len;
        }
        // campaign, channel, address, contact_id, state, permanent, attempts, provider_id, …
        if values.len() >= 8 {
            let text = |i: usize| values[i].clone();
            if let (Some(channel), Some(state)) = (text(1), text(4)) {
                rows.push((channel, state, text(7)));
            }
        }
    }
    rows
}

#[test]
fn a_message_is_on_disk_before_the_ledger_records_it_sent() {
    let f = both_channels(40);
    let trace = f.path("send.strace");
    let out = Command::new("strace")
        .current_dir(f.dir.path())
        .env("OUTREACH_NOW", MIDDAY)
        .env_remove("RUST_LOG")
        .args(["-f", "-y", "-xx", "-s", "8192", "-o"])
        .arg(&trace)
        .args([
            "-e",
            "trace=linkat,rename,renameat,renameat2,write,pwrite64,fsync,fdatasync,syncfs",
        ])
        .arg(assert_cmd::cargo::cargo_bin("outreach"))
        .args(["send", "campaign.toml", "-q"])
        .output()
        .expect("strace is missing: run scripts/test, which installs Debian's strace");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let calls = calls(&std::fs::read_to_string(&trace).unwrap());
    let outbox = f.path("outbox").canonicalize().unwrap();
    let outbox = outbox.to_str().unwrap();

    // Where each message was complete in the outbox: an email once linked (or renamed) under
    // its name, an SMS once its line was written; by the provider id the ledger records.
    let mut written: BTreeMap<String, usize> = BTreeMap::new();
    let mut jsonl_end = 0;
    for c in calls.iter().filter(|c| c.result >= 0) {
        let named = c
            .strings
            .last()
            .map(|s| String::from_utf8_lossy(s).into_owned());
        match c.name.as_str() {
            "linkat" | "rename" | "renameat" | "renameat2" => {
                let path = std::path::PathBuf::from(named.expect("a new name"));
                if path.extension().is_some_and(|e| e == "eml") {
                    let name = path.file_name().unwrap().to_string_lossy().into_owned();
                    written.insert(name, c.exit);
                }
            }
            "write" if c.paths.first().is_some_and(|p| p.ends_with("/sms.jsonl")) => {
                assert_eq!(c.result as usize, c.strings[0].len(), "one write per line");
                written.insert(format!("test-campaign/sms.jsonl@{jsonl_end}"), c.exit);
                jsonl_end += c.result;
            }
            _ => {}
        }
    }
    // The syncs of the outboxes' file system.
    let syncs: Vec<&Call> = calls
        .iter()
        .filter(|c| c.name == "syncfs" && c.result == 0)
        .filter(|c| c.paths.first().is_some_and(|p| p.starts_with(outbox)))
        .collect();
    // Every write to the write-ahead log that carries a row `sent`: the message it records was
    // complete before a sync of the outbox began, and that sync ended before this write began.
    let mut recorded = BTreeSet::new();
    for c in calls
        .iter()
        .filter(|c| c.name == "pwrite64" || c.name == "write")
    {
        if !c
            .paths
            .first()
            .is_some_and(|p| p.ends_with("ledger.sqlite-wal"))
        {
            continue;
        }
        let data = &c.strings[0];
        let page = if data.len() == 4096 + 24 {
            &data[24..]
        } else {
            &data[..]
        };
        for (channel, state, id) in message_rows(page) {
            if state != "sent" {
                continue;
            }
            let id = id.expect("a sent message has a provider id");
            let done = *written
                .get(&id)
                .unwrap_or_else(|| panic!("{channel} {id} recorded sent, never written"));
            assert!(
                syncs.iter().any(|s| s.entry > done && s.exit < c.entry),
                "{channel} {id} (written at trace line {}) recorded sent at line {} with no \
                 sync of the outbox between",
                done + 1,
                c.entry + 1
            );
            recorded.insert(id);
        }
    }
    // The check covered every message: each one the ledger holds sent was seen recorded.
    let sent: BTreeSet<String> = ledger(&f)
        .into_values()
        .filter(|(state, ..)| state == "sent")
        .map(|(_, _, id, _)| id.unwrap())
        .collect();
    assert_eq!(sent.len(), 80, "40 emails and 40 SMS sent");
    assert_eq!(recorded, sent);
}

/// Runs `send` with the email outbox on a 64 KiB tmpfs and the SMS outbox on a 4 KiB one, each
/// mounted in a mount namespace of the run's own; keeps a copy of what they held in `kept/`.
fn send_on_a_full_disk(f: &Fixture) -> (i32, String) {
    let campaign = f.read("campaign.toml");
    let sms = "outbox = \"outbox/sms.jsonl\"";
    assert!(campaign.contains(sms));
    // The failures do not stop the run: each channel goes on until its disk is full.
    let campaign = campaign.replace(sms, "outbox = \"outbox/sms/sms.jsonl\"");
    f.write(
        "campaign.toml",
        &format!("{campaign}max_consecutive_failures = 1000\n"),
    );
    for dir in ["outbox/email", "outbox/sms", "kept"] {
        std::fs::create_dir_all(f.path(dir)).unwrap();
    }
    let root = std::process::Command::new("id").arg("-u").output().unwrap();
    let unshare = match String::from_utf8_lossy(&root.stdout).trim() {
        "0" => "-m",
        _ => "-rm",
    };
    let script = r#"mount -t tmpfs -o size=64k,mode=0700 tmpfs outbox/email &&
        mount -t tmpfs -o size=4k,mode=0700 tmpfs outbox/sms || exit 99
        "$1" send campaign.toml --format json; code=$?
        cp -a outbox/email outbox/sms kept/ && exit $code"#;
    let out = Command::new("unshare")
        .current_dir(f.dir.path())
        .env("OUTREACH_NOW", MIDDAY)
        .env_remove("RUST_LOG")
        .args([unshare, "sh", "-c", script, "sh"])
        .arg(assert_cmd::cargo::cargo_bin("outreach"))
        .output()
        .expect("unshare is missing: run scripts/test, which installs Debian's util-linux");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_ne!(out.status.code(), Some(99), "mounting the tmpfs: {stderr}");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

/// Whether an `.eml` ends with the closing delimiter of its top-level multipart boundary.
fn whole(eml: &str) -> bool {
    let boundary = eml
        .split("boundary=\"")
        .nth(1)
        .and_then(|b| b.split('"').next())
        .expect("a multipart email");
    eml.ends_with(&format!("--{boundary}--\r\n"))
}

#[test]
fn on_a_full_disk_a_message_fails_transiently_and_leaves_nothing_partial() {
    let f = both_channels(30);
    let (code, summary) = send_on_a_full_disk(&f);
    assert_eq!(
        code, 3,
        "transient failures left for the next run: {summary}"
    );
    let rows = ledger(&f);

    // Emails: whole files only, no temporary ones, each one the ledger's `sent` and no other.
    let mut files = BTreeSet::new();
    for entry in std::fs::read_dir(f.path("kept/email")).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap().to_string();
        assert!(name.ends_with(".eml") && !name.starts_with('.'), "{name}");
        let eml = std::fs::read_to_string(&path).unwrap();
        assert!(whole(&eml), "{name} is cut short ({} bytes)", eml.len());
        files.insert(name);
    }
    // SMS: whole lines only, each at the offset the ledger recorded.
    let jsonl = std::fs::read_to_string(f.path("kept/sms/sms.jsonl")).unwrap();
    assert!(
        jsonl.is_empty() || jsonl.ends_with('\n'),
        "a part of a line"
    );
    // The SMS tmpfs is one page: the line that did not fit was written in part, up to the
    // page's end, then cut back off.
    let line = jsonl.find('\n').expect("some lines fitted") + 1;
    assert_eq!(
        jsonl.len(),
        4096 / line * line,
        "whole lines, and room for part of one"
    );
    let mut lines = BTreeSet::new();
    let mut offset = 0;
    for line in jsonl.split_inclusive('\n') {
        serde_json::from_str::<serde_json::Value>(line).expect("whole JSON lines");
        lines.insert(format!("test-campaign/sms.jsonl@{offset}"));
        offset += line.len();
    }
    let sent = |channel: &str| -> BTreeSet<String> {
        rows.iter()
            .filter(|((c, _), (state, ..))| c == channel && state == "sent")
            .map(|(_, (_, _, id, _))| id.clone().unwrap())
            .collect()
    };
    assert_eq!(
        sent("email"),
        files,
        "the ledger's sent emails are the outbox's"
    );
    assert_eq!(sent("sms"), lines, "the ledger's sent SMS are the outbox's");

    // What did not fit is a transient failure on each channel, left for the next run.
    for channel in ["email", "sms"] {
        let full = rows
            .iter()
            .filter(|((c, _), (state, permanent, _, error))| {
                c == channel
                    && state == "failed"
                    && !permanent
                    && error
                        .as_deref()
                        .is_some_and(|e| e.contains("No space left"))
            })
            .count();
        assert!(
            full > 0,
            "{channel}: no transient failure for a full disk: {rows:?}"
        );
        assert!(!sent(channel).is_empty(), "{channel}: some fitted");
    }
    // The next run, with room, sends them.
    let (code, out, _) = f.run(&["send", "campaign.toml", "-q"]);
    assert_eq!(code, 0, "{out}");
    assert!(ledger(&f).values().all(|(state, ..)| state == "sent"));
}

/// Two campaigns of one state directory, each with an SMS outbox of its own: their SMS's ids
/// (`CAMPAIGN/sms.jsonl@OFFSET`) differ, so the ledger keeps every part of both for the
/// receipts. By the offset alone the second campaign's ids met the first's and its parts were
/// dropped, its receipts then matching nothing.
#[test]
fn two_campaigns_with_outboxes_of_their_own_keep_every_sms_part() {
    let mut csv = format!("{HEADER}\n");
    for i in 0..5 {
        csv.push_str(&format!(
            "P{i},Pat,Num{i},,+1312555{:04},sms,,yes,\n",
            100 + i
        ));
    }
    let f = Fixture::sms_only(&csv);
    let toml = f.read("campaign.toml");
    f.write(
        "second.toml",
        &toml
            .replace("id = \"test-campaign\"", "id = \"second-campaign\"")
            .replace("outbox/sms.jsonl", "outbox2/sms.jsonl"),
    );
    for file in ["campaign.toml", "second.toml"] {
        let mut c = f.cmd(&["send", file]);
        c.env("OUTREACH_NOW", MIDDAY);
        let (code, out, err) = common::run(c);
        assert_eq!(code, 0, "{out}{err}");
    }
    let ledger = f.ledger();
    assert_eq!(
        ledger.count("SELECT COUNT(*) FROM messages WHERE state = 'sent'"),
        10
    );
    assert_eq!(
        ledger.count("SELECT COUNT(*) FROM sms_parts"),
        10,
        "a part for every SMS of both campaigns"
    );
    assert_eq!(
        ledger.count(
            "SELECT COUNT(*) FROM sms_parts p JOIN messages m ON m.rowid = p.message
             WHERE p.provider_id LIKE m.campaign || '/sms.jsonl@%'"
        ),
        10
    );
}
