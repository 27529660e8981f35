//! Mailboxes `outreach bounces` reads returned mail from, behind one trait ([`Mailbox`]): a
//! local Maildir (`maildir.rs`) or mbox file (`mbox.rs`), or a folder on an IMAP server
//! (`imap.rs`). A mailbox lists its messages by an id that stays the same between runs, hands
//! one over, and is told when the ledger has committed what the message did (`done`): only then
//! does IMAP flag, move or delete it.
//! The local readers change nothing on disk: a Maildir's files stay where they are and an mbox
//! is never rewritten, so a rerun sees the same messages and the ledger says which were read.

mod imap;
mod maildir;
mod mbox;
mod source;

pub use imap::{Imap, PROCESSED_KEYWORD};
pub use maildir::Maildir;
pub use mbox::Mbox;
pub use source::{Mailbox, MailboxError};
