//! A channel's pace shared by every run of the campaign (PostgreSQL): instead of its own token
//! bucket, the lane reserves send slots in the ledger (`Ledger::reserve_slots`, one row per
//! campaign and channel, advanced with the server's clock), a few at a time so that a fast rate
//! does not cost a round trip per message, and waits for each. Two runs at `sms_rate = "10/s"`
//! then send 10 a second together, not 20.
//!
//! The reservation is made on a connection of the pace's own, off the runtime's threads. When
//! it fails (the database out of reach), the lane falls back to its own period for that message
//! and says so once: the run's writer stops the run soon enough on its own.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::config::{Rate, Store};
use crate::model::Channel;
use crate::store::ledger::{Ledger, LedgerError};

/// How much of the campaign's time one reservation takes at most: slots for about a second,
/// never more than [`MOST_SLOTS`]. A run that ends leaves at most that much unused.
const RESERVE_FOR: Duration = Duration::from_secs(1);
const MOST_SLOTS: u32 = 10;

/// A lane's shared pace.
pub(super) struct SharedPace {
    ledger: Arc<Mutex<Ledger>>,
    campaign: String,
    channel: Channel,
    period: Duration,
    slots: u32,
    reserved: tokio::sync::Mutex<VecDeque<tokio::time::Instant>>,
    /// Slots given back, and the wake-up of the message waiting for one.
    returned: Mutex<u32>,
    given_back: tokio::sync::Notify,
    warned: AtomicBool,
}

impl SharedPace {
    /// The shared pace of `campaign`'s `channel` at `rate`, on a connection of its own to
    /// `store` (shared by the run's lanes: `ledger`, opened on first use).
    pub fn new(
        ledger: &mut Option<Arc<Mutex<Ledger>>>,
        store: &Store,
        campaign: &str,
        channel: Channel,
        rate: Rate,
    ) -> Result<Self, LedgerError> {
        let ledger = match ledger {
            Some(l) => Arc::clone(l),
            None => Arc::clone(ledger.insert(Arc::new(Mutex::new(Ledger::open_store(store)?)))),
        };
        let period = rate.per / rate.count.max(1);
        let slots = match period.is_zero() {
            true => MOST_SLOTS,
            false => {
                (RESERVE_FOR.as_nanos() / period.as_nanos()).clamp(1, MOST_SLOTS as u128) as u32
            }
        };
        Ok(SharedPace {
            ledger,
            campaign: campaign.to_string(),
            channel,
            period,
            slots,
            reserved: tokio::sync::Mutex::new(VecDeque::new()),
            returned: Mutex::new(0),
            given_back: tokio::sync::Notify::new(),
            warned: AtomicBool::new(false),
        })
    }

    /// Waits for the next slot this run holds, reserving more when it has none, or takes a slot
    /// given back. One message waits at a time (the others wait for it): a run's messages
    /// waiting side by side would otherwise each hold a slot, and a run would reserve the
    /// campaign's time as far ahead as it has messages in flight.
    pub async fn until_ready(&self) {
        let mut reserved = self.reserved.lock().await;
        loop {
            if self.take_returned() {
                return;
            }
            if reserved.is_empty() {
                self.reserve(&mut reserved).await;
            }
            let at = *reserved.front().expect("a slot");
            tokio::select! {
                _ = tokio::time::sleep_until(at) => {
                    reserved.pop_front();
                    return;
                }
                _ = self.given_back.notified() => {}
            }
        }
    }

    /// Gives back the slot a message took without sending (its claim refused: another run sent
    /// it, or it is capped or suppressed): the next message takes it at once. Without this, runs
    /// working the same list would spend their slots on each other's messages.
    pub fn give_back(&self) {
        *self.returned.lock().expect("returned slots") += 1;
        self.given_back.notify_one();
    }

    fn take_returned(&self) -> bool {
        let mut returned = self.returned.lock().expect("returned slots");
        let taken = *returned > 0;
        *returned = returned.saturating_sub(1);
        taken
    }

    /// Reserves the next block of slots in the ledger.
    async fn reserve(&self, reserved: &mut VecDeque<tokio::time::Instant>) {
        let (ledger, campaign, channel) = (
            Arc::clone(&self.ledger),
            self.campaign.clone(),
            self.channel,
        );
        let (period, slots) = (self.period, self.slots);
        let starts = tokio::task::spawn_blocking(move || {
            let l = ledger.lock().expect("the pace's ledger");
            l.reserve_slots(&campaign, channel.as_str(), period, slots)
        })
        .await;
        let now = tokio::time::Instant::now();
        match starts {
            Ok(Ok(starts)) => reserved.extend(starts.into_iter().map(|d| now + d)),
            Ok(Err(e)) => {
                if !self.warned.swap(true, Ordering::SeqCst) {
                    tracing::warn!(
                        "{}: the shared pace: {e}; pacing this run alone",
                        self.channel
                    );
                }
                reserved.push_back(now + period);
            }
            Err(e) => {
                tracing::warn!("the shared pace: {e}");
                reserved.push_back(now + period);
            }
        }
    }
}
