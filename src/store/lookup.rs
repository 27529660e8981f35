//! The ledger's rows of given messages, for the per-recipient CSV (`recipients.rs`): a chunk of
//! up to [`CHUNK`] messages read in one or a few statements ([`RowLookup::read_chunk`]), which
//! `outreach report` and a run's report go through, and one message's row ([`RowLookup::get`]).
//!
//! Why chunks: on PostgreSQL every statement is a round trip (~100 µs, `BENCHMARKS.md`), and
//! the run report of a 180,640-message send read one row a statement spent 29.3 s there, 35% of
//! the send. A chunk is read by its claimed row ids first (the primary key: rows lie in claim
//! order), then by key, per channel, for the messages that found nothing that way: those with no
//! row id (`outreach report`, a run's unclaimed messages) and those whose row is no longer
//! theirs. A row is its message's when its key (campaign, channel, address) is the message's:
//! the key is unique, so a row found either way is the one a lookup by key would find.

use std::collections::HashMap;
use std::path::Path;

use super::db::{Arg, Db, DbResult, args};
use super::ledger::{CELLS, Row, SELECT_ROWS, row_from};
use super::rows::RowId;
use super::sqlite::{Ledger, LedgerError, store_error};
use crate::model::{Channel, State};

/// The most messages one [`RowLookup::read_chunk`] reads. Its statements always have this many
/// places (the unused ones `NULL`), so each is prepared once: 500 keeps a statement's
/// text and arguments small (a few kB) while a report of 180,640 messages takes ~360 of them.
pub const CHUNK: usize = 500;

/// What a report shows of a message's ledger row, borrowed from it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Cells<'r> {
    pub attempts: u32,
    pub provider_id: &'r str,
    pub last_error: &'r str,
    pub sent_at: &'r str,
    pub updated_at: &'r str,
    pub delivery: &'r str,
    pub delivery_code: &'r str,
    pub opted_out: &'r str,
    pub consent: &'r str,
    pub consent_source: &'r str,
}

impl<'r> From<&'r Row> for Cells<'r> {
    fn from(r: &'r Row) -> Self {
        Cells {
            attempts: r.attempts,
            provider_id: r.provider_id.as_deref().unwrap_or_default(),
            last_error: r.last_error.as_deref().unwrap_or_default(),
            sent_at: r.sent_at.as_deref().unwrap_or_default(),
            updated_at: &r.updated_at,
            delivery: r.delivery.as_deref().unwrap_or_default(),
            delivery_code: r.delivery_code.as_deref().unwrap_or_default(),
            opted_out: r.opted_out.as_deref().unwrap_or_default(),
            consent: r.consent.as_deref().unwrap_or_default(),
            consent_source: r.consent_source.as_deref().unwrap_or_default(),
        }
    }
}

/// A message of a chunk ([`RowLookup::read_chunk`]): its key, and the row its claim returned,
/// when a run claimed it.
#[derive(Debug, Clone, Copy)]
pub struct Wanted<'k> {
    pub channel: Channel,
    pub address: &'k str,
    pub row: Option<RowId>,
}

/// A message's ledger row as a report shows it, borrowed from its [`Chunk`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Found<'r> {
    pub state: State,
    pub permanent: bool,
    pub cells: Cells<'r>,
}

/// The text columns of [`Cells`] after `attempts`, in its order.
const TEXTS: usize = 9;

/// A row read into a chunk: its text cells are `text[start..ends[0]]`, `text[ends[0]..ends[1]]`…
#[derive(Debug, Clone, Copy)]
struct Stored {
    state: State,
    permanent: bool,
    attempts: u32,
    start: usize,
    ends: [usize; TEXTS],
}

/// The rows of up to [`CHUNK`] messages ([`RowLookup::read_chunk`]). One is reused from chunk to
/// chunk: its cells' text sits in one buffer and its maps keep their room, so a report of
/// 500,000 rows makes no string per row and holds one chunk's rows at a time.
#[derive(Debug, Default)]
pub struct Chunk<'k> {
    /// Each key of the chunk → its first place in it (the place its row is stored at).
    first: HashMap<(Channel, &'k str), usize>,
    /// Each place's first place with the same key; `None` where no message was wanted.
    place: Vec<Option<usize>>,
    /// By first place: the row read, if any.
    rows: Vec<Option<Stored>>,
    text: String,
}

impl<'k> Chunk<'k> {
    /// The ledger's row of the message at `place` of the chunk last read, if it has one.
    pub fn get(&self, place: usize) -> Option<Found<'_>> {
        let s = self.rows[self.place.get(place).copied().flatten()?]?;
        let text = |i: usize| {
            let from = if i == 0 { s.start } else { s.ends[i - 1] };
            &self.text[from..s.ends[i]]
        };
        Some(Found {
            state: s.state,
            permanent: s.permanent,
            cells: Cells {
                attempts: s.attempts,
                provider_id: text(0),
                last_error: text(1),
                sent_at: text(2),
                updated_at: text(3),
                delivery: text(4),
                delivery_code: text(5),
                opted_out: text(6),
                consent: text(7),
                consent_source: text(8),
            },
        })
    }

    /// Starts a chunk of `wanted`: every place empty.
    fn start(&mut self, wanted: &[Option<Wanted<'k>>]) {
        self.first.clear();
        self.place.clear();
        self.rows.clear();
        self.text.clear();
        for (i, w) in wanted.iter().enumerate() {
            let first = w.map(|w| *self.first.entry((w.channel, w.address)).or_insert(i));
            self.place.push(first);
        }
        self.rows.resize(wanted.len(), None);
    }

    /// Keeps a row of [`Chunk::COLUMNS`] at the place of its message; a row of no message of
    /// the chunk (another campaign's row under a row id asked for) is passed over.
    fn store(&mut self, campaign: &str, r: &super::db::Row<'_>) -> DbResult<()> {
        let (Some(of), Some(channel), Some(address)) = (r.str(0)?, r.str(1)?, r.str(2)?) else {
            return Ok(());
        };
        let Ok(channel) = channel.parse::<Channel>() else {
            return Ok(());
        };
        let Some(&at) = self
            .first
            .get(&(channel, address))
            .filter(|_| of == campaign)
        else {
            return Ok(());
        };
        let start = self.text.len();
        let mut ends = [0; TEXTS];
        for (i, end) in ends.iter_mut().enumerate() {
            self.text.push_str(r.str(6 + i)?.unwrap_or_default());
            *end = self.text.len();
        }
        self.rows[at] = Some(Stored {
            state: State::parse(r.str(3)?.unwrap_or_default()),
            permanent: r.get::<i64>(4)? != 0,
            attempts: r.get::<i64>(5)? as u32,
            start,
            ends,
        });
        Ok(())
    }

    /// What [`Chunk::store`] reads: the row's key, its state, then [`CELLS`].
    const COLUMNS: &'static str = "campaign, channel, address, state, permanent, ";
}

/// [`CHUNK`] places from `?{from}` on, each written by `place`, separated by commas.
fn places(from: usize, place: impl Fn(usize) -> String) -> String {
    let places: Vec<String> = (from..from + CHUNK).map(place).collect();
    places.join(", ")
}

/// `args` padded to `len` with `NULL`, which no row's id or address equals, so that one
/// statement of [`CHUNK`] places serves every chunk.
fn padded(args: &mut Vec<Arg<'_>>, len: usize) {
    args.resize(len, Arg::Null);
}

impl Ledger {
    /// Looks up many rows of `campaign`, each statement prepared once, in one read
    /// transaction: SQLite then takes its shared lock once, not once per statement.
    pub fn rows_of<'a>(&'a self, campaign: &'a str) -> Result<RowLookup<'a>, LedgerError> {
        let read = self.db.read().map_err(store_error(&self.path))?;
        let columns = format!("SELECT {}{CELLS} FROM messages", Chunk::COLUMNS);
        Ok(RowLookup {
            db: &self.db,
            path: &self.path,
            campaign,
            by_key: format!("{SELECT_ROWS} AND channel = ?2 AND address = ?3"),
            // Not `campaign = ?1 AND rowid IN (…)`: SQLite's planner then walks the campaign's
            // every row in its index for each chunk (it guesses a campaign has few rows); the
            // campaign is checked as each row is stored.
            chunk_by_rows: format!(
                "{columns} WHERE rowid IN ({})",
                places(1, |i| format!("?{i}"))
            ),
            // A join of the addresses, not `address IN (…)`: PostgreSQL before its first
            // ANALYZE of the table (a fresh ledger) guesses a campaign's channel has a row or
            // two, then walks them all for every chunk, testing each against the 500 addresses:
            // `outreach report` of 36,158 messages took 25 s instead of 6. Joined, each address
            // is one search of the key's index on either backend.
            // Each key whole in the list, the campaign and channel too, not `campaign = ?1`:
            // SQLite prepares again, at every use, a join of `VALUES` that compares a column
            // with a parameter (`store::claims` measured it: 11% of a send's CPU).
            chunk_by_keys: format!(
                "SELECT {}{CELLS} FROM (VALUES {}) AS k {} messages
                 ON messages.campaign = k.column1 AND messages.channel = k.column2
                    AND messages.address = k.column3",
                Chunk::COLUMNS,
                places(0, |i| format!(
                    "(CAST(?{} AS TEXT), CAST(?{} AS TEXT), CAST(?{} AS TEXT))",
                    3 * i + 1,
                    3 * i + 2,
                    3 * i + 3
                )),
                self.db.join_in_order(),
            ),
            _read: read,
        })
    }
}

/// Rows of one campaign, looked up by message ([`Ledger::rows_of`]).
pub struct RowLookup<'a> {
    db: &'a Db,
    path: &'a Path,
    campaign: &'a str,
    by_key: String,
    chunk_by_rows: String,
    chunk_by_keys: String,
    /// Ended (it only read) when the lookup is dropped.
    _read: super::db::Read<'a>,
}

impl RowLookup<'_> {
    /// The row of one message, if the ledger has it.
    pub fn get(&mut self, channel: Channel, address: &str) -> Result<Option<Row>, LedgerError> {
        self.db
            .query_opt(
                &self.by_key,
                args![self.campaign, channel.as_str(), address],
                row_from,
            )
            .map_err(store_error(self.path))
    }

    /// Calls `f` with the report's cells of the message whose claim returned `row`: a chunk of
    /// one ([`RowLookup::read_chunk`]).
    pub fn with_claimed<T>(
        &mut self,
        channel: Channel,
        address: &str,
        row: RowId,
        f: impl FnOnce(Option<Cells<'_>>) -> T,
    ) -> Result<T, LedgerError> {
        let mut chunk = Chunk::default();
        let wanted = Wanted {
            channel,
            address,
            row: Some(row),
        };
        self.read_chunk(&[Some(wanted)], &mut chunk)?;
        Ok(f(chunk.get(0).map(|found| found.cells)))
    }

    /// Reads into `chunk` the rows of `wanted` (at most [`CHUNK`]; `None` where no row is
    /// wanted, which keeps the caller's places): one statement for those with a row id, then
    /// one per channel for those that found none that way (none when every one did).
    pub fn read_chunk<'k>(
        &mut self,
        wanted: &[Option<Wanted<'k>>],
        chunk: &mut Chunk<'k>,
    ) -> Result<(), LedgerError> {
        assert!(
            wanted.len() <= CHUNK,
            "a chunk of {} messages",
            wanted.len()
        );
        chunk.start(wanted);
        let mut args = Vec::with_capacity(3 * CHUNK);
        args.extend(
            wanted
                .iter()
                .flatten()
                .filter_map(|w| w.row.map(|r| Arg::Int(r.0))),
        );
        self.read_into(&self.chunk_by_rows, &mut args, 1, chunk)?;
        args.clear();
        for (i, w) in wanted.iter().enumerate() {
            let Some(w) = w else { continue };
            if chunk.place[i] == Some(i) && chunk.rows[i].is_none() {
                let (campaign, channel) = (Arg::Text(self.campaign), Arg::Text(w.channel.as_str()));
                args.extend([campaign, channel, Arg::Text(w.address)]);
            }
        }
        self.read_into(&self.chunk_by_keys, &mut args, 3, chunk)?;
        Ok(())
    }

    /// Runs a chunk's statement `sql` with `args` (a list of places, each `width` arguments)
    /// into `chunk`; nothing when the list is empty.
    fn read_into(
        &self,
        sql: &str,
        args: &mut Vec<Arg<'_>>,
        width: usize,
        chunk: &mut Chunk<'_>,
    ) -> Result<(), LedgerError> {
        if args.is_empty() {
            return Ok(());
        }
        padded(args, width * CHUNK);
        self.db
            .for_each(sql, args, |r| chunk.store(self.campaign, r))
            .map_err(store_error(self.path))
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::store::claims::fixtures::{claim, outcome};
    use crate::store::ledger::{Claim, Outcome};

    /// Every place of every chunk holds what a lookup by key finds (the run report's rows as
    /// they were read one at a time), over three chunks of both channels, with the rows a
    /// report meets: claimed rows found by their id; a row moved since its claim (a stale id:
    /// found by key), ids of another message of the chunk and of another campaign's row (the
    /// same address: its cells must not be taken), messages with no id, a key twice in a chunk,
    /// a key the ledger lacks, and places wanting nothing.
    pub(in crate::store) fn chunks_read_what_lookups_by_key_find(l: &mut Ledger) {
        let now = chrono::Utc::now();
        let n = CHUNK + 100;
        let claims: Vec<Claim> = (0..n)
            .flat_map(|i| {
                let sms = Claim {
                    channel: Channel::Sms,
                    ..claim(&format!("+1312555{i:04}"))
                };
                [claim(&format!("p{i:04}@example.com")), sms]
            })
            .collect();
        // Runs with leases, which a claim on PostgreSQL checks.
        let mut run = |campaign| {
            l.fingerprint_change(campaign, "fp", now).unwrap();
            l.begin_run(campaign, now).unwrap().0
        };
        let (c, d) = (run("c"), run("d"));
        let ids: Vec<RowId> = l
            .claim("c", c, "fp", &claims, now)
            .unwrap()
            .into_iter()
            .map(|id| id.expect("granted"))
            .collect();
        let elsewhere = l.claim("d", d, "fp", &claims[..1], now).unwrap()[0].unwrap();
        let outcomes: Vec<Outcome> = claims
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let state = if i % 3 == 0 {
                    State::Failed
                } else {
                    State::Sent
                };
                Outcome {
                    channel: c.channel,
                    permanent: i % 5 == 0,
                    provider_id: Some(format!("id-{i}")),
                    error: (i % 3 == 0).then(|| format!("error {i}")),
                    ..outcome(&c.address, state)
                }
            })
            .collect();
        l.record("c", &outcomes, now).unwrap();
        // Message 7's row moves (a file rebuilt mid-run gives rows new ids).
        l.db.execute(
            "UPDATE messages SET rowid = ?1 WHERE rowid = ?2",
            args![ids[7].0 + 1_000_000, ids[7].0],
        )
        .unwrap();
        let mut wanted: Vec<Option<Wanted<'_>>> = claims
            .iter()
            .zip(&ids)
            .map(|(c, &id)| {
                Some(Wanted {
                    channel: c.channel,
                    address: &c.address,
                    row: Some(id),
                })
            })
            .collect();
        let mut set_row = |i: usize, row| wanted[i].as_mut().unwrap().row = row;
        set_row(8, Some(ids[9]));
        set_row(10, Some(elsewhere));
        set_row(11, Some(ids[7]));
        set_row(CHUNK + 3, None);
        set_row(2 * CHUNK + 1, None);
        wanted[13] = wanted[15];
        wanted[CHUNK - 1] = None;
        wanted[CHUNK] = None;
        wanted[40] = Some(Wanted {
            channel: Channel::Email,
            address: "nobody@example.com",
            row: Some(ids[40]),
        });
        let mut lookup = l.rows_of("c").unwrap();
        let mut chunk = Chunk::default();
        let mut found = 0;
        for (k, some) in wanted.chunks(CHUNK).enumerate() {
            lookup.read_chunk(some, &mut chunk).unwrap();
            for (place, w) in some.iter().enumerate() {
                let row = match w {
                    Some(w) => lookup.get(w.channel, w.address).unwrap(),
                    None => None,
                };
                let expected = row.as_ref().map(|r| Found {
                    state: r.state,
                    permanent: r.permanent,
                    cells: r.into(),
                });
                assert_eq!(chunk.get(place), expected, "chunk {k}, place {place}");
                found += usize::from(expected.is_some());
            }
        }
        assert_eq!(
            found,
            2 * n - 3,
            "every row but the None places' and nobody's"
        );
    }

    #[test]
    fn chunks_read_what_lookups_by_key_find_on_sqlite() {
        let dir = tempfile::tempdir().unwrap();
        chunks_read_what_lookups_by_key_find(&mut Ledger::open(dir.path()).unwrap());
    }

    /// SQLite's plan of a chunk: the rows by their ids and the keys through the key's index,
    /// never every row of the campaign (`campaign = ?1` with an `IN` list of row ids reads so).
    #[test]
    fn a_chunk_is_read_by_row_id_and_by_key_on_sqlite() {
        let dir = tempfile::tempdir().unwrap();
        let l = Ledger::open(dir.path()).unwrap();
        let lookup = l.rows_of("c").unwrap();
        let plan = |sql: &str| -> String {
            let c = l.db.sqlite().unwrap();
            let mut stmt = c.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
            let unbound = vec![rusqlite::types::Null; stmt.parameter_count()];
            let rows = stmt
                .query_map(rusqlite::params_from_iter(unbound), |r| {
                    r.get::<_, String>(3)
                })
                .unwrap();
            rows.map(Result::unwrap).collect::<Vec<_>>().join("\n")
        };
        let rows = plan(&lookup.chunk_by_rows);
        assert!(
            rows.starts_with("SEARCH messages USING INTEGER PRIMARY KEY (rowid=?)"),
            "{rows}"
        );
        let keys = plan(&lookup.chunk_by_keys);
        let by_key = "SEARCH messages USING INDEX sqlite_autoindex_messages_1 \
                      (campaign=? AND channel=? AND address=?)";
        assert!(keys.lines().any(|l| l == by_key), "{keys}");
        assert!(!keys.contains("SCAN messages"), "{keys}");
        // Each prepared once: SQLite prepares again, at each use, a statement it marks as
        // depending on its parameters' values.
        for sql in [&lookup.chunk_by_rows, &lookup.chunk_by_keys] {
            let c = l.db.sqlite().unwrap();
            let nulls = vec![Arg::Null; c.prepare(sql).unwrap().parameter_count()];
            for _ in 0..3 {
                l.db.for_each(sql, &nulls, |_| Ok(())).unwrap();
            }
            let st = c.prepare_cached(sql).unwrap();
            assert_eq!(
                st.get_status(rusqlite::StatementStatus::RePrepare),
                0,
                "{sql}"
            );
        }
    }
}
