//! The two channels a campaign can use. (Transports that carry them arrive with `send`.)

use std::fmt;
use std::str::FromStr;

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

impl FromStr for Channel {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "email" | "e-mail" | "mail" => Ok(Channel::Email),
            "sms" | "text" => Ok(Channel::Sms),
            other => Err(format!(
                "unknown channel {other:?}: use \"email\" or \"sms\""
            )),
        }
    }
}
