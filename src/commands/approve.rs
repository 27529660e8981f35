//! `outreach approve`: runs `check`, then records in the ledger who approved the campaign, when,
//! and the fingerprint of what patients receive ([`crate::approval`]); `--show` prints the
//! latest approval and whether the campaign still matches it.

use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;

use crate::approval::{self, Status, counted, show};
use crate::commands::check::{self, CheckReport};
use crate::load::Loaded;
use crate::store::ledger::{Ledger, LedgerError};

/// How `approve` was asked to record.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Who approves (default: the OS user).
    pub by: Option<String>,
    /// Refuse when any row has a problem.
    pub strict: bool,
}

/// What `approve` did.
#[derive(Debug)]
pub enum Outcome {
    Approved(Approved),
    /// `--strict` and some rows have problems: nothing recorded; the check says which.
    Refused(Box<CheckReport>),
}

/// Checks the loaded campaign, then records the approval of exactly what it holds.
pub fn record(loaded: &Loaded, options: &Options) -> Result<Outcome, LedgerError> {
    let report = check::run(loaded);
    if options.strict && !report.errors.is_empty() {
        return Ok(Outcome::Refused(Box::new(report)));
    }
    let by = options
        .by
        .clone()
        .filter(|b| !b.trim().is_empty())
        .unwrap_or_else(os_user);
    let fingerprint = approval::fingerprint(loaded);
    let mut ledger = Ledger::open_store(&loaded.campaign.sending.store())?;
    ledger.approve(&loaded.campaign.id, by.trim(), loaded.now, &fingerprint)?;
    ledger.remember_file(&loaded.campaign.id, &loaded.campaign.file, loaded.now)?;
    drop(ledger);
    Ok(Outcome::Approved(Approved::new(loaded, by.trim(), &report)))
}

/// What `approve` prints after recording an approval.
#[derive(Debug, Clone, Serialize)]
pub struct Approved {
    pub campaign: String,
    pub by: String,
    pub at: String,
    /// Messages that would go now or on a later run, per channel.
    pub would_go: BTreeMap<String, usize>,
    pub contact_rows: usize,
    pub templates: usize,
    pub suppression_files: usize,
    pub require_approval: bool,
}

impl Approved {
    /// The record of an approval just made.
    pub fn new(loaded: &Loaded, by: &str, report: &CheckReport) -> Self {
        Approved {
            campaign: loaded.campaign.id.clone(),
            by: by.to_string(),
            at: crate::plan::clinic_time(&loaded.campaign, loaded.now),
            would_go: report
                .channels
                .iter()
                .filter_map(|t| {
                    t.channel
                        .map(|c| (c.as_str().to_string(), t.due + t.deferred_total()))
                })
                .collect(),
            contact_rows: loaded.contacts.contacts.len(),
            templates: loaded.templates.files.len(),
            suppression_files: loaded.suppressions.files.len(),
            require_approval: loaded.campaign.require_approval,
        }
    }
}

impl fmt::Display for Approved {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let go: Vec<String> = self
            .would_go
            .iter()
            .map(|(c, n)| format!("{n} {c}"))
            .collect();
        writeln!(
            f,
            "Approved campaign {} by {} at {}: {} messages would go ({}); fingerprinted {}, {}, {}",
            self.campaign,
            self.by,
            self.at,
            self.would_go.values().sum::<usize>(),
            go.join(", "),
            counted(self.contact_rows, "contact row", "contact rows"),
            counted(self.templates, "template", "templates"),
            counted(
                self.suppression_files,
                "suppression list",
                "suppression lists"
            ),
        )?;
        if self.require_approval {
            write!(
                f,
                "send now sends this; a changed template, message or audience setting, an added \
                 or changed contact row or a removed opt-out needs a new approval"
            )
        } else {
            write!(
                f,
                "Note: campaign.require_approval = false, so send does not check it"
            )
        }
    }
}

/// What `approve --show` prints: the latest approval and how the campaign compares now.
#[derive(Debug, Clone, Serialize)]
pub struct Shown {
    pub campaign: String,
    pub record: Option<ShownRecord>,
    pub status: Status,
}

/// The stored approval, as shown.
#[derive(Debug, Clone, Serialize)]
pub struct ShownRecord {
    pub by: String,
    /// UTC, RFC 3339.
    pub at: String,
    pub settings: BTreeMap<String, String>,
    pub templates: BTreeMap<String, String>,
    pub contacts_file: String,
    pub contact_rows: usize,
    pub suppression_files: BTreeMap<String, usize>,
}

impl Shown {
    /// The latest approval of the loaded campaign, compared with it.
    pub fn of(loaded: &Loaded) -> Result<Self, LedgerError> {
        let record = approval::latest(loaded)?.map(|a| {
            let s = a.fingerprint.summary;
            ShownRecord {
                by: a.by,
                at: a.at.to_rfc3339(),
                settings: s.settings,
                templates: s.templates,
                contacts_file: s.contacts_file,
                contact_rows: s.contact_rows,
                suppression_files: s.suppression_files,
            }
        });
        Ok(Shown {
            campaign: loaded.campaign.id.clone(),
            record,
            status: approval::status(loaded)?,
        })
    }
}

impl fmt::Display for Shown {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Some(r) = &self.record else {
            return write!(f, "Campaign {}: no approval recorded", self.campaign);
        };
        writeln!(f, "Campaign {}: {}", self.campaign, self.status)?;
        writeln!(f, "Approved by {} at {}", r.by, r.at)?;
        writeln!(f, "Settings ({}, hashed):", r.settings.len())?;
        for (k, v) in &r.settings {
            writeln!(f, "  {k:<26} {v}")?;
        }
        writeln!(f, "Templates ({}, SHA-256):", r.templates.len())?;
        for (k, v) in &r.templates {
            writeln!(f, "  {k:<26} {v}")?;
        }
        writeln!(
            f,
            "Contacts {}: {} rows (each hashed by its id or address)",
            show(&r.contacts_file),
            r.contact_rows
        )?;
        write!(f, "Suppression lists:")?;
        if r.suppression_files.is_empty() {
            write!(f, " none")?;
        }
        for (file, n) in &r.suppression_files {
            write!(
                f,
                "\n  {}: {}",
                show(file),
                counted(*n, "address", "addresses")
            )?;
        }
        Ok(())
    }
}

/// The OS user, the default approver.
pub fn os_user() -> String {
    ["USER", "LOGNAME", "USERNAME"]
        .iter()
        .find_map(|v| std::env::var(v).ok().filter(|s| !s.trim().is_empty()))
        .unwrap_or_else(|| "unknown".into())
}
