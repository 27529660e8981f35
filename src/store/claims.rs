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

use super::arg::{Arg, ToArg};
use super::db::{Begin, Db, DbError, DbResult, args};
use super::rows::{self, Texts};
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
///
/// New messages, the common case, are inserted a chunk at a time ([`insert_new`]); a message
/// the ledger already holds (or whose insert met a suppression) is then settled on its own
/// ([`claim_existing`]). With a cap to count (`max_per_patient`, or the daily cap on
/// PostgreSQL) each claim is counted and inserted in turn, as a claim refused by the ledger
/// must leave its place under the cap to the next.
fn claim_in(
    tx: &Db,
    campaign: &str,
    (run, fingerprint, cap): (i64, &str, Option<(u32, String)>),
    mut daily: Option<DailyCount<'_>>,
    claims: &[Claim],
    now: &str,
) -> DbResult<Vec<Claimed>> {
    let by = Claimant {
        campaign,
        run,
        fingerprint,
        now,
    };
    if cap.is_none() && daily.is_none() {
        // In one order, the messages' keys, in every transaction: runs claiming the same
        // messages at once then wait for each other in turn, never each for the other (a
        // deadlock, which PostgreSQL takes a second to see and break). A stable sort: a
        // message claimed twice keeps its first claim first.
        let mut order: Vec<usize> = (0..claims.len()).collect();
        order.sort_by_key(|&i| (claims[i].channel.as_str(), claims[i].address.as_str()));
        let sorted: Vec<&Claim> = order.iter().map(|&i| &claims[i]).collect();
        let mut granted = insert_new(tx, &by, &sorted)?;
        refuse_taken(tx, campaign, &sorted, &mut granted)?;
        let mut settled = vec![Claimed::Refused; claims.len()];
        for ((c, g), &i) in sorted.iter().zip(granted).zip(&order) {
            settled[i] = match g {
                Some(g) => g,
                None => claim_existing(tx, &by, c)?,
            };
        }
        return Ok(settled);
    }
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
        let claimed = match insert_new(tx, &by, &[c])?[0] {
            Some(g) => g,
            None => claim_existing(tx, &by, c)?,
        };
        if let (Some(daily), Claimed::Granted(_)) = (daily.as_mut(), claimed) {
            daily.take(c.channel);
        }
        granted.push(claimed);
    }
    Ok(granted)
}

/// Who claims: the campaign, the run and its fingerprint, and the time of the claim.
struct Claimant<'a> {
    campaign: &'a str,
    run: i64,
    fingerprint: &'a str,
    now: &'a str,
}

/// The claims' columns in [`INSERT_NEW`]: channel, address, contact_id, consent, consent_source.
const COLUMNS: [&str; 5] = ["TEXT"; 5];

/// New messages' rows, a chunk at a time ([`insert_new`]).
static INSERT_NEW: Texts = Texts::new(|rows| {
    format!(
        "INSERT INTO messages (campaign, channel, address, contact_id, state, attempts,
                               fingerprint, run_id, created_at, updated_at,
                               consent, consent_source)
         SELECT CAST(?1 AS TEXT), v.column1, v.column2, v.column3, 'sending', 1,
                CAST(?2 AS TEXT), CAST(?3 AS BIGINT), CAST(?4 AS TEXT), CAST(?4 AS TEXT),
                v.column4, v.column5
         FROM ({}) AS v
         WHERE v.column2 IS NOT NULL
           AND NOT EXISTS (SELECT 1 FROM suppressions s WHERE s.address = v.column2)
         ON CONFLICT (campaign, channel, address) DO NOTHING
         RETURNING rowid, channel, address",
        rows::values(&COLUMNS, rows, 5)
    )
});

/// Inserts the rows of `claims` the ledger does not hold yet, one statement per chunk, each
/// `sending` for the claimant's run, with its unsubscribe token indexed; not for an address in
/// the suppression table (it may have grown since the plan: another run's opt-outs, `outreach
/// unsubscribe`; the claim is where that is settled). Returns each claim's grant, or `None`
/// where nothing was inserted (a row already there, or a suppression).
fn insert_new(tx: &Db, by: &Claimant<'_>, claims: &[&Claim]) -> DbResult<Vec<Option<Claimed>>> {
    static INDEX_TOKENS: Texts = Texts::new(|rows| {
        format!(
            "INSERT INTO tokens (token, message)
             SELECT v.column1, v.column2 FROM ({}) AS v WHERE v.column1 IS NOT NULL
             ON CONFLICT DO NOTHING",
            rows::values(&["TEXT", "BIGINT"], rows, 1)
        )
    });
    let mut granted = vec![None; claims.len()];
    let mut start = 0;
    for chunk in rows::chunks(claims) {
        let mut values = Vec::with_capacity(4 + COLUMNS.len() * chunk.len());
        values.extend_from_slice(args![by.campaign, by.fingerprint, by.run, by.now]);
        for c in chunk {
            values.extend_from_slice(&[
                Arg::Text(c.channel.as_str()),
                c.address.arg(),
                c.contact_id.arg(),
                c.consent.arg(),
                c.consent_source.arg(),
            ]);
        }
        let sql = INSERT_NEW.padded(chunk.len(), COLUMNS.len(), &mut values);
        let inserted = tx.query(sql, &values, |r| {
            Ok((r.get::<i64>(0)?, r.get::<String>(1)?, r.get::<String>(2)?))
        })?;
        // The rows come back in no promised order: each to the first claim of its message (a
        // second claim of the same message in the chunk met the first's row, and is settled
        // as a message the ledger holds).
        let mut tokens = Vec::new();
        for (row, channel, address) in inserted {
            let Some(i) = chunk.iter().enumerate().position(|(i, c)| {
                granted[start + i].is_none()
                    && c.channel.as_str() == channel
                    && c.address == address
            }) else {
                continue;
            };
            granted[start + i] = Some(Claimed::Granted(Granted {
                row: RowId(row),
                was: None,
            }));
            if let Some(token) = &chunk[i].token {
                tokens.push((token.as_str(), row));
            }
        }
        for pairs in rows::chunks(&tokens) {
            let mut values: Vec<_> = pairs
                .iter()
                .flat_map(|&(token, row)| [Arg::Text(token), Arg::Int(row)])
                .collect();
            tx.execute(INDEX_TOKENS.padded(pairs.len(), 2, &mut values), &values)?;
        }
        start += chunk.len();
    }
    Ok(granted)
}

/// Which messages of a chunk are sent or in flight ([`refuse_taken`]).
static TAKEN: Texts = Texts::new(|rows| {
    format!(
        "SELECT v.column2, v.column3 FROM ({}) AS v CROSS JOIN messages m
         WHERE m.campaign = v.column1 AND m.channel = v.column2 AND m.address = v.column3
           AND (m.state = 'sent' OR m.state = 'sending')",
        rows::values(&["TEXT", "TEXT", "TEXT"], rows, 1)
    )
});

/// Refuses, a chunk at a time, the claims `insert_new` left unsettled whose message is `sent`
/// or in flight: where runs of a campaign work one list at once, most of one run's claims meet
/// the other's rows, and one look per chunk settles them instead of one per claim. What is
/// left (a `failed` or `unknown` row to take over, a suppression) goes to [`claim_existing`].
fn refuse_taken(
    tx: &Db,
    campaign: &str,
    claims: &[&Claim],
    granted: &mut [Option<Claimed>],
) -> DbResult<()> {
    let open: Vec<usize> = (0..claims.len())
        .filter(|&i| granted[i].is_none())
        .collect();
    let keys: Vec<(Channel, &str)> = open
        .iter()
        .map(|&i| (claims[i].channel, claims[i].address.as_str()))
        .collect();
    let taken = taken_in(tx, campaign, &keys)?;
    for (&i, key) in open.iter().zip(&keys) {
        if taken.contains(&(key.0.as_str(), key.1)) {
            granted[i] = Some(Claimed::Refused);
        }
    }
    Ok(())
}

/// Which of `keys` (channel, address) `campaign` has `sent` or in flight, one look per chunk.
fn taken_in<'k>(
    c: &Db,
    campaign: &str,
    keys: &[(Channel, &'k str)],
) -> DbResult<std::collections::HashSet<(&'static str, &'k str)>> {
    let mut taken = std::collections::HashSet::new();
    for chunk in rows::chunks(keys) {
        let mut values = Vec::with_capacity(3 * chunk.len());
        for (channel, address) in chunk {
            values.extend_from_slice(&[
                Arg::Text(campaign),
                Arg::Text(channel.as_str()),
                Arg::Text(address),
            ]);
        }
        let sql = TAKEN.padded(chunk.len(), 3, &mut values);
        let found: std::collections::HashSet<(String, String)> = c
            .query(sql, &values, |r| {
                Ok((r.get::<String>(0)?, r.get::<String>(1)?))
            })?
            .into_iter()
            .collect();
        for &(channel, address) in chunk {
            if found.contains(&(channel.as_str().to_string(), address.to_string())) {
                taken.insert((channel.as_str(), address));
            }
        }
    }
    Ok(taken)
}

impl Ledger {
    /// Which of `addresses` on `channel` `campaign` has `sent` or in flight: what a claim of
    /// them would be refused now. Where runs share a campaign (PostgreSQL), a run that met
    /// another's claims asks this of the messages ahead of it, so as not to render them.
    pub fn taken(
        &self,
        campaign: &str,
        channel: Channel,
        addresses: &[String],
    ) -> Result<Vec<bool>, LedgerError> {
        let keys: Vec<(Channel, &str)> = addresses.iter().map(|a| (channel, a.as_str())).collect();
        self.sql(|c| {
            let taken = taken_in(c, campaign, &keys)?;
            Ok(keys
                .iter()
                .map(|&(ch, a)| taken.contains(&(ch.as_str(), a)))
                .collect())
        })
    }
}

/// Settles the claim `c` of a message whose row the insert did not make: taken over when that
/// row is `failed` or `unknown`; refused when `sent`, or in flight; suppressed when the
/// address is (no row at all then means the insert met the suppression).
fn claim_existing(tx: &Db, by: &Claimant<'_>, c: &Claim) -> DbResult<Claimed> {
    const EXISTING: &str = "SELECT rowid, state, permanent,
                CASE WHEN EXISTS (SELECT 1 FROM suppressions WHERE address = ?3)
                     THEN 1 ELSE 0 END
         FROM messages WHERE campaign = ?1 AND channel = ?2 AND address = ?3";
    // Only while still failed or unknown: on PostgreSQL another run may take it over between
    // the look and this change (its transactions do not hold the whole store the way SQLite's
    // `BEGIN IMMEDIATE` does), and the row it changed first is then refused here.
    const TAKE_OVER: &str = "UPDATE messages SET state = 'sending', attempts = attempts + 1,
                             contact_id = ?4, fingerprint = ?5, run_id = ?6, updated_at = ?7,
                             consent = ?8, consent_source = ?9
         WHERE campaign = ?1 AND channel = ?2 AND address = ?3
           AND (state = 'failed' OR state = 'unknown')";
    const INDEX_TOKEN: &str =
        "INSERT INTO tokens (token, message) VALUES (?1, ?2) ON CONFLICT DO NOTHING";
    let channel = c.channel.as_str();
    let row = tx.query_opt(EXISTING, args![by.campaign, channel, c.address], |r| {
        Ok((
            r.get::<i64>(0)?,
            r.get::<String>(1)?,
            r.get::<bool>(2)?,
            r.get::<bool>(3)?,
        ))
    })?;
    let Some((row, state, permanent, suppressed)) = row else {
        return Ok(Claimed::Suppressed);
    };
    let state = State::parse(&state);
    if !matches!(state, State::Failed | State::Unknown) {
        return Ok(Claimed::Refused);
    }
    if suppressed {
        return Ok(Claimed::Suppressed);
    }
    if state == State::Unknown && !c.resumes_unknown && tx.sqlite().is_none() {
        return Ok(Claimed::Refused);
    }
    let values = args![
        by.campaign,
        channel,
        c.address,
        c.contact_id,
        by.fingerprint,
        by.run,
        by.now,
        c.consent,
        c.consent_source
    ];
    if tx.execute(TAKE_OVER, values)? == 0 {
        return Ok(Claimed::Refused);
    }
    if let Some(token) = &c.token {
        tx.execute(INDEX_TOKEN, args![token, row])?;
    }
    Ok(Claimed::Granted(Granted {
        row: RowId(row),
        was: Some((state, permanent)),
    }))
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
/// address), found by the address.
const RECORD_BY_KEY: &str = "UPDATE messages SET state = ?4, permanent = ?5,
         provider_id = COALESCE(?6, provider_id),
         last_error = CASE WHEN ?9 = 1 THEN COALESCE(last_error, ?7) ELSE ?7 END,
         attempts = attempts - ?9, updated_at = ?8,
         sent_at = CASE WHEN ?4 = 'sent' THEN ?8 ELSE sent_at END,
         segments = CASE WHEN ?4 = 'sent' THEN ?10 ELSE segments END
     WHERE campaign = ?1 AND channel = ?2 AND address = ?3 AND state = 'sending'";

/// The same change for a chunk of outcomes, each found by the row its claim returned: one step
/// down the table instead of a search of the address index, and one statement for the chunk.
/// Parameters: now, then per outcome its row, campaign, channel, address, state, permanent,
/// provider id, error, released, segments. Returns the rows it changed.
static RECORD_BY_ROW: Texts = Texts::new(|rows| {
    // The chunk's rows are found from `v` (a `CROSS JOIN`, which SQLite keeps in that order):
    // without statistics SQLite's planner would rather read every row of the campaign than
    // look up 128 row ids, and did, in a benchmark where a send ran 4 times slower. Which row
    // is the message's is checked there; whether it is still `sending` on the row changed (on
    // PostgreSQL, checked again on the newest version of a row another run changed meanwhile).
    // The campaign comes with each row rather than as one parameter: SQLite re-prepares, at
    // every use, a join of `VALUES` that compares a column with a parameter.
    format!(
        "UPDATE messages SET state = x.column5, permanent = x.column6,
             provider_id = COALESCE(x.column7, messages.provider_id),
             last_error = CASE WHEN x.column9 = 1 THEN COALESCE(messages.last_error, x.column8)
                               ELSE x.column8 END,
             attempts = messages.attempts - x.column9, updated_at = CAST(?1 AS TEXT),
             sent_at = CASE WHEN x.column5 = 'sent' THEN CAST(?1 AS TEXT)
                            ELSE messages.sent_at END,
             segments = CASE WHEN x.column5 = 'sent' THEN x.column10 ELSE messages.segments END
         FROM (SELECT v.* FROM ({}) AS v CROSS JOIN messages m
               WHERE m.rowid = v.column1 AND m.campaign = v.column2
                 AND m.channel = v.column3 AND m.address = v.column4) AS x
         WHERE messages.rowid = x.column1 AND messages.state = 'sending'
         RETURNING messages.rowid",
        rows::values(
            &[
                "BIGINT", "TEXT", "TEXT", "TEXT", "TEXT", "BIGINT", "TEXT", "TEXT", "BIGINT",
                "BIGINT"
            ],
            rows,
            2
        )
    )
});

/// A sent SMS's parts, each with its provider id, for its delivery receipts: per part the
/// campaign, its id, number, count and the message's address (the campaign with each row, as
/// in [`RECORD_BY_ROW`]).
static RECORD_PARTS: Texts = Texts::new(|rows| {
    format!(
        "INSERT INTO sms_parts (provider_id, message, part, parts)
         SELECT v.column2, m.rowid, v.column3, v.column4
         FROM ({}) AS v CROSS JOIN messages m
         WHERE m.campaign = v.column1 AND m.channel = 'sms' AND m.address = v.column5
         ON CONFLICT (provider_id) DO NOTHING",
        rows::values(&["TEXT", "TEXT", "BIGINT", "BIGINT", "TEXT"], rows, 1)
    )
});

/// Writes `outcomes` in `tx`, each to its message's row if that row is still `sending`, and adds
/// the addresses that opted out at the provider to the suppression table.
fn record_in(tx: &Db, campaign: &str, outcomes: &[Outcome], now: &str) -> DbResult<()> {
    // Outcomes with their claim's row, a chunk at a time; those without, or whose row is no
    // longer the message's (`purge` of another campaign rebuilt the file mid-run), by the
    // address. A row named twice in a batch (not made by the writer) goes by the address too,
    // in order, as one `UPDATE … FROM` changes a row once.
    let mut rows_seen = std::collections::HashSet::new();
    let (by_row, by_key): (Vec<&Outcome>, Vec<&Outcome>) = outcomes
        .iter()
        .partition(|o| o.row.is_some_and(|r| rows_seen.insert(r.0)));
    let mut changed = std::collections::HashSet::new();
    for chunk in rows::chunks(&by_row) {
        let mut values = Vec::with_capacity(1 + 10 * chunk.len());
        values.push(Arg::Text(now));
        for o in chunk {
            values.extend_from_slice(&[
                o.row.map_or(Arg::Null, |r| Arg::Int(r.0)),
                Arg::Text(campaign),
                Arg::Text(o.channel.as_str()),
                o.address.arg(),
                Arg::Text(o.state.as_str()),
                Arg::Int(i64::from(o.permanent)),
                o.provider_id.arg(),
                o.error.arg(),
                Arg::Int(i64::from(o.released)),
                o.segments.map_or(Arg::Null, |n| Arg::Int(i64::from(n))),
            ]);
        }
        let sql = RECORD_BY_ROW.padded(chunk.len(), 10, &mut values);
        tx.for_each(sql, &values, |r| {
            changed.insert(r.get::<i64>(0)?);
            Ok(())
        })?;
    }
    let missed = by_row
        .iter()
        .filter(|o| !o.row.is_some_and(|r| changed.contains(&r.0)));
    for o in missed.chain(by_key.iter()) {
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
        ];
        tx.execute(RECORD_BY_KEY, values)?;
    }
    // A sent SMS's ids, one per part, for its delivery receipts.
    let mut parts = Vec::new();
    for o in outcomes {
        if let (Channel::Sms, State::Sent, Some(ids)) = (o.channel, o.state, &o.provider_id) {
            let ids: Vec<&str> = ids.split(',').filter(|id| !id.is_empty()).collect();
            let count = ids.len() as i64;
            for (i, id) in ids.into_iter().enumerate() {
                parts.push((id, i as i64 + 1, count, o.address.as_str()));
            }
        }
    }
    for chunk in rows::chunks(&parts) {
        let mut values = Vec::with_capacity(5 * chunk.len());
        for &(id, part, count, address) in chunk {
            values.extend_from_slice(&[
                Arg::Text(campaign),
                Arg::Text(id),
                Arg::Int(part),
                Arg::Int(count),
                Arg::Text(address),
            ]);
        }
        tx.execute(RECORD_PARTS.padded(chunk.len(), 5, &mut values), &values)?;
    }
    for o in outcomes {
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
    use crate::store::lookup::RowLookup;

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
    fn a_batch_longer_than_a_chunk_settles_each_claim_as_one_at_a_time_would() {
        let dir = tempfile::tempdir().unwrap();
        let mut l = Ledger::open(dir.path()).unwrap();
        let now = Utc::now();
        let addr = |i: usize| format!("p{i}");
        // Before the batch: p5 sent, p6 failed, p7 in flight; p8 suppressed.
        let before: Vec<Claim> = (5..8).map(|i| claim(&addr(i))).collect();
        let rows = l.claim("c", 1, "fp", &before, now).unwrap();
        l.record(
            "c",
            &[outcome("p5", State::Sent), outcome("p6", State::Failed)],
            now,
        )
        .unwrap();
        l.suppress("p8", "opted out", "test", now).unwrap();
        // 300 claims (chunks of 128, 128, 32, 8, 4), p9 twice in one chunk, tokens on all.
        let mut batch: Vec<Claim> = (0..299)
            .map(|i| Claim {
                token: Some(format!("t{i}")),
                ..claim(&addr(i))
            })
            .collect();
        batch.insert(10, claim("p9"));
        let claimed = l.commit("c", (2, "fp"), &[], &batch, now).unwrap();
        assert_eq!(claimed.len(), 300);
        let by_addr = |a: &str| -> Vec<Claimed> {
            batch
                .iter()
                .zip(&claimed)
                .filter(|(c, _)| c.address == a)
                .map(|(_, g)| *g)
                .collect()
        };
        assert_eq!(by_addr("p5"), [Claimed::Refused], "sent");
        assert_eq!(by_addr("p7"), [Claimed::Refused], "in flight");
        assert_eq!(by_addr("p8"), [Claimed::Suppressed]);
        let p6 = by_addr("p6")[0].granted().expect("failed: taken over");
        assert_eq!(p6.row, rows[1].unwrap());
        assert_eq!(p6.was, Some((State::Failed, false)));
        let p9 = by_addr("p9");
        assert!(
            p9[0].granted().is_some() && p9[1] == Claimed::Refused,
            "{p9:?}"
        );
        let granted: Vec<(&Claim, Granted)> = batch
            .iter()
            .zip(&claimed)
            .filter_map(|(c, g)| g.granted().map(|g| (c, g)))
            .collect();
        assert_eq!(granted.len(), 296);
        let mut rows: Vec<i64> = granted.iter().map(|(_, g)| g.row.0).collect();
        rows.sort_unstable();
        rows.dedup();
        assert_eq!(rows.len(), 296, "one row each");
        // Each token found its row.
        let db = l.db.sqlite().unwrap();
        let tokens: i64 = db
            .query_row("SELECT COUNT(*) FROM tokens", [], |r| r.get(0))
            .unwrap();
        assert_eq!(tokens, 296);
        for (c, g) in &granted {
            let Some(token) = &c.token else { continue };
            let (row, address): (i64, String) = db
                .query_row(
                    "SELECT m.rowid, m.address FROM tokens t JOIN messages m ON m.rowid = t.message
                     WHERE t.token = ?1",
                    [token],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .unwrap();
            assert_eq!((row, address.as_str()), (g.row.0, c.address.as_str()));
        }
        // Their outcomes in one batch, one of them with a row that is not its own.
        let mut outcomes: Vec<Outcome> = granted
            .iter()
            .map(|(c, g)| Outcome {
                row: Some(g.row),
                ..outcome(&c.address, State::Sent)
            })
            .collect();
        outcomes[3].row = Some(granted[4].1.row);
        l.record("c", &outcomes, now).unwrap();
        let priors = l.priors("c").unwrap();
        for (c, _) in &granted {
            let row = priors.get(Channel::Email, &c.address).unwrap();
            assert_eq!(row.state, State::Sent, "{}", c.address);
        }
        assert_eq!(priors.get(Channel::Email, "p6").unwrap().attempts, 2);
        assert_eq!(
            priors.get(Channel::Email, "p7").unwrap().state,
            State::Sending
        );
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
#[cfg(test)]
mod plans {
    /// Each chunk statement, at the largest chunk, finds its rows from the chunk's `VALUES`:
    /// SQLite's planner, without statistics, would otherwise read every row of the campaign
    /// for each chunk (a send 4 times slower).
    #[test]
    fn chunk_statements_look_rows_up_by_key_not_by_campaign() {
        let dir = tempfile::tempdir().unwrap();
        let l = super::Ledger::open(dir.path()).unwrap();
        let c = l.db.sqlite().unwrap();
        let n = super::rows::MOST_ROWS;
        for sql in [
            super::INSERT_NEW.get(n),
            super::TAKEN.get(n),
            super::RECORD_BY_ROW.get(n),
            super::RECORD_PARTS.get(n),
        ] {
            let mut st = c.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
            let nulls = vec![rusqlite::types::Value::Null; st.parameter_count()];
            let plan: Vec<String> = st
                .query_map(rusqlite::params_from_iter(nulls), |r| r.get::<_, String>(3))
                .unwrap()
                .map(Result::unwrap)
                .collect();
            // Prepared once: run three times, never prepared again (a statement SQLite
            // marks as depending on its parameters is, at every use, once the statement
            // cache clears its bindings).
            let ones = vec![crate::store::arg::Arg::Text("sent"); st.parameter_count()];
            for _ in 0..3 {
                l.db.for_each(sql, &ones, |_| Ok(())).unwrap();
            }
            let again = c.prepare_cached(sql).unwrap();
            assert_eq!(
                again.get_status(rusqlite::StatementStatus::RePrepare),
                0,
                "{sql}"
            );
            let reads = |p: &&String| p.contains(" messages ") || p.contains(" m ");
            assert!(
                plan.iter().any(|p| p == "SCAN v")
                    && plan
                        .iter()
                        .filter(reads)
                        .all(|p| p.contains("(rowid=?)") || p.contains("address=?)")),
                "{sql}\n{plan:#?}"
            );
        }
    }
}
