//! `purge --ledger`: counting and deleting one campaign's rows (its messages, runs and
//! approvals, and what came back for them: tokens, SMS ids, receipts, unsubscribes, bounces, the
//! replies to its URL) so that no patient address lingers in the file (overwritten, the file
//! rebuilt, the write-ahead log emptied). The suppressions, shared by all campaigns, and other
//! campaigns' rows stay.

use super::db::{Begin, DbResult, args};
use super::sqlite::{Ledger, LedgerError};

/// What `purge --ledger` deletes of one campaign.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct CampaignRows {
    pub messages: u64,
    pub runs: u64,
    pub approvals: u64,
    /// What `listen` recorded of its messages: unsubscribe tokens, SMS ids and their delivery
    /// receipts, unsubscribes by link, and the replies that came to its URL.
    pub feedback: u64,
}

impl CampaignRows {
    /// All rows together.
    pub fn total(&self) -> u64 {
        self.messages + self.runs + self.approvals + self.feedback
    }
}

/// The rows `listen` recorded for one campaign (parameter 1), by table: counted with `COUNT(*)`
/// and deleted with `DELETE`, in this order (receipts before the SMS ids that find them).
const FEEDBACK_ROWS: [(&str, &str); 6] = [
    (
        "bounces",
        "bounces WHERE message IN (SELECT rowid FROM messages WHERE campaign = ?1)",
    ),
    (
        "receipts",
        "receipts WHERE provider_id IN (SELECT p.provider_id FROM sms_parts p
             JOIN messages m ON m.rowid = p.message WHERE m.campaign = ?1)",
    ),
    (
        "sms_parts",
        "sms_parts WHERE message IN (SELECT rowid FROM messages WHERE campaign = ?1)",
    ),
    (
        "tokens",
        "tokens WHERE message IN (SELECT rowid FROM messages WHERE campaign = ?1)",
    ),
    (
        "unsubscribes",
        "unsubscribes WHERE message IN (SELECT rowid FROM messages WHERE campaign = ?1)",
    ),
    ("replies", "replies WHERE campaign = ?1"),
];

impl Ledger {
    /// How many rows of `campaign` the ledger holds (what `purge --ledger` would delete).
    pub fn campaign_rows(&self, campaign: &str) -> Result<CampaignRows, LedgerError> {
        self.sql(|c| {
            let count = |sql: &str| c.query_row(sql, args![campaign], |r| r.get::<i64>(0));
            Ok(CampaignRows {
                messages: count("SELECT COUNT(*) FROM messages WHERE campaign = ?1")? as u64,
                runs: count("SELECT COUNT(*) FROM runs WHERE campaign = ?1")? as u64,
                approvals: count("SELECT COUNT(*) FROM approvals WHERE campaign = ?1")? as u64,
                feedback: FEEDBACK_ROWS
                    .iter()
                    .map(|(_, rows)| count(&format!("SELECT COUNT(*) FROM {rows}")))
                    .sum::<DbResult<i64>>()? as u64,
            })
        })
    }

    /// Deletes every row of `campaign` (messages, runs, approvals, its first-send record); the
    /// suppressions and their lifts, shared by all campaigns, and other campaigns' rows stay. Deleted rows are
    /// overwritten (`secure_delete`), the file rebuilt (`VACUUM`: b-tree dividers keep copies of
    /// deleted keys) and the write-ahead log emptied, so no patient address lingers.
    pub fn purge(&mut self, campaign: &str) -> Result<CampaignRows, LedgerError> {
        let rows = self.campaign_rows(campaign)?;
        self.sqlite(|c| c.execute_batch("PRAGMA secure_delete = ON"))?;
        self.transaction(Begin::Deferred, |tx| {
            for (_, rows) in FEEDBACK_ROWS {
                tx.execute(&format!("DELETE FROM {rows}"), args![campaign])?;
            }
            for sql in [
                "DELETE FROM approval_rows WHERE approval IN
                     (SELECT id FROM approvals WHERE campaign = ?1)",
                "DELETE FROM approvals WHERE campaign = ?1",
                "DELETE FROM messages WHERE campaign = ?1",
                "DELETE FROM runs WHERE campaign = ?1",
                "DELETE FROM campaigns WHERE id = ?1",
                "DELETE FROM campaign_files WHERE campaign = ?1",
            ] {
                tx.execute(sql, args![campaign])?;
            }
            Ok(())
        })?;
        // Interior b-tree pages keep copies of deleted keys as dividers: rebuild the file. On
        // PostgreSQL, VACUUM frees the deleted rows' space for reuse; their old versions may
        // linger in the server's write-ahead log and its backups until those are recycled.
        self.sql(|c| c.execute_batch("VACUUM"))?;
        let busy = self.sqlite(|c| {
            c.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| {
                r.get::<_, i64>(0)
            })
        })?;
        if busy.is_some_and(|busy| busy != 0) {
            tracing::warn!(
                "{}: another process holds the ledger; its write-ahead log is emptied when it \
                 closes",
                self.path.display()
            );
        }
        Ok(rows)
    }
}
