//! Approvals as the ledger keeps them: who approved a campaign, when, and the hashes of what
//! they approved ([`Fingerprint`]). What goes into a fingerprint and how two are compared is
//! the approval module's business; this one only stores and reads them back.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::db::{Arg, Begin, DbError, args};
use super::sqlite::{Ledger, LedgerError, timestamp};

/// The small part of a fingerprint, stored as one JSON value with the approval.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    /// Setting key → hash of its effective value.
    pub settings: BTreeMap<String, String>,
    /// Template file (`subject.hbs`, `partials/footer_html.hbs`) → hash of its text.
    pub templates: BTreeMap<String, String>,
    /// The contacts file (canonical path).
    pub contacts_file: String,
    /// Hash of its header.
    pub contacts_header: String,
    /// How many rows it had.
    pub contact_rows: usize,
    /// Each suppression file (canonical path) → how many addresses it listed.
    pub suppression_files: BTreeMap<String, usize>,
}

/// Everything an approval covers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Fingerprint {
    pub summary: Summary,
    /// Keyed hash of a row's identity → keyed hash of its cells.
    pub contact_rows: HashMap<String, String>,
    /// Suppression file → keyed hashes of the addresses it lists.
    pub suppressions: BTreeMap<String, BTreeSet<String>>,
}

/// A row of `approval_rows`, as [`Ledger::approve`] inserts it.
fn approval_row<'a>(
    id: i64,
    kind: &'a str,
    file: &'a str,
    key: &'a str,
    hash: &'a str,
) -> [Arg<'a>; 5] {
    [
        Arg::Int(id),
        Arg::Text(kind),
        Arg::Text(file),
        Arg::Text(key),
        Arg::Text(hash),
    ]
}

/// An approval as recorded.
#[derive(Debug, Clone)]
pub struct Approval {
    pub by: String,
    pub at: DateTime<Utc>,
    pub fingerprint: Fingerprint,
}
impl Ledger {
    /// Records an approval of `campaign`; earlier approvals' row hashes are dropped (their
    /// who and when are kept as history).
    pub fn approve(
        &mut self,
        campaign: &str,
        by: &str,
        at: DateTime<Utc>,
        fingerprint: &Fingerprint,
    ) -> Result<i64, LedgerError> {
        let summary = serde_json::to_string(&fingerprint.summary).expect("a summary serialises");
        self.transaction(Begin::Deferred, |tx| {
            tx.execute(
                "DELETE FROM approval_rows WHERE approval IN
                     (SELECT id FROM approvals WHERE campaign = ?1)",
                args![campaign],
            )?;
            let id = tx
                .insert_id(
                    "INSERT INTO approvals (campaign, approved_by, approved_at, fingerprint)
                     VALUES (?1, ?2, ?3, ?4)",
                    args![campaign, by, timestamp(at), summary],
                    "id",
                )?
                .expect("an approval's row is always inserted");
            // One statement per 200 rows: an approval of 500,000 contacts was as many
            // statements, each a round trip on PostgreSQL.
            let file = fingerprint.summary.contacts_file.as_str();
            let contacts = (fingerprint.contact_rows.iter())
                .map(|(key, hash)| approval_row(id, "contact", file, key, hash));
            let suppressions = fingerprint.suppressions.iter().flat_map(|(file, keys)| {
                keys.iter()
                    .map(move |key| approval_row(id, "suppression", file, key, ""))
            });
            tx.insert_rows(
                "approval_rows (approval, kind, file, key, hash)",
                "ON CONFLICT (approval, kind, file, key) DO UPDATE SET hash = excluded.hash",
                5,
                contacts.chain(suppressions),
            )?;
            Ok(id)
        })
    }

    /// The latest approval of `campaign`, with its fingerprint.
    pub fn approval(&self, campaign: &str) -> Result<Option<Approval>, LedgerError> {
        self.sql(|c| {
            let head: Option<(i64, String, String, String)> = c.query_opt(
                "SELECT id, approved_by, approved_at, fingerprint FROM approvals
                 WHERE campaign = ?1 ORDER BY id DESC LIMIT 1",
                args![campaign],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )?;
            let Some((id, by, at, summary)) = head else {
                return Ok(None);
            };
            let summary = serde_json::from_str(&summary).map_err(|e| DbError::Column {
                column: 3,
                problem: format!("the approval's summary: {e}"),
            })?;
            let mut fingerprint = Fingerprint {
                summary,
                ..Default::default()
            };
            c.for_each(
                "SELECT kind, file, key, hash FROM approval_rows WHERE approval = ?1",
                args![id],
                |r| {
                    let kind: String = r.get(0)?;
                    let file: String = r.get(1)?;
                    let key: String = r.get(2)?;
                    if kind == "contact" {
                        fingerprint.contact_rows.insert(key, r.get(3)?);
                    } else {
                        fingerprint
                            .suppressions
                            .entry(file)
                            .or_default()
                            .insert(key);
                    }
                    Ok(())
                },
            )?;
            let at = DateTime::parse_from_rfc3339(&at)
                .map(|t| t.with_timezone(&Utc))
                .unwrap_or_default();
            Ok(Some(Approval {
                by,
                at,
                fingerprint,
            }))
        })
    }
}
