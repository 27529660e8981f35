//! A run's heartbeat on PostgreSQL (`store/lease.rs`): a thread of its own, with a connection
//! of its own, renews the run's lease every [`lease::heartbeat_every`] and, with each beat,
//! recovers what runs whose lease expired left in flight (whichever run notices first).
//!
//! Why a thread and a connection of its own rather than the ledger writer between batches: the
//! writer may wait a long time on one commit (a claim queued behind another campaign's address
//! locks, the server slow), and a heartbeat written only when the writer is idle would let a
//! busy, healthy run lose its lease; and a thread that only renews can say, by itself, when the
//! lease can no longer be renewed in time, and stop the run before it expires.
//!
//! If the lease cannot be renewed for [`lease::claim_window`] (the lease less two beats) the run
//! halts (exit 3). Even a heartbeat stuck on a dead connection cannot let the run claim past its
//! lease: each claim's transaction checks the run's own heartbeat by the server's clock
//! (`LedgerError::LeaseLost`).

use std::sync::Arc;
use std::sync::mpsc;
use std::time::Instant;

use crate::config::Store;
use crate::load::Loaded;
use crate::store::lease;
use crate::store::ledger::{Ledger, LedgerError};

use super::lane::Run;

/// The running heartbeat; [`Heartbeat::stop`] ends it.
pub(super) struct Heartbeat {
    stop: mpsc::Sender<()>,
    thread: std::thread::JoinHandle<()>,
}

impl Heartbeat {
    /// Starts renewing run `run_id`'s lease in `store` (a connection of its own), recovering
    /// `campaign`'s lapsed runs with each beat; halts `run` when the lease cannot be kept.
    pub fn start(
        store: Store,
        campaign: String,
        run_id: i64,
        run: Arc<Run>,
    ) -> Result<Self, LedgerError> {
        let ledger = Ledger::open_store(&store)?;
        let (stop, stopped) = mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("heartbeat".into())
            .spawn(move || beat(ledger, &store, &campaign, run_id, &run, &stopped))
            .expect("start the heartbeat thread");
        Ok(Heartbeat { stop, thread })
    }

    /// The heartbeat of `run` (run `run_id` of `loaded`'s campaign) when it sends (`sends`)
    /// with its ledger in PostgreSQL; none otherwise.
    pub fn for_run(
        loaded: &Loaded,
        sends: bool,
        run_id: Option<i64>,
        run: &Arc<Run>,
    ) -> Result<Option<Self>, LedgerError> {
        let store = loaded.campaign.sending.store();
        match run_id {
            Some(run_id) if sends && store.url.is_some() => {
                let campaign = loaded.campaign.id.clone();
                Heartbeat::start(store, campaign, run_id, Arc::clone(run)).map(Some)
            }
            _ => Ok(None),
        }
    }

    /// Stops the heartbeat (the lease lapses unless `end_run` finishes the run first).
    pub fn stop(self) {
        drop(self.stop);
        let _ = self.thread.join();
    }
}

fn beat(
    ledger: Ledger,
    store: &Store,
    campaign: &str,
    run_id: i64,
    run: &Run,
    stopped: &mpsc::Receiver<()>,
) {
    let every = lease::heartbeat_every();
    let give_up = lease::claim_window();
    let mut ledger = Some(ledger);
    let mut renewed = Instant::now();
    while let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(every) {
        let l = match ledger.take() {
            Some(l) => Ok(l),
            // A connection lost: a new one.
            None => Ledger::open_store(store),
        };
        let beat = l.and_then(|mut l| {
            let live = l.heartbeat(run_id)?;
            if live {
                let recovered = l.recover_interrupted(campaign, run.clock.now())?;
                if recovered > 0 {
                    tracing::warn!(
                        recovered,
                        "another run of the campaign stopped renewing its lease: its messages \
                         in flight are now unknown"
                    );
                }
            }
            Ok((l, live))
        });
        match beat {
            Ok((l, true)) => {
                ledger = Some(l);
                renewed = Instant::now();
            }
            Ok((_, false)) => {
                run.halt(
                    "ledger: another run found this run's lease expired (it was marked lost): \
                     stopping"
                        .into(),
                );
                return;
            }
            Err(e) => {
                tracing::warn!("ledger: renewing the run's lease: {e}");
                if renewed.elapsed() >= give_up {
                    run.halt(format!(
                        "ledger: the run's lease could not be renewed for {} s: {e}",
                        give_up.as_secs()
                    ));
                    return;
                }
            }
        }
    }
}
