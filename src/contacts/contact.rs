//! What a contacts file reads into: a [`Contact`] per row (its consent, the channel it chose,
//! the [`Problem`]s found in it) and the [`ContactList`] of them. A row's problems are data, kept
//! with the row and shown to people; the reading itself is in the sibling files, and this one
//! does no I/O.

use std::path::PathBuf;
use std::sync::Arc;

use chrono::NaiveDate;
use chrono_tz::Tz;

use super::error::FileWarning;
use super::header::Columns;
use crate::address::{E164Phone, EmailAddress};
use crate::language::Language;
use crate::model::Channel;

/// What a contact agreed to on one channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Consent {
    Yes,
    No,
    /// Consent recorded with the date it was given.
    Since(NaiveDate),
    /// The cell held something that is not a consent value (a problem was recorded).
    Invalid,
}

impl Consent {
    /// Whether the contact agreed.
    pub fn given(self) -> bool {
        matches!(self, Consent::Yes | Consent::Since(_))
    }

    /// What the ledger keeps of it with each message: `yes`, `no`, or the date it was given.
    pub fn evidence(self) -> Option<String> {
        match self {
            Consent::Yes => Some("yes".to_string()),
            Consent::No => Some("no".to_string()),
            Consent::Since(d) => Some(d.to_string()),
            Consent::Invalid => None,
        }
    }
}

/// A consent cell that holds no consent value; shown to people as the row's problem.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{value:?} is not a consent value (yes/no/true/false/1/0/y/n/x or a date like 2025-03-14)")]
pub struct ConsentError {
    /// The cell, trimmed.
    pub value: String,
}

/// Parses a consent cell: yes/no/true/false/1/0/y/n/x (any case) or an ISO 8601 date (or date
/// and time); empty means no.
pub fn parse_consent(value: &str) -> Result<Consent, ConsentError> {
    let v = value.trim();
    match v.to_ascii_lowercase().as_str() {
        "" | "no" | "n" | "false" | "0" => return Ok(Consent::No),
        "yes" | "y" | "true" | "1" | "x" => return Ok(Consent::Yes),
        _ => {}
    }
    let date_part = v.get(..10).unwrap_or(v);
    if let Ok(d) = NaiveDate::parse_from_str(date_part, "%Y-%m-%d") {
        let rest = &v[date_part.len()..];
        if rest.is_empty() || rest.starts_with('T') || rest.starts_with(' ') {
            return Ok(Consent::Since(d));
        }
    }
    Err(ConsentError {
        value: v.to_string(),
    })
}

/// The channel(s) a contact asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChannelChoice {
    /// Empty or `both`: every channel the campaign enables.
    Any,
    Only(Channel),
}

impl ChannelChoice {
    /// Whether the contact accepts `channel`.
    pub fn allows(self, channel: Channel) -> bool {
        match self {
            ChannelChoice::Any => true,
            ChannelChoice::Only(c) => c == channel,
        }
    }
}

/// Something wrong with one field of one row.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Problem {
    /// The standard field name (or column header) at fault.
    pub field: String,
    /// The cell as written.
    pub value: String,
    /// Why it cannot be used.
    pub reason: String,
    /// The channels this problem stops for the row.
    pub stops: Vec<Channel>,
}

/// A row's cells in two allocations, whatever their number: their text end to end, and where
/// each ends. A cell a `Box<str>` of its own cost 16 bytes of pointer and an allocation each;
/// for 500,000 rows of nine cells that was ~145 MB of the list's ~424 MB.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct Cells {
    text: Box<str>,
    ends: Box<[u32]>,
}

impl Cells {
    pub(super) fn new<'a>(cells: impl Iterator<Item = &'a str> + Clone) -> Cells {
        let mut text = String::with_capacity(cells.clone().map(str::len).sum());
        let ends = cells
            .map(|c| {
                text.push_str(c);
                u32::try_from(text.len()).expect("a CSV row under 4 GiB")
            })
            .collect();
        Cells {
            text: text.into_boxed_str(),
            ends,
        }
    }

    /// Cell `i`, if the row has it.
    pub(super) fn get(&self, i: usize) -> Option<&str> {
        let end = *self.ends.get(i)? as usize;
        let start = i.checked_sub(1).map_or(0, |p| self.ends[p] as usize);
        Some(&self.text[start..end])
    }

    pub(super) fn iter(&self) -> impl Iterator<Item = &str> {
        (0..self.ends.len()).map(|i| self.get(i).unwrap_or_default())
    }
}

/// One patient, validated.
#[derive(Debug, Clone)]
pub struct Contact {
    /// 1-based line of the CSV where the row starts.
    pub line: usize,
    /// The `id` column, or `line-N` when the file has none.
    pub id: String,
    pub email: Option<EmailAddress>,
    pub phone: Option<E164Phone>,
    pub choice: ChannelChoice,
    pub email_consent: Consent,
    pub sms_consent: Consent,
    /// The contact's own zone, or the clinic's when the cell is empty.
    pub timezone: Tz,
    /// The `language` cell as a tag, or `None` when it is empty (or not a tag: a problem).
    pub language: Option<Language>,
    /// Every cell of the row, trimmed, in header order (names in `columns`, the header shared).
    pub(super) values: Cells,
    pub(super) columns: Arc<Columns>,
    pub problems: Vec<Problem>,
    /// For each channel, the line and id of the row with the same address that gets the message
    /// instead (the first that can take it, else the first); when set, this row is skipped there.
    /// Boxed: few rows have one, and the list holds every row.
    pub duplicate_of: [Option<Box<(usize, String)>>; 2],
    /// Whether `contacts.where` selects the row (true without a filter).
    pub in_audience: bool,
}

impl Contact {
    fn standard(&self, field: &str) -> &str {
        self.columns
            .index_of(field)
            .and_then(|i| self.values.get(i))
            .unwrap_or("")
    }

    /// How the patient's consent was given (`consent_source`: a form, a call), as written.
    pub fn consent_source(&self) -> &str {
        self.standard("consent_source")
    }

    /// Whether the row has an id of its own (not the `line-N` stand-in).
    pub fn has_id(&self) -> bool {
        !self.standard("id").is_empty()
    }

    /// Every cell of the row as read (trimmed), in header order.
    pub fn cells(&self) -> impl Iterator<Item = &str> {
        self.values.iter()
    }

    /// Cell `i` of the row as read (trimmed; empty past the row's end).
    pub(super) fn cell(&self, i: usize) -> &str {
        self.values.get(i).unwrap_or("")
    }

    /// The first name as written (empty when the row has none).
    pub fn first_name(&self) -> &str {
        self.standard("first_name")
    }

    /// The last name as written.
    pub fn last_name(&self) -> &str {
        self.standard("last_name")
    }

    /// Calls `f` with every non-empty value templates see as `contact.NAME`: each column under
    /// its normalised header, standard fields (also) under their standard names, the phone in
    /// E.164, the time zone that applies, the id.
    pub fn visit_fields(&self, mut f: impl FnMut(&str, &str)) {
        for (i, (name, value)) in self
            .columns
            .names
            .iter()
            .zip(self.values.iter())
            .enumerate()
        {
            let standard = self.columns.standard_name(i);
            let value: &str = match standard {
                Some("phone") => self.phone.as_ref().map_or(value, E164Phone::as_str),
                Some("id") | Some("timezone") => continue,
                _ => value,
            };
            if value.is_empty() {
                continue;
            }
            if let Some(s) = standard {
                f(s, value);
            }
            if !name.is_empty() && Some(name.as_str()) != standard {
                f(name, value);
            }
        }
        f("id", &self.id);
        f("timezone", self.timezone.name());
    }

    /// The contact's consent on `channel`.
    pub fn consent(&self, channel: Channel) -> Consent {
        match channel {
            Channel::Email => self.email_consent,
            Channel::Sms => self.sms_consent,
        }
    }

    /// Whether this row, on its own, can take a message on `channel`: it chose the channel,
    /// has no problem for it, and gave consent.
    pub fn can_take(&self, channel: Channel) -> bool {
        self.in_audience
            && self.choice.allows(channel)
            && self.problems_for(channel).next().is_none()
            && self.consent(channel).given()
    }

    /// The normalised address on `channel`, if valid.
    pub fn address(&self, channel: Channel) -> Option<&str> {
        match channel {
            Channel::Email => self.email.as_ref().map(EmailAddress::normalised),
            Channel::Sms => self.phone.as_ref().map(E164Phone::as_str),
        }
    }

    /// The address as it is shown to people (email as written, phone in E.164).
    pub fn display_address(&self, channel: Channel) -> Option<&str> {
        match channel {
            Channel::Email => self.email.as_ref().map(EmailAddress::written),
            Channel::Sms => self.phone.as_ref().map(E164Phone::as_str),
        }
    }

    /// "First Last", or the id when the row has no name.
    pub fn display_name(&self) -> String {
        let name = format!("{} {}", self.first_name(), self.last_name());
        let name = name.trim();
        if name.is_empty() {
            self.id.clone()
        } else {
            name.to_string()
        }
    }

    /// The problems that stop `channel` for this row.
    pub fn problems_for(&self, channel: Channel) -> impl Iterator<Item = &Problem> {
        self.problems
            .iter()
            .filter(move |p| p.stops.contains(&channel))
    }

    /// The value of a column as templates see it.
    pub fn field(&self, name: &str) -> Option<String> {
        let mut found = None;
        self.visit_fields(|k, v| {
            if found.is_none() && k == name {
                found = Some(v.to_string());
            }
        });
        found
    }
}

/// A contacts file, read.
#[derive(Debug, Clone)]
pub struct ContactList {
    pub path: PathBuf,
    /// Normalised column names, in file order (what templates may use as `contact.*`).
    pub columns: Vec<String>,
    /// The header: where the standard fields are, the names as written.
    pub header: Arc<Columns>,
    pub contacts: Vec<Contact>,
    pub warnings: Vec<FileWarning>,
    /// Which encoding the file was read as.
    pub encoding: &'static str,
    /// The delimiter used.
    pub delimiter: char,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn consent_values() {
        for yes in ["yes", "Y", "TRUE", "1", "x", "X", " yes "] {
            assert_eq!(parse_consent(yes), Ok(Consent::Yes), "{yes}");
        }
        for no in ["", "no", "N", "false", "0"] {
            assert_eq!(parse_consent(no), Ok(Consent::No), "{no}");
        }
        assert_eq!(
            parse_consent("2025-03-14"),
            Ok(Consent::Since(
                NaiveDate::from_ymd_opt(2025, 3, 14).unwrap()
            ))
        );
        assert!(matches!(
            parse_consent("2025-03-14T09:30:00Z"),
            Ok(Consent::Since(_))
        ));
        assert!(parse_consent("maybe").is_err());
        // The problem people see, byte for byte as it was when this returned a String.
        assert_eq!(
            parse_consent(" maybe ").unwrap_err().to_string(),
            "\"maybe\" is not a consent value (yes/no/true/false/1/0/y/n/x or a date like \
             2025-03-14)"
        );
        assert!(parse_consent("2025-13-01").is_err());
        assert!(parse_consent("14/03/2025").is_err());
    }
}
