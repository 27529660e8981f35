//! Outcomes: what became of each message a run claimed (`sent`, `failed`, `unknown`), written
//! to its row if that row is still `sending`, a chunk of outcomes a statement, found by the row
//! its claim returned (by the message's key when that row is no longer the message's); a sent
//! SMS's parts, for its delivery receipts; and the addresses that opted out at the provider,
//! into the suppression table. The writer records them in the transaction of its next claims
//! (`Ledger::commit`, `store/claims.rs`).

use super::arg::{Arg, ToArg};
use super::db::{Db, DbResult, args};
use super::rows::{self, RowId, Texts};
use super::suppressions;
use crate::model::{Channel, State};

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
pub(super) static RECORD_BY_ROW: Texts = Texts::new(|rows| {
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
pub(super) static RECORD_PARTS: Texts = Texts::new(|rows| {
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
pub(super) fn record_in(tx: &Db, campaign: &str, outcomes: &[Outcome], now: &str) -> DbResult<()> {
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
    use super::*;
    use crate::store::claims::fixtures::{claim, outcome};
    use crate::store::ledger::Ledger;
    use chrono::Utc;

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
