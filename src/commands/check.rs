//! `outreach check`: validates everything and renders every message of every contact in memory,
//! then reports what a person can act on: totals (due, deferred, skipped by reason, per channel)
//! and each error and warning with its file and line. Rendering runs on every core.
//!
//! A warning many rows share (the same words on the same channel: every Spanish SMS is 3
//! segments) is said once with how many rows and the first rows' lines, not once a row: tens of
//! thousands of identical lines are read by nobody. What an SMS template's own text forces on
//! every message (UCS-2) is said once per template, when the campaign loads (`crate::load`);
//! a row is warned only about the characters its own values bring.

use std::collections::{BTreeMap, HashMap};
use std::fmt::{self, Write as _};
use std::path::PathBuf;

use serde::Serialize;

use crate::load::Loaded;
use crate::model::Channel;
use crate::paths::show_path;
use crate::plan::{Decision, Skip};
use crate::render::{Outcome, Warning};

/// A warning shared by more rows than this is said once, with the rows' count.
pub const ROWS_LISTED: usize = 10;
/// How many of those rows' lines the one finding lists.
pub const LINES_SHOWN: usize = 5;

/// One error or warning, located.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub file: PathBuf,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<usize>,
    /// The contact's id, for row findings.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub contact: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// The channels it stops (errors) or concerns (warnings).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub channels: Vec<Channel>,
    pub message: String,
    /// A warning more than [`ROWS_LISTED`] rows share, said once: how many rows (`line` and
    /// `contact` are then absent).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rows: Option<usize>,
    /// The lines of the first [`LINES_SHOWN`] of those rows.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub lines: Vec<usize>,
}

/// Counts for one channel.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ChannelTotals {
    pub channel: Option<Channel>,
    pub due: usize,
    pub deferred: BTreeMap<&'static str, usize>,
    pub skipped: BTreeMap<&'static str, usize>,
    /// Settled by earlier runs, by ledger state.
    pub done: BTreeMap<&'static str, usize>,
}

impl ChannelTotals {
    fn add(&mut self, decision: &Decision) {
        match decision {
            Decision::Due => self.due += 1,
            Decision::Deferred(d) => *self.deferred.entry(d.label()).or_default() += 1,
            Decision::Skipped(s) => *self.skipped.entry(s.label()).or_default() += 1,
            Decision::Done(state) => *self.done.entry(state.as_str()).or_default() += 1,
        }
    }

    fn merge(&mut self, other: ChannelTotals) {
        self.due += other.due;
        for (k, v) in other.deferred {
            *self.deferred.entry(k).or_default() += v;
        }
        for (k, v) in other.skipped {
            *self.skipped.entry(k).or_default() += v;
        }
        for (k, v) in other.done {
            *self.done.entry(k).or_default() += v;
        }
    }

    /// Messages deferred, all reasons.
    pub fn deferred_total(&self) -> usize {
        self.deferred.values().sum()
    }

    /// Messages skipped, all reasons.
    pub fn skipped_total(&self) -> usize {
        self.skipped.values().sum()
    }
}

/// What one language's contacts get: those whose language picks its templates (their own,
/// through the fallbacks, or the default set's).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct LanguageTotals {
    pub language: String,
    pub contacts: usize,
    /// Messages that would go (due now or deferred), by channel.
    pub messages: BTreeMap<&'static str, usize>,
}

/// What `check` found.
#[derive(Debug, Clone, Serialize)]
pub struct CheckReport {
    pub campaign: String,
    pub name: String,
    pub campaign_file: PathBuf,
    pub contacts_file: PathBuf,
    pub encoding: String,
    pub delimiter: String,
    /// Columns read as a standard field because of their spelling: header as written -> field.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub read_as: BTreeMap<String, &'static str>,
    pub rows: usize,
    pub valid_rows: usize,
    pub rows_with_problems: usize,
    pub suppressed_addresses: usize,
    pub templates_fingerprint: String,
    /// The approval state, when approval is required or was given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub approval: Option<crate::approval::Status>,
    pub channels: Vec<ChannelTotals>,
    /// Per template language, the default's first.
    pub languages: Vec<LanguageTotals>,
    /// Whether the contacts file has a `language` column (the text report then shows the
    /// counts per language).
    #[serde(skip)]
    pub language_column: bool,
    pub errors: Vec<Finding>,
    pub warnings: Vec<Finding>,
}

#[derive(Default)]
struct Chunk {
    totals: Vec<ChannelTotals>,
    languages: BTreeMap<String, LanguageTotals>,
    errors: Vec<Finding>,
    /// In row order; made into findings once every row's are known (`row_findings`).
    warnings: Vec<RowWarning>,
    rows_with_problems: usize,
}

/// A warning on one contact's row, not yet words: most are alike, and are said once.
struct RowWarning {
    index: usize,
    channel: Channel,
    said: Said,
}

/// What a row's warning says.
#[derive(PartialEq, Eq, Hash)]
enum Said {
    Message(Warning),
    Text(String),
}

impl fmt::Display for Said {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Said::Message(w) => w.fmt(f),
            Said::Text(t) => f.write_str(t),
        }
    }
}

/// Runs the check: every contact, every enabled channel, rendered.
pub fn run(loaded: &Loaded) -> CheckReport {
    let contacts = &loaded.contacts.contacts;
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .min(16);
    let chunk_size = contacts.len().div_ceil(threads).max(256);
    let chunks: Vec<Chunk> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..contacts.len())
            .step_by(chunk_size)
            .map(|start| {
                let end = (start + chunk_size).min(contacts.len());
                scope.spawn(move || check_range(loaded, start..end))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("check worker panicked"))
            .collect()
    });

    let mut totals: Vec<ChannelTotals> = loaded
        .campaign
        .channels
        .iter()
        .map(|c| ChannelTotals {
            channel: Some(*c),
            ..Default::default()
        })
        .collect();
    let mut errors = Vec::new();
    let mut warnings: Vec<Finding> = loaded
        .warnings
        .iter()
        .map(|w| Finding {
            file: w.file.clone(),
            line: w.line,
            contact: None,
            field: None,
            value: None,
            channels: vec![],
            message: w.message.clone(),
            rows: None,
            lines: Vec::new(),
        })
        .collect();
    let mut rows_with_problems = 0;
    let mut languages: Vec<LanguageTotals> = (loaded.templates.languages())
        .map(|l| LanguageTotals {
            language: l.to_string(),
            ..Default::default()
        })
        .collect();
    let mut row_warnings = Vec::new();
    for chunk in chunks {
        for (t, c) in totals.iter_mut().zip(chunk.totals) {
            t.merge(c);
        }
        for (language, counts) in chunk.languages {
            if let Some(t) = languages.iter_mut().find(|t| t.language == language) {
                t.contacts += counts.contacts;
                for (channel, n) in counts.messages {
                    *t.messages.entry(channel).or_default() += n;
                }
            }
        }
        errors.extend(chunk.errors);
        row_warnings.extend(chunk.warnings);
        rows_with_problems += chunk.rows_with_problems;
    }
    warnings.extend(row_findings(loaded, &row_warnings));

    CheckReport {
        campaign: loaded.campaign.id.clone(),
        name: loaded.campaign.name.clone(),
        campaign_file: loaded.campaign.file.clone(),
        contacts_file: loaded.contacts.path.clone(),
        encoding: loaded.contacts.encoding.to_string(),
        delimiter: match loaded.contacts.delimiter {
            '\t' => "tab".into(),
            d => d.to_string(),
        },
        read_as: loaded
            .contacts
            .header
            .read_as()
            .map(|(header, field)| (header.to_string(), field))
            .collect(),
        rows: contacts.len(),
        valid_rows: contacts.len() - rows_with_problems,
        rows_with_problems,
        suppressed_addresses: loaded.suppressions.len(),
        templates_fingerprint: loaded.templates.fingerprint.clone(),
        approval: None,
        channels: totals,
        languages,
        language_column: loaded.contacts.header.index_of("language").is_some(),
        errors,
        warnings,
    }
}

fn check_range(loaded: &Loaded, range: std::ops::Range<usize>) -> Chunk {
    let file = &loaded.contacts.path;
    let mut chunk = Chunk {
        totals: vec![ChannelTotals::default(); loaded.campaign.channels.len()],
        ..Default::default()
    };
    for index in range {
        let contact = &loaded.contacts.contacts[index];
        let (language, templates) = loaded.templates.pick(contact.language.as_ref());
        let forced = templates.sms_forced_ucs2();
        let language = (chunk.languages).entry(language.to_string()).or_default();
        language.contacts += 1;
        let mut row_has_problem = false;
        for p in &contact.problems {
            row_has_problem = true;
            chunk.errors.push(Finding {
                file: file.clone(),
                line: Some(contact.line),
                contact: Some(contact.id.clone()),
                field: Some(p.field.clone()),
                value: (!p.value.is_empty()).then(|| p.value.clone()),
                channels: p
                    .stops
                    .iter()
                    .copied()
                    .filter(|c| loaded.campaign.channels.contains(c))
                    .collect(),
                message: p.reason.clone(),
                rows: None,
                lines: Vec::new(),
            });
        }
        for (slot, &channel) in loaded.campaign.channels.iter().enumerate() {
            let Outcome {
                decision, warnings, ..
            } = loaded.outcome(index, channel, false);
            chunk.totals[slot].add(&decision);
            if decision.will_go() {
                *language.messages.entry(channel.as_str()).or_default() += 1;
            }
            let warning = |said| RowWarning {
                index,
                channel,
                said,
            };
            match &decision {
                Decision::Skipped(Skip::Message(m)) => {
                    row_has_problem = true;
                    chunk
                        .errors
                        .push(row_finding(file, contact, channel, m.clone()));
                }
                Decision::Skipped(Skip::Duplicate { line, id }) => {
                    chunk.warnings.push(warning(Said::Text(format!(
                        "duplicate {} of line {line} ({id}): only that row gets it",
                        match channel {
                            Channel::Email => "email",
                            Channel::Sms => "phone",
                        }
                    ))));
                }
                _ => {}
            }
            for w in warnings {
                if let Some(w) = w.beyond_template(forced) {
                    chunk.warnings.push(warning(Said::Message(w)));
                }
            }
        }
        if row_has_problem {
            chunk.rows_with_problems += 1;
        }
    }
    chunk
}

/// A finding on one contact's row, on `channel`.
fn row_finding(
    file: &std::path::Path,
    contact: &crate::contacts::Contact,
    channel: Channel,
    message: String,
) -> Finding {
    Finding {
        file: file.to_path_buf(),
        line: Some(contact.line),
        contact: Some(contact.id.clone()),
        field: None,
        value: None,
        channels: vec![channel],
        message,
        rows: None,
        lines: Vec::new(),
    }
}

/// The findings of the rows' warnings, in row order: a warning more than [`ROWS_LISTED`] rows
/// share (same words, same channel) once, where its first row is, with their count and first
/// lines; the others once a row.
fn row_findings(loaded: &Loaded, warnings: &[RowWarning]) -> Vec<Finding> {
    let mut rows: HashMap<(Channel, &Said), usize> = HashMap::new();
    for w in warnings {
        *rows.entry((w.channel, &w.said)).or_default() += 1;
    }
    let contacts = &loaded.contacts.contacts;
    let file = &loaded.contacts.path;
    let mut out = Vec::new();
    // The lines already listed of each shared warning, by the index of its finding in `out`.
    let mut shared: HashMap<(Channel, &Said), usize> = HashMap::new();
    for w in warnings {
        let key = (w.channel, &w.said);
        let line = contacts[w.index].line;
        let n = rows[&key];
        if n <= ROWS_LISTED {
            out.push(row_finding(
                file,
                &contacts[w.index],
                w.channel,
                w.said.to_string(),
            ));
        } else if let Some(&at) = shared.get(&key) {
            let lines: &mut Vec<usize> = &mut out[at].lines;
            if lines.len() < LINES_SHOWN {
                lines.push(line);
            }
        } else {
            shared.insert(key, out.len());
            out.push(Finding {
                file: file.clone(),
                line: None,
                contact: None,
                field: None,
                value: None,
                channels: vec![w.channel],
                message: w.said.to_string(),
                rows: Some(n),
                lines: vec![line],
            });
        }
    }
    out
}

impl Finding {
    /// For a warning said once for many rows: `"35939 rows (lines 3, 7, 12, 15, 20, …)"`.
    pub fn rows_note(&self) -> Option<String> {
        let rows = self.rows?;
        let lines: Vec<String> = self.lines.iter().map(usize::to_string).collect();
        let more = if rows > self.lines.len() { ", …" } else { "" };
        Some(format!("{rows} rows (lines {}{more})", lines.join(", ")))
    }

    fn location(&self) -> String {
        let mut s = show_path(&self.file);
        if let Some(line) = self.line {
            let _ = write!(s, ":{line}");
        }
        if let Some(id) = &self.contact {
            let _ = write!(s, " {id}");
        }
        s
    }
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.location())?;
        if let Some(field) = &self.field {
            write!(f, " {field}")?;
        }
        write!(f, ": {}", self.message)?;
        if !self.channels.is_empty() && self.field.is_some() {
            let names: Vec<&str> = self.channels.iter().map(|c| c.as_str()).collect();
            write!(f, " ({} skipped)", names.join(" and "))?;
        } else if !self.channels.is_empty() {
            let names: Vec<&str> = self.channels.iter().map(|c| c.as_str()).collect();
            write!(f, " [{}]", names.join(", "))?;
        }
        if let Some(rows) = self.rows_note() {
            write!(f, ": {rows}")?;
        }
        Ok(())
    }
}

impl CheckReport {
    /// The lines above the table: the campaign, its contacts file, suppressions, approval.
    fn fmt_files(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "Campaign {} ({}): {}",
            self.campaign,
            show_path(&self.campaign_file),
            self.name
        )?;
        writeln!(
            f,
            "Contacts {} ({}, '{}'-separated): {} rows, {} valid, {} with problems",
            show_path(&self.contacts_file),
            self.encoding,
            self.delimiter,
            self.rows,
            self.valid_rows,
            self.rows_with_problems
        )?;
        if !self.read_as.is_empty() {
            let read: Vec<String> = self
                .read_as
                .iter()
                .map(|(header, field)| format!("{header:?} as {field}"))
                .collect();
            writeln!(
                f,
                "Columns read by their usual spelling: {}",
                read.join(", ")
            )?;
        }
        writeln!(
            f,
            "Suppression lists: {} addresses",
            self.suppressed_addresses
        )?;
        if let Some(a) = &self.approval {
            writeln!(f, "Approval: {a}")?;
        }
        Ok(())
    }
}

impl fmt::Display for CheckReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.fmt_files(f)?;
        writeln!(f)?;

        let mut labels: Vec<(&str, &'static str)> = Vec::new();
        for t in &self.channels {
            for k in t.deferred.keys() {
                if !labels.contains(&("deferred", k)) {
                    labels.push(("deferred", k));
                }
            }
            for k in t.skipped.keys() {
                if !labels.contains(&("skipped", k)) {
                    labels.push(("skipped", k));
                }
            }
        }
        labels.sort_by_key(|(kind, label)| {
            (
                *kind,
                crate::plan::SKIP_ORDER
                    .iter()
                    .position(|l| l == label)
                    .unwrap_or(usize::MAX),
            )
        });
        let width = 22;
        write!(f, "{:width$}", "")?;
        for t in &self.channels {
            write!(f, "{:>8}", t.channel.map(|c| c.as_str()).unwrap_or(""))?;
        }
        writeln!(f)?;
        let row =
            |f: &mut fmt::Formatter<'_>, label: &str, get: &dyn Fn(&ChannelTotals) -> usize| {
                write!(f, "{label:width$}")?;
                for t in &self.channels {
                    write!(f, "{:>8}", get(t))?;
                }
                writeln!(f)
            };
        row(f, "due now", &|t| t.due)?;
        row(f, "deferred", &|t| t.deferred_total())?;
        for (kind, label) in labels.iter().filter(|(k, _)| *k == "deferred") {
            let _ = kind;
            row(f, &format!("  {}", label.replace('_', " ")), &|t| {
                t.deferred.get(label).copied().unwrap_or(0)
            })?;
        }
        row(f, "skipped", &|t| t.skipped_total())?;
        for (_, label) in labels.iter().filter(|(k, _)| *k == "skipped") {
            row(f, &format!("  {}", label.replace('_', " ")), &|t| {
                t.skipped.get(label).copied().unwrap_or(0)
            })?;
        }
        if self.channels.iter().any(|t| !t.done.is_empty()) {
            row(f, "done by earlier runs", &|t| t.done.values().sum())?;
            for state in ["sent", "failed", "unknown", "sending"] {
                if self.channels.iter().any(|t| t.done.contains_key(state)) {
                    row(f, &format!("  {state}"), &|t| {
                        t.done.get(state).copied().unwrap_or(0)
                    })?;
                }
            }
        }

        if self.language_column {
            writeln!(f, "would go, by language")?;
            for l in &self.languages {
                let label = format!("  {} ({} contacts)", l.language, l.contacts);
                write!(f, "{label:width$}")?;
                for t in &self.channels {
                    let channel = t.channel.map(|c| c.as_str()).unwrap_or("");
                    write!(f, "{:>8}", l.messages.get(channel).copied().unwrap_or(0))?;
                }
                writeln!(f)?;
            }
        }

        if !self.errors.is_empty() {
            writeln!(f)?;
            writeln!(
                f,
                "Errors ({}): these rows are skipped on the channels shown",
                self.errors.len()
            )?;
            for e in &self.errors {
                writeln!(f, "  {e}")?;
            }
        }
        if !self.warnings.is_empty() {
            writeln!(f)?;
            writeln!(f, "Warnings ({}):", self.warnings.len())?;
            for w in &self.warnings {
                writeln!(f, "  {w}")?;
            }
        }
        writeln!(f)?;
        let due: usize = self
            .channels
            .iter()
            .map(|t| t.due + t.deferred_total())
            .sum();
        if self.errors.is_empty() {
            write!(f, "OK: the campaign can run; {due} messages would go")
        } else {
            write!(
                f,
                "OK with problems: the campaign can run; {due} messages would go; {} rows have \
                 problems and are skipped where shown (--strict fails on them)",
                self.rows_with_problems
            )
        }
    }
}
