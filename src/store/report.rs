//! What the campaign report (`outreach report --html`, `report --all`) reads of the ledger
//! besides its messages (those are counted by `store::tally`): [`Ledger::campaigns`],
//! [`Ledger::runs`] and [`Ledger::last_approval`], what it lists by campaign, by run and of the
//! approval.

use super::db::args;
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
            c.query(
                "SELECT id, started_at FROM campaigns ORDER BY started_at, id",
                args![],
                |r| {
                    Ok(CampaignRecord {
                        id: r.get(0)?,
                        started_at: r.get(1)?,
                    })
                },
            )
        })
    }

    /// `campaign`'s runs, first first.
    pub fn runs(&self, campaign: &str) -> Result<Vec<RunRecord>, LedgerError> {
        self.sql(|c| {
            let mut out: Vec<RunRecord> = c.query(
                concat!(run_columns!(), " FROM runs WHERE campaign = ?1 ORDER BY id"),
                args![campaign],
                run_from,
            )?;
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
        self.sql(|c| {
            c.query_opt(
                "SELECT approved_by, approved_at FROM approvals
                 WHERE campaign = ?1 ORDER BY id DESC LIMIT 1",
                args![campaign],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
        })
    }
}
