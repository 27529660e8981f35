//! What the campaign report (`outreach report --html`, `report --all`) reads of the ledger,
//! aggregated in SQL: every figure is a `GROUP BY`, so a report of a million messages holds a
//! few thousand groups, never the rows.
//!
//! - [`Ledger::message_groups`]: one pass over a campaign's messages, grouped by channel,
//!   state, the hour each was sent, failed, delivered and opted out after, its segments and its
//!   run: the funnel's ledger half, the charts over time, the SMS cost and the runs' counts are
//!   all sums over these groups;
//! - [`Ledger::failure_groups`]: failed sends by error text, undelivered SMS by carrier code,
//!   returned mail by kind, DSN status and receiving domain. Error texts may quote an address:
//!   the caller keeps only the code it reads out of them;
//! - [`Ledger::campaigns`], [`Ledger::runs`]: what the report lists by campaign and by run.

use rusqlite::params;

use super::ledger::RunRecord;
use super::sqlite::{Ledger, LedgerError};
use crate::model::{Channel, State};

/// Messages sharing every column of the grouping ([`Ledger::message_groups`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageGroup {
    pub channel: Channel,
    pub state: State,
    /// A permanent failure (`failed` only).
    pub permanent: bool,
    /// The UTC hour they were sent (`2026-11-25T18`), when sent.
    pub sent_hour: Option<String>,
    /// The UTC hour they failed for good, when they did.
    pub failed_hour: Option<String>,
    /// The UTC hour the last receipt said delivered (SMS: every part delivered), when it did.
    pub delivered_hour: Option<String>,
    /// The UTC hour the patient opted out after the message, when they did.
    pub opted_out_hour: Option<String>,
    /// A sent SMS's segments, when its run recorded them.
    pub segments: Option<u32>,
    /// The run that claimed them last, when they were sent.
    pub run: Option<i64>,
    pub count: u64,
}

/// One line of [`Ledger::failure_groups`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailureGroup {
    pub channel: Channel,
    /// `send` (the server or gateway refused it), `undelivered` (the carrier's receipt), or a
    /// bounce's kind (`hard`, `soft`, `policy`, `other`, `complaint`).
    pub kind: String,
    /// The error text of a refused send (may quote an address: read a code out of it, never
    /// show it), the carrier's code, or the DSN status.
    pub detail: Option<String>,
    /// The receiving domain of an email; none for an SMS.
    pub domain: Option<String>,
    /// Messages (not events: three soft bounces of one email count once).
    pub count: u64,
}

/// A campaign the ledger has seen send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CampaignRecord {
    pub id: String,
    /// Its first run's start.
    pub started_at: String,
}

/// The hour of a stored timestamp: its first 13 characters (`YYYY-MM-DDTHH`).
macro_rules! hour {
    ($column:expr) => {
        concat!("substr(", $column, ", 1, 13)")
    };
}

/// [`Ledger::message_groups`]. A delivered SMS is one whose parts all have a `delivered`
/// receipt and none an `undelivered` one (as `delivery_columns!` in `ledger.rs` says); its hour
/// is its last part's. An opt-out is an email's unsubscribe, or a STOP reply from an SMS's
/// number after it was sent (as there too).
const MESSAGE_GROUPS: &str = concat!(
    // What came back is gathered first, each from the smaller side of its join and grouped once
    // by message, then joined to the campaign's rows: asked per message, as subqueries, it took
    // the report 24 s on a ledger of 1,000,000 messages.
    "WITH delivered AS (
         SELECT p.message AS message,
                CASE WHEN SUM(r.state = 'undelivered') > 0 THEN NULL
                     WHEN SUM(r.state = 'delivered') = MAX(p.parts) THEN ",
    hour!("MAX(r.received_at)"),
    " END AS hour
         FROM messages m JOIN sms_parts p ON p.message = m.rowid
              LEFT JOIN receipts r ON r.provider_id = p.provider_id
         WHERE m.campaign = ?1 AND m.channel = 'sms' AND m.state = 'sent'
         GROUP BY p.message),
     stops AS (
         SELECT m.rowid AS message, ",
    hour!("MIN(r.received_at)"),
    " AS hour
         FROM replies r CROSS JOIN messages m
              ON m.campaign = ?1 AND m.channel = 'sms' AND m.address = r.from_number
         WHERE r.keyword = 'opt_out' AND r.received_at >= m.sent_at
         GROUP BY m.rowid),
     unsubscribed AS (
         SELECT u.message AS message, ",
    hour!("u.at"),
    " AS hour
         FROM unsubscribes u CROSS JOIN messages m ON m.rowid = u.message
         WHERE m.campaign = ?1 AND m.channel != 'sms')
     SELECT channel, state, permanent, sent_hour, failed_hour, delivered_hour, opted_out_hour,
            segments, run, COUNT(*)
     FROM (SELECT m.channel AS channel, m.state AS state, m.permanent AS permanent,
                  CASE WHEN m.state = 'sent' THEN ",
    hour!("m.sent_at"),
    " END AS sent_hour,
                  CASE WHEN m.state = 'failed' AND m.permanent THEN ",
    hour!("m.updated_at"),
    " END AS failed_hour,
                  d.hour AS delivered_hour,
                  COALESCE(s.hour, u.hour) AS opted_out_hour,
                  CASE WHEN m.state = 'sent' THEN m.segments END AS segments,
                  CASE WHEN m.state = 'sent' THEN m.run_id END AS run
           FROM messages m LEFT JOIN delivered d ON d.message = m.rowid
                LEFT JOIN stops s ON s.message = m.rowid
                LEFT JOIN unsubscribed u ON u.message = m.rowid
           WHERE m.campaign = ?1)
     GROUP BY channel, state, permanent, sent_hour, failed_hour, delivered_hour, opted_out_hour,
              segments, run"
);

/// [`Ledger::failure_groups`]: refused sends, undelivered SMS, returned mail.
const FAILURE_GROUPS: &str = "
    SELECT channel, 'send', last_error,
           CASE WHEN channel = 'email' THEN lower(substr(address, instr(address, '@') + 1)) END,
           COUNT(*)
    FROM messages WHERE campaign = ?1 AND state = 'failed' AND permanent
    GROUP BY channel, last_error, 4
    UNION ALL
    SELECT 'sms', 'undelivered', r.code, NULL, COUNT(DISTINCT p.message)
    FROM messages m JOIN sms_parts p ON p.message = m.rowid
         JOIN receipts r ON r.provider_id = p.provider_id
    WHERE m.campaign = ?1 AND r.state = 'undelivered'
    GROUP BY r.code
    UNION ALL
    SELECT 'email', b.kind, b.status, b.domain, COUNT(DISTINCT b.message)
    FROM messages m JOIN bounces b ON b.message = m.rowid
    WHERE m.campaign = ?1
    GROUP BY b.kind, b.status, b.domain";

impl Ledger {
    /// `campaign`'s messages in groups ([`MessageGroup`]): one pass over its rows.
    pub fn message_groups(&self, campaign: &str) -> Result<Vec<MessageGroup>, LedgerError> {
        self.sql(|c| {
            let mut stmt = c.prepare(MESSAGE_GROUPS)?;
            let rows = stmt.query_map([campaign], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    MessageGroup {
                        channel: Channel::Email,
                        state: State::Sent,
                        permanent: r.get::<_, i64>(2)? != 0,
                        sent_hour: r.get(3)?,
                        failed_hour: r.get(4)?,
                        delivered_hour: r.get(5)?,
                        opted_out_hour: r.get(6)?,
                        segments: r.get::<_, Option<i64>>(7)?.map(|n| n as u32),
                        run: r.get(8)?,
                        count: r.get::<_, i64>(9)? as u64,
                    },
                ))
            })?;
            let mut out = Vec::new();
            for row in rows {
                let (channel, state, group) = row?;
                if let Ok(channel) = channel.parse::<Channel>() {
                    out.push(MessageGroup {
                        channel,
                        state: State::parse(&state),
                        ..group
                    });
                }
            }
            Ok(out)
        })
    }

    /// `campaign`'s failures in groups ([`FailureGroup`]).
    pub fn failure_groups(&self, campaign: &str) -> Result<Vec<FailureGroup>, LedgerError> {
        self.sql(|c| {
            let mut stmt = c.prepare(FAILURE_GROUPS)?;
            let rows = stmt.query_map([campaign], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    FailureGroup {
                        channel: Channel::Email,
                        kind: r.get(1)?,
                        detail: r.get(2)?,
                        domain: r.get(3)?,
                        count: r.get::<_, i64>(4)? as u64,
                    },
                ))
            })?;
            let mut out = Vec::new();
            for row in rows {
                let (channel, group) = row?;
                if let Ok(channel) = channel.parse::<Channel>() {
                    out.push(FailureGroup { channel, ..group });
                }
            }
            Ok(out)
        })
    }

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
            let mut stmt = c.prepare(
                "SELECT id, started_at, finished_at, outcome, summary FROM runs
                 WHERE campaign = ?1 ORDER BY id",
            )?;
            let rows = stmt.query_map(params![campaign], |r| {
                Ok(RunRecord {
                    id: r.get(0)?,
                    number: 0,
                    started_at: r.get(1)?,
                    finished_at: r.get(2)?,
                    outcome: r.get(3)?,
                    summary: r.get(4)?,
                })
            })?;
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
