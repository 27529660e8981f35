//! `outreach state migrate --from STATE_DIR --to URL`: a state directory's SQLite ledger copied
//! into a PostgreSQL database (the messages and runs, suppressions and their lifts, approvals,
//! what came back, the token index), checked table by table, safe to run again. The campaign
//! files are not edited: the summary says what to set in them, and where the unsubscribe token
//! key must be for every host that sends, so that links already sent keep working.

use std::fmt;
use std::path::{Path, PathBuf};

use crate::config::{ConfigError, SecretSource, StateUrl};
use crate::paths::show_path;
use crate::store::copy::TableCopy;
use crate::store::ledger::{Ledger, LedgerError};

/// Why a migration could not be made.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("{}: no ledger here (no {}): give the state directory of campaigns that have sent",
        show_path(.0), crate::store::ledger::FILE)]
    NoLedger(PathBuf),
    #[error("--to: {0}")]
    Url(String),
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Ledger(#[from] LedgerError),
}

impl StateError {
    /// Whether the database was out of reach (exit 3: a later run may work).
    pub fn is_unreachable(&self) -> bool {
        matches!(self, StateError::Ledger(e) if e.is_unreachable())
    }
}

/// What `state migrate` was asked.
pub struct Options<'a> {
    pub from: &'a Path,
    pub to: &'a str,
    pub password: Option<SecretSource>,
}

/// What it did.
#[derive(Debug, serde::Serialize)]
pub struct Migrated {
    pub from: String,
    pub to: String,
    /// The URL as to write it into `sending.state_url`.
    pub state_url: String,
    pub tables: Vec<TableCopy>,
    /// The unsubscribe token key every sending host needs, if the state directory has one.
    pub token_key: Option<String>,
    /// The campaigns whose ledger this was, and where their files were.
    pub campaigns: Vec<(String, String)>,
}

/// Copies the SQLite ledger of `options.from` into the PostgreSQL database `options.to`.
pub fn migrate(options: &Options<'_>) -> Result<Migrated, StateError> {
    let source = crate::config::Store {
        dir: options.from.to_path_buf(),
        url: None,
    };
    let Some(from) = Ledger::open_existing(&source)? else {
        return Err(StateError::NoLedger(options.from.to_path_buf()));
    };
    let cwd = std::env::current_dir().unwrap_or_default();
    let url =
        StateUrl::parse(options.to, options.password.clone(), &cwd).map_err(StateError::Url)?;
    let to = Ledger::open_url(&url)?;
    let tables = from.copy_into(&to)?;
    let key = options.from.join(crate::token::KEY_FILE);
    Ok(Migrated {
        from: show_path(&options.from.join(crate::store::ledger::FILE)),
        to: url.display(),
        state_url: options.to.to_string(),
        tables,
        token_key: key.exists().then(|| show_path(&key)),
        campaigns: from
            .campaign_files()?
            .into_iter()
            .map(|(id, file)| (id, show_path(&file)))
            .collect(),
    })
}

impl fmt::Display for Migrated {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let copied: u64 = self.tables.iter().map(|t| t.copied).sum();
        let already: u64 = self.tables.iter().map(|t| t.already).sum();
        writeln!(f, "Ledger {} copied into {}:", self.from, self.to)?;
        writeln!(
            f,
            "  {:<18} {:>9} {:>9} {:>9}",
            "table", "rows", "copied", "already"
        )?;
        for t in &self.tables {
            writeln!(
                f,
                "  {:<18} {:>9} {:>9} {:>9}",
                t.table, t.source, t.copied, t.already
            )?;
        }
        match (copied, already) {
            (0, 0) => writeln!(f, "The ledger was empty: nothing to copy.")?,
            (0, _) => writeln!(
                f,
                "Every row was there already (migrated before): nothing copied, nothing changed."
            )?,
            (_, _) => writeln!(
                f,
                "Every row is in the database, the same as in the file (checked before the copy \
                 was committed)."
            )?,
        }
        writeln!(f, "Next:")?;
        write!(
            f,
            "  1. In each campaign file of this state directory, under [sending]: state_url = \
             {:?} (and state_password_env or state_password_file if the role has a password)",
            self.state_url
        )?;
        for (id, file) in &self.campaigns {
            write!(f, "\n       {id}: {file}")?;
        }
        match &self.token_key {
            Some(key) => write!(
                f,
                "\n  2. Copy {key} (owner-only) into the state directory of every host that sends \
                 these campaigns: the unsubscribe links already sent were made with it and keep \
                 working. `listen` needs no key (it looks tokens up in the database)."
            )?,
            None => write!(
                f,
                "\n  2. This state directory has no unsubscribe token key yet: the first send \
                 makes one; copy it to every host that sends these campaigns."
            )?,
        }
        write!(
            f,
            "\n  3. Keep the SQLite file until the first send on PostgreSQL has gone well; no \
             command writes to it once the campaign files name the database."
        )
    }
}
