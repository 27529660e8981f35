//! Suppressions learnt while sending (opt-out replies, `outreach unsubscribe`, `listen`, staff):
//! one table shared by every campaign of a state directory, read when a plan is made and checked
//! again by every claim. An admin lifts one with `outreach suppressions remove`; the lift is kept
//! (`suppression_lifts`, with what it lifted), so an address's history survives its lifting.
//! The user's own suppression files are read with the contacts and never written.

use super::db::{Begin, DbResult, Row, args};
use super::sqlite::{Ledger, LedgerError, timestamp};
use chrono::{DateTime, Utc};

/// Adds an address (parameters: address, reason, source, time) unless it is already there: the
/// first reason stays.
pub(super) const INSERT: &str =
    "INSERT INTO suppressions (address, reason, source, added_at) VALUES (?1, ?2, ?3, ?4)
     ON CONFLICT (address) DO NOTHING";

/// A row of the suppression table.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Suppression {
    /// The normalised address: a lowercased email or an E.164 number.
    pub address: String,
    pub reason: String,
    /// Who or what suppressed it (`sms reply, campaign X`, `unsubscribe link`, …); `None` in
    /// rows of early ledgers.
    pub source: Option<String>,
    /// RFC 3339 UTC.
    pub added_at: String,
}

/// A suppression an admin lifted, and what it was.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Lift {
    pub address: String,
    /// Why it was lifted, as the admin gave it.
    pub reason: String,
    pub source_was: Option<String>,
    pub reason_was: String,
    pub added_at_was: String,
    pub lifted_at: String,
    pub lifted_by: String,
}

const SUPPRESSION: &str = "address, reason, source, added_at";
const LIFT: &str = "address, reason, source_was, reason_was, added_at_was, lifted_at, lifted_by";

fn suppression_from(r: &Row<'_>) -> DbResult<Suppression> {
    Ok(Suppression {
        address: r.get(0)?,
        reason: r.get(1)?,
        source: r.get(2)?,
        added_at: r.get(3)?,
    })
}

fn lift_from(r: &Row<'_>) -> DbResult<Lift> {
    Ok(Lift {
        address: r.get(0)?,
        reason: r.get(1)?,
        source_was: r.get(2)?,
        reason_was: r.get(3)?,
        added_at_was: r.get(4)?,
        lifted_at: r.get(5)?,
        lifted_by: r.get(6)?,
    })
}

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
        self.sql(|c| c.execute(INSERT, args![address, reason, source, timestamp(now)]))
            .map(|_| ())
    }

    /// The suppression table: address → (reason, source).
    pub fn suppressions(&self) -> Result<Vec<(String, String, Option<String>)>, LedgerError> {
        self.sql(|c| {
            c.query(
                "SELECT address, reason, source FROM suppressions",
                args![],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
        })
    }

    /// The suppression table's rows, oldest first; only `address`'s when given.
    pub fn suppression_rows(&self, address: Option<&str>) -> Result<Vec<Suppression>, LedgerError> {
        self.sql(|c| {
            c.query(
                &format!(
                    "SELECT {SUPPRESSION} FROM suppressions
                     WHERE CAST(?1 AS TEXT) IS NULL OR address = CAST(?1 AS TEXT)
                     ORDER BY added_at, address"
                ),
                args![address],
                suppression_from,
            )
        })
    }

    /// The lifted suppressions, oldest lift first; only `address`'s when given.
    pub fn lifts(&self, address: Option<&str>) -> Result<Vec<Lift>, LedgerError> {
        self.sql(|c| {
            c.query(
                &format!(
                    "SELECT {LIFT} FROM suppression_lifts
                     WHERE CAST(?1 AS TEXT) IS NULL OR address = CAST(?1 AS TEXT)
                     ORDER BY lifted_at, id"
                ),
                args![address],
                lift_from,
            )
        })
    }

    /// Lifts `address`'s suppression: the row leaves the table and is kept, with `reason` and
    /// `by`, in `suppression_lifts`, in one transaction. `None` when the table does not hold it.
    pub fn lift(
        &mut self,
        address: &str,
        reason: &str,
        by: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<Lift>, LedgerError> {
        self.transaction(Begin::Deferred, |tx| {
            let row = tx.query_opt(
                &format!("SELECT {SUPPRESSION} FROM suppressions WHERE address = ?1"),
                args![address],
                suppression_from,
            )?;
            let Some(row) = row else {
                return Ok(None);
            };
            let lift = Lift {
                address: row.address,
                reason: reason.to_string(),
                source_was: row.source,
                reason_was: row.reason,
                added_at_was: row.added_at,
                lifted_at: timestamp(now),
                lifted_by: by.to_string(),
            };
            tx.execute(
                &format!(
                    "INSERT INTO suppression_lifts ({LIFT}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"
                ),
                args![
                    lift.address,
                    lift.reason,
                    lift.source_was,
                    lift.reason_was,
                    lift.added_at_was,
                    lift.lifted_at,
                    lift.lifted_by
                ],
            )?;
            tx.execute(
                "DELETE FROM suppressions WHERE address = ?1",
                args![address],
            )?;
            Ok(Some(lift))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lift_removes_the_row_and_keeps_what_it_was() {
        let dir = tempfile::tempdir().unwrap();
        let mut l = Ledger::open(dir.path()).unwrap();
        let t0 = Utc::now();
        l.suppress("ann@example.com", "bounced: mailbox full", "smtp", t0)
            .unwrap();
        l.suppress("+13125550101", "replied \"STOP\"", "STOP reply to +1", t0)
            .unwrap();
        assert_eq!(l.lift("bo@example.com", "why", "alice", t0).unwrap(), None);
        let t1 = t0 + chrono::Duration::days(1);
        let lift = l
            .lift("ann@example.com", "mailbox works again", "alice", t1)
            .unwrap()
            .unwrap();
        assert_eq!(lift.reason_was, "bounced: mailbox full");
        assert_eq!(lift.source_was.as_deref(), Some("smtp"));
        assert_eq!(lift.added_at_was, timestamp(t0));
        assert_eq!(lift.lifted_at, timestamp(t1));
        let left: Vec<String> = l
            .suppression_rows(None)
            .unwrap()
            .into_iter()
            .map(|s| s.address)
            .collect();
        assert_eq!(left, ["+13125550101"]);
        assert_eq!(l.lifts(Some("ann@example.com")).unwrap(), [lift]);
        assert!(l.lifts(Some("+13125550101")).unwrap().is_empty());
        // Suppressed again later, lifted again: both lifts are kept.
        l.suppress("ann@example.com", "unsubscribed", "unsubscribe link", t1)
            .unwrap();
        l.lift("ann@example.com", "asked at the desk", "bob", t1)
            .unwrap()
            .unwrap();
        assert_eq!(l.lifts(None).unwrap().len(), 2);
    }
}
