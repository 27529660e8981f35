//! Approvals: what cron sends is what an admin approved. `outreach approve` records in the ledger
//! who approved a campaign, when, and a [`Fingerprint`] of everything that decides what patients
//! receive and who receives it (DESIGN.md, "Decisions"): the settings that shape messages or the
//! audience, every template and partial, each contact row and each suppression entry. `send`
//! (with `campaign.require_approval`) compares the campaign it loaded with it and refuses when
//! anything that matters changed, naming each change.
//!
//! Only hashes are stored. Contact rows are keyed by the row's identity (its id, else its
//! address) and hashed with the state directory's secret key, so the ledger holds no patient data
//! and its hashes cannot be matched against a list of guessed addresses. Changes that can only
//! remove recipients (rows deleted, opt-outs added) keep the approval: an opt-out never waits for
//! an admin. Transport, rates, concurrency, retries and `state_dir` are outside the fingerprint.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::path::{Path, PathBuf};

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::config::Campaign;
use crate::load::Loaded;
use crate::store::approvals::{Approval, Fingerprint, Summary};
use crate::store::ledger::{self, Ledger, LedgerError};

fn canonical(path: &Path) -> String {
    std::fs::canonicalize(path)
        .unwrap_or_else(|_| path.to_path_buf())
        .display()
        .to_string()
}

/// The settings an approval covers, with their effective values.
pub fn settings(c: &Campaign) -> Vec<(&'static str, String)> {
    let edge = |e: &Option<crate::config::WindowEdge>| {
        e.as_ref()
            .map(|e| ledger::timestamp(e.at))
            .unwrap_or_default()
    };
    let mut out = vec![
        ("campaign.id", c.id.clone()),
        ("campaign.name", c.name.clone()),
        (
            "campaign.channels",
            c.channels
                .iter()
                .map(|ch| ch.as_str())
                .collect::<Vec<_>>()
                .join(","),
        ),
        ("campaign.require_consent", c.require_consent.to_string()),
        ("campaign.not_before", edge(&c.window.not_before)),
        ("campaign.not_after", edge(&c.window.not_after)),
        ("clinic.name", c.clinic.name.clone()),
        ("clinic.phone", c.clinic.phone.clone()),
        ("clinic.address", c.clinic.address.clone()),
        ("clinic.website", c.clinic.website.clone()),
        ("clinic.booking_url", c.clinic.booking_url.clone()),
        ("clinic.timezone", c.clinic.timezone.name().to_string()),
        ("clinic.region", c.clinic.region_code.clone()),
        ("contacts.path", canonical(&c.contacts.path)),
        (
            "contacts.encoding",
            c.contacts
                .encoding
                .map(|e| e.name().to_string())
                .unwrap_or_else(|| "auto".into()),
        ),
        (
            "contacts.delimiter",
            c.contacts
                .delimiter
                .map(|d| (d as char).to_string())
                .unwrap_or_else(|| "auto".into()),
        ),
        ("contacts.columns", format!("{:?}", c.contacts.columns)),
        (
            "contacts.where",
            (c.contacts.audience.as_ref())
                .map(|(f, _)| f.text().to_string())
                .unwrap_or_default(),
        ),
        (
            "contacts.date_formats",
            format!("{:?}", c.contacts.date_forms),
        ),
        ("templates.dir", canonical(&c.templates_dir)),
    ];
    // Only when tagging is on, so that approvals recorded before `[campaign.utm]` existed still
    // hold for campaigns without it; turning it on adds these keys, which voids the approval.
    if let Some(u) = &c.utm {
        out.extend([
            ("campaign.utm.source", u.source.clone()),
            (
                "campaign.utm.medium",
                u.medium.clone().unwrap_or_else(|| "(the channel)".into()),
            ),
            ("campaign.utm.campaign", u.campaign.clone()),
            (
                "campaign.utm.content",
                u.content.clone().unwrap_or_default(),
            ),
            ("campaign.utm.hosts", u.hosts.join(",")),
        ]);
    }
    // Which set a patient without a folder of their language gets. Listed only when it is not
    // the default, so approvals given before the key existed still hold.
    if c.language.as_str() != crate::config::DEFAULT_LANGUAGE {
        out.push(("campaign.language", c.language.to_string()));
    }
    if let Some(e) = &c.email {
        out.extend([
            ("email.from", e.from.to_string()),
            (
                "email.reply_to",
                e.reply_to
                    .as_ref()
                    .map(|r| r.to_string())
                    .unwrap_or_default(),
            ),
            ("email.unsubscribe_url", e.unsubscribe_url.clone()),
            (
                "email.unsubscribe_mailto",
                e.unsubscribe_mailto
                    .as_ref()
                    .map(|m| m.to_string())
                    .unwrap_or_default(),
            ),
        ]);
    }
    if let Some(s) = &c.sms {
        out.extend([
            ("sms.from", s.from.clone()),
            (
                "sms.quiet_hours",
                s.quiet_hours.map(|q| q.to_string()).unwrap_or_default(),
            ),
            ("sms.max_segments", s.max_segments.to_string()),
            ("sms.smart_encoding", s.smart_encoding.to_string()),
        ]);
    }
    out
}

fn sha(parts: &[&str]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p.as_bytes());
        h.update([0x1f]);
    }
    data_encoding::HEXLOWER.encode(&h.finalize()[..16])
}

/// What a row outside the audience (`contacts.where`) is recorded as, instead of the hash of its
/// cells: it receives nothing, so what it holds does not matter until it joins the audience,
/// which voids the approval.
const OUTSIDE: &str = "outside the audience";

/// The fingerprint of a loaded campaign: exactly what this process would send.
pub fn fingerprint(loaded: &Loaded) -> Fingerprint {
    let c = &loaded.campaign;
    let key = &loaded.key;
    let mut summary = Summary {
        settings: settings(c)
            .into_iter()
            .map(|(k, v)| (k.to_string(), sha(&[k, &v])))
            .collect(),
        templates: loaded.templates.files.clone(),
        contacts_file: canonical(&loaded.contacts.path),
        contacts_header: sha(&[&loaded.contacts.columns.join("\x1f")]),
        contact_rows: loaded.contacts.contacts.len(),
        suppression_files: BTreeMap::new(),
    };
    let contacts = &loaded.contacts.contacts;
    let mut seen: HashMap<String, usize> = HashMap::new();
    let identities: Vec<String> = contacts
        .iter()
        .map(|contact| {
            let identity = if contact.has_id() {
                format!("id:{}", contact.id)
            } else if let Some(e) = &contact.email {
                format!("email:{}", e.normalised())
            } else if let Some(p) = &contact.phone {
                format!("phone:{p}")
            } else {
                format!("line:{}", contact.line)
            };
            // The same identity twice (a duplicated id) stays two rows.
            let n = seen.entry(identity.clone()).or_default();
            *n += 1;
            format!("{identity}#{n}")
        })
        .collect();
    // Two keyed digests a row, on every core (they were most of an approved send's check).
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let chunk = contacts.len().div_ceil(threads).max(1024);
    let contact_rows = std::thread::scope(|scope| {
        let parts: Vec<_> = contacts
            .chunks(chunk)
            .zip(identities.chunks(chunk))
            .map(|(contacts, identities)| {
                scope.spawn(move || {
                    contacts
                        .iter()
                        .zip(identities)
                        .map(|(contact, identity)| {
                            let row = if contact.in_audience {
                                let cells: Vec<&str> = contact.cells().collect();
                                key.digest("approval contact row", &cells)
                            } else {
                                OUTSIDE.to_string()
                            };
                            (key.digest("approval contact key", &[identity]), row)
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        let mut rows = HashMap::with_capacity(contacts.len());
        for part in parts {
            rows.extend(part.join().expect("a fingerprint worker panicked"));
        }
        rows
    });
    let mut suppressions: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (file, addresses) in &loaded.suppressions.files {
        let file = canonical(file);
        let set = suppressions.entry(file.clone()).or_default();
        for a in addresses {
            set.insert(key.digest("approval suppression", &[a]));
        }
        *summary.suppression_files.entry(file).or_default() = set.len();
    }
    Fingerprint {
        summary,
        contact_rows,
        suppressions,
    }
}

/// What changed between an approval and now.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Diff {
    /// Changes that void the approval (they could change a message or add a recipient).
    pub changes: Vec<String>,
    /// Changes that can only remove recipients: the approval stands.
    pub notes: Vec<String>,
}

/// A stored file path as reports show it.
pub fn show(file: &str) -> String {
    crate::paths::show_path(Path::new(file))
}

/// `1 row`, `2 rows`.
pub fn counted(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// Compares an approved fingerprint with the current one.
pub fn diff(approved: &Fingerprint, now: &Fingerprint) -> Diff {
    let mut d = Diff::default();
    let (a, b) = (&approved.summary, &now.summary);
    let keys: BTreeSet<&String> = a.settings.keys().chain(b.settings.keys()).collect();
    for k in keys {
        if a.settings.get(k) != b.settings.get(k) {
            d.changes.push(format!("setting {k} changed"));
        }
    }
    let files: BTreeSet<&String> = a.templates.keys().chain(b.templates.keys()).collect();
    for f in files {
        match (a.templates.get(f), b.templates.get(f)) {
            (Some(x), Some(y)) if x != y => d.changes.push(format!("template {f} changed")),
            (None, Some(_)) => d.changes.push(format!("template {f} added")),
            (Some(_), None) => d.changes.push(format!("template {f} removed")),
            _ => {}
        }
    }
    let file = show(&b.contacts_file);
    if a.contacts_header != b.contacts_header {
        d.changes.push(format!("{file}: columns changed"));
    }
    let (mut added, mut changed, mut joined, mut left) = (0, 0, 0, 0);
    for (k, h) in &now.contact_rows {
        match approved.contact_rows.get(k) {
            // A new row outside the audience receives nothing.
            None if h == OUTSIDE => {}
            None => added += 1,
            Some(old) if old == OUTSIDE && h != OUTSIDE => joined += 1,
            Some(old) if h == OUTSIDE && old != OUTSIDE => left += 1,
            Some(old) if old != h => changed += 1,
            _ => {}
        }
    }
    if joined > 0 {
        d.changes.push(format!(
            "{} joined the audience since it was approved (contacts.where)",
            counted(joined, "patient", "patients")
        ));
    }
    if left > 0 {
        d.notes.push(format!(
            "{} left the audience since it was approved (contacts.where)",
            counted(left, "patient", "patients")
        ));
    }
    let removed = approved
        .contact_rows
        .keys()
        .filter(|k| !now.contact_rows.contains_key(*k))
        .count();
    let mut parts = Vec::new();
    for (n, verb) in [(added, "added"), (changed, "changed"), (removed, "removed")] {
        if n > 0 {
            if parts.is_empty() {
                parts.push(format!("{} {verb}", counted(n, "row", "rows")));
            } else {
                parts.push(format!("{n} {verb}"));
            }
        }
    }
    if !parts.is_empty() {
        let line = format!("{file}: {}", parts.join(", "));
        if added + changed > 0 {
            d.changes.push(line);
        } else {
            d.notes.push(line);
        }
    }
    // An address no longer suppressed anywhere could be messaged again; new ones only remove.
    let all_now: BTreeSet<&String> = now.suppressions.values().flatten().collect();
    let all_then: BTreeSet<&String> = approved.suppressions.values().flatten().collect();
    for (f, entries) in &approved.suppressions {
        let gone = entries.iter().filter(|e| !all_now.contains(e)).count();
        if gone > 0 {
            d.changes.push(format!(
                "{}: {} removed",
                show(f),
                counted(gone, "opt-out entry", "opt-out entries")
            ));
        }
    }
    for (f, entries) in &now.suppressions {
        let new = entries.iter().filter(|e| !all_then.contains(e)).count();
        if new > 0 {
            d.notes.push(format!(
                "{}: {} added",
                show(f),
                counted(new, "opt-out entry", "opt-out entries")
            ));
        }
    }
    d
}

/// Where a campaign stands with its approval.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum Status {
    NotApproved {
        required: bool,
    },
    Approved {
        required: bool,
        by: String,
        /// The clinic's time.
        at: String,
        /// Changes since that keep the approval.
        notes: Vec<String>,
    },
    Changed {
        required: bool,
        by: String,
        at: String,
        changes: Vec<String>,
        notes: Vec<String>,
    },
}

impl Status {
    /// Whether `send` may go ahead on this status.
    pub fn allows_send(&self) -> bool {
        match self {
            Status::NotApproved { required } | Status::Changed { required, .. } => !required,
            Status::Approved { .. } => true,
        }
    }

    /// Whether it is worth showing (approval is required, or one was given).
    pub fn worth_showing(&self) -> bool {
        !matches!(self, Status::NotApproved { required: false })
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Status::NotApproved { required: true } => {
                f.write_str("not approved: send refuses until someone runs outreach approve")?
            }
            Status::NotApproved { .. } => f.write_str("not approved")?,
            Status::Approved { by, at, notes, .. } => {
                write!(f, "approved by {by} at {at}")?;
                if !notes.is_empty() {
                    write!(f, " (since then: {})", notes.join("; "))?;
                }
            }
            Status::Changed {
                by, at, changes, ..
            } => write!(
                f,
                "changed since approved by {by} at {at}: {}",
                changes.join("; ")
            )?,
        }
        let required = match self {
            Status::NotApproved { required }
            | Status::Approved { required, .. }
            | Status::Changed { required, .. } => *required,
        };
        if !required {
            f.write_str(" (not required: campaign.require_approval = false)")?;
        }
        Ok(())
    }
}

/// The latest approval of the loaded campaign, if its ledger has one.
pub fn latest(loaded: &Loaded) -> Result<Option<Approval>, LedgerError> {
    let store = loaded.campaign.sending.store();
    match Ledger::open_existing(&store)? {
        Some(l) => l.approval(&loaded.campaign.id),
        None => Ok(None),
    }
}

/// Compares the loaded campaign with its latest approval.
pub fn status(loaded: &Loaded) -> Result<Status, LedgerError> {
    let required = loaded.campaign.require_approval;
    let Some(approval) = latest(loaded)? else {
        return Ok(Status::NotApproved { required });
    };
    let d = diff(&approval.fingerprint, &fingerprint(loaded));
    let at = crate::plan::clinic_time(&loaded.campaign, approval.at);
    Ok(if d.changes.is_empty() {
        Status::Approved {
            required,
            by: approval.by,
            at,
            notes: d.notes,
        }
    } else {
        Status::Changed {
            required,
            by: approval.by,
            at,
            changes: d.changes,
            notes: d.notes,
        }
    })
}

/// Why `send` refuses a campaign that `campaign.require_approval` guards.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error(
        "campaign {id} changed since it was approved by {by} at {at}; nothing sent:\n{}review it \
         (outreach check / preview), then approve again: outreach approve {}",
        changes.iter().map(|c| format!("  {c}\n")).collect::<String>(),
        file.display()
    )]
    Changed {
        id: String,
        by: String,
        at: String,
        changes: Vec<String>,
        file: PathBuf,
    },
    #[error(
        "campaign {id} is not approved and campaign.require_approval = true; nothing sent. \
         Review it (outreach check / preview), then: outreach approve {}",
        file.display()
    )]
    NotApproved { id: String, file: PathBuf },
}

/// Why `send` refuses the loaded campaign, given its approval `status` (which does not allow it).
pub fn refusal(loaded: &Loaded, status: &Status) -> Refusal {
    let id = loaded.campaign.id.clone();
    let file = loaded.campaign.file.clone();
    match status {
        Status::Changed {
            by, at, changes, ..
        } => Refusal::Changed {
            id,
            by: by.clone(),
            at: at.clone(),
            changes: changes.clone(),
            file,
        },
        _ => Refusal::NotApproved { id, file },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn print(rows: &[(&str, &str)], opt_outs: &[&str]) -> Fingerprint {
        let mut f = Fingerprint::default();
        for (k, v) in rows {
            f.contact_rows.insert(k.to_string(), v.to_string());
        }
        f.suppressions.insert(
            "/x/opt-outs.csv".into(),
            opt_outs.iter().map(|s| s.to_string()).collect(),
        );
        f
    }

    #[test]
    fn removals_keep_the_approval_additions_void_it() {
        let approved = print(&[("a", "1"), ("b", "2"), ("c", "3")], &["x"]);
        let fewer = print(&[("a", "1")], &["x", "y"]);
        let d = diff(&approved, &fewer);
        assert!(d.changes.is_empty(), "{d:?}");
        assert_eq!(d.notes.len(), 2, "{d:?}");
        assert!(d.notes[0].ends_with(": 2 rows removed"), "{d:?}");
        let more = print(&[("a", "9"), ("d", "4"), ("e", "5")], &[]);
        let d = diff(&approved, &more);
        assert_eq!(d.changes.len(), 2, "{d:?}");
        assert!(
            d.changes[0].ends_with(": 2 rows added, 1 changed, 2 removed"),
            "{d:?}"
        );
        assert!(
            d.changes[1].ends_with("opt-outs.csv: 1 opt-out entry removed"),
            "{d:?}"
        );
    }
}
