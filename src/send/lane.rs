//! A run's shared state ([`Run`]): the loaded campaign, the ledger writer, the stop flags, the
//! `--limit` left; and each channel's own share of it ([`Lane`]): its transport, its pace (a
//! `governor` token bucket), its sessions, its failure streak and its place under the daily cap.

use std::num::NonZeroU32;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};

use super::error::SendError;
use super::options::SendOptions;
use crate::config::{EmailTransport, Rate, SmsTransport};
use crate::load::Loaded;
use crate::model::{Channel, Clock, State};
use crate::plan;
use crate::store::ledger::{BeforeCommit, Outcome, WriterHandle};
use crate::transport::{self, CheckError, EmailOut, FileSystem, SmsOut, Transport};

/// One channel's share of a run, carrying messages of type `M`.
pub(super) struct Lane<M> {
    pub channel: Channel,
    /// The way out; none on a dry run, or when nothing is due on the channel.
    pub transport: Option<Arc<dyn Transport<M>>>,
    /// Paces the channel (`sending.email_rate`, `sms_rate`); none when unlimited.
    pub limiter: Option<DefaultDirectRateLimiter>,
    /// On PostgreSQL, paces it instead with every run of the campaign (`pace.rs`).
    pub shared_pace: Option<super::pace::SharedPace>,
    /// A permit per session, taken after the claim. Claims run ahead of sessions
    /// (`Transport::in_flight`) so that one ledger commit covers many; a message whose turn
    /// comes after the run stopped is released unsent.
    pub sessions: Option<tokio::sync::Semaphore>,
    /// Messages in a row that failed or went unanswered.
    pub consecutive: AtomicU32,
    /// Messages sent in the clinic's day, this run's included (`sending.daily_cap`).
    pub sent_today: AtomicU32,
}

impl<M> Lane<M> {
    /// A lane for `channel` with its transport, paced at `rate`.
    pub fn new(
        channel: Channel,
        transport: Option<Arc<dyn Transport<M>>>,
        rate: Option<Rate>,
        concurrency: usize,
        sent_today: u32,
    ) -> Self {
        let sessions = transport
            .as_ref()
            .map(|t| tokio::sync::Semaphore::new(t.sessions(concurrency).max(1)));
        Lane {
            channel,
            transport,
            limiter: limiter(rate),
            shared_pace: None,
            sessions,
            consecutive: AtomicU32::new(0),
            sent_today: AtomicU32::new(sent_today),
        }
    }

    /// How many messages to keep claimed ahead, given `concurrency`.
    pub fn in_flight(&self, concurrency: usize) -> usize {
        self.transport
            .as_ref()
            .map_or(concurrency, |t| t.in_flight(concurrency))
    }
}

/// Shared state of a run.
pub(super) struct Run {
    pub loaded: Arc<Loaded>,
    pub opts: SendOptions,
    pub clock: Clock,
    pub writer: Option<WriterHandle>,
    stop: AtomicBool,
    /// The server or the ledger failed: not even a message already claimed starts. (A signal
    /// only stops the run: a claimed message that gets a session at once still goes.)
    halt: AtomicBool,
    stop_reason: Mutex<Option<String>>,
    limit_left: AtomicUsize,
    pub email: Lane<EmailOut>,
    pub sms: Lane<SmsOut>,
    /// The `Date` of every email of the run.
    pub date: SystemTime,
    /// Wakes messages waiting to retry when the run stops.
    stopping: tokio::sync::Notify,
}

impl Run {
    pub fn new(
        loaded: Arc<Loaded>,
        opts: &SendOptions,
        writer: Option<WriterHandle>,
        email: Lane<EmailOut>,
        sms: Lane<SmsOut>,
        date: SystemTime,
    ) -> Self {
        Run {
            clock: loaded.clock,
            loaded,
            opts: opts.clone(),
            writer,
            stop: AtomicBool::new(false),
            halt: AtomicBool::new(false),
            stop_reason: Mutex::new(None),
            limit_left: AtomicUsize::new(opts.limit.unwrap_or(usize::MAX)),
            email,
            sms,
            date,
            stopping: tokio::sync::Notify::new(),
        }
    }

    pub fn stop(&self, reason: String) {
        let mut r = self.stop_reason.lock().expect("stop reason");
        if r.is_none() {
            *r = Some(reason);
        }
        self.stop.store(true, Ordering::SeqCst);
        self.stopping.notify_waiters();
    }

    /// Why the run stopped early, if it did.
    pub fn stop_reason(&self) -> Option<String> {
        self.stop_reason.lock().expect("stop reason").clone()
    }

    /// Waits `d`, or less if the run stops meanwhile: a signal or a halt does not wait for a
    /// message's backoff to run out.
    pub async fn pause(&self, d: Duration) {
        let stopping = self.stopping.notified();
        tokio::pin!(stopping);
        stopping.as_mut().enable();
        if self.stopped() {
            return;
        }
        tokio::select! {
            _ = tokio::time::sleep(d) => {}
            _ = stopping => {}
        }
    }

    /// Stops the run because sending cannot go on (see `halt`).
    pub fn halt(&self, reason: String) {
        self.halt.store(true, Ordering::SeqCst);
        self.stop(reason);
    }

    pub fn halted(&self) -> bool {
        self.halt.load(Ordering::SeqCst)
    }

    pub fn stopped(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }

    pub fn take_limit(&self) -> bool {
        self.limit_left
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
    }

    pub fn give_back_limit(&self) {
        self.limit_left.fetch_add(1, Ordering::SeqCst);
    }

    /// Takes a place under the daily cap, by the planner's rule; false when the cap is reached.
    pub fn take_cap<M>(&self, lane: &Lane<M>) -> bool {
        let cap = self.loaded.campaign.sending.daily_cap;
        cap == 0
            || lane
                .sent_today
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                    plan::within_daily_cap(cap, n).then_some(n + 1)
                })
                .is_ok()
    }

    pub fn give_back_cap<M>(&self, lane: &Lane<M>) {
        if self.loaded.campaign.sending.daily_cap > 0 {
            lane.sent_today.fetch_sub(1, Ordering::SeqCst);
        }
    }

    /// How long to wait before attempt `attempt + 1`: capped exponential backoff with jitter,
    /// never less than the server's `Retry-After`.
    pub fn backoff(&self, attempt: u32, retry_after: Option<Duration>) -> Duration {
        let base = self.loaded.campaign.sending.retry_delay;
        let ceiling = base
            .saturating_mul(1u32 << attempt.min(16))
            .min(Duration::from_secs(60).max(base));
        // Full jitter: anywhere up to the ceiling, so retries from many workers spread out.
        let jittered = ceiling.mul_f64(0.5 + fastrand::f64() * 0.5);
        retry_after.map_or(jittered, |r| r.max(jittered))
    }

    pub fn count_failure<M>(&self, lane: &Lane<M>) {
        let n = lane.consecutive.fetch_add(1, Ordering::SeqCst) + 1;
        let max = self.loaded.campaign.sending.max_consecutive_failures;
        let channel = lane.channel;
        // Messages in flight fail side by side: whichever reaches the stop first, the run
        // stopped at the threshold, and says so the same way every time.
        if n >= max {
            self.halt(format!(
                "{channel}: {max} messages in a row failed or went unanswered \
                 (sending.max_consecutive_failures = {max}); the server is likely down, not the \
                 patients"
            ));
        }
    }
}

fn limiter(rate: Option<Rate>) -> Option<DefaultDirectRateLimiter> {
    let rate = rate?;
    let period = rate.per / rate.count;
    // One at a time, evenly spaced: a burst would break a carrier's per-second limit.
    let quota = Quota::with_period(period)?.allow_burst(NonZeroU32::new(1).expect("1 > 0"));
    Some(RateLimiter::direct(quota))
}

/// The email transport the campaign configures.
pub(super) fn email_transport(loaded: &Loaded) -> Result<Arc<dyn Transport<EmailOut>>, SendError> {
    let channel = Channel::Email;
    let settings = loaded.campaign.email.as_ref().expect("email is enabled");
    Ok(match &settings.transport {
        EmailTransport::File { outbox } => {
            // The envelope sender is shown only when it is not the From address.
            let return_path = settings.bounce_address.is_some();
            Arc::new(
                transport::file::EmailFile::new(outbox, return_path).map_err(|source| {
                    SendError::Outbox {
                        channel,
                        path: outbox.clone(),
                        source,
                    }
                })?,
            )
        }
        EmailTransport::Smtp(settings) => Arc::new(transport::smtp::Smtp::new(settings).map_err(
            |e| SendError::Transport {
                channel,
                message: e.to_string(),
            },
        )?),
    })
}

/// The SMS transport the campaign configures.
pub(super) fn sms_transport(loaded: &Loaded) -> Result<Arc<dyn Transport<SmsOut>>, SendError> {
    let channel = Channel::Sms;
    let settings = loaded.campaign.sms.as_ref().expect("sms is enabled");
    Ok(match &settings.transport {
        SmsTransport::File { outbox } => Arc::new(transport::file::SmsFile::new(outbox).map_err(
            |source| SendError::Outbox {
                channel,
                path: outbox.clone(),
                source,
            },
        )?),
        SmsTransport::Http(g) => Arc::new(
            transport::http::Gateway::new(g, loaded.campaign.sending.concurrency).map_err(|e| {
                SendError::Transport {
                    channel,
                    message: e.to_string(),
                }
            })?,
        ),
    })
}

/// What the ledger writer does before it records outcomes: when they include a message sent by
/// a transport that said `Sent` before the message was on disk (the file outboxes), one `syncfs`
/// of each such outbox's file system. So a message is on disk before the ledger records it
/// `sent`, and one sync covers every message of the commit (BENCHMARKS.md, "Durable file
/// outbox": per message, an fsync of the file and of its directory took 5 times as long).
pub(super) fn sync_before_recording(
    email: &Lane<EmailOut>,
    sms: &Lane<SmsOut>,
) -> Option<BeforeCommit> {
    let unsynced = [
        (
            email.channel,
            email.transport.as_ref().and_then(|t| t.unsynced()),
        ),
        (
            sms.channel,
            sms.transport.as_ref().and_then(|t| t.unsynced()),
        ),
    ];
    let mut channels = Vec::new();
    let mut file_systems: Vec<FileSystem> = Vec::new();
    for (channel, fs) in unsynced {
        let Some(fs) = fs else { continue };
        channels.push(channel);
        if file_systems.iter().all(|f| f.device() != fs.device()) {
            file_systems.push(fs);
        }
    }
    if channels.is_empty() {
        return None;
    }
    Some(Box::new(move |outcomes: &[Outcome]| {
        let sent = |o: &Outcome| o.state == State::Sent && channels.contains(&o.channel);
        if outcomes.iter().any(sent) {
            file_systems.iter().try_for_each(FileSystem::sync)?;
        }
        Ok(())
    }))
}

/// The error of a transport that cannot start.
pub(super) fn check_failed(channel: Channel, e: CheckError) -> SendError {
    match e {
        CheckError::Unusable(message) => SendError::Transport { channel, message },
        CheckError::Unavailable(message) => SendError::Unavailable { channel, message },
    }
}
