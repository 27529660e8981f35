//! Runs' leases, on PostgreSQL: where runs of one campaign may be many (on one host or several),
//! each says it is alive by renewing `runs.heartbeat_at` with the server's clock (`now()`), never
//! the tool's (`OUTREACH_NOW` fixes that one in tests, and hosts' clocks differ). A run whose
//! heartbeat is older than [`lease`] is dead: whichever run notices (at its start, and with each
//! of its heartbeats) marks it finished with outcome `lost`, and turns its `sending` rows into
//! `unknown`, as the next run does on SQLite after a SIGKILL. A run claims nothing once its own
//! heartbeat is older than [`claim_window`] (checked in the claim's transaction, by the server's
//! clock), so a message it claimed has at least two heartbeats' time to go before any other run
//! may count it lost.
//!
//! SQLite has none of this: one run of a campaign at a time holds the lock file, and the next
//! run recovers every `sending` row.

use std::time::Duration;

use super::db::{Begin, args};
use super::sqlite::{Ledger, LedgerError, timestamp};
use chrono::{DateTime, Utc};

/// How often a run renews its lease.
pub const HEARTBEAT: Duration = Duration::from_secs(5);
/// How long a lease lasts without a heartbeat.
pub const LEASE: Duration = Duration::from_secs(30);

/// The lease: [`LEASE`], or `OUTREACH_TEST_LEASE_SECONDS` (a testing hook, like
/// `OUTREACH_NOW`: tests of a dead run need not wait 30 s). Heartbeats keep their proportion.
pub fn lease() -> Duration {
    std::env::var("OUTREACH_TEST_LEASE_SECONDS")
        .ok()
        .and_then(|s| s.parse::<f64>().ok())
        .filter(|s| *s > 0.0 && s.is_finite())
        .map_or(LEASE, Duration::from_secs_f64)
}

/// How often a run renews its lease: [`HEARTBEAT`] for [`LEASE`], in proportion to [`lease`].
pub fn heartbeat_every() -> Duration {
    lease().mul_f64(HEARTBEAT.as_secs_f64() / LEASE.as_secs_f64())
}

/// How recent a run's own heartbeat must be for it to claim: the lease less two heartbeats.
pub fn claim_window() -> Duration {
    lease().saturating_sub(heartbeat_every() * 2)
}

/// Milliseconds, as SQL takes them (`CAST(?n AS BIGINT) * interval '1 millisecond'`).
pub(super) fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// The name of this host, for `runs.host`.
pub(super) fn host() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

/// The first key of a run's own advisory lock (`'leas'`; the second is the run's id): held by
/// the connection that began the run for as long as it lasts. The server drops it the moment
/// that connection ends, so a run killed on a host whose kernel closes its sockets (SIGKILL, a
/// crash of the process) is known dead at once, without waiting out its lease; the lease is
/// for what the server cannot see (a host gone, a network cut, a process stuck).
pub(super) const RUN_LOCK: i64 = 0x6c65_6173;

/// SQL: whether the connection of run `r` (a `runs` row) still holds its lock, in this
/// database.
macro_rules! run_lock_held {
    () => {
        "EXISTS (SELECT 1 FROM pg_locks l
                 WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 2
                   AND l.database = (SELECT oid FROM pg_database
                                     WHERE datname = current_database())
                   AND CAST(l.classid AS BIGINT) = 1818583411
                   AND CAST(l.objid AS BIGINT) = r.id)"
    };
}

/// SQL: whether run `r` is live: unfinished, its heartbeat within the lease (parameter
/// `$lease`, in milliseconds), its lock held.
macro_rules! run_is_live {
    ($lease:literal) => {
        concat!(
            "(r.finished_at IS NULL AND r.heartbeat_at IS NOT NULL
              AND r.heartbeat_at >= now() - CAST(",
            $lease,
            " AS BIGINT) * interval '1 millisecond' AND ",
            run_lock_held!(),
            ")"
        )
    };
}

/// Whether run `?1` may claim: unfinished, its heartbeat within `?2` milliseconds of the
/// server's `now()`.
pub(super) const RUN_IS_LIVE: &str = "SELECT 1 FROM runs WHERE id = ?1 AND finished_at IS NULL
       AND heartbeat_at > now() - CAST(?2 AS BIGINT) * interval '1 millisecond'";

impl Ledger {
    /// Renews run `run`'s lease; `false` when the run is no longer live in the ledger (another
    /// run found its lease expired and marked it `lost`): it must stop.
    pub fn heartbeat(&self, run: i64) -> Result<bool, LedgerError> {
        self.sql(|c| {
            c.execute(
                "UPDATE runs SET heartbeat_at = now() WHERE id = ?1 AND finished_at IS NULL",
                args![run],
            )
        })
        .map(|n| n == 1)
    }

    /// On PostgreSQL: marks `campaign`'s runs whose lease expired finished (`lost`), and turns
    /// into `unknown` the `sending` rows of runs that are not live (finished, lost, unknown, or
    /// none named). Returns how many rows it turned.
    pub(super) fn recover_lapsed(
        &self,
        campaign: &str,
        now: DateTime<Utc>,
    ) -> Result<usize, LedgerError> {
        let now = timestamp(now);
        self.transaction(Begin::Deferred, |tx| {
            tx.execute(
                concat!(
                    "UPDATE runs AS r SET finished_at = ?2, outcome = 'lost',
                         summary = 'no heartbeat, or its connection gone: the run died or lost \
                                    the ledger; its messages in flight are reported unknown'
                     WHERE r.campaign = ?1 AND r.finished_at IS NULL AND NOT ",
                    run_is_live!("?3")
                ),
                args![campaign, now, millis(lease())],
            )?;
            tx.execute(
                "UPDATE messages SET state = 'unknown', updated_at = ?2,
                     last_error = 'interrupted: the run ended before the outcome was recorded'
                 WHERE campaign = ?1 AND state = 'sending'
                   AND NOT EXISTS (SELECT 1 FROM runs r
                                   WHERE r.id = messages.run_id AND r.finished_at IS NULL)",
                args![campaign, now],
            )
        })
    }

    /// How many runs of `campaign` hold a live lease (PostgreSQL; 0 on SQLite, whose runs hold
    /// the lock file instead).
    pub fn live_runs(&self, campaign: &str) -> Result<u64, LedgerError> {
        self.live_runs_before(campaign, i64::MAX)
    }

    /// How many live runs of `campaign` began before run `run` (PostgreSQL; 0 on SQLite):
    /// its rank among the runs sharing the work. By the runs' ids, so that runs starting at the
    /// same instant each get their own.
    pub fn live_runs_before(&self, campaign: &str, run: i64) -> Result<u64, LedgerError> {
        if self.db.sqlite().is_some() {
            return Ok(0);
        }
        self.sql(|c| {
            c.query_row(
                concat!(
                    "SELECT COUNT(*) FROM runs AS r WHERE r.campaign = ?1 AND r.id < ?3 AND ",
                    run_is_live!("?2")
                ),
                args![campaign, millis(lease()), run],
                |r| r.get::<i64>(0),
            )
        })
        .map(|n| n as u64)
    }
}

impl Ledger {
    /// Reserves `slots` send slots of `campaign`'s `channel`, `period` apart, after every slot
    /// any run reserved before (PostgreSQL's `pacing` row, by the server's clock); returns how
    /// long from now each one starts (0 for one already due). The rate is then the campaign's,
    /// shared by its runs, not each process's.
    pub fn reserve_slots(
        &self,
        campaign: &str,
        channel: &str,
        period: Duration,
        slots: u32,
    ) -> Result<Vec<Duration>, LedgerError> {
        let block = period * slots;
        let micros = i64::try_from(block.as_micros()).unwrap_or(i64::MAX);
        let end = self.sql(|c| {
            c.query_row(
                "INSERT INTO pacing (campaign, channel, next_at)
                 VALUES (?1, ?2, clock_timestamp() + CAST(?3 AS BIGINT) * interval '1 microsecond')
                 ON CONFLICT (campaign, channel) DO UPDATE
                 SET next_at = GREATEST(pacing.next_at, clock_timestamp())
                               + CAST(?3 AS BIGINT) * interval '1 microsecond'
                 RETURNING CAST(EXTRACT(EPOCH FROM (next_at - clock_timestamp())) * 1000000
                                AS BIGINT)",
                args![campaign, channel, micros],
                |r| r.get::<i64>(0),
            )
        })?;
        // The block ends `end` from now; its slots start `period` apart before that.
        let end = Duration::from_micros(u64::try_from(end).unwrap_or(0));
        Ok((0..slots)
            .map(|i| end.saturating_sub(period * (slots - i)))
            .collect())
    }
}
