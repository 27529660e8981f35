//! The send journal: SQLite in `state_dir`, one row per campaign × channel × normalised address.
//! The never-twice invariant lives here.
//!
//! A message is *claimed* (`sending`, committed to disk) before it goes, and its outcome
//! (`sent`, `failed`, `unknown`) recorded after. A claim only succeeds on a row that is new,
//! `failed` or `unknown`: a `sent` or `sending` row is never claimed again, whatever the caller
//! believes. When a run dies (SIGKILL, power), its `sending` rows are found by the next run, which
//! holds the campaign lock, and become `unknown`: reported, and resent only on request.
//!
//! Claims and outcomes are written by one thread in group commits ([`Writer`]): every request
//! that arrives while a commit is under way joins the next one, so the ledger keeps up with the
//! fastest transport without weakening the invariant (a claim is acknowledged only after its
//! commit).

use std::path::{Path, PathBuf};
use std::sync::{Arc, mpsc};

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, params};

use crate::model::{Channel, State};
use crate::plan::{Prior, Priors};

/// The ledger's file inside `state_dir`.
pub const FILE: &str = "ledger.sqlite";

/// A ledger that cannot be opened or written. It is `Clone` (its causes shared, not copied) so
/// that the [`Writer`] can answer every request of a failed commit with that commit's error.
#[derive(Debug, Clone, thiserror::Error)]
pub enum LedgerError {
    #[error("ledger {path}: {source}")]
    Sqlite {
        path: PathBuf,
        source: Arc<rusqlite::Error>,
    },
    #[error("ledger {path}: {source}")]
    Io {
        path: PathBuf,
        source: Arc<std::io::Error>,
    },
    /// The writer thread is gone (it panicked, or the run finished it): nothing more is written.
    #[error("the ledger writer stopped")]
    WriterGone,
}

/// Where a granted claim's row is: the run's report reads it back by this (one lookup by
/// integer key, in claim order) instead of by campaign, channel and address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RowId(i64);

/// The ledger's answer to a claim.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claimed {
    Granted(Granted),
    /// Sent, or in flight: the ledger says no.
    Refused,
    /// The address joined the suppression table since the run's plan was made (an opt-out
    /// another run learned, `outreach unsubscribe`): not sent.
    Suppressed,
}

impl Claimed {
    /// The granted claim, if it was.
    pub fn granted(self) -> Option<Granted> {
        match self {
            Claimed::Granted(g) => Some(g),
            _ => None,
        }
    }
}

/// A granted claim: the message's row and, when the claim took over an earlier attempt's row
/// (`failed` or `unknown`), what that row was, so that a claim released unsent can put it back
/// (a resumed `unknown` must not turn into a retryable failure that any run would send).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Granted {
    pub row: RowId,
    /// The state and `permanent` flag the row had.
    pub was: Option<(State, bool)>,
}

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
}

/// A run as recorded.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RunRecord {
    pub id: i64,
    pub started_at: String,
    pub finished_at: Option<String>,
    pub outcome: Option<String>,
    pub summary: Option<String>,
}

/// A message about to go.
#[derive(Debug, Clone)]
pub struct Claim {
    pub channel: Channel,
    pub address: String,
    pub contact_id: String,
}

/// A message's outcome.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub channel: Channel,
    pub address: String,
    pub state: State,
    pub permanent: bool,
    pub provider_id: Option<String>,
    pub error: Option<String>,
    /// The recipient opted out at the provider: add the address to the suppression table, with
    /// this reason, in the same transaction.
    pub suppress: Option<String>,
    /// Claimed but never handed over (the run stopped first): not counted as an attempt, and an
    /// earlier attempt's error stays the row's error.
    pub released: bool,
    /// The row the message's claim returned: the outcome is written there without a search of
    /// the address index (by the address when that row is no longer the message's).
    pub row: Option<RowId>,
}

/// Times are stored as fixed-width RFC 3339 UTC, so they sort as text.
pub fn timestamp(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

/// The ledger of one state directory.
pub struct Ledger {
    pub(super) conn: Connection,
    pub(super) path: PathBuf,
    /// The connection's `PRAGMA synchronous`, set per commit only when it changes.
    synchronous: &'static str,
}

impl Ledger {
    /// Opens (creating if needed) the ledger in `state_dir`: directory 0700, file 0600.
    pub fn open(state_dir: &Path) -> Result<Self, LedgerError> {
        let path = state_dir.join(FILE);
        let io = |source| LedgerError::Io {
            path: path.clone(),
            source: Arc::new(source),
        };
        crate::private::create_dir(state_dir).map_err(io)?;
        // SQLite would create the file with the umask's mode: create it private first.
        crate::private::open(&path, crate::private::Open::ReadWrite).map_err(io)?;
        let conn = Connection::open(&path).map_err(sqlite_error(&path))?;
        let ledger = Ledger {
            conn,
            path,
            synchronous: "FULL",
        };
        ledger.sql(|c| {
            c.execute_batch(&format!(
                "PRAGMA journal_mode = WAL;
                 PRAGMA synchronous = FULL;
                 PRAGMA busy_timeout = 10000;
                 CREATE TABLE IF NOT EXISTS campaigns (
                     id TEXT PRIMARY KEY,
                     fingerprint TEXT NOT NULL,
                     started_at TEXT NOT NULL
                 );
                 CREATE TABLE IF NOT EXISTS messages {MESSAGES};
                 -- Ledgers of earlier versions had an index on sent_at, for the daily cap's
                 -- count: it cost every recorded outcome an index update, a sixth of the
                 -- writer's time, to save one scan of the campaign's rows per run.
                 DROP INDEX IF EXISTS messages_sent_at;
                 CREATE TABLE IF NOT EXISTS runs (
                     id INTEGER PRIMARY KEY,
                     campaign TEXT NOT NULL,
                     pid INTEGER NOT NULL,
                     started_at TEXT NOT NULL,
                     finished_at TEXT,
                     outcome TEXT,
                     summary TEXT
                 );
                 CREATE TABLE IF NOT EXISTS suppressions (
                     address TEXT PRIMARY KEY,
                     reason TEXT NOT NULL,
                     source TEXT,
                     added_at TEXT NOT NULL
                 );
                 CREATE TABLE IF NOT EXISTS approvals (
                     id INTEGER PRIMARY KEY,
                     campaign TEXT NOT NULL,
                     approved_by TEXT NOT NULL,
                     approved_at TEXT NOT NULL,
                     fingerprint TEXT NOT NULL
                 );
                 CREATE INDEX IF NOT EXISTS approvals_campaign ON approvals (campaign, id);
                 CREATE TABLE IF NOT EXISTS approval_rows (
                     approval INTEGER NOT NULL,
                     kind TEXT NOT NULL CHECK (kind IN ('contact', 'suppression')),
                     file TEXT NOT NULL,
                     key TEXT NOT NULL,
                     hash TEXT NOT NULL,
                     PRIMARY KEY (approval, kind, file, key)
                 ) WITHOUT ROWID;",
            ))?;
            rebuild_messages_check(c)
        })?;
        Ok(ledger)
    }

    pub(super) fn sql<T>(
        &self,
        f: impl FnOnce(&Connection) -> rusqlite::Result<T>,
    ) -> Result<T, LedgerError> {
        f(&self.conn).map_err(sqlite_error(&self.path))
    }

    /// The ledger file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Turns every `sending` row of `campaign` into `unknown`. Call it holding the campaign lock:
    /// then no live run owns those rows, so each belongs to a run that died mid-send.
    pub fn recover_interrupted(
        &mut self,
        campaign: &str,
        now: DateTime<Utc>,
    ) -> Result<usize, LedgerError> {
        self.sql(|c| {
            c.execute(
                &format!(
                    "UPDATE {} SET state = 'unknown', updated_at = ?2,
                         last_error = 'interrupted: the run ended before the outcome was recorded'
                     WHERE campaign = ?1 AND state = 'sending'",
                    campaign_rows(c)?
                ),
                params![campaign, timestamp(now)],
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
            c.query_row(
                "SELECT fingerprint, started_at FROM campaigns WHERE id = ?1",
                [campaign],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
        })?;
        match known {
            Some((fp, started)) if fp != fingerprint => Ok(Some(started)),
            Some(_) => Ok(None),
            None => {
                self.sql(|c| {
                    c.execute(
                        "INSERT INTO campaigns (id, fingerprint, started_at) VALUES (?1, ?2, ?3)",
                        params![campaign, fingerprint, timestamp(now)],
                    )
                })?;
                Ok(None)
            }
        }
    }

    /// Everything the ledger knows of `campaign`, keyed by channel and address.
    pub fn priors(&self, campaign: &str) -> Result<Priors, LedgerError> {
        self.sql(|c| {
            let mut stmt = c.prepare(&format!(
                "SELECT channel, address, state, permanent, attempts FROM {} WHERE campaign = ?1",
                campaign_rows(c)?
            ))?;
            let rows = stmt.query_map([campaign], |r| {
                let channel: String = r.get(0)?;
                let address: String = r.get(1)?;
                let state: String = r.get(2)?;
                Ok((
                    channel,
                    address,
                    Prior {
                        state: State::parse(&state),
                        permanent: r.get::<_, i64>(3)? != 0,
                        attempts: r.get::<_, i64>(4)? as u32,
                    },
                ))
            })?;
            let mut out = Priors::default();
            for row in rows {
                let (channel, address, prior) = row?;
                if let Ok(ch) = channel.parse::<Channel>() {
                    out.insert(ch, address, prior);
                }
            }
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
                params![campaign, channel.as_str(), timestamp(from), timestamp(to)],
                |r| r.get::<_, i64>(0),
            )
        })
        .map(|n| n as u32)
    }

    /// Starts a run; returns its id.
    pub fn begin_run(&mut self, campaign: &str, now: DateTime<Utc>) -> Result<i64, LedgerError> {
        self.sql(|c| {
            c.execute(
                "INSERT INTO runs (campaign, pid, started_at) VALUES (?1, ?2, ?3)",
                params![campaign, std::process::id(), timestamp(now)],
            )?;
            Ok(c.last_insert_rowid())
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
            c.execute(
                "UPDATE runs SET finished_at = ?2, outcome = ?3, summary = ?4 WHERE id = ?1",
                params![run, timestamp(now), outcome, summary],
            )
        })
        .map(|_| ())
    }

    /// The latest run of `campaign`.
    pub fn last_run(&self, campaign: &str) -> Result<Option<RunRecord>, LedgerError> {
        self.sql(|c| {
            c.query_row(
                "SELECT id, started_at, finished_at, outcome, summary FROM runs
                 WHERE campaign = ?1 ORDER BY id DESC LIMIT 1",
                [campaign],
                |r| {
                    Ok(RunRecord {
                        id: r.get(0)?,
                        started_at: r.get(1)?,
                        finished_at: r.get(2)?,
                        outcome: r.get(3)?,
                        summary: r.get(4)?,
                    })
                },
            )
            .optional()
        })
    }

    /// Counts of `campaign` by channel and state (`failed` split into permanent and retryable).
    pub fn counts(&self, campaign: &str) -> Result<Vec<(Channel, State, bool, u64)>, LedgerError> {
        self.sql(|c| {
            let mut stmt = c.prepare(&format!(
                "SELECT channel, state, permanent, COUNT(*) FROM {} WHERE campaign = ?1
                 GROUP BY channel, state, permanent ORDER BY channel, state",
                campaign_rows(c)?
            ))?;
            let rows = stmt.query_map([campaign], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, i64>(2)? != 0,
                    r.get::<_, i64>(3)? as u64,
                ))
            })?;
            let mut out = Vec::new();
            for row in rows {
                let (channel, state, permanent, n) = row?;
                if let Ok(ch) = channel.parse::<Channel>() {
                    out.push((ch, State::parse(&state), permanent, n));
                }
            }
            Ok(out)
        })
    }

    /// Looks up many rows of `campaign` with one prepared statement, in one read transaction:
    /// SQLite then takes its shared lock once, not once per row.
    pub fn rows_of<'a>(&'a self, campaign: &'a str) -> Result<RowLookup<'a>, LedgerError> {
        let sqlite = sqlite_error(&self.path);
        let read = self.conn.unchecked_transaction().map_err(sqlite)?;
        let stmt = self
            .conn
            .prepare(&format!("{SELECT_ROWS} AND channel = ?2 AND address = ?3"))
            .map_err(sqlite)?;
        let cells_by_row = self
            .conn
            .prepare(&format!(
                "SELECT {CELLS} FROM messages
                 WHERE campaign = ?1 AND channel = ?2 AND address = ?3 AND rowid = ?4"
            ))
            .map_err(sqlite)?;
        Ok(RowLookup {
            path: &self.path,
            campaign,
            stmt,
            cells_by_row,
            _read: read,
        })
    }

    /// Calls `f` with every row of `campaign`, without holding them all in memory.
    pub fn each_row(&self, campaign: &str, mut f: impl FnMut(Row)) -> Result<(), LedgerError> {
        self.sql(|c| {
            let mut stmt = c.prepare(SELECT_ROWS)?;
            let mut rows = stmt.query([campaign])?;
            while let Some(r) = rows.next()? {
                f(row_from(r)?);
            }
            Ok(())
        })
    }

    /// Adds addresses learnt while sending (opt-out replies, `outreach unsubscribe`) to the
    /// suppression table shared by every campaign of this state directory.
    pub fn suppress(
        &mut self,
        address: &str,
        reason: &str,
        source: &str,
        now: DateTime<Utc>,
    ) -> Result<(), LedgerError> {
        self.sql(|c| {
            c.execute(
                "INSERT INTO suppressions (address, reason, source, added_at) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (address) DO NOTHING",
                params![address, reason, source, timestamp(now)],
            )
        })
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

    /// Claims `claims` in one transaction; returns, for each, its row if it was granted (a `sent`
    /// or `sending` row is refused).
    pub fn claim(
        &mut self,
        campaign: &str,
        run: i64,
        fingerprint: &str,
        claims: &[Claim],
        now: DateTime<Utc>,
    ) -> Result<Vec<Option<RowId>>, LedgerError> {
        let claimed = self.commit(campaign, (run, fingerprint), &[], claims, now)?;
        Ok(claimed.iter().map(|c| c.granted().map(|g| g.row)).collect())
    }

    /// Records outcomes in one transaction.
    pub fn record(
        &mut self,
        campaign: &str,
        outcomes: &[Outcome],
        now: DateTime<Utc>,
    ) -> Result<(), LedgerError> {
        self.commit(campaign, (0, ""), outcomes, &[], now)
            .map(|_| ())
    }

    /// Records `outcomes`, then claims `claims` (for run and fingerprint `claimed_by`), in one
    /// transaction. It is fsynced when it claims anything: a claim must be on disk before its
    /// message goes. Outcomes alone are not: one lost to a power cut leaves its row `sending`,
    /// which the next run reports as unknown, so they only need to survive the process.
    pub fn commit(
        &mut self,
        campaign: &str,
        claimed_by: (i64, &str),
        outcomes: &[Outcome],
        claims: &[Claim],
        now: DateTime<Utc>,
    ) -> Result<Vec<Claimed>, LedgerError> {
        let sqlite = sqlite_error(&self.path);
        let sync = if claims.is_empty() { "NORMAL" } else { "FULL" };
        if sync != self.synchronous {
            self.conn
                .execute_batch(&format!("PRAGMA synchronous = {sync}"))
                .map_err(sqlite)?;
            self.synchronous = sync;
        }
        let now = timestamp(now);
        let tx = self.conn.transaction().map_err(sqlite)?;
        record_in(&tx, campaign, outcomes, &now).map_err(sqlite)?;
        let granted =
            claim_in(&tx, campaign, claimed_by.0, claimed_by.1, claims, &now).map_err(sqlite)?;
        tx.commit().map_err(sqlite)?;
        Ok(granted)
    }
}

impl Ledger {
    /// [`Ledger::commit`] stamped with `clock`, tried again for up to [`BUSY_PATIENCE`] while
    /// another connection holds the write lock past SQLite's own wait.
    fn commit_patiently(
        &mut self,
        campaign: &str,
        claimed_by: (i64, &str),
        outcomes: &[Outcome],
        claims: &[Claim],
        clock: &ClockFn,
    ) -> Result<Vec<Claimed>, LedgerError> {
        let patience = std::time::Instant::now() + BUSY_PATIENCE;
        loop {
            match self.commit(campaign, claimed_by, outcomes, claims, clock()) {
                Err(e) if is_busy(&e) && std::time::Instant::now() < patience => {
                    tracing::warn!("{e}: another process is writing it; trying again");
                    std::thread::sleep(std::time::Duration::from_millis(200));
                }
                r => return r,
            }
        }
    }
}

/// What `purge --ledger` deletes of one campaign.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct CampaignRows {
    pub messages: u64,
    pub runs: u64,
    pub approvals: u64,
}

impl CampaignRows {
    /// All rows together.
    pub fn total(&self) -> u64 {
        self.messages + self.runs + self.approvals
    }
}

impl Ledger {
    /// How many rows of `campaign` the ledger holds (what `purge --ledger` would delete).
    pub fn campaign_rows(&self, campaign: &str) -> Result<CampaignRows, LedgerError> {
        self.sql(|c| {
            let count = |sql: &str| c.query_row(sql, [campaign], |r| r.get::<_, i64>(0));
            Ok(CampaignRows {
                messages: count("SELECT COUNT(*) FROM messages WHERE campaign = ?1")? as u64,
                runs: count("SELECT COUNT(*) FROM runs WHERE campaign = ?1")? as u64,
                approvals: count("SELECT COUNT(*) FROM approvals WHERE campaign = ?1")? as u64,
            })
        })
    }

    /// Deletes every row of `campaign` (messages, runs, approvals, its first-send record); the
    /// suppressions, shared by all campaigns, and other campaigns' rows stay. Deleted rows are
    /// overwritten (`secure_delete`), the file rebuilt (`VACUUM`: b-tree dividers keep copies of
    /// deleted keys) and the write-ahead log emptied, so no patient address lingers.
    pub fn purge(&mut self, campaign: &str) -> Result<CampaignRows, LedgerError> {
        let rows = self.campaign_rows(campaign)?;
        let sqlite = sqlite_error(&self.path);
        self.conn
            .execute_batch("PRAGMA secure_delete = ON")
            .map_err(sqlite)?;
        let tx = self.conn.transaction().map_err(sqlite)?;
        for sql in [
            "DELETE FROM approval_rows WHERE approval IN
                 (SELECT id FROM approvals WHERE campaign = ?1)",
            "DELETE FROM approvals WHERE campaign = ?1",
            "DELETE FROM messages WHERE campaign = ?1",
            "DELETE FROM runs WHERE campaign = ?1",
            "DELETE FROM campaigns WHERE id = ?1",
        ] {
            tx.execute(sql, [campaign]).map_err(sqlite)?;
        }
        tx.commit().map_err(sqlite)?;
        // Interior b-tree pages keep copies of deleted keys as dividers: rebuild the file.
        self.conn.execute_batch("VACUUM").map_err(sqlite)?;
        let busy: i64 = self
            .conn
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| r.get(0))
            .map_err(sqlite)?;
        if busy != 0 {
            tracing::warn!(
                "{}: another process holds the ledger; its write-ahead log is emptied when it \
                 closes",
                self.path.display()
            );
        }
        Ok(rows)
    }
}

/// What a report shows of a message's ledger row, borrowed from it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Cells<'r> {
    pub attempts: u32,
    pub provider_id: &'r str,
    pub last_error: &'r str,
    pub sent_at: &'r str,
    pub updated_at: &'r str,
}

impl<'r> From<&'r Row> for Cells<'r> {
    fn from(r: &'r Row) -> Self {
        Cells {
            attempts: r.attempts,
            provider_id: r.provider_id.as_deref().unwrap_or_default(),
            last_error: r.last_error.as_deref().unwrap_or_default(),
            sent_at: r.sent_at.as_deref().unwrap_or_default(),
            updated_at: &r.updated_at,
        }
    }
}

/// The columns of [`Cells`], in its order.
const CELLS: &str = "attempts, provider_id, last_error, sent_at, updated_at";

/// Rows of one campaign, looked up one by one ([`Ledger::rows_of`]).
pub struct RowLookup<'a> {
    path: &'a Path,
    campaign: &'a str,
    stmt: rusqlite::Statement<'a>,
    cells_by_row: rusqlite::Statement<'a>,
    /// Ended (it only read) after the statements are dropped.
    _read: rusqlite::Transaction<'a>,
}

impl RowLookup<'_> {
    /// The row of one message, if the ledger has it.
    pub fn get(&mut self, channel: Channel, address: &str) -> Result<Option<Row>, LedgerError> {
        self.stmt
            .query_row(params![self.campaign, channel.as_str(), address], row_from)
            .optional()
            .map_err(sqlite_error(self.path))
    }

    /// Calls `f` with the report's cells of the message whose claim returned `row`, read in
    /// place (a report of 180,000 rows makes no strings for them), or with the row
    /// [`RowLookup::get`] finds when `row` is no longer the message's.
    pub fn with_claimed<T>(
        &mut self,
        channel: Channel,
        address: &str,
        row: RowId,
        f: impl FnOnce(Option<Cells<'_>>) -> T,
    ) -> Result<T, LedgerError> {
        let sqlite = sqlite_error(self.path);
        let mut rows = self
            .cells_by_row
            .query(params![self.campaign, channel.as_str(), address, row.0])
            .map_err(sqlite)?;
        if let Some(r) = rows.next().map_err(sqlite)? {
            let text = |i| {
                r.get_ref(i)
                    .map(|v| v.as_str_or_null().map(Option::unwrap_or_default))
            };
            let cells = (|| -> rusqlite::Result<Cells<'_>> {
                Ok(Cells {
                    attempts: r.get::<_, i64>(0)? as u32,
                    provider_id: text(1)??,
                    last_error: text(2)??,
                    sent_at: text(3)??,
                    updated_at: text(4)??,
                })
            })()
            .map_err(sqlite)?;
            return Ok(f(Some(cells)));
        }
        drop(rows);
        let found = self.get(channel, address)?;
        Ok(f(found.as_ref().map(Cells::from)))
    }
}

/// Ledgers of up to this many campaigns read a whole campaign by reading the whole table.
const SCAN_CAMPAIGNS: i64 = 10;

/// How to read every message of one campaign. Rows lie in the file in the order they were
/// claimed; the primary key's index orders them by address, so going through it jumps to another
/// page for each row. Measured on 180,640 rows of one campaign: its rows read through the index
/// in 1.2 s, the whole table in 0.45 s (turning interrupted rows into `unknown`: 0.5 s against
/// 0.04 s). The whole table is the faster read unless the campaign is a small part of it, so it
/// is read while the ledger holds at most [`SCAN_CAMPAIGNS`] campaigns.
fn campaign_rows(c: &Connection) -> rusqlite::Result<&'static str> {
    let campaigns: i64 = c.query_row("SELECT COUNT(*) FROM campaigns", [], |r| r.get(0))?;
    Ok(if campaigns <= SCAN_CAMPAIGNS {
        "messages NOT INDEXED"
    } else {
        "messages"
    })
}

/// The error of a SQLite call on the ledger at `path`.
pub(super) fn sqlite_error(path: &Path) -> impl Fn(rusqlite::Error) -> LedgerError + Copy + '_ {
    |source| LedgerError::Sqlite {
        path: path.to_path_buf(),
        source: Arc::new(source),
    }
}

/// Every row of one campaign, with the columns [`row_from`] reads, in its order.
const SELECT_ROWS: &str = "SELECT channel, address, contact_id, state, permanent, attempts,
        provider_id, last_error, created_at, updated_at, sent_at
    FROM messages WHERE campaign = ?1";

/// The messages table's columns. The state is checked with `=` and `OR`: SQLite evaluates an
/// `IN` list of more than two values through a temporary table opened for every row written,
/// which cost a third of each insert and update (EXPLAIN shows `OpenEphemeral`; SMS run -6%).
const MESSAGES: &str = "(
    campaign TEXT NOT NULL,
    channel TEXT NOT NULL,
    address TEXT NOT NULL,
    contact_id TEXT NOT NULL,
    state TEXT NOT NULL
        CHECK (state = 'sending' OR state = 'sent' OR state = 'failed' OR state = 'unknown'),
    permanent INTEGER NOT NULL DEFAULT 0,
    attempts INTEGER NOT NULL DEFAULT 0,
    provider_id TEXT,
    last_error TEXT,
    fingerprint TEXT NOT NULL,
    run_id INTEGER,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    sent_at TEXT,
    PRIMARY KEY (campaign, channel, address)
)";

/// Rebuilds a messages table of an earlier version, whose state check was an `IN` list, with
/// [`MESSAGES`]: the rows (row ids included) are copied to a new table that then takes the old
/// one's name, all in one transaction, so a crash leaves the old table as it was.
fn rebuild_messages_check(c: &Connection) -> rusqlite::Result<()> {
    let earlier = |c: &Connection| -> rusqlite::Result<bool> {
        let sql: String = c.query_row(
            "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'messages'",
            [],
            |r| r.get(0),
        )?;
        Ok(sql.contains("state IN ("))
    };
    if !earlier(c)? {
        return Ok(());
    }
    const COLUMNS: &str = "rowid, campaign, channel, address, contact_id, state, permanent, \
        attempts, provider_id, last_error, fingerprint, run_id, created_at, updated_at, sent_at";
    let rebuild = || -> rusqlite::Result<()> {
        c.execute_batch("BEGIN IMMEDIATE")?;
        // Asked again under the write lock: another process may have rebuilt it meanwhile.
        if earlier(c)? {
            c.execute_batch(&format!(
                "CREATE TABLE messages_rebuilt {MESSAGES};
                 INSERT INTO messages_rebuilt ({COLUMNS}) SELECT {COLUMNS} FROM messages;
                 DROP TABLE messages;
                 ALTER TABLE messages_rebuilt RENAME TO messages;"
            ))?;
        }
        c.execute_batch("COMMIT")
    };
    rebuild().inspect_err(|_| {
        let _ = c.execute_batch("ROLLBACK");
    })
}

fn row_from(r: &rusqlite::Row<'_>) -> rusqlite::Result<Row> {
    Ok(Row {
        channel: r.get(0)?,
        address: r.get(1)?,
        contact_id: r.get(2)?,
        state: State::parse(&r.get::<_, String>(3)?),
        permanent: r.get::<_, i64>(4)? != 0,
        attempts: r.get::<_, i64>(5)? as u32,
        provider_id: r.get(6)?,
        last_error: r.get(7)?,
        created_at: r.get(8)?,
        updated_at: r.get(9)?,
        sent_at: r.get(10)?,
    })
}

fn claim_in(
    tx: &rusqlite::Transaction<'_>,
    campaign: &str,
    run: i64,
    fingerprint: &str,
    claims: &[Claim],
    now: &str,
) -> rusqlite::Result<Vec<Claimed>> {
    // A new message is one insert whose row id the connection keeps; only a message the ledger
    // already holds pays for more statements. (`RETURNING` would open a temporary table in
    // every execution.)
    // Not to a suppressed address: the suppression table may have grown since the plan (another
    // run's opt-outs, `outreach unsubscribe`), and the claim is where that is settled.
    let mut insert = tx.prepare_cached(
        "INSERT INTO messages (campaign, channel, address, contact_id, state, attempts,
                               fingerprint, run_id, created_at, updated_at)
         SELECT ?1, ?2, ?3, ?4, 'sending', 1, ?5, ?6, ?7, ?7
         WHERE NOT EXISTS (SELECT 1 FROM suppressions WHERE address = ?3)
         ON CONFLICT (campaign, channel, address) DO NOTHING",
    )?;
    let mut existing = tx.prepare_cached(
        "SELECT rowid, state, permanent,
                EXISTS (SELECT 1 FROM suppressions WHERE address = ?3)
         FROM messages WHERE campaign = ?1 AND channel = ?2 AND address = ?3",
    )?;
    let mut take_over = tx.prepare_cached(
        "UPDATE messages SET state = 'sending', attempts = attempts + 1, contact_id = ?2,
                             fingerprint = ?3, run_id = ?4, updated_at = ?5
         WHERE rowid = ?1",
    )?;
    let mut granted = Vec::with_capacity(claims.len());
    for c in claims {
        let values = params![
            campaign,
            c.channel.as_str(),
            c.address,
            c.contact_id,
            fingerprint,
            run,
            now
        ];
        if insert.execute(values)? == 1 {
            granted.push(Claimed::Granted(Granted {
                row: RowId(tx.last_insert_rowid()),
                was: None,
            }));
            continue;
        }
        // Taken over when a failed or unknown message; refused when sent, or in flight.
        let row = existing
            .query_row(params![campaign, c.channel.as_str(), c.address], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, bool>(2)?,
                    r.get::<_, bool>(3)?,
                ))
            })
            .optional()?;
        let Some((row, state, permanent, suppressed)) = row else {
            // No row, so the insert met a suppression.
            granted.push(Claimed::Suppressed);
            continue;
        };
        let state = State::parse(&state);
        if !matches!(state, State::Failed | State::Unknown) {
            granted.push(Claimed::Refused);
            continue;
        }
        if suppressed {
            granted.push(Claimed::Suppressed);
            continue;
        }
        take_over.execute(params![row, c.contact_id, fingerprint, run, now])?;
        granted.push(Claimed::Granted(Granted {
            row: RowId(row),
            was: Some((state, permanent)),
        }));
    }
    Ok(granted)
}

/// How [`record_in`] writes an outcome to the message's row (parameters 1-3: campaign, channel,
/// address), found first by `$row` (parameter 10, the row id) if given.
macro_rules! record_sql {
    ($row:literal) => {
        concat!(
            "UPDATE messages SET state = ?4, permanent = ?5, provider_id = COALESCE(?6, provider_id),
                 last_error = CASE WHEN ?9 THEN COALESCE(last_error, ?7) ELSE ?7 END,
                 attempts = attempts - ?9, updated_at = ?8,
                 sent_at = CASE WHEN ?4 = 'sent' THEN ?8 ELSE sent_at END
             WHERE ",
            $row,
            "campaign = ?1 AND channel = ?2 AND address = ?3 AND state = 'sending'"
        )
    };
}

fn record_in(
    tx: &rusqlite::Transaction<'_>,
    campaign: &str,
    outcomes: &[Outcome],
    now: &str,
) -> rusqlite::Result<()> {
    // By the claim's row: one step down the table, instead of a search of the address index
    // and then one down the table.
    let mut by_row = tx.prepare_cached(record_sql!("rowid = ?10 AND "))?;
    let mut by_key = tx.prepare_cached(record_sql!(""))?;
    for o in outcomes {
        let row = o.row.map(|r| r.0);
        let values: [&dyn rusqlite::ToSql; 10] = [
            &campaign,
            &o.channel.as_str(),
            &o.address,
            &o.state.as_str(),
            &o.permanent,
            &o.provider_id,
            &o.error,
            &now,
            &o.released,
            &row,
        ];
        // A row id that is no longer the message's (`purge` of another campaign rebuilt the
        // file mid-run) changes nothing: the address finds the row then.
        if row.is_none() || by_row.execute(&values[..])? == 0 {
            by_key.execute(&values[..9])?;
        }
        if let Some(reason) = &o.suppress {
            tx.prepare_cached(
                "INSERT INTO suppressions (address, reason, source, added_at) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (address) DO NOTHING",
            )?
            .execute(params![
                o.address,
                reason,
                format!("{} reply, campaign {campaign}", o.channel),
                now
            ])?;
        }
    }
    Ok(())
}

enum Request {
    Claim(
        Vec<Claim>,
        tokio::sync::oneshot::Sender<Result<Vec<Claimed>, LedgerError>>,
    ),
    Record(Outcome),
    Flush(tokio::sync::oneshot::Sender<Result<(), LedgerError>>),
}

/// The group-commit writer: one thread owns the ledger; claims and outcomes sent to it while a
/// commit is under way are committed together in the next one.
pub struct Writer {
    tx: mpsc::Sender<Request>,
    thread: Option<std::thread::JoinHandle<Ledger>>,
}

/// The clock the writer stamps rows with.
pub type ClockFn = std::sync::Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>;

/// Most requests one commit takes.
const MAX_BATCH: usize = 2048;

/// A commit of fewer requests than this waits up to [`GATHER`] for more.
const GATHER_MIN: usize = 64;
const GATHER: std::time::Duration = std::time::Duration::from_micros(1500);
/// How long the writer keeps trying a commit that another process's write lock holds up (a
/// `purge` of another campaign rebuilding the file, say), on top of SQLite's own wait.
const BUSY_PATIENCE: std::time::Duration = std::time::Duration::from_secs(120);

/// Whether `e` is another connection holding the write lock (`SQLITE_BUSY`; a table locked
/// within this connection, `SQLITE_LOCKED`, would not pass by waiting).
fn is_busy(e: &LedgerError) -> bool {
    matches!(
        e,
        LedgerError::Sqlite { source, .. }
            if source.sqlite_error_code() == Some(rusqlite::ErrorCode::DatabaseBusy)
    )
}

/// How often a gathering writer looks for more requests.
const GATHER_NAP: std::time::Duration = std::time::Duration::from_micros(250);

impl Writer {
    /// Starts the writer thread for `campaign`'s run `run`.
    pub fn start(
        mut ledger: Ledger,
        campaign: String,
        run: i64,
        fingerprint: String,
        clock: ClockFn,
    ) -> Self {
        let (tx, rx) = mpsc::channel::<Request>();
        let thread = std::thread::Builder::new()
            .name("ledger".into())
            .spawn(move || {
                let mut failed: Option<LedgerError> = None;
                // A run dirties the same index pages commit after commit: checkpointing every
                // 10,000 WAL pages instead of 1,000 copies each of them back to the database
                // once, not ten times (a fifth less ledger time). The WAL file keeps its size
                // during the run, so a commit after a checkpoint overwrites blocks it already
                // has instead of making the file system allocate them again; it is emptied when
                // the run's last commit is done.
                if let Err(e) = ledger.sql(|c| {
                    c.execute_batch(
                        "PRAGMA wal_autocheckpoint = 10000; PRAGMA journal_size_limit = -1;",
                    )
                }) {
                    failed = Some(e);
                }
                let (mut commits, mut requests) = (0u64, 0u64);
                while let Ok(first) = rx.recv() {
                    let mut batch = vec![first];
                    // Gather what is waiting; when that is only a few requests, give the others
                    // a moment to join, so one fsync covers many claims. The thread naps rather
                    // than waits on the channel, so a request that joins does not have to wake it.
                    let deadline = std::time::Instant::now() + GATHER;
                    while batch.len() < MAX_BATCH {
                        match rx.try_recv() {
                            Ok(r) => batch.push(r),
                            Err(mpsc::TryRecvError::Empty) if batch.len() < GATHER_MIN => {
                                let now = std::time::Instant::now();
                                if now >= deadline {
                                    break;
                                }
                                std::thread::sleep(GATHER_NAP.min(deadline - now));
                            }
                            Err(_) => break,
                        }
                    }
                    commits += 1;
                    requests += batch.len() as u64;
                    let mut claims = Vec::new();
                    let mut claim_replies = Vec::new();
                    let mut outcomes = Vec::new();
                    let mut flushes = Vec::new();
                    for r in batch {
                        match r {
                            Request::Claim(c, reply) => {
                                claim_replies.push((claims.len(), c.len(), reply));
                                claims.extend(c);
                            }
                            Request::Record(o) => outcomes.push(o),
                            Request::Flush(reply) => flushes.push(reply),
                        }
                    }
                    // Outcomes first: a retry's re-claim in the same batch must see `failed`.
                    // A commit another process holds up (its write lock past SQLite's own wait)
                    // is tried again for a while: given up, it would lose every outcome from
                    // then on, messages that went included, and leave their rows `sending`.
                    let result = match &failed {
                        Some(e) => Err(e.clone()),
                        None => ledger.commit_patiently(
                            &campaign,
                            (run, &fingerprint),
                            &outcomes,
                            &claims,
                            &clock,
                        ),
                    };
                    if let Err(e) = &result {
                        failed = Some(e.clone());
                    }
                    for (start, len, reply) in claim_replies {
                        let _ = reply.send(
                            result
                                .as_ref()
                                .map(|g| g[start..start + len].to_vec())
                                .map_err(Clone::clone),
                        );
                    }
                    for reply in flushes {
                        let _ = reply.send(result.as_ref().map(|_| ()).map_err(Clone::clone));
                    }
                }
                tracing::debug!(commits, requests, "ledger writer done");
                // Another process reading the ledger (`status`, `preview --serve`) may keep part
                // of the log for now; it is cut back when that reader is done.
                if let Err(e) = ledger.conn.execute_batch(
                    "PRAGMA journal_size_limit = 4194304; PRAGMA wal_checkpoint(TRUNCATE);",
                ) {
                    tracing::debug!("ledger: emptying the write-ahead log: {e}");
                }
                ledger
            })
            .expect("start the ledger thread");
        Writer {
            tx,
            thread: Some(thread),
        }
    }

    /// A handle for workers.
    pub fn handle(&self) -> WriterHandle {
        WriterHandle {
            tx: self.tx.clone(),
        }
    }

    /// Waits for every request to be committed and returns the ledger.
    pub fn finish(mut self) -> Ledger {
        let (tx, _) = mpsc::channel();
        drop(std::mem::replace(&mut self.tx, tx));
        self.thread
            .take()
            .expect("finished once")
            .join()
            .expect("ledger thread panicked")
    }
}

/// What workers hold to talk to the [`Writer`].
#[derive(Clone)]
pub struct WriterHandle {
    tx: mpsc::Sender<Request>,
}

impl WriterHandle {
    /// Claims one message: its row, or `None` when the ledger refused (already sent or in
    /// flight). Returns once the claim is on disk.
    pub async fn claim(&self, claim: Claim) -> Result<Claimed, LedgerError> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.tx
            .send(Request::Claim(vec![claim], tx))
            .map_err(|_| LedgerError::WriterGone)?;
        rx.await.map_err(|_| LedgerError::WriterGone)?.map(|g| g[0])
    }

    /// Queues an outcome (committed with the next group).
    pub fn record(&self, outcome: Outcome) {
        let _ = self.tx.send(Request::Record(outcome));
    }

    /// Waits until everything queued so far is committed.
    pub async fn flush(&self) -> Result<(), LedgerError> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.tx
            .send(Request::Flush(tx))
            .map_err(|_| LedgerError::WriterGone)?;
        rx.await.map_err(|_| LedgerError::WriterGone)?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claim(addr: &str) -> Claim {
        Claim {
            channel: Channel::Email,
            address: addr.into(),
            contact_id: "P1".into(),
        }
    }

    fn outcome(addr: &str, state: State) -> Outcome {
        Outcome {
            channel: Channel::Email,
            address: addr.into(),
            state,
            permanent: false,
            provider_id: Some("id-1".into()),
            error: None,
            suppress: None,
            released: false,
            row: None,
        }
    }

    #[test]
    fn an_outcome_goes_to_its_claims_row_or_else_to_its_address() {
        let dir = tempfile::tempdir().unwrap();
        let mut l = Ledger::open(dir.path()).unwrap();
        let now = Utc::now();
        let rows = l
            .claim("c", 1, "fp", &[claim("a"), claim("b"), claim("c")], now)
            .unwrap();
        let a = rows[0].expect("granted");
        // "b" comes with "a"'s row (as after the file was rebuilt mid-run), "c" with none.
        let with_row = |addr, state, row| Outcome {
            row,
            ..outcome(addr, state)
        };
        l.record(
            "c",
            &[
                with_row("a", State::Sent, Some(a)),
                with_row("b", State::Unknown, Some(a)),
                with_row("c", State::Failed, None),
            ],
            now,
        )
        .unwrap();
        let mut lookup = l.rows_of("c").unwrap();
        let mut state = |addr| lookup.get(Channel::Email, addr).unwrap().unwrap().state;
        assert_eq!(
            [state("a"), state("b"), state("c")],
            [State::Sent, State::Unknown, State::Failed]
        );
    }

    #[test]
    fn a_sent_or_sending_row_is_never_claimed_again() {
        let dir = tempfile::tempdir().unwrap();
        let mut l = Ledger::open(dir.path()).unwrap();
        let now = Utc::now();
        let first = l
            .claim("c", 1, "fp", &[claim("a"), claim("b")], now)
            .unwrap();
        assert!(first.iter().all(Option::is_some));
        assert_ne!(first[0], first[1]);
        // In flight: refused.
        assert_eq!(l.claim("c", 1, "fp", &[claim("a")], now).unwrap(), [None]);
        l.record(
            "c",
            &[outcome("a", State::Sent), outcome("b", State::Failed)],
            now,
        )
        .unwrap();
        // Sent: refused; failed: granted again (the same row), attempts counted.
        assert_eq!(
            l.claim("c", 2, "fp", &[claim("a"), claim("b")], now)
                .unwrap(),
            [None, first[1]]
        );
        let priors = l.priors("c").unwrap();
        assert_eq!(priors.get(Channel::Email, "a").unwrap().state, State::Sent);
        assert_eq!(priors.get(Channel::Email, "b").unwrap().attempts, 2);
        // Another campaign is another row.
        let other = l.claim("d", 3, "fp", &[claim("a")], now).unwrap();
        assert!(other[0].is_some() && other[0] != first[0]);
        // The report finds a claimed row by its id, and by its key when the id is not its own.
        let mut lookup = l.rows_of("c").unwrap();
        let b = first[1].unwrap();
        let cells = |lookup: &mut RowLookup<'_>, address: &str, row: RowId| {
            lookup
                .with_claimed(Channel::Email, address, row, |c| {
                    c.map(|c| (c.attempts, c.provider_id.to_string()))
                })
                .unwrap()
        };
        let expected = Some((2, "id-1".to_string()));
        assert_eq!(cells(&mut lookup, "b", b), expected);
        let wrong = other[0].unwrap();
        assert_eq!(cells(&mut lookup, "b", wrong), expected);
        assert_eq!(cells(&mut lookup, "zz", b), None);
    }

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

    #[tokio::test]
    async fn writer_groups_concurrent_claims() {
        let dir = tempfile::tempdir().unwrap();
        let l = Ledger::open(dir.path()).unwrap();
        let w = Writer::start(l, "c".into(), 1, "fp".into(), std::sync::Arc::new(Utc::now));
        let h = w.handle();
        let mut tasks = Vec::new();
        for i in 0..200 {
            let h = h.clone();
            tasks.push(tokio::spawn(async move {
                let addr = format!("a{}", i % 100);
                h.claim(claim(&addr)).await.unwrap()
            }));
        }
        let mut granted = 0;
        for t in tasks {
            granted += t.await.unwrap().granted().is_some() as usize;
        }
        assert_eq!(granted, 100, "each address claimed once");
        h.record(outcome("a1", State::Sent));
        h.flush().await.unwrap();
        drop(h);
        let l = w.finish();
        assert_eq!(
            l.priors("c")
                .unwrap()
                .get(Channel::Email, "a1")
                .unwrap()
                .state,
            State::Sent
        );
    }

    #[test]
    fn an_earlier_ledgers_sent_at_index_is_dropped_and_the_cap_still_counts() {
        let dir = tempfile::tempdir().unwrap();
        let l = Ledger::open(dir.path()).unwrap();
        l.conn
            .execute_batch("CREATE INDEX messages_sent_at ON messages (campaign, channel, sent_at)")
            .unwrap();
        drop(l);
        let mut l = Ledger::open(dir.path()).unwrap();
        let indexes: i64 = l
            .conn
            .query_row(
                "SELECT COUNT(*) FROM sqlite_master WHERE name = 'messages_sent_at'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(indexes, 0);
        let now = Utc::now();
        let claims = [claim("a"), claim("b")];
        l.commit("c", (1, "fp"), &[], &claims, now).unwrap();
        l.commit("c", (1, "fp"), &[outcome("a", State::Sent)], &[], now)
            .unwrap();
        let hour = chrono::Duration::hours(1);
        assert_eq!(
            l.sent_between("c", Channel::Email, now - hour, now + hour)
                .unwrap(),
            1
        );
        assert_eq!(
            l.sent_between("c", Channel::Email, now + hour, now + hour * 2)
                .unwrap(),
            0
        );
    }

    #[test]
    fn an_earlier_ledgers_state_check_is_rebuilt_with_every_row_kept() {
        let dir = tempfile::tempdir().unwrap();
        let rows = |c: &Connection| -> Vec<Vec<String>> {
            let mut stmt = c
                .prepare("SELECT rowid, * FROM messages ORDER BY rowid")
                .unwrap();
            stmt.query_map([], |r| {
                (0..15)
                    .map(|i| {
                        r.get::<_, rusqlite::types::Value>(i)
                            .map(|v| format!("{v:?}"))
                    })
                    .collect()
            })
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
        };
        // The table as earlier versions made it, with rows in every state and a gap in row ids.
        let before = {
            let c = Connection::open(dir.path().join(FILE)).unwrap();
            c.execute_batch(
                "CREATE TABLE messages (
                     campaign TEXT NOT NULL, channel TEXT NOT NULL, address TEXT NOT NULL,
                     contact_id TEXT NOT NULL,
                     state TEXT NOT NULL
                         CHECK (state IN ('sending', 'sent', 'failed', 'unknown')),
                     permanent INTEGER NOT NULL DEFAULT 0, attempts INTEGER NOT NULL DEFAULT 0,
                     provider_id TEXT, last_error TEXT, fingerprint TEXT NOT NULL,
                     run_id INTEGER, created_at TEXT NOT NULL, updated_at TEXT NOT NULL,
                     sent_at TEXT, PRIMARY KEY (campaign, channel, address));
                 INSERT INTO messages VALUES
                     ('c', 'email', 'a', 'P1', 'sent', 0, 1, 'q1', NULL, 'fp', 1, 't0', 't1', 't1'),
                     ('c', 'email', 'b', 'P2', 'failed', 1, 2, NULL, '550 no', 'fp', 1, 't0', 't1', NULL),
                     ('c', 'sms', '+1', 'P3', 'unknown', 0, 1, NULL, 'timeout', 'fp', 1, 't0', 't1', NULL);
                 DELETE FROM messages WHERE address = 'b';
                 INSERT INTO messages VALUES
                     ('c', 'email', 'd', 'P4', 'sending', 0, 1, NULL, NULL, 'fp', 2, 't2', 't2', NULL);",
            )
            .unwrap();
            rows(&c)
        };
        let mut l = Ledger::open(dir.path()).unwrap();
        let sql: String = l
            .conn
            .query_row(
                "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'messages'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert!(!sql.contains(" IN ("), "{sql}");
        assert_eq!(rows(&l.conn), before);
        // The check still holds, and the rows still decide claims.
        let bad = l.conn.execute(
            "INSERT INTO messages VALUES
                 ('c', 'email', 'e', 'P5', 'bogus', 0, 1, NULL, NULL, 'fp', 2, 't', 't', NULL)",
            [],
        );
        assert!(bad.is_err(), "{bad:?}");
        let granted = l
            .commit("c", (3, "fp"), &[], &[claim("a"), claim("e")], Utc::now())
            .unwrap();
        assert!(
            granted[0] == Claimed::Refused && granted[1].granted().is_some(),
            "{granted:?}"
        );
        drop(l);
        // Opened again: nothing left to rebuild, nothing changed.
        let l = Ledger::open(dir.path()).unwrap();
        assert_eq!(rows(&l.conn).len(), before.len() + 1);
    }

    #[test]
    fn a_claim_to_an_address_suppressed_meanwhile_is_not_granted() {
        let dir = tempfile::tempdir().unwrap();
        let mut l = Ledger::open(dir.path()).unwrap();
        let now = Utc::now();
        l.commit("c", (1, "fp"), &[], &[claim("b")], now).unwrap();
        l.record("c", &[outcome("b", State::Failed)], now).unwrap();
        for address in ["a", "b"] {
            l.suppress(address, "opted out", "test", now).unwrap();
        }
        // A new message and a failed one taken over: both suppressed, neither row touched.
        let claimed = l
            .commit(
                "c",
                (2, "fp"),
                &[],
                &[claim("a"), claim("b"), claim("c")],
                now,
            )
            .unwrap();
        assert_eq!(claimed[..2], [Claimed::Suppressed, Claimed::Suppressed]);
        assert!(claimed[2].granted().is_some());
        let priors = l.priors("c").unwrap();
        assert!(priors.get(Channel::Email, "a").is_none());
        assert_eq!(priors.get(Channel::Email, "b").unwrap().attempts, 1);
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
                    campaign_rows(&l.conn).unwrap(),
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
                let counts = l.counts("c").unwrap();
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

    #[test]
    fn a_claim_released_unsent_is_no_attempt_and_keeps_the_last_error() {
        let dir = tempfile::tempdir().unwrap();
        let mut l = Ledger::open(dir.path()).unwrap();
        let now = Utc::now();
        let failed = |addr: &str, error: &str, released: bool| Outcome {
            state: State::Failed,
            provider_id: None,
            error: Some(error.into()),
            released,
            ..outcome(addr, State::Failed)
        };
        // "a" was refused, then its retry was claimed and released; "b" released at once.
        l.claim("c", 1, "fp", &[claim("a"), claim("b")], now)
            .unwrap();
        l.record("c", &[failed("a", "450 busy", false)], now)
            .unwrap();
        l.claim("c", 1, "fp", &[claim("a")], now).unwrap();
        let stop = "not sent: the run stopped before its turn";
        l.record(
            "c",
            &[failed("a", stop, true), failed("b", stop, true)],
            now,
        )
        .unwrap();
        let mut lookup = l.rows_of("c").unwrap();
        let a = lookup.get(Channel::Email, "a").unwrap().unwrap();
        assert_eq!((a.attempts, a.last_error.as_deref()), (1, Some("450 busy")));
        let b = lookup.get(Channel::Email, "b").unwrap().unwrap();
        assert_eq!((b.attempts, b.last_error.as_deref()), (0, Some(stop)));
        assert_eq!((a.state, b.state), (State::Failed, State::Failed));
    }
}
