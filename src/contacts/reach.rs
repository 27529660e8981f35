//! Whether each enabled channel can reach anyone. A file whose email column is headed in a way
//! nobody foresaw, or mapped to the wrong column, would otherwise skip every email as "no
//! address" and still pass `check`: a campaign that silently drops a channel. When an enabled
//! channel has no address column, or no row has an address in it, the file stops here with the
//! headers it has, the column that most looks like the missing one (by its cells first, then by
//! its name), and the line of the campaign file that would fix it.

use super::contact::ContactList;
use super::error::ContactsError;
use super::header::{Columns, aliases_of};
use crate::address::{E164Phone, EmailAddress};
use crate::model::Channel;

/// Rows looked at when guessing which column holds a channel's addresses.
const SAMPLE_ROWS: usize = 1000;

/// How alike a header must be to a field's name or spellings to be offered as its column.
const NAME_LIKENESS: f64 = 0.85;

/// The error for the first enabled channel in `channels` that no row of `list` can be reached
/// on, if any (a file with no rows reaches nobody and is not this check's business).
pub fn check_reach(
    list: &ContactList,
    channels: &[Channel],
    region: phonenumber::country::Id,
) -> Result<(), ContactsError> {
    if list.contacts.is_empty() {
        return Ok(());
    }
    let columns = &list.header;
    for &channel in channels {
        let field = field_of(channel);
        let problem = match columns.index_of(field) {
            None => format!("the file has no `{field}` column"),
            Some(i) if list.contacts.iter().all(|c| c.cell(i).is_empty()) => format!(
                "its `{field}` column ({:?}) is empty on every row",
                columns.written[i]
            ),
            Some(_) => continue,
        };
        let fix = match closest(list, channel, region, columns.index_of(field)) {
            Some((i, why)) => format!(
                "the closest is {:?} ({why}): add to the campaign file\n  \
                 [contacts.columns]\n  {field} = {:?}",
                columns.written[i], columns.written[i]
            ),
            None => format!(
                "no column looks like one: add it to the file, or name it in the campaign file \
                 with [contacts.columns] {field} = \"…\""
            ),
        };
        return Err(ContactsError::Header {
            path: list.path.clone(),
            line: columns.line,
            message: format!(
                "{} is enabled but {problem}, so every {} would be skipped (the header has: \
                 {}); {fix}\nor, if this campaign sends no {}, leave it out of `channels` in \
                 [campaign]",
                channel.as_str(),
                noun(channel),
                columns.written.join(", "),
                noun(channel),
            ),
        });
    }
    Ok(())
}

fn field_of(channel: Channel) -> &'static str {
    match channel {
        Channel::Email => "email",
        Channel::Sms => "phone",
    }
}

fn noun(channel: Channel) -> &'static str {
    match channel {
        Channel::Email => "email",
        Channel::Sms => "SMS",
    }
}

/// The column that most looks like `channel`'s address column, and why: the one whose cells
/// most often read as addresses of that kind, else the one whose name is most like the field's
/// name or one of its spellings. Columns holding other standard fields are not offered, nor the
/// `empty` one the field is in.
fn closest(
    list: &ContactList,
    channel: Channel,
    region: phonenumber::country::Id,
    empty: Option<usize>,
) -> Option<(usize, String)> {
    let columns = &list.header;
    let candidates: Vec<usize> = (0..columns.names.len())
        .filter(|&i| Some(i) != empty && other_field(columns, i, channel).is_none())
        .collect();
    let sample = &list.contacts[..list.contacts.len().min(SAMPLE_ROWS)];
    let looks_like = |value: &str| match channel {
        Channel::Email => EmailAddress::parse(value).is_ok(),
        Channel::Sms => E164Phone::parse(value, region).is_ok(),
    };
    let by_cells = candidates
        .iter()
        .map(|&i| {
            let hits = sample.iter().filter(|c| looks_like(c.cell(i))).count();
            (hits, i)
        })
        .filter(|(hits, _)| *hits > 0)
        .max_by_key(|(hits, i)| (*hits, std::cmp::Reverse(*i)));
    if let Some((hits, i)) = by_cells {
        let what = match channel {
            Channel::Email => "email addresses",
            Channel::Sms => "phone numbers",
        };
        return Some((
            i,
            format!("{hits} of its first {} cells are {what}", sample.len()),
        ));
    }
    let field = field_of(channel);
    let likeness = |name: &str| {
        std::iter::once(field)
            .chain(aliases_of(field).iter().copied())
            .map(|spelling| strsim::jaro_winkler(name, spelling))
            .fold(0.0, f64::max)
    };
    candidates
        .iter()
        .map(|&i| (likeness(&columns.names[i]), i))
        .filter(|(score, _)| *score >= NAME_LIKENESS)
        .max_by(|a, b| a.0.total_cmp(&b.0).then(b.1.cmp(&a.1)))
        .map(|(_, i)| (i, format!("its name is like `{field}`")))
}

/// The standard field other than `channel`'s address that column `i` holds, if any.
fn other_field(columns: &Columns, i: usize, channel: Channel) -> Option<&'static str> {
    crate::config::CONTACT_FIELDS
        .iter()
        .find(|f| **f != field_of(channel) && columns.index_of(f) == Some(i))
        .copied()
}
