//! The reference of `bench/listen.sh`: a bare axum server that commits, per request, the SQLite
//! write `outreach listen` makes for it, and answers once it is committed. No signature check,
//! no group commit, no pages: one connection to a copy of the ledger (write-ahead log,
//! `synchronous = FULL`, as the ledger is opened), behind a mutex, each request one transaction
//! in a blocking task. The statements are those of `store/feedback.rs`.
//!
//!     cargo run --release --example listen_reference -- ADDR LEDGER [--null]
//!
//! - `POST /sms/{campaign}/status`: the form's `MessageSid`, `MessageStatus` and `ErrorCode`
//!   upserted into `receipts` (a final state kept), and the id looked up in `sms_parts`; 204.
//! - `POST /unsubscribe/{token}`: the token's message looked up, its address inserted into
//!   `suppressions` and the message into `unsubscribes`; 200, or 404 for an unknown token.
//!
//! With `--null` it answers the same without touching the ledger: the ceiling of the load
//! client and axum on this machine, to show the client is not what limits the others.
//! Prints the address it listens on, then serves until killed.

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::post;
use rusqlite::{Connection, OptionalExtension, params};

struct Db {
    conn: Option<Mutex<Connection>>,
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (addr, ledger, null) = match &args[..] {
        [_, a, l] => (a, l, false),
        [_, a, l, n] if n == "--null" => (a, l, true),
        _ => {
            eprintln!("usage: listen_reference ADDR LEDGER [--null]");
            std::process::exit(2);
        }
    };
    let conn = (!null).then(|| {
        let conn = Connection::open(ledger).unwrap_or_else(|e| panic!("{ledger}: {e}"));
        conn.execute_batch(
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA busy_timeout = 10000;",
        )
        .expect("pragmas");
        Mutex::new(conn)
    });
    let db = Arc::new(Db { conn });
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a runtime")
        .block_on(async move {
            let listener = tokio::net::TcpListener::bind(addr).await.expect("bind");
            println!("{}", listener.local_addr().expect("an address"));
            let app = Router::new()
                .route("/sms/{campaign}/status", post(receipt))
                .route("/unsubscribe/{token}", post(unsubscribe))
                .with_state(db);
            axum::serve(listener, app).await.expect("serve");
        });
}

/// Runs `f` on the connection in a blocking task; `None` when there is none (`--null`).
async fn write<T: Send + 'static>(
    db: &Arc<Db>,
    f: impl FnOnce(&mut Connection) -> rusqlite::Result<T> + Send + 'static,
) -> Result<Option<T>, StatusCode> {
    if db.conn.is_none() {
        return Ok(None);
    }
    let db = db.clone();
    tokio::task::spawn_blocking(move || {
        let mut conn = db.conn.as_ref().expect("a ledger").lock().expect("a lock");
        f(&mut conn)
    })
    .await
    .map_err(|_| StatusCode::INTERNAL_SERVER_ERROR)?
    .map(Some)
    .map_err(|_| StatusCode::SERVICE_UNAVAILABLE)
}

fn now() -> String {
    chrono::Utc::now()
        .format("%Y-%m-%dT%H:%M:%S%.6fZ")
        .to_string()
}

async fn receipt(State(db): State<Arc<Db>>, body: Bytes) -> StatusCode {
    let mut id = None;
    let mut status = None;
    let mut code = None;
    for (k, v) in form_urlencoded::parse(&body) {
        match &*k {
            "MessageSid" => id = Some(v.into_owned()),
            "MessageStatus" => status = Some(v.into_owned()),
            "ErrorCode" if !v.is_empty() => code = Some(v.into_owned()),
            _ => {}
        }
    }
    let (Some(id), Some(status)) = (id, status) else {
        return StatusCode::BAD_REQUEST;
    };
    let state = match status.as_str() {
        "delivered" => "delivered",
        "undelivered" | "failed" => "undelivered",
        _ => "pending",
    };
    let done = write(&db, move |conn| {
        let tx = conn.transaction()?;
        tx.prepare_cached(
            "INSERT INTO receipts (provider_id, state, status, code, carrier_time, received_at,
                                   updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)
             ON CONFLICT (provider_id) DO UPDATE SET state = excluded.state,
                 status = excluded.status, code = excluded.code,
                 carrier_time = excluded.carrier_time, updated_at = excluded.updated_at
             WHERE receipts.state = 'pending'",
        )?
        .execute(params![id, state, status, code, None::<String>, now()])?;
        let _matched: bool = tx
            .prepare_cached("SELECT EXISTS (SELECT 1 FROM sms_parts WHERE provider_id = ?1)")?
            .query_row([&id], |r| r.get(0))?;
        tx.commit()?;
        Ok(())
    })
    .await;
    match done {
        Ok(_) => StatusCode::NO_CONTENT,
        Err(s) => s,
    }
}

async fn unsubscribe(State(db): State<Arc<Db>>, Path(token): Path<String>) -> StatusCode {
    let done = write(&db, move |conn| {
        let tx = conn.transaction()?;
        let found: Option<(String, String)> = tx
            .prepare_cached(
                "SELECT m.campaign, m.address FROM tokens t JOIN messages m ON m.rowid = t.message
                 WHERE t.token = ?1",
            )?
            .query_row([&token], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?;
        let Some((campaign, address)) = found else {
            return Ok(false);
        };
        let now = now();
        tx.prepare_cached(
            "INSERT INTO suppressions (address, reason, source, added_at) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (address) DO NOTHING",
        )?
        .execute(params![
            address,
            format!("unsubscribed by its link (campaign {campaign})"),
            "unsubscribe link",
            now
        ])?;
        tx.prepare_cached(
            "INSERT INTO unsubscribes (message, how, at)
             SELECT message, ?2, ?3 FROM tokens WHERE token = ?1
             ON CONFLICT (message) DO NOTHING",
        )?
        .execute(params![token, "one-click", now])?;
        tx.commit()?;
        Ok(true)
    })
    .await;
    match done {
        Ok(Some(false)) => StatusCode::NOT_FOUND,
        Ok(_) => StatusCode::OK,
        Err(s) => s,
    }
}
