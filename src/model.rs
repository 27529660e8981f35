//! The values every layer shares: the [`Channel`] a message goes by, the ledger's send
//! [`State`] of a message, how an address is [`mask`]ed for logs, time zone names, the process
//! [`Exit`] codes and the [`Clock`]. The bottom layer: it imports nothing of the crate.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;

/// A way to reach a patient.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Channel {
    Email,
    Sms,
}

impl Channel {
    /// Both channels, in report order.
    pub const ALL: [Channel; 2] = [Channel::Email, Channel::Sms];

    /// The lowercase name used in files, flags and reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Email => "email",
            Channel::Sms => "sms",
        }
    }
}

impl fmt::Display for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A channel name that is neither.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown channel {0:?}: use \"email\" or \"sms\"")]
pub struct UnknownChannel(pub String);

impl FromStr for Channel {
    type Err = UnknownChannel;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "email" | "e-mail" | "mail" => Ok(Channel::Email),
            "sms" | "text" => Ok(Channel::Sms),
            other => Err(UnknownChannel(other.to_string())),
        }
    }
}

/// A row's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    Sending,
    Sent,
    Failed,
    Unknown,
}

impl State {
    /// The word stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            State::Sending => "sending",
            State::Sent => "sent",
            State::Failed => "failed",
            State::Unknown => "unknown",
        }
    }

    /// Reads a stored word back (anything unknown reads as `unknown`).
    pub fn parse(s: &str) -> State {
        match s {
            "sending" => State::Sending,
            "sent" => State::Sent,
            "failed" => State::Failed,
            _ => State::Unknown,
        }
    }
}

/// An address shown masked ([`mask`]), formatted only if it is shown.
pub struct Masked<'a>(pub Channel, pub &'a str);

impl std::fmt::Display for Masked<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&mask(self.0, self.1))
    }
}

/// Masks an address for logs: `a***@example.com`, `+1312***42`.
pub fn mask(channel: Channel, address: &str) -> String {
    match channel {
        Channel::Email => match address.split_once('@') {
            Some((local, domain)) => {
                format!("{}***@{domain}", local.chars().next().unwrap_or('*'))
            }
            None => "***".into(),
        },
        Channel::Sms => {
            let chars: Vec<char> = address.chars().collect();
            if chars.len() > 7 {
                let head: String = chars[..5].iter().collect();
                let tail: String = chars[chars.len() - 2..].iter().collect();
                format!("{head}***{tail}")
            } else {
                "***".into()
            }
        }
    }
}

/// A time zone name that is not an IANA one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not an IANA time zone (e.g. \"America/Chicago\", \"Europe/London\")")]
pub struct UnknownTimezone(pub String);

/// Parses an IANA time zone name, with a hint for common mistakes.
pub fn parse_timezone(name: &str) -> Result<Tz, UnknownTimezone> {
    name.trim()
        .parse::<Tz>()
        .map_err(|_| UnknownTimezone(name.to_string()))
}

/// The process exit codes (DESIGN.md "Sending").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Exit {
    /// Everything due went (check: the campaign can run).
    Ok = 0,
    /// Some messages failed permanently or became unknown.
    Failed = 1,
    /// The campaign cannot run; nothing was sent.
    Unusable = 2,
    /// Stopped early; a rerun resumes.
    Stopped = 3,
    /// Another run holds the lock.
    Locked = 4,
}

/// The clock of a process: the instant `OUTREACH_NOW` fixes (RFC 3339), so that runs can be
/// reproduced and tested at a chosen instant; otherwise the system time. Read from the
/// environment once, when a campaign loads; everything after asks this value.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    fixed: Option<DateTime<Utc>>,
}

/// `OUTREACH_NOW` that is not a time.
#[derive(Debug, thiserror::Error)]
#[error("OUTREACH_NOW={value:?} is not an RFC 3339 time: {source}")]
pub struct ClockError {
    value: String,
    source: chrono::ParseError,
}

impl Clock {
    /// The clock `OUTREACH_NOW` asks for, else the system's.
    pub fn from_env() -> Result<Self, ClockError> {
        let fixed = match std::env::var("OUTREACH_NOW") {
            Ok(value) if !value.is_empty() => Some(
                DateTime::parse_from_rfc3339(&value)
                    .map(|t| t.with_timezone(&Utc))
                    .map_err(|source| ClockError { value, source })?,
            ),
            _ => None,
        };
        Ok(Clock { fixed })
    }

    /// Now.
    pub fn now(&self) -> DateTime<Utc> {
        self.fixed.unwrap_or_else(Utc::now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_addresses() {
        assert_eq!(
            mask(Channel::Email, "maria.gonzalez@example.com"),
            "m***@example.com"
        );
        assert_eq!(mask(Channel::Sms, "+13125550142"), "+1312***42");
        assert_eq!(mask(Channel::Sms, "+1"), "***");
    }
}
