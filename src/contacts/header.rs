//! A contacts file's header: each name normalised ([`normalise_header`]), and where the
//! standard fields (`email`, `phone`, consent, …) are: as mapped by the campaign's
//! `[contacts.columns]`, else under their own names, else under one of the usual export
//! spellings ([`ALIASES`]: `E-mail`, `Mobile`, `Given name`, …). A header that cannot work (two
//! columns of one name, a mapping to no column, two spellings of one field, neither email nor
//! phone) stops the file here, before any row is read.

use std::collections::HashMap;
use std::path::Path;

use super::error::ContactsError;
use crate::config::ContactsSource;

/// The usual export spellings of each standard field, normalised. A file with no column of the
/// field's own name (and no mapping for it) has the field in the one column so spelled.
#[rustfmt::skip]
pub const ALIASES: &[(&str, &[&str])] = &[
    ("id", &["patient_id", "contact_id", "patient_number", "mrn", "record_id", "chart_number"]),
    (
        "first_name",
        &["first", "firstname", "given_name", "givenname", "forename", "fname"],
    ),
    (
        "last_name",
        &["last", "lastname", "surname", "family_name", "familyname", "lname"],
    ),
    (
        "email",
        &["e_mail", "email_address", "e_mail_address", "emailaddress", "email_addr", "primary_email"],
    ),
    (
        "phone",
        &[
            "mobile", "cell", "cell_phone", "cellphone", "mobile_phone", "mobilephone",
            "mobile_number", "cell_number", "phone_number", "phonenumber", "mobile_phone_number",
            "cell_phone_number", "telephone", "tel", "sms_number", "text_number",
        ],
    ),
    (
        "channel",
        &["preferred_channel", "contact_method", "preferred_contact_method", "contact_preference"],
    ),
    (
        "email_consent",
        &["email_opt_in", "email_optin", "consent_email", "email_ok", "email_permission"],
    ),
    (
        "sms_consent",
        &[
            "sms_opt_in", "sms_optin", "text_opt_in", "text_consent", "consent_sms", "sms_ok",
            "text_ok", "sms_permission",
        ],
    ),
    ("timezone", &["time_zone", "tz"]),
    (
        "consent_source",
        &["opt_in_source", "optin_source", "consent_method", "source_of_consent"],
    ),
    (
        "language",
        &[
            "lang", "preferred_language", "language_preference", "primary_language",
            "patient_language", "locale",
        ],
    ),
];

/// The export spellings of standard field `field` (none for a field not in [`ALIASES`]).
pub fn aliases_of(field: &str) -> &'static [&'static str] {
    ALIASES
        .iter()
        .find(|(f, _)| *f == field)
        .map_or(&[], |(_, a)| a)
}

/// A contacts file's header: normalised names and where the standard fields are.
#[derive(Debug, Clone, Default)]
pub struct Columns {
    /// Normalised header names, in file order (empty for a blank header cell).
    pub names: Vec<String>,
    /// The header cells as written, in file order.
    pub written: Vec<String>,
    /// The line the header is on.
    pub line: usize,
    standard: HashMap<&'static str, usize>,
    /// Standard fields found under an export spelling, not their own name: (column, field).
    read_as: Vec<(usize, &'static str)>,
    /// For each column, the channels whose messages show it (see `controls.rs`).
    pub(super) shown_on: Vec<Vec<crate::model::Channel>>,
}

impl Columns {
    /// The column holding standard field `field`, if the file has one.
    pub fn index_of(&self, field: &str) -> Option<usize> {
        self.standard.get(field).copied()
    }

    /// The standard field column `i` holds, if any.
    pub(super) fn standard_name(&self, i: usize) -> Option<&'static str> {
        self.standard
            .iter()
            .find(|(_, j)| **j == i)
            .map(|(name, _)| *name)
    }

    /// Each column read as a standard field because of its spelling: (header as written, field).
    pub fn read_as(&self) -> impl Iterator<Item = (&str, &'static str)> {
        self.read_as
            .iter()
            .map(|(i, field)| (self.written[*i].as_str(), *field))
    }
}

/// Normalises a header: trimmed, lowercase, runs of other characters as `_`.
pub fn normalise_header(h: &str) -> String {
    let mut out = String::with_capacity(h.len());
    for c in h.trim().chars() {
        if c.is_alphanumeric() {
            out.extend(c.to_lowercase());
        } else if !out.ends_with('_') {
            out.push('_');
        }
    }
    out.trim_matches('_').to_string()
}

/// The header record found on `line`, checked against the campaign's column mapping.
pub(super) fn layout(
    path: &Path,
    line: usize,
    headers: &csv::StringRecord,
    source: &ContactsSource,
) -> Result<Columns, ContactsError> {
    let error = |message: String| ContactsError::Header {
        path: path.to_path_buf(),
        line,
        message,
    };
    let names: Vec<String> = headers.iter().map(normalise_header).collect();
    let written: Vec<String> = headers.iter().map(|h| h.trim().to_string()).collect();
    let listed = headers.iter().map(str::trim).collect::<Vec<_>>().join(", ");
    for (i, n) in names.iter().enumerate() {
        if n.is_empty() {
            continue;
        }
        if let Some(first) = names[..i].iter().position(|m| m == n) {
            return Err(error(format!(
                "columns {} and {} are both named {:?}",
                first + 1,
                i + 1,
                written[i]
            )));
        }
    }
    let mut columns = Columns {
        names,
        written,
        line,
        ..Columns::default()
    };
    for field in crate::config::CONTACT_FIELDS {
        if let Some(mapped) = source.columns.get(*field) {
            let wanted = normalise_header(mapped);
            let Some(i) = columns.names.iter().position(|n| *n == wanted) else {
                return Err(error(format!(
                    "contacts.columns.{field} = {mapped:?}: no such column (the header has: {})",
                    listed
                )));
            };
            columns.standard.insert(*field, i);
        } else if let Some(i) = columns.names.iter().position(|n| n == field) {
            columns.standard.insert(*field, i);
        }
    }
    for (field, spellings) in ALIASES {
        if columns.standard.contains_key(field) {
            continue;
        }
        let taken: Vec<usize> = columns.standard.values().copied().collect();
        let found: Vec<usize> = (0..columns.names.len())
            .filter(|i| spellings.contains(&columns.names[*i].as_str()) && !taken.contains(i))
            .collect();
        match found[..] {
            [] => {}
            [i] => {
                columns.standard.insert(field, i);
                columns.read_as.push((i, field));
            }
            [i, j, ..] => {
                return Err(error(format!(
                    "columns {:?} and {:?} could both be `{field}`; say which in the campaign \
                     file: [contacts.columns] {field} = {:?}",
                    columns.written[i], columns.written[j], columns.written[i]
                )));
            }
        }
    }
    columns.read_as.sort_unstable();
    if !columns.standard.contains_key("email") && !columns.standard.contains_key("phone") {
        return Err(error(format!(
            "no `email` or `phone` column (the header has: {}); map yours with \
             [contacts.columns], e.g. email = \"E-mail Address\"",
            listed
        )));
    }
    Ok(columns)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_normalise() {
        assert_eq!(normalise_header(" First Name "), "first_name");
        assert_eq!(normalise_header("E-mail Address"), "e_mail_address");
        assert_eq!(normalise_header("SMS_Consent"), "sms_consent");
    }

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

    fn read(header: &str, source: &ContactsSource) -> Result<Columns, ContactsError> {
        let record = csv::StringRecord::from(header.split(',').collect::<Vec<_>>());
        layout(Path::new("c.csv"), 1, &record, source)
    }

    #[test]
    fn export_spellings_read_as_their_field() {
        let c = read(
            "Patient ID,Given name,Surname,E-mail,Cell,Text OK",
            &source(),
        )
        .unwrap();
        for (field, i) in [
            ("id", 0),
            ("first_name", 1),
            ("last_name", 2),
            ("email", 3),
            ("phone", 4),
            ("sms_consent", 5),
        ] {
            assert_eq!(c.index_of(field), Some(i), "{field}");
        }
        let read_as: Vec<_> = c.read_as().collect();
        assert_eq!(read_as[3], ("E-mail", "email"));
        assert_eq!(read_as.len(), 6);
    }

    #[test]
    fn own_name_and_mapping_come_before_a_spelling() {
        let c = read("email,E-mail Address,Mobile", &source()).unwrap();
        assert_eq!(c.index_of("email"), Some(0));
        assert_eq!(c.index_of("phone"), Some(2));
        let mut mapped = source();
        mapped.columns.insert("phone".into(), "Home".into());
        let c = read("Email Address,Home,Mobile", &mapped).unwrap();
        assert_eq!(c.index_of("phone"), Some(1));
        assert_eq!(
            c.read_as().collect::<Vec<_>>(),
            [("Email Address", "email")]
        );
    }

    #[test]
    fn two_spellings_of_one_field_ask_which() {
        let e = read("email,Mobile,Phone Number", &source()).unwrap_err();
        assert_eq!(
            e.to_string(),
            "c.csv:1: columns \"Mobile\" and \"Phone Number\" could both be `phone`; say which \
             in the campaign file: [contacts.columns] phone = \"Mobile\""
        );
    }
}
