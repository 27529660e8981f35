//! The end-to-end tests, one binary: each module drives the real `outreach` binary against real
//! servers on 127.0.0.1 (see README, "Run the tests"). One binary instead of one per file: the
//! test dependencies are linked once, not nine times (figures in BENCHMARKS.md).

mod common;

mod approve;
mod architecture;
mod audience;
mod bounces;
mod bounces_cmd;
mod browser;
mod check;
mod consent;
mod contacts;
mod frequency_cap;
mod imap;
mod install;
mod languages;
mod listen;
mod listen_tls;
mod new;
mod outbox;
mod postgres;
mod preview;
mod report;
mod send;
mod serve;
mod shared_ledger;
mod sms_gateway;
mod smtp;
mod state;
mod suppressions;
mod sync;
mod sync_generic;
mod utm;
