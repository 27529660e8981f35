//! Suppression lists: every address that must not be messaged (opt-outs, STOP lists), read from
//! the campaign's `contacts.suppress` files and normalised like contacts' addresses, each entry
//! remembering the file and line it came from ([`SuppressedBy`]). A file is a CSV with an
//! `address`, `email` or `phone` column, or one address per line (`#` comments); an entry that is
//! no valid address is a warning, not an error.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};

use super::decode::{LineIndex, detect_delimiter, read_text, records};
use super::error::{ContactsError, FileWarning};
use super::header::normalise_header;
use crate::address::{E164Phone, EmailAddress};

/// Where a suppression entry came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SuppressedBy {
    pub file: PathBuf,
    pub line: usize,
}

impl fmt::Display for SuppressedBy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = self
            .file
            .file_name()
            .map(|n| n.to_string_lossy())
            .unwrap_or_default();
        write!(f, "{name}:{}", self.line)
    }
}

/// Every address that must not be messaged, normalised like contacts' addresses.
#[derive(Debug, Clone, Default)]
pub struct Suppressions {
    entries: HashMap<String, SuppressedBy>,
    pub warnings: Vec<FileWarning>,
    /// Each suppression file and the addresses (normalised) it lists, for approvals.
    pub files: Vec<(PathBuf, Vec<String>)>,
    /// Each valid entry of the files with its line (see [`Suppressions::listed`]).
    listed: Vec<(String, SuppressedBy)>,
}

/// The normalised form of a suppression entry: a lowercased email, or an E.164 number read
/// with the clinic's region; `None` for neither.
fn key(value: &str, region: phonenumber::country::Id) -> Option<String> {
    if value.contains('@') {
        EmailAddress::parse(value)
            .ok()
            .map(|e| e.normalised().to_string())
    } else {
        E164Phone::parse(value, region)
            .ok()
            .map(|p| p.as_str().to_string())
    }
}

impl Suppressions {
    /// Why `address` (normalised) is suppressed, if it is.
    pub fn get(&self, address: &str) -> Option<&SuppressedBy> {
        self.entries.get(address)
    }

    /// How many distinct addresses are suppressed.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the list is empty.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Adds an address from `by`; returns whether it was valid.
    pub fn insert(
        &mut self,
        value: &str,
        region: phonenumber::country::Id,
        by: SuppressedBy,
    ) -> bool {
        match key(value, region) {
            Some(k) => {
                self.add(k, by);
                true
            }
            None => false,
        }
    }

    /// Adds a normalised address.
    fn add(&mut self, key: String, by: SuppressedBy) {
        if let Some((file, list)) = self.files.last_mut()
            && *file == by.file
        {
            list.push(key.clone());
        }
        self.entries.entry(key).or_insert(by);
    }

    /// Every entry of the files, in file and line order: an address listed twice is here twice
    /// (`get` gives only its first), so that every line to edit can be named.
    pub fn listed(&self) -> &[(String, SuppressedBy)] {
        &self.listed
    }

    /// Reads suppression files: a CSV whose header has an `address`, `email` or `phone` column
    /// (others ignored), or one address per line (`#` comments allowed).
    pub fn load(
        paths: &[PathBuf],
        region: phonenumber::country::Id,
    ) -> Result<Self, ContactsError> {
        let mut s = Suppressions::default();
        for path in paths {
            let (text, _, warning) = read_text(path, None)?;
            s.warnings.extend(warning);
            s.files.push((path.clone(), Vec::new()));
            s.load_text(path, &text, region)?;
        }
        Ok(s)
    }

    fn load_text(
        &mut self,
        path: &Path,
        text: &str,
        region: phonenumber::country::Id,
    ) -> Result<(), ContactsError> {
        // `#` comment lines are blanked, not removed, so line numbers stay true.
        let text: String = text
            .split_inclusive('\n')
            .map(|l| {
                if l.trim_start().starts_with('#') {
                    "\n"
                } else {
                    l
                }
            })
            .collect();
        let lines = LineIndex::new(&text);
        let mut columns: Option<Vec<usize>> = None;
        for record in records(path, &text, &lines, detect_delimiter(&text)) {
            let (line, record) = record?;
            if columns.is_none() {
                let named: Vec<usize> = record
                    .iter()
                    .enumerate()
                    .filter(|(_, h)| {
                        matches!(
                            normalise_header(h).as_str(),
                            "address" | "email" | "phone" | "e_mail" | "mobile" | "number"
                        )
                    })
                    .map(|(i, _)| i)
                    .collect();
                if !named.is_empty() {
                    columns = Some(named);
                    continue;
                }
                // No header: one address per line, in the first column.
                columns = Some(vec![0]);
            }
            for &i in columns.as_deref().unwrap_or(&[0]) {
                let value = record.get(i).unwrap_or_default();
                if value.is_empty() {
                    continue;
                }
                let by = SuppressedBy {
                    file: path.to_path_buf(),
                    line,
                };
                if let Some(k) = key(value, region) {
                    self.listed.push((k.clone(), by.clone()));
                    self.add(k, by);
                } else {
                    self.warnings.push(FileWarning {
                        file: path.to_path_buf(),
                        line: Some(line),
                        message: format!(
                            "{value:?} is neither a valid email nor a valid phone number; \
                             it suppresses nobody"
                        ),
                    });
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use phonenumber::country::Id;

    #[test]
    fn suppression_formats() {
        let mut s = Suppressions::default();
        s.load_text(
            Path::new("o.csv"),
            "address,reason\nAnn@Example.com,unsub\n+1 312 555 0177,STOP\n",
            Id::US,
        )
        .unwrap();
        s.load_text(
            Path::new("o.txt"),
            "# stop list\nbo@example.com\n(312) 555-0178\nnonsense\n",
            Id::US,
        )
        .unwrap();
        assert_eq!(s.get("ann@example.com").unwrap().line, 2);
        assert!(s.get("+13125550177").is_some());
        assert_eq!(s.get("bo@example.com").unwrap().line, 2);
        assert!(s.get("+13125550178").is_some());
        assert_eq!(s.warnings.len(), 1);
        assert_eq!(s.warnings[0].line, Some(4));
        // Every entry with its line, an address listed twice included.
        s.load_text(Path::new("p.txt"), "ANN@example.com\n", Id::US)
            .unwrap();
        let listed: Vec<(&str, usize)> = s
            .listed()
            .iter()
            .map(|(a, by)| (a.as_str(), by.line))
            .collect();
        assert_eq!(
            listed,
            [
                ("ann@example.com", 2),
                ("+13125550177", 3),
                ("bo@example.com", 2),
                ("+13125550178", 3),
                ("ann@example.com", 1)
            ]
        );
        assert_eq!(s.get("ann@example.com").unwrap().file, Path::new("o.csv"));
    }
}
