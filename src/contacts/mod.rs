//! Contacts: the CSV a clinic exports, decoded, split, validated and de-duplicated into
//! [`Contact`]s, plus the suppression lists. A row's problems are data ([`Problem`], with line,
//! field and reason), never a reason to stop: only a file that cannot be read at all is an error.
//!
//! Real exports are messy: Excel writes Windows-1252 or UTF-8 with a BOM, `;` in much of Europe,
//! tabs from "Unicode Text"; EHR systems quote newlines into address fields. Each is handled here
//! so the rest of the program sees clean values: an email validated and lowercased for matching
//! (kept as written for display), a phone in E.164, a time zone from the IANA database.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, mpsc};

use chrono::NaiveDate;
use chrono_tz::Tz;

use crate::address::{E164Phone, EmailAddress};
use crate::config::ContactsSource;
use crate::model::Channel;

/// A contacts or suppression file that cannot be used at all.
#[derive(Debug, thiserror::Error)]
pub enum ContactsError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}:{line}: {message}")]
    Encoding {
        path: PathBuf,
        line: usize,
        message: String,
    },
    #[error("{path}:{line}: {message}")]
    Header {
        path: PathBuf,
        line: usize,
        message: String,
    },
    #[error("{path}:{line}: {message}")]
    Csv {
        path: PathBuf,
        line: usize,
        message: String,
    },
}

/// A warning about a file as a whole (not a row).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FileWarning {
    pub file: PathBuf,
    pub line: Option<usize>,
    pub message: String,
}

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
    /// Every cell of the row, trimmed, in header order (names in `columns`). Kept as one boxed
    /// slice with the header shared: a 100,000-row list stays well under 100 MB.
    values: Box<[Box<str>]>,
    columns: Arc<Columns>,
    pub problems: Vec<Problem>,
    /// For each channel, the line of an earlier row with the same address.
    pub duplicate_of: [Option<(usize, String)>; 2],
}

/// A contacts file's header: normalised names and where the standard fields are.
#[derive(Debug, Clone, Default)]
pub struct Columns {
    /// Normalised header names, in file order (empty for a blank header cell).
    pub names: Vec<String>,
    standard: HashMap<&'static str, usize>,
}

impl Contact {
    fn standard(&self, field: &str) -> &str {
        self.columns
            .standard
            .get(field)
            .and_then(|&i| self.values.get(i))
            .map(|v| &**v)
            .unwrap_or("")
    }

    /// Whether the row has an id of its own (not the `line-N` stand-in).
    pub fn has_id(&self) -> bool {
        !self.standard("id").is_empty()
    }

    /// Every cell of the row as read (trimmed), in header order.
    pub fn cells(&self) -> impl Iterator<Item = &str> {
        self.values.iter().map(|v| &**v)
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
        let std_name = |i: usize| {
            self.columns
                .standard
                .iter()
                .find(|(_, j)| **j == i)
                .map(|(name, _)| *name)
        };
        for (i, (name, value)) in self
            .columns
            .names
            .iter()
            .zip(self.values.iter())
            .enumerate()
        {
            let standard = std_name(i);
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
        self.choice.allows(channel)
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
    pub contacts: Vec<Contact>,
    pub warnings: Vec<FileWarning>,
    /// Which encoding the file was read as.
    pub encoding: &'static str,
    /// The delimiter used.
    pub delimiter: char,
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

/// Maps a record's byte offset to its 1-based line. The csv crate's own line count goes wrong after
/// blank lines (and a CRLF blank line counts as none), and its byte offset points at the blank
/// lines before a record, so the offset is moved past line breaks first.
struct LineIndex<'a> {
    text: &'a [u8],
    newlines: Vec<usize>,
}

impl<'a> LineIndex<'a> {
    fn new(text: &'a str) -> Self {
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
    fn count(&self) -> usize {
        self.newlines.len() + 1
    }

    fn line(&self, position: Option<&csv::Position>) -> usize {
        let Some(p) = position else { return 0 };
        let mut offset = p.byte() as usize;
        while offset < self.text.len() && matches!(self.text[offset], b'\r' | b'\n') {
            offset += 1;
        }
        self.newlines.partition_point(|&n| n < offset) + 1
    }
}

fn layout(
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

/// Rows validated together, over all cores, while the next batch is read.
const PARSE_BATCH: usize = 8192;

/// Reads and validates the contacts file of a campaign.
pub fn load(
    source: &ContactsSource,
    region: phonenumber::country::Id,
    default_tz: Tz,
) -> Result<ContactList, ContactsError> {
    let path = &source.path;
    let bytes = std::fs::read(path).map_err(|e| ContactsError::Read {
        path: path.clone(),
        source: e,
    })?;
    let (text, encoding, warning) = decode(path, &bytes, source.encoding)?;
    drop(bytes);
    let mut list = parse(path, text, source, region, default_tz)?;
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
) -> Result<ContactList, ContactsError> {
    let (contacts, columns, delimiter) = read_rows(path, &text, source, region, default_tz)?;
    drop(text);
    let mut list = ContactList {
        path: path.to_path_buf(),
        columns: columns
            .names
            .iter()
            .filter(|n| !n.is_empty())
            .cloned()
            .collect(),
        contacts,
        warnings: Vec::new(),
        encoding: "UTF-8",
        delimiter: delimiter as char,
    };
    // The first pass only reads the contacts, and what it finds is written back afterwards.
    let mut duplicates: Vec<(usize, Channel, usize)> = Vec::new();
    {
        let contacts = &list.contacts;
        let mut ids = FirstSeen::new(contacts, |c| Some(c.id.as_str()));
        for (i, contact) in contacts.iter().enumerate() {
            if let Some(first) = ids.first(i) {
                list.warnings.push(FileWarning {
                    file: path.to_path_buf(),
                    line: Some(contact.line),
                    message: format!(
                        "id {:?} was already used on line {}",
                        contact.id, contacts[first].line
                    ),
                });
            }
        }
        // An address twice is one recipient: the first row that can take the message on that
        // channel (chose it, no problem in the row, consent given), else the first row. So an
        // earlier row that could never get it does not take the message from a later one that
        // can (an SMS-only row, then the same email on a row that chose email).
        for channel in Channel::ALL {
            let mut seen = FirstSeen::new(contacts, move |c| c.address(channel));
            let (able, unable): (Vec<usize>, Vec<usize>) =
                (0..contacts.len()).partition(|&i| contacts[i].can_take(channel));
            for i in able.into_iter().chain(unable) {
                if let Some(first) = seen.first(i) {
                    duplicates.push((i, channel, first));
                }
            }
        }
    }
    for (i, channel, first) in duplicates {
        let first = &list.contacts[first];
        let of = (first.line, first.id.clone());
        list.contacts[i].duplicate_of[channel as usize] = Some(of);
    }
    Ok(list)
}

/// The contacts of decoded CSV text, in file order, each validated; the header; the delimiter.
fn read_rows(
    path: &Path,
    text: &str,
    source: &ContactsSource,
    region: phonenumber::country::Id,
    default_tz: Tz,
) -> Result<(Vec<Contact>, Arc<Columns>, u8), ContactsError> {
    let delimiter = source.delimiter.unwrap_or_else(|| detect_delimiter(text));
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .has_headers(false)
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());

    let lines = LineIndex::new(text);
    let csv_error = |e: csv::Error| {
        let line = lines.line(e.position());
        ContactsError::Csv {
            path: path.to_path_buf(),
            line,
            message: e.to_string(),
        }
    };

    let mut records = reader.records();
    let (header_line, headers) = loop {
        match records.next() {
            None => {
                return Err(ContactsError::Header {
                    path: path.to_path_buf(),
                    line: 1,
                    message: "the file is empty: expected a header row".into(),
                });
            }
            Some(r) => {
                let r = r.map_err(csv_error)?;
                if r.iter().all(str::is_empty) {
                    continue;
                }
                break (lines.line(r.position()), r);
            }
        }
    };
    let columns = Arc::new(layout(path, header_line, &headers, source)?);

    // Validating a row (phone numbers above all) is the costly part: it is spread over the
    // cores, a batch of rows at a time, while this thread reads the next batch. Only two
    // batches of raw records are held at once, not the whole file's beside its contacts.
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .min(16);
    let chunk = PARSE_BATCH.div_ceil(threads);
    let mut read_batch = || -> Result<Vec<(usize, csv::StringRecord)>, ContactsError> {
        let mut batch = Vec::with_capacity(PARSE_BATCH);
        for record in records.by_ref() {
            let record = record.map_err(csv_error)?;
            if record.iter().all(str::is_empty) {
                continue; // blank lines and Excel's trailing ",,,,," rows
            }
            batch.push((lines.line(record.position()), record));
            if batch.len() == PARSE_BATCH {
                break;
            }
        }
        Ok(batch)
    };
    let columns_ref = &columns;
    let contacts = std::thread::scope(|scope| -> Result<Vec<Contact>, ContactsError> {
        // The same threads for every batch: new ones would each start a heap of their own.
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                let (to_worker, inbox) = mpsc::channel::<Vec<(usize, csv::StringRecord)>>();
                let (to_reader, parsed) = mpsc::channel::<Vec<Contact>>();
                scope.spawn(move || {
                    for part in inbox {
                        let rows = part.iter().map(|(line, record)| {
                            parse_row(*line, record, columns_ref, region, default_tz)
                        });
                        if to_reader.send(rows.collect()).is_err() {
                            break;
                        }
                    }
                });
                (to_worker, parsed)
            })
            .collect();
        let mut contacts: Vec<Contact> = Vec::with_capacity(lines.count());
        let mut batch = read_batch()?;
        while !batch.is_empty() {
            let mut busy = 0;
            for (to_worker, _) in &workers {
                let rest = batch.split_off(chunk.min(batch.len()));
                let part = std::mem::replace(&mut batch, rest);
                if part.is_empty() {
                    break;
                }
                to_worker.send(part).expect("contact parser running");
                busy += 1;
            }
            let next = read_batch();
            for (_, parsed) in &workers[..busy] {
                contacts.extend(parsed.recv().expect("contact parser panicked"));
            }
            batch = next?;
        }
        Ok(contacts)
    })?;
    Ok((contacts, columns, delimiter))
}

/// Which contact first had each key (an id, an address), for contacts taken in order. The table
/// holds only indexes and hashes keys from the contacts themselves: a third of the memory of a
/// map keyed by the strings, which on 100,000 rows is at the peak of a run.
struct FirstSeen<'a, K> {
    contacts: &'a [Contact],
    key: K,
    table: hashbrown::HashTable<usize>,
    hasher: std::hash::RandomState,
}

impl<'a, K: Fn(&'a Contact) -> Option<&'a str>> FirstSeen<'a, K> {
    fn new(contacts: &'a [Contact], key: K) -> Self {
        FirstSeen {
            contacts,
            key,
            table: hashbrown::HashTable::with_capacity(contacts.len()),
            hasher: std::hash::RandomState::new(),
        }
    }

    /// The earlier contact with contact `i`'s key, if any; else `i` is its first. A contact
    /// without the key has none.
    fn first(&mut self, i: usize) -> Option<usize> {
        use std::hash::BuildHasher;
        let FirstSeen {
            contacts,
            key,
            table,
            hasher,
        } = self;
        let k = key(&contacts[i])?;
        let hash_of = |j: &usize| hasher.hash_one(key(&contacts[*j]));
        match table.entry(
            hasher.hash_one(Some(k)),
            |j| key(&contacts[*j]) == Some(k),
            hash_of,
        ) {
            hashbrown::hash_table::Entry::Occupied(e) => Some(*e.get()),
            hashbrown::hash_table::Entry::Vacant(e) => {
                e.insert(i);
                None
            }
        }
    }
}

fn parse_row(
    line: usize,
    record: &csv::StringRecord,
    columns: &Arc<Columns>,
    region: phonenumber::country::Id,
    default_tz: Tz,
) -> Contact {
    let get = |field: &str| {
        columns
            .standard
            .get(field)
            .and_then(|&i| record.get(i))
            .map(unquote)
            .unwrap_or_default()
    };
    let mut problems = Vec::new();
    let mut problem = |field: &str, value: &str, reason: String, stops: &[Channel]| {
        problems.push(Problem {
            field: field.to_string(),
            value: value.to_string(),
            reason,
            stops: stops.to_vec(),
        })
    };

    let id = match get("id") {
        "" => format!("line-{line}"),
        v => v.to_string(),
    };
    let email = match get("email") {
        "" => None,
        v => match EmailAddress::parse(v) {
            Ok(e) => Some(e),
            Err(reason) => {
                problem("email", v, reason.to_string(), &[Channel::Email]);
                None
            }
        },
    };
    let phone = match get("phone") {
        "" => None,
        v => match E164Phone::parse(v, region) {
            Ok(p) => Some(p),
            Err(reason) => {
                problem("phone", v, reason.to_string(), &[Channel::Sms]);
                None
            }
        },
    };
    let choice = match get("channel").to_ascii_lowercase().as_str() {
        "" | "both" | "all" | "any" => ChannelChoice::Any,
        v => match v.parse::<Channel>() {
            Ok(c) => ChannelChoice::Only(c),
            Err(_) => {
                problem(
                    "channel",
                    get("channel"),
                    format!(
                        "{:?} is not a channel: use email, sms, both or leave it empty",
                        get("channel")
                    ),
                    &Channel::ALL,
                );
                ChannelChoice::Any
            }
        },
    };
    let mut consent = |field: &str, channel: Channel| match parse_consent(get(field)) {
        Ok(c) => c,
        Err(reason) => {
            problem(field, get(field), reason.to_string(), &[channel]);
            Consent::Invalid
        }
    };
    let email_consent = consent("email_consent", Channel::Email);
    let sms_consent = consent("sms_consent", Channel::Sms);
    let timezone = match get("timezone") {
        "" => default_tz,
        v => match crate::model::parse_timezone(v) {
            Ok(tz) => tz,
            Err(reason) => {
                // Quiet hours are kept in the patient's own zone: without it, no SMS.
                problem("timezone", v, reason, &[Channel::Sms]);
                default_tz
            }
        },
    };

    if record.len() != columns.names.len() {
        problem(
            "row",
            "",
            format!(
                "has {} fields but the header has {}: a missing or extra delimiter would shift \
                 the columns",
                record.len(),
                columns.names.len()
            ),
            &Channel::ALL,
        );
    }
    let values: Box<[Box<str>]> = record.iter().map(|v| Box::from(unquote(v))).collect();

    Contact {
        line,
        id,
        email,
        phone,
        choice,
        email_consent,
        sms_consent,
        timezone,
        values,
        columns: Arc::clone(columns),
        problems,
        duplicate_of: [None, None],
    }
}

/// A quoted field with spaces around it (`; "Ann" ;`) is not quoted to a strict CSV reader, which
/// keeps the quotes; after trimming, take them off as the writer meant.
fn unquote(value: &str) -> &str {
    if value.len() >= 2 && value.starts_with('"') && value.ends_with('"') {
        let inner = &value[1..value.len() - 1];
        if !inner.contains('"') {
            return inner;
        }
    }
    value
}

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
        let key = if value.contains('@') {
            EmailAddress::parse(value)
                .ok()
                .map(|e| e.normalised().to_string())
        } else {
            E164Phone::parse(value, region)
                .ok()
                .map(|p| p.as_str().to_string())
        };
        match key {
            Some(k) => {
                if let Some((file, list)) = self.files.last_mut()
                    && *file == by.file
                {
                    list.push(k.clone());
                }
                self.entries.entry(k).or_insert(by);
                true
            }
            None => false,
        }
    }

    /// Reads suppression files: a CSV whose header has an `address`, `email` or `phone` column
    /// (others ignored), or one address per line (`#` comments allowed).
    pub fn load(
        paths: &[PathBuf],
        region: phonenumber::country::Id,
    ) -> Result<Self, ContactsError> {
        let mut s = Suppressions::default();
        for path in paths {
            let bytes = std::fs::read(path).map_err(|e| ContactsError::Read {
                path: path.clone(),
                source: e,
            })?;
            let (text, _, warning) = decode(path, &bytes, None)?;
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
        let delimiter = detect_delimiter(&text);
        let mut reader = csv::ReaderBuilder::new()
            .delimiter(delimiter)
            .has_headers(false)
            .flexible(true)
            .trim(csv::Trim::All)
            .from_reader(text.as_bytes());
        let mut columns: Option<Vec<usize>> = None;
        for record in reader.records() {
            let record = record.map_err(|e| ContactsError::Csv {
                path: path.to_path_buf(),
                line: lines.line(e.position()),
                message: e.to_string(),
            })?;
            if record.iter().all(str::is_empty) {
                continue;
            }
            let line = lines.line(record.position());
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
                if !self.insert(value, region, by) {
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

    fn source() -> ContactsSource {
        ContactsSource {
            path: "c.csv".into(),
            suppress: vec![],
            encoding: None,
            delimiter: None,
            columns: Default::default(),
        }
    }

    fn parse_str(text: &str) -> ContactList {
        parse(
            Path::new("c.csv"),
            text.to_string(),
            &source(),
            Id::US,
            chrono_tz::America::Chicago,
        )
        .unwrap()
    }

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

    #[test]
    fn headers_normalise() {
        assert_eq!(normalise_header(" First Name "), "first_name");
        assert_eq!(normalise_header("E-mail Address"), "e_mail_address");
        assert_eq!(normalise_header("SMS_Consent"), "sms_consent");
    }

    #[test]
    fn delimiters() {
        assert_eq!(detect_delimiter("a;b;c\n1;2;3"), b';');
        assert_eq!(detect_delimiter("a\tb\tc"), b'\t');
        assert_eq!(detect_delimiter("\"x;y\",b,c"), b',');
        assert_eq!(detect_delimiter("email"), b',');
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

    #[test]
    fn quoted_newlines_keep_line_numbers() {
        let list = parse_str(
            "id,first_name,last_name,email\nP1,Ann,\"Lee,\nJr.\",ann@example.com\nP2,Bo,Ng,bad@\n",
        );
        assert_eq!(list.contacts[0].last_name(), "Lee,\nJr.");
        assert_eq!(list.contacts[1].line, 4);
        assert_eq!(list.contacts[1].problems[0].field, "email");
        assert_eq!(list.contacts[1].problems[0].stops, vec![Channel::Email]);
    }

    #[test]
    fn duplicates_collapse_per_address() {
        let list = parse_str(
            "id,email,phone\nP1,ann@example.com,3125550101\nP2,ANN@example.com,3125550102\nP3,bo@example.com,(312) 555-0101\n",
        );
        assert_eq!(
            list.contacts[1].duplicate_of[Channel::Email as usize],
            Some((2, "P1".into()))
        );
        assert_eq!(list.contacts[1].duplicate_of[Channel::Sms as usize], None);
        assert_eq!(
            list.contacts[2].duplicate_of[Channel::Sms as usize],
            Some((2, "P1".into()))
        );
    }

    /// More rows than one parsing batch: every row comes back in file order, and a duplicate
    /// or a reused id is found across batches.
    #[test]
    fn a_list_of_many_batches_keeps_its_order_and_its_duplicates() {
        let n = 2 * PARSE_BATCH + 100;
        let mut text = String::from("id,email\n");
        for i in 0..n {
            text.push_str(&format!("P{i},p{i}@example.com\n"));
        }
        text.push_str("P5,again@example.com\nQ1,P3@example.com\n");
        let list = parse_str(&text);
        assert_eq!(list.contacts.len(), n + 2);
        for (i, c) in list.contacts.iter().take(n).enumerate() {
            assert_eq!((c.line, c.id.as_str()), (i + 2, format!("P{i}").as_str()));
            assert_eq!(c.duplicate_of, [None, None]);
        }
        let last = &list.contacts[n + 1];
        assert_eq!(
            last.duplicate_of[Channel::Email as usize],
            Some((5, "P3".into()))
        );
        assert_eq!(list.warnings.len(), 1);
        assert_eq!(list.warnings[0].line, Some(n + 2));
        assert!(list.warnings[0].message.contains("already used on line 7"));
    }

    #[test]
    fn line_numbers_survive_blank_lines_and_crlf() {
        let list = parse_str("id,email\r\n\r\nP1,bad\r\n\r\n\r\nP2,worse\r\n");
        assert_eq!(list.contacts[0].line, 3);
        assert_eq!(list.contacts[1].line, 6);
        let list = parse_str("\n\nid,email\nP1,\"multi\nline\"\n\nP2,x\n");
        assert_eq!(list.contacts[0].line, 4);
        assert_eq!(list.contacts[1].line, 7);
    }

    #[test]
    fn short_rows_are_problems() {
        let list = parse_str("id,email,phone\nP1,ann@example.com\n");
        assert_eq!(list.contacts[0].problems[0].field, "row");
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
    }
}
