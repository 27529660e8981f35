//! The run on its async runtime: each channel's transport checked before the first message,
//! each channel's due messages worked by a fixed set of tasks, signals turned into a stop, the
//! transports closed, and what became of each message counted.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::ahead::Ahead;
use super::deliver::{ALREADY_SENT, Attempt, Outbound};
use super::error::SendError;
use super::lane::{Lane, Run, check_failed};
use super::options::SendOptions;
use super::summary::ChannelRun;
use crate::model::Channel;
use crate::recipients::RunRow;
use crate::store::ledger::RowId;
use crate::transport::{EmailOut, SmsOut};

/// What became of each message a channel worked: its contact, its attempt, its ledger row.
type Done = Vec<(usize, Attempt, Option<RowId>)>;

/// What the run's workers did.
pub(super) struct Worked {
    results: Vec<(Channel, Done)>,
    /// Why the run stopped early, if it did.
    pub stopped: Option<String>,
}

impl Worked {
    /// Adds each message's attempt to its channel's counts and to the run report's rows.
    pub fn tally(self, stats: &mut [ChannelRun], touched: &mut Vec<RunRow>) {
        touched.reserve_exact(self.results.iter().map(|(_, items)| items.len()).sum());
        for (channel, items) in self.results {
            let Some(st) = stats.iter_mut().find(|s| s.channel == Some(channel)) else {
                continue;
            };
            for (index, r, row) in items {
                touched.push(RunRow {
                    index,
                    channel,
                    row,
                    outcome: r.word(),
                });
                match r {
                    Attempt::Sent => st.sent += 1,
                    Attempt::Failed { opted_out: true } => st.opted_out += 1,
                    Attempt::Failed { opted_out: false } => st.failed += 1,
                    Attempt::Unknown => st.unknown += 1,
                    Attempt::RetryLater => st.retry_later += 1,
                    Attempt::NotAttempted => st.not_attempted += 1,
                    Attempt::Deferred(d) => *st.deferred.entry(d).or_default() += 1,
                    Attempt::Skipped(s) => *st.skipped.entry(s).or_default() += 1,
                }
            }
        }
    }
}

/// Works the due messages (`due`: contact indexes per channel) to the end, or to a stop.
pub(super) fn work(
    run: Arc<Run>,
    due: [Vec<usize>; 2],
    channels: &[Channel],
    stats: &[ChannelRun],
) -> Result<Worked, SendError> {
    let bars = progress_bars(&run.opts, channels, stats);
    // The ledger writer, and the file transports' outbox writer, are threads of their own, busy
    // for the whole run: the runtime leaves them a core. On 2 cores, one worker instead of two
    // (interleaved runs): SMS 1.19-1.25 -> 1.09-1.21 s, SMTP 7.09-7.18 -> 6.93-7.02 s, files
    // 8.2 -> 6.0-6.9 s, with less CPU in all. A dry run has no such thread and renders on all.
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let workers = if run.opts.dry_run {
        cores
    } else {
        cores.saturating_sub(1).max(1)
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build()
        .map_err(SendError::Runtime)?;
    let [email_due, sms_due] = due;
    let results = runtime.block_on(async {
        check_transport(&run.email).await?;
        check_transport(&run.sms).await?;
        let work_done = async {
            let (e, s) = tokio::join!(
                lane::<EmailOut>(&run, email_due, bars.get(&Channel::Email).cloned()),
                lane::<SmsOut>(&run, sms_due, bars.get(&Channel::Sms).cloned())
            );
            if let Some(w) = &run.writer
                && let Err(e) = w.flush().await
            {
                run.stop(format!("ledger: {e}"));
            }
            vec![(Channel::Email, e), (Channel::Sms, s)]
        };
        tokio::pin!(work_done);
        let signals = wait_for_signal();
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
        close_transport(&run.email).await;
        close_transport(&run.sms).await;
        Ok::<_, SendError>(results)
    })?;
    drop(bars);
    Ok(Worked {
        results,
        stopped: run.stop_reason(),
    })
}

/// Checks a lane's transport (connection, credentials) before its first message.
async fn check_transport<M>(lane: &Lane<M>) -> Result<(), SendError> {
    match &lane.transport {
        Some(t) => t.check().await.map_err(|e| check_failed(lane.channel, e)),
        None => Ok(()),
    }
}

/// Ends a lane's open sessions politely (SMTP's QUIT).
async fn close_transport<M>(lane: &Lane<M>) {
    if let Some(t) = &lane.transport {
        t.close().await;
    }
}

/// Works one channel's due messages: a fixed set of tasks, each taking the next message when
/// its last one is done, so rendering runs on every worker thread and a finished message does
/// not have to wake this thread to start the next one.
async fn lane<M: Outbound>(
    run: &Arc<Run>,
    items: Vec<usize>,
    bar: Option<indicatif::ProgressBar>,
) -> Done {
    let concurrency = run.loaded.campaign.sending.concurrency;
    let in_flight = M::lane(run).in_flight(concurrency);
    // Where runs share the campaign, what another run took is passed over (`ahead.rs`).
    let shared = run.loaded.campaign.sending.state_url.is_some() && run.writer.is_some();
    let ahead = Arc::new(Ahead::new(items.len(), shared));
    let items: Arc<[usize]> = items.into();
    let next = Arc::new(AtomicUsize::new(0));
    let tasks: Vec<_> = (0..in_flight.clamp(1, items.len().max(1)))
        .map(|_| {
            let (run, items, next, ahead, bar) = (
                Arc::clone(run),
                Arc::clone(&items),
                Arc::clone(&next),
                Arc::clone(&ahead),
                bar.clone(),
            );
            tokio::spawn(async move {
                let mut done = Vec::new();
                loop {
                    let place = next.fetch_add(1, Ordering::Relaxed);
                    let Some(&index) = items.get(place) else {
                        break;
                    };
                    let mut row = None;
                    let result = match &*ahead {
                        Some(a) if a.taken::<M>(&run, &items, place).await => {
                            Attempt::Skipped(ALREADY_SENT)
                        }
                        _ => run.deliver::<M>(index, &mut row).await,
                    };
                    if let (Some(a), Attempt::Skipped(ALREADY_SENT)) = (&*ahead, &result) {
                        a.met_another();
                    }
                    done.push((index, result, row));
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
    if let Some(a) = &*ahead
        && a.passed() > 0
    {
        let (channel, passed) = (M::lane(run).channel, a.passed());
        tracing::info!(%channel, passed, "passed over messages another run of the campaign had taken (sent or in flight)");
    }
    results
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
