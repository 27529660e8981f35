//! The ledger's SQLite file in `state_dir`: the [`Ledger`] connection and opening it (file 0600,
//! write-ahead log, fsync on commit), the schema every store module writes to and its migrations
//! from earlier versions, and [`LedgerError`], the error of every call on the store. The other
//! modules of the store add methods to `Ledger`, one concept each, and open no connection of
//! their own.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use rusqlite::Connection;

use super::db::{Begin, Db, DbError, DbResult};

/// The ledger's file inside `state_dir`.
pub const FILE: &str = "ledger.sqlite";

/// A ledger that cannot be opened or written. It is `Clone` (its causes shared, not copied) so
/// that the [`Writer`](super::writer::Writer) can answer every request of a failed commit with that commit's error.
#[derive(Debug, Clone, thiserror::Error)]
pub enum LedgerError {
    #[error("ledger {path}: {source}")]
    Store { path: PathBuf, source: Arc<DbError> },
    #[error("ledger {path}: {source}")]
    Io {
        path: PathBuf,
        source: Arc<std::io::Error>,
    },
    /// The store cannot be reached as configured (its password unreadable, no support for it
    /// in this build).
    #[error("ledger {path}: {message}")]
    Unusable { path: PathBuf, message: String },
    /// What a commit's outcomes speak of could not be made durable first (the run's
    /// [`BeforeCommit`](super::writer::BeforeCommit)): the commit, and every later one, is not
    /// made, so those messages stay `sending` and the next run reports them unknown.
    #[error("not recorded: {0}")]
    BeforeCommit(String),
    /// On PostgreSQL: the run's lease lapsed (its heartbeat not renewed in time, or another run
    /// found it expired): it claims nothing more (`store/lease.rs`).
    #[error(
        "ledger {path}: this run's lease lapsed (its heartbeat was not renewed in time): it \
         claims nothing more, and its messages in flight are reported unknown"
    )]
    LeaseLost { path: PathBuf },
    /// The writer thread is gone (it panicked, or the run finished it): nothing more is written.
    #[error("the ledger writer stopped")]
    WriterGone,
}

impl LedgerError {
    /// Whether another connection is in the way, which waiting gets past: SQLite's write lock
    /// held elsewhere (`SQLITE_BUSY`; a table locked within this connection, `SQLITE_LOCKED`,
    /// would not pass by waiting), or PostgreSQL ending the transaction to break a deadlock or
    /// a serialization conflict (`40P01`, `40001`: the whole transaction is rolled back, so
    /// trying it again is the same transaction).
    pub(super) fn is_busy(&self) -> bool {
        let LedgerError::Store { source, .. } = self else {
            return false;
        };
        match &**source {
            DbError::Sqlite(e) => e.sqlite_error_code() == Some(rusqlite::ErrorCode::DatabaseBusy),
            #[cfg(feature = "postgres")]
            DbError::Postgres(e) => matches!(e.code(), Some("40P01" | "40001")),
            _ => false,
        }
    }

    /// Whether the ledger's database went out of reach (the connection was lost or refused):
    /// the run stops, and a later one resumes once it is back.
    pub fn is_unreachable(&self) -> bool {
        match self {
            #[cfg(feature = "postgres")]
            LedgerError::Store { source, .. } => {
                matches!(&**source, DbError::Postgres(e) if e.is_connection_lost())
            }
            _ => false,
        }
    }
}

/// Times are stored as fixed-width RFC 3339 UTC, so they sort as text.
pub fn timestamp(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

/// The ledger of one state directory.
pub struct Ledger {
    pub(super) db: Db,
    pub(super) path: PathBuf,
    /// The connection's `PRAGMA synchronous`, set per commit only when it changes.
    pub(super) synchronous: &'static str,
    /// `sending.max_per_patient` of the campaign whose claims this ledger takes: checked in
    /// each claim's transaction ([`Ledger::set_frequency_cap`]).
    pub(super) frequency_cap: Option<crate::config::FrequencyCap>,
    /// On PostgreSQL, `sending.daily_cap` of the campaign and the clinic's day (its start and
    /// end, as stored), checked in each claim's transaction across every run of the campaign
    /// ([`Ledger::set_daily_cap`]).
    pub(super) daily_cap: Option<(u32, String, String)>,
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
        let conn = Connection::open(&path).map_err(|e| store_error(&path)(e.into()))?;
        // The store's statements, each prepared once per connection.
        conn.set_prepared_statement_cache_capacity(64);
        let ledger = Ledger {
            db: Db::Sqlite(conn),
            path,
            synchronous: "FULL",
            frequency_cap: None,
            daily_cap: None,
        };
        // Two processes making a new ledger at the same moment (two campaigns' first sends
        // from cron) meet in SQLite's lock upgrade, where it answers "database is locked" at
        // once rather than wait (waiting could deadlock). Every step below is idempotent: it is
        // tried again, for as long as SQLite's own wait.
        let patience = std::time::Instant::now() + BUSY_WAIT;
        loop {
            match ledger.sqlite(make_schema) {
                Err(e) if e.is_busy() && std::time::Instant::now() < patience => {
                    std::thread::sleep(std::time::Duration::from_millis(10 + fastrand::u64(..40)));
                }
                r => {
                    r?;
                    break;
                }
            }
        }
        Ok(ledger)
    }

    /// Runs `f` on the connection, its error naming the ledger.
    pub(super) fn sql<T>(&self, f: impl FnOnce(&Db) -> DbResult<T>) -> Result<T, LedgerError> {
        f(&self.db).map_err(store_error(&self.path))
    }

    /// Runs `f` in a transaction (see [`Db::transaction`]), its error naming the ledger.
    pub(super) fn transaction<T>(
        &self,
        begin: Begin,
        f: impl FnOnce(&Db) -> DbResult<T>,
    ) -> Result<T, LedgerError> {
        self.db
            .transaction(begin, f)
            .map_err(store_error(&self.path))
    }

    /// Runs `f` on SQLite's own connection, for what only SQLite has (pragmas, the file's
    /// migrations, `VACUUM`); `None` on another backend.
    pub(super) fn sqlite<T>(
        &self,
        f: impl FnOnce(&Connection) -> rusqlite::Result<T>,
    ) -> Result<Option<T>, LedgerError> {
        self.db
            .sqlite()
            .map(|c| f(c).map_err(|e| store_error(&self.path)(e.into())))
            .transpose()
    }

    /// SQLite's connection, for tests of the file's own schema.
    #[cfg(test)]
    pub(super) fn conn(&self) -> &Connection {
        self.db.sqlite().expect("a SQLite ledger")
    }

    /// The ledger file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// How long a statement waits for another connection's lock (`busy_timeout`).
const BUSY_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// Makes the ledger's tables and brings an earlier version's up to date: each step does
/// nothing when it is already done.
fn make_schema(c: &Connection) -> rusqlite::Result<()> {
    c.execute_batch(&format!(
        "PRAGMA busy_timeout = {busy};
         PRAGMA journal_mode = WAL;
         PRAGMA synchronous = FULL;
         CREATE TABLE IF NOT EXISTS campaigns (
             id TEXT PRIMARY KEY,
             fingerprint TEXT NOT NULL,
             started_at TEXT NOT NULL
         );
         -- Where each campaign's file was when it was last approved or sent, so that a
         -- command given the state directory (`bounces DIR`) finds its campaigns.
         CREATE TABLE IF NOT EXISTS campaign_files (
             campaign TEXT PRIMARY KEY,
             file TEXT NOT NULL,
             seen_at TEXT NOT NULL
         ) WITHOUT ROWID;
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
         -- Suppressions an admin lifted (`outreach suppressions remove`), with what
         -- each was: shared by the campaigns like the suppressions, never purged.
         CREATE TABLE IF NOT EXISTS suppression_lifts (
             id INTEGER PRIMARY KEY,
             address TEXT NOT NULL,
             reason TEXT NOT NULL,
             source_was TEXT,
             reason_was TEXT NOT NULL,
             added_at_was TEXT NOT NULL,
             lifted_at TEXT NOT NULL,
             lifted_by TEXT NOT NULL
         );
         CREATE INDEX IF NOT EXISTS suppression_lifts_address
             ON suppression_lifts (address);
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
         ) WITHOUT ROWID;
         {FEEDBACK}
         {BOUNCES}",
        busy = BUSY_WAIT.as_millis(),
    ))?;
    rebuild_messages_check(c)?;
    add_consent_columns(c)?;
    add_segments_column(c)
}

/// The error of a call on the ledger at `path`.
pub(super) fn store_error(path: &Path) -> impl Fn(DbError) -> LedgerError + Copy + '_ {
    |source| LedgerError::Store {
        path: path.to_path_buf(),
        source: Arc::new(source),
    }
}

/// What `outreach listen` records (see `feedback.rs`): the unsubscribe tokens of claimed
/// emails, the provider ids of sent SMS (one per part), delivery receipts by provider id,
/// patients' replies, and unsubscribes by link. Rows point at `messages` by row id.
const FEEDBACK: &str = "
    CREATE TABLE IF NOT EXISTS tokens (
        token TEXT PRIMARY KEY,
        message INTEGER NOT NULL
    ) WITHOUT ROWID;
    CREATE TABLE IF NOT EXISTS sms_parts (
        provider_id TEXT PRIMARY KEY,
        message INTEGER NOT NULL,
        part INTEGER NOT NULL,
        parts INTEGER NOT NULL
    ) WITHOUT ROWID;
    CREATE INDEX IF NOT EXISTS sms_parts_message ON sms_parts (message);
    CREATE TABLE IF NOT EXISTS receipts (
        provider_id TEXT PRIMARY KEY,
        state TEXT NOT NULL
            CHECK (state = 'delivered' OR state = 'undelivered' OR state = 'pending'),
        status TEXT NOT NULL,
        code TEXT,
        carrier_time TEXT,
        received_at TEXT NOT NULL,
        updated_at TEXT NOT NULL
    ) WITHOUT ROWID;
    CREATE TABLE IF NOT EXISTS replies (
        id INTEGER PRIMARY KEY,
        provider_id TEXT NOT NULL UNIQUE,
        campaign TEXT NOT NULL,
        from_number TEXT NOT NULL,
        to_number TEXT NOT NULL,
        body TEXT NOT NULL,
        keyword TEXT NOT NULL,
        action TEXT,
        part_of TEXT,
        part INTEGER,
        parts INTEGER,
        received_at TEXT NOT NULL,
        read_at TEXT
    );
    CREATE INDEX IF NOT EXISTS replies_from ON replies (from_number, keyword);
    CREATE TABLE IF NOT EXISTS unsubscribes (
        message INTEGER PRIMARY KEY,
        how TEXT NOT NULL,
        at TEXT NOT NULL
    );";

/// What `outreach bounces` records (see `bounces.rs`): each mailbox message read, by its
/// mailbox id, and the delivery events of emails.
const BOUNCES: &str = "
    CREATE TABLE IF NOT EXISTS processed_mail (
        mailbox TEXT NOT NULL,
        id TEXT NOT NULL,
        class TEXT NOT NULL,
        processed_at TEXT NOT NULL,
        PRIMARY KEY (mailbox, id)
    ) WITHOUT ROWID;
    CREATE TABLE IF NOT EXISTS bounces (
        id INTEGER PRIMARY KEY,
        message INTEGER,
        address TEXT NOT NULL,
        kind TEXT NOT NULL CHECK (kind = 'hard' OR kind = 'soft' OR kind = 'policy'
                                  OR kind = 'other' OR kind = 'complaint'),
        status TEXT,
        diagnostic TEXT,
        domain TEXT NOT NULL,
        at TEXT NOT NULL
    );
    CREATE INDEX IF NOT EXISTS bounces_message ON bounces (message);
    CREATE INDEX IF NOT EXISTS bounces_address ON bounces (address, kind, at);";

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
    consent TEXT,
    consent_source TEXT,
    segments INTEGER,
    PRIMARY KEY (campaign, channel, address)
)";

/// Adds the consent evidence columns to a messages table of an earlier version (its rows keep
/// none: they were claimed before the ledger kept it).
fn add_consent_columns(c: &Connection) -> rusqlite::Result<()> {
    let has: bool = c.query_row(
        "SELECT COUNT(*) FROM pragma_table_info('messages') WHERE name = 'consent'",
        [],
        |r| r.get::<_, i64>(0).map(|n| n > 0),
    )?;
    if has {
        return Ok(());
    }
    c.execute_batch("BEGIN IMMEDIATE")?;
    let add = || -> rusqlite::Result<()> {
        // Asked again under the write lock: another process may have added them meanwhile.
        let has: i64 = c.query_row(
            "SELECT COUNT(*) FROM pragma_table_info('messages') WHERE name = 'consent'",
            [],
            |r| r.get(0),
        )?;
        if has == 0 {
            c.execute_batch(
                "ALTER TABLE messages ADD COLUMN consent TEXT;
                 ALTER TABLE messages ADD COLUMN consent_source TEXT;",
            )?;
        }
        c.execute_batch("COMMIT")
    };
    add().inspect_err(|_| {
        let _ = c.execute_batch("ROLLBACK");
    })
}

/// Adds `segments` (how many segments a sent SMS took, recorded with its outcome) to a messages
/// table of an earlier version; its rows keep none, and the report counts them as unknown.
fn add_segments_column(c: &Connection) -> rusqlite::Result<()> {
    let has: bool = c.query_row(
        "SELECT COUNT(*) FROM pragma_table_info('messages') WHERE name = 'segments'",
        [],
        |r| r.get(0),
    )?;
    if !has {
        // Another process may add it between the look and the change: that is no error.
        match c.execute_batch("ALTER TABLE messages ADD COLUMN segments INTEGER") {
            Err(e) if e.to_string().contains("duplicate column") => {}
            other => other?,
        }
    }
    Ok(())
}

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Channel, State};
    use crate::store::claims::{
        Claimed,
        fixtures::{claim, outcome},
    };

    /// Two campaigns' first sends from cron, the same second, one new state directory: each
    /// makes the ledger. SQLite answers "database is locked" at once, without waiting, to one
    /// of two connections that both read the schema and then want to write it (waiting could
    /// deadlock): it did, in the test of two campaigns sending at once under load.
    #[test]
    fn many_opening_a_new_ledger_at_once_all_open_it() {
        for _ in 0..20 {
            let dir = tempfile::tempdir().unwrap();
            let start = Arc::new(std::sync::Barrier::new(8));
            let opened: Vec<_> = (0..8)
                .map(|_| {
                    let (dir, start) = (dir.path().to_path_buf(), Arc::clone(&start));
                    std::thread::spawn(move || {
                        start.wait();
                        Ledger::open(&dir).map(|_| ()).map_err(|e| e.to_string())
                    })
                })
                .collect();
            for t in opened {
                t.join().unwrap().unwrap();
            }
        }
    }

    #[test]
    fn an_earlier_ledgers_sent_at_index_is_dropped_and_the_cap_still_counts() {
        let dir = tempfile::tempdir().unwrap();
        let l = Ledger::open(dir.path()).unwrap();
        l.conn()
            .execute_batch("CREATE INDEX messages_sent_at ON messages (campaign, channel, sent_at)")
            .unwrap();
        drop(l);
        let mut l = Ledger::open(dir.path()).unwrap();
        let indexes: i64 = l
            .conn()
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
    fn an_earlier_ledger_gains_the_consent_columns_and_keeps_its_rows() {
        let dir = tempfile::tempdir().unwrap();
        {
            let c = Connection::open(dir.path().join(FILE)).unwrap();
            c.execute_batch(&format!(
                "CREATE TABLE messages {};
                 INSERT INTO messages (campaign, channel, address, contact_id, state, fingerprint,
                                       created_at, updated_at)
                     VALUES ('c', 'email', 'a', 'P1', 'sent', 'fp', 't0', 't1');",
                MESSAGES
                    .replace("    consent TEXT,\n", "")
                    .replace("    consent_source TEXT,\n", "")
            ))
            .unwrap();
            let columns: i64 = c
                .query_row(
                    "SELECT COUNT(*) FROM pragma_table_info('messages') WHERE name LIKE 'consent%'",
                    [],
                    |r| r.get(0),
                )
                .unwrap();
            assert_eq!(columns, 0, "the earlier table has no consent columns");
        }
        for _ in 0..2 {
            let l = Ledger::open(dir.path()).unwrap();
            let row: (String, Option<String>, Option<String>) = l
                .conn()
                .query_row(
                    "SELECT address, consent, consent_source FROM messages",
                    [],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                )
                .unwrap();
            assert_eq!(row, ("a".to_string(), None, None));
        }
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
            .conn()
            .query_row(
                "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'messages'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert!(!sql.contains(" IN ("), "{sql}");
        assert_eq!(rows(l.conn()), before);
        // The check still holds, and the rows still decide claims.
        let bad = l.conn().execute(
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
        assert_eq!(rows(l.conn()).len(), before.len() + 1);
    }
}
