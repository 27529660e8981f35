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
//! fsynced before any of its claims is acknowledged. How outcomes are written is
//! `store/outcomes.rs`; the caps a claim counts (`max_per_patient`, the daily cap on
//! PostgreSQL), `store/caps.rs`.

use super::arg::{Arg, ToArg};
use super::caps::{DailyCount, capped, lock_addresses};
use super::db::{Begin, Db, DbError, DbResult, args};
use super::outcomes::{Outcome, record_in};
use super::rows::{self, RowId, Texts};
use super::sqlite::{Ledger, LedgerError, timestamp};
use crate::config::FrequencyCap;
use crate::model::{Channel, State};
use chrono::{DateTime, Utc};

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
        lock_addresses(tx, claims.iter().map(|c| c.address.as_str()))?;
    }
    let mut granted = Vec::with_capacity(claims.len());
    for c in claims {
        if let Some((count, since)) = &cap
            && capped(tx, campaign, (c.channel, &c.address), since)? >= u64::from(*count)
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

#[cfg(test)]
mod tests {
    use super::fixtures::{claim, outcome};
    use super::*;
    use crate::store::lookup::RowLookup;

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
            super::super::outcomes::RECORD_BY_ROW.get(n),
            super::super::outcomes::RECORD_PARTS.get(n),
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
