//! Opening the store a campaign names ([`Store`]): the SQLite file in its state directory, or
//! the PostgreSQL database of its `state_url` (connected, its schema created or migrated, and
//! the state directory's `store.toml` written so that commands given only the directory find
//! it). Every command opens the ledger here.

use std::path::PathBuf;
use std::sync::Arc;

use crate::config::{POINTER_FILE, StateUrl, Store};

#[cfg(feature = "postgres")]
use super::db::{Db, DbError};
use super::sqlite::{FILE, Ledger, LedgerError};

impl Ledger {
    /// Opens the ledger `store` names, creating it if needed.
    pub fn open_store(store: &Store) -> Result<Self, LedgerError> {
        match &store.url {
            None => Ledger::open(&store.dir),
            Some(url) => {
                let ledger = Ledger::connect(url, true)?.expect("created if missing");
                remember_the_store(store)?;
                Ok(ledger)
            }
        }
    }

    /// Opens (creating or migrating its schema) the PostgreSQL ledger `url` names, for a copy
    /// into it (`state migrate`): no state directory is told about it.
    pub fn open_url(url: &StateUrl) -> Result<Self, LedgerError> {
        Ok(Ledger::connect(url, true)?.expect("created if missing"))
    }

    /// Opens the ledger `store` names if it is there already, creating nothing (no file, no
    /// table, no state directory): what commands that only read, or refuse, call.
    pub fn open_existing(store: &Store) -> Result<Option<Self>, LedgerError> {
        match &store.url {
            None if !store.dir.join(FILE).exists() => Ok(None),
            None => Ledger::open(&store.dir).map(Some),
            Some(url) => Ledger::connect(url, false),
        }
    }

    /// How messages name `store`: the SQLite file (as `paths::show_path` shows it), or the
    /// database (never its password).
    pub fn name_of(store: &Store) -> String {
        match &store.url {
            None => crate::paths::show_path(&store.dir.join(FILE)),
            Some(url) => url.display(),
        }
    }
}

impl Ledger {
    /// Connects to the PostgreSQL store `url` names, with its password if it has one, and
    /// migrates its schema; creates it when `create`, else returns `None` for a database that
    /// holds no ledger yet.
    #[cfg(feature = "postgres")]
    fn connect(url: &StateUrl, create: bool) -> Result<Option<Self>, LedgerError> {
        let path = PathBuf::from(url.display());
        let fail = |source: DbError| LedgerError::Store {
            path: path.clone(),
            source: Arc::new(source),
        };
        let password = match &url.password {
            Some(secret) => Some(secret.read().map_err(|e| LedgerError::Unusable {
                path: path.clone(),
                message: e.to_string(),
            })?),
            None => None,
        };
        let pg =
            super::postgres::Pg::connect(url, password.as_deref()).map_err(|e| fail(e.into()))?;
        // A claim must be durable before its message goes, whatever the server's default: with
        // `synchronous_commit = off` a commit is acknowledged before its WAL is written, and a
        // server crash would forget claims whose messages went (the next run would send them
        // again). Outcome-only commits relax it per transaction (`store/claims.rs`).
        pg.batch_execute("SET synchronous_commit TO on")
            .map_err(|e| fail(e.into()))?;
        let ledger = Ledger {
            db: Db::Postgres(Box::new(pg)),
            path: path.clone(),
            synchronous: "FULL",
            frequency_cap: None,
            daily_cap: None,
        };
        if !create && !super::postgres_schema::exists(&ledger.db).map_err(fail)? {
            return Ok(None);
        }
        super::postgres_schema::migrate(&ledger.db).map_err(fail)?;
        Ok(Some(ledger))
    }

    /// Without PostgreSQL support, a `state_url` cannot be used.
    #[cfg(not(feature = "postgres"))]
    fn connect(url: &StateUrl, _create: bool) -> Result<Option<Self>, LedgerError> {
        Err(LedgerError::Unusable {
            path: PathBuf::from(url.display()),
            message: "this outreach was built without PostgreSQL support (the `postgres` \
                      feature): build it with the default features"
                .into(),
        })
    }
}

impl Ledger {
    /// Takes `campaign`'s run lock in the store itself, for as long as this ledger is open,
    /// without waiting; `false` when another run holds it. On PostgreSQL the lock file in the
    /// state directory only keeps out runs of the same host, so the store holds one too (a
    /// session advisory lock: the server drops it when the connection ends, however the run
    /// ends). On SQLite the lock file is the whole story.
    pub fn hold_run_lock(&self, campaign: &str) -> Result<bool, LedgerError> {
        #[cfg(feature = "postgres")]
        if self.db.sqlite().is_none() {
            return self.sql(|c| {
                c.query_row(
                    "SELECT pg_try_advisory_lock(hashtext('outreach run'), hashtext(?1))",
                    super::db::args![campaign],
                    |r| r.get::<bool>(0),
                )
            });
        }
        let _ = campaign;
        Ok(true)
    }
}

impl Ledger {
    /// What a `send` holds of `campaign`'s lock in the store, for as long as this ledger is open;
    /// `false` when it cannot run now. On PostgreSQL, the lock shared (a session advisory lock
    /// taken shared): runs of the campaign do not keep each other out (each has its lease
    /// instead, `store/lease.rs`), but a `purge` or a `sync` of it, which take it exclusively
    /// ([`Ledger::hold_run_lock`]), keeps them out and is kept out by them. On SQLite, as
    /// [`Ledger::hold_run_lock`]: the lock file is the whole story.
    pub fn hold_send_lock(&self, campaign: &str) -> Result<bool, LedgerError> {
        #[cfg(feature = "postgres")]
        if self.db.sqlite().is_none() {
            return self.sql(|c| {
                c.query_row(
                    "SELECT pg_try_advisory_lock_shared(hashtext('outreach run'), hashtext(?1))",
                    super::db::args![campaign],
                    |r| r.get::<bool>(0),
                )
            });
        }
        self.hold_run_lock(campaign)
    }
}

/// Writes `STATE_DIR/store.toml` (0600; the URL and where the password is, never the password)
/// unless it already says the same.
fn remember_the_store(store: &Store) -> Result<(), LedgerError> {
    let Some(text) = store.pointer() else {
        return Ok(());
    };
    let path = store.dir.join(POINTER_FILE);
    if std::fs::read_to_string(&path).is_ok_and(|t| t == text) {
        return Ok(());
    }
    let io = |source| LedgerError::Io {
        path: path.clone(),
        source: Arc::new(source),
    };
    crate::private::create_dir(&store.dir).map_err(io)?;
    let mut file = crate::private::open(&path, crate::private::Open::Truncate).map_err(io)?;
    std::io::Write::write_all(&mut file, text.as_bytes()).map_err(io)
}
