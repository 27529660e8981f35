//! The group-commit writer: for the length of a run one thread owns the ledger, and every claim
//! and outcome goes through it. Requests that arrive while a commit is under way join the next
//! one, so one fsync covers many claims and the ledger keeps up with the fastest transport,
//! without weakening never-twice: a claim is acknowledged only after the commit that holds it.
//! Workers hold a [`WriterHandle`]: a claim and a flush are awaited, an outcome is only queued.

use std::sync::mpsc;

use chrono::{DateTime, Utc};

use super::claims::{Claim, Claimed, Outcome};
use super::sqlite::{Ledger, LedgerError};

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Channel, State};
    use crate::store::claims::fixtures::{claim, outcome};

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
}
