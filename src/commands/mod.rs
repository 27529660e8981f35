//! The commands, one module each. A command takes the loaded campaign and its own options type
//! (never clap's: the command line is the layer above) and returns what it did as a value that
//! prints as text and serialises as JSON; [`crate::run`] prints it and picks the exit code.

pub mod approve;
pub mod bounces;
pub mod check;
pub mod headers;
pub mod inbox;
pub mod listen;
pub mod new;
pub mod preview;
pub mod purge;
pub mod report;
pub mod serve;
pub mod state;
pub mod status;
pub mod suppressions;
pub mod sync;
pub mod unsubscribe;
