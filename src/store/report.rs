//! What the campaign report (`outreach report --html`, `report --all`) reads of the ledger
//! besides its messages (those are counted by `store::tally`): [`Ledger::campaigns`],
//! [`Ledger::runs`] and [`Ledger::last_approval`], what it lists by campaign, by run and of the
//! approval.

use rusqlite::params;

use super::ledger::{RunRecord, run_columns, run_from};
use super::sqlite::{Ledger, LedgerError};

/// A campaign the ledger has seen send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CampaignRecord {
    pub id: String,
    /// Its first run's start.
    pub started_at: String,
}

impl Ledger {
    /// The campaigns the ledger has seen send, by their first run's start.
    pub fn campaigns(&self) -> Result<Vec<CampaignRecord>, LedgerError> {
        self.sql(|c| {
            let mut stmt =
                c.prepare("SELECT id, started_at FROM campaigns ORDER BY started_at, id")?;
            let rows = stmt.query_map([], |r| {
                Ok(CampaignRecord {
                    id: r.get(0)?,
                    started_at: r.get(1)?,
                })
            })?;
            rows.collect()
        })
    }

    /// `campaign`'s runs, first first.
    pub fn runs(&self, campaign: &str) -> Result<Vec<RunRecord>, LedgerError> {
        self.sql(|c| {
            let mut stmt = c.prepare(concat!(
                run_columns!(),
                " FROM runs WHERE campaign = ?1 ORDER BY id"
            ))?;
            let rows = stmt.query_map(params![campaign], run_from)?;
            let mut out: Vec<RunRecord> = rows.collect::<rusqlite::Result<_>>()?;
            for (i, run) in out.iter_mut().enumerate() {
                run.number = i as i64 + 1;
            }
            Ok(out)
        })
    }
}

impl Ledger {
    /// Who approved `campaign` last, and when (the approval's own record, without its rows).
    pub fn last_approval(&self, campaign: &str) -> Result<Option<(String, String)>, LedgerError> {
        use rusqlite::OptionalExtension;
        self.sql(|c| {
            c.query_row(
                "SELECT approved_by, approved_at FROM approvals
                 WHERE campaign = ?1 ORDER BY id DESC LIMIT 1",
                [campaign],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
        })
    }
}
