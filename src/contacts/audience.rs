//! `contacts.where` applied to a read contact list: which rows the campaign is for. A cell the
//! filter cannot read (`forty` where it compares ages) is that row's problem on both channels,
//! naming the column and the value, so `check` lists it and the row gets nothing. Duplicate
//! addresses are marked again afterwards: a row outside the audience does not keep an address
//! from a later row inside it.

use std::collections::{BTreeMap, HashMap};

use chrono::NaiveDate;

use super::contact::{ContactList, Problem};
use super::duplicates::mark_addresses;
use super::header::normalise_header;
use crate::audience::{DateForm, Filter};
use crate::model::Channel;

/// Marks the rows `filter` selects on `today` (the clinic's date), reading dates in `forms`.
/// Returns the filter's columns the file lacks, having marked nothing, when there are any.
pub fn select_audience(
    list: &mut ContactList,
    filter: &Filter,
    today: NaiveDate,
    forms: &BTreeMap<String, DateForm>,
) -> Vec<String> {
    let mut index: HashMap<&str, usize> = HashMap::new();
    let mut missing = Vec::new();
    for c in filter.columns() {
        let name = normalise_header(c);
        let found = (list.header.names.iter().position(|h| *h == name))
            .or_else(|| list.header.index_of(&name));
        match found {
            Some(i) => {
                index.insert(c, i);
            }
            None => missing.push(c.to_string()),
        }
    }
    if !missing.is_empty() {
        return missing;
    }
    // The declared forms under the filter's own spelling of each column.
    let forms: BTreeMap<String, DateForm> = index
        .keys()
        .filter_map(|c| {
            let name = normalise_header(c);
            let form = forms.iter().find(|(k, _)| normalise_header(k) == name)?;
            Some((c.to_string(), *form.1))
        })
        .collect();
    for contact in &mut list.contacts {
        let cell = |c: &str| {
            (index.get(c))
                .and_then(|&i| contact.values.get(i))
                .unwrap_or("")
        };
        let result = filter.matches(&cell, today, &forms);
        match result {
            Ok(selected) => contact.in_audience = selected,
            Err(e) => {
                contact.in_audience = false;
                let column = index.get(e.column.as_str()).copied();
                let header = column.and_then(|i| list.header.written.get(i));
                contact.problems.push(Problem {
                    field: header.cloned().unwrap_or(e.column.clone()),
                    value: e.value.clone(),
                    reason: format!("contacts.where cannot read it: {e}"),
                    stops: Channel::ALL.to_vec(),
                });
            }
        }
    }
    // Which of two rows sharing an address keeps it may change; with no address shared, the
    // pass over every address again is not needed.
    if list
        .contacts
        .iter()
        .any(|c| c.duplicate_of.iter().any(Option::is_some))
    {
        mark_addresses(list);
    }
    Vec::new()
}
