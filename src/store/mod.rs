//! The store: what outlives a run, in SQLite in `state_dir` or in the PostgreSQL database of
//! `sending.state_url` (opened by `open.rs`: `Ledger::open_store`, or `open_existing` to create
//! nothing). The ledger of messages and runs (the
//! never-twice invariant), the suppressions learnt while sending, the approvals, and the run lock.
//! It takes and returns plain records (strings, times, `model` values, the plan's `Priors`, the
//! structs of `store::ledger`) and knows no command and no send policy.
//!
//! # The surface
//!
//! Callers reach everything through [`ledger`] (the records, [`ledger::Ledger`] and its error
//! [`ledger::LedgerError`]), [`approvals`] and [`lock`]. The ledger's calls, by who makes them:
//!
//! - a run's start and end: `Ledger::open_store`, `hold_run_lock` (or `hold_send_lock`),
//!   `recover_interrupted`, `fingerprint_change`, `begin_run`, `end_run`; on PostgreSQL, while
//!   it runs, `heartbeat` ([`lease`]);
//! - the plan: `priors`, `sent_between`, `suppressions`;
//! - the run's claims and outcomes, only through the batched writer: `Writer::start` (the
//!   ledger, campaign, run, fingerprint, clock, and the caller's `BeforeCommit`, run before a
//!   commit of outcomes), then `WriterHandle::claim` ([`ledger::Claim`] in,
//!   [`ledger::Claimed`] out, once on disk), `WriterHandle::record` ([`ledger::Outcome`] in,
//!   queued) and `WriterHandle::flush`; `Writer::finish` gives the ledger back. The writer
//!   groups them into one store-private call, `Ledger::commit` (outcomes, then claims, in one
//!   transaction), which is where never-twice is enforced;
//! - `status` and `report`: `counts`, `last_run`, `each_row`, `rows_of` ([`lookup::RowLookup`]:
//!   the rows of a chunk of messages in one statement);
//! - the other commands: `suppress` (`unsubscribe`), `suppression_rows`, `lifts` and `lift`
//!   (`suppressions`), `approve` and `approval`, `campaign_rows` and `purge`.
//!
//! # One SQL, two backends
//!
//! Every module speaks to the database through [`db`]'s `Db`: statements with numbered
//! parameters, typed arguments (`args!`), rows read by column, transactions. The statements are
//! written once, in the SQL that SQLite and PostgreSQL share (`db.rs` says which parts of each
//! that leaves out), so a claim means the same on both. What stays SQLite's own: the file
//! (`ledger::FILE`, `Ledger::path`), its pragmas and migrations (`sqlite.rs`), the
//! table-or-index read (`ledger.rs`) and how `purge` scrubs the file; each is reached through
//! `Ledger::sqlite` and skipped elsewhere. PostgreSQL's own: its connection (`postgres.rs`: TLS
//! by `sslmode`, statements prepared once, arguments bound as the types it infers) and its
//! schema, created and migrated in numbered steps (`postgres_schema.rs`).
//!
//! The run lock ([`lock`]): on SQLite, `lock::acquire` is taken before the ledger is opened and
//! held until the run ends; a second run of the campaign exits 4, and `recover_interrupted`
//! turns *every* `sending` row of the campaign into `unknown`: no live run can own one.
//!
//! On PostgreSQL, runs of a campaign on one host or many share the work: no lock file, and in
//! the database only a shared advisory lock (`Ledger::hold_send_lock`, which keeps out a
//! `purge` or a `sync` of the campaign, which take it exclusively with `hold_run_lock`). Each
//! run has a lease instead ([`lease`]): its `runs` row, renewed by a heartbeat with the
//! server's clock, and a lock of its own that its connection holds. `recover_interrupted` turns
//! into `unknown` only the `sending` rows (they carry their `run_id`) of runs that are not live
//! (finished, unknown, their lease expired or their connection gone), and marks such runs
//! `lost`. Each claim's transaction checks the claiming run's own lease, and the daily cap
//! across the campaign's runs (`Ledger::set_daily_cap`).

pub mod approvals;
mod arg;
pub mod bounces;
mod caps;
mod claims;
pub mod copy;
mod db;
pub mod feedback;
pub mod feedback_writer;
pub mod lease;
pub mod ledger;
pub mod lock;
pub mod lookup;
mod open;
mod outcomes;
#[cfg(feature = "postgres")]
mod postgres;
#[cfg(feature = "postgres")]
mod postgres_schema;
#[cfg(feature = "postgres")]
mod postgres_tls;
mod purge;
pub mod report;
mod rows;
mod sqlite;
mod suppressions;
pub mod sync;
pub mod tally;
mod writer;
