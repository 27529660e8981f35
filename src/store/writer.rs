//! The group-commit writer: for the length of a run one thread owns the ledger, and every claim
//! and outcome goes through it. Requests that arrive while a commit is under way join the next
//! one, so one fsync covers many claims and the ledger keeps up with the fastest transport,
//! without weakening never-twice: a claim is acknowledged only after the commit that holds it.
//! Workers hold a [`WriterHandle`]: a claim and a flush are awaited, an outcome is only queued.
//! Before a commit that records outcomes the writer calls the run's [`BeforeCommit`], which makes
//! durable what those outcomes speak of (the file outboxes), so the ledger never records as
//! `sent` a message that a power cut could still take away.

use std::sync::mpsc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use tokio::sync::oneshot;

use super::claims::{Claim, Claimed};
use super::outcomes::Outcome;
use super::sqlite::{Ledger, LedgerError};
use crate::model::Channel;

/// The clock the writer stamps rows with.
pub type ClockFn = std::sync::Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>;

/// Called with a batch's outcomes before the commit that records them; its error (why what
/// they speak of could not be made durable) fails that commit like the ledger's own error would.
pub type BeforeCommit = Box<dyn FnMut(&[Outcome]) -> Result<(), String> + Send>;

/// Most requests one commit takes.
const MAX_BATCH: usize = 2048;

/// A commit of fewer requests than this waits up to [`GATHER`] for more.
const GATHER_MIN: usize = 64;
const GATHER: Duration = Duration::from_micros(1500);
/// How often a gathering writer looks for more requests.
const GATHER_NAP: Duration = Duration::from_micros(250);
/// How long the writer keeps trying a commit that another process's write lock holds up (a
/// `purge` of another campaign rebuilding the file, say), on top of SQLite's own wait.
const BUSY_PATIENCE: Duration = Duration::from_secs(120);

/// Where a claim's answer goes: the claim's rows once they are on disk, or why not.
type ClaimReply = oneshot::Sender<Result<Vec<Claimed>, LedgerError>>;
/// Where a flush's answer goes, once everything queued before it is committed.
type FlushReply = oneshot::Sender<Result<(), LedgerError>>;
/// Where a look's answer goes: for each address asked, whether it is taken.
type LookReply = oneshot::Sender<Result<Vec<bool>, LedgerError>>;

enum Request {
    Claim(Vec<Claim>, ClaimReply),
    Record(Outcome),
    Flush(FlushReply),
    /// Which of these addresses on a channel are `sent` or in flight ([`Ledger::taken`]),
    /// read after the commit it joins.
    Look(Channel, Vec<String>, LookReply),
}

/// The group-commit writer: one thread owns the ledger; claims and outcomes sent to it while a
/// commit is under way are committed together in the next one.
pub struct Writer {
    tx: mpsc::Sender<Request>,
    thread: Option<std::thread::JoinHandle<Ledger>>,
}

impl Writer {
    /// Starts the writer thread for `campaign`'s run `run`, whose claims carry `fingerprint`;
    /// `before` runs before every commit that records outcomes.
    pub fn start(
        ledger: Ledger,
        campaign: String,
        run: i64,
        fingerprint: String,
        clock: ClockFn,
        before: Option<BeforeCommit>,
    ) -> Self {
        let (tx, rx) = mpsc::channel::<Request>();
        let owner = Owner {
            ledger,
            campaign,
            run,
            fingerprint,
            clock,
            before,
        };
        let thread = std::thread::Builder::new()
            .name("ledger".into())
            .spawn(move || owner.serve(&rx))
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
    /// Claims one message: granted with its row, refused (already sent or in flight), or
    /// suppressed since the plan was made. Returns once the claim is on disk.
    pub async fn claim(&self, claim: Claim) -> Result<Claimed, LedgerError> {
        let (tx, rx) = oneshot::channel();
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
        let (tx, rx) = oneshot::channel();
        self.tx
            .send(Request::Flush(tx))
            .map_err(|_| LedgerError::WriterGone)?;
        rx.await.map_err(|_| LedgerError::WriterGone)?
    }

    /// For each of `addresses` on `channel`, whether the campaign has it `sent` or in flight
    /// (this run's claims queued so far included): a claim of it would be refused.
    pub async fn taken(
        &self,
        channel: Channel,
        addresses: Vec<String>,
    ) -> Result<Vec<bool>, LedgerError> {
        let (tx, rx) = oneshot::channel();
        self.tx
            .send(Request::Look(channel, addresses, tx))
            .map_err(|_| LedgerError::WriterGone)?;
        rx.await.map_err(|_| LedgerError::WriterGone)?
    }
}

/// What the writer thread owns: the ledger, and whose claims it writes.
struct Owner {
    ledger: Ledger,
    campaign: String,
    run: i64,
    fingerprint: String,
    clock: ClockFn,
    before: Option<BeforeCommit>,
}

impl Owner {
    /// Commits what the handles send, a batch at a time, until every handle is gone; returns the
    /// ledger. After a failed commit nothing more is written: every later request gets its error.
    fn serve(mut self, rx: &mpsc::Receiver<Request>) -> Ledger {
        // A run dirties the same index pages commit after commit: checkpointing every 10,000 WAL
        // pages instead of 1,000 copies each of them back to the database once, not ten times (a
        // fifth less ledger time). The WAL file keeps its size during the run, so a commit after
        // a checkpoint overwrites blocks it already has instead of making the file system
        // allocate them again; it is emptied when the run's last commit is done.
        let mut failed = self
            .ledger
            .sqlite(|c| {
                c.execute_batch(
                    "PRAGMA wal_autocheckpoint = 10000; PRAGMA journal_size_limit = -1;",
                )
            })
            .err();
        let (mut commits, mut requests) = (0u64, 0u64);
        while let Ok(first) = rx.recv() {
            let mut batch = Batch::gather(rx, first);
            commits += 1;
            requests += batch.requests as u64;
            let result = match &failed {
                Some(e) => Err(e.clone()),
                None => self.commit(&batch),
            };
            if let Err(e) = &result {
                failed = Some(e.clone());
            }
            let looks = std::mem::take(&mut batch.looks);
            batch.answer(&result);
            for (channel, addresses, reply) in looks {
                let taken = match &failed {
                    Some(e) => Err(e.clone()),
                    None => self.ledger.taken(&self.campaign, channel, &addresses),
                };
                let _ = reply.send(taken);
            }
        }
        tracing::debug!(commits, requests, "ledger writer done");
        // Another process reading the ledger (`status`, `preview --serve`) may keep part of the
        // log for now; it is cut back when that reader is done.
        if let Err(e) = self.ledger.sqlite(|c| {
            c.execute_batch("PRAGMA journal_size_limit = 4194304; PRAGMA wal_checkpoint(TRUNCATE);")
        }) {
            tracing::debug!("ledger: emptying the write-ahead log: {e}");
        }
        self.ledger
    }

    /// Commits `batch`, outcomes first (a retry's re-claim in the same batch must see `failed`),
    /// stamped with the clock. A commit another process holds up (its write lock past SQLite's
    /// own wait) is tried again for up to [`BUSY_PATIENCE`]: given up, it would lose every
    /// outcome from then on, messages that went included, and leave their rows `sending`.
    fn commit(&mut self, batch: &Batch) -> Result<Vec<Claimed>, LedgerError> {
        if let Some(before) = self.before.as_mut().filter(|_| !batch.outcomes.is_empty()) {
            before(&batch.outcomes).map_err(LedgerError::BeforeCommit)?;
        }
        let patience = Instant::now() + BUSY_PATIENCE;
        loop {
            let result = self.ledger.commit(
                &self.campaign,
                (self.run, &self.fingerprint),
                &batch.outcomes,
                &batch.claims,
                (self.clock)(),
            );
            match result {
                Err(e) if e.is_busy() && Instant::now() < patience => {
                    tracing::warn!("{e}: another process is writing it; trying again");
                    std::thread::sleep(Duration::from_millis(200));
                }
                r => return r,
            }
        }
    }
}

/// The requests one commit takes, sorted by kind.
#[derive(Default)]
struct Batch {
    requests: usize,
    claims: Vec<Claim>,
    /// For each claim request: where its claims start in `claims`, how many, and its reply.
    claim_replies: Vec<(usize, usize, ClaimReply)>,
    outcomes: Vec<Outcome>,
    flushes: Vec<FlushReply>,
    looks: Vec<(Channel, Vec<String>, LookReply)>,
}

impl Batch {
    /// `first` and what is waiting behind it, up to [`MAX_BATCH`] requests. When that is only a
    /// few, the others get a moment to join, so one fsync covers many claims. The thread naps
    /// rather than waits on the channel, so a request that joins does not have to wake it.
    fn gather(rx: &mpsc::Receiver<Request>, first: Request) -> Self {
        let mut batch = Batch::default();
        batch.add(first);
        let deadline = Instant::now() + GATHER;
        while batch.requests < MAX_BATCH {
            match rx.try_recv() {
                Ok(r) => batch.add(r),
                Err(mpsc::TryRecvError::Empty) if batch.requests < GATHER_MIN => {
                    let now = Instant::now();
                    if now >= deadline {
                        break;
                    }
                    std::thread::sleep(GATHER_NAP.min(deadline - now));
                }
                Err(_) => break,
            }
        }
        batch
    }

    fn add(&mut self, request: Request) {
        self.requests += 1;
        match request {
            Request::Claim(c, reply) => {
                self.claim_replies.push((self.claims.len(), c.len(), reply));
                self.claims.extend(c);
            }
            Request::Record(o) => self.outcomes.push(o),
            Request::Flush(reply) => self.flushes.push(reply),
            Request::Look(channel, addresses, reply) => {
                self.looks.push((channel, addresses, reply))
            }
        }
    }

    /// Gives each claim its part of the commit's answer, and each flush the commit's result.
    fn answer(self, result: &Result<Vec<Claimed>, LedgerError>) {
        for (start, len, reply) in self.claim_replies {
            let claimed = result.as_ref().map(|g| g[start..start + len].to_vec());
            let _ = reply.send(claimed.map_err(Clone::clone));
        }
        for reply in self.flushes {
            let _ = reply.send(result.as_ref().map(|_| ()).map_err(Clone::clone));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Channel, State};
    use crate::store::claims::fixtures::{claim, outcome};

    /// A writer of run 1 of campaign `c` on a new ledger in `dir`.
    fn writer_on(dir: &std::path::Path) -> Writer {
        let l = Ledger::open(dir).unwrap();
        Writer::start(
            l,
            "c".into(),
            1,
            "fp".into(),
            std::sync::Arc::new(Utc::now),
            None,
        )
    }

    #[tokio::test]
    async fn writer_groups_concurrent_claims() {
        let dir = tempfile::tempdir().unwrap();
        let w = writer_on(dir.path());
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

    #[tokio::test]
    async fn a_look_says_which_messages_are_sent_or_in_flight_after_the_claims_before_it() {
        let dir = tempfile::tempdir().unwrap();
        let w = writer_on(dir.path());
        let h = w.handle();
        for a in ["a", "b", "c"] {
            h.claim(claim(a)).await.unwrap();
        }
        h.record(outcome("a", State::Sent));
        h.record(outcome("b", State::Failed));
        let asked = ["a", "b", "c", "d"].map(String::from).to_vec();
        assert_eq!(
            h.taken(Channel::Email, asked.clone()).await.unwrap(),
            [true, false, true, false],
            "sent, failed (a claim takes it over), in flight, new"
        );
        assert_eq!(
            h.taken(Channel::Sms, asked).await.unwrap(),
            [false; 4],
            "another channel"
        );
        drop(h);
        w.finish();
    }
}
