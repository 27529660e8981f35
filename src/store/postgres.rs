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
mod tests {
    use super::*;

    fn parsed(url: &str) -> Target {
        StateUrl::parse(url, None, std::path::Path::new("."))
            .unwrap_or_else(|e| panic!("{url}: {e}"))
    }

    #[test]
    fn the_url_reaches_the_client_configuration() {
        let t = parsed(
            "postgres://o%40x@db.example/my%20db?connect_timeout=3&application_name=ward%207",
        );
        let c = client_config(&t, Some("pw"));
        assert_eq!(c.get_user(), Some("o@x"));
        assert_eq!(c.get_dbname(), Some("my db"));
        assert_eq!(c.get_application_name(), Some("ward 7"));
        assert_eq!(c.get_connect_timeout(), Some(&Duration::from_secs(3)));
        assert_eq!(c.get_password(), Some(&b"pw"[..]));
        assert_eq!(c.get_ssl_mode(), tokio_postgres::config::SslMode::Require);
        assert_eq!(c.get_ports(), &[5432]);
        let c = client_config(&parsed("postgres://u@localhost/d"), None);
        assert_eq!(c.get_ssl_mode(), tokio_postgres::config::SslMode::Disable);
        assert_eq!(c.get_password(), None);
        assert_eq!(c.get_application_name(), Some("outreach"));
        let c = client_config(&parsed("postgres://u@/d?host=/run/postgresql"), None);
        assert!(matches!(
            c.get_hosts(),
            [tokio_postgres::config::Host::Unix(p)] if p == std::path::Path::new("/run/postgresql")
        ));
    }

    #[test]
    fn placeholders_are_numbered_the_postgresql_way_outside_strings_and_comments() {
        let t = |sql: &str| dollar_placeholders(sql).unwrap();
        assert_eq!(t("SELECT 1"), "SELECT 1");
        assert_eq!(
            t("UPDATE m SET a = ?1, b = ?12 WHERE c = ?3"),
            "UPDATE m SET a = $1, b = $12 WHERE c = $3"
        );
        assert_eq!(t("SELECT ?1||?2"), "SELECT $1||$2");
        assert_eq!(t("SELECT '?1', ?2"), "SELECT '?1', $2");
        assert_eq!(t("SELECT 'it''s ?1', ?2"), "SELECT 'it''s ?1', $2");
        assert_eq!(
            t("SELECT \"a?1\" FROM t WHERE x = ?1"),
            "SELECT \"a?1\" FROM t WHERE x = $1"
        );
        assert_eq!(
            t("SELECT ?1 -- is it ?2?\n, ?3"),
            "SELECT $1 -- is it ?2?\n, $3"
        );
        assert_eq!(t("SELECT 1 -- ?"), "SELECT 1 -- ?");
        assert_eq!(
            t("SELECT /* ?1 /* ?2 */ ?3 */ ?4"),
            "SELECT /* ?1 /* ?2 */ ?3 */ $4"
        );
        assert_eq!(t("SELECT 'é?1', ?1 -- ünï ?"), "SELECT 'é?1', $1 -- ünï ?");
        assert_eq!(t("SELECT 5-?1"), "SELECT 5-$1");
        assert_eq!(t("SELECT 'unterminated ?1"), "SELECT 'unterminated ?1");
        assert!(
            dollar_placeholders("SELECT ? ")
                .unwrap_err()
                .contains("unnumbered")
        );
        assert!(dollar_placeholders("SELECT ?1, ?").is_err());
    }

    #[test]
    fn a_connection_that_is_never_answered_times_out_as_lost() {
        // The kernel completes the TCP handshake for the backlog; nobody ever speaks.
        let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = silent.local_addr().unwrap().port();
        let target = parsed(&format!(
            "postgres://u@127.0.0.1:{port}/d?connect_timeout=1"
        ));
        let started = std::time::Instant::now();
        let e = Pg::connect(&target, Some("Sw0rdfish")).unwrap_err();
        assert!(started.elapsed() < Duration::from_secs(5));
        assert!(e.is_connection_lost(), "{e}");
        let shown = e.to_string();
        assert!(shown.contains(&format!("127.0.0.1:{port}")), "{shown}");
        assert!(!shown.contains("Sw0rdfish"), "{shown}");
    }

    #[test]
    fn nothing_listening_is_a_lost_connection() {
        let port = free_port();
        let target = parsed(&format!("postgres://u@127.0.0.1:{port}/d"));
        let e = Pg::connect(&target, None).unwrap_err();
        assert!(e.is_connection_lost(), "{e}");
        assert!(e.to_string().contains("refused"), "{e}");
    }

    // --- Against a throwaway PostgreSQL 15 -----------------------------------------------------

    use std::path::Path;
    use std::process::Command;

    const BIN: &str = "/usr/lib/postgresql/15/bin";

    #[derive(Default)]
    struct Options {
        tls: bool,
        password: Option<&'static str>,
    }

    /// A PostgreSQL cluster of its own in a temporary directory, listening on 127.0.0.1 and a
    /// socket in that directory, stopped (immediately) when dropped. As root, it runs as
    /// `nobody` (initdb refuses root).
    struct Cluster {
        dir: tempfile::TempDir,
        port: u16,
        as_nobody: bool,
        /// A shell waiting on its standard input, which stops the server and removes the
        /// directory once the input closes: when the cluster is dropped, and also when the test
        /// process is killed and no `Drop` runs.
        watchdog: Option<std::process::Child>,
    }

    /// The watchdog's script: `$1` the binaries, `$2` the cluster's directory.
    const WATCHDOG: &str =
        r#"read _; "$1/pg_ctl" -D "$2/data" -m immediate -w stop >/dev/null 2>&1; rm -rf "$2""#;

    fn free_port() -> u16 {
        let socket = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        socket.local_addr().unwrap().port()
    }

    fn run(command: &mut Command, what: &str) {
        let out = command
            .output()
            .unwrap_or_else(|e| panic!("{what}: cannot start {command:?}: {e}"));
        assert!(
            out.status.success(),
            "{what} failed ({}):\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn id_of(flag: &str) -> u32 {
        let out = Command::new("id").args([flag, "nobody"]).output().unwrap();
        String::from_utf8(out.stdout)
            .unwrap()
            .trim()
            .parse()
            .unwrap()
    }

    impl Cluster {
        fn start(options: &Options) -> Cluster {
            assert!(
                Path::new(BIN).join("initdb").exists(),
                "PostgreSQL 15 is not installed ({BIN}/initdb): apt-get install postgresql-15"
            );
            let dir = tempfile::Builder::new()
                .prefix("outreach-pg-")
                .tempdir()
                .unwrap();
            use std::os::unix::fs::MetadataExt;
            let as_nobody = std::fs::metadata(dir.path()).unwrap().uid() == 0;
            let mut cluster = Cluster {
                dir,
                port: 0,
                as_nobody,
                watchdog: None,
            };
            let root = cluster.dir.path().to_owned();
            let mut initdb = cluster.command("initdb");
            initdb.arg("-D").arg(root.join("data"));
            initdb.args(["-U", "postgres", "-E", "UTF8", "--locale=C", "--no-sync"]);
            initdb.arg("--auth-local=trust");
            match options.password {
                Some(password) => {
                    std::fs::write(root.join("pw"), password).unwrap();
                    initdb.arg("--auth-host=scram-sha-256");
                    initdb.arg(format!("--pwfile={}", root.join("pw").display()));
                }
                None => {
                    initdb.arg("--auth-host=trust");
                }
            }
            if options.tls {
                make_certificates(&root.join("tls"));
            }
            cluster.give_to_nobody(&root);
            let watchdog = cluster
                .command("sh")
                .args(["-c", WATCHDOG, "watchdog", BIN])
                .arg(&root)
                .stdin(std::process::Stdio::piped())
                .spawn()
                .unwrap();
            cluster.watchdog = Some(watchdog);
            run(&mut initdb, "initdb");
            let mut server_options = format!(
                "-k {} -c listen_addresses=127.0.0.1 -c fsync=off",
                root.display()
            );
            if options.tls {
                let tls = root.join("tls");
                server_options.push_str(&format!(
                    " -c ssl=on -c ssl_cert_file={} -c ssl_key_file={}",
                    tls.join("server.crt").display(),
                    tls.join("server.key").display()
                ));
            }
            // Another test may take the free port between our look and the server's bind.
            for attempt in 1.. {
                cluster.port = free_port();
                let out = cluster
                    .command("pg_ctl")
                    .arg("-D")
                    .arg(root.join("data"))
                    .arg("-l")
                    .arg(root.join("log"))
                    .args(["-w", "-o"])
                    .arg(format!("{server_options} -p {}", cluster.port))
                    .arg("start")
                    .output()
                    .unwrap();
                if out.status.success() {
                    break;
                }
                let log = std::fs::read_to_string(root.join("log")).unwrap_or_default();
                assert!(attempt < 3, "pg_ctl start failed:\n{log}");
            }
            cluster
        }

        /// `program` (PostgreSQL's, or `sh`) as the server's user.
        fn command(&self, program: &str) -> Command {
            let program = match program {
                "sh" => Path::new("/bin/sh").to_owned(),
                _ => Path::new(BIN).join(program),
            };
            if self.as_nobody {
                let mut c = Command::new("runuser");
                c.args(["-u", "nobody", "--"]).arg(program);
                c
            } else {
                Command::new(program)
            }
        }

        fn give_to_nobody(&self, path: &Path) {
            fn chown_tree(path: &Path, uid: u32, gid: u32) {
                std::os::unix::fs::chown(path, Some(uid), Some(gid)).unwrap();
                if path.is_dir() {
                    for entry in std::fs::read_dir(path).unwrap() {
                        chown_tree(&entry.unwrap().path(), uid, gid);
                    }
                }
            }
            if self.as_nobody {
                chown_tree(path, id_of("-u"), id_of("-g"));
            }
        }

        /// `postgres://postgres@HOST:PORT/postgres` with `query` appended.
        fn url(&self, host: &str, query: &str) -> String {
            format!("postgres://postgres@{host}:{}/postgres?{query}", self.port)
        }

        fn connect(&self, query: &str) -> Pg {
            let target = parsed(&self.url("127.0.0.1", query));
            Pg::connect(&target, None).unwrap_or_else(|e| panic!("{e}"))
        }

        fn tls_file(&self, name: &str) -> String {
            self.dir.path().join("tls").join(name).display().to_string()
        }

        fn stop(&self) {
            let _ = self
                .command("pg_ctl")
                .arg("-D")
                .arg(self.dir.path().join("data"))
                .args(["-m", "immediate", "-w", "stop"])
                .output();
        }
    }

    impl Drop for Cluster {
        fn drop(&mut self) {
            self.stop();
            if let Some(mut watchdog) = self.watchdog.take() {
                drop(watchdog.stdin.take());
                let _ = watchdog.wait();
            }
        }
    }

    /// A CA and a server certificate it signed for 127.0.0.1 only (so `localhost` is a wrong
    /// name for it), and another CA that signed nothing, made with the openssl CLI.
    fn make_certificates(dir: &Path) {
        std::fs::create_dir_all(dir).unwrap();
        let openssl = |args: &str| {
            let mut c = Command::new("openssl");
            c.current_dir(dir).args(args.split_whitespace());
            run(&mut c, "openssl");
        };
        let new_key = "-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes";
        for ca in ["ca", "other-ca"] {
            openssl(&format!(
                "req -x509 {new_key} -keyout {ca}.key -out {ca}.crt -days 2 \
                 -subj /CN=outreach-test-{ca} -addext basicConstraints=critical,CA:TRUE \
                 -addext keyUsage=critical,keyCertSign,cRLSign"
            ));
        }
        openssl(&format!(
            "req {new_key} -keyout server.key -out server.csr -subj /CN=127.0.0.1"
        ));
        std::fs::write(
            dir.join("server.ext"),
            "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n\
             keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n",
        )
        .unwrap();
        openssl(
            "x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 \
             -extfile server.ext -out server.crt",
        );
        use std::os::unix::fs::PermissionsExt;
        let key = dir.join("server.key");
        std::fs::set_permissions(key, std::fs::Permissions::from_mode(0o600)).unwrap();
    }

    fn one_int(pg: &Pg, sql: &str, args: &[Arg<'_>]) -> Result<Option<i64>, String> {
        let row = pg
            .query_opt(sql, args)
            .map_err(|e| e.to_string())?
            .expect("a row");
        int(&row, 0)
    }

    #[test]
    fn arguments_of_each_kind_are_stored_and_read_back_by_the_column_type() {
        let cluster = Cluster::start(&Options::default());
        let pg = cluster.connect("sslmode=disable");
        pg.batch_execute(
            "CREATE TABLE t (id BIGINT PRIMARY KEY, i4 INTEGER, i2 SMALLINT, b BOOLEAN, \
             f8 DOUBLE PRECISION, f4 REAL, s TEXT, v VARCHAR(20), c CHAR(3), n BIGINT); \
             CREATE TABLE u (x INTEGER)",
        )
        .unwrap();
        let insert = "INSERT INTO t (id, i4, i2, b, f8, f4, s, v, c, n) \
                      VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)";
        let args = [
            Arg::Int(9_007_199_254_740_993),
            Arg::Int(-2_000_000_000),
            Arg::Int(-300),
            Arg::Int(1),
            Arg::Real(0.1),
            Arg::Real(1.5),
            Arg::Text("été ?1 'quoted'"),
            Arg::Int(42),
            Arg::Text("ab"),
            Arg::Null,
        ];
        assert_eq!(pg.execute(insert, &args).unwrap(), 1);
        let mut second = args;
        second[0] = Arg::Int(2);
        second[3] = Arg::Int(0);
        second[5] = Arg::Int(7);
        second[6] = Arg::Null;
        assert_eq!(pg.execute(insert, &second).unwrap(), 1);

        let row = pg
            .query_opt(
                "SELECT * FROM t WHERE id = ?1",
                &[Arg::Int(9_007_199_254_740_993)],
            )
            .unwrap()
            .unwrap();
        assert_eq!(int(&row, 0).unwrap(), Some(9_007_199_254_740_993));
        assert_eq!(int(&row, 1).unwrap(), Some(-2_000_000_000));
        assert_eq!(int(&row, 2).unwrap(), Some(-300));
        assert_eq!(int(&row, 3).unwrap(), Some(1));
        assert_eq!(boolean(&row, 3).unwrap(), Some(true));
        assert_eq!(real(&row, 4).unwrap(), Some(0.1));
        assert_eq!(real(&row, 5).unwrap(), Some(1.5));
        assert_eq!(text(&row, 6).unwrap().as_deref(), Some("été ?1 'quoted'"));
        assert_eq!(text(&row, 7).unwrap().as_deref(), Some("42"));
        assert_eq!(text(&row, 8).unwrap().as_deref(), Some("ab "));
        assert_eq!(int(&row, 9).unwrap(), None);
        assert_eq!(
            text(&row, 9).unwrap_err(),
            "`n` is INT8 in PostgreSQL, not text"
        );
        assert_eq!(real(&row, 0).unwrap(), Some(9_007_199_254_740_992.0));
        assert_eq!(boolean(&row, 1).unwrap(), Some(true));
        assert!(
            int(&row, 10)
                .unwrap_err()
                .contains("has 10 columns, not 11")
        );

        let row = pg
            .query_opt("SELECT b, f4, s, i4 FROM t WHERE id = ?1", &[Arg::Int(2)])
            .unwrap()
            .unwrap();
        assert_eq!(boolean(&row, 0).unwrap(), Some(false));
        assert_eq!(real(&row, 1).unwrap(), Some(7.0));
        assert_eq!(text(&row, 2).unwrap(), None);
        assert_eq!(real(&row, 3).unwrap(), Some(-2_000_000_000.0));

        // Streamed rows, and the first of several.
        let mut ids = Vec::new();
        pg.for_each::<PgError, _>("SELECT id FROM t ORDER BY id", &[], |row| {
            ids.push(int(row, 0).unwrap().unwrap());
            Ok(())
        })
        .unwrap();
        assert_eq!(ids, [2, 9_007_199_254_740_993]);
        assert_eq!(
            one_int(&pg, "SELECT id FROM t ORDER BY id", &[]),
            Ok(Some(2))
        );
        assert!(
            pg.query_opt("SELECT id FROM t WHERE id < 0", &[])
                .unwrap()
                .is_none()
        );
        assert_eq!(
            pg.execute("UPDATE t SET n = ?1", &[Arg::Int(5)]).unwrap(),
            2
        );
        assert_eq!(
            pg.execute("INSERT INTO u VALUES (?1)", &[Arg::Null])
                .unwrap(),
            1
        );
    }

    #[test]
    fn the_types_postgresql_infers_for_placeholders_and_results() {
        let cluster = Cluster::start(&Options::default());
        let pg = cluster.connect("sslmode=disable");
        pg.batch_execute(
            "CREATE TABLE t (big BIGINT, small INTEGER, flag BOOLEAN, s TEXT, x REAL); \
             INSERT INTO t VALUES (3000000000, 2, true, 'a', 1.5), (4, 5, false, 'b', 2)",
        )
        .unwrap();
        // A placeholder alone in a SELECT list is TEXT: an integer arrives as its digits.
        let row = pg.query_opt("SELECT ?1", &[Arg::Int(7)]).unwrap().unwrap();
        assert_eq!(text(&row, 0).unwrap().as_deref(), Some("7"));
        assert!(int(&row, 0).unwrap_err().contains("is TEXT"));
        assert_eq!(
            one_int(&pg, "SELECT CAST(?1 AS BIGINT)", &[Arg::Int(7)]),
            Ok(Some(7))
        );
        // `?1 + 1` and an INTEGER column type the placeholder INT4: a larger value is refused.
        assert_eq!(one_int(&pg, "SELECT ?1 + 1", &[Arg::Int(7)]), Ok(Some(8)));
        let e = one_int(&pg, "SELECT ?1 + 1", &[Arg::Int(3_000_000_000)]).unwrap_err();
        assert!(e.contains("does not fit the INTEGER (INT4)"), "{e}");
        let e = pg
            .execute("UPDATE t SET small = ?1", &[Arg::Int(1 << 40)])
            .unwrap_err()
            .to_string();
        assert!(e.contains("CAST it AS BIGINT"), "{e}");
        // Comparing with a BOOLEAN column: 0/1 become false/true.
        assert_eq!(
            one_int(
                &pg,
                "SELECT COUNT(*) FROM t WHERE flag = ?1",
                &[Arg::Int(1)]
            ),
            Ok(Some(1))
        );
        assert_eq!(
            one_int(&pg, "SELECT small FROM t WHERE x = ?1", &[Arg::Int(2)]),
            Ok(Some(5))
        );
        assert_eq!(
            one_int(&pg, "SELECT small FROM t WHERE x = ?1", &[Arg::Real(1.5)]),
            Ok(Some(2))
        );
        // Text for a number's place, and a number for text's, are errors naming the type.
        let e = pg
            .execute("UPDATE t SET big = ?1", &[Arg::Text("5")])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("text for a parameter PostgreSQL typed as INT8"),
            "{e}"
        );
        let e = pg
            .execute("UPDATE t SET s = ?1", &[Arg::Real(1.5)])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("a real number for a parameter PostgreSQL typed as TEXT"),
            "{e}"
        );
        assert_eq!(
            pg.execute("UPDATE t SET s = ?1 WHERE big = 4", &[Arg::Int(9)])
                .unwrap(),
            1
        );
        // SUM of BIGINT is NUMERIC: cast back; COUNT is BIGINT; CASE of 1/0 is INTEGER.
        let e = one_int(&pg, "SELECT SUM(big) FROM t", &[]).unwrap_err();
        assert!(
            e.contains("NUMERIC") && e.contains("CAST it AS BIGINT"),
            "{e}"
        );
        assert_eq!(
            one_int(&pg, "SELECT CAST(SUM(big) AS BIGINT) FROM t", &[]),
            Ok(Some(3_000_000_004))
        );
        assert_eq!(one_int(&pg, "SELECT SUM(small) FROM t", &[]), Ok(Some(7)));
        assert_eq!(
            one_int(
                &pg,
                "SELECT CASE WHEN flag THEN 1 ELSE 0 END FROM t ORDER BY big",
                &[]
            ),
            Ok(Some(0))
        );
        assert_eq!(
            one_int(&pg, "SELECT COUNT(*) FILTER (WHERE flag) FROM t", &[]),
            Ok(Some(1))
        );
        let row = pg
            .query_opt("SELECT AVG(small) FROM t", &[])
            .unwrap()
            .unwrap();
        assert!(real(&row, 0).unwrap_err().contains("DOUBLE PRECISION"));
        // NULL fits any type; a placeholder with no type to infer is PostgreSQL's error.
        assert_eq!(
            one_int(&pg, "SELECT COALESCE(?1, 3)", &[Arg::Null]),
            Ok(Some(3))
        );
        // …and a placeholder's first place decides its type: `?1 IS NULL` first says nothing.
        let (null_first, null_last) = (
            "SELECT COUNT(*) FROM t WHERE ?1 IS NULL OR big = ?1",
            "SELECT COUNT(*) FROM t WHERE big = ?1 OR ?1 IS NULL",
        );
        assert_eq!(one_int(&pg, null_last, &[Arg::Null]), Ok(Some(2)));
        let e = one_int(&pg, null_first, &[Arg::Null]).unwrap_err();
        assert!(
            e.contains("could not determine data type of parameter $1"),
            "{e}"
        );
        let e = pg
            .execute("SELECT 1 WHERE ?1 IS NULL", &[Arg::Null])
            .unwrap_err();
        assert_eq!(e.code(), Some("42P18"), "{e}");
        assert!(!e.is_connection_lost());
        assert_eq!(
            one_int(&pg, "SELECT 1 LIMIT ?1", &[Arg::Int(1)]),
            Ok(Some(1))
        );
    }

    #[test]
    fn a_statement_kept_from_before_a_schema_change_is_prepared_again() {
        let cluster = Cluster::start(&Options::default());
        let pg = cluster.connect("");
        pg.batch_execute("CREATE TABLE t (a BIGINT); INSERT INTO t VALUES (1)")
            .unwrap();
        let columns = |pg: &Pg| pg.query_opt("SELECT * FROM t", &[]).unwrap().unwrap().len();
        assert_eq!(columns(&pg), 1);
        pg.batch_execute("ALTER TABLE t ADD COLUMN b TEXT").unwrap();
        assert_eq!(columns(&pg), 2);
        pg.batch_execute("ALTER TABLE t ADD COLUMN c TEXT").unwrap();
        let mut seen = 0;
        pg.for_each::<PgError, _>("SELECT * FROM t", &[], |row| {
            seen = row.len();
            Ok(())
        })
        .unwrap();
        assert_eq!(seen, 3);
        assert_eq!(pg.statements.borrow().len(), 1);
        // A statement's own error is not a lost connection, and the connection goes on.
        let e = pg.execute("SELEC 1", &[]).unwrap_err();
        assert_eq!(e.code(), Some("42601"));
        assert!(!e.is_connection_lost(), "{e}");
        assert!(e.to_string().contains("ERROR 42601: syntax error"), "{e}");
        assert_eq!(one_int(&pg, "SELECT 1", &[]), Ok(Some(1)));
    }

    #[test]
    fn a_statement_sent_while_rows_are_read_is_refused_instead_of_waiting_forever() {
        let cluster = Cluster::start(&Options::default());
        let pg = cluster.connect("");
        let mut refused = None;
        pg.for_each::<PgError, _>("SELECT * FROM generate_series(1, 3)", &[], |_| {
            refused = Some(pg.execute("SELECT 1", &[]).unwrap_err());
            Ok(())
        })
        .unwrap();
        let e = refused.unwrap();
        assert!(e.to_string().contains("still being read"), "{e}");
        // An error of the callback ends the reading, and the connection is usable again.
        let stopped: Result<(), PgError> =
            pg.for_each("SELECT * FROM generate_series(1, 100000)", &[], |_| {
                Err(PgError::new(pg.target(), ErrorKind::Busy))
            });
        assert!(stopped.is_err());
        assert_eq!(one_int(&pg, "SELECT 2", &[]), Ok(Some(2)));
    }

    #[test]
    fn a_unix_socket_directory_is_reached_in_clear_text() {
        let cluster = Cluster::start(&Options::default());
        let url = format!(
            "postgres://postgres@/postgres?host={}&port={}",
            cluster.dir.path().display(),
            cluster.port
        );
        let pg = Pg::connect(&parsed(&url), None).unwrap();
        assert_eq!(
            one_int(
                &pg,
                "SELECT COUNT(*) FROM pg_stat_activity WHERE client_port = -1 AND pid = pg_backend_pid()",
                &[]
            ),
            Ok(Some(1)),
        );
    }

    fn sql_from_runtime(pg: &Pg) {
        pg.batch_execute("CREATE TABLE IF NOT EXISTS r (x BIGINT)")
            .unwrap();
        for x in 0..200 {
            pg.execute("INSERT INTO r VALUES (?1)", &[Arg::Int(x)])
                .unwrap();
        }
        let mut n = 0;
        pg.for_each::<PgError, _>("SELECT x FROM r", &[], |_| {
            n += 1;
            Ok(())
        })
        .unwrap();
        assert!(n >= 200);
    }

    #[test]
    fn it_works_from_inside_a_tokio_runtime_of_either_flavour() {
        let cluster = Cluster::start(&Options::default());
        let target = parsed(&cluster.url("127.0.0.1", ""));
        let current = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        current.block_on(async {
            let pg = Pg::connect(&target, None).unwrap();
            sql_from_runtime(&pg);
            // Many connections from one task: no budget of the caller's runtime is spent.
            for _ in 0..150 {
                drop(Pg::connect(&target, None).unwrap());
            }
        });
        let multi = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let on_worker = target.clone();
        multi
            .block_on(async move {
                tokio::spawn(async move {
                    let pg = Pg::connect(&on_worker, None).unwrap();
                    sql_from_runtime(&pg);
                    pg
                })
                .await
            })
            .map(|pg| sql_from_runtime(&pg))
            .unwrap();
        // And a connection made on a plain thread, used on another.
        let pg = Pg::connect(&target, None).unwrap();
        std::thread::spawn(move || sql_from_runtime(&pg))
            .join()
            .unwrap();
    }

    #[test]
    fn a_server_stopped_mid_session_is_a_lost_connection() {
        let cluster = Cluster::start(&Options::default());
        // A session ended by the server (an administrator's pg_terminate_backend): its last
        // words are in the error.
        let (doomed, admin) = (cluster.connect(""), cluster.connect(""));
        let pid = one_int(&doomed, "SELECT pg_backend_pid()", &[]).unwrap();
        let terminate = "SELECT CASE WHEN pg_terminate_backend(CAST(?1 AS INTEGER)) THEN 1 END";
        assert_eq!(
            one_int(&admin, terminate, &[Arg::Int(pid.unwrap())]),
            Ok(Some(1))
        );
        let e = doomed.execute("SELECT 1", &[]).unwrap_err();
        assert!(e.is_connection_lost(), "{e}");
        assert!(e.to_string().contains("57P01"), "{e}");
        // The server itself stopped.
        let pg = cluster.connect("");
        assert_eq!(one_int(&pg, "SELECT 1", &[]), Ok(Some(1)));
        cluster.stop();
        let e = pg.execute("SELECT 1", &[]).unwrap_err();
        assert!(e.is_connection_lost(), "{e}");
        let e = pg.execute("SELECT 2", &[]).unwrap_err();
        assert!(e.is_connection_lost(), "{e}");
        assert!(
            e.to_string()
                .contains(&format!("127.0.0.1:{}", cluster.port)),
            "{e}"
        );
        let again = Pg::connect(pg.target(), None).unwrap_err();
        assert!(again.is_connection_lost(), "{again}");
    }

    #[test]
    fn tls_modes_check_what_libpq_checks_and_never_fall_back_to_clear_text() {
        let cluster = Cluster::start(&Options {
            tls: true,
            ..Options::default()
        });
        let (ca, other_ca) = (cluster.tls_file("ca.crt"), cluster.tls_file("other-ca.crt"));
        let try_connect =
            |host: &str, query: &str| Pg::connect(&parsed(&cluster.url(host, query)), None);
        let encrypted = |pg: &Pg| {
            let sql = "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()";
            boolean(&pg.query_opt(sql, &[]).unwrap().unwrap(), 0).unwrap()
        };
        let passes = |host: &str, query: &str| {
            let pg = try_connect(host, query).unwrap_or_else(|e| panic!("{host} {query}: {e}"));
            assert_eq!(encrypted(&pg), Some(true), "{query}");
        };
        let fails = |host: &str, query: &str, why: &str| {
            let e = try_connect(host, query).unwrap_err();
            assert!(e.to_string().contains(why), "{host} {query}: {e}");
            assert!(!e.is_connection_lost(), "{e}");
        };
        // The certificate names 127.0.0.1 only, so `localhost` is the wrong name for it.
        passes(
            "127.0.0.1",
            &format!("sslmode=verify-full&sslrootcert={ca}"),
        );
        fails(
            "localhost",
            &format!("sslmode=verify-full&sslrootcert={ca}"),
            "certificate not valid for name",
        );
        passes("localhost", &format!("sslmode=verify-ca&sslrootcert={ca}"));
        passes("127.0.0.1", &format!("sslmode=verify-ca&sslrootcert={ca}"));
        for mode in ["verify-full", "verify-ca"] {
            fails(
                "127.0.0.1",
                &format!("sslmode={mode}&sslrootcert={other_ca}"),
                "UnknownIssuer",
            );
        }
        // The system's roots do not know the test CA.
        fails("127.0.0.1", "sslmode=verify-full", "UnknownIssuer");
        passes("localhost", "sslmode=require");
        let missing = format!("sslmode=verify-full&sslrootcert={ca}.missing");
        fails("127.0.0.1", &missing, "ca.crt.missing: No such file");
        let pg = try_connect("127.0.0.1", "sslmode=disable").unwrap();
        assert_eq!(encrypted(&pg), Some(false));
    }

    #[test]
    fn require_against_a_server_without_tls_fails_and_disable_connects() {
        let cluster = Cluster::start(&Options::default());
        for mode in ["require", "verify-ca", "verify-full"] {
            let target = parsed(&cluster.url("127.0.0.1", &format!("sslmode={mode}")));
            let e = Pg::connect(&target, None).unwrap_err();
            assert!(e.to_string().contains("server does not support TLS"), "{e}");
            assert!(!e.is_connection_lost(), "{e}");
        }
        let pg = cluster.connect("sslmode=disable");
        assert_eq!(one_int(&pg, "SELECT 1", &[]), Ok(Some(1)));
    }

    #[test]
    fn a_password_is_given_to_the_server_and_never_shown() {
        let cluster = Cluster::start(&Options {
            password: Some("Corr3ct-h0rse"),
            ..Options::default()
        });
        let target = parsed(&cluster.url("127.0.0.1", ""));
        let pg = Pg::connect(&target, Some("Corr3ct-h0rse")).unwrap();
        assert_eq!(one_int(&pg, "SELECT 1", &[]), Ok(Some(1)));
        let e = Pg::connect(&target, Some("Wr0ng-h0rse")).unwrap_err();
        assert_eq!(e.code(), Some("28P01"), "{e}");
        assert!(!e.is_connection_lost());
        let shown = format!("{e} {e:?}");
        assert!(shown.contains("password authentication failed"), "{shown}");
        assert!(!shown.contains("h0rse"), "{shown}");
        let e = Pg::connect(&target, None).unwrap_err();
        assert!(e.to_string().contains("password missing"), "{e}");
    }

    // --- Leases (`store/lease.rs`) on the schema's version 2 -----------------------------

    fn ledger_on(pg: Pg) -> crate::store::ledger::Ledger {
        crate::store::ledger::Ledger {
            db: crate::store::db::Db::Postgres(Box::new(pg)),
            path: "postgres-test".into(),
            synchronous: "FULL",
            frequency_cap: None,
            daily_cap: None,
        }
    }

    /// `store/lookup.rs`'s chunks on PostgreSQL: its parameters' types inferred from an `IN`
    /// list, its row ids an identity column.
    #[test]
    fn chunks_read_what_lookups_by_key_find_on_postgres() {
        let cluster = Cluster::start(&Options::default());
        let db = crate::store::db::Db::Postgres(Box::new(cluster.connect("sslmode=disable")));
        crate::store::postgres_schema::migrate(&db).unwrap();
        let crate::store::db::Db::Postgres(pg) = db else {
            unreachable!()
        };
        crate::store::lookup::tests::chunks_read_what_lookups_by_key_find(&mut ledger_on(*pg));
    }

    fn one_text(pg: &Pg, sql: &str) -> Option<String> {
        let row = pg.query_opt(sql, &[]).unwrap().expect("a row");
        super::text(&row, 0).unwrap()
    }

    #[test]
    fn a_version_1_store_is_migrated_to_leases_and_a_lapsed_run_is_recovered() {
        use crate::model::{Channel, State};
        use crate::store::claims::fixtures::{claim, outcome};
        use crate::store::ledger::{Claimed, LedgerError};
        let cluster = Cluster::start(&Options::default());
        let pg = cluster.connect("sslmode=disable");
        // A store as the first version left it, with a run that never finished.
        pg.batch_execute(
            "CREATE TABLE outreach_schema (version BIGINT NOT NULL);
             INSERT INTO outreach_schema (version) VALUES (1);",
        )
        .unwrap();
        pg.batch_execute(crate::store::postgres_schema::STEPS[0])
            .unwrap();
        pg.batch_execute(
            "INSERT INTO runs (campaign, pid, started_at) VALUES ('c', 7, '2026-01-01T00:00:00Z')",
        )
        .unwrap();
        let db = crate::store::db::Db::Postgres(Box::new(pg));
        crate::store::postgres_schema::migrate(&db).unwrap();
        let crate::store::db::Db::Postgres(pg) = db else {
            unreachable!()
        };
        assert_eq!(
            one_int(&pg, "SELECT MAX(version) FROM outreach_schema", &[]),
            Ok(Some(3))
        );
        assert_eq!(
            one_text(
                &pg,
                "SELECT COALESCE(host, 'none') || CAST(heartbeat_at AS TEXT) FROM runs"
            ),
            None,
            "the old run has neither"
        );
        let mut l = ledger_on(*pg);
        let admin = cluster.connect("sslmode=disable");
        let now = chrono::Utc::now();
        l.fingerprint_change("c", "fp", now).unwrap();
        // The old run has no lease: recovery marks it lost.
        assert_eq!(l.recover_interrupted("c", now).unwrap(), 0);
        let (a, _) = l.begin_run("c", now).unwrap();
        let (b, _) = l.begin_run("c", now).unwrap();
        let pg = &admin;
        assert_eq!(
            one_text(
                pg,
                "SELECT string_agg(COALESCE(outcome, '-'), ',' ORDER BY id) FROM runs"
            ),
            Some("lost,-,-".into())
        );
        assert_eq!(
            one_int(
                pg,
                "SELECT COUNT(*) FROM runs WHERE host IS NOT NULL AND heartbeat_at > now() - interval '1 minute'",
                &[]
            ),
            Ok(Some(2))
        );
        // Two live runs claim side by side; a's claims are in flight when its lease lapses.
        let granted = |c: &[Claimed]| c.iter().all(|c| c.granted().is_some());
        let claims_a = l
            .commit("c", (a, "fp"), &[], &[claim("x"), claim("y")], now)
            .unwrap();
        let claims_b = l.commit("c", (b, "fp"), &[], &[claim("z")], now).unwrap();
        assert!(granted(&claims_a) && granted(&claims_b));
        l.commit("c", (a, "fp"), &[outcome("x", State::Sent)], &[], now)
            .unwrap();
        assert_eq!(l.recover_interrupted("c", now).unwrap(), 0, "both are live");
        assert_eq!(l.live_runs("c").unwrap(), 2);
        let rank = |r| l.live_runs_before("c", r).unwrap();
        assert_eq!((rank(a), rank(b)), (0, 1), "b began after a");
        pg.execute(
            "UPDATE runs SET heartbeat_at = now() - interval '1 hour' WHERE id = ?1",
            &[Arg::Int(a)],
        )
        .unwrap();
        assert!(matches!(
            l.commit("c", (a, "fp"), &[], &[claim("w")], now),
            Err(LedgerError::LeaseLost { .. })
        ));
        assert_eq!(l.recover_interrupted("c", now).unwrap(), 1, "a's y only");
        assert_eq!(l.live_runs("c").unwrap(), 1);
        assert!(!l.heartbeat(a).unwrap(), "a is lost: it must stop");
        assert!(l.heartbeat(b).unwrap());
        let priors = l.priors("c").unwrap();
        let state = |addr| priors.get(Channel::Email, addr).map(|p| p.state);
        assert_eq!(
            [state("x"), state("y"), state("z"), state("w")],
            [
                Some(State::Sent),
                Some(State::Unknown),
                Some(State::Sending),
                None
            ]
        );
        let pg = &admin;
        assert_eq!(
            one_text(
                pg,
                "SELECT string_agg(COALESCE(outcome, '-'), ',' ORDER BY id) FROM runs"
            ),
            Some("lost,lost,-".into())
        );
        // b's plan did not see y unknown: b may not take it over (it may have gone); a run
        // that resends unknown messages may.
        let y = claim("y");
        assert_eq!(
            l.commit("c", (b, "fp"), &[], std::slice::from_ref(&y), now)
                .unwrap(),
            [Claimed::Refused]
        );
        let resumed = crate::store::ledger::Claim {
            resumes_unknown: true,
            ..y
        };
        let claimed = l.commit("c", (b, "fp"), &[], &[resumed], now).unwrap();
        assert!(granted(&claimed));
        // The pace: a block of slots a period apart, the next block after it, whoever asks.
        let ms = std::time::Duration::from_millis;
        let first = l.reserve_slots("c", "sms", ms(100), 3).unwrap();
        let second = l.reserve_slots("c", "sms", ms(100), 2).unwrap();
        assert!(
            first[0] < ms(50) && first[2] > ms(150) && first[2] < ms(250),
            "{first:?}"
        );
        assert!(second[0] > ms(250) && second[1] < ms(450), "{second:?}");
    }
}
