//! Statements over many rows at once: a batch of claims or outcomes written with one statement
//! per kind instead of one per message. On PostgreSQL each statement is a round trip to the
//! server, waited for in turn; one per message was what held a send with its ledger there to a
//! fraction of SQLite's rate (BENCHMARKS.md). SQLite takes the same statements.
//!
//! A batch is cut into chunks of at most [`MOST_ROWS`] ([`chunks`]), and each chunk written with
//! the statement for the next power of two, the rows past its end bound to `NULL`
//! ([`Texts::padded`]), which no key equals and which every statement here passes over: each
//! kind of statement has at most eight texts ([`Texts`]), each prepared once per connection,
//! however the batches vary, and a commit of 126 outcomes is one statement, not six of 64, 32,
//! … 2 (on PostgreSQL each one parsed, planned and answered on its own: a send 6-12% faster,
//! BENCHMARKS.md).

use std::sync::OnceLock;

use super::arg::Arg;

/// Where a granted claim's row is: the run's report reads it back by this (one lookup by
/// integer key, in claim order) instead of by campaign, channel and address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RowId(pub(super) i64);

/// Most rows one statement takes: 128 rows of ten parameters stay far below either backend's
/// limit on parameters (SQLite 32,766; PostgreSQL 65,535).
pub(super) const MOST_ROWS: usize = 128;

/// `items` cut into chunks of [`MOST_ROWS`] rows, the last one shorter, in order.
pub(super) fn chunks<T>(items: &[T]) -> std::slice::Chunks<'_, T> {
    items.chunks(MOST_ROWS)
}

/// `VALUES` of `rows` rows, each of `types.len()` parameters cast to those types, numbered
/// from `?first`. Cast, because PostgreSQL infers no type for a parameter of `VALUES` in a
/// `FROM`; its columns are `column1`, `column2`, … on both backends.
pub(super) fn values(types: &[&str], rows: usize, first: usize) -> String {
    let mut sql = String::from("VALUES ");
    let mut n = first;
    for row in 0..rows {
        if row > 0 {
            sql.push_str(", ");
        }
        sql.push('(');
        for (i, t) in types.iter().enumerate() {
            if i > 0 {
                sql.push_str(", ");
            }
            sql.push_str(&format!("CAST(?{n} AS {t})"));
            n += 1;
        }
        sql.push(')');
    }
    sql
}

/// A statement's texts for each chunk length [`chunks`] makes, built on first use.
pub(super) struct Texts {
    texts: OnceLock<Vec<String>>,
    make: fn(usize) -> String,
}

impl Texts {
    /// The texts `make(rows)` makes.
    pub const fn new(make: fn(usize) -> String) -> Self {
        Texts {
            texts: OnceLock::new(),
            make,
        }
    }

    /// The text for a chunk of `rows` rows (1 to [`MOST_ROWS`]), with `args` (the chunk's
    /// rows' parameters, `width` to a row, after any others) padded with `NULL` to the text's
    /// rows: the next power of two.
    pub fn padded<'t>(&'t self, rows: usize, width: usize, args: &mut Vec<Arg<'_>>) -> &'t str {
        let len = rows.next_power_of_two();
        args.extend(std::iter::repeat_n(Arg::Null, (len - rows) * width));
        self.get(len)
    }

    /// The text for a chunk of `rows` rows (a power of two, at most [`MOST_ROWS`]).
    pub fn get(&self, rows: usize) -> &str {
        debug_assert!(rows.is_power_of_two() && rows <= MOST_ROWS, "{rows}");
        let texts = self.texts.get_or_init(|| {
            (0..=MOST_ROWS.ilog2())
                .map(|k| (self.make)(1 << k))
                .collect()
        });
        &texts[rows.ilog2() as usize]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_are_of_most_rows_in_order() {
        let items: Vec<usize> = (0..300).collect();
        let lens: Vec<usize> = chunks(&items).map(<[usize]>::len).collect();
        assert_eq!(lens, [128, 128, 44]);
        let again: Vec<usize> = chunks(&items).flatten().copied().collect();
        assert_eq!(again, items);
        assert_eq!(chunks::<u8>(&[]).count(), 0);
        assert_eq!(chunks(&[1]).map(<[i32]>::len).collect::<Vec<_>>(), [1]);
    }

    #[test]
    fn a_chunk_is_padded_with_nulls_to_the_next_power_of_two() {
        static T: Texts = Texts::new(|rows| rows.to_string());
        let mut args = vec![Arg::Text("first"), Arg::Int(1), Arg::Int(2), Arg::Int(3)];
        // Three rows of one parameter each after one other: a text of four rows, one padded.
        assert_eq!(T.padded(3, 1, &mut args), "4");
        assert_eq!(args.len(), 5);
        assert!(matches!(args[4], Arg::Null));
        let mut args = vec![Arg::Int(0); 2 * 65];
        assert_eq!(T.padded(65, 2, &mut args), "128");
        assert_eq!(args.len(), 2 * 128);
        let mut args = vec![Arg::Int(0); 2];
        assert_eq!(T.padded(1, 2, &mut args), "1");
        assert_eq!(args.len(), 2);
    }

    #[test]
    fn values_are_numbered_and_cast() {
        assert_eq!(
            values(&["TEXT", "BIGINT"], 2, 3),
            "VALUES (CAST(?3 AS TEXT), CAST(?4 AS BIGINT)), (CAST(?5 AS TEXT), CAST(?6 AS BIGINT))"
        );
    }
}
