//! Claims and outcomes: the never-twice invariant, in SQL. One row per campaign × channel ×
//! normalised address.
//!
//! A message is *claimed* (`sending`, committed to disk) before it goes, and its outcome
//! (`sent`, `failed`, `unknown`) recorded after. A claim only succeeds on a row that is new,
//! `failed` or `unknown`: a `sent` or `sending` row is never claimed again, whatever the caller
//! believes, and neither is an address suppressed since the plan was made. When a run dies
//! (SIGKILL, power), its `sending` rows are found by the next run, which holds the campaign lock,
//! and become `unknown` ([`Ledger::recover_interrupted`]): reported, and resent only on request.
//!
//! Both go through one call, [`Ledger::commit`], made only by the run's
//! [`Writer`](super::writer::Writer): outcomes and claims of many messages in one transaction,
//! fsynced before any of its claims is acknowledged.

use super::db::{Begin, Db, DbError, DbResult, args};
use super::sqlite::{Ledger, LedgerError, timestamp};
use super::suppressions;
use crate::config::FrequencyCap;
use crate::model::{Channel, State};
use chrono::{DateTime, Utc};

/// Where a granted claim's row is: the run's report reads it back by this (one lookup by
/// integer key, in claim order) instead of by campaign, channel and address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RowId(pub(super) i64);

/// The ledger's answer to a claim.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claimed {
    Granted(Granted),
    /// Sent, or in flight: the ledger says no.
    Refused,
    /// The address joined the suppression table since the run's plan was made (an opt-out
    /// another run learned, `outreach unsubscribe`): not sent.
    Suppressed,
    /// Other campaigns messaged the address up to `sending.max_per_patient` within its window,
    /// counting their claims committed since the plan was made: not sent now.
    Capped,
    /// On PostgreSQL: the campaign's runs together reached `sending.daily_cap` for the clinic's
    /// day (sent that day, or in flight): not sent now.
    DailyCapped,
}

impl Claimed {
    /// The granted claim, if it was.
    pub fn granted(self) -> Option<Granted> {
        match self {
            Claimed::Granted(g) => Some(g),
            _ => None,
        }
    }
}

/// A granted claim: the message's row and, when the claim took over an earlier attempt's row
/// (`failed` or `unknown`), what that row was, so that a claim released unsent can put it back
/// (a resumed `unknown` must not turn into a retryable failure that any run would send).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Granted {
    pub row: RowId,
    /// The state and `permanent` flag the row had.
    pub was: Option<(State, bool)>,
}

/// A message about to go.
#[derive(Debug, Clone)]
pub struct Claim {
    pub channel: Channel,
    pub address: String,
    pub contact_id: String,
    /// An email's unsubscribe token, indexed with the claim so that a click finds its row.
    pub token: Option<String>,
    /// The patient's consent to this channel as the contacts file gave it when the message was
    /// claimed (`yes`, or the date it was given), and how it was given (`consent_source`): the
    /// clinic's evidence of each message it sent.
    pub consent: Option<String>,
    pub consent_source: Option<String>,
    /// The run's plan saw the message `unknown` and resends it (`--resend-unknown`). On
    /// PostgreSQL, where another run may leave a row `unknown` after this run's plan was made
    /// (its outcome unknown, or the run found dead mid-send), an `unknown` row is taken over
    /// only then: otherwise the message may already have reached the patient.
    pub resumes_unknown: bool,
}

/// A message's outcome.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub channel: Channel,
    pub address: String,
    pub state: State,
    pub permanent: bool,
    pub provider_id: Option<String>,
    pub error: Option<String>,
    /// The recipient opted out at the provider: add the address to the suppression table, with
    /// this reason, in the same transaction.
    pub suppress: Option<String>,
    /// Claimed but never handed over (the run stopped first): not counted as an attempt, and an
    /// earlier attempt's error stays the row's error.
    pub released: bool,
    /// The row the message's claim returned: the outcome is written there without a search of
    /// the address index (by the address when that row is no longer the message's).
    pub row: Option<RowId>,
    /// A sent SMS's segments (what the provider bills), kept for the report's cost.
    pub segments: Option<u32>,
}

impl Ledger {
    /// Makes every later claim check `sending.max_per_patient` in its transaction, counting
    /// what the other campaigns of the state directory sent, have in flight or left unknown:
    /// two campaigns sending at once cannot both pass it.
    pub fn set_frequency_cap(&mut self, cap: Option<FrequencyCap>) {
        self.frequency_cap = cap;
    }

    /// On PostgreSQL, makes every later claim check `sending.daily_cap` (`cap`, 0 for none) in
    /// its transaction, for the clinic's day `day` (its start and end): the campaign's runs,
    /// on any host, count together what was sent that day and what is in flight, one claim at
    /// a time (a lock per campaign, held until the claim commits). On SQLite, one run at a time
    /// counts its own (`send`'s lanes): nothing changes.
    pub fn set_daily_cap(&mut self, cap: u32, day: (DateTime<Utc>, DateTime<Utc>)) {
        self.daily_cap = (cap > 0 && self.db.sqlite().is_none())
            .then(|| (cap, timestamp(day.0), timestamp(day.1)));
    }

    /// Records `outcomes`, then claims `claims` (for run and fingerprint `claimed_by`), in one
    /// transaction. It is fsynced when it claims anything: a claim must be on disk before its
    /// message goes. Outcomes alone are not: one lost to a power cut leaves its row `sending`,
    /// which the next run reports as unknown, so they only need to survive the process.
    pub(super) fn commit(
        &mut self,
        campaign: &str,
        claimed_by: (i64, &str),
        outcomes: &[Outcome],
        claims: &[Claim],
        now: DateTime<Utc>,
    ) -> Result<Vec<Claimed>, LedgerError> {
        let sync = if claims.is_empty() { "NORMAL" } else { "FULL" };
        if sync != self.synchronous {
            self.sqlite(|c| c.execute_batch(&format!("PRAGMA synchronous = {sync}")))?;
            self.synchronous = sync;
        }
        let since = self
            .frequency_cap
            .map(|cap| (cap.count, timestamp(now - cap.window)));
        let now = timestamp(now);
        let mut lapsed = false;
        // Immediate: the write lock from the start, so that what a claim reads (suppressions,
        // the other campaigns' messages for the frequency cap) cannot change before it writes.
        let claimed = self.transaction(Begin::Immediate, |tx| {
            if claims.is_empty() && tx.sqlite().is_none() {
                // PostgreSQL's counterpart of `synchronous = NORMAL` above.
                tx.execute_batch("SET LOCAL synchronous_commit TO off")?;
            }
            record_in(tx, campaign, outcomes, &now)?;
            // On PostgreSQL a run claims only while its lease is fresh (`store/lease.rs`):
            // other runs may otherwise already count its claims lost. Rolled back when not.
            if !claims.is_empty() && tx.sqlite().is_none() {
                let window = super::lease::millis(super::lease::claim_window());
                let live = tx.query_opt(
                    super::lease::RUN_IS_LIVE,
                    args![claimed_by.0, window],
                    |_| Ok(()),
                )?;
                if live.is_none() {
                    lapsed = true;
                    return Err(DbError::Schema("the run's lease lapsed".into()));
                }
            }
            let run = (claimed_by.0, claimed_by.1, since);
            let daily = match &self.daily_cap {
                Some(cap) if !claims.is_empty() => Some(DailyCount::start(tx, campaign, cap)?),
                _ => None,
            };
            claim_in(tx, campaign, run, daily, claims, &now)
        });
        match claimed {
            Err(_) if lapsed => Err(LedgerError::LeaseLost {
                path: self.path.clone(),
            }),
            claimed => claimed,
        }
    }
}

/// The ledger's claims and outcomes one transaction at a time, for tests that need no writer.
#[cfg(test)]
impl Ledger {
    /// Claims `claims` in one transaction; returns, for each, its row if it was granted (a `sent`
    /// or `sending` row is refused).
    pub(super) fn claim(
        &mut self,
        campaign: &str,
        run: i64,
        fingerprint: &str,
        claims: &[Claim],
        now: DateTime<Utc>,
    ) -> Result<Vec<Option<RowId>>, LedgerError> {
        let claimed = self.commit(campaign, (run, fingerprint), &[], claims, now)?;
        Ok(claimed.iter().map(|c| c.granted().map(|g| g.row)).collect())
    }

    /// Records outcomes in one transaction.
    pub(super) fn record(
        &mut self,
        campaign: &str,
        outcomes: &[Outcome],
        now: DateTime<Utc>,
    ) -> Result<(), LedgerError> {
        self.commit(campaign, (0, ""), outcomes, &[], now)
            .map(|_| ())
    }
}

/// Claims `claims` for `run` (its id, its fingerprint, and the frequency cap's count and the
/// start of its window) in `tx`: the never-twice rule, settled row by row in the database
/// rather than by what the run believes (its plan may be stale: another run, `unsubscribe`).
fn claim_in(
    tx: &Db,
    campaign: &str,
    (run, fingerprint, cap): (i64, &str, Option<(u32, String)>),
    mut daily: Option<DailyCount<'_>>,
    claims: &[Claim],
    now: &str,
) -> DbResult<Vec<Claimed>> {
    // A new message is one insert; only a message the ledger already holds pays for more
    // statements.
    // Not to a suppressed address: the suppression table may have grown since the plan (another
    // run's opt-outs, `outreach unsubscribe`), and the claim is where that is settled.
    const INSERT: &str = "INSERT INTO messages (campaign, channel, address, contact_id, state,
                                   attempts, fingerprint, run_id, created_at, updated_at,
                                   consent, consent_source)
         SELECT CAST(?1 AS TEXT), CAST(?2 AS TEXT), CAST(?3 AS TEXT), CAST(?4 AS TEXT),
                'sending', 1, CAST(?5 AS TEXT), CAST(?6 AS BIGINT), CAST(?7 AS TEXT),
                CAST(?7 AS TEXT), CAST(?8 AS TEXT), CAST(?9 AS TEXT)
         WHERE NOT EXISTS (SELECT 1 FROM suppressions WHERE address = ?3)
         ON CONFLICT (campaign, channel, address) DO NOTHING";
    const EXISTING: &str = "SELECT rowid, state, permanent,
                CASE WHEN EXISTS (SELECT 1 FROM suppressions WHERE address = ?3)
                     THEN 1 ELSE 0 END
         FROM messages WHERE campaign = ?1 AND channel = ?2 AND address = ?3";
    // Only while still failed or unknown: on PostgreSQL another run may take it over between
    // the look and this change (its transactions do not hold the whole store the way SQLite's
    // `BEGIN IMMEDIATE` does), and the row it changed first is then refused here.
    // The same parameters as `INSERT`.
    const TAKE_OVER: &str = "UPDATE messages SET state = 'sending', attempts = attempts + 1,
                             contact_id = ?4, fingerprint = ?5, run_id = ?6, updated_at = ?7,
                             consent = ?8, consent_source = ?9
         WHERE campaign = ?1 AND channel = ?2 AND address = ?3
           AND (state = 'failed' OR state = 'unknown')";
    const INDEX_TOKEN: &str =
        "INSERT INTO tokens (token, message) VALUES (?1, ?2) ON CONFLICT DO NOTHING";
    if cap.is_some() {
        lock_addresses(tx, claims)?;
    }
    let mut granted = Vec::with_capacity(claims.len());
    for c in claims {
        if let Some((count, since)) = &cap
            && capped(tx, campaign, c, since)? >= u64::from(*count)
        {
            granted.push(Claimed::Capped);
            continue;
        }
        if let Some(daily) = daily.as_mut()
            && !daily.fits(tx, campaign, c.channel)?
        {
            granted.push(Claimed::DailyCapped);
            continue;
        }
        let channel = c.channel.as_str();
        let values = args![
            campaign,
            channel,
            c.address,
            c.contact_id,
            fingerprint,
            run,
            now,
            c.consent,
            c.consent_source
        ];
        if let Some(row) = tx.insert_id(INSERT, values, "rowid")? {
            if let Some(token) = &c.token {
                tx.execute(INDEX_TOKEN, args![token, row])?;
            }
            granted.push(Claimed::Granted(Granted {
                row: RowId(row),
                was: None,
            }));
            if let Some(daily) = daily.as_mut() {
                daily.take(c.channel);
            }
            continue;
        }
        // Taken over when a failed or unknown message; refused when sent, or in flight.
        let row = tx.query_opt(EXISTING, args![campaign, channel, c.address], |r| {
            Ok((
                r.get::<i64>(0)?,
                r.get::<String>(1)?,
                r.get::<bool>(2)?,
                r.get::<bool>(3)?,
            ))
        })?;
        let Some((row, state, permanent, suppressed)) = row else {
            // No row, so the insert met a suppression.
            granted.push(Claimed::Suppressed);
            continue;
        };
        let state = State::parse(&state);
        if !matches!(state, State::Failed | State::Unknown) {
            granted.push(Claimed::Refused);
            continue;
        }
        if suppressed {
            granted.push(Claimed::Suppressed);
            continue;
        }
        if state == State::Unknown && !c.resumes_unknown && tx.sqlite().is_none() {
            granted.push(Claimed::Refused);
            continue;
        }
        let taken = tx.execute(TAKE_OVER, values)?;
        if taken == 0 {
            granted.push(Claimed::Refused);
            continue;
        }
        if let Some(token) = &c.token {
            tx.execute(INDEX_TOKEN, args![token, row])?;
        }
        granted.push(Claimed::Granted(Granted {
            row: RowId(row),
            was: Some((state, permanent)),
        }));
        if let Some(daily) = daily.as_mut() {
            daily.take(c.channel);
        }
    }
    Ok(granted)
}

/// The daily cap's count in a claim's transaction (PostgreSQL): the campaign's messages of each
/// channel sent in the clinic's day or in flight, read once per channel after the campaign's
/// lock is taken, plus what this transaction granted.
struct DailyCount<'a> {
    cap: u32,
    day: (&'a str, &'a str),
    counts: [Option<u64>; 2],
}

impl<'a> DailyCount<'a> {
    /// Takes the campaign's daily-cap lock for the rest of `tx` (before any address lock, in
    /// every transaction: no two wait on each other).
    fn start(
        tx: &Db,
        campaign: &str,
        (cap, from, to): &'a (u32, String, String),
    ) -> DbResult<Self> {
        tx.query_row(
            "SELECT pg_advisory_xact_lock(hashtext('outreach daily cap'), hashtext(?1))",
            args![campaign],
            |_| Ok(()),
        )?;
        Ok(DailyCount {
            cap: *cap,
            day: (from, to),
            counts: [None, None],
        })
    }

    /// Whether one more message of `channel` fits under the cap.
    fn fits(&mut self, tx: &Db, campaign: &str, channel: Channel) -> DbResult<bool> {
        let slot = &mut self.counts[channel as usize];
        let n = match slot {
            Some(n) => *n,
            None => {
                let n = tx.query_row(
                    "SELECT COUNT(*) FROM messages WHERE campaign = ?1 AND channel = ?2
                       AND ((state = 'sent' AND sent_at >= ?3 AND sent_at < ?4)
                            OR (state = 'sending' AND updated_at >= ?3 AND updated_at < ?4))",
                    args![campaign, channel.as_str(), self.day.0, self.day.1],
                    |r| r.get::<i64>(0),
                )? as u64;
                *slot = Some(n);
                n
            }
        };
        Ok(n < u64::from(self.cap))
    }

    /// Counts a granted claim of `channel`.
    fn take(&mut self, channel: Channel) {
        if let Some(n) = self.counts[channel as usize].as_mut() {
            *n += 1;
        }
    }
}

/// Holds, until `tx` ends, a lock on each address `claims` name, for the frequency cap's count
/// and the claim that follows it: on SQLite the transaction's write lock already keeps every
/// other claim out; on PostgreSQL, where another campaign's run may claim at the same moment,
/// an advisory lock per address does, taken in one order (sorted) so that two batches cannot
/// wait on each other.
fn lock_addresses(tx: &Db, claims: &[Claim]) -> DbResult<()> {
    if tx.sqlite().is_some() {
        return Ok(());
    }
    let mut addresses: Vec<&str> = claims.iter().map(|c| c.address.as_str()).collect();
    addresses.sort_unstable();
    addresses.dedup();
    for address in addresses {
        tx.query_row(
            "SELECT pg_advisory_xact_lock(hashtext('outreach cap'), hashtext(?1))",
            args![address],
            |_| Ok(()),
        )?;
    }
    Ok(())
}

/// How many messages the other campaigns of the ledger sent to `c`'s address on its channel
/// since `since`, have in flight or left unknown. One look-up in the primary key per campaign
/// (campaign, channel, address): no index by address is kept for it, as every claim would pay
/// for its upkeep.
/// The messages `sending.max_per_patient` counts, as SQL over a `messages` row named `m`: sent,
/// in flight or unknown (any of them may have reached the patient). One rule for the plan
/// (`Ledger::recent`) and the claim ([`capped`]).
macro_rules! cap_counts {
    () => {
        "(m.state = 'sent' OR m.state = 'sending' OR m.state = 'unknown')"
    };
}
/// When a message [`cap_counts!`] counts was sent (or claimed, while in flight or unknown).
macro_rules! cap_time {
    () => {
        "COALESCE(m.sent_at, m.updated_at)"
    };
}
pub(super) use {cap_counts, cap_time};

fn capped(tx: &Db, campaign: &str, c: &Claim, since: &str) -> DbResult<u64> {
    tx.query_row(
        concat!(
            "SELECT COUNT(*) FROM campaigns c JOIN messages m
             ON m.campaign = c.id AND m.channel = ?2 AND m.address = ?3
         WHERE c.id != ?1 AND ",
            cap_counts!(),
            " AND ",
            cap_time!(),
            " > ?4"
        ),
        args![campaign, c.channel.as_str(), c.address, since],
        |r| r.get::<i64>(0),
    )
    .map(|n| n as u64)
}

/// How [`record_in`] writes an outcome to the message's row (parameters 1-3: campaign, channel,
/// address), found first by `$row` (parameter 10, the row id) if given.
macro_rules! record_sql {
    ($row:literal) => {
        concat!(
            "UPDATE messages SET state = ?4, permanent = ?5, provider_id = COALESCE(?6, provider_id),
                 last_error = CASE WHEN ?9 = 1 THEN COALESCE(last_error, ?7) ELSE ?7 END,
                 attempts = attempts - ?9, updated_at = ?8,
                 sent_at = CASE WHEN ?4 = 'sent' THEN ?8 ELSE sent_at END,
                 segments = CASE WHEN ?4 = 'sent' THEN ?10 ELSE segments END
             WHERE ",
            $row,
            "campaign = ?1 AND channel = ?2 AND address = ?3 AND state = 'sending'"
        )
    };
}

/// Writes `outcomes` in `tx`, each to its message's row if that row is still `sending`, and adds
/// the addresses that opted out at the provider to the suppression table.
fn record_in(tx: &Db, campaign: &str, outcomes: &[Outcome], now: &str) -> DbResult<()> {
    // By the claim's row: one step down the table, instead of a search of the address index
    // and then one down the table.
    const BY_ROW: &str = record_sql!("rowid = ?11 AND ");
    const BY_KEY: &str = record_sql!("");
    for o in outcomes {
        let row = o.row.map(|r| r.0);
        let (channel, state) = (o.channel.as_str(), o.state.as_str());
        let values = args![
            campaign,
            channel,
            o.address,
            state,
            o.permanent,
            o.provider_id,
            o.error,
            now,
            o.released,
            o.segments,
            row,
        ];
        // A row id that is no longer the message's (`purge` of another campaign rebuilt the
        // file mid-run) changes nothing: the address finds the row then.
        if row.is_none() || tx.execute(BY_ROW, values)? == 0 {
            tx.execute(BY_KEY, &values[..10])?;
        }
        // A sent SMS's ids, one per part, for its delivery receipts.
        if let (Channel::Sms, State::Sent, Some(ids)) = (o.channel, o.state, &o.provider_id) {
            let ids: Vec<&str> = ids.split(',').filter(|id| !id.is_empty()).collect();
            const PART: &str = "INSERT INTO sms_parts (provider_id, message, part, parts)
                 SELECT CAST(?1 AS TEXT), rowid, CAST(?2 AS BIGINT), CAST(?3 AS BIGINT)
                 FROM messages
                 WHERE campaign = ?4 AND channel = 'sms' AND address = ?5
                 ON CONFLICT (provider_id) DO NOTHING";
            for (i, id) in ids.iter().enumerate() {
                tx.execute(
                    PART,
                    args![id, i as i64 + 1, ids.len() as i64, campaign, o.address],
                )?;
            }
        }
        if let Some(reason) = &o.suppress {
            tx.execute(
                suppressions::INSERT,
                args![
                    o.address,
                    reason,
                    format!("{} reply, campaign {campaign}", o.channel),
                    now
                ],
            )?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::fixtures::{claim, outcome};
    use super::*;
    use crate::store::ledger::RowLookup;

    #[test]
    fn an_outcome_goes_to_its_claims_row_or_else_to_its_address() {
        let dir = tempfile::tempdir().unwrap();
        let mut l = Ledger::open(dir.path()).unwrap();
        let now = Utc::now();
        let rows = l
            .claim("c", 1, "fp", &[claim("a"), claim("b"), claim("c")], now)
            .unwrap();
        let a = rows[0].expect("granted");
        // "b" comes with "a"'s row (as after the file was rebuilt mid-run), "c" with none.
        let with_row = |addr, state, row| Outcome {
            row,
            ..outcome(addr, state)
        };
        l.record(
            "c",
            &[
                with_row("a", State::Sent, Some(a)),
                with_row("b", State::Unknown, Some(a)),
                with_row("c", State::Failed, None),
            ],
            now,
        )
        .unwrap();
        let mut lookup = l.rows_of("c").unwrap();
        let mut state = |addr| lookup.get(Channel::Email, addr).unwrap().unwrap().state;
        assert_eq!(
            [state("a"), state("b"), state("c")],
            [State::Sent, State::Unknown, State::Failed]
        );
    }

    #[test]
    fn a_sent_or_sending_row_is_never_claimed_again() {
        let dir = tempfile::tempdir().unwrap();
        let mut l = Ledger::open(dir.path()).unwrap();
        let now = Utc::now();
        let first = l
            .claim("c", 1, "fp", &[claim("a"), claim("b")], now)
            .unwrap();
        assert!(first.iter().all(Option::is_some));
        assert_ne!(first[0], first[1]);
        // In flight: refused.
        assert_eq!(l.claim("c", 1, "fp", &[claim("a")], now).unwrap(), [None]);
        l.record(
            "c",
            &[outcome("a", State::Sent), outcome("b", State::Failed)],
            now,
        )
        .unwrap();
        // Sent: refused; failed: granted again (the same row), attempts counted.
        assert_eq!(
            l.claim("c", 2, "fp", &[claim("a"), claim("b")], now)
                .unwrap(),
            [None, first[1]]
        );
        let priors = l.priors("c").unwrap();
        assert_eq!(priors.get(Channel::Email, "a").unwrap().state, State::Sent);
        assert_eq!(priors.get(Channel::Email, "b").unwrap().attempts, 2);
        // Another campaign is another row.
        let other = l.claim("d", 3, "fp", &[claim("a")], now).unwrap();
        assert!(other[0].is_some() && other[0] != first[0]);
        // The report finds a claimed row by its id, and by its key when the id is not its own.
        let mut lookup = l.rows_of("c").unwrap();
        let b = first[1].unwrap();
        let cells = |lookup: &mut RowLookup<'_>, address: &str, row: RowId| {
            lookup
                .with_claimed(Channel::Email, address, row, |c| {
                    c.map(|c| (c.attempts, c.provider_id.to_string()))
                })
                .unwrap()
        };
        let expected = Some((2, "id-1".to_string()));
        assert_eq!(cells(&mut lookup, "b", b), expected);
        let wrong = other[0].unwrap();
        assert_eq!(cells(&mut lookup, "b", wrong), expected);
        assert_eq!(cells(&mut lookup, "zz", b), None);
    }

    #[test]
    fn a_claim_to_an_address_suppressed_meanwhile_is_not_granted() {
        let dir = tempfile::tempdir().unwrap();
        let mut l = Ledger::open(dir.path()).unwrap();
        let now = Utc::now();
        l.commit("c", (1, "fp"), &[], &[claim("b")], now).unwrap();
        l.record("c", &[outcome("b", State::Failed)], now).unwrap();
        for address in ["a", "b"] {
            l.suppress(address, "opted out", "test", now).unwrap();
        }
        // A new message and a failed one taken over: both suppressed, neither row touched.
        let claimed = l
            .commit(
                "c",
                (2, "fp"),
                &[],
                &[claim("a"), claim("b"), claim("c")],
                now,
            )
            .unwrap();
        assert_eq!(claimed[..2], [Claimed::Suppressed, Claimed::Suppressed]);
        assert!(claimed[2].granted().is_some());
        let priors = l.priors("c").unwrap();
        assert!(priors.get(Channel::Email, "a").is_none());
        assert_eq!(priors.get(Channel::Email, "b").unwrap().attempts, 1);
    }

    #[test]
    fn a_claim_released_unsent_is_no_attempt_and_keeps_the_last_error() {
        let dir = tempfile::tempdir().unwrap();
        let mut l = Ledger::open(dir.path()).unwrap();
        let now = Utc::now();
        let failed = |addr: &str, error: &str, released: bool| Outcome {
            state: State::Failed,
            provider_id: None,
            error: Some(error.into()),
            released,
            ..outcome(addr, State::Failed)
        };
        // "a" was refused, then its retry was claimed and released; "b" released at once.
        l.claim("c", 1, "fp", &[claim("a"), claim("b")], now)
            .unwrap();
        l.record("c", &[failed("a", "450 busy", false)], now)
            .unwrap();
        l.claim("c", 1, "fp", &[claim("a")], now).unwrap();
        let stop = "not sent: the run stopped before its turn";
        l.record(
            "c",
            &[failed("a", stop, true), failed("b", stop, true)],
            now,
        )
        .unwrap();
        let mut lookup = l.rows_of("c").unwrap();
        let a = lookup.get(Channel::Email, "a").unwrap().unwrap();
        assert_eq!((a.attempts, a.last_error.as_deref()), (1, Some("450 busy")));
        let b = lookup.get(Channel::Email, "b").unwrap().unwrap();
        assert_eq!((b.attempts, b.last_error.as_deref()), (0, Some(stop)));
        assert_eq!((a.state, b.state), (State::Failed, State::Failed));
    }
}

#[cfg(test)]
mod cap_tests {
    use super::fixtures::{claim, outcome};
    use super::*;

    #[test]
    fn a_claim_over_the_frequency_cap_is_refused_in_its_transaction() {
        let dir = tempfile::tempdir().unwrap();
        let mut l = Ledger::open(dir.path()).unwrap();
        let now = Utc::now();
        for campaign in ["a", "b"] {
            l.fingerprint_change(campaign, "fp", now).unwrap();
        }
        // Campaign a sent to x a day ago, and has y in flight.
        let day_ago = now - chrono::Duration::days(1);
        l.claim("a", 1, "fp", &[claim("x"), claim("y")], day_ago)
            .unwrap();
        l.record("a", &[outcome("x", State::Sent)], day_ago)
            .unwrap();
        l.set_frequency_cap(Some(FrequencyCap {
            count: 1,
            window: chrono::Duration::days(7),
        }));
        let claimed = l
            .commit(
                "b",
                (2, "fp"),
                &[],
                &[claim("x"), claim("y"), claim("z")],
                now,
            )
            .unwrap();
        assert_eq!(claimed[..2], [Claimed::Capped, Claimed::Capped]);
        assert!(claimed[2].granted().is_some());
        // Once a's message to x is out of the window, x is free again.
        let later = now + chrono::Duration::days(7);
        let claimed = l.commit("b", (3, "fp"), &[], &[claim("x")], later).unwrap();
        assert!(claimed[0].granted().is_some());
        // For a: y (its own, failed) is claimed again; z is b's, in flight.
        let next_day = now + chrono::Duration::days(1);
        l.record("a", &[outcome("y", State::Failed)], next_day)
            .unwrap();
        let claimed = l
            .commit("a", (4, "fp"), &[], &[claim("y"), claim("z")], next_day)
            .unwrap();
        assert!(claimed[0].granted().is_some());
        assert_eq!(claimed[1], Claimed::Capped);
    }
}

#[cfg(test)]
pub(super) mod fixtures {
    use super::*;

    pub fn claim(addr: &str) -> Claim {
        Claim {
            token: None,
            consent: None,
            consent_source: None,
            resumes_unknown: false,
            channel: Channel::Email,
            address: addr.into(),
            contact_id: "P1".into(),
        }
    }

    pub fn outcome(addr: &str, state: State) -> Outcome {
        Outcome {
            channel: Channel::Email,
            address: addr.into(),
            state,
            permanent: false,
            provider_id: Some("id-1".into()),
            error: None,
            suppress: None,
            released: false,
            row: None,
            segments: None,
        }
    }
}
