//! `[feedback.imap]`: the bounce mailbox on an IMAP server. TLS is always on (implicit TLS on
//! 993 by default, or STARTTLS), trusted through the system's roots and an optional `ca_file`,
//! as `[email.smtp]` is; the password is only where it lives (`password_env` or
//! `password_file`). A message `bounces` has recorded is flagged by default, moved with
//! `move_to`, and deleted only with `delete = true`.

use std::path::{Path, PathBuf};

use super::error::{ConfigError, Locator};
use super::raw::RawImap;
use super::secrets::{SecretSource, secret_source};
use super::values::parse_duration;

/// The folder read when `folder` is not given.
pub const DEFAULT_IMAP_FOLDER: &str = "INBOX";
/// How long connecting, the handshake or one command may take, by default.
pub const DEFAULT_IMAP_TIMEOUT: &str = "30s";

/// How the session is encrypted: there is no clear-text mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImapTls {
    /// TLS from the first byte (imaps, port 993).
    Implicit,
    /// A clear-text greeting, then STARTTLS before anything else is said (port 143).
    StartTls,
}

/// What becomes of a message once the ledger has recorded what it did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Processed {
    /// Flagged `$OutreachProcessed` and `\Seen`, left in the folder.
    Flag,
    /// Moved to this folder.
    MoveTo(String),
    /// Deleted (`\Deleted`, then expunged by UID).
    Delete,
}

/// `[feedback.imap]`, checked. The password itself is never held here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImapSettings {
    pub host: String,
    pub port: u16,
    pub tls: ImapTls,
    pub user: String,
    pub password: SecretSource,
    pub folder: String,
    /// A private CA trusted besides the system's roots.
    pub ca_file: Option<PathBuf>,
    /// For connecting, the TLS handshake and each command.
    pub timeout: std::time::Duration,
    pub processed: Processed,
}

/// Checks `[feedback.imap]`.
pub(super) fn validate_imap(
    raw: RawImap,
    loc: &Locator,
    dir: &Path,
) -> Result<ImapSettings, ConfigError> {
    let host = loc.non_empty(raw.host, "feedback.imap.host")?;
    let tls = match raw.tls.as_deref().unwrap_or("tls") {
        "tls" => ImapTls::Implicit,
        "starttls" => ImapTls::StartTls,
        other => {
            return Err(loc.invalid(
                "feedback.imap.tls",
                format!(
                    "unknown mode {other:?}: use \"tls\" (port 993) or \"starttls\" (port 143); \
                     IMAP without TLS is not offered"
                ),
            ));
        }
    };
    let port = raw.port.unwrap_or(match tls {
        ImapTls::Implicit => 993,
        ImapTls::StartTls => 143,
    });
    if port == 0 {
        return Err(loc.invalid("feedback.imap.port", "must be from 1 to 65535"));
    }
    let user = loc.non_empty(raw.user, "feedback.imap.user")?;
    let password = secret_source(
        raw.password_env.as_deref(),
        raw.password_file.as_deref(),
        loc,
        "feedback.imap.password",
        dir,
    )?
    .ok_or_else(|| {
        loc.invalid(
            "feedback.imap.password_env",
            "required key is missing (or feedback.imap.password_file)",
        )
    })?;
    let folder = match raw.folder {
        None => DEFAULT_IMAP_FOLDER.to_string(),
        Some(f) => folder_name(f, loc, "feedback.imap.folder")?,
    };
    let processed = match (raw.move_to, raw.delete.unwrap_or(false)) {
        (Some(_), true) => {
            return Err(loc.invalid(
                "feedback.imap.delete",
                "give move_to or delete = true, not both",
            ));
        }
        (Some(f), false) => {
            let to = folder_name(f, loc, "feedback.imap.move_to")?;
            if to == folder {
                return Err(loc.invalid(
                    "feedback.imap.move_to",
                    format!("{to:?} is the folder read: move processed mail elsewhere"),
                ));
            }
            Processed::MoveTo(to)
        }
        (None, true) => Processed::Delete,
        (None, false) => Processed::Flag,
    };
    Ok(ImapSettings {
        host,
        port,
        tls,
        user,
        password,
        folder,
        ca_file: raw
            .ca_file
            .map(|f| loc.resolve("feedback.imap.ca_file", &f, dir)),
        timeout: loc.at(
            "feedback.imap.timeout",
            parse_duration(raw.timeout.as_deref().unwrap_or(DEFAULT_IMAP_TIMEOUT)),
        )?,
        processed,
    })
}

/// A folder name as IMAP takes it: not blank, on one line, without a `"` or `\` that would
/// need quoting rules servers apply differently.
fn folder_name(value: String, loc: &Locator, key: &str) -> Result<String, ConfigError> {
    let v = value.trim();
    if v.is_empty() {
        return Err(loc.invalid(key, "must not be empty"));
    }
    if v.contains(|c: char| c.is_control() || c == '"' || c == '\\') {
        return Err(loc.invalid(
            key,
            format!("{v:?}: a folder name may not hold control characters, '\"' or '\\'"),
        ));
    }
    Ok(v.to_string())
}
