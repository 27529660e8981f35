//! One message of a run, from its turn to its recorded outcome. The order is what keeps the
//! never-twice promise: wait for the rate limiter; decide again *now* (quiet hours, the window
//! and the daily cap move while a run goes on); render and build; **claim it in the ledger and
//! wait for that commit**; take a session; hand it to the transport; record what the transport
//! said. Whether to retry is the transport's call ([`Delivery`]); how long to wait is the run's.

use std::fmt;
use std::time::Duration;

use super::lane::{Lane, Run};
use crate::model::{Channel, Masked, State};
use crate::plan::{Decision, Defer, Skip};
use crate::render::Rendered;
use crate::store::ledger::{self, Claim, Claimed, RowId, WriterHandle};
use crate::transport::{Delivery, EmailOut, SmsOut};

/// The longest `Retry-After` a run waits for; beyond it the run stops (exit 3).
const LONGEST_WAIT: Duration = Duration::from_secs(300);

/// Why a message was skipped when the ledger refused its claim: another run sent it, or has it
/// in flight.
pub(super) const ALREADY_SENT: &str = "already_sent";

/// What became of one message in this run.
pub(super) enum Attempt {
    Sent,
    Failed { opted_out: bool },
    Unknown,
    RetryLater,
    NotAttempted,
    Deferred(&'static str),
    Skipped(&'static str),
}

impl Attempt {
    /// The word the run report shows.
    pub fn word(&self) -> std::borrow::Cow<'static, str> {
        match self {
            Attempt::Sent => "sent".into(),
            Attempt::Failed { opted_out: true } => "failed: opted out".into(),
            Attempt::Failed { opted_out: false } => "failed".into(),
            Attempt::Unknown => "unknown".into(),
            Attempt::RetryLater => "retry later".into(),
            Attempt::NotAttempted => "not attempted".into(),
            Attempt::Deferred(d) => format!("deferred: {}", d.replace('_', " ")).into(),
            Attempt::Skipped(s) => format!("skipped: {}", s.replace('_', " ")).into(),
        }
    }
}

/// Why a message that was due could not be made when its turn came.
#[derive(Debug)]
pub(super) enum Unsendable {
    /// Deciding again with the message rendered skipped it (a template failed for this
    /// contact, or its SMS is over `max_segments`).
    Skipped(Skip),
    Build(crate::message::BuildError),
    /// Settled since the plan was made.
    NotRendered,
}

impl fmt::Display for Unsendable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Unsendable::Skipped(s) => s.fmt(f),
            Unsendable::Build(e) => e.fmt(f),
            Unsendable::NotRendered => f.write_str("nothing rendered"),
        }
    }
}

/// A channel's message: how the run makes one for a contact, and which lane carries it.
pub(super) trait Outbound: Sized + Send + Sync + 'static {
    /// The lane of this kind of message.
    fn lane(run: &Run) -> &Lane<Self>;

    /// Renders and builds contact `index`'s message.
    fn build(run: &Run, index: usize) -> Result<Self, Unsendable>;

    /// The segments an SMS is billed as, recorded with its outcome (none for an email).
    fn segments(&self) -> Option<u32> {
        None
    }
}

/// Renders contact `index` on `channel` as `send` would now, or says why it cannot go.
fn rendered(run: &Run, index: usize, channel: Channel) -> Result<Rendered, Unsendable> {
    let outcome = run.loaded.outcome(index, channel, false);
    match (outcome.decision, outcome.message) {
        (Decision::Skipped(s), _) => Err(Unsendable::Skipped(s)),
        (_, Some(message)) => Ok(message),
        (_, None) => Err(Unsendable::NotRendered),
    }
}

impl Outbound for EmailOut {
    fn lane(run: &Run) -> &Lane<Self> {
        &run.email
    }

    fn build(run: &Run, index: usize) -> Result<Self, Unsendable> {
        let loaded = &*run.loaded;
        let contact = &loaded.contacts.contacts[index];
        let rendered = rendered(run, index, Channel::Email)?;
        let message = loaded
            .email_message(index, &rendered, run.date)
            .expect("a rendered email")
            .map_err(Unsendable::Build)?;
        let Rendered::Email { token, .. } = &rendered else {
            unreachable!("an email renders as one")
        };
        let settings = loaded.campaign.email.as_ref().expect("email is enabled");
        Ok(EmailOut {
            from: settings.envelope_from(token),
            to: contact
                .email
                .clone()
                .expect("an email that will go has an address"),
            bytes: crate::message::wire(settings, &message, run.date),
            campaign: loaded.campaign.id.clone(),
            contact_id: contact.id.clone(),
        })
    }
}

impl Outbound for SmsOut {
    fn lane(run: &Run) -> &Lane<Self> {
        &run.sms
    }

    fn build(run: &Run, index: usize) -> Result<Self, Unsendable> {
        let loaded = &*run.loaded;
        let contact = &loaded.contacts.contacts[index];
        let Rendered::Sms { body, count, .. } = rendered(run, index, Channel::Sms)? else {
            unreachable!("an SMS renders as one")
        };
        let settings = loaded.campaign.sms.as_ref().expect("sms is enabled");
        Ok(SmsOut {
            to: contact
                .phone
                .clone()
                .expect("an SMS that will go has a number"),
            from: settings.from.clone(),
            body,
            encoding: count.encoding,
            segments: count.segments,
            campaign: loaded.campaign.id.clone(),
            contact: contact.id.clone(),
        })
    }

    fn segments(&self) -> Option<u32> {
        Some(self.segments as u32)
    }
}

impl Run {
    /// Tries contact `index`'s message of type `M`; `row` is set to its ledger row once a
    /// claim is granted.
    pub async fn deliver<M: Outbound>(&self, index: usize, row: &mut Option<RowId>) -> Attempt {
        let lane = M::lane(self);
        let channel = lane.channel;
        let contact = &self.loaded.contacts.contacts[index];
        if self.stopped() {
            return Attempt::NotAttempted;
        }
        // A dry run sends nothing, so nothing paces it: at `sms_rate = "1/s"` a list of 20,000
        // would otherwise take five and a half hours to preview.
        if let Some(pace) = lane.shared_pace.as_ref().filter(|_| !self.opts.dry_run) {
            pace.until_ready().await;
        } else if let Some(limiter) = lane.limiter.as_ref().filter(|_| !self.opts.dry_run) {
            limiter.until_ready().await;
        }
        if self.stopped() {
            return Attempt::NotAttempted;
        }
        // Quiet hours and the window are decided at dispatch, not only when the plan was made: a
        // long run can cross into quiet hours, or reach `not_after`. The daily cap is the
        // planner's rule too, and its place under the cap is reserved below.
        match self.loaded.decide(index, channel, self.clock.now(), None) {
            Decision::Deferred(d) => return Attempt::Deferred(d.label()),
            Decision::Skipped(s @ (Skip::CampaignEnded | Skip::FrequencyCap)) => {
                return Attempt::Skipped(s.label());
            }
            _ => {}
        }
        if !self.take_limit() {
            return Attempt::NotAttempted;
        }
        if !self.take_cap(lane) {
            self.give_back_limit();
            return Attempt::Deferred(Defer::DailyCap.label());
        }
        let address = contact
            .address(channel)
            .expect("a due message has an address");
        let message = match M::build(self, index) {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(contact = %contact.id, %channel, "not sent: {e}");
                self.give_back(lane);
                return Attempt::Skipped("message_error");
            }
        };
        if self.opts.dry_run {
            return Attempt::Sent;
        }
        let writer = self.writer.as_ref().expect("a writer when not a dry run");
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            match self
                .try_once(lane, writer, index, address, &message, attempt, row)
                .await
            {
                Some(done) => return done,
                None => continue,
            }
        }
    }

    /// Gives back what a message took of the run's limit and the day's cap.
    fn give_back<M>(&self, lane: &Lane<M>) {
        self.give_back_limit();
        self.give_back_cap(lane);
    }

    /// One attempt: claim, session, send, record. `None`: wait was done, try again.
    #[allow(clippy::too_many_arguments)]
    async fn try_once<M: Outbound>(
        &self,
        lane: &Lane<M>,
        writer: &WriterHandle,
        index: usize,
        address: &str,
        message: &M,
        attempt: u32,
        row: &mut Option<RowId>,
    ) -> Option<Attempt> {
        let channel = lane.channel;
        let contact = &self.loaded.contacts.contacts[index];
        // Masked only when a log line is written.
        let masked = Masked(channel, address);
        // What a taken-over row was (a resumed `unknown`, a failure tried again).
        let claim = Claim {
            channel,
            address: address.to_string(),
            contact_id: contact.id.clone(),
            // Indexed with the claim, so that `listen` finds the row of a click.
            token: (channel == Channel::Email).then(|| {
                self.loaded
                    .key
                    .token(&self.loaded.campaign.id, channel, address)
            }),
            consent: contact.consent(channel).evidence(),
            consent_source: Some(contact.consent_source())
                .filter(|s| !s.is_empty())
                .map(str::to_string),
            resumes_unknown: self
                .loaded
                .priors
                .get(channel, address)
                .is_some_and(|p| p.state == State::Unknown),
        };
        let was = match writer.claim(claim).await {
            Ok(Claimed::Granted(claimed)) => {
                *row = Some(claimed.row);
                claimed.was
            }
            Ok(Claimed::Refused) => {
                // Already sent or in flight: the ledger says no, and it is always right.
                self.give_back(lane);
                if let Some(pace) = &lane.shared_pace {
                    pace.give_back();
                }
                return Some(Attempt::Skipped(ALREADY_SENT));
            }
            Ok(Claimed::Capped) => {
                // Another campaign messaged the patient since the plan was made.
                tracing::info!(contact = %contact.id, %channel, to = %masked, "frequency cap reached since the run began: not sent now");
                self.give_back(lane);
                if let Some(pace) = &lane.shared_pace {
                    pace.give_back();
                }
                return Some(Attempt::Deferred("frequency_cap"));
            }
            Ok(Claimed::DailyCapped) => {
                // The campaign's other runs (PostgreSQL) took the rest of the day's cap.
                self.give_back(lane);
                if let Some(pace) = &lane.shared_pace {
                    pace.give_back();
                }
                return Some(Attempt::Deferred(Defer::DailyCap.label()));
            }
            Ok(Claimed::Suppressed) => {
                // Suppressed since the plan was made: by another run, or an unsubscribe.
                tracing::info!(contact = %contact.id, %channel, to = %masked, "suppressed since the run began: not sent");
                self.give_back(lane);
                if let Some(pace) = &lane.shared_pace {
                    pace.give_back();
                }
                return Some(Attempt::Skipped("suppressed"));
            }
            Err(e) => {
                self.halt(format!("ledger: {e}"));
                self.give_back(lane);
                return Some(Attempt::NotAttempted);
            }
        };
        // A message that had to wait for a session and whose turn came after the run stopped is
        // released unsent; one that goes at once is in flight and finishes, unless the run
        // halted (the server or the ledger failing).
        let (session, waited) = match &lane.sessions {
            Some(s) => match s.try_acquire() {
                Ok(p) => (Some(p), false),
                Err(_) => (Some(s.acquire().await.expect("never closed")), true),
            },
            None => (None, false),
        };
        let recorder = Recorder {
            writer,
            channel,
            address,
            row: *row,
            segments: message.segments(),
        };
        if (waited && self.stopped()) || self.halted() {
            drop(session);
            // Released: the row goes back to what it was (a new one to a retryable failure,
            // which `released` keeps from counting as an attempt).
            let (state, permanent) = was.unwrap_or((State::Failed, false));
            recorder.release(state, permanent);
            self.give_back(lane);
            return Some(Attempt::NotAttempted);
        }
        let transport = lane.transport.as_ref().expect("a transport");
        let delivery = transport.send(message).await;
        // The session is held until this outcome is counted: a failure that halts the run does
        // so before the next message can take the session.
        let done = self.settle(lane, &recorder, &contact.id, masked, attempt, delivery);
        match done {
            Settled::Done(attempt) => Some(attempt),
            Settled::Retry(wait) => {
                // Others use the session while this one waits to retry.
                drop(session);
                self.pause(wait).await;
                if self.stopped() {
                    self.give_back_cap(lane);
                    return Some(Attempt::RetryLater);
                }
                None
            }
        }
    }

    /// Records what the transport said of one attempt, and what the run makes of it.
    fn settle<M>(
        &self,
        lane: &Lane<M>,
        recorder: &Recorder<'_>,
        contact: &str,
        masked: Masked<'_>,
        attempt: u32,
        delivery: Delivery,
    ) -> Settled {
        let channel = lane.channel;
        match delivery {
            Delivery::Sent { provider_id } => {
                tracing::info!(%contact, %channel, to = %masked, id = %provider_id, "sent");
                recorder.record(State::Sent, false, Some(provider_id), None);
                lane.consecutive
                    .store(0, std::sync::atomic::Ordering::SeqCst);
                Settled::Done(Attempt::Sent)
            }
            Delivery::Permanent { error } => {
                tracing::warn!(%contact, %channel, to = %masked, "failed: {error}");
                recorder.record(State::Failed, true, None, Some(error));
                self.give_back_cap(lane);
                self.count_failure(lane);
                Settled::Done(Attempt::Failed { opted_out: false })
            }
            Delivery::OptedOut { error } => {
                tracing::info!(%contact, %channel, to = %masked, "opted out: {error}");
                // Suppressed from now on, for every campaign of this state directory.
                recorder.opted_out(&error);
                self.give_back_cap(lane);
                Settled::Done(Attempt::Failed { opted_out: true })
            }
            Delivery::Unknown { error } => {
                tracing::warn!(%contact, %channel, to = %masked, "outcome unknown: {error}");
                recorder.record(State::Unknown, false, None, Some(error));
                // A server that takes messages and never answers stops the run like one that
                // refuses them: otherwise the whole list would be left unknown.
                self.count_failure(lane);
                Settled::Done(Attempt::Unknown)
            }
            Delivery::Fatal { error } => {
                // Not the patient's fault: the message stays retryable, the run stops.
                let not_sent = format!("not sent: {error}");
                recorder.record(State::Failed, false, None, Some(not_sent));
                self.give_back_cap(lane);
                self.halt(format!("{channel}: {error}"));
                Settled::Done(Attempt::NotAttempted)
            }
            Delivery::Transient { error, retry_after } => {
                tracing::warn!(%contact, %channel, to = %masked, attempt, "transient failure: {error}");
                recorder.record(State::Failed, false, None, Some(error));
                self.count_failure(lane);
                self.after_transient(lane, attempt, retry_after)
            }
        }
    }

    /// Whether a transient failure is tried again in this run, and after how long.
    fn after_transient<M>(
        &self,
        lane: &Lane<M>,
        attempt: u32,
        retry_after: Option<Duration>,
    ) -> Settled {
        let channel = lane.channel;
        if let Some(wait) = retry_after.filter(|w| *w > LONGEST_WAIT) {
            // The gateway wants no more for a long while, whatever attempt this was: a later
            // run resumes.
            self.give_back_cap(lane);
            self.halt(format!(
                "{channel}: the server asks to wait {} s (Retry-After), longer than a run waits \
                 ({} s); a later run resumes",
                wait.as_secs(),
                LONGEST_WAIT.as_secs()
            ));
            return Settled::Done(Attempt::RetryLater);
        }
        if attempt >= self.loaded.campaign.sending.max_attempts || self.stopped() {
            self.give_back_cap(lane);
            return Settled::Done(Attempt::RetryLater);
        }
        Settled::Retry(self.backoff(attempt - 1, retry_after))
    }
}

/// What an attempt comes to.
enum Settled {
    Done(Attempt),
    /// Try again after this long.
    Retry(Duration),
}

/// Writes one claimed message's outcomes to the ledger.
struct Recorder<'a> {
    writer: &'a WriterHandle,
    channel: Channel,
    address: &'a str,
    row: Option<RowId>,
    /// An SMS's segments, written when it is recorded sent.
    segments: Option<u32>,
}

impl Recorder<'_> {
    fn outcome(
        &self,
        state: State,
        permanent: bool,
        provider_id: Option<String>,
        error: Option<String>,
    ) -> ledger::Outcome {
        ledger::Outcome {
            channel: self.channel,
            address: self.address.to_string(),
            state,
            permanent,
            provider_id,
            error,
            suppress: None,
            released: false,
            row: self.row,
            segments: self.segments.filter(|_| state == State::Sent),
        }
    }

    fn record(
        &self,
        state: State,
        permanent: bool,
        provider_id: Option<String>,
        error: Option<String>,
    ) {
        self.writer
            .record(self.outcome(state, permanent, provider_id, error));
    }

    /// A failure for good that also suppresses the address from now on.
    fn opted_out(&self, error: &str) {
        let reason = format!("opted out: {error}");
        self.writer.record(ledger::Outcome {
            suppress: Some(reason.clone()),
            ..self.outcome(State::Failed, true, None, Some(reason))
        });
    }

    /// The claim given back unsent: the row returns to `state`.
    fn release(&self, state: State, permanent: bool) {
        self.writer.record(ledger::Outcome {
            released: true,
            ..self.outcome(
                state,
                permanent,
                None,
                Some("not sent: the run stopped before its turn".into()),
            )
        });
    }
}
