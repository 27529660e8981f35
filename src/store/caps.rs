//! The caps a claim counts in its transaction: `sending.max_per_patient` across the ledger's
//! campaigns (the other campaigns' messages to the address within the window, each address
//! locked while it is counted and claimed), and, on PostgreSQL, `sending.daily_cap` across a
//! campaign's runs ([`DailyCount`]). `store/claims.rs` asks them one claim at a time, as a
//! claim refused by the ledger must leave its place under the cap to the next.

use super::db::{Db, DbResult, args};
use crate::model::Channel;

/// The daily cap's count in a claim's transaction (PostgreSQL): the campaign's messages of each
/// channel sent in the clinic's day or in flight, read once per channel after the campaign's
/// lock is taken, plus what this transaction granted.
pub(super) struct DailyCount<'a> {
    cap: u32,
    day: (&'a str, &'a str),
    counts: [Option<u64>; 2],
}

impl<'a> DailyCount<'a> {
    /// Takes the campaign's daily-cap lock for the rest of `tx` (before any address lock, in
    /// every transaction: no two wait on each other).
    pub(super) fn start(
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
    pub(super) fn fits(&mut self, tx: &Db, campaign: &str, channel: Channel) -> DbResult<bool> {
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
    pub(super) fn take(&mut self, channel: Channel) {
        if let Some(n) = self.counts[channel as usize].as_mut() {
            *n += 1;
        }
    }
}

/// Holds, until `tx` ends, a lock on each of `addresses`, for the frequency cap's count and the
/// claim that follows it: on SQLite the transaction's write lock already keeps every other
/// claim out; on PostgreSQL, where another campaign's run may claim at the same moment, an
/// advisory lock per address does, taken in one order (sorted) so that two batches cannot wait
/// on each other.
pub(super) fn lock_addresses<'a>(
    tx: &Db,
    addresses: impl Iterator<Item = &'a str>,
) -> DbResult<()> {
    if tx.sqlite().is_some() {
        return Ok(());
    }
    let mut addresses: Vec<&str> = addresses.collect();
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

/// How many messages the other campaigns of the ledger sent to `address` on `channel` since
/// `since`, have in flight or left unknown. One look-up in the primary key per campaign
/// (campaign, channel, address): no index by address is kept for it, as every claim would pay
/// for its upkeep.
pub(super) fn capped(
    tx: &Db,
    campaign: &str,
    (channel, address): (Channel, &str),
    since: &str,
) -> DbResult<u64> {
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
        args![campaign, channel.as_str(), address, since],
        |r| r.get::<i64>(0),
    )
    .map(|n| n as u64)
}

#[cfg(test)]
mod tests {
    use crate::config::FrequencyCap;
    use crate::model::State;
    use crate::store::claims::fixtures::{claim, outcome};
    use crate::store::ledger::{Claimed, Ledger};
    use chrono::Utc;

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
