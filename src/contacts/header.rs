//! A contacts file's header: each name normalised ([`normalise_header`]), and where the
//! standard fields (`email`, `phone`, consent, …) are, as named or as mapped by the campaign's
//! `[contacts.columns]`. A header that cannot work (two columns of one name, a mapping to no
//! column, neither email nor phone) stops the file here, before any row is read.

use std::collections::HashMap;
use std::path::Path;

use super::error::ContactsError;
use crate::config::ContactsSource;

/// A contacts file's header: normalised names and where the standard fields are.
#[derive(Debug, Clone, Default)]
pub struct Columns {
    /// Normalised header names, in file order (empty for a blank header cell).
    pub names: Vec<String>,
    standard: HashMap<&'static str, usize>,
}

impl Columns {
    /// The column holding standard field `field`, if the file has one.
    pub(super) fn index_of(&self, field: &str) -> Option<usize> {
        self.standard.get(field).copied()
    }

    /// The standard field column `i` holds, if any.
    pub(super) fn standard_name(&self, i: usize) -> Option<&'static str> {
        self.standard
            .iter()
            .find(|(_, j)| **j == i)
            .map(|(name, _)| *name)
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
    let names: Vec<String> = headers.iter().map(normalise_header).collect();
    let mut index = HashMap::new();
    for (i, n) in names.iter().enumerate() {
        if n.is_empty() {
            continue;
        }
        if let Some(first) = names[..i].iter().position(|m| m == n) {
            return Err(ContactsError::Header {
                path: path.to_path_buf(),
                line,
                message: format!(
                    "columns {} and {} are both named {:?}",
                    first + 1,
                    i + 1,
                    headers.get(i).unwrap_or_default()
                ),
            });
        }
    }
    for field in crate::config::CONTACT_FIELDS {
        let wanted = source
            .columns
            .get(*field)
            .map(|h| normalise_header(h))
            .unwrap_or_else(|| field.to_string());
        match names.iter().position(|n| *n == wanted) {
            Some(i) => {
                index.insert(*field, i);
            }
            None if source.columns.contains_key(*field) => {
                return Err(ContactsError::Header {
                    path: path.to_path_buf(),
                    line,
                    message: format!(
                        "contacts.columns.{field} = {:?}: no such column (the header has: {})",
                        source.columns[*field],
                        headers.iter().collect::<Vec<_>>().join(", ")
                    ),
                });
            }
            None => {}
        }
    }
    if !index.contains_key("email") && !index.contains_key("phone") {
        return Err(ContactsError::Header {
            path: path.to_path_buf(),
            line,
            message: format!(
                "no `email` or `phone` column (the header has: {}); map yours with \
                 [contacts.columns], e.g. email = \"E-mail Address\"",
                headers.iter().collect::<Vec<_>>().join(", ")
            ),
        });
    }
    Ok(Columns {
        names,
        standard: index,
    })
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
}
