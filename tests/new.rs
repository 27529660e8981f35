//! `outreach new`: the scaffold runs as it is (check, approve, send on the file transports),
//! names every key the README documents, never overwrites, and the plain starting set holds no
//! word of the psoas campaign.

use std::path::Path;

use crate::common::{self, MIDDAY};

/// `outreach ARGS` in `dir` at midday: (exit code, stdout, stderr).
fn run(dir: &Path, args: &[&str]) -> (i32, String, String) {
    let mut c = common::outreach();
    c.current_dir(dir).env("OUTREACH_NOW", MIDDAY).args(args);
    common::run(c)
}

/// Every file under `dir`, relative to it, with its bytes.
fn files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let rel = p.strip_prefix(dir).unwrap().to_string_lossy().to_string();
                out.push((rel, std::fs::read(&p).unwrap()));
            }
        }
    }
    out.sort();
    out
}

#[test]
fn a_new_campaign_checks_approves_and_sends_as_it_is() {
    let tmp = tempfile::tempdir().unwrap();
    let (code, out, err) = run(tmp.path(), &["new", "recall-2027"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("Next:\n  outreach check recall-2027/campaign.toml\n"),
        "{out}"
    );
    let dir = tmp.path().join("recall-2027");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&dir.join("contacts.csv")), 0o600);
    }
    // Nothing of the psoas campaign in the plain set.
    for (name, bytes) in files(&dir) {
        let text = String::from_utf8(bytes).unwrap().to_lowercase();
        assert!(!text.contains("psoas"), "{name} mentions psoas");
    }
    let file = "recall-2027/campaign.toml";
    let (code, out, err) = run(tmp.path(), &["check", file, "--strict", "--format", "json"]);
    assert_eq!(code, 0, "{out}{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["rows"], 3, "{v}");
    assert_eq!(v["rows_with_problems"], 0, "{v}");
    let (code, out, err) = run(tmp.path(), &["approve", file, "--by", "Dr Lee"]);
    assert_eq!(code, 0, "{out}{err}");
    let (code, out, err) = run(tmp.path(), &["send", file, "--format", "json"]);
    assert_eq!(code, 0, "{out}{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let sent: Vec<u64> = (0..2)
        .map(|i| v["channels"][i]["sent"].as_u64().unwrap())
        .collect();
    assert_eq!(sent, [2, 2], "{v}");
    let emails = std::fs::read_dir(dir.join("outbox/email")).unwrap().count();
    let texts = std::fs::read_to_string(dir.join("outbox/sms.jsonl")).unwrap();
    assert_eq!((emails, texts.lines().count()), (2, 2));
    assert!(texts.contains("Hi Ann, we have news for you."), "{texts}");
}

#[test]
fn it_never_overwrites_and_refuses_a_name_that_cannot_be_an_id() {
    let tmp = tempfile::tempdir().unwrap();
    assert_eq!(run(tmp.path(), &["new", "recall", "-q"]).0, 0);
    let before = files(&tmp.path().join("recall"));
    std::fs::write(tmp.path().join("recall/templates/subject.hbs"), "Edited").unwrap();
    let (code, out, err) = run(tmp.path(), &["new", "recall", "--from", "psoas"]);
    assert_eq!(code, 2, "{out}{err}");
    assert_eq!(
        err,
        "error: recall: already there; nothing written (new never overwrites)\n"
    );
    let after = files(&tmp.path().join("recall"));
    assert_eq!(after.len(), before.len());
    assert_eq!(
        std::fs::read_to_string(tmp.path().join("recall/templates/subject.hbs")).unwrap(),
        "Edited"
    );
    let (code, _, err) = run(tmp.path(), &["new", "a/b"]);
    assert_eq!(code, 2);
    assert!(err.contains("\"a/b\" cannot be a campaign id"), "{err}");
    assert!(!tmp.path().join("a").exists());
}

#[test]
fn from_psoas_gives_the_shipped_templates_in_the_directory_asked_for() {
    let tmp = tempfile::tempdir().unwrap();
    let (code, out, err) = run(
        tmp.path(),
        &[
            "new",
            "psoas-2027",
            "--from",
            "psoas",
            "--dir",
            "clinic/psoas",
        ],
    );
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("outreach send clinic/psoas/campaign.toml"),
        "{out}"
    );
    let dir = tmp.path().join("clinic/psoas");
    assert_eq!(
        files(&dir.join("templates")),
        files(&common::repo().join("templates/psoas"))
    );
    let (code, out, err) = run(
        tmp.path(),
        &["check", "clinic/psoas/campaign.toml", "--strict"],
    );
    assert_eq!(code, 0, "{out}{err}");
}

/// The keys of README's campaign-file table (`campaign.id`, `email.smtp.host`, …): each one's
/// last part, with the table it sits in.
fn documented_keys() -> Vec<(String, String)> {
    let readme = std::fs::read_to_string(common::repo().join("README.md")).unwrap();
    let table = readme
        .split("## Campaign file")
        .nth(1)
        .unwrap()
        .split("\n## ")
        .next()
        .unwrap();
    let mut keys = Vec::new();
    for row in table.lines().filter(|l| l.starts_with("| `")) {
        let first = row.split(" | ").next().unwrap();
        let mut table = String::new();
        for key in first.split('`').skip(1).step_by(2) {
            // `.port` continues the key before it (`email.smtp.host`, `.port`).
            let full = match key.strip_prefix('.') {
                Some(rest) => format!("{table}.{rest}"),
                None => key.to_string(),
            };
            let Some((t, leaf)) = full.rsplit_once('.') else {
                continue;
            };
            table = t.to_string();
            if leaf.chars().all(|c| c.is_ascii_lowercase() || c == '_') {
                keys.push((t.to_string(), leaf.to_string()));
            }
        }
    }
    keys
}

#[test]
fn the_campaign_file_names_every_documented_key() {
    let tmp = tempfile::tempdir().unwrap();
    assert_eq!(run(tmp.path(), &["new", "c", "-q"]).0, 0);
    let toml = std::fs::read_to_string(tmp.path().join("c/campaign.toml")).unwrap();
    // Each key, set or commented, under its table's header (set or commented).
    let mut section = String::new();
    let mut found = std::collections::HashSet::new();
    for line in toml.lines() {
        let line = line.trim_start_matches('#').trim();
        if let Some(h) = line.strip_prefix('[') {
            section = h.split(']').next().unwrap().to_string();
        } else if let Some((key, _)) = line.split_once('=') {
            found.insert((section.clone(), key.trim().to_string()));
        }
    }
    let keys = documented_keys();
    assert!(keys.len() > 60, "{keys:?}");
    let missing: Vec<String> = keys
        .iter()
        .filter(|k| !found.contains(*k))
        .map(|(t, k)| format!("{t}.{k}"))
        .collect();
    assert!(missing.is_empty(), "not in the scaffold: {missing:?}");
}
