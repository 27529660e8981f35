//! The ledger's reads, and a run's bookkeeping. What a plan needs: every earlier message of a
//! campaign ([`Ledger::priors`]) and the day's sends for the daily cap. What `status` and
//! `report` show: counts, the last run, every row (rows looked up by message, a chunk at a time,
//! are `store/lookup.rs`'s `RowLookup`). A run's start and end: interrupted rows turned
//! `unknown`, the campaign's first fingerprint, the `runs` table.
//!
//! `store::ledger` is also the one path where callers find every record the ledger takes and
//! gives: the claims and outcomes (`store/claims.rs`), the writer that commits them
//! (`store/writer.rs`), the purge counts (`store/purge.rs`) and the suppressions and their lifts
//! (`store/suppressions.rs`) are re-exported here.

use std::path::{Path, PathBuf};

use super::db::{Db, DbResult, args};
use chrono::{DateTime, Utc};

use crate::model::{Channel, State};
use crate::plan::{Prior, Priors, Recent};

use super::caps::{cap_counts, cap_time};
pub use super::claims::{Claim, Claimed, Granted};
pub use super::outcomes::Outcome;
pub use super::purge::CampaignRows;
pub use super::rows::RowId;
pub use super::sqlite::{FILE, Ledger, LedgerError, timestamp};
pub use super::suppressions::{Lift, Suppression};
pub use super::writer::{BeforeCommit, ClockFn, Writer, WriterHandle};

/// One row, for reports.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Row {
    pub channel: String,
    pub address: String,
    pub contact_id: String,
    pub state: State,
    pub permanent: bool,
    pub attempts: u32,
    pub provider_id: Option<String>,
    pub last_error: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    pub sent_at: Option<String>,
    /// What became of it after it was sent (see [`delivery_columns`]): for an SMS `delivered`
    /// or `undelivered`, once the carrier said (for a message in parts, `delivered` only when
    /// every part is); for an email `complained`, `bounced`, `undelivered` or `soft-bounced`.
    pub delivery: Option<String>,
    /// The carrier's code of an undelivered SMS, or the DSN status of a bounce.
    pub delivery_code: Option<String>,
    /// How the patient opted out after it (`page`, `one-click`, `mailto`, `STOP reply`).
    pub opted_out: Option<String>,
    /// The consent the contacts file gave when the message was claimed (`yes`, or its date),
    /// and how it was given.
    pub consent: Option<String>,
    pub consent_source: Option<String>,
}

/// A run as recorded.
/// A run's number among the runs of its campaign, by its row.
const RUN_NUMBER: &str = "SELECT COUNT(*) FROM runs AS r, runs AS this
     WHERE this.id = ?1 AND r.campaign = this.campaign AND r.id <= this.id";

#[derive(Debug, Clone, serde::Serialize)]
pub struct RunRecord {
    pub id: i64,
    /// Its number among the runs of its campaign (1 for the first).
    pub number: i64,
    pub started_at: String,
    pub finished_at: Option<String>,
    pub outcome: Option<String>,
    pub summary: Option<String>,
}

impl Ledger {
    /// Turns every `sending` row of `campaign` into `unknown`. Call it holding the campaign lock:
    /// then no live run owns those rows, so each belongs to a run that died mid-send.
    ///
    /// On PostgreSQL, where runs of the campaign may be live elsewhere, only the rows of runs
    /// that are not: finished, unknown, or whose lease expired (`store/lease.rs`), which it
    /// also marks finished, `lost`.
    pub fn recover_interrupted(
        &mut self,
        campaign: &str,
        now: DateTime<Utc>,
    ) -> Result<usize, LedgerError> {
        if self.db.sqlite().is_none() {
            return self.recover_lapsed(campaign, now);
        }
        self.sql(|c| {
            c.execute(
                &format!(
                    "UPDATE {} SET state = 'unknown', updated_at = ?2,
                         last_error = 'interrupted: the run ended before the outcome was recorded'
                     WHERE campaign = ?1 AND state = 'sending'",
                    campaign_rows(c)?
                ),
                args![campaign, timestamp(now)],
            )
        })
    }

    /// Records the templates' fingerprint the first time a campaign sends; afterwards returns the
    /// first run's fingerprint and start when it differs from `fingerprint`.
    pub fn fingerprint_change(
        &mut self,
        campaign: &str,
        fingerprint: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<String>, LedgerError> {
        let known: Option<(String, String)> = self.sql(|c| {
            c.query_opt(
                "SELECT fingerprint, started_at FROM campaigns WHERE id = ?1",
                args![campaign],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
        })?;
        match known {
            Some((fp, started)) if fp != fingerprint => Ok(Some(started)),
            Some(_) => Ok(None),
            None => {
                // On PostgreSQL another run of the campaign may be starting at the same moment:
                // the first insert wins, and the other compares with it.
                let inserted = self.sql(|c| {
                    let sql = match c.sqlite() {
                        Some(_) => {
                            "INSERT INTO campaigns (id, fingerprint, started_at) VALUES (?1, ?2, ?3)"
                        }
                        None => {
                            "INSERT INTO campaigns (id, fingerprint, started_at) VALUES (?1, ?2, ?3)
                             ON CONFLICT (id) DO NOTHING"
                        }
                    };
                    c.execute(sql, args![campaign, fingerprint, timestamp(now)])
                })?;
                match inserted {
                    0 => self.fingerprint_change(campaign, fingerprint, now),
                    _ => Ok(None),
                }
            }
        }
    }

    /// Keeps where `campaign`'s file is (an absolute path), for commands given the state
    /// directory rather than a campaign file.
    pub fn remember_file(
        &mut self,
        campaign: &str,
        file: &Path,
        now: DateTime<Utc>,
    ) -> Result<(), LedgerError> {
        let file = std::fs::canonicalize(file).unwrap_or_else(|_| file.to_path_buf());
        self.sql(|c| {
            c.execute(
                "INSERT INTO campaign_files (campaign, file, seen_at) VALUES (?1, ?2, ?3)
                 ON CONFLICT (campaign) DO UPDATE SET file = excluded.file,
                                                      seen_at = excluded.seen_at",
                args![campaign, file.to_string_lossy(), timestamp(now)],
            )
        })?;
        Ok(())
    }

    /// The campaign files the ledger knows, by campaign id ([`Ledger::remember_file`]).
    pub fn campaign_files(&self) -> Result<Vec<(String, PathBuf)>, LedgerError> {
        self.sql(|c| {
            c.query(
                "SELECT campaign, file FROM campaign_files ORDER BY campaign",
                args![],
                |r| Ok((r.get::<String>(0)?, PathBuf::from(r.get::<String>(1)?))),
            )
        })
    }

    /// Everything the ledger knows of `campaign`, keyed by channel and address.
    pub fn priors(&self, campaign: &str) -> Result<Priors, LedgerError> {
        self.sql(|c| {
            let mut out = Priors::default();
            c.for_each(
                &format!(
                    "SELECT channel, address, state, permanent, attempts FROM {}
                     WHERE campaign = ?1",
                    campaign_rows(c)?
                ),
                args![campaign],
                |r| {
                    let Ok(channel) = r.str(0)?.unwrap_or_default().parse::<Channel>() else {
                        return Ok(());
                    };
                    let prior = Prior {
                        state: State::parse(r.str(2)?.unwrap_or_default()),
                        permanent: r.get::<i64>(3)? != 0,
                        attempts: r.get::<i64>(4)? as u32,
                    };
                    out.insert(channel, r.str(1)?.unwrap_or_default(), prior);
                    Ok(())
                },
            )?;
            Ok(out)
        })
    }

    /// How many messages of `channel` were sent in `[from, to)` (a scan of the campaign's rows,
    /// once per run that has a daily cap).
    pub fn sent_between(
        &self,
        campaign: &str,
        channel: Channel,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<u32, LedgerError> {
        self.sql(|c| {
            c.query_row(
                &format!(
                    "SELECT COUNT(*) FROM {} WHERE campaign = ?1 AND channel = ?2
                         AND state = 'sent' AND sent_at >= ?3 AND sent_at < ?4",
                    campaign_rows(c)?
                ),
                args![campaign, channel.as_str(), timestamp(from), timestamp(to)],
                |r| r.get::<i64>(0),
            )
        })
        .map(|n| n as u32)
    }

    /// Starts a run; returns its id.
    /// Records the start of a run of `campaign`; returns its row (what the ledger keys it by)
    /// and its number among the campaign's runs (what people see: a campaign's first run is
    /// run 1, whatever other campaigns share the state directory).
    pub fn begin_run(
        &mut self,
        campaign: &str,
        now: DateTime<Utc>,
    ) -> Result<(i64, i64), LedgerError> {
        self.sql(|c| {
            // On PostgreSQL the run's lease starts with it, by the server's clock, and says
            // where it runs (`store/lease.rs`).
            let insert = match c.sqlite() {
                Some(_) => "INSERT INTO runs (campaign, pid, started_at) VALUES (?1, ?2, ?3)",
                None => {
                    "INSERT INTO runs (campaign, pid, started_at, host, heartbeat_at)
                     VALUES (?1, ?2, ?3, ?4, now())"
                }
            };
            let (pid, started, host) = (std::process::id(), timestamp(now), super::lease::host());
            let values = args![campaign, pid, started, host];
            let values = match c.sqlite() {
                Some(_) => &values[..3],
                None => values,
            };
            let id = match c.sqlite() {
                Some(_) => c.insert_id(insert, values, "id")?,
                // With its own lock (`store/lease.rs`), taken before another run can see the
                // row; the connection keeps it after the commit.
                None => c.transaction(super::db::Begin::Deferred, |tx| {
                    let id = tx.insert_id(insert, values, "id")?;
                    if let Some(id) = id {
                        tx.query_row(
                            "SELECT pg_advisory_lock(CAST(?1 AS INTEGER), CAST(?2 AS INTEGER))",
                            args![super::lease::RUN_LOCK, id],
                            |_| Ok(()),
                        )?;
                    }
                    Ok::<_, super::db::DbError>(id)
                })?,
            }
            .expect("a run's row is always inserted");
            let number = c.query_row(RUN_NUMBER, args![id], |r| r.get(0))?;
            Ok((id, number))
        })
    }

    /// Ends a run with its outcome word and a one-line summary.
    pub fn end_run(
        &mut self,
        run: i64,
        now: DateTime<Utc>,
        outcome: &str,
        summary: &str,
    ) -> Result<(), LedgerError> {
        self.sql(|c| {
            // On PostgreSQL a run another run found dead stays `lost` (`store/lease.rs`): its
            // messages in flight were reported unknown then, whatever it did after.
            let sql = match c.sqlite() {
                Some(_) => {
                    "UPDATE runs SET finished_at = ?2, outcome = ?3, summary = ?4 WHERE id = ?1"
                }
                None => {
                    "UPDATE runs SET finished_at = ?2, outcome = ?3, summary = ?4
                     WHERE id = ?1 AND outcome IS DISTINCT FROM 'lost'"
                }
            };
            c.execute(sql, args![run, timestamp(now), outcome, summary])
        })
        .map(|_| ())
    }

    /// The latest run of `campaign`.
    pub fn last_run(&self, campaign: &str) -> Result<Option<RunRecord>, LedgerError> {
        self.sql(|c| {
            let found = c.query_opt(
                concat!(
                    run_columns!(),
                    " FROM runs WHERE campaign = ?1 ORDER BY id DESC LIMIT 1"
                ),
                args![campaign],
                run_from,
            )?;
            found
                .map(|mut run| {
                    run.number = c.query_row(RUN_NUMBER, args![run.id], |r| r.get(0))?;
                    Ok(run)
                })
                .transpose()
        })
    }

    /// When the other campaigns of the state directory messaged each address since `since`
    /// (sent, in flight or unknown: what `sending.max_per_patient` counts).
    pub fn recent(&self, campaign: &str, since: DateTime<Utc>) -> Result<Recent, LedgerError> {
        self.sql(|c| {
            let mut recent = Recent::default();
            c.for_each(
                concat!(
                    "SELECT m.channel, m.address, ",
                    cap_time!(),
                    " FROM messages m WHERE m.campaign != ?1 AND ",
                    cap_counts!(),
                    " AND ",
                    cap_time!(),
                    " > ?2"
                ),
                args![campaign, timestamp(since)],
                |r| {
                    let (Ok(channel), Ok(at)) = (
                        r.get::<String>(0)?.parse::<Channel>(),
                        DateTime::parse_from_rfc3339(&r.get::<String>(2)?),
                    ) else {
                        return Ok(());
                    };
                    recent.push(channel, r.get(1)?, at.with_timezone(&Utc));
                    Ok(())
                },
            )?;
            Ok(recent)
        })
    }

    /// Calls `f` with every row of `campaign`, without holding them all in memory.
    pub fn each_row(&self, campaign: &str, mut f: impl FnMut(Row)) -> Result<(), LedgerError> {
        self.sql(|c| {
            c.for_each(SELECT_ROWS, args![campaign], |r| {
                f(row_from(r)?);
                Ok(())
            })
        })
    }
}

/// What became of messages after sending, as `status` counts them (`store::tally`), in its order.
pub const AFTER_SENDING: [&str; 6] = [
    "delivered",
    "undelivered",
    "bounced",
    "soft-bounced",
    "complained",
    "opted out",
];

/// What became of a message after it was sent, three columns of [`CELLS`] and
/// [`SELECT_ROWS`]:
/// - its delivery state: for an SMS from its parts' receipts (`listen`, `sync`): `delivered`
///   once every part is, `undelivered` once one is not; for an email from what the bounce
///   mailbox said (`bounces`), the gravest of `complained`, `bounced` (the address is bad),
///   `undelivered` (refused by policy or another permanent failure) and `soft-bounced`;
/// - the code of that state: the carrier's error code, or the bounce's DSN status;
/// - how the patient opted out after it: an email's unsubscribe (its page, `page`; the
///   mail client's button, `one-click`; a mail to the mailto address, `mailto`), or an SMS's `STOP reply` from its number after it was sent.
///
/// Each is a look-up in an index keyed by the message (or, for a reply, by the number).
macro_rules! delivery_columns {
    () => {
        "CASE WHEN channel = 'sms' THEN
             (SELECT CASE WHEN COUNT(*) FILTER (WHERE r.state = 'undelivered') > 0
                               THEN 'undelivered'
                          WHEN COUNT(*) FILTER (WHERE r.state = 'delivered') = MAX(p.parts)
                               THEN 'delivered' END
              FROM sms_parts p LEFT JOIN receipts r ON r.provider_id = p.provider_id
              WHERE p.message = messages.rowid)
         ELSE
             (SELECT CASE WHEN COUNT(*) FILTER (WHERE b.kind = 'complaint') > 0
                               THEN 'complained'
                          WHEN COUNT(*) FILTER (WHERE b.kind = 'hard') > 0 THEN 'bounced'
                          WHEN COUNT(*) FILTER (WHERE b.kind = 'policy' OR b.kind = 'other') > 0
                               THEN 'undelivered'
                          WHEN COUNT(*) FILTER (WHERE b.kind = 'soft') > 0
                               THEN 'soft-bounced' END
              FROM bounces b WHERE b.message = messages.rowid) END,
         CASE WHEN channel = 'sms' THEN
             (SELECT r.code FROM sms_parts p JOIN receipts r ON r.provider_id = p.provider_id
              WHERE p.message = messages.rowid AND r.state = 'undelivered' LIMIT 1)
         ELSE
             (SELECT b.status FROM bounces b WHERE b.message = messages.rowid
              ORDER BY CASE b.kind WHEN 'complaint' THEN 0 WHEN 'hard' THEN 1
                                   WHEN 'soft' THEN 3 ELSE 2 END, b.id LIMIT 1) END,
         CASE WHEN channel = 'sms' THEN
             (SELECT 'STOP reply' FROM replies
              WHERE from_number = messages.address AND keyword = 'opt_out'
                AND received_at >= messages.sent_at LIMIT 1)
         ELSE (SELECT how FROM unsubscribes WHERE message = messages.rowid) END"
    };
}

/// The columns of `lookup::Cells`, in its order.
pub(super) const CELLS: &str = concat!(
    "attempts, provider_id, last_error, sent_at, updated_at, ",
    delivery_columns!(),
    ", consent, consent_source"
);

/// The columns of `runs` that [`run_from`] reads, in its order.
macro_rules! run_columns {
    () => {
        "SELECT id, started_at, finished_at, outcome, summary"
    };
}
pub(super) use run_columns;

/// A run's record from a row of [`run_columns!`] (its `number` left 0 for the caller to count).
pub(super) fn run_from(r: &super::db::Row<'_>) -> DbResult<RunRecord> {
    Ok(RunRecord {
        id: r.get(0)?,
        number: 0,
        started_at: r.get(1)?,
        finished_at: r.get(2)?,
        outcome: r.get(3)?,
        summary: r.get(4)?,
    })
}

/// Ledgers of up to this many campaigns read a whole campaign by reading the whole table.
const SCAN_CAMPAIGNS: i64 = 10;

/// How to read every message of one campaign. Rows lie in the file in the order they were
/// claimed; the primary key's index orders them by address, so going through it jumps to another
/// page for each row. Measured on 180,640 rows of one campaign: its rows read through the index
/// in 1.2 s, the whole table in 0.45 s (turning interrupted rows into `unknown`: 0.5 s against
/// 0.04 s). The whole table is the faster read unless the campaign is a small part of it, so it
/// is read while the ledger holds at most [`SCAN_CAMPAIGNS`] campaigns.
///
/// SQLite's own: PostgreSQL's planner chooses for itself.
pub(super) fn campaign_rows(c: &Db) -> DbResult<&'static str> {
    if c.sqlite().is_none() {
        return Ok("messages");
    }
    let campaigns: i64 = c.query_row("SELECT COUNT(*) FROM campaigns", args![], |r| r.get(0))?;
    Ok(if campaigns <= SCAN_CAMPAIGNS {
        "messages NOT INDEXED"
    } else {
        "messages"
    })
}

/// Every row of one campaign, with the columns [`row_from`] reads, in its order.
pub(super) const SELECT_ROWS: &str = concat!(
    "SELECT channel, address, contact_id, state, permanent, attempts,
        provider_id, last_error, created_at, updated_at, sent_at, ",
    delivery_columns!(),
    ", consent, consent_source FROM messages WHERE campaign = ?1"
);

pub(super) fn row_from(r: &super::db::Row<'_>) -> DbResult<Row> {
    Ok(Row {
        channel: r.get(0)?,
        address: r.get(1)?,
        contact_id: r.get(2)?,
        state: State::parse(&r.get::<String>(3)?),
        permanent: r.get::<i64>(4)? != 0,
        attempts: r.get::<i64>(5)? as u32,
        provider_id: r.get(6)?,
        last_error: r.get(7)?,
        created_at: r.get(8)?,
        updated_at: r.get(9)?,
        sent_at: r.get(10)?,
        delivery: r.get(11)?,
        delivery_code: r.get(12)?,
        opted_out: r.get(13)?,
        consent: r.get(14)?,
        consent_source: r.get(15)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::claims::fixtures::{claim, outcome};

    #[test]
    fn interrupted_rows_become_unknown() {
        let dir = tempfile::tempdir().unwrap();
        let mut l = Ledger::open(dir.path()).unwrap();
        let now = Utc::now();
        l.claim("c", 1, "fp", &[claim("a"), claim("b")], now)
            .unwrap();
        l.record("c", &[outcome("a", State::Sent)], now).unwrap();
        drop(l);
        let mut l = Ledger::open(dir.path()).unwrap();
        assert_eq!(l.recover_interrupted("c", now).unwrap(), 1);
        let priors = l.priors("c").unwrap();
        assert_eq!(
            priors.get(Channel::Email, "b").unwrap().state,
            State::Unknown
        );
        assert_eq!(
            l.sent_between(
                "c",
                Channel::Email,
                now - chrono::Duration::hours(1),
                now + chrono::Duration::hours(1)
            )
            .unwrap(),
            1
        );
    }

    #[test]
    fn fingerprint_is_remembered() {
        let dir = tempfile::tempdir().unwrap();
        let mut l = Ledger::open(dir.path()).unwrap();
        let now = Utc::now();
        assert_eq!(l.fingerprint_change("c", "one", now).unwrap(), None);
        assert_eq!(l.fingerprint_change("c", "one", now).unwrap(), None);
        assert!(l.fingerprint_change("c", "two", now).unwrap().is_some());
    }

    #[test]
    fn a_campaign_reads_the_same_whether_the_table_or_the_index_is_walked() {
        let dir = tempfile::tempdir().unwrap();
        let mut l = Ledger::open(dir.path()).unwrap();
        let now = Utc::now();
        let mut seen = Vec::new();
        // Campaign "c" first alone (the table is read), then among 12 (the index is walked).
        for round in 0..12 {
            let campaign = if round == 0 {
                "c".to_string()
            } else {
                format!("other{round}")
            };
            l.fingerprint_change(&campaign, "fp", now).unwrap();
            let claims = [claim("a"), claim("b"), claim("z")];
            l.commit(&campaign, (1, "fp"), &[], &claims, now).unwrap();
            l.commit(&campaign, (1, "fp"), &[outcome("a", State::Sent)], &[], now)
                .unwrap();
            if round == 0 || round == 11 {
                assert_eq!(
                    campaign_rows(&l.db).unwrap(),
                    if round == 0 {
                        "messages NOT INDEXED"
                    } else {
                        "messages"
                    }
                );
                let priors = l.priors("c").unwrap();
                let mut states: Vec<_> = ["a", "b", "z", "q"]
                    .iter()
                    .map(|a| priors.get(Channel::Email, a).map(|p| p.state))
                    .collect();
                states.push(None);
                let counts = l
                    .tally("c", crate::store::tally::Detail::Counts)
                    .unwrap()
                    .counts();
                let hour = chrono::Duration::hours(1);
                let sent = l
                    .sent_between("c", Channel::Email, now - hour, now + hour)
                    .unwrap();
                seen.push((states, counts, sent));
            }
        }
        assert_eq!(seen[0], seen[1]);
        assert_eq!(seen[0].2, 1);
        // Only "c"'s two rows in flight become unknown, whichever way they are found.
        assert_eq!(l.recover_interrupted("c", now).unwrap(), 2);
        assert_eq!(l.recover_interrupted("c", now).unwrap(), 0);
        assert_eq!(
            l.priors("other1")
                .unwrap()
                .get(Channel::Email, "b")
                .unwrap()
                .state,
            State::Sending
        );
    }
}
