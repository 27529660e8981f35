//! Rows that repeat one another. An id used twice is a warning about the file. An address used
//! twice is one recipient: every row with it but one is marked as a duplicate of the row that
//! keeps it ([`Contact::duplicate_of`]), so an export that lists a patient twice does not send
//! them the message twice.

use super::contact::{Contact, ContactList};
use super::error::FileWarning;
use crate::model::Channel;

/// Warns of every id used on an earlier line, and marks, on each channel, every row whose address
/// another row keeps ([`mark_addresses`]).
pub(super) fn mark_duplicates(list: &mut ContactList) {
    {
        let contacts = &list.contacts;
        let mut ids = FirstSeen::new(contacts, |c| Some(c.id.as_str()));
        for (i, contact) in contacts.iter().enumerate() {
            if let Some(first) = ids.first(i) {
                list.warnings.push(FileWarning {
                    file: list.path.clone(),
                    line: Some(contact.line),
                    message: format!(
                        "id {:?} was already used on line {}",
                        contact.id, contacts[first].line
                    ),
                });
            }
        }
    }
    mark_addresses(list);
}

/// Marks, on each channel, every row whose address another row keeps, anew (the audience
/// filter changes which rows can take a message).
pub(super) fn mark_addresses(list: &mut ContactList) {
    // The first pass only reads the contacts, and what it finds is written back afterwards.
    let mut duplicates: Vec<(usize, Channel, usize)> = Vec::new();
    {
        let contacts = &list.contacts;
        // An address twice is one recipient: the first row that can take the message on that
        // channel (chose it, no problem in the row, consent given, in the audience), else the
        // first row. So an earlier row that could never get it does not take the message from a
        // later one that can (an SMS-only row, then the same email on a row that chose email).
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
    for contact in &mut list.contacts {
        contact.duplicate_of = [None, None];
    }
    for (i, channel, first) in duplicates {
        let first = &list.contacts[first];
        let of = (first.line, first.id.clone());
        list.contacts[i].duplicate_of[channel as usize] = Some(Box::new(of));
    }
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

#[cfg(test)]
mod tests {
    use crate::contacts::tests::parse_str;
    use crate::model::Channel;

    #[test]
    fn duplicates_collapse_per_address() {
        let list = parse_str(
            "id,email,phone\nP1,ann@example.com,3125550101\nP2,ANN@example.com,3125550102\nP3,bo@example.com,(312) 555-0101\n",
        );
        assert_eq!(
            list.contacts[1].duplicate_of[Channel::Email as usize],
            Some(Box::new((2, "P1".into())))
        );
        assert_eq!(list.contacts[1].duplicate_of[Channel::Sms as usize], None);
        assert_eq!(
            list.contacts[2].duplicate_of[Channel::Sms as usize],
            Some(Box::new((2, "P1".into())))
        );
    }
}
