//! The PostgreSQL side of the store's connection ([`Pg`]), which `store/db.rs` calls: where the
//! database is ([`Target`], parsed from a `postgres://` URL as libpq users write it, minus the
//! password), how the connection is made safe (TLS by `sslmode`, never a silent fall-back to
//! clear text, through the same rustls and aws-lc-rs as the rest of the program), how the shared
//! SQL is sent (SQLite's `?1` placeholders turned into `$1`, statements prepared once per text,
//! [`Arg`] encoded as the type PostgreSQL inferred for its place), how a row's columns are read
//! back loosely by their actual type ([`int`], [`real`], [`text`], [`boolean`]), and which
//! errors mean the server is gone ([`PgError::is_connection_lost`]).
//!
//! The store's callers are synchronous and may run on a plain thread or inside someone else's
//! tokio runtime, of either flavour. So the connections' I/O runs on a runtime of this module's
//! own (one worker thread, made on first use), and a caller waits for its result with a small
//! executor on its own thread: the client's futures only talk to the connection task through
//! channels, so they need no tokio context, and a caller inside a runtime never nests it.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::error::Error as StdError;
use std::fmt;
use std::future::Future;
use std::pin::pin;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use bytes::BytesMut;
use futures::StreamExt;
use tokio_postgres::types::{IsNull, ToSql, Type, to_sql_checked};
use tokio_postgres::{Client, Row, Statement};

use super::arg::Arg;
use super::postgres_tls::tls_config;
use crate::config::{SslMode, StateUrl};

// --- Where the database is -------------------------------------------------------------------

/// The database a connection is to: a campaign's `state_url`, read and checked when the
/// campaign loaded (`config::StateUrl`).
pub type Target = StateUrl;

/// The client's configuration: everything of the target, and `password`. TLS is `Require`
/// whenever it is wanted at all, so that tokio-postgres never falls back to clear text; how
/// far the certificate is checked is the TLS connector's business (`postgres_tls.rs`).
fn client_config(target: &Target, password: Option<&str>) -> tokio_postgres::Config {
    let mut config = tokio_postgres::Config::new();
    if target.host.starts_with('/') {
        config.host_path(&target.host);
    } else {
        config.host(&target.host);
    }
    config.port(target.port);
    config.user(&target.user);
    config.dbname(&target.dbname);
    if let Some(password) = password {
        config.password(password);
    }
    config.application_name(&target.application_name);
    // Every statement planned for the table as it is when it runs: a send fills `messages`
    // faster than autovacuum's statistics follow, and a plan the server kept from the first
    // chunks (a table of a few rows: read it whole) read all of it for every later chunk, a
    // send taking twice as long. And no JIT: the statements are short, but the planner,
    // guessing at those tables, costs some past `jit_above_cost`, and compiling them with
    // LLVM took a third of the server's CPU (`perf`; both in BENCHMARKS.md).
    config.options("-c plan_cache_mode=force_custom_plan -c jit=off");
    config.connect_timeout(target.connect_timeout);
    // A server that vanishes without closing the connection (a dropped network, a
    // powered-off host) is noticed within about a minute instead of TCP's ~15: the run is
    // meant to stop when its database is unreachable, not to hang.
    config.keepalives_idle(Duration::from_secs(30));
    config.keepalives_interval(Duration::from_secs(10));
    config.keepalives_retries(3);
    config.tcp_user_timeout(Duration::from_secs(60));
    config.ssl_mode(match target.sslmode {
        SslMode::Disable => tokio_postgres::config::SslMode::Disable,
        _ => tokio_postgres::config::SslMode::Require,
    });
    config
}

// --- Errors ----------------------------------------------------------------------------------

/// An error of a PostgreSQL connection or statement. Its message names the target by
/// [`Target::display`], which holds no password.
#[derive(Debug)]
pub struct PgError {
    target: String,
    kind: ErrorKind,
}

#[derive(Debug)]
enum ErrorKind {
    /// From the client: the server's error, or the connection's.
    Postgres {
        error: tokio_postgres::Error,
        /// Why the connection ended, when it has (the server's last words, or the I/O error):
        /// the client itself only says "connection closed".
        ended: Option<String>,
    },
    /// The TLS client could not be made (`sslrootcert` unreadable, no system roots).
    Tls(String),
    /// The connection was not established within `connect_timeout`.
    Timeout(Duration),
    /// This module's runtime could not start.
    Runtime(std::io::Error),
    /// A statement this module cannot send (an unnumbered `?`).
    Statement(String),
    /// A statement was started while [`Pg::for_each`] was still reading rows of the same
    /// connection (it would wait forever for them).
    Busy,
}

impl PgError {
    fn new(target: &Target, kind: ErrorKind) -> PgError {
        PgError {
            target: target.display(),
            kind,
        }
    }

    /// Whether the database went away (the connection closed, an I/O error, the server shutting
    /// down or refusing connections, or not answering in time): the run must stop, as opposed
    /// to a statement's own error.
    pub fn is_connection_lost(&self) -> bool {
        match &self.kind {
            ErrorKind::Postgres { error, .. } => error_is_lost(error),
            ErrorKind::Timeout(_) => true,
            ErrorKind::Tls(_)
            | ErrorKind::Runtime(_)
            | ErrorKind::Statement(_)
            | ErrorKind::Busy => false,
        }
    }

    /// The server's SQLSTATE (`23505` for a unique violation…), if the server reported the
    /// error.
    pub fn code(&self) -> Option<&str> {
        match &self.kind {
            ErrorKind::Postgres { error, .. } => error.code().map(|c| c.code()),
            _ => None,
        }
    }
}

fn error_is_lost(error: &tokio_postgres::Error) -> bool {
    if error.is_closed() {
        return true;
    }
    if let Some(code) = error.code() {
        // Class 08: connection exceptions; 57P01-57P03: the server shutting down, crashed,
        // or not yet accepting connections.
        let code = code.code();
        return code.starts_with("08") || matches!(code, "57P01" | "57P02" | "57P03");
    }
    // tokio-postgres's own connect timeout has no cause to look at, only its words.
    if error.source().is_none() && error.to_string() == "timeout waiting for server" {
        return true;
    }
    // An I/O error (reading, writing, connecting), unless it carries a TLS refusal: a
    // certificate that does not pass is a configuration to fix, not a server gone.
    let mut io = false;
    let mut cause: Option<&(dyn StdError + 'static)> = error.source();
    while let Some(c) = cause {
        if is_tls_refusal(c) {
            return false;
        }
        io |= c.is::<std::io::Error>();
        cause = c.source();
    }
    io
}

/// Whether `e` is rustls's refusal, which reaches us wrapped in an `io::Error` (whose `source`
/// skips what it wraps, so the wrapped error is looked at too).
fn is_tls_refusal(e: &(dyn StdError + 'static)) -> bool {
    e.is::<rustls::Error>()
        || e.downcast_ref::<std::io::Error>()
            .and_then(std::io::Error::get_ref)
            .is_some_and(|inner| inner.is::<rustls::Error>())
}

impl fmt::Display for PgError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PostgreSQL {}: ", self.target)?;
        match &self.kind {
            ErrorKind::Postgres { error, ended } => {
                if let Some(db) = error.as_db_error() {
                    write!(
                        f,
                        "{} {}: {}",
                        db.severity(),
                        db.code().code(),
                        db.message()
                    )?;
                    if let Some(detail) = db.detail() {
                        write!(f, " (detail: {detail})")?;
                    }
                    if let Some(hint) = db.hint() {
                        write!(f, " (hint: {hint})")?;
                    }
                } else {
                    // tokio-postgres's own message is only the kind ("error connecting to
                    // server"): the causes say what happened.
                    write!(f, "{error}")?;
                    let mut cause = error.source();
                    while let Some(c) = cause {
                        write!(f, ": {c}")?;
                        cause = c.source();
                    }
                }
                if let Some(ended) = ended {
                    write!(f, " (the connection ended: {ended})")?;
                }
                Ok(())
            }
            ErrorKind::Tls(why) => write!(f, "TLS: {why}"),
            ErrorKind::Timeout(after) => {
                write!(
                    f,
                    "no connection within {} s (connect_timeout)",
                    after.as_secs()
                )
            }
            ErrorKind::Runtime(e) => write!(f, "could not start the connection's thread: {e}"),
            ErrorKind::Statement(why) => f.write_str(why),
            ErrorKind::Busy => f.write_str(
                "a statement was sent while the rows of another were still being read on the \
                 same connection",
            ),
        }
    }
}

impl StdError for PgError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        match &self.kind {
            ErrorKind::Postgres { error, .. } => Some(error),
            ErrorKind::Runtime(e) => Some(e),
            _ => None,
        }
    }
}

// --- The connection --------------------------------------------------------------------------

/// The runtime every connection's I/O runs on, whoever calls: one worker thread is plenty for
/// a handful of connections that mostly wait, and it lives as long as the process.
static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();

fn runtime() -> std::io::Result<&'static tokio::runtime::Runtime> {
    if let Some(runtime) = RUNTIME.get() {
        return Ok(runtime);
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("outreach-pg")
        .enable_all()
        .build()?;
    // Two first connections at once: the one that lost the race is shut down without waiting
    // (a plain drop would panic if the caller is inside a runtime).
    if let Err(extra) = RUNTIME.set(runtime) {
        extra.shutdown_background();
    }
    Ok(RUNTIME.get().expect("set just above"))
}

/// Waits for a client future on the caller's thread. The client's futures only exchange
/// messages with the connection task (on [`RUNTIME`]) over futures' channels, so they need no
/// tokio context and this works on a plain thread and inside either flavour of runtime.
fn wait<F: Future>(future: F) -> F::Output {
    futures_executor::block_on(future)
}

/// One connection to PostgreSQL, used from one thread at a time (it is `Send`, not `Sync`).
/// Each call waits for its answer; statements are prepared once per SQL text and kept.
pub struct Pg {
    client: Client,
    target: Target,
    /// Prepared statements by their SQL text as the store wrote it. Not bounded: the store's
    /// statements are a fixed set of constants.
    statements: RefCell<HashMap<String, Statement>>,
    /// Set while [`Pg::for_each`] reads rows: the connection answers in order, so a statement
    /// sent meanwhile would wait behind rows nobody reads.
    reading: Cell<bool>,
    /// Why the connection task ended, written by it: see [`ErrorKind::Postgres`].
    ended: Arc<Mutex<Option<String>>>,
}

impl fmt::Debug for Pg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pg")
            .field("target", &self.target.display())
            .finish_non_exhaustive()
    }
}

impl Pg {
    /// Connects to `target`, with `password` if the server asks for one, within the target's
    /// `connect_timeout` (the whole of it: TCP, TLS and authentication).
    pub fn connect(target: &Target, password: Option<&str>) -> Result<Pg, PgError> {
        let fail = |kind| PgError::new(target, kind);
        let runtime = runtime().map_err(|e| fail(ErrorKind::Runtime(e)))?;
        let config = client_config(target, password);
        let tls = match target.sslmode {
            SslMode::Disable => None,
            _ => Some(tls_config(target).map_err(|e| fail(ErrorKind::Tls(e)))?),
        };
        let ended = Arc::new(Mutex::new(None));
        let connecting = establish(config, tls, ended.clone());
        let timeout = Some(target.connect_timeout);
        // The result comes back through a futures channel rather than the task's JoinHandle:
        // a JoinHandle polled from inside another runtime's task spends that task's tokio
        // budget (128 polls), which only the task yielding restores and a blocking wait never
        // does; with a JoinHandle, the 129th connection made in one task waited forever.
        let (tx, rx) = futures::channel::oneshot::channel();
        runtime.spawn(async move {
            let result = match timeout {
                Some(limit) => tokio::time::timeout(limit, connecting)
                    .await
                    .unwrap_or(Err(Established::TimedOut(limit))),
                None => connecting.await,
            };
            let _ = tx.send(result);
        });
        let client = match wait(rx) {
            Ok(Ok(client)) => client,
            Ok(Err(Established::Failed(error))) => {
                return Err(fail(ErrorKind::Postgres { error, ended: None }));
            }
            Ok(Err(Established::TimedOut(limit))) => return Err(fail(ErrorKind::Timeout(limit))),
            Err(_cancelled) => {
                let gone = std::io::Error::other("the connection's thread stopped");
                return Err(fail(ErrorKind::Runtime(gone)));
            }
        };
        Ok(Pg {
            client,
            target: target.clone(),
            statements: RefCell::new(HashMap::new()),
            reading: Cell::new(false),
            ended,
        })
    }

    /// The database this connection is to.
    #[cfg(test)]
    pub fn target(&self) -> &Target {
        &self.target
    }

    /// Runs one statement with `args` (`?1` is `args[0]`), returning the rows it changed.
    pub fn execute(&self, sql: &str, args: &[Arg<'_>]) -> Result<u64, PgError> {
        self.idle()?;
        self.with_statement(sql, |statement| {
            wait(self.client.execute_raw(statement, args.iter()))
        })
    }

    /// Runs statements separated by `;`, without arguments (the simple query protocol: DDL,
    /// `BEGIN`/`COMMIT`, several statements at once).
    pub fn batch_execute(&self, sql: &str) -> Result<(), PgError> {
        self.idle()?;
        wait(self.client.batch_execute(sql)).map_err(|e| self.error(e))
    }

    /// Calls `f` with each row of the query's result, as the rows arrive (they are not
    /// collected first). `f` must not use this connection: its statement would be refused.
    pub fn for_each<E, F>(&self, sql: &str, args: &[Arg<'_>], mut f: F) -> Result<(), E>
    where
        E: From<PgError>,
        F: FnMut(&Row) -> Result<(), E>,
    {
        self.idle()?;
        let rows = self.with_statement(sql, |statement| {
            wait(self.client.query_raw(statement, args.iter()))
        })?;
        let mut rows = pin!(rows);
        self.reading.set(true);
        let _reset = Reset(&self.reading);
        // Each row is awaited on its own and `f` is called outside the executor, so that `f`
        // may itself block (another connection, a channel) without nesting executors.
        while let Some(row) = wait(rows.next()) {
            f(&row.map_err(|e| self.error(e))?)?;
        }
        Ok(())
    }

    /// The first row of the query's result, if any (the rest are not read).
    pub fn query_opt(&self, sql: &str, args: &[Arg<'_>]) -> Result<Option<Row>, PgError> {
        self.idle()?;
        let rows = self.with_statement(sql, |statement| {
            wait(self.client.query_raw(statement, args.iter()))
        })?;
        let mut rows = pin!(rows);
        wait(rows.next()).transpose().map_err(|e| self.error(e))
    }

    /// Refuses a statement while [`Pg::for_each`] is reading rows.
    fn idle(&self) -> Result<(), PgError> {
        match self.reading.get() {
            true => Err(PgError::new(&self.target, ErrorKind::Busy)),
            false => Ok(()),
        }
    }

    /// Runs `run` with `sql`'s prepared statement. A statement kept from before a schema change
    /// (a column added to a table it reads with `*`) fails with "cached plan must not change
    /// result type": it is prepared again and run once more. (Inside a transaction the second
    /// try meets "current transaction is aborted" instead, which the caller sees: the
    /// transaction as a whole is what can be tried again there.)
    fn with_statement<T>(
        &self,
        sql: &str,
        run: impl Fn(&Statement) -> Result<T, tokio_postgres::Error>,
    ) -> Result<T, PgError> {
        let statement = self.prepare(sql)?;
        match run(&statement) {
            Err(e) if is_stale_plan(&e) => {
                self.statements.borrow_mut().remove(sql);
                drop(statement);
                let statement = self.prepare(sql)?;
                run(&statement).map_err(|e| self.error(e))
            }
            result => result.map_err(|e| self.error(e)),
        }
    }

    /// `sql`'s statement, prepared now if it is not kept yet.
    fn prepare(&self, sql: &str) -> Result<Statement, PgError> {
        if let Some(statement) = self.statements.borrow().get(sql) {
            return Ok(statement.clone());
        }
        let numbered = dollar_placeholders(sql)
            .map_err(|why| PgError::new(&self.target, ErrorKind::Statement(why)))?;
        let statement = wait(self.client.prepare(&numbered)).map_err(|e| self.error(e))?;
        self.statements
            .borrow_mut()
            .insert(sql.to_owned(), statement.clone());
        Ok(statement)
    }

    fn error(&self, error: tokio_postgres::Error) -> PgError {
        let ended = match error.is_closed() {
            true => self.ended.lock().ok().and_then(|e| e.clone()),
            false => None,
        };
        PgError::new(&self.target, ErrorKind::Postgres { error, ended })
    }
}

/// Clears [`Pg::reading`] however `for_each` ends (an error of `f`, a panic).
struct Reset<'a>(&'a Cell<bool>);

impl Drop for Reset<'_> {
    fn drop(&mut self) {
        self.0.set(false);
    }
}

enum Established {
    Failed(tokio_postgres::Error),
    TimedOut(Duration),
}

/// Connects (on [`RUNTIME`]) and spawns the connection's task there, which records why it ended
/// in `ended`.
async fn establish(
    config: tokio_postgres::Config,
    tls: Option<rustls::ClientConfig>,
    ended: Arc<Mutex<Option<String>>>,
) -> Result<Client, Established> {
    let drive = move |result: Result<(), tokio_postgres::Error>| {
        // A plain end of the stream says no more than the client's own "connection closed".
        if let Err(e) = result
            && !e.is_closed()
        {
            let why = match e.as_db_error() {
                Some(db) => format!("{} {}: {}", db.severity(), db.code().code(), db.message()),
                None => e.source().map_or(e.to_string(), |c| format!("{e}: {c}")),
            };
            if let Ok(mut slot) = ended.lock() {
                *slot = Some(why);
            }
        }
    };
    match tls {
        None => {
            let (client, connection) = config
                .connect(tokio_postgres::NoTls)
                .await
                .map_err(Established::Failed)?;
            tokio::spawn(async move { drive(connection.await) });
            Ok(client)
        }
        Some(tls) => {
            let tls = tokio_postgres_rustls::MakeRustlsConnect::new(tls);
            let (client, connection) = config.connect(tls).await.map_err(Established::Failed)?;
            tokio::spawn(async move { drive(connection.await) });
            Ok(client)
        }
    }
}

fn is_stale_plan(error: &tokio_postgres::Error) -> bool {
    error
        .as_db_error()
        .is_some_and(|db| db.message() == "cached plan must not change result type")
}

/// The statement with SQLite's numbered placeholders (`?1`) turned into PostgreSQL's (`$1`),
/// except inside 'strings', "identifiers" and comments. An unnumbered `?` is refused: its
/// number would depend on its place, which the two databases count alike only by luck.
fn dollar_placeholders(sql: &str) -> Result<String, String> {
    let bytes = sql.as_bytes();
    let mut out = String::with_capacity(sql.len() + 8);
    let mut copied = 0;
    let mut i = 0;
    // Only ASCII bytes are matched, so every slice below falls on a character boundary.
    while i < bytes.len() {
        match bytes[i] {
            // A doubled quote inside ('it''s') closes and reopens: the same as skipping it.
            quote @ (b'\'' | b'"') => {
                i += 1;
                while i < bytes.len() && bytes[i] != quote {
                    i += 1;
                }
                i += 1;
            }
            b'-' if bytes.get(i + 1) == Some(&b'-') => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
            }
            b'/' if bytes.get(i + 1) == Some(&b'*') => {
                // PostgreSQL's block comments nest.
                let mut depth = 0;
                while i < bytes.len() {
                    if bytes[i..].starts_with(b"/*") {
                        depth += 1;
                        i += 2;
                    } else if bytes[i..].starts_with(b"*/") {
                        depth -= 1;
                        i += 2;
                        if depth == 0 {
                            break;
                        }
                    } else {
                        i += 1;
                    }
                }
            }
            b'?' => {
                let digits = bytes[i + 1..]
                    .iter()
                    .take_while(|b| b.is_ascii_digit())
                    .count();
                if digits == 0 {
                    return Err(
                        "a statement holds an unnumbered placeholder '?': write ?1, ?2…".into(),
                    );
                }
                out.push_str(&sql[copied..i]);
                out.push('$');
                copied = i + 1;
                i += 1 + digits;
            }
            _ => i += 1,
        }
    }
    out.push_str(&sql[copied..]);
    Ok(out)
}

// --- Arguments -------------------------------------------------------------------------------

/// An argument is encoded as the type PostgreSQL inferred for its place (an `Int` compared with
/// an `INTEGER` column is an INT4, a `BOOLEAN` column's is a BOOL), so the shared SQL need not
/// cast. What cannot be encoded faithfully (an integer too large for an INT4, text for a number)
/// is an error naming the type, to be fixed with a `CAST` in the statement.
impl ToSql for Arg<'_> {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut BytesMut,
    ) -> Result<IsNull, Box<dyn StdError + Sync + Send>> {
        match *self {
            Arg::Null => Ok(IsNull::Yes),
            Arg::Int(v) => int_to_sql(v, ty, out),
            Arg::Real(v) => match *ty {
                Type::FLOAT8 => v.to_sql(ty, out),
                // The column is single precision: rounding to it is what storing does anyway.
                #[allow(clippy::cast_possible_truncation)]
                Type::FLOAT4 => (v as f32).to_sql(ty, out),
                _ => Err(mismatch("a real number", ty)),
            },
            Arg::Text(s) => match *ty {
                Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME | Type::UNKNOWN => {
                    s.to_sql(ty, out)
                }
                _ => Err(mismatch("text", ty)),
            },
        }
    }

    fn accepts(_: &Type) -> bool {
        // Every type is looked at in `to_sql`, whose errors say more than "wrong type".
        true
    }

    to_sql_checked!();
}

fn int_to_sql(
    v: i64,
    ty: &Type,
    out: &mut BytesMut,
) -> Result<IsNull, Box<dyn StdError + Sync + Send>> {
    let narrow = |bits: &str| {
        format!(
            "the integer {v} does not fit the {bits} PostgreSQL inferred for this parameter \
             (from `?N + 1` or an INTEGER column): CAST it AS BIGINT in the statement"
        )
    };
    match *ty {
        Type::INT8 => v.to_sql(ty, out),
        Type::INT4 => i32::try_from(v)
            .map_err(|_| narrow("INTEGER (INT4)"))?
            .to_sql(ty, out),
        Type::INT2 => i16::try_from(v)
            .map_err(|_| narrow("SMALLINT (INT2)"))?
            .to_sql(ty, out),
        // Booleans are passed as 0/1, as SQLite stores them.
        Type::BOOL => (v != 0).to_sql(ty, out),
        // Exact up to 2^53, far beyond any count or timestamp this program stores.
        #[allow(clippy::cast_precision_loss)]
        Type::FLOAT8 => (v as f64).to_sql(ty, out),
        #[allow(clippy::cast_precision_loss)]
        Type::FLOAT4 => (v as f32).to_sql(ty, out),
        // A place PostgreSQL typed as text (`SELECT ?1`, `?1 || 'x'`): the number's digits.
        Type::TEXT | Type::VARCHAR => v.to_string().as_str().to_sql(ty, out),
        _ => Err(mismatch("an integer", ty)),
    }
}

fn mismatch(what: &str, ty: &Type) -> Box<dyn StdError + Sync + Send> {
    format!(
        "{what} for a parameter PostgreSQL typed as {}: CAST the placeholder in the statement \
         to the type it holds (CAST(?1 AS BIGINT), CAST(?1 AS TEXT)…)",
        ty.name().to_uppercase()
    )
    .into()
}

// --- Reading rows ----------------------------------------------------------------------------

/// Column `i` of `row` as an integer: BIGINT, INTEGER, SMALLINT, or a BOOLEAN as 0/1.
pub fn int(row: &Row, i: usize) -> Result<Option<i64>, String> {
    match column_type(row, i)? {
        Type::INT8 => get::<i64>(row, i),
        Type::INT4 => Ok(get::<i32>(row, i)?.map(i64::from)),
        Type::INT2 => Ok(get::<i16>(row, i)?.map(i64::from)),
        Type::BOOL => Ok(get::<bool>(row, i)?.map(i64::from)),
        // SUM of integers and AVG are NUMERIC in PostgreSQL (arbitrary precision), INTEGER in
        // SQLite: the shared SQL casts them back.
        Type::NUMERIC => Err(format!(
            "{} is NUMERIC in PostgreSQL (a SUM is): CAST it AS BIGINT in the statement",
            column_name(row, i)
        )),
        ty => Err(wrong_type(row, i, &ty, "an integer")),
    }
}

/// Column `i` of `row` as a real number: DOUBLE PRECISION, REAL, or any integer.
pub fn real(row: &Row, i: usize) -> Result<Option<f64>, String> {
    match column_type(row, i)? {
        Type::FLOAT8 => get::<f64>(row, i),
        Type::FLOAT4 => Ok(get::<f32>(row, i)?.map(f64::from)),
        #[allow(clippy::cast_precision_loss)]
        Type::INT8 => Ok(get::<i64>(row, i)?.map(|v| v as f64)),
        Type::INT4 => Ok(get::<i32>(row, i)?.map(f64::from)),
        Type::INT2 => Ok(get::<i16>(row, i)?.map(f64::from)),
        Type::NUMERIC => Err(format!(
            "{} is NUMERIC in PostgreSQL (an AVG is): CAST it AS DOUBLE PRECISION in the \
             statement",
            column_name(row, i)
        )),
        ty => Err(wrong_type(row, i, &ty, "a real number")),
    }
}

/// Column `i` of `row` as text: TEXT, VARCHAR, CHAR or NAME.
pub fn text(row: &Row, i: usize) -> Result<Option<String>, String> {
    match column_type(row, i)? {
        Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME => get::<String>(row, i),
        ty => Err(wrong_type(row, i, &ty, "text")),
    }
}

/// Column `i` of `row` as a boolean: BOOLEAN, or an integer (not 0 is true), as SQLite has them.
pub fn boolean(row: &Row, i: usize) -> Result<Option<bool>, String> {
    match column_type(row, i)? {
        Type::BOOL => get::<bool>(row, i),
        Type::INT8 | Type::INT4 | Type::INT2 => Ok(int(row, i)?.map(|v| v != 0)),
        ty => Err(wrong_type(row, i, &ty, "a boolean")),
    }
}

fn column_type(row: &Row, i: usize) -> Result<Type, String> {
    row.columns()
        .get(i)
        .map(|c| c.type_().clone())
        .ok_or_else(|| format!("the row has {} columns, not {}", row.len(), i + 1))
}

fn column_name(row: &Row, i: usize) -> String {
    format!("`{}`", row.columns()[i].name())
}

fn get<'a, T: tokio_postgres::types::FromSql<'a>>(
    row: &'a Row,
    i: usize,
) -> Result<Option<T>, String> {
    row.try_get::<_, Option<T>>(i).map_err(|e| {
        let cause = e.source().map(|c| format!(": {c}")).unwrap_or_default();
        format!("{}: {e}{cause}", column_name(row, i))
    })
}

fn wrong_type(row: &Row, i: usize, ty: &Type, wanted: &str) -> String {
    format!(
        "{} is {} in PostgreSQL, not {wanted}",
        column_name(row, i),
        ty.name().to_uppercase()
    )
}

#[cfg(test)]
mod live_tests;
#[cfg(test)]
mod test_cluster;
#[cfg(test)]
mod tests;
