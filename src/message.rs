//! An email as it goes on the wire: lettre builds the MIME message (multipart/alternative, encoded
//! words, quoted-printable or base64 bodies, lines under 998 octets); this module chooses every
//! header: `From`, `Reply-To`, `To` with the patient's name, `Subject`, a `Message-ID` on the
//! sender's domain, `Date`, `List-Unsubscribe` and `List-Unsubscribe-Post`, and the optional DKIM
//! signature over them.

use std::time::SystemTime;

use lettre::Message;
use lettre::message::header::{HeaderName, HeaderValue};
use lettre::message::{Mailbox, MultiPart, SinglePart};
use sha2::{Digest, Sha256};

use crate::config::{Campaign, EmailSettings};
use crate::contacts::Contact;
use crate::templates::{RenderedEmail, one_line};

/// A message that could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot build the email: {0}")]
pub struct BuildError(pub String);

/// The unsubscribe URL of one recipient: the campaign's template with `{{token}}` filled in.
pub fn unsubscribe_url(settings: &EmailSettings, token: &str) -> String {
    settings.unsubscribe_url.replace("{{token}}", token)
}

/// A `Message-ID` that is the same for the same campaign and recipient, so a message resent
/// after an unknown outcome can be recognised as the same one by the receiving side.
pub fn message_id(campaign_id: &str, from: &Mailbox, normalised_address: &str) -> String {
    let digest = Sha256::digest(format!("{campaign_id}\0{normalised_address}"));
    let local = data_encoding::BASE32_NOPAD
        .encode(&digest[..15])
        .to_ascii_lowercase();
    format!("<{campaign_id}.{local}@{}>", from.email.domain())
}

/// Builds the message for `contact` from its rendered parts.
pub fn build_email(
    campaign: &Campaign,
    settings: &EmailSettings,
    contact: &Contact,
    rendered: &RenderedEmail,
    token: &str,
    date: SystemTime,
    test_to: Option<&lettre::Address>,
) -> Result<Message, BuildError> {
    let email = contact
        .email
        .as_ref()
        .ok_or_else(|| BuildError("the contact has no valid email address".into()))?;
    let address: lettre::Address = email
        .written
        .parse()
        .map_err(|e| BuildError(format!("{e}")))?;
    let name = one_line(&contact.display_name());
    let to = match test_to {
        // A test goes to staff, under its own Message-ID, never the patient's.
        Some(staff) => Mailbox::new(None, staff.clone()),
        None => Mailbox::new(
            (!name.is_empty() && name != contact.id).then_some(name),
            address,
        ),
    };
    let id_key = match test_to {
        Some(staff) => format!("test\0{staff}\0{}", email.normalised),
        None => email.normalised.clone(),
    };

    let mut builder = Message::builder()
        .from(settings.from.clone())
        .to(to)
        .subject(one_line(&rendered.subject))
        .date(date)
        .message_id(Some(message_id(&campaign.id, &settings.from, &id_key)));
    if let Some(reply_to) = &settings.reply_to {
        builder = builder.reply_to(reply_to.clone());
    }
    // The boundary follows from the message's identity, so the same message is the same bytes
    // (the file transport writes exactly what SMTP carries, run after run).
    let boundary = {
        let digest = Sha256::digest(format!("boundary\0{}\0{id_key}", campaign.id));
        format!("=_{}", data_encoding::BASE32_NOPAD.encode(&digest[..20]))
    };
    let mut message = builder
        .multipart(
            MultiPart::alternative()
                .boundary(boundary)
                .singlepart(SinglePart::plain(rendered.text.clone()))
                .singlepart(SinglePart::html(rendered.html.clone())),
        )
        .map_err(|e| BuildError(e.to_string()))?;

    let url = unsubscribe_url(settings, token);
    let mut targets = vec![format!("<{url}>")];
    if let Some(mailto) = &settings.unsubscribe_mailto {
        targets.push(format!("<mailto:{mailto}?subject=unsubscribe%20{token}>"));
    }
    let headers = message.headers_mut();
    headers.insert_raw(HeaderValue::new(
        HeaderName::new_from_ascii_str("List-Unsubscribe"),
        targets.join(", "),
    ));
    if url.starts_with("https://") {
        // RFC 8058 one-click: only meaningful (and only allowed) for an https URL.
        headers.insert_raw(HeaderValue::new(
            HeaderName::new_from_ascii_str("List-Unsubscribe-Post"),
            "List-Unsubscribe=One-Click".to_string(),
        ));
    }
    Ok(message)
}

/// The message as it goes on the wire: formatted and, with `[email.dkim]`, signed (`t=` is the
/// message's date, so the bytes are the same whichever transport carries them).
pub fn wire(settings: &EmailSettings, message: &Message, date: SystemTime) -> Vec<u8> {
    let mut formatted = message.formatted();
    // A message is lines, each ending in CRLF: what a server stores from DATA.
    if !formatted.ends_with(b"\r\n") {
        formatted.extend_from_slice(b"\r\n");
    }
    match &settings.dkim {
        Some(dkim) => dkim.sign(&formatted, date),
        None => formatted,
    }
}

/// The header block of a formatted message (everything before the first empty line).
pub fn header_block(formatted: &[u8]) -> &[u8] {
    formatted
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| &formatted[..i + 2])
        .unwrap_or(formatted)
}
