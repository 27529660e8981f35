//! The trait every mailbox implements, and its error.

use std::path::PathBuf;

use crate::config::SecretError;

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
    /// The password's environment variable or file cannot be read.
    #[error("feedback.imap.password: {0}")]
    ImapPassword(SecretError),
    #[error("feedback.imap.ca_file {}: {why}", crate::paths::show_path(path))]
    ImapCaFile { path: PathBuf, why: String },
    /// No TCP connection (refused, no route, no answer in time, a name that does not resolve).
    #[error("IMAP server {server}: cannot connect: {why}")]
    ImapConnect { server: String, why: String },
    /// The TLS handshake failed on its own terms: most often a certificate not trusted.
    #[error(
        "IMAP server {server}: TLS failed: {why} (is the certificate trusted? a private \
         server's CA goes in feedback.imap.ca_file)"
    )]
    ImapTls { server: String, why: String },
    /// The server refused the user name and password; `reply` is its own text.
    #[error("IMAP server {server}: login as {user} refused: {reply}")]
    ImapLogin {
        server: String,
        user: String,
        reply: String,
    },
    /// The folder to read cannot be selected (it does not exist, or the user may not read it).
    #[error("IMAP server {server}: folder {folder:?} cannot be read: {reply}")]
    ImapFolder {
        server: String,
        folder: String,
        reply: String,
    },
    /// The server said NO or BAD to one command; the session goes on.
    #[error("IMAP server {server}: {doing}: {reply}")]
    ImapRefused {
        server: String,
        doing: String,
        reply: String,
    },
    /// The session broke (closed, unreadable, no answer in time): nothing more can be read
    /// this run.
    #[error("IMAP server {server}: {doing}: {why}")]
    ImapLost {
        server: String,
        doing: String,
        why: String,
    },
}

impl MailboxError {
    /// Whether the mailbox can give nothing more this run, so asking it about the next message
    /// would only repeat this error.
    pub fn ends_session(&self) -> bool {
        matches!(self, MailboxError::ImapLost { .. })
    }
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
    /// flags, moves or deletes it here, so a crash before this call only makes the next run
    /// skip it.
    fn done(&mut self, id: &str) -> Result<(), MailboxError>;
}
