//! Statements over many rows at once: a batch of claims or outcomes written with one statement
//! per kind instead of one per message. On PostgreSQL each statement is a round trip to the
//! server, waited for in turn; one per message was what held a send with its ledger there to a
//! fraction of SQLite's rate (BENCHMARKS.md). SQLite takes the same statements.
//!
//! A batch is cut into chunks whose lengths are powers of two ([`chunks`]), so that each kind of
//! statement has at most eight texts ([`Texts`]), each prepared once per connection, however
//! the batches vary.

use std::sync::OnceLock;

/// Most rows one statement takes: 128 rows of ten parameters stay far below either backend's
/// limit on parameters (SQLite 32,766; PostgreSQL 65,535).
pub(super) const MOST_ROWS: usize = 128;

/// `items` cut into chunks of [`MOST_ROWS`] or a smaller power of two, largest first, in order.
pub(super) fn chunks<T>(mut items: &[T]) -> impl Iterator<Item = &[T]> {
    std::iter::from_fn(move || {
        if items.is_empty() {
            return None;
        }
        let n = MOST_ROWS.min(1 << items.len().ilog2());
        let (chunk, rest) = items.split_at(n);
        items = rest;
        Some(chunk)
    })
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
    fn chunks_are_powers_of_two_in_order() {
        let items: Vec<usize> = (0..300).collect();
        let lens: Vec<usize> = chunks(&items).map(<[usize]>::len).collect();
        assert_eq!(lens, [128, 128, 32, 8, 4]);
        let again: Vec<usize> = chunks(&items).flatten().copied().collect();
        assert_eq!(again, items);
        assert_eq!(chunks::<u8>(&[]).count(), 0);
        assert_eq!(chunks(&[1]).map(<[i32]>::len).collect::<Vec<_>>(), [1]);
    }

    #[test]
    fn values_are_numbered_and_cast() {
        assert_eq!(
            values(&["TEXT", "BIGINT"], 2, 3),
            "VALUES (CAST(?3 AS TEXT), CAST(?4 AS BIGINT)), (CAST(?5 AS TEXT), CAST(?6 AS BIGINT))"
        );
    }
}
