//! The writer `outreach listen` records through: one thread owns the ledger, and every request's
//! write waits in a queue; what arrives while a commit is under way joins the next one, so one
//! fsync covers many receipts. A request is answered only once the commit that holds its write
//! is on disk: a provider told 2xx has its receipt in the ledger, whatever happens next.

use std::sync::mpsc;

use tokio::sync::oneshot;

use super::db::Begin;
use super::feedback::{
    ReceiptDone, ReceiptRecord, ReplyAction, ReplyRecord, TokenRow, receipt_in, reply_in, token_in,
    unsubscribe_in,
};
use super::sqlite::{Ledger, LedgerError, timestamp};
use super::writer::ClockFn;

/// Most requests one commit takes.
const MAX_BATCH: usize = 4096;

/// One request's write (or read, for a page that must see the ledger as it is).
#[derive(Debug, Clone)]
pub enum Op {
    /// The message a token stands for.
    Lookup(String),
    /// Suppress a token's address (`how`: `one-click` or `page`).
    Unsubscribe {
        token: String,
        how: &'static str,
    },
    Receipt(ReceiptRecord),
    Reply(ReplyRecord),
}

/// What an [`Op`] found or did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// For `Lookup` and `Unsubscribe`: the token's message, if any.
    Token(Option<TokenRow>),
    Receipt(ReceiptDone),
    Reply(ReplyAction),
}

type Reply = oneshot::Sender<Result<Answer, LedgerError>>;

/// The writer thread; dropping every [`FeedbackHandle`] and then this waits for the last commit.
pub struct FeedbackWriter {
    tx: Option<mpsc::Sender<(Op, Reply)>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// What request handlers hold.
#[derive(Clone)]
pub struct FeedbackHandle {
    tx: mpsc::Sender<(Op, Reply)>,
}

impl FeedbackWriter {
    /// Starts the thread that owns `ledger`, stamping rows with `clock`.
    pub fn start(ledger: Ledger, clock: ClockFn) -> Self {
        let (tx, rx) = mpsc::channel::<(Op, Reply)>();
        let thread = std::thread::Builder::new()
            .name("feedback".into())
            .spawn(move || serve(ledger, &rx, &clock))
            .expect("start the feedback writer");
        FeedbackWriter {
            tx: Some(tx),
            thread: Some(thread),
        }
    }

    pub fn handle(&self) -> FeedbackHandle {
        FeedbackHandle {
            tx: self.tx.clone().expect("running"),
        }
    }

    /// Waits until every queued request is committed (once the handles are dropped).
    pub fn finish(mut self) {
        drop(self.tx.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl FeedbackHandle {
    /// Queues `op` and waits until its commit is on disk.
    pub async fn submit(&self, op: Op) -> Result<Answer, LedgerError> {
        let (tx, rx) = oneshot::channel();
        self.tx
            .send((op, tx))
            .map_err(|_| LedgerError::WriterGone)?;
        rx.await.map_err(|_| LedgerError::WriterGone)?
    }
}

fn serve(mut ledger: Ledger, rx: &mpsc::Receiver<(Op, Reply)>, clock: &ClockFn) {
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(next) => batch.push(next),
                Err(_) => break,
            }
        }
        let now = timestamp(clock());
        match commit(&mut ledger, &batch, &now) {
            Ok(answers) => {
                for ((_, reply), answer) in batch.into_iter().zip(answers) {
                    let _ = reply.send(Ok(answer));
                }
            }
            Err(e) => {
                tracing::warn!("feedback not recorded: {e}");
                for (_, reply) in batch {
                    let _ = reply.send(Err(e.clone()));
                }
            }
        }
    }
}

/// Every op of `batch` in one transaction.
fn commit(
    ledger: &mut Ledger,
    batch: &[(Op, Reply)],
    now: &str,
) -> Result<Vec<Answer>, LedgerError> {
    ledger.transaction(Begin::Deferred, |tx| {
        let mut answers = Vec::with_capacity(batch.len());
        for (op, _) in batch {
            answers.push(match op {
                Op::Lookup(token) => token_in(tx, token).map(Answer::Token),
                Op::Unsubscribe { token, how } => {
                    unsubscribe_in(tx, token, how, now).map(Answer::Token)
                }
                Op::Receipt(r) => receipt_in(tx, r, now).map(Answer::Receipt),
                Op::Reply(r) => reply_in(tx, r, now).map(Answer::Reply),
            }?);
        }
        Ok(answers)
    })
}
