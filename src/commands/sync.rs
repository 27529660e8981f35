//! `outreach sync`: asks the SMS gateway what became of the campaign's sent SMS whose delivery
//! is not final yet, and settles the SMS left `unknown`. For a gateway that pushes receipts
//! `listen` is the first way; `sync` fills what a receipt never brought (a webhook down, a
//! receipt lost) and what a lost send reply left open.
//!
//! - **Status.** Every sent part with no final receipt is looked up (Twilio's Message resource)
//!   and recorded as a receipt, through the statement `listen` uses, so the two agree and a
//!   final state never goes back; a final part is never asked about again, so a rerun resumes
//!   and a second run changes nothing. An error code that says the number cannot take SMS
//!   (Twilio 21610 opted out, 30006 a landline: `webhook::ErrorCodes`, the table `listen`
//!   reads too) suppresses it in the same transaction.
//! - **Unknown rows.** The gateway's list of messages to the number since the claim's day is
//!   searched for the same text, which is rendered again from the contact and the templates
//!   (the ledger does not keep message bodies). Found: the row is `sent`, with that id. Not
//!   found and the claim older than `settle_after`: a retryable failure, so a later `send`
//!   delivers it. Younger, or the text cannot be rendered again: it stays `unknown`.
//!   Matching the text, not only the number and the day, keeps another campaign's message to
//!   the same number that day from passing for this one; if the templates changed since, the
//!   text no longer matches, and after the delay the row becomes retryable: the one way this
//!   can send twice, which an edit after approval already makes `send` refuse.
//! - **Pacing.** One lookup at a time, no faster than `sending.sms_rate`; a 429 waits its
//!   `Retry-After` and asks again; `--limit` and `--max-time` bound a run.

use std::fmt;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::time::Instant;

use crate::config::SmsTransport;
use crate::load::Loaded;
use crate::model::{Channel, Exit, mask};
use crate::render::Rendered;
use crate::store::feedback::ReceiptRecord;
use crate::store::ledger::{Ledger, LedgerError};
use crate::store::lock::{self, LockError};
use crate::store::sync::{OpenPart, UnknownSms};
use crate::transport::http::GatewayError;
use crate::transport::http::lookup::{Listed, Lookup, LookupError, MAX_PAGES, Unsupported};
use crate::webhook::{DeliveryState, ErrorCodes, Receipt};

/// How long after its claim an `unknown` SMS the gateway does not list becomes retryable.
pub const DEFAULT_SETTLE_AFTER: Duration = Duration::from_secs(600);
/// How long a run may take by default.
pub const DEFAULT_MAX_TIME: Duration = Duration::from_secs(600);
/// Asks about one message again at most this many times after a 429.
const MAX_THROTTLED: u32 = 5;
/// A `Retry-After` longer than this stops the run instead (cron's next run resumes).
const MAX_WAIT: Duration = Duration::from_secs(60);

/// What to do.
#[derive(Debug, Clone)]
pub struct Options {
    /// Lookups at most (status and lists together).
    pub limit: Option<usize>,
    pub max_time: Duration,
    pub settle_after: Duration,
}

/// Why `sync` could not run.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    #[error(transparent)]
    Lock(#[from] LockError),
    #[error("sms.gateway: {0}")]
    Gateway(#[from] GatewayError),
    #[error("the campaign sends no SMS: nothing to sync")]
    NoSms,
    #[error("starting the runtime: {0}")]
    Runtime(std::io::Error),
}

/// What a run did.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Synced {
    pub campaign: String,
    /// Why nothing was asked (a gateway without lookups), when so.
    pub unsupported: Option<String>,
    pub asked: usize,
    pub delivered: usize,
    pub undelivered: usize,
    pub pending: usize,
    pub not_found: usize,
    pub failed: usize,
    pub suppressed: usize,
    pub unknown_sent: usize,
    pub unknown_retryable: usize,
    pub unknown_kept: usize,
    /// The gateway lists no sent messages, so the unknown rows were not asked about.
    pub unlisted: bool,
    /// Open parts and unknown rows not reached (the limit or the time bound).
    pub left: usize,
    /// Why the run stopped early (401, throttled beyond the limit, the time bound).
    pub stopped: Option<String>,
}

impl Synced {
    /// 0 all asked; 1 some lookups failed; 3 stopped early (a rerun resumes).
    pub fn exit(&self) -> Exit {
        if self.stopped.is_some() {
            Exit::Stopped
        } else if self.failed > 0 {
            Exit::Failed
        } else {
            Exit::Ok
        }
    }
}

impl fmt::Display for Synced {
    /// Lines without a final newline: the caller ends the output.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(why) = &self.unsupported {
            return f.write_str(why);
        }
        let mut lines = vec![
            format!(
                "{}: asked {}: {} delivered, {} undelivered, {} pending, {} not found, {} failed; \
                 {} suppressed",
                self.campaign,
                self.asked,
                self.delivered,
                self.undelivered,
                self.pending,
                self.not_found,
                self.failed,
                self.suppressed
            ),
            format!(
                "unknown SMS: {} found sent, {} retryable, {} still unknown",
                self.unknown_sent, self.unknown_retryable, self.unknown_kept
            ),
        ];
        if self.unlisted {
            lines.push(
                "the gateway has no list of sent messages to settle unknown SMS: they stay \
                 unknown (send --resend-unknown sends them again, at the risk of a second text)"
                    .into(),
            );
        }
        if self.left > 0 {
            lines.push(format!("{} left for the next run", self.left));
        }
        if let Some(why) = &self.stopped {
            lines.push(format!("stopped: {why}"));
        }
        f.write_str(&lines.join("\n"))
    }
}

/// Runs `sync` for `loaded`'s campaign, holding its run lock.
pub fn run(loaded: &Loaded, options: &Options) -> Result<Synced, SyncError> {
    let campaign = &loaded.campaign;
    let settings = match campaign.sms.as_ref().map(|s| &s.transport) {
        Some(SmsTransport::Http(g)) => g,
        Some(_) => {
            return Ok(Synced {
                campaign: campaign.id.clone(),
                unsupported: Some("the SMS go to a file outbox: nothing to ask".into()),
                ..Synced::default()
            });
        }
        None => return Err(SyncError::NoSms),
    };
    let lookup = match Lookup::new(settings) {
        Ok(l) => l,
        Err(Unsupported::Gateway(e)) => return Err(e.into()),
        Err(e) => {
            return Ok(Synced {
                campaign: campaign.id.clone(),
                unsupported: Some(e.to_string()),
                ..Synced::default()
            });
        }
    };
    let _lock = lock::acquire(&campaign.sending.state_dir, &campaign.id)?;
    let store = campaign.sending.store();
    let ledger = Ledger::open_store(&store)?;
    if !ledger.hold_run_lock(&campaign.id)? {
        return Err(LockError::held_in_store(&campaign.id, &Ledger::name_of(&store)).into());
    }
    let interval = campaign
        .sending
        .sms_rate
        .map(|r| r.per / r.count.max(1))
        .unwrap_or_default();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(SyncError::Runtime)?;
    let mut run = Run {
        loaded,
        lookup: &lookup,
        ledger,
        options,
        codes: settings.error_codes(),
        interval,
        next: Instant::now(),
        deadline: Instant::now() + options.max_time,
        done: Synced {
            campaign: campaign.id.clone(),
            ..Synced::default()
        },
    };
    runtime.block_on(run.all())?;
    Ok(run.done)
}

/// One run's state.
struct Run<'a> {
    loaded: &'a Loaded,
    lookup: &'a Lookup,
    ledger: Ledger,
    options: &'a Options,
    /// The error codes that suppress a number.
    codes: ErrorCodes,
    /// The least time between two lookups.
    interval: Duration,
    /// When the next lookup may go.
    next: Instant,
    deadline: Instant,
    done: Synced,
}

/// Whether to go on.
enum Flow {
    Go,
    Stop,
}

impl Run<'_> {
    async fn all(&mut self) -> Result<(), SyncError> {
        let campaign = self.loaded.campaign.id.clone();
        let open = self.ledger.open_sms_parts(&campaign)?;
        let unknown = self.ledger.unknown_sms(&campaign)?;
        // Without a list to search, an unknown row cannot be settled: it stays, and says so.
        let unknown = if self.lookup.lists() || unknown.is_empty() {
            unknown
        } else {
            self.done.unknown_kept = unknown.len();
            self.done.unlisted = true;
            Vec::new()
        };
        let total = open.len() + unknown.len();
        let mut seen = 0;
        for part in &open {
            if let Flow::Stop = self.status(part).await? {
                self.done.left = total - seen;
                return Ok(());
            }
            seen += 1;
        }
        for row in &unknown {
            if let Flow::Stop = self.unknown(row).await? {
                self.done.left = total - seen;
                return Ok(());
            }
            seen += 1;
        }
        Ok(())
    }

    /// Waits for the next lookup's turn; `Stop` when the limit or the time bound is reached.
    async fn turn(&mut self) -> Flow {
        if self.options.limit.is_some_and(|n| self.done.asked >= n) {
            return Flow::Stop;
        }
        if self.next.max(Instant::now()) >= self.deadline {
            self.done.stopped = Some(format!(
                "the time bound ({}s) was reached",
                self.options.max_time.as_secs_f64()
            ));
            return Flow::Stop;
        }
        tokio::time::sleep_until(self.next).await;
        self.next = Instant::now() + self.interval;
        self.done.asked += 1;
        Flow::Go
    }

    /// Runs `ask` (one lookup), waiting out 429s; `Err(Stop)` when the run must stop.
    async fn ask<T, F, Fut>(&mut self, ask: F) -> Result<Result<T, LookupError>, Flow>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Result<T, LookupError>>,
    {
        let mut throttled = 0;
        loop {
            if let Flow::Stop = self.turn().await {
                return Err(Flow::Stop);
            }
            match ask().await {
                Err(LookupError::Throttled {
                    status,
                    retry_after,
                }) => {
                    let wait = retry_after.unwrap_or(Duration::from_secs(1));
                    throttled += 1;
                    if throttled > MAX_THROTTLED || wait > MAX_WAIT {
                        self.done.stopped = Some(format!(
                            "the gateway throttles (HTTP {status}, Retry-After {}s)",
                            wait.as_secs_f64()
                        ));
                        return Err(Flow::Stop);
                    }
                    self.next = self.next.max(Instant::now() + wait);
                }
                Err(LookupError::Rejected { status, detail }) => {
                    self.done.stopped = Some(format!(
                        "the gateway rejects the credentials (HTTP {status}): {detail}"
                    ));
                    return Err(Flow::Stop);
                }
                other => return Ok(other),
            }
        }
    }

    /// Asks about one sent part and records the answer.
    async fn status(&mut self, part: &OpenPart) -> Result<Flow, SyncError> {
        let lookup = self.lookup;
        let answer = match self.ask(|| lookup.status(&part.provider_id)).await {
            Ok(a) => a,
            Err(flow) => return Ok(flow),
        };
        let receipt = match answer {
            Ok(r) => Receipt {
                recipient: Some(part.address.clone()),
                ..r
            },
            Err(LookupError::NotFound) => {
                self.done.not_found += 1;
                return Ok(Flow::Go);
            }
            Err(e) => {
                tracing::warn!("sync {}: {e}", part.provider_id);
                self.done.failed += 1;
                return Ok(Flow::Go);
            }
        };
        match receipt.state {
            DeliveryState::Delivered => self.done.delivered += 1,
            DeliveryState::Undelivered => self.done.undelivered += 1,
            DeliveryState::Pending => self.done.pending += 1,
        }
        let record = ReceiptRecord::new(receipt, &self.codes, "outreach sync");
        if self
            .ledger
            .record_lookup(&record, self.loaded.now)?
            .suppressed
        {
            self.done.suppressed += 1;
        }
        Ok(Flow::Go)
    }

    /// Settles one `unknown` row, if the gateway's list and the delay allow.
    async fn unknown(&mut self, row: &UnknownSms) -> Result<Flow, SyncError> {
        let Some(body) = self.body(row) else {
            self.done.unknown_kept += 1;
            return Ok(Flow::Go);
        };
        let since = format!("{}T00:00:00Z", row.created_at.get(..10).unwrap_or_default());
        let found = match self.find_sent(&row.address, &since, &body).await {
            Ok(Ok(found)) => found,
            Ok(Err(e)) => {
                tracing::warn!("sync {}: {e}", mask(Channel::Sms, &row.address));
                self.done.failed += 1;
                self.done.unknown_kept += 1;
                return Ok(Flow::Go);
            }
            Err(flow) => return Ok(flow),
        };
        let now = self.loaded.now;
        if let Some(m) = found {
            if self.ledger.settle_sent(row.row, &m.sid, now)? {
                self.done.unknown_sent += 1;
            }
        } else if old_enough(&row.updated_at, now, self.options.settle_after) {
            let why = format!(
                "sync: the gateway lists no such message {}s after the claim",
                self.options.settle_after.as_secs()
            );
            if self.ledger.settle_absent(row.row, &why, now)? {
                self.done.unknown_retryable += 1;
            }
        } else {
            self.done.unknown_kept += 1;
        }
        Ok(Flow::Go)
    }

    /// The message with `body` the gateway lists as sent to `to` since `since`, reading its
    /// pages (each a lookup, paced and counted) until found or [`MAX_PAGES`] are read.
    async fn find_sent(
        &mut self,
        to: &str,
        since: &str,
        body: &str,
    ) -> Result<Result<Option<Listed>, LookupError>, Flow> {
        let lookup = self.lookup;
        let mut next: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let page = match self
                .ask(|| lookup.sent_to(to, since, next.as_deref()))
                .await?
            {
                Ok(p) => p,
                Err(e) => return Ok(Err(e)),
            };
            if let Some(m) = page
                .messages
                .into_iter()
                .find(|m| m.to == to && m.body == body)
            {
                return Ok(Ok(Some(m)));
            }
            match page.next {
                Some(n) => next = Some(n),
                None => break,
            }
        }
        Ok(Ok(None))
    }

    /// The text `row`'s contact is sent, rendered again; `None` when the contact is gone or
    /// its text cannot be rendered.
    fn body(&self, row: &UnknownSms) -> Option<String> {
        let index = self.loaded.find_contact(&row.contact_id)?;
        match self.loaded.render(index, Channel::Sms, &row.address, false) {
            Ok(Rendered::Sms { body, .. }) => Some(body),
            _ => None,
        }
    }
}

/// Whether `at` (a ledger timestamp) is at least `delay` before `now`.
fn old_enough(at: &str, now: DateTime<Utc>, delay: Duration) -> bool {
    DateTime::parse_from_rfc3339(at).is_ok_and(|t| {
        now.signed_duration_since(t)
            .to_std()
            .is_ok_and(|d| d >= delay)
    })
}
