//! Contacts: the CSV a clinic exports, decoded, split, validated and de-duplicated into
//! [`Contact`]s, plus the suppression lists. A row's problems are data ([`Problem`], with line,
//! field and reason), never a reason to stop: only a file that cannot be read at all is an error.
//!
//! Real exports are messy: Excel writes Windows-1252 or UTF-8 with a BOM, `;` in much of Europe,
//! tabs from "Unicode Text"; EHR systems quote newlines into address fields. Each is handled here
//! so the rest of the program sees clean values: an email validated and lowercased for matching
//! (kept as written for display), a phone in E.164, a time zone from the IANA database.
//!
//! This file reads a whole contacts file ([`load`], [`parse`]); the steps are in files of their
//! own, each using only those listed before it: `error.rs` (what stops or warns about a file),
//! `header.rs` (the columns and where the standard fields are), `controls.rs` (control
//! characters in a cell a message shows), `contact.rs` (what a file reads into), `decode.rs`
//! (bytes to text, the delimiter, true line numbers), `rows.rs` (each row read and validated), `duplicates.rs` (ids and addresses used twice), `audience.rs` (the rows `contacts.where` selects), `reach.rs` (whether
//! each enabled channel can reach anyone), `suppressions.rs` (the lists of who must not be
//! messaged). Everything public is re-exported here.

mod audience;
mod contact;
mod controls;
mod decode;
mod duplicates;
mod error;
mod header;
mod reach;
mod rows;
mod suppressions;

use std::path::Path;

use chrono_tz::Tz;

pub use audience::select_audience;
pub use contact::{
    ChannelChoice, Consent, ConsentError, Contact, ContactList, Problem, parse_consent,
};
pub use controls::Readers;
pub use decode::{decode, detect_delimiter};
pub use error::{ContactsError, FileWarning};
pub use header::{ALIASES, Columns, normalise_header};
pub use reach::check_reach;
pub use suppressions::{SuppressedBy, Suppressions};

use crate::config::ContactsSource;
use duplicates::mark_duplicates;
use rows::read_rows;

/// Reads and validates the contacts file of a campaign.
pub fn load(
    source: &ContactsSource,
    region: phonenumber::country::Id,
    default_tz: Tz,
    readers: Readers<'_>,
) -> Result<ContactList, ContactsError> {
    let path = &source.path;
    let (text, encoding, warning) = decode::read_text(path, source.encoding)?;
    let mut list = parse(path, text, source, region, default_tz, readers)?;
    list.encoding = encoding;
    list.warnings.splice(0..0, warning);
    Ok(list)
}

/// Parses decoded CSV text (see [`load`]). The text is dropped once read, before the pass that
/// finds duplicates, which is at the peak of a run's memory.
pub fn parse(
    path: &Path,
    text: String,
    source: &ContactsSource,
    region: phonenumber::country::Id,
    default_tz: Tz,
    readers: Readers<'_>,
) -> Result<ContactList, ContactsError> {
    let (contacts, columns, delimiter) =
        read_rows(path, &text, source, region, default_tz, readers)?;
    drop(text);
    let mut list = ContactList {
        path: path.to_path_buf(),
        columns: columns
            .names
            .iter()
            .filter(|n| !n.is_empty())
            .cloned()
            .collect(),
        header: columns,
        contacts,
        warnings: Vec::new(),
        encoding: "UTF-8",
        delimiter: delimiter as char,
    };
    mark_duplicates(&mut list);
    Ok(list)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::address::E164Phone;
    use phonenumber::country::Id;

    fn source() -> ContactsSource {
        ContactsSource {
            path: "c.csv".into(),
            suppress: vec![],
            encoding: None,
            delimiter: None,
            columns: Default::default(),
            audience: None,
            date_forms: Default::default(),
        }
    }

    /// [`parse`] of `text` as `c.csv` (US numbers, Chicago time): for the tests of every file here.
    pub(super) fn parse_str(text: &str) -> ContactList {
        parse(
            Path::new("c.csv"),
            text.to_string(),
            &source(),
            Id::US,
            chrono_tz::America::Chicago,
            &|_| Vec::new(),
        )
        .unwrap()
    }

    #[test]
    fn dialects_read_alike() {
        let plain =
            "id,first_name,email,phone,email_consent\nP1,Ann,ann@example.com,(312) 555-0101,yes\n";
        let messy = "\u{feff} ID ; First Name ; Email ; Phone ; Email Consent \r\n\r\n P1 ; \"Ann\" ; ann@example.com ; 312.555.0101 ; YES \r\n;;;;\r\n";
        for text in [plain, messy] {
            let list = parse_str(text.trim_start_matches('\u{feff}'));
            assert_eq!(list.contacts.len(), 1, "{text:?}");
            let c = &list.contacts[0];
            assert_eq!(c.id, "P1");
            assert_eq!(c.first_name(), "Ann");
            assert_eq!(
                c.phone.as_ref().map(E164Phone::as_str),
                Some("+13125550101")
            );
            assert!(c.email_consent.given());
            assert!(c.problems.is_empty(), "{:?}", c.problems);
        }
    }
}
