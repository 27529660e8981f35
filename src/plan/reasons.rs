//! Why a message does not go now: the reasons [`super::decide`] gives, as values that count
//! (`label`), sort (`SKIP_ORDER`) and read (`Display`) the same in `check`, `preview`, `send`
//! and the reports.

use std::fmt;

use crate::contacts::SuppressedBy;

/// Why a message will not go, ever (for this campaign as configured).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Skip {
    /// The contact chose the other channel.
    NotChosen,
    /// No address for the channel.
    NoAddress,
    /// The address is there but unusable.
    InvalidAddress(String),
    /// Another problem in the row stops this channel (bad consent value, time zone, shape).
    RowProblem(String),
    /// An earlier row has the same address.
    Duplicate {
        line: usize,
        id: String,
    },
    /// `contacts.where` leaves the row out.
    NotInAudience,
    NoConsent,
    Suppressed(SuppressedBy),
    /// The message could not be rendered, or breaks a limit (SMS segments).
    Message(String),
    /// The campaign's window closed (`campaign.not_after`) before it went.
    CampaignEnded,
    /// `sending.max_per_patient`: other campaigns messaged the address up to the cap, and the
    /// cap frees it only after the campaign's window ends.
    FrequencyCap,
}

impl Skip {
    /// A stable identifier for counting and JSON ("no_consent", "suppressed", ...).
    pub fn label(&self) -> &'static str {
        match self {
            Skip::NotChosen => "not_chosen",
            Skip::NoAddress => "no_address",
            Skip::InvalidAddress(_) => "invalid_address",
            Skip::RowProblem(_) => "row_error",
            Skip::Duplicate { .. } => "duplicate",
            Skip::NotInAudience => "not_in_audience",
            Skip::NoConsent => "no_consent",
            Skip::Suppressed(_) => "suppressed",
            Skip::Message(_) => "message_error",
            Skip::CampaignEnded => "campaign_ended",
            Skip::FrequencyCap => "frequency_cap",
        }
    }

    /// Whether this skip comes from a problem someone should fix (listed as an error).
    pub fn is_problem(&self) -> bool {
        matches!(
            self,
            Skip::InvalidAddress(_) | Skip::RowProblem(_) | Skip::Message(_)
        )
    }
}

/// Skip labels in the order the rules are applied: reports list them this way.
pub const SKIP_ORDER: &[&str] = &[
    "not_chosen",
    "invalid_address",
    "row_error",
    "no_address",
    "duplicate",
    "not_in_audience",
    "no_consent",
    "suppressed",
    "message_error",
    "campaign_ended",
    "frequency_cap",
];

impl fmt::Display for Skip {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Skip::NotChosen => f.write_str("the patient chose the other channel"),
            Skip::NoAddress => f.write_str("no address"),
            Skip::InvalidAddress(r) => write!(f, "invalid address: {r}"),
            Skip::RowProblem(r) => write!(f, "row error: {r}"),
            Skip::Duplicate { line, id } => write!(f, "duplicate of line {line} ({id})"),
            Skip::NotInAudience => f.write_str("not in audience"),
            Skip::NoConsent => f.write_str("no consent"),
            Skip::Suppressed(by) => write!(f, "suppressed ({by})"),
            Skip::Message(r) => write!(f, "message error: {r}"),
            Skip::CampaignEnded => f.write_str("campaign ended"),
            Skip::FrequencyCap => f.write_str(
                "frequency cap (other campaigns messaged the patient; the cap frees after the \
                 campaign ends)",
            ),
        }
    }
}

/// Why a message waits for a later run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Defer {
    /// Inside quiet hours in the patient's zone; `until` is local time there.
    QuietHours { until: String, zone: String },
    /// `sending.daily_cap` reached for the clinic's day.
    DailyCap,
    /// The campaign's window has not opened yet (`campaign.not_before`); `opens` is clinic time.
    NotOpen { opens: String },
    /// `sending.max_per_patient`: other campaigns messaged the address up to the cap; `until`
    /// (clinic time) is when the oldest of them leaves the cap's window.
    FrequencyCap { until: String },
}

impl Defer {
    /// A short label for counting.
    pub fn label(&self) -> &'static str {
        match self {
            Defer::QuietHours { .. } => "quiet_hours",
            Defer::DailyCap => "daily_cap",
            Defer::NotOpen { .. } => "window_not_open",
            Defer::FrequencyCap { .. } => "frequency_cap",
        }
    }
}

impl fmt::Display for Defer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Defer::QuietHours { until, zone } => {
                write!(f, "quiet hours (until {until} {zone})")
            }
            Defer::DailyCap => f.write_str("daily cap reached"),
            Defer::NotOpen { opens } => write!(f, "the campaign window opens {opens}"),
            Defer::FrequencyCap { until } => write!(f, "frequency cap (until {until})"),
        }
    }
}
