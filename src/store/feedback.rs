//! What comes back after a message went, as `outreach listen` records it and `status`, `report`
//! and `inbox` read it: unsubscribes by link, SMS delivery receipts, and patients' replies.
//!
//! - **Tokens.** A claimed email's unsubscribe token is written beside its claim (`tokens`), so
//!   a click is one lookup, not a search through every address's HMAC.
//! - **Receipts** are kept by the provider's id (`receipts`), whether or not the message is
//!   known yet: a receipt can overtake the outcome that records the id. A sent SMS's ids, one
//!   per part, are written with its outcome (`sms_parts`); a message's delivery state is read by
//!   joining the two, and is `delivered` only when every part is. A final state (`delivered`,
//!   `undelivered`) never changes again: callbacks arrive out of order.
//! - **Replies** are kept whole (`replies`), each once by the provider's id: an opt-out word
//!   suppresses the number in every campaign of the state directory; `START` lifts only an
//!   opt-out that a STOP to the same sender made; the rest wait for staff (`read_at`).
//!
//! Every write here is one statement group inside a transaction the caller commits (the
//! [`FeedbackWriter`](super::feedback_writer::FeedbackWriter)), so a provider's retry of the
//! same request changes nothing.

use super::db::{Begin, Db, DbResult, Row, args};
use chrono::{DateTime, Utc};

use super::sqlite::{Ledger, LedgerError, timestamp};
use super::suppressions;
use super::tally::Tally;
use crate::model::Channel;
use crate::webhook::{ErrorCodes, Receipt};

/// The message a token stands for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRow {
    pub campaign: String,
    pub channel: Channel,
    /// The normalised address.
    pub address: String,
    /// Whether the address is suppressed already (by any source).
    pub suppressed: bool,
}

/// A delivery receipt to record (see `webhook::Receipt`, which it comes from).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceiptRecord {
    pub provider_id: String,
    /// `delivered`, `undelivered` or `pending`.
    pub state: &'static str,
    pub status: String,
    pub code: Option<String>,
    pub carrier_time: Option<String>,
    /// The number it went to as the provider wrote it, E.164: what a suppression applies to
    /// when the ledger does not hold the message (yet).
    pub recipient: Option<String>,
    /// The suppression its error code asks for (`webhook::ErrorCodes`), if any.
    pub suppress: Option<Suppress>,
}

impl ReceiptRecord {
    /// `receipt` as recorded, with the suppression its error code asks for in `codes`' table;
    /// `by` names who heard it (`outreach listen`, `outreach sync`), for the suppression's
    /// source.
    pub fn new(receipt: Receipt, codes: &ErrorCodes, by: &str) -> Self {
        let suppress = receipt
            .error_code
            .as_deref()
            .and_then(|c| codes.suppression(c))
            .map(|s| Suppress {
                reason: s.reason,
                source: format!("{by} ({})", s.code),
            });
        ReceiptRecord {
            provider_id: receipt.provider_id,
            state: receipt.state.as_str(),
            status: receipt.status,
            code: receipt.error_code,
            carrier_time: receipt.carrier_time,
            recipient: receipt.recipient,
            suppress,
        }
    }
}

/// A suppression a receipt's error code asks for: the number the receipt's message went to
/// (the ledger's, else the receipt's own recipient) is suppressed for SMS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Suppress {
    pub reason: String,
    /// Who learnt it (`outreach sync (Twilio 21610)`).
    pub source: String,
}

/// What recording a receipt did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReceiptDone {
    /// Whether its id is a sent message's (a receipt for an id the ledger does not hold is
    /// kept and counted, not matched).
    pub matched: bool,
    /// Whether it suppressed a number not suppressed before.
    pub suppressed: bool,
}

/// What a reply asks for (see `webhook::Keyword`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplyKind {
    OptOut,
    OptIn,
    Help,
    Other,
}

impl ReplyKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ReplyKind::OptOut => "opt_out",
            ReplyKind::OptIn => "opt_in",
            ReplyKind::Help => "help",
            ReplyKind::Other => "other",
        }
    }
}

/// A patient's reply to record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplyRecord {
    pub provider_id: String,
    /// The campaign whose URL it came to.
    pub campaign: String,
    /// The patient's number, E.164.
    pub from: String,
    /// The clinic's number it was sent to, as the provider wrote it.
    pub to: String,
    pub body: String,
    pub kind: ReplyKind,
    /// For one part of a longer message: its reference, number and count.
    pub part: Option<(String, u32, u32)>,
}

/// What recording a reply did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplyAction {
    /// The provider sent it before: nothing changed.
    Repeated,
    /// The number is now suppressed for SMS.
    OptedOut,
    /// It was already suppressed.
    AlreadySuppressed,
    /// The opt-out a STOP to this sender made is lifted.
    OptOutLifted,
    /// A START with no STOP-made opt-out to lift (none, or one from a list or staff).
    NothingToLift,
    /// Kept for staff.
    Kept,
}

impl ReplyAction {
    /// How `inbox` names it.
    pub fn as_str(&self) -> &'static str {
        match self {
            ReplyAction::Repeated => "repeated",
            ReplyAction::OptedOut => "opted out",
            ReplyAction::AlreadySuppressed => "already suppressed",
            ReplyAction::OptOutLifted => "opt-out lifted",
            ReplyAction::NothingToLift => "nothing to lift",
            ReplyAction::Kept => "kept for staff",
        }
    }
}

/// The suppression source a STOP to `sender` writes, and the only one a START to it lifts.
fn stop_source(sender: &str) -> String {
    format!("STOP reply to {sender}")
}

/// The message `token` stands for, if any.
pub(super) fn token_in(tx: &Db, token: &str) -> DbResult<Option<TokenRow>> {
    tx.query_opt(
        "SELECT m.campaign, m.channel, m.address,
                EXISTS (SELECT 1 FROM suppressions s WHERE s.address = m.address)
         FROM tokens t JOIN messages m ON m.rowid = t.message WHERE t.token = ?1",
        args![token],
        |r| {
            Ok(TokenRow {
                campaign: r.get(0)?,
                channel: r.get::<String>(1)?.parse().unwrap_or(Channel::Email),
                address: r.get(2)?,
                suppressed: r.get(3)?,
            })
        },
    )
}

/// Records the unsubscribe of `token` (`how`: `one-click` or `page`): the address suppressed,
/// the click kept once. `None` for a token that stands for no message.
pub(super) fn unsubscribe_in(
    tx: &Db,
    token: &str,
    how: &str,
    now: &str,
) -> DbResult<Option<TokenRow>> {
    let Some(row) = token_in(tx, token)? else {
        return Ok(None);
    };
    tx.execute(
        suppressions::INSERT,
        args![
            row.address,
            format!("unsubscribed by its link (campaign {})", row.campaign),
            "unsubscribe link",
            now
        ],
    )?;
    tx.execute(
        "INSERT INTO unsubscribes (message, how, at)
         SELECT message, CAST(?2 AS TEXT), CAST(?3 AS TEXT) FROM tokens WHERE token = ?1
         ON CONFLICT (message) DO NOTHING",
        args![token, how, now],
    )?;
    Ok(Some(row))
}

/// Records a receipt; a final state is never replaced. The suppression its code asks for is
/// written in the same transaction, for the number the ledger sent the message to or, when the
/// ledger does not hold it (yet), the number the receipt names.
pub(super) fn receipt_in(tx: &Db, r: &ReceiptRecord, now: &str) -> DbResult<ReceiptDone> {
    tx.execute(
        "INSERT INTO receipts (provider_id, state, status, code, carrier_time, received_at,
                               updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)
         ON CONFLICT (provider_id) DO UPDATE SET state = excluded.state,
             status = excluded.status, code = excluded.code,
             carrier_time = excluded.carrier_time, updated_at = excluded.updated_at
         WHERE receipts.state = 'pending'",
        args![
            r.provider_id,
            r.state,
            r.status,
            r.code,
            r.carrier_time,
            now
        ],
    )?;
    let sent_to: Option<String> = tx.query_opt(
        "SELECT m.address FROM sms_parts p JOIN messages m ON m.rowid = p.message
             WHERE p.provider_id = ?1",
        args![&r.provider_id],
        |row| row.get(0),
    )?;
    let matched = sent_to.is_some();
    let suppressed = match (&r.suppress, sent_to.or_else(|| r.recipient.clone())) {
        (Some(s), Some(address)) => {
            tx.execute(
                suppressions::INSERT,
                args![address, s.reason, s.source, now],
            )? == 1
        }
        _ => false,
    };
    Ok(ReceiptDone {
        matched,
        suppressed,
    })
}

/// Records a reply once, and what it asks: an opt-out suppresses the number for SMS in every
/// campaign; `START` lifts only an opt-out a STOP to the same sender made.
pub(super) fn reply_in(tx: &Db, r: &ReplyRecord, now: &str) -> DbResult<ReplyAction> {
    let (part_of, part, parts) = match &r.part {
        Some((reference, n, total)) => (Some(reference.as_str()), Some(*n), Some(*total)),
        None => (None, None, None),
    };
    let inserted = tx.execute(
        "INSERT INTO replies (provider_id, campaign, from_number, to_number, body, keyword,
                                  part_of, part, parts, received_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
             ON CONFLICT (provider_id) DO NOTHING",
        args![
            r.provider_id,
            r.campaign,
            r.from,
            r.to,
            r.body,
            r.kind.as_str(),
            part_of,
            part,
            parts,
            now
        ],
    )?;
    if inserted == 0 {
        return Ok(ReplyAction::Repeated);
    }
    let action = match r.kind {
        ReplyKind::OptOut => {
            let added = tx.execute(
                suppressions::INSERT,
                args![
                    r.from,
                    format!("replied {:?}", r.body.trim()),
                    stop_source(&r.to),
                    now
                ],
            )?;
            if added == 1 {
                ReplyAction::OptedOut
            } else {
                ReplyAction::AlreadySuppressed
            }
        }
        ReplyKind::OptIn => {
            // Kept in the lifts' history, with the reply as the patient's consent.
            tx.execute(
                "INSERT INTO suppression_lifts (address, reason, source_was, reason_was,
                                                added_at_was, lifted_at, lifted_by)
                 SELECT address, CAST(?3 AS TEXT), source, reason, added_at, CAST(?4 AS TEXT),
                        'START reply'
                 FROM suppressions WHERE address = ?1 AND source = ?2",
                args![
                    r.from,
                    stop_source(&r.to),
                    format!("replied {:?} to {}", r.body.trim(), r.to),
                    now
                ],
            )?;
            let lifted = tx.execute(
                "DELETE FROM suppressions WHERE address = ?1 AND source = ?2",
                args![r.from, stop_source(&r.to)],
            )?;
            if lifted == 1 {
                ReplyAction::OptOutLifted
            } else {
                ReplyAction::NothingToLift
            }
        }
        ReplyKind::Help | ReplyKind::Other => ReplyAction::Kept,
    };
    tx.execute(
        "UPDATE replies SET action = ?2 WHERE provider_id = ?1",
        args![r.provider_id, action.as_str()],
    )?;
    Ok(action)
}

/// A reply, as `inbox` shows it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Reply {
    pub id: i64,
    pub campaign: String,
    /// The patient's number, E.164 (shown masked).
    pub from: String,
    pub body: String,
    pub keyword: String,
    pub action: Option<String>,
    pub received_at: String,
    pub read_at: Option<String>,
}

/// The columns [`reply_from`] reads, in its order.
const REPLY: &str = "id, campaign, from_number, body, keyword, action, received_at, read_at";

fn reply_from(r: &Row<'_>) -> DbResult<Reply> {
    Ok(Reply {
        id: r.get(0)?,
        campaign: r.get(1)?,
        from: r.get(2)?,
        body: r.get(3)?,
        keyword: r.get(4)?,
        action: r.get(5)?,
        received_at: r.get(6)?,
        read_at: r.get(7)?,
    })
}

/// What `status` shows of what came back, for one campaign and its state directory.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct FeedbackCounts {
    /// SMS of the campaign whose every part the carrier delivered.
    pub delivered: u64,
    /// SMS of the campaign the carrier failed after the provider took them.
    pub undelivered: u64,
    /// Emails of the campaign unsubscribed by their link.
    pub unsubscribed: u64,
    /// Receipts for ids no message of the state directory has (yet).
    pub unmatched_receipts: u64,
    /// Replies to the state directory's numbers: all, unread (neither a keyword nor read by
    /// staff yet), opt-outs.
    pub replies: u64,
    pub unread_replies: u64,
    pub opt_out_replies: u64,
}

/// The emails that have no token yet. `NOT IN` a list: SQLite builds the list of indexed
/// messages once; a correlated `NOT EXISTS` scanned the whole `tokens` table (keyed by token,
/// not by message) for every email, which took `listen` 3 s to start on a ledger of 10,000
/// emails and would take minutes on one of 100,000.
const UNINDEXED: &str = "SELECT rowid, campaign, address FROM messages
                         WHERE channel = 'email' AND rowid NOT IN (SELECT message FROM tokens)";

impl Ledger {
    /// The message `token` stands for, if any.
    pub fn token(&mut self, token: &str) -> Result<Option<TokenRow>, LedgerError> {
        self.sql(|c| token_in(c, token))
    }

    /// Writes the token of every email message that has none yet (those claimed by earlier
    /// versions), computed by `token_of(campaign, address)`. Returns how many were written.
    pub fn index_tokens(
        &mut self,
        token_of: impl Fn(&str, &str) -> String,
    ) -> Result<usize, LedgerError> {
        self.transaction(Begin::Deferred, |tx| {
            let missing: Vec<(i64, String, String)> = tx.query(UNINDEXED, args![], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })?;
            for (row, campaign, address) in &missing {
                tx.execute(
                    "INSERT INTO tokens (token, message) VALUES (?1, ?2)
                     ON CONFLICT DO NOTHING",
                    args![token_of(campaign, address), row],
                )?;
            }
            Ok(missing.len())
        })
    }

    /// Whether any delivery receipt was ever recorded in this state directory.
    pub fn has_receipts(&self) -> Result<bool, LedgerError> {
        self.sql(|c| {
            c.query_row(
                "SELECT CASE WHEN EXISTS (SELECT 1 FROM receipts) THEN 1 ELSE 0 END",
                args![],
                |r| r.get(0),
            )
        })
    }

    /// What came back for the campaign `tally` counted (delivery, unsubscribes) and for the
    /// state directory (receipts nobody's, replies).
    pub fn feedback_counts(&self, tally: &Tally) -> Result<FeedbackCounts, LedgerError> {
        self.sql(|c| {
            let count = |sql: &str| {
                c.query_row(sql, args![], |r| r.get::<i64>(0))
                    .map(|n| n as u64)
            };
            Ok(FeedbackCounts {
                delivered: tally.after(Channel::Sms, "delivered"),
                undelivered: tally.after(Channel::Sms, "undelivered"),
                unsubscribed: tally.opted_out(Channel::Email),
                unmatched_receipts: count("SELECT COUNT(*) FROM receipts")?
                    .saturating_sub(tally.matched_receipts),
                replies: count("SELECT COUNT(*) FROM replies")?,
                unread_replies: count(
                    "SELECT COUNT(*) FROM replies WHERE read_at IS NULL AND keyword = 'other'",
                )?,
                opt_out_replies: count("SELECT COUNT(*) FROM replies WHERE keyword = 'opt_out'")?,
            })
        })
    }

    /// The replies kept, newest first: unread ones only unless `all`.
    pub fn replies(&self, all: bool) -> Result<Vec<Reply>, LedgerError> {
        self.sql(|c| {
            c.query(
                &format!(
                    "SELECT {REPLY} FROM replies
                     WHERE ?1 = 1 OR (read_at IS NULL AND keyword = 'other')
                     ORDER BY received_at DESC, id DESC"
                ),
                args![all],
                reply_from,
            )
        })
    }

    /// Marks replies read (`ids`); with `opt_out`, also suppresses each sender for SMS, as a
    /// staff decision that no `START` lifts. Returns the replies it found.
    pub fn settle_replies(
        &mut self,
        ids: &[i64],
        opt_out: bool,
        now: DateTime<Utc>,
    ) -> Result<Vec<Reply>, LedgerError> {
        let now = timestamp(now);
        self.transaction(Begin::Deferred, |tx| {
            let mut found = Vec::new();
            for id in ids {
                let reply = tx.query_opt(
                    &format!("SELECT {REPLY} FROM replies WHERE id = ?1"),
                    args![id],
                    reply_from,
                )?;
                let Some(reply) = reply else { continue };
                tx.execute(
                    "UPDATE replies SET read_at = COALESCE(read_at, ?2),
                         action = CASE WHEN ?3 = 1 THEN 'opted out by staff' ELSE action END
                     WHERE id = ?1",
                    args![id, now, opt_out],
                )?;
                if opt_out {
                    tx.execute(
                        suppressions::INSERT,
                        args![
                            reply.from,
                            format!("reply {:?} read as an opt-out by staff", reply.body.trim()),
                            "staff, from a reply",
                            now
                        ],
                    )?;
                }
                found.push(reply);
            }
            Ok(found)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::claims::fixtures::claim;

    #[test]
    fn emails_claimed_without_a_token_are_given_one_in_a_single_pass() {
        let dir = tempfile::tempdir().unwrap();
        let mut l = Ledger::open(dir.path()).unwrap();
        let mut indexed = claim("a@example.org");
        indexed.token = Some("token-a".into());
        let claims = [indexed, claim("b@example.org")];
        l.commit("c", (1, "fp"), &[], &claims, Utc::now()).unwrap();

        let written = l.index_tokens(|c, address| format!("{c}:{address}"));
        assert_eq!(written.unwrap(), 1);
        let row = l.token("c:b@example.org").unwrap().unwrap();
        assert_eq!(
            (row.campaign.as_str(), row.address.as_str()),
            ("c", "b@example.org")
        );
        assert_eq!(l.index_tokens(|_, _| unreachable!()).unwrap(), 0);

        // Not a search of `tokens` per email: the cost grew with the square of the emails.
        let plan: Vec<String> = l
            .conn()
            .prepare(&format!("EXPLAIN QUERY PLAN {UNINDEXED}"))
            .unwrap()
            .query_map([], |r| r.get(3))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        assert!(
            !plan.iter().any(|step| step.contains("CORRELATED")),
            "{plan:?}"
        );
    }
}
