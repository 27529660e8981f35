//! Which email a returned message is about, and what recording it does. In order of trust:
//! the VERP token of the envelope sender (`tokens` → the message); the returned `Message-ID`,
//! which `message::message_id` derives from the campaign and the address, so it is recomputed
//! here for every email of the state directory rather than stored; last, the failed
//! recipient's address among the state directory's emails. An address one email holds is that
//! email; an address several campaigns hold is suppressed all the same (suppressions are the
//! state directory's, whichever campaign's message bounced) but its event names no message, so
//! no campaign's count is guessed. An address none holds is counted as unmatched and changes
//! nothing: a bounce for mail the clinic did not send through outreach is not ours to act on.

use std::collections::HashMap;

use crate::bounce::{Classification, Recipient, Severity};
use crate::config::Campaign;
use crate::store::bounces::{EmailRow, EventKind, MailEffect, MailEvent};
use crate::store::ledger::{Ledger, LedgerError};

/// The state directory's emails, by Message-ID and by address.
pub(super) struct Index {
    by_message_id: HashMap<String, EmailRow>,
    by_address: HashMap<String, Vec<EmailRow>>,
}

impl Index {
    /// Reads every email of the state directory once.
    pub fn build(ledger: &Ledger, campaigns: &[Campaign]) -> Result<Index, LedgerError> {
        let from: HashMap<&str, &lettre::message::Mailbox> = campaigns
            .iter()
            .filter_map(|c| Some((c.id.as_str(), &c.email.as_ref()?.from)))
            .collect();
        let mut index = Index {
            by_message_id: HashMap::new(),
            by_address: HashMap::new(),
        };
        for row in ledger.email_rows()? {
            if let Some(from) = from.get(row.campaign.as_str()) {
                let id = crate::message::message_id(&row.campaign, from, &row.address);
                index
                    .by_message_id
                    .insert(id.to_ascii_lowercase(), row.clone());
            }
            index
                .by_address
                .entry(row.address.clone())
                .or_default()
                .push(row);
        }
        Ok(index)
    }

    /// The email a token or Message-ID names.
    fn message(
        &self,
        ledger: &Ledger,
        token: Option<&str>,
        message_id: Option<&str>,
    ) -> Result<Option<EmailRow>, LedgerError> {
        if let Some(t) = token
            && let Some(row) = ledger.email_of_token(t)?
        {
            return Ok(Some(row));
        }
        Ok(message_id.and_then(|m| self.by_message_id.get(&m.to_ascii_lowercase()).cloned()))
    }

    /// An address's email: `Some(Some(row))` when one email holds it, `Some(None)` when
    /// several do, `None` when none does.
    fn by_address(&self, address: &str) -> Option<Option<EmailRow>> {
        match self.by_address.get(address).map(Vec::as_slice) {
            None | Some([]) => None,
            Some([one]) => Some(Some(one.clone())),
            Some(_) => Some(None),
        }
    }

    /// The label `processed_mail` keeps and the effect to record.
    pub fn effect(
        &self,
        ledger: &Ledger,
        class: &Classification,
    ) -> Result<(&'static str, MailEffect), LedgerError> {
        let label = class_of(class);
        let effect = match class {
            Classification::Bounce(b) => {
                let row = self.message(
                    ledger,
                    b.verp_token.as_deref(),
                    b.original_message_id.as_deref(),
                )?;
                let events = match row {
                    Some(row) => {
                        let r = b
                            .recipients
                            .iter()
                            .find(|r| r.address == row.address)
                            .or(b.recipients.first());
                        r.map(|r| event(Some(row.message), &row.address, r))
                            .into_iter()
                            .collect()
                    }
                    None => b
                        .recipients
                        .iter()
                        .filter_map(|r| {
                            let found = self.by_address(&r.address)?;
                            Some(event(found.map(|f| f.message), &r.address, r))
                        })
                        .collect(),
                };
                events_or_nothing(events)
            }
            Classification::Complaint(c) => {
                let row = self.message(
                    ledger,
                    c.verp_token.as_deref(),
                    c.original_message_id.as_deref(),
                )?;
                let found = match (row, &c.recipient) {
                    (Some(row), _) => Some((Some(row.message), row.address)),
                    (None, Some(a)) => self
                        .by_address(a)
                        .map(|f| (f.map(|f| f.message), a.clone())),
                    (None, None) => None,
                };
                events_or_nothing(
                    found
                        .map(|(message, address)| MailEvent {
                            message,
                            address,
                            kind: EventKind::Complaint,
                            status: None,
                            diagnostic: Some(c.feedback_type.clone()),
                        })
                        .into_iter()
                        .collect(),
                )
            }
            Classification::Unsubscribe { token: Some(t), .. }
                if ledger.email_of_token(t)?.is_some() =>
            {
                MailEffect::Unsubscribe { token: t.clone() }
            }
            Classification::Unsubscribe { .. } => MailEffect::Nothing,
            Classification::AutoReply { .. } | Classification::Unrecognised { .. } => {
                return Ok((label, MailEffect::Nothing));
            }
        };
        let label = match (&effect, class) {
            (MailEffect::Nothing, _) => "unmatched",
            _ => label,
        };
        Ok((label, effect))
    }
}

fn events_or_nothing(events: Vec<MailEvent>) -> MailEffect {
    if events.is_empty() {
        MailEffect::Nothing
    } else {
        MailEffect::Events(events)
    }
}

fn event(message: Option<i64>, address: &str, r: &Recipient) -> MailEvent {
    MailEvent {
        message,
        address: address.to_string(),
        kind: match r.severity {
            Severity::Hard => EventKind::Hard,
            Severity::Soft => EventKind::Soft,
            Severity::Policy => EventKind::Policy,
            Severity::OtherPermanent => EventKind::Other,
        },
        status: r.status.clone(),
        diagnostic: r.diagnostic.clone(),
    }
}

/// How the summary names a classification.
fn class_of(class: &Classification) -> &'static str {
    match class {
        Classification::Bounce(_) => "bounce",
        Classification::Complaint(_) => "complaint",
        Classification::Unsubscribe { .. } => "unsubscribe",
        Classification::AutoReply { .. } => "auto-reply",
        Classification::Unrecognised { .. } => "unrecognised",
    }
}
