//! Suppressions learnt while sending (opt-out replies, `outreach unsubscribe`): one table shared
//! by every campaign of a state directory, read when a plan is made and checked again by every
//! claim. The user's own suppression files are read with the contacts and never written.

use chrono::{DateTime, Utc};
use rusqlite::params;

use super::sqlite::{Ledger, LedgerError, timestamp};

/// Adds an address (parameters: address, reason, source, time) unless it is already there: the
/// first reason stays.
pub(super) const INSERT: &str =
    "INSERT INTO suppressions (address, reason, source, added_at) VALUES (?1, ?2, ?3, ?4)
     ON CONFLICT (address) DO NOTHING";

impl Ledger {
    /// Adds addresses learnt while sending (opt-out replies, `outreach unsubscribe`) to the
    /// suppression table shared by every campaign of this state directory.
    pub fn suppress(
        &mut self,
        address: &str,
        reason: &str,
        source: &str,
        now: DateTime<Utc>,
    ) -> Result<(), LedgerError> {
        self.sql(|c| c.execute(INSERT, params![address, reason, source, timestamp(now)]))
            .map(|_| ())
    }

    /// The suppression table: address → (reason, source).
    pub fn suppressions(&self) -> Result<Vec<(String, String, Option<String>)>, LedgerError> {
        self.sql(|c| {
            let mut stmt = c.prepare("SELECT address, reason, source FROM suppressions")?;
            let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
            rows.collect()
        })
    }
}
