//! Why a run could not start, or stopped in a way that is not a message's outcome.

use std::path::PathBuf;

use crate::address::AddressError;
use crate::message::BuildError;
use crate::model::Channel;
use crate::recipients::ReportError;
use crate::store::ledger::LedgerError;
use crate::store::lock::LockError;
use crate::templates::RenderError;

/// Why a run could not start or went wrong in a way that is not a message's outcome.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    #[error(transparent)]
    Lock(#[from] LockError),
    #[error("{channel} transport: {message}")]
    Transport { channel: Channel, message: String },
    #[error("{channel} transport: outbox {}: {source}", path.display())]
    Outbox {
        channel: Channel,
        path: PathBuf,
        source: std::io::Error,
    },
    /// The server is out of reach before the first message: nothing sent, a later run may work.
    #[error("{channel} transport: {message} (nothing was sent; a later run retries)")]
    Unavailable { channel: Channel, message: String },
    #[error("starting the async runtime: {0}")]
    Runtime(std::io::Error),
    #[error(transparent)]
    Report(#[from] ReportError),
    /// `--test-to` names an address or contact that cannot take the test.
    #[error("{0}")]
    TestTo(#[from] TestToError),
}

/// Why a test message cannot be made.
#[derive(Debug, thiserror::Error)]
pub enum TestToError {
    #[error("--test-to: {0}")]
    Address(AddressError),
    #[error("--test-to {to}: {channel} is not enabled in this campaign")]
    NotEnabled { to: String, channel: Channel },
    #[error("--contact {0}: no contact with that id, email or phone")]
    NoSuchContact(String),
    #[error("no contact is due on {0}; name one with --contact")]
    NoneDue(Channel),
    #[error("contact {contact} has no valid {channel} address")]
    NoAddress { contact: String, channel: Channel },
    #[error("contact {contact}: {source}")]
    Render {
        contact: String,
        source: RenderError,
    },
    #[error(transparent)]
    Build(BuildError),
}
