//! The rows of a contacts file: read in batches and validated over all cores
//! ([`read_rows`]), each row becoming a [`Contact`] whose cells are checked one by one
//! ([`parse_row`]: email, E.164 phone, channel, consent, time zone, field count). What is wrong
//! with a row becomes a `Problem` on it; only a file with no usable header row, or one the CSV
//! reader cannot split, stops here.

use std::path::Path;
use std::sync::{Arc, mpsc};

use chrono_tz::Tz;

use super::contact::{Cells, ChannelChoice, Consent, Contact, Problem, parse_consent};
use super::controls::{Readers, control_problem, shown_on};
use super::decode::{LineIndex, detect_delimiter, records};
use super::error::ContactsError;
use super::header::{Columns, layout};
use crate::address::{E164Phone, EmailAddress};
use crate::config::ContactsSource;
use crate::language::Language;
use crate::model::Channel;

/// Rows validated together, over all cores, while the next batch is read.
const PARSE_BATCH: usize = 8192;

/// The contacts of decoded CSV text, in file order, each validated; the header; the delimiter.
pub(super) fn read_rows(
    path: &Path,
    text: &str,
    source: &ContactsSource,
    region: phonenumber::country::Id,
    default_tz: Tz,
    readers: Readers<'_>,
) -> Result<(Vec<Contact>, Arc<Columns>, u8), ContactsError> {
    let delimiter = source.delimiter.unwrap_or_else(|| detect_delimiter(text));
    let lines = LineIndex::new(text);
    let mut records = records(path, text, &lines, delimiter);
    let (header_line, headers) = match records.next() {
        Some(record) => record?,
        None => {
            return Err(ContactsError::Header {
                path: path.to_path_buf(),
                line: 1,
                message: "the file is empty: expected a header row".into(),
            });
        }
    };
    let mut columns = layout(path, header_line, &headers, source)?;
    columns.shown_on = shown_on(&columns, readers);
    let columns = Arc::new(columns);

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
            batch.push(record?);
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

/// One row validated: its cells read by the header `columns`, each problem recorded.
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
                problem("timezone", v, reason.to_string(), &[Channel::Sms]);
                default_tz
            }
        },
    };
    let (language, bad_language) = language_cell(get("language"));

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
    let values = Cells::new(record.iter().map(unquote));
    for (i, value) in values.iter().enumerate() {
        let Some(on) = columns.shown_on.get(i).filter(|on| !on.is_empty()) else {
            continue;
        };
        let standard = columns.standard_name(i);
        if let Some(reason) = control_problem(value, standard.is_none()) {
            let field = standard.unwrap_or(&columns.names[i]);
            problem(field, value, reason, on);
        }
    }
    problems.extend(bad_language);

    Contact {
        line,
        id,
        email,
        phone,
        choice,
        email_consent,
        sms_consent,
        timezone,
        language,
        values,
        columns: Arc::clone(columns),
        problems,
        duplicate_of: [None, None],
        in_audience: true,
    }
}

/// A `language` cell read: its tag (`None` when empty), or the problem that stops the row
/// (sending in a guessed language is worse than not sending: the row waits for a tag).
fn language_cell(value: &str) -> (Option<Language>, Option<Problem>) {
    match Language::parse(value) {
        _ if value.is_empty() => (None, None),
        Ok(language) => (Some(language), None),
        Err(reason) => {
            let problem = Problem {
                field: "language".into(),
                value: value.into(),
                reason: reason.to_string(),
                stops: Channel::ALL.to_vec(),
            };
            (None, Some(problem))
        }
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
    use crate::contacts::tests::parse_str;

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
            Some(Box::new((5, "P3".into())))
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
