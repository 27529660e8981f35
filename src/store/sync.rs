//! What `outreach sync` reads and writes: the sent SMS whose delivery is not final yet (each
//! provider id, to ask the gateway about), the SMS left `unknown` (the request went out and
//! its reply was lost), and what the gateway's answers settle.
//!
//! A status answer is recorded through the same statement as `listen`'s receipts
//! ([`receipt_in`]), so the two agree and a final state never goes back; an error code that
//! says the number cannot take SMS suppresses it in the same transaction. An `unknown` row is
//! only ever changed while it is still `unknown` (the statement says so), and each write is its
//! own transaction: a sync killed at any point has recorded whole answers or none, and a rerun
//! asks only about what is still open.

use super::db::{Begin, args};
use super::feedback::{ReceiptDone, ReceiptRecord, receipt_in};
use super::sqlite::{Ledger, LedgerError, timestamp};
use chrono::{DateTime, Utc};

/// A sent SMS part with no final receipt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenPart {
    pub provider_id: String,
    /// The number it went to, E.164.
    pub address: String,
}

/// An SMS row left `unknown`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownSms {
    pub row: i64,
    pub contact_id: String,
    pub address: String,
    /// When the row was first claimed: nothing of it went before.
    pub created_at: String,
    /// Its last change (the claim that went out, or the recovery that found it in flight).
    pub updated_at: String,
}

impl Ledger {
    /// `campaign`'s sent SMS parts that have no final receipt, in the order they were sent.
    pub fn open_sms_parts(&self, campaign: &str) -> Result<Vec<OpenPart>, LedgerError> {
        self.sql(|c| {
            c.query(
                "SELECT p.provider_id, m.address FROM sms_parts p
                 JOIN messages m ON m.rowid = p.message
                 LEFT JOIN receipts r ON r.provider_id = p.provider_id
                 WHERE m.campaign = ?1 AND m.channel = 'sms'
                   AND (r.state IS NULL OR r.state = 'pending')
                 ORDER BY m.rowid, p.part",
                args![campaign],
                |r| {
                    Ok(OpenPart {
                        provider_id: r.get(0)?,
                        address: r.get(1)?,
                    })
                },
            )
        })
    }

    /// `campaign`'s SMS rows left `unknown`.
    pub fn unknown_sms(&self, campaign: &str) -> Result<Vec<UnknownSms>, LedgerError> {
        self.sql(|c| {
            c.query(
                "SELECT rowid, contact_id, address, created_at, updated_at FROM messages
                 WHERE campaign = ?1 AND channel = 'sms' AND state = 'unknown' ORDER BY rowid",
                args![campaign],
                |r| {
                    Ok(UnknownSms {
                        row: r.get(0)?,
                        contact_id: r.get(1)?,
                        address: r.get(2)?,
                        created_at: r.get(3)?,
                        updated_at: r.get(4)?,
                    })
                },
            )
        })
    }

    /// Records what the gateway said of one part, and the suppression its code asks for, in
    /// one transaction.
    pub fn record_lookup(
        &mut self,
        receipt: &ReceiptRecord,
        now: DateTime<Utc>,
    ) -> Result<ReceiptDone, LedgerError> {
        let now = timestamp(now);
        self.transaction(Begin::Deferred, |tx| receipt_in(tx, receipt, &now))
    }

    /// An `unknown` row the gateway lists as sent, with `sid`: now `sent`, its id beside it as
    /// a send would have written it. Returns whether the row was still `unknown`.
    pub fn settle_sent(
        &mut self,
        row: i64,
        sid: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, LedgerError> {
        let now = timestamp(now);
        self.transaction(Begin::Deferred, |tx| {
            let changed = tx.execute(
                "UPDATE messages SET state = 'sent', permanent = 0, provider_id = ?2,
                     last_error = NULL, updated_at = ?3, sent_at = ?3
                 WHERE rowid = ?1 AND state = 'unknown'",
                args![row, sid, now],
            )?;
            if changed == 1 {
                tx.execute(
                    "INSERT INTO sms_parts (provider_id, message, part, parts)
                     VALUES (?1, ?2, 1, 1)
                     ON CONFLICT (provider_id) DO NOTHING",
                    args![sid, row],
                )?;
            }
            Ok(changed == 1)
        })
    }

    /// An `unknown` row the gateway does not list, long enough after its claim: a retryable
    /// failure, so that a later `send` delivers it. Returns whether the row was still
    /// `unknown`.
    pub fn settle_absent(
        &mut self,
        row: i64,
        why: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, LedgerError> {
        let changed = self.sql(|c| {
            c.execute(
                "UPDATE messages SET state = 'failed', permanent = 0, last_error = ?2,
                     updated_at = ?3
                 WHERE rowid = ?1 AND state = 'unknown'",
                args![row, why, timestamp(now)],
            )
        })?;
        Ok(changed == 1)
    }
}
