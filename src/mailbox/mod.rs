//! Mailboxes `outreach bounces` reads returned mail from, behind one trait ([`Mailbox`]): a
//! local Maildir (`maildir.rs`) or mbox file (`mbox.rs`) today, IMAP later. A mailbox lists
//! its messages by an id that stays the same between runs, hands one over, and is told when the
//! ledger has committed what the message did (`done`): only then would IMAP flag or move it.
//! The local readers change nothing on disk: a Maildir's files stay where they are and an mbox
//! is never rewritten, so a rerun sees the same messages and the ledger says which were read.

mod maildir;
mod mbox;

pub use maildir::Maildir;
pub use mbox::Mbox;

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
