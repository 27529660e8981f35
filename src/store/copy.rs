//! Copying a SQLite ledger into a PostgreSQL one (`outreach state migrate`): every table, row for
//! row with its keys (so the tokens, SMS ids, receipts, bounces and approval rows still point at
//! their messages and approvals), in one transaction of the target, checked before it commits.
//!
//! Safe to run again: a row already in the target is compared with the source's and left alone
//! when it is the same; one that differs (another ledger's row under the same key) stops the
//! copy, and nothing of it is kept. The target's identity sequences are moved past the copied
//! keys, so the rows it makes afterwards get new ones.

use super::db::{Arg, Begin, Db, DbError, DbResult};
use super::sqlite::{Ledger, LedgerError};

/// A table: its name, its columns (keys first), and how many of them make its key. Rows that
/// others point at come first.
const TABLES: [(&str, &str, usize); 15] = [
    ("campaigns", "id, fingerprint, started_at", 1),
    ("campaign_files", "campaign, file, seen_at", 1),
    (
        "messages",
        "rowid, campaign, channel, address, contact_id, state, permanent, attempts, \
         provider_id, last_error, fingerprint, run_id, created_at, updated_at, sent_at, consent, \
         consent_source, segments",
        1,
    ),
    (
        "runs",
        "id, campaign, pid, started_at, finished_at, outcome, summary",
        1,
    ),
    ("suppressions", "address, reason, source, added_at", 1),
    (
        "suppression_lifts",
        "id, address, reason, source_was, reason_was, added_at_was, lifted_at, lifted_by",
        1,
    ),
    (
        "approvals",
        "id, campaign, approved_by, approved_at, fingerprint",
        1,
    ),
    ("approval_rows", "approval, kind, file, key, hash", 4),
    ("tokens", "token, message", 1),
    ("sms_parts", "provider_id, message, part, parts", 1),
    (
        "receipts",
        "provider_id, state, status, code, carrier_time, received_at, updated_at",
        1,
    ),
    (
        "replies",
        "id, provider_id, campaign, from_number, to_number, body, keyword, action, part_of, \
         part, parts, received_at, read_at",
        1,
    ),
    ("unsubscribes", "message, how, at", 1),
    ("processed_mail", "mailbox, id, class, processed_at", 2),
    (
        "bounces",
        "id, message, address, kind, status, diagnostic, domain, at",
        1,
    ),
];

/// The tables whose integer key the target makes itself (an identity), and that key.
const IDENTITIES: [(&str, &str); 6] = [
    ("messages", "rowid"),
    ("runs", "id"),
    ("suppression_lifts", "id"),
    ("approvals", "id"),
    ("replies", "id"),
    ("bounces", "id"),
];

/// Rows sent in one `INSERT`.
const CHUNK: usize = super::db::INSERT_ROWS;

/// What the copy found and did for one table.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TableCopy {
    pub table: &'static str,
    /// Rows in the SQLite ledger.
    pub source: u64,
    /// Rows written to the target now.
    pub copied: u64,
    /// Rows the target held already, the same as the source's.
    pub already: u64,
}

/// A value read from SQLite, owned until it is written.
#[derive(Debug, Clone, PartialEq)]
enum Value {
    Null,
    Int(i64),
    Real(f64),
    Text(String),
}

impl Value {
    fn arg(&self) -> Arg<'_> {
        match self {
            Value::Null => Arg::Null,
            Value::Int(v) => Arg::Int(*v),
            Value::Real(v) => Arg::Real(*v),
            Value::Text(s) => Arg::Text(s),
        }
    }
}

impl Ledger {
    /// Copies every row of this (SQLite) ledger into `target` (PostgreSQL), in one transaction
    /// of the target; returns what it did, table by table.
    pub fn copy_into(&self, target: &Ledger) -> Result<Vec<TableCopy>, LedgerError> {
        let source = self.db.sqlite().ok_or_else(|| LedgerError::Unusable {
            path: self.path.clone(),
            message: "the ledger to copy from must be a SQLite file".into(),
        })?;
        let fail = |e: DbError| super::sqlite::store_error(&target.path)(e);
        target
            .db
            .transaction(Begin::Deferred, |tx| {
                let mut done = Vec::with_capacity(TABLES.len());
                for (table, columns, key) in TABLES {
                    done.push(copy_table(source, tx, table, columns, key)?);
                }
                for (table, key) in IDENTITIES {
                    tx.execute_batch(&format!(
                        "SELECT setval(pg_get_serial_sequence('{table}', '{key}'),
                                       GREATEST(COALESCE(MAX({key}), 0), 1),
                                       COALESCE(MAX({key}), 0) > 0)
                         FROM {table}"
                    ))?;
                }
                Ok(done)
            })
            .map_err(fail)
    }
}

/// Copies one table: each chunk inserted (`ON CONFLICT DO NOTHING`), and the rows of a chunk
/// that the target already held compared with the source's.
fn copy_table(
    source: &rusqlite::Connection,
    target: &Db,
    table: &'static str,
    columns: &str,
    key: usize,
) -> DbResult<TableCopy> {
    let width = columns.split(',').count();
    let mut stmt = source.prepare(&format!("SELECT {columns} FROM {table}"))?;
    let mut rows = stmt.query([])?;
    let mut done = TableCopy {
        table,
        source: 0,
        copied: 0,
        already: 0,
    };
    let mut chunk: Vec<Vec<Value>> = Vec::with_capacity(CHUNK);
    let flush = |chunk: &mut Vec<Vec<Value>>, done: &mut TableCopy| -> DbResult<()> {
        if chunk.is_empty() {
            return Ok(());
        }
        let copied = insert(target, table, columns, chunk)? as u64;
        if copied < chunk.len() as u64 {
            for row in chunk.iter() {
                compare(target, table, columns, key, row)?;
            }
        }
        done.source += chunk.len() as u64;
        done.copied += copied;
        done.already += chunk.len() as u64 - copied;
        chunk.clear();
        Ok(())
    };
    while let Some(r) = rows.next()? {
        let mut row = Vec::with_capacity(width);
        for i in 0..width {
            row.push(match r.get_ref(i)? {
                rusqlite::types::ValueRef::Null => Value::Null,
                rusqlite::types::ValueRef::Integer(v) => Value::Int(v),
                rusqlite::types::ValueRef::Real(v) => Value::Real(v),
                rusqlite::types::ValueRef::Text(t) => {
                    Value::Text(String::from_utf8_lossy(t).into_owned())
                }
                rusqlite::types::ValueRef::Blob(_) => {
                    return Err(DbError::Schema(format!(
                        "{table}: a column holds bytes where the ledger keeps text or numbers"
                    )));
                }
            });
        }
        chunk.push(row);
        if chunk.len() == CHUNK {
            flush(&mut chunk, &mut done)?;
        }
    }
    flush(&mut chunk, &mut done)?;
    Ok(done)
}

/// Whether column `i` is `NULL`, whatever its type.
fn is_null(r: &super::db::Row<'_>, i: usize) -> bool {
    r.str(i).is_ok_and(|v| v.is_none())
        || r.get::<Option<i64>>(i).is_ok_and(|v| v.is_none())
        || r.get::<Option<f64>>(i).is_ok_and(|v| v.is_none())
}

/// Inserts `rows` in one statement, leaving out those whose key the target holds; returns how
/// many it wrote.
fn insert(target: &Db, table: &str, columns: &str, rows: &[Vec<Value>]) -> DbResult<usize> {
    target.insert_rows(
        &format!("{table} ({columns})"),
        "ON CONFLICT DO NOTHING",
        rows[0].len(),
        rows.iter().map(|row| row.iter().map(Value::arg)),
    )
}

/// Checks that the target's row under `row`'s key is `row`; an error naming the table (never
/// the values: they may be a patient's address) when it is another.
fn compare(target: &Db, table: &str, columns: &str, key: usize, row: &[Value]) -> DbResult<()> {
    let names: Vec<&str> = columns.split(',').map(str::trim).collect();
    let condition: Vec<String> = names[..key]
        .iter()
        .enumerate()
        .map(|(i, name)| format!("{name} = ?{}", i + 1))
        .collect();
    let sql = format!(
        "SELECT {columns} FROM {table} WHERE {}",
        condition.join(" AND ")
    );
    let args: Vec<Arg<'_>> = row[..key].iter().map(Value::arg).collect();
    let same = target.query_opt(&sql, &args, |r| {
        for (i, value) in row.iter().enumerate() {
            let equal = match value {
                Value::Null => is_null(r, i),
                Value::Int(v) => r.get::<Option<i64>>(i)? == Some(*v),
                Value::Real(v) => r.get::<Option<f64>>(i)? == Some(*v),
                Value::Text(t) => r.str(i)? == Some(t.as_str()),
            };
            if !equal {
                return Ok(Some(names[i]));
            }
        }
        Ok(None)
    })?;
    match same {
        Some(None) => Ok(()),
        Some(Some(column)) => Err(DbError::Schema(format!(
            "the database already holds another row of {table} under the same key (its \
             {column} differs): it is not this ledger's copy; migrate into an empty database"
        ))),
        // Not inserted and not there: the row met another unique key (a message of the same
        // campaign, channel and address under another row id).
        None => Err(DbError::Schema(format!(
            "the database already holds a row of {table} that clashes with this ledger's (the \
             same campaign, channel and address under another id): it is not this ledger's \
             copy; migrate into an empty database"
        ))),
    }
}
