//! The store: what outlives a run, in SQLite in `state_dir`. The ledger of messages and runs (the
//! never-twice invariant), the suppressions learnt while sending, the approvals, and the run lock.
//! It takes and returns plain records and knows no command.

pub mod approvals;
mod claims;
pub mod ledger;
pub mod lock;
mod purge;
mod sqlite;
mod suppressions;
mod writer;
