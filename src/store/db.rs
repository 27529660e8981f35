//! The one connection every store module speaks through ([`Db`]): statements with numbered
//! parameters (`?1`), typed arguments ([`Arg`], made by [`args!`]), rows read by column
//! ([`Row::get`]), and transactions ([`Db::transaction`]). The store's SQL is written once, in
//! the subset SQLite and PostgreSQL share, and this module is where the two backends differ:
//! SQLite's connection is used as it is (statements prepared once and cached), PostgreSQL's is
//! `store/postgres.rs`. What only SQLite has (its pragmas, the file's migrations, `VACUUM` of
//! the file) is reached through [`Db::sqlite`].
//!
//! What the shared subset leaves out, so that a statement means the same on both: booleans are
//! integers in tables (`0`/`1`) and in results (`CASE WHEN … THEN 1 ELSE 0 END`, or a `COUNT`
//! with `FILTER`); a `SUM` is cast back to `BIGINT`; a parameter whose type its place does not
//! say (`SELECT ?1` in an `INSERT … SELECT`) is `CAST`; a new row's id comes from
//! [`Db::insert_id`]; `INSERT OR IGNORE` is `ON CONFLICT DO NOTHING`.

use rusqlite::Connection;

/// An error of a statement, from either backend.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error(transparent)]
    Sqlite(#[from] rusqlite::Error),
    #[cfg(feature = "postgres")]
    #[error(transparent)]
    Postgres(#[from] super::postgres::PgError),
    /// The store's schema is not one this `outreach` can use.
    #[error("{0}")]
    Schema(String),
    /// A column read as a type it does not hold (a bug in the statement, not in the data).
    #[error("column {column}: {problem}")]
    Column { column: usize, problem: String },
}

pub type DbResult<T> = Result<T, DbError>;

pub use super::arg::Arg;
pub(crate) use super::arg::args;

/// A row of a result.
pub enum Row<'a> {
    Sqlite(&'a rusqlite::Row<'a>),
    #[cfg(feature = "postgres")]
    Postgres(&'a tokio_postgres::Row),
}

impl Row<'_> {
    /// Column `i` (from 0) as a `T`.
    pub fn get<T: FromColumn>(&self, i: usize) -> DbResult<T> {
        match self {
            Row::Sqlite(r) => T::sqlite(r, i),
            #[cfg(feature = "postgres")]
            Row::Postgres(r) => {
                T::postgres(r, i).map_err(|problem| DbError::Column { column: i, problem })
            }
        }
    }

    /// Text column `i`, borrowed from the row (`None` for `NULL`).
    pub fn str(&self, i: usize) -> DbResult<Option<&str>> {
        match self {
            Row::Sqlite(r) => r.get_ref(i)?.as_str_or_null().map_err(|e| DbError::Column {
                column: i,
                problem: e.to_string(),
            }),
            #[cfg(feature = "postgres")]
            Row::Postgres(r) => r.try_get(i).map_err(|e| DbError::Column {
                column: i,
                problem: e.to_string(),
            }),
        }
    }
}

/// What a column can be read as.
pub trait FromColumn: Sized {
    fn sqlite(row: &rusqlite::Row<'_>, i: usize) -> DbResult<Self>;
    /// Read loosely, by the column's own type (`store/postgres.rs`'s readers): the shared SQL
    /// need not cast every count and flag.
    #[cfg(feature = "postgres")]
    fn postgres(row: &tokio_postgres::Row, i: usize) -> Result<Self, String>;
}

/// What a column read as `T` must not be: `NULL`.
#[cfg(feature = "postgres")]
fn not_null<T>(v: Option<T>) -> Result<T, String> {
    v.ok_or_else(|| "NULL where a value was expected".to_string())
}

/// How a type is read from PostgreSQL: the reader for its kind, then a conversion.
#[cfg(feature = "postgres")]
macro_rules! postgres_column {
    (Option<$t:ty>, $read:ident, $convert:expr) => {
        fn postgres(row: &tokio_postgres::Row, i: usize) -> Result<Self, String> {
            let convert: fn(_) -> Result<$t, String> = $convert;
            super::postgres::$read(row, i)?.map(convert).transpose()
        }
    };
    ($t:ty, $read:ident, $convert:expr) => {
        fn postgres(row: &tokio_postgres::Row, i: usize) -> Result<Self, String> {
            let convert: fn(_) -> Result<$t, String> = $convert;
            convert(not_null(super::postgres::$read(row, i)?)?)
        }
    };
}

macro_rules! column {
    ($($t:ty: $read:ident, $convert:expr;)*) => {$(
        impl FromColumn for $t {
            fn sqlite(row: &rusqlite::Row<'_>, i: usize) -> DbResult<Self> {
                Ok(row.get(i)?)
            }
            #[cfg(feature = "postgres")]
            postgres_column!($t, $read, $convert);
        }
        impl FromColumn for Option<$t> {
            fn sqlite(row: &rusqlite::Row<'_>, i: usize) -> DbResult<Self> {
                Ok(row.get(i)?)
            }
            #[cfg(feature = "postgres")]
            postgres_column!(Option<$t>, $read, $convert);
        }
    )*};
}
column! {
    i64: int, Ok;
    i32: int, |n: i64| i32::try_from(n).map_err(|e| e.to_string());
    u32: int, |n: i64| u32::try_from(n).map_err(|e| e.to_string());
    bool: boolean, Ok;
    f64: real, Ok;
    String: text, Ok;
}

macro_rules! unsigned_column {
    ($($t:ty),*) => {$(
        impl FromColumn for $t {
            fn sqlite(row: &rusqlite::Row<'_>, i: usize) -> DbResult<Self> {
                let n: i64 = row.get(i)?;
                <$t>::try_from(n).map_err(|e| DbError::Column {
                    column: i,
                    problem: e.to_string(),
                })
            }
            #[cfg(feature = "postgres")]
            postgres_column!($t, int, |n: i64| <$t>::try_from(n).map_err(|e| e.to_string()));
        }
    )*};
}
unsigned_column!(u64, usize);

/// Which database a [`Db`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    #[cfg(feature = "postgres")]
    Postgres,
}

/// Rows sent in one multi-row `INSERT` ([`Db::insert_rows`]). On PostgreSQL each statement is a
/// round trip (~100 µs), and a row of a multi-row `INSERT` costs the server a quarter of a
/// single-row one's work (BENCHMARKS.md); 200 rows of 18 columns (a `messages` row) stay far
/// under either backend's limit on parameters (32,766 and 65,535).
pub const INSERT_ROWS: usize = 200;

/// A connection to the store.
pub enum Db {
    Sqlite(Connection),
    /// Boxed: a connection of its own is larger than SQLite's handle, and one is made per
    /// ledger opened.
    #[cfg(feature = "postgres")]
    Postgres(Box<super::postgres::Pg>),
}

/// How a transaction starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Begin {
    /// Reads first; the write lock when it first writes.
    Deferred,
    /// The write lock from the start (SQLite's `BEGIN IMMEDIATE`): what it reads cannot change
    /// before it writes.
    Immediate,
}

impl Db {
    pub fn backend(&self) -> Backend {
        match self {
            Db::Sqlite(_) => Backend::Sqlite,
            #[cfg(feature = "postgres")]
            Db::Postgres(_) => Backend::Postgres,
        }
    }

    /// A join that reads its left table first: SQLite's `CROSS JOIN` (its planner keeps the
    /// order written); a plain `JOIN` elsewhere, whose planners choose well by themselves.
    pub fn join_in_order(&self) -> &'static str {
        match self {
            Db::Sqlite(_) => "CROSS JOIN",
            #[cfg(feature = "postgres")]
            Db::Postgres(_) => "JOIN",
        }
    }

    /// SQLite's connection, for what only SQLite has.
    pub fn sqlite(&self) -> Option<&Connection> {
        match self {
            Db::Sqlite(c) => Some(c),
            #[cfg(feature = "postgres")]
            Db::Postgres(_) => None,
        }
    }

    /// Runs a statement; returns how many rows it changed.
    pub fn execute(&self, sql: &str, args: &[Arg<'_>]) -> DbResult<usize> {
        match self {
            Db::Sqlite(c) => Ok(c
                .prepare_cached(sql)?
                .execute(rusqlite::params_from_iter(args))?),
            #[cfg(feature = "postgres")]
            Db::Postgres(pg) => Ok(pg.execute(sql, args)? as usize),
        }
    }

    /// Runs statements separated by `;`, without arguments.
    pub fn execute_batch(&self, sql: &str) -> DbResult<()> {
        match self {
            Db::Sqlite(c) => Ok(c.execute_batch(sql)?),
            #[cfg(feature = "postgres")]
            Db::Postgres(pg) => Ok(pg.batch_execute(sql)?),
        }
    }

    /// Runs an `INSERT` of one row into a table keyed by the integer column `key` (`rowid`,
    /// `id`); returns the new row's key, or `None` when it inserted nothing (`ON CONFLICT DO
    /// NOTHING`, or a `SELECT … WHERE` that chose no row).
    pub fn insert_id(&self, sql: &str, args: &[Arg<'_>], key: &str) -> DbResult<Option<i64>> {
        match self {
            // The key is the row id; `RETURNING` would open a temporary table in every
            // execution.
            Db::Sqlite(c) => {
                let _ = key;
                let n = c
                    .prepare_cached(sql)?
                    .execute(rusqlite::params_from_iter(args))?;
                Ok((n == 1).then(|| c.last_insert_rowid()))
            }
            #[cfg(feature = "postgres")]
            Db::Postgres(pg) => {
                let sql = format!("{sql} RETURNING {key}");
                pg.query_opt(&sql, args)?
                    .map(|row| i64::postgres(&row, 0))
                    .transpose()
                    .map_err(|problem| DbError::Column { column: 0, problem })
            }
        }
    }

    /// Inserts `rows`, `width` arguments each, [`INSERT_ROWS`] to a statement: `INSERT INTO
    /// {into} VALUES (?1, …), (…) {tail}`. Returns how many rows the statements changed.
    pub fn insert_rows<'a, R: IntoIterator<Item = Arg<'a>>>(
        &self,
        into: &str,
        tail: &str,
        width: usize,
        rows: impl IntoIterator<Item = R>,
    ) -> DbResult<usize> {
        let statement = |count: usize| {
            let values: Vec<String> = (0..count)
                .map(|r| {
                    let places: Vec<String> =
                        (1..=width).map(|c| format!("?{}", r * width + c)).collect();
                    format!("({})", places.join(", "))
                })
                .collect();
            format!("INSERT INTO {into} VALUES {} {tail}", values.join(", "))
        };
        let mut full = None;
        let mut args = Vec::with_capacity(width * INSERT_ROWS);
        let mut rows = rows.into_iter();
        let mut changed = 0;
        loop {
            args.clear();
            rows.by_ref()
                .take(INSERT_ROWS)
                .for_each(|row| args.extend(row));
            debug_assert_eq!(args.len() % width, 0, "rows of {width} arguments");
            let count = args.len() / width;
            if count == 0 {
                return Ok(changed);
            }
            // The whole chunks' statement is made (and on PostgreSQL prepared) once.
            let last;
            let sql = if count == INSERT_ROWS {
                full.get_or_insert_with(|| statement(count)).as_str()
            } else {
                last = statement(count);
                last.as_str()
            };
            changed += self.execute(sql, &args)?;
        }
    }

    /// The first row's `f`; an error when there is none.
    pub fn query_row<T>(
        &self,
        sql: &str,
        args: &[Arg<'_>],
        f: impl FnOnce(&Row<'_>) -> DbResult<T>,
    ) -> DbResult<T> {
        self.query_opt(sql, args, f)?
            .ok_or(DbError::Sqlite(rusqlite::Error::QueryReturnedNoRows))
    }

    /// The first row's `f`, if there is a row.
    pub fn query_opt<T>(
        &self,
        sql: &str,
        args: &[Arg<'_>],
        f: impl FnOnce(&Row<'_>) -> DbResult<T>,
    ) -> DbResult<Option<T>> {
        match self {
            Db::Sqlite(c) => {
                let mut stmt = c.prepare_cached(sql)?;
                let mut rows = stmt.query(rusqlite::params_from_iter(args))?;
                match rows.next()? {
                    Some(r) => f(&Row::Sqlite(r)).map(Some),
                    None => Ok(None),
                }
            }
            #[cfg(feature = "postgres")]
            Db::Postgres(pg) => match pg.query_opt(sql, args)? {
                Some(r) => f(&Row::Postgres(&r)).map(Some),
                None => Ok(None),
            },
        }
    }

    /// `f` of every row, in order.
    pub fn query<T>(
        &self,
        sql: &str,
        args: &[Arg<'_>],
        mut f: impl FnMut(&Row<'_>) -> DbResult<T>,
    ) -> DbResult<Vec<T>> {
        let mut all = Vec::new();
        self.for_each(sql, args, |r| {
            all.push(f(r)?);
            Ok(())
        })?;
        Ok(all)
    }

    /// Calls `f` on every row as it comes, without keeping them.
    pub fn for_each(
        &self,
        sql: &str,
        args: &[Arg<'_>],
        mut f: impl FnMut(&Row<'_>) -> DbResult<()>,
    ) -> DbResult<()> {
        match self {
            Db::Sqlite(c) => {
                let mut stmt = c.prepare_cached(sql)?;
                let mut rows = stmt.query(rusqlite::params_from_iter(args))?;
                while let Some(r) = rows.next()? {
                    f(&Row::Sqlite(r))?;
                }
                Ok(())
            }
            #[cfg(feature = "postgres")]
            Db::Postgres(pg) => pg.for_each(sql, args, |r| f(&Row::Postgres(r))),
        }
    }

    /// Starts a transaction that only reads, ended when the guard is dropped: its reads see
    /// one state of the store, and SQLite takes its shared lock once for all of them.
    pub fn read(&self) -> DbResult<Read<'_>> {
        self.execute_batch("BEGIN")?;
        Ok(Read(self))
    }

    /// Runs `f` in a transaction: committed when `f` returns `Ok`, rolled back otherwise.
    pub fn transaction<T, E: From<DbError>>(
        &self,
        begin: Begin,
        f: impl FnOnce(&Db) -> Result<T, E>,
    ) -> Result<T, E> {
        self.execute_batch(match (self.backend(), begin) {
            (Backend::Sqlite, Begin::Immediate) => "BEGIN IMMEDIATE",
            (_, _) => "BEGIN",
        })?;
        match f(self) {
            Ok(t) => match self.execute_batch("COMMIT") {
                Ok(()) => Ok(t),
                Err(e) => {
                    let _ = self.execute_batch("ROLLBACK");
                    Err(e.into())
                }
            },
            Err(e) => {
                let _ = self.execute_batch("ROLLBACK");
                Err(e)
            }
        }
    }
}

/// A transaction that only reads ([`Db::read`]).
pub struct Read<'a>(&'a Db);

impl Drop for Read<'_> {
    fn drop(&mut self) {
        let _ = self.0.execute_batch("ROLLBACK");
    }
}
