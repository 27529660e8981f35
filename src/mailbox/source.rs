//! The trait every mailbox implements, and its error.

use std::path::PathBuf;

/// A mailbox that cannot be opened or listed, or a message that cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum MailboxError {
    #[error("mailbox {}: {source}", crate::paths::show_path(path))]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("mailbox {}: not a Maildir (no new/ or cur/ directory)", crate::paths::show_path(.0))]
    NotMaildir(PathBuf),
}

/// Where returned mail is read from.
pub trait Mailbox {
    /// How the ledger names this mailbox (its path, or for IMAP the server, folder and
    /// UIDVALIDITY): ids are unique within it.
    fn name(&self) -> String;
    /// The ids of the messages it holds now, oldest first where it knows.
    fn list(&mut self) -> Result<Vec<String>, MailboxError>;
    /// The raw message (RFC 5322 bytes) of `id`.
    fn fetch(&mut self, id: &str) -> Result<Vec<u8>, MailboxError>;
    /// The ledger has committed what message `id` did. A local mailbox leaves it alone; IMAP
    /// will flag or move it here, so a crash before this call only makes the next run skip it.
    fn done(&mut self, id: &str) -> Result<(), MailboxError>;
}
