//! Contacts: the CSV a clinic exports, decoded, split, validated and de-duplicated into
//! [`Contact`]s, plus the suppression lists. A row's problems are data ([`Problem`], with line,
//! field and reason), never a reason to stop: only a file that cannot be read at all is an error.
//!
//! Real exports are messy: Excel writes Windows-1252 or UTF-8 with a BOM, `;` in much of Europe,
//! tabs from "Unicode Text"; EHR systems quote newlines into address fields. Each is handled here
//! so the rest of the program sees clean values: an email validated and lowercased for matching
//! (kept as written for display), a phone in E.164, a time zone from the IANA database.

//!
//! The files, from the bottom up (each uses only those before it): `error.rs` (what stops or
//! warns about a file), `header.rs` (the columns and where the standard fields are),
//! `contact.rs` (what a file reads into), `decode.rs` (bytes to text, the delimiter, true line
//! numbers), `suppressions.rs` (the lists of who must not be messaged); this file reads a whole
//! contacts file.

mod contact;
mod decode;
mod error;
mod header;
mod suppressions;

use std::path::Path;
use std::sync::{Arc, mpsc};

use chrono_tz::Tz;

pub use contact::{
    ChannelChoice, Consent, ConsentError, Contact, ContactList, Problem, parse_consent,
};
pub use decode::{decode, detect_delimiter};
pub use error::{ContactsError, FileWarning};
pub use header::{Columns, normalise_header};
pub use suppressions::{SuppressedBy, Suppressions};

use crate::address::{E164Phone, EmailAddress};
use crate::config::ContactsSource;
use crate::model::Channel;
use decode::LineIndex;
use header::layout;

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
            .index_of(field)
            .and_then(|i| record.get(i))
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
}
