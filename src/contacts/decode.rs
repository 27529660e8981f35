//! From a file's bytes to CSV records: the text decoded ([`decode`]: a BOM, UTF-8, or a
//! Windows-1252 guess that warns), the delimiter guessed from the header line
//! ([`detect_delimiter`]), and true line numbers for records ([`LineIndex`]), which the csv
//! crate gets wrong after blank lines. Shared by contacts and suppression files.

use std::path::Path;

use super::error::{ContactsError, FileWarning};

/// Reads the file at `path` and decodes it (see [`decode`]); the bytes are dropped once decoded.
pub(super) fn read_text(
    path: &Path,
    forced: Option<&'static encoding_rs::Encoding>,
) -> Result<(String, &'static str, Option<FileWarning>), ContactsError> {
    let bytes = std::fs::read(path).map_err(|e| ContactsError::Read {
        path: path.to_path_buf(),
        source: e,
    })?;
    decode(path, &bytes, forced)
}

/// Decodes a file's bytes to text. `forced`: the encoding the campaign names. Without it: a BOM
/// decides; else UTF-8; else, if the bytes look like Windows-1252 (Excel's "CSV" on Windows),
/// that, with a warning naming a line to check; else an error naming the first line that is not
/// UTF-8. A name is never garbled silently.
pub fn decode(
    path: &Path,
    bytes: &[u8],
    forced: Option<&'static encoding_rs::Encoding>,
) -> Result<(String, &'static str, Option<FileWarning>), ContactsError> {
    let line_at = |offset: usize| bytes[..offset].iter().filter(|&&b| b == b'\n').count() + 1;
    let strict = |enc: &'static encoding_rs::Encoding, body: &[u8]| {
        let (text, had_errors) = enc.decode_without_bom_handling(body);
        if had_errors {
            let bad = text.find('\u{FFFD}').unwrap_or(0);
            return Err(ContactsError::Encoding {
                path: path.to_path_buf(),
                line: text[..bad].matches('\n').count() + 1,
                message: format!("bytes that are not valid {}", enc.name()),
            });
        }
        Ok(text.into_owned())
    };
    if let Some(enc) = forced {
        let body = match encoding_rs::Encoding::for_bom(bytes) {
            Some((bom, skip)) if bom == enc => &bytes[skip..],
            _ => bytes,
        };
        return Ok((strict(enc, body)?, enc.name(), None));
    }
    if let Some((enc, skip)) = encoding_rs::Encoding::for_bom(bytes) {
        return Ok((strict(enc, &bytes[skip..])?, enc.name(), None));
    }
    match std::str::from_utf8(bytes) {
        Ok(s) => Ok((s.to_string(), "UTF-8", None)),
        Err(e) => {
            let bad_offset = e.valid_up_to();
            let line = line_at(bad_offset);
            let mut detector = chardetng::EncodingDetector::new();
            detector.feed(bytes, true);
            let guess = detector.guess(None, true);
            if guess == encoding_rs::WINDOWS_1252 {
                let (text, _, had_errors) = guess.decode(bytes);
                if !had_errors {
                    let sample = text
                        .lines()
                        .nth(line - 1)
                        .unwrap_or_default()
                        .chars()
                        .take(80)
                        .collect::<String>();
                    let warning = FileWarning {
                        file: path.to_path_buf(),
                        line: Some(line),
                        message: format!(
                            "not UTF-8: read as Windows-1252 (Excel's \"CSV\" export); check that \
                             line {line} reads right: {sample:?}. Save as \"CSV UTF-8\" or set \
                             contacts.encoding = \"windows-1252\" to silence this"
                        ),
                    };
                    return Ok((text.into_owned(), guess.name(), Some(warning)));
                }
            }
            Err(ContactsError::Encoding {
                path: path.to_path_buf(),
                line,
                message: format!(
                    "not valid UTF-8 (it looks like {}); save it as \"CSV UTF-8\", or set \
                     contacts.encoding to the file's encoding",
                    guess.name()
                ),
            })
        }
    }
}

/// Picks the delimiter that splits the header line best (`,` `;` tab `|`), counting only
/// outside quotes.
pub fn detect_delimiter(text: &str) -> u8 {
    let header = text
        .lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or_default();
    let mut counts = [(b',', 0usize), (b';', 0), (b'\t', 0), (b'|', 0)];
    let mut quoted = false;
    for b in header.bytes() {
        if b == b'"' {
            quoted = !quoted;
        } else if !quoted && let Some(slot) = counts.iter_mut().find(|(d, _)| *d == b) {
            slot.1 += 1;
        }
    }
    counts
        .iter()
        .max_by_key(|(d, n)| (*n, *d == b','))
        .filter(|(_, n)| *n > 0)
        .map(|(d, _)| *d)
        .unwrap_or(b',')
}

/// The records of `text` (indexed by `lines`) that hold anything, each with the line it starts on:
/// blank lines and Excel's trailing ",,,,," rows are passed over. No record is taken as a header
/// (the caller decides which is), every cell is trimmed, and a record may have any number of
/// cells (a short row is a problem of the row, not an error of the file).
pub(super) fn records<'a>(
    path: &'a Path,
    text: &'a str,
    lines: &'a LineIndex<'a>,
    delimiter: u8,
) -> impl Iterator<Item = Result<(usize, csv::StringRecord), ContactsError>> + 'a {
    let reader = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .has_headers(false)
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    reader
        .into_records()
        .filter_map(move |record| match record {
            Err(e) => Some(Err(ContactsError::Csv {
                path: path.to_path_buf(),
                line: lines.line(e.position()),
                message: e.to_string(),
            })),
            Ok(r) if r.iter().all(str::is_empty) => None,
            Ok(r) => Some(Ok((lines.line(r.position()), r))),
        })
}

/// Maps a record's byte offset to its 1-based line. The csv crate's own line count goes wrong after
/// blank lines (and a CRLF blank line counts as none), and its byte offset points at the blank
/// lines before a record, so the offset is moved past line breaks first.
pub(super) struct LineIndex<'a> {
    text: &'a [u8],
    newlines: Vec<usize>,
}

impl<'a> LineIndex<'a> {
    pub(super) fn new(text: &'a str) -> Self {
        let text = text.as_bytes();
        let newlines = text
            .iter()
            .enumerate()
            .filter(|(_, b)| **b == b'\n')
            .map(|(i, _)| i)
            .collect();
        LineIndex { text, newlines }
    }

    /// How many lines the text has (at least as many as its records).
    pub(super) fn count(&self) -> usize {
        self.newlines.len() + 1
    }

    /// The line a record (or an error) at `position` starts on; 0 when there is none.
    fn line(&self, position: Option<&csv::Position>) -> usize {
        let Some(p) = position else { return 0 };
        let mut offset = p.byte() as usize;
        while offset < self.text.len() && matches!(self.text[offset], b'\r' | b'\n') {
            offset += 1;
        }
        self.newlines.partition_point(|&n| n < offset) + 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delimiters() {
        assert_eq!(detect_delimiter("a;b;c\n1;2;3"), b';');
        assert_eq!(detect_delimiter("a\tb\tc"), b'\t');
        assert_eq!(detect_delimiter("\"x;y\",b,c"), b',');
        assert_eq!(detect_delimiter("email"), b',');
    }

    #[test]
    fn windows_1252_is_decoded_with_a_warning() {
        let bytes = b"id,first_name\nP1,Mar\xeda\n";
        let (text, enc, warning) = decode(Path::new("x.csv"), bytes, None).unwrap();
        assert_eq!(enc, "windows-1252");
        assert!(text.contains("María"));
        assert_eq!(warning.unwrap().line, Some(2));
        let forced = decode(Path::new("x.csv"), bytes, Some(encoding_rs::WINDOWS_1252)).unwrap();
        assert!(forced.2.is_none());
        let err = decode(Path::new("x.csv"), bytes, Some(encoding_rs::UTF_8)).unwrap_err();
        assert!(
            matches!(err, ContactsError::Encoding { line: 2, .. }),
            "{err}"
        );
    }
}
