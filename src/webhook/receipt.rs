//! What every provider's webhooks come down to: a [`Receipt`] (what the carrier did with one
//! message, or one part of it) and an [`Inbound`] SMS (a patient's reply). Twilio, Vonage and
//! the generic gateways each parse into these, so what is recorded does not depend on who sent it.

/// Where a message is in its delivery, as far as the carrier has said.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryState {
    /// The carrier says the handset has it.
    Delivered,
    /// The carrier failed it after the provider accepted it (Twilio's `failed` and
    /// `undelivered`; Vonage's `failed`, `expired` and `rejected`).
    Undelivered,
    /// Not final yet (queued, sent, accepted, buffered, …), or a status the carrier left
    /// undocumented (Vonage's `unknown`): a later receipt may still settle it.
    Pending,
}

impl DeliveryState {
    /// Whether no later receipt is expected to change it.
    pub fn is_final(self) -> bool {
        !matches!(self, DeliveryState::Pending)
    }

    /// The word the ledger records it as.
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryState::Delivered => "delivered",
            DeliveryState::Undelivered => "undelivered",
            DeliveryState::Pending => "pending",
        }
    }
}

/// One delivery receipt: a message (or, for Vonage, one part of a message) by the provider's id.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Receipt {
    /// The provider's id of what it reports on: Twilio's `MessageSid`, Vonage's `messageId`
    /// (one per part), a generic gateway's id. The ledger matches it to the message it sent.
    pub provider_id: String,
    /// The state the provider's status means.
    pub state: DeliveryState,
    /// The provider's own word for it, as sent (`delivered`, `undelivered`, `expired`, …).
    pub status: String,
    /// The carrier's or provider's error code (Twilio `ErrorCode`, Vonage `err-code`); `None`
    /// when absent or `0` (no error).
    pub error_code: Option<String>,
    /// When the carrier settled it, as the carrier wrote it: Twilio's `RawDlrDoneDate` and
    /// Vonage's `scts` are `YYMMDDhhmm` in a time zone neither documents, so it is kept as text
    /// rather than turned into an instant it may not be.
    pub carrier_time: Option<String>,
    /// The recipient as the provider wrote it (Twilio `To`, Vonage `msisdn`), if given.
    pub recipient: Option<String>,
}

/// An SMS a patient sent to the clinic's number.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Inbound {
    /// The patient's number as the provider wrote it (Twilio `From`, Vonage `msisdn`).
    pub from: String,
    /// The clinic's number it was sent to.
    pub to: String,
    /// The text (for a part of a longer message, that part's text).
    pub body: String,
    /// The provider's id of the message (Twilio `MessageSid`, Vonage `messageId`).
    pub provider_id: String,
    /// Set when this is one part of a message the provider delivers in parts (Vonage's
    /// `concat`); Twilio joins parts itself.
    pub part: Option<Part>,
}

/// Which part of a multipart inbound message this is.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Part {
    /// The same for every part of one message (Vonage `concat-ref`).
    pub reference: String,
    /// This part's number, from 1 (Vonage `concat-part`).
    pub number: u32,
    /// How many parts the message has (Vonage `concat-total`).
    pub total: u32,
}

/// The state of a whole message from the states of its parts (`None`: no receipt for that part
/// yet). Delivered only when every part is; undelivered as soon as any part is, since the
/// message can no longer arrive whole; otherwise pending. No parts at all is pending.
pub fn whole_message(parts: &[Option<DeliveryState>]) -> DeliveryState {
    if parts.contains(&Some(DeliveryState::Undelivered)) {
        DeliveryState::Undelivered
    } else if !parts.is_empty() && parts.iter().all(|p| *p == Some(DeliveryState::Delivered)) {
        DeliveryState::Delivered
    } else {
        DeliveryState::Pending
    }
}

/// The text of a multipart inbound message once every part has arrived: the parts' bodies in
/// part order. `None` while a part is missing, or when the parts do not belong together (another
/// reference, a different total, a number out of range, a number twice).
pub fn join_parts(parts: &[Inbound]) -> Option<String> {
    let first = parts.first()?.part.as_ref()?;
    let total = usize::try_from(first.total).ok()?;
    let mut slots: Vec<Option<&str>> = vec![None; total];
    for inbound in parts {
        let part = inbound.part.as_ref()?;
        if part.reference != first.reference || part.total != first.total || part.number == 0 {
            return None;
        }
        let slot = slots.get_mut(usize::try_from(part.number).ok()? - 1)?;
        if slot.replace(&inbound.body).is_some() {
            return None;
        }
    }
    slots
        .into_iter()
        .collect::<Option<Vec<_>>>()
        .map(|b| b.concat())
}

/// An error code as recorded: `None` for absent, empty or `0` (which providers send for "no
/// error").
pub(crate) fn error_code(raw: Option<&str>) -> Option<String> {
    raw.map(str::trim)
        .filter(|c| !c.is_empty() && *c != "0")
        .map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::DeliveryState::{Delivered, Pending, Undelivered};
    use super::*;

    #[test]
    fn a_message_is_delivered_only_when_every_part_is() {
        assert_eq!(
            whole_message(&[Some(Delivered), Some(Delivered)]),
            Delivered
        );
        assert_eq!(whole_message(&[Some(Delivered), None]), Pending);
        assert_eq!(whole_message(&[Some(Delivered), Some(Pending)]), Pending);
        assert_eq!(
            whole_message(&[Some(Delivered), Some(Undelivered)]),
            Undelivered
        );
        assert_eq!(whole_message(&[None, Some(Undelivered)]), Undelivered);
        assert_eq!(whole_message(&[]), Pending);
    }

    fn part(number: u32, total: u32, body: &str) -> Inbound {
        Inbound {
            from: "14155550100".into(),
            to: "13125550100".into(),
            body: body.into(),
            provider_id: format!("id-{number}"),
            part: Some(Part {
                reference: "ref-1".into(),
                number,
                total,
            }),
        }
    }

    #[test]
    fn parts_join_in_order_once_all_have_arrived() {
        let (a, b, c) = (part(1, 3, "Ple"), part(2, 3, "ase "), part(3, 3, "stop"));
        assert_eq!(
            join_parts(&[c.clone(), a.clone(), b.clone()]).as_deref(),
            Some("Please stop")
        );
        assert_eq!(join_parts(&[a.clone(), c.clone()]), None);
        assert_eq!(join_parts(&[a.clone(), a.clone(), c.clone()]), None);
        assert_eq!(join_parts(&[a.clone(), b, part(4, 3, "!")]), None);
        assert_eq!(join_parts(&[a, part(2, 2, "x")]), None);
    }

    #[test]
    fn zero_means_no_error() {
        assert_eq!(error_code(Some("0")), None);
        assert_eq!(error_code(Some("")), None);
        assert_eq!(error_code(Some("30003")).as_deref(), Some("30003"));
    }
}
