//! The per-recipient CSV: one row per contact and channel, with the ledger's state where it has
//! one, else the plan's word and reason. `outreach report` writes it for the whole campaign, and
//! every `send` run for the messages it dispatched or deferred.
//!
//! Reports hold patient addresses: written owner-only (0600), and every cell that a spreadsheet
//! would read as a formula (`=`, `+`, `-`, `@`, tab, CR) is prefixed with `'`.

use std::borrow::Cow;
use std::collections::HashSet;
use std::path::{Path, PathBuf};

use crate::load::Loaded;
use crate::model::Channel;
use crate::model::State;
use crate::plan::Decision;
use crate::store::ledger::{Ledger, LedgerError};
use crate::store::lookup::{CHUNK, Cells, Chunk, Wanted};

/// The report's columns.
pub const COLUMNS: &[&str] = &[
    "campaign",
    "channel",
    "contact_id",
    "line",
    "name",
    "address",
    "state",
    "reason",
    "attempts",
    "provider_id",
    "last_error",
    "sent_at",
    "updated_at",
    "delivery",
    "delivery_code",
    "opted_out",
    "consent",
    "consent_source",
];

/// Makes a cell safe to open in a spreadsheet (OWASP's CSV injection advice).
pub fn escape_cell(value: &str) -> Cow<'_, str> {
    if value.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        Cow::Owned(format!("'{value}"))
    } else {
        Cow::Borrowed(value)
    }
}

/// The ledger's word for a row (`failed` only when permanent, else `retry`).
fn ledger_state(state: State, permanent: bool) -> &'static str {
    match (state, permanent) {
        (State::Failed, false) => "retry",
        (s, _) => s.as_str(),
    }
}

/// One report row, borrowed from the contact, the plan and the ledger.
pub struct ReportRow<'a> {
    pub channel: &'a str,
    pub contact_id: &'a str,
    /// The contact's line; none for a ledger row whose contact is no longer in the file.
    pub line: Option<usize>,
    pub name: &'a str,
    pub address: &'a str,
    pub state: &'a str,
    pub reason: &'a str,
    /// The ledger's details, when it has the message.
    pub ledger: Option<Cells<'a>>,
}

impl<'a> ReportRow<'a> {
    /// A contact's row on `channel`; `name` is its [`Contact::display_name`].
    ///
    /// [`Contact::display_name`]: crate::contacts::Contact::display_name
    fn of(
        contact: &'a crate::contacts::Contact,
        channel: Channel,
        name: &'a str,
        (state, reason): (&'a str, &'a str),
        ledger: Option<Cells<'a>>,
    ) -> Self {
        ReportRow {
            channel: channel.as_str(),
            contact_id: &contact.id,
            line: Some(contact.line),
            name,
            address: contact.display_address(channel).unwrap_or_default(),
            state,
            reason,
            ledger,
        }
    }
}

/// Writes report rows as CSV, each cell escaped ([`escape_cell`]) and written as it is made:
/// a report of 180,000 rows would otherwise make and free two million strings.
struct ReportWriter<W: std::io::Write> {
    csv: csv::Writer<W>,
}

impl<W: std::io::Write> ReportWriter<W> {
    /// Starts the report with its header row.
    fn new(out: W) -> csv::Result<Self> {
        let mut csv = csv::Writer::from_writer(out);
        csv.write_record(COLUMNS)?;
        Ok(ReportWriter { csv })
    }

    fn row(&mut self, campaign: &str, r: &ReportRow<'_>) -> csv::Result<()> {
        let mut number = itoa::Buffer::new();
        let w = &mut self.csv;
        let Cells {
            attempts,
            provider_id,
            last_error,
            sent_at,
            updated_at,
            delivery,
            delivery_code,
            opted_out,
            consent,
            consent_source,
        } = r.ledger.unwrap_or_default();
        for cell in [campaign, r.channel, r.contact_id] {
            w.write_field(escape_cell(cell).as_bytes())?;
        }
        w.write_field(r.line.map_or("", |n| number.format(n)))?;
        for cell in [r.name, r.address, r.state, r.reason] {
            w.write_field(escape_cell(cell).as_bytes())?;
        }
        w.write_field(number.format(attempts))?;
        for cell in [
            provider_id,
            last_error,
            sent_at,
            updated_at,
            delivery,
            delivery_code,
            opted_out,
            consent,
            consent_source,
        ] {
            w.write_field(escape_cell(cell).as_bytes())?;
        }
        w.write_record(None::<&[u8]>)
    }

    fn finish(mut self) -> std::io::Result<()> {
        self.csv.flush()
    }
}

/// Calls `f` with every row of the campaign's report: each contact on each enabled channel (the
/// ledger's state where it has one, else the plan's word and reason), then ledger rows whose
/// contact is no longer in the file. Rows are streamed: a 200,000-row report holds the ledger's
/// rows of one chunk of contacts ([`CHUNK`]) at a time, read in one statement.
pub fn each_row(
    loaded: &Loaded,
    ledger: Option<&Ledger>,
    mut f: impl FnMut(&ReportRow<'_>) -> std::io::Result<()>,
) -> Result<usize, ReportError> {
    let campaign = &loaded.campaign.id;
    let mut lookup = ledger.map(|l| l.rows_of(campaign)).transpose()?;
    let mut known: HashSet<(Channel, &str)> = HashSet::new();
    let mut chunk = Chunk::default();
    let mut wanted = Vec::with_capacity(CHUNK);
    let mut n = 0;
    for channel in &loaded.campaign.channels {
        let contacts = &loaded.contacts.contacts;
        for (k, some) in contacts.chunks(CHUNK).enumerate() {
            wanted.clear();
            wanted.extend(some.iter().map(|contact| {
                let address = contact.address(*channel);
                let own = address.filter(|_| contact.duplicate_of[*channel as usize].is_none());
                own.map(|address| Wanted {
                    channel: *channel,
                    address,
                    row: None,
                })
            }));
            known.extend(wanted.iter().flatten().map(|w| (w.channel, w.address)));
            if let Some(l) = lookup.as_mut() {
                l.read_chunk(&wanted, &mut chunk)?;
            }
            for (place, contact) in some.iter().enumerate() {
                let name = contact.display_name();
                match chunk.get(place) {
                    Some(r) => f(&ReportRow::of(
                        contact,
                        *channel,
                        &name,
                        (ledger_state(r.state, r.permanent), ""),
                        Some(r.cells),
                    ))?,
                    None => {
                        let index = k * CHUNK + place;
                        let decision = loaded.decide(index, *channel, loaded.now, None);
                        let reason = match &decision {
                            Decision::Due | Decision::Done(_) => String::new(),
                            Decision::Deferred(d) => d.to_string(),
                            Decision::Skipped(s) => s.to_string(),
                        };
                        let word = (decision.word(), reason.as_str());
                        f(&ReportRow::of(contact, *channel, &name, word, None))?
                    }
                }
                n += 1;
            }
        }
    }
    if let Some(l) = ledger {
        let mut result = Ok(());
        l.each_row(campaign, |r| {
            let Ok(channel) = r.channel.parse::<Channel>() else {
                return;
            };
            if result.is_err() || known.contains(&(channel, r.address.as_str())) {
                return;
            }
            result = f(&ReportRow {
                channel: &r.channel,
                contact_id: &r.contact_id,
                line: None,
                name: "",
                address: &r.address,
                state: ledger_state(r.state, r.permanent),
                reason: "no longer in the contacts file",
                ledger: Some((&r).into()),
            });
            n += 1;
        })?;
        result?;
    }
    Ok(n)
}

/// A report that could not be written.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    /// The state directory's `store.toml` (where its PostgreSQL ledger is) cannot be used.
    #[error(transparent)]
    Store(#[from] crate::config::ConfigError),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0}")]
    Write(#[from] std::io::Error),
}

/// Writes the campaign's report to `path` (0600, replacing any file there); returns its rows.
pub fn write(path: &Path, loaded: &Loaded, ledger: Option<&Ledger>) -> Result<usize, ReportError> {
    let io = |source| ReportError::Io {
        path: path.to_path_buf(),
        source,
    };
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(io)?;
    }
    let file = crate::private::open(path, crate::private::Open::Truncate).map_err(io)?;
    let mut w = ReportWriter::new(file).map_err(|e| io(e.into()))?;
    let campaign = &loaded.campaign.id;
    let n = each_row(loaded, ledger, |row| {
        w.row(campaign, row).map_err(std::io::Error::from)
    })?;
    w.finish().map_err(io)?;
    Ok(n)
}

/// One message a run dispatched or deferred.
#[derive(Debug, Clone)]
pub struct RunRow {
    pub index: usize,
    pub channel: Channel,
    /// Its ledger row, when this run claimed it.
    pub row: Option<crate::store::ledger::RowId>,
    /// What became of it in this run ("sent", "deferred: quiet hours", ...).
    pub outcome: Cow<'static, str>,
}

impl RunRow {
    /// Its outcome as the report's state and reason (`deferred`, `quiet hours`).
    fn state_and_reason(&self) -> (&str, &str) {
        self.outcome.split_once(": ").unwrap_or((&self.outcome, ""))
    }
}

/// The report a `send` run leaves in `state_dir/reports/`: one row per message the run
/// dispatched or deferred, with the ledger's details (the whole campaign: `outreach report`).
pub fn write_run_report(
    loaded: &Loaded,
    ledger: &Ledger,
    run: i64,
    rows: &[RunRow],
) -> Result<PathBuf, ReportError> {
    let dir = loaded.campaign.sending.state_dir.join("reports");
    let path = dir.join(format!("{}-run{run}.csv", loaded.campaign.id));
    let io = |source| ReportError::Io {
        path: path.clone(),
        source,
    };
    crate::private::create_dir(&dir).map_err(io)?;
    let file = crate::private::open(&path, crate::private::Open::Truncate).map_err(io)?;
    let mut w = ReportWriter::new(file).map_err(|e| io(e.into()))?;
    let campaign = &loaded.campaign.id;
    let mut lookup = ledger.rows_of(campaign)?;
    let mut chunk = Chunk::default();
    let mut wanted = Vec::with_capacity(CHUNK);
    let contacts = &loaded.contacts.contacts;
    for some in rows.chunks(CHUNK) {
        // A message the run deferred shows no ledger cells: the run did not touch its row.
        wanted.clear();
        wanted.extend(some.iter().map(|r| {
            let address = contacts[r.index].address(r.channel);
            address
                .filter(|_| r.state_and_reason().0 != "deferred")
                .map(|address| Wanted {
                    channel: r.channel,
                    address,
                    row: r.row,
                })
        }));
        lookup.read_chunk(&wanted, &mut chunk)?;
        for (place, r) in some.iter().enumerate() {
            let contact = &contacts[r.index];
            let name = contact.display_name();
            let prior = chunk.get(place).map(|found| found.cells);
            let row = ReportRow::of(contact, r.channel, &name, r.state_and_reason(), prior);
            w.row(campaign, &row).map_err(|e| io(e.into()))?;
        }
    }
    w.finish().map_err(io)?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formula_cells_are_neutralised() {
        assert_eq!(escape_cell("=HYPERLINK(\"x\")"), "'=HYPERLINK(\"x\")");
        assert_eq!(escape_cell("+13125550142"), "'+13125550142");
        assert_eq!(escape_cell("-1"), "'-1");
        assert_eq!(escape_cell("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(escape_cell("\tx"), "'\tx");
        assert_eq!(escape_cell("Ann"), "Ann");
        assert_eq!(escape_cell(""), "");
    }
}
