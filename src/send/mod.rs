//! `outreach send`: what is due and not yet sent goes out, every outcome recorded in the ledger.
//!
//! A run takes the campaign's lock, turns an earlier run's leftover `sending` rows into
//! `unknown`, makes the plan (the planner's decision for every contact on every channel), and
//! then works each channel's due messages on its own [`lane`]: a fixed set of tasks, as many as
//! the transport keeps in flight, each taking the next message when its last one is done, paced
//! by a `governor` token bucket. How one message goes, and why that order keeps the never-twice
//! promise, is [`deliver`]. A stop (SIGINT/SIGTERM, a fatal transport error, too many failures
//! in a row) lets messages in flight finish and be recorded. The run ends with its summary
//! ([`summary`]) and its report in `state_dir/reports/`.

mod ahead;
mod deliver;
mod error;
mod heartbeat;
mod lane;
mod options;
mod pace;
mod summary;
mod test_send;
mod workers;

use std::sync::Arc;
use std::time::{Instant, SystemTime};

use chrono::{DateTime, TimeZone, Utc};

pub use error::{SendError, TestToError};
pub use options::SendOptions;
pub use summary::{ChannelRun, Delivered, RunSummary, WindowNotice, window_notice};
pub use test_send::{TestSend, test_to};

use crate::load::Loaded;
use crate::model::{Channel, Exit};
use crate::plan::{Decision, Redo};
use crate::recipients::RunRow;
use crate::store::ledger::{Ledger, Writer};
use crate::store::lock::LockError;
use lane::{Lane, Run};

/// What the ledger says before a run starts, under the lock.
struct Begun {
    ledger: Option<Ledger>,
    run_id: Option<i64>,
    /// The run's number among the campaign's runs.
    run_number: Option<i64>,
    recovered_unknown: usize,
    templates_changed_since: Option<String>,
    /// How many live runs of the campaign began before this one (PostgreSQL).
    earlier_live: u64,
}

/// The plan of a run: counts per channel, each channel's due contacts, and the rows of the
/// deferred for the run report.
struct Planned {
    stats: Vec<ChannelRun>,
    due: [Vec<usize>; 2],
    deferred: Vec<RunRow>,
}

/// Runs `send` (or its dry run) for a loaded campaign. Meant to end its process: `loaded` is
/// not freed when it returns.
pub fn run(mut loaded: Loaded, opts: &SendOptions) -> Result<RunSummary, SendError> {
    let started = Instant::now();
    let channels: Vec<Channel> = loaded
        .campaign
        .channels
        .iter()
        .copied()
        .filter(|c| opts.channel.is_none_or(|o| o == *c))
        .collect();
    let state_dir = loaded.campaign.sending.state_dir.clone();
    // One run at a time on SQLite; on PostgreSQL runs of the campaign share the work, each
    // with its lease (`store/lease.rs`), so no lock file keeps a second one out.
    let shared = loaded.campaign.sending.state_url.is_some();
    let _lock = match opts.dry_run || shared {
        true => None,
        false => Some(crate::store::lock::acquire(
            &state_dir,
            &loaded.campaign.id,
        )?),
    };
    let now = loaded.clock.now();
    loaded.redo = Redo {
        unknown: opts.resend_unknown,
        failed: opts.retry_failed,
    };
    let mut begun = begin(&mut loaded, opts, now)?;
    let mut planned = plan(&loaded, &channels, now);
    start_apart(&mut planned.due, begun.earlier_live);
    let lanes = lanes(
        &loaded,
        opts,
        &channels,
        &planned,
        begun.ledger.as_ref(),
        now,
    );
    let (email, sms) = match lanes {
        Ok(lanes) => lanes,
        Err(e) => {
            return Err(stopped_early(
                begun.ledger.as_mut(),
                begun.run_id,
                &loaded,
                e,
            ));
        }
    };

    // Messages are rendered on every worker thread: they share the loaded campaign.
    let loaded = Arc::new(loaded);
    // A dry run's ledger (if any) was only read; it is dropped here.
    let writer = match (begun.ledger, begun.run_id) {
        (Some(mut l), Some(run)) if !opts.dry_run => {
            let clock = loaded.clock;
            l.set_frequency_cap(loaded.campaign.sending.max_per_patient);
            l.set_daily_cap(loaded.campaign.sending.daily_cap, clinic_day(&loaded, now));
            Some(Writer::start(
                l,
                loaded.campaign.id.clone(),
                run,
                loaded.templates.fingerprint.clone(),
                Arc::new(move || clock.now()),
                lane::sync_before_recording(&email, &sms),
            ))
        }
        _ => None,
    };
    let run = Run::new(
        Arc::clone(&loaded),
        opts,
        writer.as_ref().map(Writer::handle),
        email,
        sms,
        SystemTime::from(now),
    );
    let results = match work(run, &loaded, begun.run_id, &mut planned, &channels) {
        Ok(results) => results,
        Err(e) => {
            let mut l = writer.map(Writer::finish);
            return Err(stopped_early(l.as_mut(), begun.run_id, &loaded, e));
        }
    };
    let stopped = results.stopped.clone();

    let mut summary = RunSummary {
        campaign: loaded.campaign.id.clone(),
        run: begun.run_number,
        dry_run: opts.dry_run,
        seconds: started.elapsed().as_secs_f64(),
        channels: planned.stats,
        stopped,
        recovered_unknown: begun.recovered_unknown,
        templates_changed_since: begun.templates_changed_since,
        report: None,
        delivery: None,
        approval: None,
    };
    let mut touched = planned.deferred;
    results.tally(&mut summary.channels, &mut touched);
    if let Some(w) = writer {
        let run_id = begun.run_id.expect("a run");
        let mut l = w.finish();
        let outcome = match summary.exit() {
            Exit::Ok => "completed",
            Exit::Failed => "completed with failures",
            _ => "stopped",
        };
        l.end_run(run_id, loaded.clock.now(), outcome, &summary.one_line())?;
        // Only where `listen` recorded receipts: the count reads every SMS of the campaign.
        if l.has_receipts()? {
            let tally = l.tally(&loaded.campaign.id, crate::store::tally::Detail::Counts)?;
            let back = l.feedback_counts(&tally)?;
            summary.delivery = (back.delivered + back.undelivered > 0).then_some(Delivered {
                delivered: back.delivered,
                undelivered: back.undelivered,
            });
        }
        touched.sort_by_key(|r| (r.channel, r.index));
        summary.report = Some(crate::recipients::write_run_report(
            &loaded,
            &l,
            begun.run_number.expect("a run"),
            &touched,
        )?);
    }
    // A send is the last thing its process does: the contact list and the report's rows are
    // left to the operating system instead of being freed an allocation at a time (600,000
    // for 50,000 contacts: SMS benchmark -20-50 ms, 4 interleaved pairs).
    std::mem::forget(loaded);
    std::mem::forget(touched);
    Ok(summary)
}

/// Works the run's due messages (`workers::work`), its lease renewed meanwhile when it sends
/// (`run_id`) with its ledger in PostgreSQL (`heartbeat.rs`). The
/// run, and its handle of the ledger writer, are gone when it returns.
fn work(
    run: Run,
    loaded: &Loaded,
    run_id: Option<i64>,
    planned: &mut Planned,
    channels: &[Channel],
) -> Result<workers::Worked, SendError> {
    let (sends, due) = (run.writer.is_some(), std::mem::take(&mut planned.due));
    let run = Arc::new(run);
    let heartbeat = heartbeat::Heartbeat::for_run(loaded, sends, run_id, &run)?;
    let worked = workers::work(Arc::clone(&run), due, channels, &planned.stats);
    if let Some(h) = heartbeat {
        h.stop();
    }
    worked
}

/// Where runs of one campaign share the work (PostgreSQL), a run that begins while `others`
/// live runs began before it starts its walk of each channel's due messages a share of the
/// way in (the second run half-way, the third two thirds), then comes round to the start. Runs
/// walking from the same place would claim the same messages at the same moment: each claim
/// of one would wait for the other's commit to be refused, and two runs would go no faster than
/// one (measured: BENCHMARKS.md). Counted by the runs' ids, so that two runs started at the
/// same instant (cron on two hosts) still start apart. A run alone keeps the list's order.
fn start_apart(due: &mut [Vec<usize>; 2], others: u64) {
    if others == 0 {
        return;
    }
    for list in due.iter_mut() {
        let n = list.len() as u64;
        let at = n * others / (others + 1);
        list.rotate_left(at as usize);
    }
}

/// Opens the ledger and, for a real run, recovers what a dead run left in flight and records
/// this run's start; then reads the ledger's records for the plan (again, under the lock: the
/// recovery may have changed rows).
fn begin(loaded: &mut Loaded, opts: &SendOptions, now: DateTime<Utc>) -> Result<Begun, SendError> {
    let id = &loaded.campaign.id;
    let mut begun = Begun {
        ledger: None,
        run_id: None,
        run_number: None,
        recovered_unknown: 0,
        templates_changed_since: None,
        earlier_live: 0,
    };
    let store = loaded.campaign.sending.store();
    let mut l = match opts.dry_run {
        true => match Ledger::open_existing(&store)? {
            Some(l) => l,
            None => return Ok(begun),
        },
        false => Ledger::open_store(&store)?,
    };
    if !opts.dry_run {
        if !l.hold_send_lock(id)? {
            return Err(LockError::held_in_store(id, &Ledger::name_of(&store)).into());
        }
        begun.recovered_unknown = l.recover_interrupted(id, now)?;
        begun.templates_changed_since =
            l.fingerprint_change(id, &loaded.templates.fingerprint, now)?;
        l.remember_file(id, &loaded.campaign.file, now)?;
        let (run_id, number) = l.begin_run(id, now)?;
        begun.run_id = Some(run_id);
        begun.run_number = Some(number);
        begun.earlier_live = l.live_runs_before(id, run_id)?;
    }
    loaded.priors = l.priors(id)?;
    loaded.recent = loaded.recent_of(&l)?;
    begun.ledger = Some(l);
    Ok(begun)
}

/// Records that the run stopped before its first message, with the reason `status` shows, and
/// hands the error on.
fn stopped_early(
    ledger: Option<&mut Ledger>,
    run_id: Option<i64>,
    loaded: &Loaded,
    e: SendError,
) -> SendError {
    if let (Some(l), Some(run)) = (ledger, run_id)
        && let Err(ledger_error) = l.end_run(run, loaded.clock.now(), "stopped", &e.to_string())
    {
        tracing::warn!("recording the run's stop: {ledger_error}");
    }
    e
}

/// Who is due now, and why everyone else is not.
fn plan(loaded: &Loaded, channels: &[Channel], now: DateTime<Utc>) -> Planned {
    let mut planned = Planned {
        stats: Vec::with_capacity(channels.len()),
        due: [Vec::new(), Vec::new()],
        deferred: Vec::new(),
    };
    for &channel in channels {
        let mut st = ChannelRun {
            channel: Some(channel),
            ..Default::default()
        };
        for index in 0..loaded.contacts.contacts.len() {
            match loaded.decide(index, channel, now, None) {
                Decision::Due => {
                    st.due += 1;
                    planned.due[channel as usize].push(index);
                }
                Decision::Deferred(d) => {
                    *st.deferred.entry(d.label()).or_default() += 1;
                    planned.deferred.push(RunRow {
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
        planned.stats.push(st);
    }
    planned
}

/// Each channel's lane: its transport (none on a dry run or with nothing due), its pace, and
/// what it already sent today when a daily cap counts it.
fn lanes(
    loaded: &Loaded,
    opts: &SendOptions,
    channels: &[Channel],
    planned: &Planned,
    ledger: Option<&Ledger>,
    now: DateTime<Utc>,
) -> Result<
    (
        Lane<crate::transport::EmailOut>,
        Lane<crate::transport::SmsOut>,
    ),
    SendError,
> {
    let sending = &loaded.campaign.sending;
    let mut sent_today = [0, 0];
    if let Some(l) = ledger
        && sending.daily_cap > 0
    {
        let (from, to) = clinic_day(loaded, now);
        for &channel in channels {
            sent_today[channel as usize] =
                l.sent_between(&loaded.campaign.id, channel, from, to)?;
        }
    }
    let wanted = |channel: Channel| !opts.dry_run && !planned.due[channel as usize].is_empty();
    let email = match wanted(Channel::Email) {
        true => Some(lane::email_transport(loaded)?),
        false => None,
    };
    let sms = match wanted(Channel::Sms) {
        true => Some(lane::sms_transport(loaded)?),
        false => None,
    };
    let (email_rate, sms_rate, concurrency) =
        (sending.email_rate, sending.sms_rate, sending.concurrency);
    let mut email = Lane::new(
        Channel::Email,
        email,
        email_rate,
        concurrency,
        sent_today[0],
    );
    let mut sms = Lane::new(Channel::Sms, sms, sms_rate, concurrency, sent_today[1]);
    // On PostgreSQL a rate is the campaign's, shared by its runs (`pace.rs`).
    if sending.state_url.is_some() {
        let (store, id, mut ledger) = (sending.store(), &loaded.campaign.id, None);
        if let (Some(rate), Some(_)) = (email_rate, &email.transport) {
            let pace = pace::SharedPace::new(&mut ledger, &store, id, Channel::Email, rate)?;
            email.shared_pace = Some(pace);
        }
        if let (Some(rate), Some(_)) = (sms_rate, &sms.transport) {
            let pace = pace::SharedPace::new(&mut ledger, &store, id, Channel::Sms, rate)?;
            sms.shared_pace = Some(pace);
        }
    }
    Ok((email, sms))
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

#[cfg(test)]
mod tests {
    use super::start_apart;

    #[test]
    fn a_run_beside_others_starts_its_walk_a_share_of_the_way_in() {
        let list = || (0..12).collect::<Vec<usize>>();
        let mut due = [list(), list()];
        start_apart(&mut due, 0);
        assert_eq!(due[0], list(), "alone: from the start");
        start_apart(&mut due, 1);
        assert_eq!(due[0], [6, 7, 8, 9, 10, 11, 0, 1, 2, 3, 4, 5]);
        let mut due = [list(), vec![]];
        start_apart(&mut due, 2);
        assert_eq!(due[0][..2], [8, 9]);
        assert!(due[1].is_empty());
    }
}
