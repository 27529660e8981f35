//! The ways out: the [`Transport`] trait, the messages it carries ([`EmailOut`], [`SmsOut`]) and
//! what it says of each ([`Delivery`]); implemented by `file` (the outboxes), `smtp` (email
//! through a relay, lettre) and `http` (SMS gateways, reqwest). A transport that cannot be set
//! up says why in its own error type (`smtp::SmtpError`, `http::GatewayError`); one that cannot
//! start, in a [`CheckError`].

pub mod file;
pub mod http;
pub mod smtp;

use futures::future::BoxFuture;

use crate::address::{E164Phone, EmailAddress};
use crate::sms::Encoding;

/// An email as it goes on the wire.
#[derive(Debug, Clone)]
pub struct EmailOut {
    /// Envelope sender (`MAIL FROM`, which the final mailbox records as `Return-Path`):
    /// `email.bounce_address` filled with the message's token, else the `From` address.
    pub from: lettre::Address,
    /// Envelope recipient, as written.
    pub to: EmailAddress,
    /// The whole message: headers and body, CRLF line ends.
    pub bytes: Vec<u8>,
    pub campaign: String,
    pub contact_id: String,
}

/// An SMS as handed to a gateway.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SmsOut {
    pub to: E164Phone,
    pub from: String,
    pub body: String,
    pub encoding: Encoding,
    pub segments: usize,
    pub campaign: String,
    pub contact: String,
}

/// What a transport says of one message. Whether to retry is decided here, by the transport
/// that knows its protocol, and nowhere else.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    /// Accepted; the provider's id (queue id, message sid, file name).
    Sent { provider_id: String },
    /// Provably not delivered and worth another try (4xx, 429, 5xx from a gateway, refused
    /// connection, a write that failed before the message was complete).
    Transient {
        error: String,
        retry_after: Option<std::time::Duration>,
    },
    /// Refused for this recipient for good (SMTP 5xx, invalid number).
    Permanent { error: String },
    /// The recipient has opted out at the provider: permanent, and suppressed from now on.
    OptedOut { error: String },
    /// The message may have gone (timeout or lost connection after it was handed over).
    Unknown { error: String },
    /// Not this recipient's fault and no point going on (credentials rejected): stop the run.
    Fatal { error: String },
}

/// How many messages may wait, claimed, for each session, until [`ENOUGH_CLAIMED`] are: a group
/// commit and its fsync take a few milliseconds, in which a fast server takes tens of messages,
/// and a session whose next message is not yet claimed waits for the ledger (SMTP to
/// `smtp-sink`, 8 sessions: 8.7-8.9 s with 4 claims each, 7.3-7.8 s with 8). The cost: a run
/// killed mid-way leaves up to that many messages `unknown` (each reported, none resent without
/// `--resend-unknown`) instead of `concurrency`.
pub const CLAIMS_AHEAD: usize = 8;

/// Claims that cover a commit at the fastest servers measured; beyond them, sessions get half
/// of [`CLAIMS_AHEAD`] each (SMS over 32 connections: 128 claimed ran within 3% of 256).
pub const ENOUGH_CLAIMED: usize = 64;

/// Why a transport cannot start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckError {
    /// The configuration or the credentials are wrong: fix them (exit 2).
    Unusable(String),
    /// The server is out of reach or busy right now: a later run may work (exit 3).
    Unavailable(String),
}

impl Delivery {
    /// The same outcome with its error text passed through `f` (to mask an address in it).
    pub fn map_error(self, f: impl FnOnce(String) -> String) -> Delivery {
        match self {
            Delivery::Transient { error, retry_after } => Delivery::Transient {
                error: f(error),
                retry_after,
            },
            Delivery::Permanent { error } => Delivery::Permanent { error: f(error) },
            Delivery::OptedOut { error } => Delivery::OptedOut { error: f(error) },
            Delivery::Unknown { error } => Delivery::Unknown { error: f(error) },
            Delivery::Fatal { error } => Delivery::Fatal { error: f(error) },
            sent @ Delivery::Sent { .. } => sent,
        }
    }
}

/// The file system of an outbox, where a transport's messages are written but not yet on disk
/// when it reports them [`Delivery::Sent`]: one `syncfs` of it makes every one of them durable,
/// and the run does that before the ledger records them sent (`send/lane.rs`), so a message the
/// ledger calls `sent` survives a power cut like the ledger's own row.
#[derive(Debug, Clone)]
pub struct FileSystem {
    /// A file or directory on it, open for the run.
    on: std::sync::Arc<std::fs::File>,
    /// The outbox, for errors.
    path: std::path::PathBuf,
    device: u64,
}

impl FileSystem {
    /// The file system that `file`, opened at `path`, is on.
    pub fn of(file: std::fs::File, path: &std::path::Path) -> std::io::Result<Self> {
        #[cfg(unix)]
        let device = std::os::unix::fs::MetadataExt::dev(&file.metadata()?);
        #[cfg(not(unix))]
        let device = 0;
        Ok(FileSystem {
            on: std::sync::Arc::new(file),
            path: path.to_path_buf(),
            device,
        })
    }

    /// Its device number: two outboxes on one file system need one sync.
    pub fn device(&self) -> u64 {
        self.device
    }

    /// Writes everything written to it so far to disk: files, their sizes and directory entries
    /// (Linux's `syncfs`; elsewhere `sync`, every file system, or an fsync of the one file).
    pub fn sync(&self) -> Result<(), String> {
        #[cfg(target_os = "linux")]
        let synced = rustix::fs::syncfs(&*self.on).map_err(std::io::Error::from);
        #[cfg(all(unix, not(target_os = "linux")))]
        let synced = Ok::<(), std::io::Error>(rustix::fs::sync());
        #[cfg(not(unix))]
        let synced = self.on.sync_all();
        synced.map_err(|e| format!("syncing the file system of {}: {e}", self.path.display()))
    }
}

/// A way out for one channel's messages, of type `M` ([`EmailOut`] or [`SmsOut`]): a transport
/// is never handed the other channel's message.
pub trait Transport<M>: Send + Sync {
    /// A short name for logs and summaries ("file", "smtp", "twilio").
    fn name(&self) -> &str;

    /// Checks what can be checked before the first message (connection, credentials). An error
    /// means nothing is sent: the campaign cannot run as configured, or the server is out of
    /// reach for now.
    fn check(&self) -> BoxFuture<'_, Result<(), CheckError>> {
        Box::pin(async { Ok(()) })
    }

    /// How many messages to keep in flight (claimed in the ledger), given the configured
    /// `concurrency`: by default [`CLAIMS_AHEAD`] per session up to [`ENOUGH_CLAIMED`], half as
    /// many per session beyond, so that one ledger commit covers many claims while earlier
    /// messages are on the wire.
    fn in_flight(&self, concurrency: usize) -> usize {
        (concurrency * CLAIMS_AHEAD)
            .min(ENOUGH_CLAIMED)
            .max(concurrency * CLAIMS_AHEAD / 2)
    }

    /// How many messages may be handed over at once (parallel sessions or requests), given the
    /// configured `concurrency`. At most `in_flight` are claimed; this many of them go.
    fn sessions(&self, concurrency: usize) -> usize {
        concurrency
    }

    /// Hands one message over.
    fn send<'a>(&'a self, message: &'a M) -> BoxFuture<'a, Delivery>;

    /// The file system to sync before this transport's `Sent` outcomes are recorded: a
    /// transport that says `Sent` once the message is written (the file outboxes) names it; one
    /// whose `Sent` is a server's answer (SMTP, HTTP) has none.
    fn unsynced(&self) -> Option<FileSystem> {
        None
    }

    /// Ends open sessions politely once the run is over (SMTP's QUIT).
    fn close(&self) -> BoxFuture<'_, ()> {
        Box::pin(async {})
    }
}
