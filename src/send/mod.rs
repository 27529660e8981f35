//! `outreach send`: what is due and not yet sent goes out, every outcome recorded in the ledger.
//!
//! The order for each message is what keeps the never-twice promise: wait for the rate limiter,
//! check quiet hours and the daily cap *now* (a long run can cross into quiet hours), render,
//! **claim it in the ledger and wait for that commit**, hand it to the transport, record the
//! outcome. A run that dies after the claim leaves a `sending` row, which the next run reports as
//! `unknown` and never resends on its own.
//!
//! Each channel is a stream of messages run `concurrency` at a time (`buffer_unordered`), paced
//! by a `governor` token bucket. Retries (transient failures only, decided by the transport) back
//! off exponentially with full jitter and honour `Retry-After`. A stop (SIGINT/SIGTERM, a fatal
//! transport error, too many consecutive failures) lets in-flight messages finish and be recorded.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::io::IsTerminal;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use chrono::{DateTime, TimeZone, Utc};
use governor::{Quota, RateLimiter};

use crate::config::{EmailTransport, Rate, SmsTransport};
use crate::load::{Loaded, Rendered};
use crate::model::{Channel, Exit, Masked, State};
use crate::plan::{self, Decision, Defer};
use crate::store::ledger::{
    self, Claim, Claimed, Ledger, LedgerError, RowId, Writer, WriterHandle,
};
use crate::transport::{Delivery, EmailOut, Outgoing, SmsOut, Transport};

/// How a run was asked to behave.
#[derive(Debug, Clone, Default)]
pub struct SendOptions {
    /// Plan and render; record and send nothing.
    pub dry_run: bool,
    /// At most this many messages in this run, all channels together.
    pub limit: Option<usize>,
    /// Only this channel.
    pub channel: Option<Channel>,
    /// Resend messages whose outcome is unknown.
    pub resend_unknown: bool,
    /// Retry messages that failed permanently.
    pub retry_failed: bool,
    /// Show progress bars (a terminal, not quiet, not JSON).
    pub progress: bool,
}

/// Why a run could not start or went wrong in a way that is not a message's outcome.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    #[error(transparent)]
    Lock(#[from] crate::store::lock::LockError),
    #[error("{channel} transport: {message}")]
    Transport { channel: Channel, message: String },
    /// The server is out of reach before the first message: nothing sent, a later run may work.
    #[error("{channel} transport: {message} (nothing was sent; a later run retries)")]
    Unavailable { channel: Channel, message: String },
    #[error("{0}")]
    Runtime(String),
}

/// Counts for one channel of one run.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct ChannelRun {
    pub channel: Option<Channel>,
    /// Due when the run started.
    pub due: usize,
    pub sent: usize,
    pub failed: usize,
    /// Failed with an opt-out reply (not an error of the run).
    pub opted_out: usize,
    pub unknown: usize,
    /// Transient failures that outlived this run's attempts: the next run retries them.
    pub retry_later: usize,
    /// Not attempted: `--limit` reached or the run stopped.
    pub not_attempted: usize,
    pub deferred: BTreeMap<&'static str, usize>,
    pub skipped: BTreeMap<&'static str, usize>,
    /// What earlier runs already settled: sent, failed, unknown.
    pub already: BTreeMap<&'static str, usize>,
}

/// What a run did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RunSummary {
    pub campaign: String,
    pub run: Option<i64>,
    pub dry_run: bool,
    pub seconds: f64,
    pub channels: Vec<ChannelRun>,
    /// Why the run stopped early, if it did.
    pub stopped: Option<String>,
    /// Rows an earlier, dead run left in flight, now `unknown`.
    pub recovered_unknown: usize,
    /// When the campaign first sent with other templates.
    pub templates_changed_since: Option<String>,
    pub report: Option<std::path::PathBuf>,
    /// The approval state (dry runs).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub approval: Option<crate::approval::Status>,
}

/// What `send` says instead of sending, outside the campaign's window.
#[derive(Debug, Clone, serde::Serialize)]
pub struct WindowNotice {
    pub campaign: String,
    /// "not_open" or "ended".
    pub window: &'static str,
    /// The instant (UTC, RFC 3339) the window opens or ended.
    pub at: String,
    /// Messages dropped because the campaign ended.
    pub dropped: usize,
    pub message: String,
}

impl std::fmt::Display for WindowNotice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// The notice `send` prints instead of sending when the clock is outside the campaign's window.
pub fn window_notice(loaded: &Loaded, only: Option<Channel>) -> Option<WindowNotice> {
    let c = &loaded.campaign;
    let now = loaded.now;
    if let Some(edge) = c.window.opens_after(now) {
        return Some(WindowNotice {
            campaign: c.id.clone(),
            window: "not_open",
            at: edge.at.to_rfc3339(),
            dropped: 0,
            message: format!(
                "Campaign {}: nothing sent; its window opens {} (campaign.not_before = {})",
                c.id,
                plan::clinic_time(c, edge.at),
                edge.written
            ),
        });
    }
    let edge = c.window.ended_before(now)?;
    let mut dropped = 0;
    for &channel in c
        .channels
        .iter()
        .filter(|ch| only.is_none_or(|o| o == **ch))
    {
        for index in 0..loaded.contacts.contacts.len() {
            if loaded.decide(index, channel, now) == Decision::Skipped(plan::Skip::CampaignEnded) {
                dropped += 1;
            }
        }
    }
    Some(WindowNotice {
        campaign: c.id.clone(),
        window: "ended",
        at: edge.at.to_rfc3339(),
        dropped,
        message: format!(
            "Campaign {} ended {} (campaign.not_after = {}): nothing sent; {dropped} messages \
             dropped (campaign ended); remove it from crontab",
            c.id,
            plan::clinic_time(c, edge.at),
            edge.written
        ),
    })
}

impl RunSummary {
    /// The exit code DESIGN.md fixes.
    pub fn exit(&self) -> Exit {
        let retry_later: usize = self.channels.iter().map(|c| c.retry_later).sum();
        if self.stopped.is_some() || retry_later > 0 {
            Exit::Stopped
        } else if self.channels.iter().any(|c| c.failed > 0 || c.unknown > 0) {
            Exit::Failed
        } else {
            Exit::Ok
        }
    }
}

/// The clock of a run: the injected instant (`OUTREACH_NOW`) or the system time.
#[derive(Clone)]
pub struct Clock {
    fixed: Option<DateTime<Utc>>,
}

impl Clock {
    /// The clock for this process.
    pub fn from_env() -> Result<Self, String> {
        let fixed = match std::env::var("OUTREACH_NOW") {
            Ok(v) if !v.is_empty() => Some(plan::now()?),
            _ => None,
        };
        Ok(Clock { fixed })
    }

    /// Now.
    pub fn now(&self) -> DateTime<Utc> {
        self.fixed.unwrap_or_else(Utc::now)
    }
}

/// One message to try.
#[derive(Clone, Copy)]
struct Work {
    index: usize,
    channel: Channel,
}

/// What became of one message in this run.
enum Result_ {
    Sent,
    Failed { opted_out: bool },
    Unknown,
    RetryLater,
    NotAttempted,
    Deferred(&'static str),
    Skipped(&'static str),
}

impl Result_ {
    /// The word the run report shows.
    fn word(&self) -> Cow<'static, str> {
        match self {
            Result_::Sent => "sent".into(),
            Result_::Failed { opted_out: true } => "failed: opted out".into(),
            Result_::Failed { opted_out: false } => "failed".into(),
            Result_::Unknown => "unknown".into(),
            Result_::RetryLater => "retry later".into(),
            Result_::NotAttempted => "not attempted".into(),
            Result_::Deferred(d) => format!("deferred: {}", d.replace('_', " ")).into(),
            Result_::Skipped(s) => format!("skipped: {}", s.replace('_', " ")).into(),
        }
    }
}

/// Shared state of a run.
struct Run {
    loaded: Arc<Loaded>,
    opts: SendOptions,
    clock: Clock,
    writer: Option<WriterHandle>,
    stop: AtomicBool,
    /// The server or the ledger failed: not even a message already claimed starts. (A signal
    /// only stops the run: a claimed message that gets a session at once still goes.)
    halt: AtomicBool,
    stop_reason: Mutex<Option<String>>,
    limit_left: AtomicUsize,
    /// Per channel (index `Channel as usize`).
    consecutive: [AtomicU32; 2],
    cap_used: [AtomicU32; 2],
    limiters: [Option<governor::DefaultDirectRateLimiter>; 2],
    transports: [Option<Arc<dyn Transport>>; 2],
    /// Per channel: a permit per session, taken after the claim. Claims run ahead of sessions
    /// (`Transport::in_flight`) so that one ledger commit covers many; a message whose turn
    /// comes after the run stopped is released unsent.
    sessions: [Option<tokio::sync::Semaphore>; 2],
    date: SystemTime,
    /// Wakes messages waiting to retry when the run stops.
    stopping: tokio::sync::Notify,
}

impl Run {
    fn stop(&self, reason: String) {
        let mut r = self.stop_reason.lock().expect("stop reason");
        if r.is_none() {
            *r = Some(reason);
        }
        self.stop.store(true, Ordering::SeqCst);
        self.stopping.notify_waiters();
    }

    /// Waits `d`, or less if the run stops meanwhile: a signal or a halt does not wait for a
    /// message's backoff to run out.
    async fn pause(&self, d: Duration) {
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
    fn halt(&self, reason: String) {
        self.halt.store(true, Ordering::SeqCst);
        self.stop(reason);
    }

    fn stopped(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }

    fn take_limit(&self) -> bool {
        self.limit_left
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
    }

    fn give_back_limit(&self) {
        self.limit_left.fetch_add(1, Ordering::SeqCst);
    }

    fn take_cap(&self, channel: Channel) -> bool {
        let cap = self.loaded.campaign.sending.daily_cap;
        cap == 0
            || self.cap_used[channel as usize]
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                    (n < cap).then_some(n + 1)
                })
                .is_ok()
    }

    fn give_back_cap(&self, channel: Channel) {
        if self.loaded.campaign.sending.daily_cap > 0 {
            self.cap_used[channel as usize].fetch_sub(1, Ordering::SeqCst);
        }
    }

    fn backoff(&self, attempt: u32, retry_after: Option<Duration>) -> Duration {
        let base = self.loaded.campaign.sending.retry_delay;
        let ceiling = base
            .saturating_mul(1u32 << attempt.min(16))
            .min(Duration::from_secs(60).max(base));
        // Full jitter: anywhere up to the ceiling, so retries from many workers spread out.
        let jittered = ceiling.mul_f64(0.5 + fastrand::f64() * 0.5);
        retry_after.map_or(jittered, |r| r.max(jittered))
    }

    /// Renders and builds one message.
    fn outgoing(&self, work: &Work) -> Result<(Outgoing, String), String> {
        let loaded = &*self.loaded;
        let contact = &loaded.contacts.contacts[work.index];
        let outcome = loaded.outcome(work.index, work.channel, false);
        if let Decision::Skipped(s) = &outcome.decision {
            return Err(s.to_string());
        }
        let rendered = outcome.message.ok_or("nothing rendered")?;
        let address = contact
            .address(work.channel)
            .ok_or("no address")?
            .to_string();
        match rendered {
            rendered @ Rendered::Email { .. } => {
                let message = loaded
                    .email_message(work.index, &rendered, self.date)
                    .ok_or("email is not enabled")?
                    .map_err(|e| e.to_string())?;
                let settings = loaded
                    .campaign
                    .email
                    .as_ref()
                    .ok_or("email is not enabled")?;
                Ok((
                    Outgoing::Email(EmailOut {
                        from: settings.from.email.to_string(),
                        to: contact
                            .display_address(Channel::Email)
                            .unwrap_or(&address)
                            .to_string(),
                        bytes: crate::message::wire(settings, &message, self.date),
                        campaign: loaded.campaign.id.clone(),
                        contact_id: contact.id.clone(),
                    }),
                    address,
                ))
            }
            Rendered::Sms { body, count, .. } => {
                let settings = loaded.campaign.sms.as_ref().ok_or("sms is not enabled")?;
                Ok((
                    Outgoing::Sms(SmsOut {
                        to: address.clone(),
                        from: settings.from.clone(),
                        body,
                        encoding: count.encoding,
                        segments: count.segments,
                        campaign: loaded.campaign.id.clone(),
                        contact: contact.id.clone(),
                    }),
                    address,
                ))
            }
        }
    }

    /// Tries one message; `row` is set to its ledger row once a claim is granted.
    async fn deliver(&self, work: Work, row: &mut Option<RowId>) -> Result_ {
        let channel = work.channel;
        let slot = channel as usize;
        let contact = &self.loaded.contacts.contacts[work.index];
        if self.stopped() {
            return Result_::NotAttempted;
        }
        // A dry run sends nothing, so nothing paces it: at `sms_rate = "1/s"` a list of 20,000
        // would otherwise take five and a half hours to preview.
        if let Some(limiter) = self.limiters[slot].as_ref().filter(|_| !self.opts.dry_run) {
            limiter.until_ready().await;
        }
        if self.stopped() {
            return Result_::NotAttempted;
        }
        // Quiet hours and the cap are checked at dispatch, not only when the plan was made.
        // So is the window: a long run that reaches `not_after` stops sending there.
        match self.loaded.decide(work.index, channel, self.clock.now()) {
            Decision::Deferred(d) => return Result_::Deferred(d.label()),
            Decision::Skipped(s @ plan::Skip::CampaignEnded) => return Result_::Skipped(s.label()),
            _ => {}
        }
        if !self.take_limit() {
            return Result_::NotAttempted;
        }
        if !self.take_cap(channel) {
            self.give_back_limit();
            return Result_::Deferred(Defer::DailyCap.label());
        }
        let (message, address) = match self.outgoing(&work) {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(contact = %contact.id, %channel, "not sent: {e}");
                self.give_back_limit();
                self.give_back_cap(channel);
                return Result_::Skipped("message_error");
            }
        };
        if self.opts.dry_run {
            return Result_::Sent;
        }
        let writer = self.writer.as_ref().expect("a writer when not a dry run");
        let transport = self.transports[slot].as_ref().expect("a transport");
        // Masked only when a log line is written.
        let masked = Masked(channel, &address);
        let max_attempts = self.loaded.campaign.sending.max_attempts;
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            // What a taken-over row was (a resumed `unknown`, a failure tried again).
            let was;
            let claim = Claim {
                channel,
                address: address.clone(),
                contact_id: contact.id.clone(),
            };
            match writer.claim(claim).await {
                Ok(Claimed::Granted(claimed)) => {
                    *row = Some(claimed.row);
                    was = claimed.was;
                }
                Ok(Claimed::Refused) => {
                    // Already sent or in flight: the ledger says no, and it is always right.
                    self.give_back_limit();
                    self.give_back_cap(channel);
                    return Result_::Skipped("already_sent");
                }
                Ok(Claimed::Suppressed) => {
                    // Suppressed since the plan was made: by another run, or an unsubscribe.
                    tracing::info!(contact = %contact.id, %channel, to = %masked, "suppressed since the run began: not sent");
                    self.give_back_limit();
                    self.give_back_cap(channel);
                    return Result_::Skipped("suppressed");
                }
                Err(e) => {
                    self.halt(format!("ledger: {e}"));
                    self.give_back_limit();
                    self.give_back_cap(channel);
                    return Result_::NotAttempted;
                }
            }
            // A message that had to wait for a session and whose turn came after the run
            // stopped is released unsent; one that goes at once is in flight and finishes,
            // unless the run halted (the server or the ledger failing).
            let (session, waited) = match &self.sessions[slot] {
                Some(s) => match s.try_acquire() {
                    Ok(p) => (Some(p), false),
                    Err(_) => (Some(s.acquire().await.expect("never closed")), true),
                },
                None => (None, false),
            };
            if (waited && self.stopped()) || self.halt.load(Ordering::SeqCst) {
                drop(session);
                // Released: the row goes back to what it was (a new one to a retryable
                // failure, which `released` keeps from counting as an attempt).
                let (state, permanent) = was.unwrap_or((State::Failed, false));
                writer.record(ledger::Outcome {
                    channel,
                    address: address.clone(),
                    state,
                    permanent,
                    provider_id: None,
                    error: Some("not sent: the run stopped before its turn".into()),
                    suppress: None,
                    released: true,
                    row: *row,
                });
                self.give_back_limit();
                self.give_back_cap(channel);
                return Result_::NotAttempted;
            }
            let delivery = transport.send(&message).await;
            // The session is held until this outcome is counted: a failure that halts the run
            // does so before the next message can take the session.
            let outcome = |state: State,
                           permanent: bool,
                           provider_id: Option<String>,
                           error: Option<String>| ledger::Outcome {
                channel,
                address: address.clone(),
                state,
                permanent,
                provider_id,
                error,
                suppress: None,
                released: false,
                row: *row,
            };
            let record = |state, permanent, provider_id, error| {
                writer.record(outcome(state, permanent, provider_id, error))
            };
            match delivery {
                Delivery::Sent { provider_id } => {
                    tracing::info!(contact = %contact.id, %channel, to = %masked, id = %provider_id, "sent");
                    record(State::Sent, false, Some(provider_id), None);
                    self.consecutive[slot].store(0, Ordering::SeqCst);
                    return Result_::Sent;
                }
                Delivery::Permanent { error } => {
                    tracing::warn!(contact = %contact.id, %channel, to = %masked, "failed: {error}");
                    record(State::Failed, true, None, Some(error));
                    self.give_back_cap(channel);
                    self.count_failure(channel);
                    return Result_::Failed { opted_out: false };
                }
                Delivery::OptedOut { error } => {
                    tracing::info!(contact = %contact.id, %channel, to = %masked, "opted out: {error}");
                    // Suppressed from now on, for every campaign of this state directory.
                    writer.record(ledger::Outcome {
                        suppress: Some(format!("opted out: {error}")),
                        ..outcome(
                            State::Failed,
                            true,
                            None,
                            Some(format!("opted out: {error}")),
                        )
                    });
                    self.give_back_cap(channel);
                    return Result_::Failed { opted_out: true };
                }
                Delivery::Unknown { error } => {
                    tracing::warn!(contact = %contact.id, %channel, to = %masked, "outcome unknown: {error}");
                    record(State::Unknown, false, None, Some(error));
                    // A server that takes messages and never answers stops the run like one
                    // that refuses them: otherwise the whole list would be left unknown.
                    self.count_failure(channel);
                    return Result_::Unknown;
                }
                Delivery::Fatal { error } => {
                    // Not the patient's fault: the message stays retryable, the run stops.
                    record(
                        State::Failed,
                        false,
                        None,
                        Some(format!("not sent: {error}")),
                    );
                    self.give_back_cap(channel);
                    self.halt(format!("{channel}: {error}"));
                    return Result_::NotAttempted;
                }
                Delivery::Transient { error, retry_after } => {
                    tracing::warn!(contact = %contact.id, %channel, to = %masked, attempt, "transient failure: {error}");
                    record(State::Failed, false, None, Some(error));
                    self.count_failure(channel);
                    if let Some(wait) = retry_after.filter(|w| *w > LONGEST_WAIT) {
                        // The gateway wants no more for a long while, whatever attempt this
                        // was: a later run resumes.
                        self.give_back_cap(channel);
                        self.halt(format!(
                            "{channel}: the server asks to wait {} s (Retry-After), longer than \
                             a run waits ({} s); a later run resumes",
                            wait.as_secs(),
                            LONGEST_WAIT.as_secs()
                        ));
                        return Result_::RetryLater;
                    }
                    if attempt >= max_attempts || self.stopped() {
                        self.give_back_cap(channel);
                        return Result_::RetryLater;
                    }
                    // Others use the session while this one waits to retry.
                    drop(session);
                    self.pause(self.backoff(attempt - 1, retry_after)).await;
                    if self.stopped() {
                        self.give_back_cap(channel);
                        return Result_::RetryLater;
                    }
                }
            }
        }
    }

    fn count_failure(&self, channel: Channel) {
        let n = self.consecutive[channel as usize].fetch_add(1, Ordering::SeqCst) + 1;
        let max = self.loaded.campaign.sending.max_consecutive_failures;
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

/// The longest `Retry-After` a run waits for; beyond it the run stops (exit 3).
const LONGEST_WAIT: Duration = Duration::from_secs(300);

fn limiter(rate: Option<Rate>) -> Option<governor::DefaultDirectRateLimiter> {
    let rate = rate?;
    let period = rate.per / rate.count;
    // One at a time, evenly spaced: a burst would break a carrier's per-second limit.
    let quota = Quota::with_period(period)?.allow_burst(NonZeroU32::new(1).expect("1 > 0"));
    Some(RateLimiter::direct(quota))
}

fn transport(loaded: &Loaded, channel: Channel) -> Result<Arc<dyn Transport>, SendError> {
    let err = |message: String| SendError::Transport { channel, message };
    match channel {
        Channel::Email => match &loaded.campaign.email.as_ref().expect("enabled").transport {
            EmailTransport::File { outbox } => Ok(Arc::new(
                crate::transport::file::EmailFile::new(outbox)
                    .map_err(|e| err(format!("outbox {}: {e}", outbox.display())))?,
            )),
            EmailTransport::Smtp(settings) => Ok(Arc::new(
                crate::transport::smtp::Smtp::new(settings).map_err(err)?,
            )),
        },
        Channel::Sms => match &loaded.campaign.sms.as_ref().expect("enabled").transport {
            SmsTransport::File { outbox } => Ok(Arc::new(
                crate::transport::file::SmsFile::new(outbox)
                    .map_err(|e| err(format!("outbox {}: {e}", outbox.display())))?,
            )),
            SmsTransport::Http(g) => Ok(Arc::new(
                crate::transport::http::Gateway::new(g, loaded.campaign.sending.concurrency)
                    .map_err(err)?,
            )),
        },
    }
}

/// The error of a transport that cannot start.
fn check_failed(channel: Channel, e: crate::transport::CheckError) -> SendError {
    match e {
        crate::transport::CheckError::Unusable(message) => {
            SendError::Transport { channel, message }
        }
        crate::transport::CheckError::Unavailable(message) => {
            SendError::Unavailable { channel, message }
        }
    }
}

/// The start and end (UTC) of the clinic's calendar day that contains `now`.
fn clinic_day(loaded: &Loaded, now: DateTime<Utc>) -> (DateTime<Utc>, DateTime<Utc>) {
    let tz = loaded.campaign.clinic.timezone;
    let local = now.with_timezone(&tz).date_naive();
    let start_of = |d: chrono::NaiveDate| {
        tz.from_local_datetime(&d.and_hms_opt(0, 0, 0).expect("midnight"))
            .earliest()
            // A zone whose midnight is skipped (DST at 00:00): the day starts at the first
            // instant that exists.
            .unwrap_or_else(|| tz.from_utc_datetime(&d.and_hms_opt(0, 0, 0).expect("midnight")))
            .with_timezone(&Utc)
    };
    (start_of(local), start_of(local + chrono::Days::new(1)))
}

/// Runs `send` (or its dry run) for a loaded campaign. Meant to end its process: `loaded` is
/// not freed when it returns.
pub fn run(mut loaded: Loaded, opts: &SendOptions) -> Result<RunSummary, SendError> {
    let started = Instant::now();
    let clock = Clock::from_env().map_err(SendError::Runtime)?;
    let campaign_id = loaded.campaign.id.clone();
    let state_dir = loaded.campaign.sending.state_dir.clone();
    let channels: Vec<Channel> = loaded
        .campaign
        .channels
        .iter()
        .copied()
        .filter(|c| opts.channel.is_none_or(|o| o == *c))
        .collect();

    let _lock = if opts.dry_run {
        None
    } else {
        Some(crate::store::lock::acquire(&state_dir, &campaign_id)?)
    };
    let ledger_exists = state_dir.join(ledger::FILE).exists();
    let mut ledger = if opts.dry_run && !ledger_exists {
        None
    } else {
        Some(Ledger::open(&state_dir)?)
    };
    let now = clock.now();
    let mut recovered_unknown = 0;
    let mut templates_changed_since = None;
    let mut run_id = None;
    loaded.redo = crate::plan::Redo {
        unknown: opts.resend_unknown,
        failed: opts.retry_failed,
    };
    if let Some(l) = ledger.as_mut() {
        if !opts.dry_run {
            recovered_unknown = l.recover_interrupted(&campaign_id, now)?;
            templates_changed_since =
                l.fingerprint_change(&campaign_id, &loaded.templates.fingerprint, now)?;
            run_id = Some(l.begin_run(&campaign_id, now)?);
        }
        // Read again under the lock: the recovery above may have changed rows.
        loaded.priors = l.priors(&campaign_id)?;
    }

    // The plan: who is due now, and why everyone else is not.
    let mut stats: Vec<ChannelRun> = channels
        .iter()
        .map(|c| ChannelRun {
            channel: Some(*c),
            ..Default::default()
        })
        .collect();
    let mut work: [Vec<Work>; 2] = [Vec::new(), Vec::new()];
    let mut plan_deferred = Vec::new();
    for (slot, &channel) in channels.iter().enumerate() {
        let st = &mut stats[slot];
        for index in 0..loaded.contacts.contacts.len() {
            match loaded.decide(index, channel, now) {
                Decision::Due => {
                    st.due += 1;
                    work[channel as usize].push(Work { index, channel });
                }
                Decision::Deferred(d) => {
                    *st.deferred.entry(d.label()).or_default() += 1;
                    plan_deferred.push(crate::recipients::RunRow {
                        index,
                        channel,
                        row: None,
                        outcome: format!("deferred: {d}").into(),
                    });
                }
                Decision::Skipped(s) => *st.skipped.entry(s.label()).or_default() += 1,
                Decision::Done(state) => *st.already.entry(state.as_str()).or_default() += 1,
            }
        }
    }

    let mut cap_used = [AtomicU32::new(0), AtomicU32::new(0)];
    if let Some(l) = &ledger
        && loaded.campaign.sending.daily_cap > 0
    {
        let (from, to) = clinic_day(&loaded, now);
        for &channel in &channels {
            cap_used[channel as usize] =
                AtomicU32::new(l.sent_between(&campaign_id, channel, from, to)?);
        }
    }
    let mut transports: [Option<Arc<dyn Transport>>; 2] = [None, None];
    if !opts.dry_run {
        for &channel in &channels {
            if !work[channel as usize].is_empty() {
                transports[channel as usize] = Some(transport(&loaded, channel)?);
            }
        }
    }

    // Messages are rendered on every worker thread: they share the loaded campaign.
    let loaded = Arc::new(loaded);
    let fingerprint = loaded.templates.fingerprint.clone();
    // A dry run's ledger (if any) was only read; it is dropped here.
    let writer = match (ledger, run_id) {
        (Some(l), Some(run)) if !opts.dry_run => {
            let c = clock.clone();
            Some(Writer::start(
                l,
                campaign_id.clone(),
                run,
                fingerprint,
                Arc::new(move || c.now()),
            ))
        }
        _ => None,
    };

    let sending = loaded.campaign.sending.clone();
    let run = Arc::new(Run {
        loaded: Arc::clone(&loaded),
        opts: opts.clone(),
        clock: clock.clone(),
        writer: writer.as_ref().map(Writer::handle),
        stop: AtomicBool::new(false),
        halt: AtomicBool::new(false),
        stop_reason: Mutex::new(None),
        limit_left: AtomicUsize::new(opts.limit.unwrap_or(usize::MAX)),
        consecutive: [AtomicU32::new(0), AtomicU32::new(0)],
        cap_used,
        limiters: [limiter(sending.email_rate), limiter(sending.sms_rate)],
        sessions: std::array::from_fn(|i| {
            transports[i]
                .as_ref()
                .map(|t| tokio::sync::Semaphore::new(t.sessions(sending.concurrency).max(1)))
        }),
        transports,
        date: SystemTime::from(now),
        stopping: tokio::sync::Notify::new(),
    });
    let bars = progress_bars(opts, &channels, &stats);

    // The ledger writer, and the file transports' outbox writer, are threads of their own, busy
    // for the whole run: the runtime leaves them a core. On 2 cores, one worker instead of two
    // (interleaved runs): SMS 1.19-1.25 -> 1.09-1.21 s, SMTP 7.09-7.18 -> 6.93-7.02 s, files
    // 8.2 -> 6.0-6.9 s, with less CPU in all. A dry run has no such thread and renders on all.
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let workers = if opts.dry_run {
        cores
    } else {
        cores.saturating_sub(1).max(1)
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build()
        .map_err(|e| SendError::Runtime(format!("starting the async runtime: {e}")))?;
    let [email_work, sms_work] = work;
    type Done = Vec<(usize, Result_, Option<RowId>)>;
    let results: Vec<(Channel, Done)> = runtime.block_on(async {
        for (channel, t) in Channel::ALL.iter().zip(&run.transports) {
            if let Some(t) = t
                && let Err(e) = t.check().await
            {
                return Err(check_failed(*channel, e));
            }
        }
        let signals = async {
            wait_for_signal().await;
        };
        let lane = |channel: Channel, items: Vec<Work>| {
            let run = Arc::clone(&run);
            let bar = bars.get(&channel).cloned();
            let concurrency = run.transports[channel as usize]
                .as_ref()
                .map_or(sending.concurrency, |t| t.in_flight(sending.concurrency));
            async move {
                // A fixed set of tasks, each taking the next message when its last one is done:
                // rendering runs on every worker thread, and a finished message does not have to
                // wake this thread to start the next one.
                let items: Arc<[Work]> = items.into();
                let next = Arc::new(AtomicUsize::new(0));
                let tasks: Vec<_> = (0..concurrency.clamp(1, items.len().max(1)))
                    .map(|_| {
                        let (run, items, next, bar) = (
                            Arc::clone(&run),
                            Arc::clone(&items),
                            Arc::clone(&next),
                            bar.clone(),
                        );
                        tokio::spawn(async move {
                            let mut done = Vec::new();
                            while let Some(&w) = items.get(next.fetch_add(1, Ordering::Relaxed)) {
                                let mut row = None;
                                let result = run.deliver(w, &mut row).await;
                                done.push((w.index, result, row));
                                if let Some(b) = &bar {
                                    b.inc(1);
                                }
                            }
                            done
                        })
                    })
                    .collect();
                let mut results = Vec::with_capacity(items.len());
                for t in tasks {
                    results.extend(t.await.expect("a message task panicked"));
                }
                if let Some(b) = &bar {
                    b.finish();
                }
                (channel, results)
            }
        };
        let work_done = async {
            let (e, s) = tokio::join!(
                lane(Channel::Email, email_work),
                lane(Channel::Sms, sms_work)
            );
            if let Some(w) = &run.writer
                && let Err(e) = w.flush().await
            {
                run.stop(format!("ledger: {e}"));
            }
            vec![e, s]
        };
        tokio::pin!(work_done);
        tokio::pin!(signals);
        let mut signalled = false;
        // A signal only raises the stop flag: messages in flight finish and are recorded, the
        // rest are not started.
        let results = loop {
            tokio::select! {
                r = &mut work_done => break r,
                _ = &mut signals, if !signalled => {
                    signalled = true;
                    run.stop("interrupted by a signal".into());
                }
            }
        };
        for t in run.transports.iter().flatten() {
            t.close().await;
        }
        Ok(results)
    })?;
    drop(bars);

    let mut touched: Vec<crate::recipients::RunRow> = plan_deferred;
    touched.reserve_exact(results.iter().map(|(_, items)| items.len()).sum());
    for (channel, items) in results {
        let Some(st) = stats.iter_mut().find(|s| s.channel == Some(channel)) else {
            continue;
        };
        for (index, r, row) in items {
            touched.push(crate::recipients::RunRow {
                index,
                channel,
                row,
                outcome: r.word(),
            });
            match r {
                Result_::Sent => st.sent += 1,
                Result_::Failed { opted_out: true } => st.opted_out += 1,
                Result_::Failed { opted_out: false } => st.failed += 1,
                Result_::Unknown => st.unknown += 1,
                Result_::RetryLater => st.retry_later += 1,
                Result_::NotAttempted => st.not_attempted += 1,
                Result_::Deferred(d) => *st.deferred.entry(d).or_default() += 1,
                Result_::Skipped(s) => *st.skipped.entry(s).or_default() += 1,
            }
        }
    }
    let stopped = run.stop_reason.lock().expect("stop reason").clone();
    drop(run);

    let mut summary = RunSummary {
        campaign: campaign_id.clone(),
        run: run_id,
        dry_run: opts.dry_run,
        seconds: started.elapsed().as_secs_f64(),
        channels: stats,
        stopped,
        recovered_unknown,
        templates_changed_since,
        report: None,
        approval: None,
    };
    if let Some(w) = writer {
        let mut l = w.finish();
        let outcome = match summary.exit() {
            Exit::Ok => "completed",
            Exit::Failed => "completed with failures",
            _ => "stopped",
        };
        l.end_run(
            run_id.expect("a run"),
            clock.now(),
            outcome,
            &summary.one_line(),
        )?;
        touched.sort_by_key(|r| (r.channel, r.index));
        let path =
            crate::recipients::write_run_report(&loaded, &l, run_id.expect("a run"), &touched)
                .map_err(|e| SendError::Runtime(e.to_string()))?;
        summary.report = Some(path);
    }
    // A send is the last thing its process does: the contact list and the report's rows are
    // left to the operating system instead of being freed an allocation at a time (600,000
    // for 50,000 contacts: SMS benchmark -20-50 ms, 4 interleaved pairs).
    std::mem::forget(loaded);
    std::mem::forget(touched);
    Ok(summary)
}

#[cfg(unix)]
async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

#[cfg(not(unix))]
async fn wait_for_signal() {
    let _ = tokio::signal::ctrl_c().await;
}

fn progress_bars(
    opts: &SendOptions,
    channels: &[Channel],
    stats: &[ChannelRun],
) -> HashMap<Channel, indicatif::ProgressBar> {
    let mut bars = HashMap::new();
    if !opts.progress || !std::io::stderr().is_terminal() {
        return bars;
    }
    let multi = indicatif::MultiProgress::new();
    let style = indicatif::ProgressStyle::with_template(
        "{prefix:>6} [{bar:40}] {pos}/{len} {per_sec} ETA {eta}",
    )
    .expect("a valid template")
    .progress_chars("=> ");
    for (channel, st) in channels.iter().zip(stats) {
        let bar = multi.add(indicatif::ProgressBar::new(st.due as u64));
        bar.set_style(style.clone());
        bar.set_prefix(channel.as_str());
        bars.insert(*channel, bar);
    }
    bars
}

fn labels(map: &BTreeMap<&'static str, usize>) -> String {
    let mut items: Vec<(&&str, &usize)> = map.iter().filter(|(_, n)| **n > 0).collect();
    items.sort_by_key(|(l, _)| {
        plan::SKIP_ORDER
            .iter()
            .position(|x| x == *l)
            .unwrap_or(usize::MAX)
    });
    items
        .iter()
        .map(|(l, n)| format!("{} {n}", l.replace('_', " ")))
        .collect::<Vec<_>>()
        .join(", ")
}

impl RunSummary {
    /// One line, stored with the run in the ledger.
    pub fn one_line(&self) -> String {
        self.channels
            .iter()
            .map(|c| {
                format!(
                    "{}: {} sent, {} deferred, {} failed, {} unknown",
                    c.channel.map(|c| c.as_str()).unwrap_or(""),
                    c.sent,
                    c.deferred.values().sum::<usize>(),
                    c.failed,
                    c.unknown
                )
            })
            .collect::<Vec<_>>()
            .join("; ")
    }
}

impl std::fmt::Display for RunSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let what = if self.dry_run {
            "dry run (nothing sent)"
        } else {
            "run"
        };
        match self.run {
            Some(id) => writeln!(
                f,
                "Campaign {}, {what} {id}: {:.1}s",
                self.campaign, self.seconds
            )?,
            None => writeln!(
                f,
                "Campaign {}, {what}: {:.1}s",
                self.campaign, self.seconds
            )?,
        }
        if let Some(a) = &self.approval {
            writeln!(f, "Approval: {a}")?;
        }
        if let Some(since) = &self.templates_changed_since {
            writeln!(
                f,
                "Warning: the templates changed since this campaign first sent ({since}): \
                 messages from now on differ from earlier ones"
            )?;
        }
        if self.recovered_unknown > 0 {
            writeln!(
                f,
                "Warning: {} messages were in flight when an earlier run died; their outcome is \
                 unknown and they are not resent (check, then use --resend-unknown)",
                self.recovered_unknown
            )?;
        }
        let sent_word = if self.dry_run { "would send" } else { "sent" };
        writeln!(
            f,
            "{:<7}{:>11}{:>10}{:>9}{:>8}{:>9}{:>14}",
            "", sent_word, "deferred", "skipped", "failed", "unknown", "already done"
        )?;
        for c in &self.channels {
            writeln!(
                f,
                "{:<7}{:>11}{:>10}{:>9}{:>8}{:>9}{:>14}",
                c.channel.map(|c| c.as_str()).unwrap_or(""),
                c.sent,
                c.deferred.values().sum::<usize>(),
                c.skipped.values().sum::<usize>(),
                c.failed + c.opted_out,
                c.unknown,
                c.already.values().sum::<usize>()
            )?;
        }
        for c in &self.channels {
            let name = c.channel.map(|c| c.as_str()).unwrap_or("");
            if !c.skipped.is_empty() {
                writeln!(f, "Skipped {name}: {}", labels(&c.skipped))?;
            }
            if c.deferred.values().any(|n| *n > 0) {
                writeln!(f, "Deferred {name} to a later run: {}", labels(&c.deferred))?;
            }
            if c.opted_out > 0 {
                writeln!(f, "Opted out {name}: {} (now suppressed)", c.opted_out)?;
            }
            if c.retry_later > 0 {
                writeln!(
                    f,
                    "Retry later {name}: {} (a rerun retries them)",
                    c.retry_later
                )?;
            }
            if c.not_attempted > 0 {
                writeln!(
                    f,
                    "Not attempted {name}: {} (limit or stop; a rerun sends them)",
                    c.not_attempted
                )?;
            }
        }
        if let Some(reason) = &self.stopped {
            writeln!(f, "Stopped early: {reason}")?;
        }
        if let Some(report) = &self.report {
            write!(f, "Report: {}", crate::paths::show_path(report))?;
        }
        Ok(())
    }
}

/// What `send --test-to` did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct TestSend {
    pub channel: Channel,
    pub to: String,
    pub contact: String,
    pub delivered: bool,
    pub detail: String,
}

impl std::fmt::Display for TestSend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Test {} of contact {} to {}: {}",
            self.channel, self.contact, self.to, self.detail
        )
    }
}

/// `send --test-to ADDR`: the messages of `--contact KEY` (else the first contact due on that
/// channel) go to a staff address or number, whatever the hour, cap, consent, suppression or
/// ledger say; nothing is recorded against the patient, and the unsubscribe link is inert.
pub fn test_to(
    loaded: &Loaded,
    to: &str,
    contact_key: Option<&str>,
) -> Result<TestSend, SendError> {
    let bad = |m: String| SendError::Runtime(m);
    let (channel, address) = if to.contains('@') {
        let e = crate::address::parse_email(to).map_err(|e| bad(format!("--test-to: {e}")))?;
        (Channel::Email, e.written)
    } else {
        let p = crate::address::normalise_phone(to, loaded.campaign.clinic.region)
            .map_err(|e| bad(format!("--test-to: {e}")))?;
        (Channel::Sms, p)
    };
    if !loaded.campaign.channels.contains(&channel) {
        return Err(bad(format!(
            "--test-to {to}: {channel} is not enabled in this campaign"
        )));
    }
    let index = match contact_key {
        Some(key) => loaded.find_contact(key).ok_or_else(|| {
            bad(format!(
                "--contact {key}: no contact with that id, email or phone"
            ))
        })?,
        None => (0..loaded.contacts.contacts.len())
            .find(|&i| loaded.outcome(i, channel, false).decision == Decision::Due)
            .ok_or_else(|| {
                bad(format!(
                    "no contact is due on {channel}; name one with --contact"
                ))
            })?,
    };
    let contact = &loaded.contacts.contacts[index];
    let patient_address = contact
        .address(channel)
        .ok_or_else(|| {
            bad(format!(
                "contact {} has no valid {channel} address",
                contact.id
            ))
        })?
        .to_string();
    let rendered = loaded
        .render(index, channel, &patient_address, true)
        .map_err(|e| bad(format!("contact {}: {e}", contact.id)))?;
    let clock = Clock::from_env().map_err(SendError::Runtime)?;
    let message = match &rendered {
        Rendered::Email { parts, token, .. } => {
            let settings = loaded.campaign.email.as_ref().expect("enabled");
            let staff: lettre::Address = address
                .parse()
                .map_err(|e| bad(format!("--test-to {to}: {e}")))?;
            let m = crate::message::build_email(
                &loaded.campaign,
                settings,
                contact,
                parts,
                token,
                SystemTime::from(clock.now()),
                Some(&staff),
            )
            .map_err(|e| bad(e.to_string()))?;
            Outgoing::Email(EmailOut {
                from: settings.from.email.to_string(),
                to: address.clone(),
                bytes: crate::message::wire(settings, &m, SystemTime::from(clock.now())),
                campaign: loaded.campaign.id.clone(),
                contact_id: format!("test-{}", contact.id),
            })
        }
        Rendered::Sms { body, count, .. } => Outgoing::Sms(SmsOut {
            to: address.clone(),
            from: loaded.campaign.sms.as_ref().expect("enabled").from.clone(),
            body: body.clone(),
            encoding: count.encoding,
            segments: count.segments,
            campaign: loaded.campaign.id.clone(),
            contact: format!("test-{}", contact.id),
        }),
    };
    let t = transport(loaded, channel)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| SendError::Runtime(format!("starting the async runtime: {e}")))?;
    let delivery = runtime.block_on(async {
        t.check().await.map_err(|e| check_failed(channel, e))?;
        let delivery = t.send(&message).await;
        t.close().await;
        Ok::<_, SendError>(delivery)
    })?;
    let (delivered, detail) = match delivery {
        Delivery::Sent { provider_id } => (true, format!("sent ({provider_id})")),
        Delivery::Transient { error, .. }
        | Delivery::Permanent { error }
        | Delivery::OptedOut { error }
        | Delivery::Unknown { error }
        | Delivery::Fatal { error } => (false, format!("not sent: {error}")),
    };
    Ok(TestSend {
        channel,
        to: address,
        contact: contact.id.clone(),
        delivered,
        detail,
    })
}
