//! `outreach suppressions list|remove`: why an address is suppressed, and lifting it.
//!
//! Two kinds of suppression stop a message. The ledger's table, shared by every campaign of the
//! state directory, holds what `outreach` learnt (an SMS provider's opt-out, `unsubscribe`,
//! `listen`'s unsubscribe links and STOP replies, staff through `inbox --opt-out`); the clinic's
//! own lists are the campaign's `contacts.suppress` files. `list` shows both, addresses masked
//! unless the admin typed the one to show. `remove` lifts a ledger suppression only, keeping the
//! lift with its reason, who lifted it and what it was; the clinic's files are theirs to edit,
//! so an address only they hold is refused with the file and line to change.

use std::fmt;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use serde::Serialize;

use crate::address::{E164Phone, EmailAddress};
use crate::config::Campaign;
use crate::contacts::{ContactsError, Suppressions};
use crate::model::{Channel, mask};
use crate::paths::show_path;
use crate::store::ledger::{Ledger, LedgerError, Lift, Suppression};

/// Why `suppressions` could not do what it was asked; nothing was changed.
#[derive(Debug, thiserror::Error)]
pub enum SuppressionsError {
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    #[error(transparent)]
    Contacts(#[from] ContactsError),
    #[error("{value:?} is neither an email address nor a phone number of region {region}")]
    Address { value: String, region: String },
    #[error("--reason is empty: say why the suppression is lifted (it is kept with the lift)")]
    NoReason,
    #[error(
        "{address} is suppressed only by the clinic's suppression file{}: {}; outreach does not \
         edit those files, remove the line there (nothing lifted)",
        if at.len() == 1 { "" } else { "s" },
        at.join(", ")
    )]
    OnlyInFiles { address: String, at: Vec<String> },
    #[error("{address} is not suppressed (the ledger holds no suppression of it): nothing to lift")]
    NotSuppressed { address: String },
}

/// An address as the admin typed it, read as the ledger keys it.
fn parse_address(value: &str, campaign: &Campaign) -> Result<(Channel, String), SuppressionsError> {
    let value = value.trim();
    let parsed = if value.contains('@') {
        EmailAddress::parse(value).map(|e| (Channel::Email, e.normalised().to_string()))
    } else {
        E164Phone::parse(value, campaign.clinic.region)
            .map(|p| (Channel::Sms, p.as_str().to_string()))
    };
    parsed.map_err(|_| SuppressionsError::Address {
        value: value.to_string(),
        region: campaign.clinic.region_code.clone(),
    })
}

/// The channel an address of the ledger belongs to.
fn channel_of(address: &str) -> Channel {
    if address.contains('@') {
        Channel::Email
    } else {
        Channel::Sms
    }
}

/// The ledger of the campaign's state directory, if it was ever written: `list` and `remove`
/// create none.
fn ledger(campaign: &Campaign) -> Result<Option<Ledger>, LedgerError> {
    let store = campaign.sending.store();
    Ledger::open_existing(&store)
}

/// A suppression of the ledger, as shown.
#[derive(Debug, Clone, Serialize)]
pub struct Entry {
    pub channel: Channel,
    /// Masked unless the admin asked for this address.
    pub address: String,
    pub reason: String,
    pub source: Option<String>,
    /// RFC 3339 UTC.
    pub added_at: String,
}

/// A lifted suppression, as shown.
#[derive(Debug, Clone, Serialize)]
pub struct Lifted {
    pub channel: Channel,
    /// Masked unless the admin asked for this address.
    pub address: String,
    /// Why it was lifted.
    pub reason: String,
    pub lifted_by: String,
    pub lifted_at: String,
    pub reason_was: String,
    pub source_was: Option<String>,
    pub added_at_was: String,
}

/// An entry of one of the clinic's suppression files.
#[derive(Debug, Clone, Serialize)]
pub struct FileEntry {
    pub file: String,
    pub line: usize,
    pub channel: Channel,
    /// Masked unless the admin asked for this address.
    pub address: String,
}

impl FileEntry {
    fn at(&self) -> String {
        format!("{}:{}", self.file, self.line)
    }
}

/// What `suppressions list` shows.
#[derive(Debug, Clone, Serialize)]
pub struct Listing {
    pub campaign: String,
    /// The ledger file, shared by every campaign of its state directory.
    pub ledger: String,
    /// `--address`, normalised: everything shown is about it alone, unmasked.
    pub address: Option<String>,
    pub suppressed: Vec<Entry>,
    pub lifted: Vec<Lifted>,
    /// The clinic's files: shown, never edited.
    pub files: Vec<FileEntry>,
    /// The campaign's `contacts.suppress` files.
    pub suppression_files: Vec<String>,
    #[serde(skip)]
    timezone: Tz,
}

/// Shows `address` in full when the admin asked for it, masked otherwise.
fn shown(channel: Channel, address: &str, asked: bool) -> String {
    if asked {
        address.to_string()
    } else {
        mask(channel, address)
    }
}

fn entry(s: Suppression, asked: bool) -> Entry {
    let channel = channel_of(&s.address);
    Entry {
        channel,
        address: shown(channel, &s.address, asked),
        reason: s.reason,
        source: s.source,
        added_at: s.added_at,
    }
}

fn lifted(l: Lift, asked: bool) -> Lifted {
    let channel = channel_of(&l.address);
    Lifted {
        channel,
        address: shown(channel, &l.address, asked),
        reason: l.reason,
        lifted_by: l.lifted_by,
        lifted_at: l.lifted_at,
        reason_was: l.reason_was,
        source_was: l.source_was,
        added_at_was: l.added_at_was,
    }
}

/// The entries of the clinic's files (only `address`'s when given).
fn file_entries(
    campaign: &Campaign,
    address: Option<&str>,
) -> Result<Vec<FileEntry>, ContactsError> {
    let lists = Suppressions::load(&campaign.contacts.suppress, campaign.clinic.region)?;
    Ok(lists
        .listed()
        .iter()
        .filter(|(a, _)| address.is_none_or(|x| x == a))
        .map(|(a, by)| {
            let channel = channel_of(a);
            FileEntry {
                file: show_path(&by.file),
                line: by.line,
                channel,
                address: shown(channel, a, address.is_some()),
            }
        })
        .collect())
}

/// `suppressions list`: every suppression of the state directory and of the campaign's files,
/// or `address`'s alone.
pub fn list(campaign: &Campaign, address: Option<&str>) -> Result<Listing, SuppressionsError> {
    let address = address
        .map(|a| parse_address(a, campaign).map(|(_, a)| a))
        .transpose()?;
    let asked = address.is_some();
    let (suppressed, lifts) = match ledger(campaign)? {
        Some(l) => (
            l.suppression_rows(address.as_deref())?,
            l.lifts(address.as_deref())?,
        ),
        None => (Vec::new(), Vec::new()),
    };
    Ok(Listing {
        campaign: campaign.id.clone(),
        ledger: Ledger::name_of(&campaign.sending.store()),
        files: file_entries(campaign, address.as_deref())?,
        address,
        suppressed: suppressed.into_iter().map(|s| entry(s, asked)).collect(),
        lifted: lifts.into_iter().map(|l| lifted(l, asked)).collect(),
        suppression_files: campaign
            .contacts
            .suppress
            .iter()
            .map(|p| show_path(p))
            .collect(),
        timezone: campaign.clinic.timezone,
    })
}

/// What `suppressions remove` did.
#[derive(Debug, Clone, Serialize)]
pub struct Removed {
    pub campaign: String,
    pub lifted: Lifted,
    /// The clinic's file entries that still suppress the address.
    pub still_in_files: Vec<FileEntry>,
    #[serde(skip)]
    timezone: Tz,
}

/// `suppressions remove`: lifts `address`'s ledger suppression, keeping the lift with `reason`
/// and `by`. An address only the clinic's files hold, or none, is refused.
pub fn remove(
    campaign: &Campaign,
    address: &str,
    reason: &str,
    by: &str,
    now: DateTime<Utc>,
) -> Result<Removed, SuppressionsError> {
    let reason = reason.trim();
    if reason.is_empty() {
        return Err(SuppressionsError::NoReason);
    }
    let (_, address) = parse_address(address, campaign)?;
    let files = file_entries(campaign, Some(&address))?;
    let lift = match ledger(campaign)? {
        Some(mut l) => l.lift(&address, reason, by, now)?,
        None => None,
    };
    let Some(lift) = lift else {
        return Err(if files.is_empty() {
            SuppressionsError::NotSuppressed { address }
        } else {
            SuppressionsError::OnlyInFiles {
                address,
                at: files.iter().map(FileEntry::at).collect(),
            }
        });
    };
    Ok(Removed {
        campaign: campaign.id.clone(),
        lifted: lifted(lift, true),
        still_in_files: files,
        timezone: campaign.clinic.timezone,
    })
}

/// A stored RFC 3339 time in the clinic's zone, to the minute (as stored when unreadable).
fn clinic_time(t: &str, tz: Tz) -> String {
    DateTime::parse_from_rfc3339(t).map_or_else(
        |_| t.to_string(),
        |t| t.with_timezone(&tz).format("%Y-%m-%d %H:%M %Z").to_string(),
    )
}

/// `source: reason`, or the reason alone when no source was recorded.
fn why(source: Option<&str>, reason: &str) -> String {
    match source {
        Some(s) => format!("{s}: {reason}"),
        None => reason.to_string(),
    }
}

/// Whether an SMS suppression came from the patient's STOP (to the provider or to `listen`):
/// the provider then refuses the number itself until the patient texts START.
fn provider_holds(l: &Lifted) -> bool {
    l.channel == Channel::Sms
        && l.source_was
            .as_deref()
            .is_some_and(|s| s.starts_with("sms reply") || s.starts_with("STOP reply"))
}

impl fmt::Display for Listing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let tz = self.timezone;
        let of = self
            .address
            .as_deref()
            .map_or_else(String::new, |a| format!(" of {a}"));
        let width = (self.suppressed.iter().map(|e| e.address.len()))
            .chain(self.lifted.iter().map(|l| l.address.len()))
            .max()
            .unwrap_or(0);
        writeln!(
            f,
            "Suppressions{of} in the ledger {} (every campaign of its state directory): {}",
            self.ledger,
            self.suppressed.len()
        )?;
        for e in &self.suppressed {
            writeln!(
                f,
                "  {:width$}  since {}  {}",
                e.address,
                clinic_time(&e.added_at, tz),
                why(e.source.as_deref(), &e.reason)
            )?;
        }
        if !self.lifted.is_empty() {
            writeln!(f, "Lifted{of}: {}", self.lifted.len())?;
        }
        for l in &self.lifted {
            writeln!(
                f,
                "  {:width$}  lifted {} by {}: {:?}; was, since {}, {}",
                l.address,
                clinic_time(&l.lifted_at, tz),
                l.lifted_by,
                l.reason,
                clinic_time(&l.added_at_was, tz),
                why(l.source_was.as_deref(), &l.reason_was)
            )?;
        }
        if self.suppression_files.is_empty() {
            writeln!(
                f,
                "The clinic's suppression files: none (contacts.suppress)"
            )?;
        } else {
            writeln!(
                f,
                "The clinic's suppression files ({}; yours to edit, outreach never does){of}: {}",
                self.suppression_files.join(", "),
                self.files.len()
            )?;
        }
        let width = self.files.iter().map(|e| e.at().len()).max().unwrap_or(0);
        for e in &self.files {
            writeln!(f, "  {:width$}  {}", e.at(), e.address)?;
        }
        write!(
            f,
            "Lift a ledger suppression with `outreach suppressions remove CAMPAIGN ADDRESS \
             --reason TEXT`."
        )
    }
}

impl fmt::Display for Removed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let l = &self.lifted;
        write!(
            f,
            "Lifted the suppression of {} (since {}, {}); kept in the ledger with your reason.",
            l.address,
            clinic_time(&l.added_at_was, self.timezone),
            why(l.source_was.as_deref(), &l.reason_was)
        )?;
        if self.still_in_files.is_empty() {
            write!(
                f,
                "\nEvery campaign of the state directory may message it again from its next send."
            )?;
        } else {
            let at: Vec<String> = self.still_in_files.iter().map(FileEntry::at).collect();
            write!(
                f,
                "\nStill suppressed by the clinic's file: {} (remove the line there to reach it).",
                at.join(", ")
            )?;
        }
        if provider_holds(l) {
            write!(
                f,
                "\nIts STOP is also held by the SMS provider until the patient texts START: a \
                 message to it fails as opted out and suppresses it again."
            )?;
        }
        Ok(())
    }
}
