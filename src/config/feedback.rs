//! `[feedback]`: the mailbox `outreach bounces` reads (a local Maildir or mbox, for a clinic whose
//! Postfix delivers bounces locally, or a folder on an IMAP server: `imap.rs`) and when soft
//! bounces suppress an address. A mailbox is
//! shared by every campaign of a state directory, so campaigns that share one must agree.

use std::path::{Path, PathBuf};

use super::error::{ConfigError, Locator};
use super::imap::{ImapSettings, validate_imap};
use super::raw::RawFeedback;
use super::values::parse_days;

/// Soft bounces (`4.x.x`, delayed) of one address that suppress it, by default.
pub const DEFAULT_SOFT_BOUNCE_LIMIT: u32 = 3;
/// The window those soft bounces are counted in, by default (days).
pub const DEFAULT_SOFT_BOUNCE_WINDOW_DAYS: i64 = 30;

/// Where returned mail is read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MailboxSource {
    /// A Maildir (`new/` and `cur/`); its files are left in place.
    Maildir(PathBuf),
    /// An mbox file (mboxo or mboxrd); it is never rewritten.
    Mbox(PathBuf),
    /// A folder on an IMAP server (`[feedback.imap]`).
    Imap(ImapSettings),
}

/// `[feedback]`, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedbackSettings {
    pub mailbox: MailboxSource,
    /// Soft bounces within `soft_bounce_window` that suppress the address.
    pub soft_bounce_limit: u32,
    pub soft_bounce_window: chrono::Duration,
}

/// Checks `[feedback]`.
pub(super) fn validate_feedback(
    raw: RawFeedback,
    loc: &Locator,
    dir: &Path,
) -> Result<FeedbackSettings, ConfigError> {
    let mailbox = match (raw.maildir, raw.mbox, raw.imap) {
        (Some(p), None, None) => {
            let p = loc.non_empty(Some(p), "feedback.maildir")?;
            MailboxSource::Maildir(loc.resolve("feedback.maildir", &p, dir))
        }
        (None, Some(p), None) => {
            let p = loc.non_empty(Some(p), "feedback.mbox")?;
            MailboxSource::Mbox(loc.resolve("feedback.mbox", &p, dir))
        }
        (None, None, Some(imap)) => MailboxSource::Imap(validate_imap(imap, loc, dir)?),
        (None, None, None) => {
            return Err(loc.invalid(
                "feedback.maildir",
                "required key is missing (or feedback.mbox, or a [feedback.imap] table)",
            ));
        }
        (maildir, mbox, _) => {
            let key = if maildir.is_some() && mbox.is_some() {
                "feedback.mbox"
            } else {
                "feedback.imap"
            };
            return Err(loc.invalid(key, "give one of maildir, mbox or [feedback.imap]"));
        }
    };
    let soft_bounce_limit = raw
        .soft_bounce_limit
        .unwrap_or(DEFAULT_SOFT_BOUNCE_LIMIT as i64);
    if !(1..=1000).contains(&soft_bounce_limit) {
        return Err(loc.invalid("feedback.soft_bounce_limit", "must be from 1 to 1000"));
    }
    let soft_bounce_window = match raw.soft_bounce_window {
        None => chrono::Duration::days(DEFAULT_SOFT_BOUNCE_WINDOW_DAYS),
        Some(w) => loc.at("feedback.soft_bounce_window", parse_days(&w))?,
    };
    Ok(FeedbackSettings {
        mailbox,
        soft_bounce_limit: soft_bounce_limit as u32,
        soft_bounce_window,
    })
}
