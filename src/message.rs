//! An email as it goes on the wire: lettre builds the MIME message (multipart/alternative, encoded
//! words, quoted-printable or base64 bodies, lines under 998 octets); this module chooses every
//! header: `From`, `Reply-To`, `To` with the patient's name, `Subject`, a `Message-ID` on the
//! sender's domain, `Date`, `List-Unsubscribe` and `List-Unsubscribe-Post`, and the optional DKIM
//! signature over them.

use std::time::SystemTime;

use lettre::Message;
use lettre::message::header::{ContentTransferEncoding, ContentType, HeaderName, HeaderValue};
use lettre::message::{Body, Mailbox, MultiPart, SinglePart};
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
    let address = email.lettre().clone();
    let name = one_line(&contact.display_name());
    let to = match test_to {
        // A test goes to staff, under its own Message-ID, never the patient's.
        Some(staff) => Mailbox::new(None, staff.clone()),
        None => Mailbox::new(
            (!name.is_empty() && name != contact.id).then_some(name),
            address,
        ),
    };
    // Given, so that lettre does not parse it back out of the headers it just wrote.
    let envelope =
        lettre::address::Envelope::new(Some(settings.from.email.clone()), vec![to.email.clone()])
            .map_err(|e| BuildError(e.to_string()))?;
    let id_key = match test_to {
        Some(staff) => format!("test\0{staff}\0{}", email.normalised()),
        None => email.normalised().to_string(),
    };

    let mut builder = Message::builder()
        .envelope(envelope)
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
                .singlepart(text_part(ContentType::TEXT_PLAIN, &rendered.text))
                .singlepart(text_part(ContentType::TEXT_HTML, &rendered.html)),
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

/// One UTF-8 text part: 7bit when the text needs no encoding, else quoted-printable, or base64
/// when that is shorter (a text mostly outside ASCII).
fn text_part(content_type: ContentType, text: &str) -> SinglePart {
    let (encoded, escaped) = quoted_printable(text);
    let base64_len = text.len().div_ceil(3) * 4 * 78 / 76;
    let builder = SinglePart::builder().header(content_type);
    if !escaped {
        builder.body(Body::dangerous_pre_encoded(
            encoded,
            ContentTransferEncoding::SevenBit,
        ))
    } else if encoded.len() <= base64_len {
        builder.body(Body::dangerous_pre_encoded(
            encoded,
            ContentTransferEncoding::QuotedPrintable,
        ))
    } else {
        builder.body(text.to_string())
    }
}

/// RFC 2045 quoted-printable in one pass, straight into wire form: the text's line breaks (LF or
/// CRLF) become CRLF, no encoded line is over 76 characters, a UTF-8 character is never split
/// across lines, and a space or tab at a line's end is encoded. `escaped` is false when nothing
/// had to be encoded or wrapped: the output is then also valid 7bit text.
pub fn quoted_printable(text: &str) -> (Vec<u8>, bool) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    // Characters per encoded line before the soft break's `=`.
    const WIDTH: usize = 75;
    // Bytes written as they are (a space or tab too, unless it ends a line).
    const PLAIN: [bool; 256] = {
        let mut t = [false; 256];
        let mut b = 33;
        while b <= 126 {
            t[b] = b != b'=' as usize;
            b += 1;
        }
        t[b' ' as usize] = true;
        t[b'\t' as usize] = true;
        t
    };
    let bytes = text.as_bytes();
    let line_end = |at: usize| match bytes.get(at) {
        None | Some(b'\n') => true,
        Some(b'\r') => bytes.get(at + 1) == Some(&b'\n'),
        _ => false,
    };
    let mut out = Vec::with_capacity(bytes.len() + bytes.len() / 4 + 16);
    let mut column = 0;
    let mut escaped = false;
    let mut i = 0;
    while i < bytes.len() {
        // A run of plain bytes, as much of it as fits on the line, copied at once.
        let start = i;
        let limit = bytes.len().min(i + (WIDTH - column));
        while i + 8 <= limit && printable_word(&bytes[i..i + 8]) {
            i += 8;
        }
        while i < limit && PLAIN[usize::from(bytes[i])] {
            i += 1;
        }
        // A space or tab just before a line break is encoded instead (below).
        if i > start && matches!(bytes[i - 1], b' ' | b'\t') && line_end(i) {
            i -= 1;
        }
        out.extend_from_slice(&bytes[start..i]);
        column += i - start;
        if i == bytes.len() {
            break;
        }
        let b = bytes[i];
        if b == b'\n' || (b == b'\r' && bytes.get(i + 1) == Some(&b'\n')) {
            out.extend_from_slice(b"\r\n");
            column = 0;
            i += if b == b'\r' { 2 } else { 1 };
            continue;
        }
        let plain = PLAIN[usize::from(b)] && !(matches!(b, b' ' | b'\t') && line_end(i + 1));
        // A multi-byte character is kept whole on one line.
        let len = match b {
            0xF0.. => 4,
            0xE0.. => 3,
            0xC0.. => 2,
            _ => 1,
        }
        .min(bytes.len() - i);
        let width = if plain { 1 } else { 3 * len };
        if column + width > WIDTH {
            out.extend_from_slice(b"=\r\n");
            column = 0;
            escaped = true;
        }
        if plain {
            out.push(b);
        } else {
            escaped = true;
            for &c in &bytes[i..i + len] {
                out.extend_from_slice(&[b'=', HEX[usize::from(c >> 4)], HEX[usize::from(c & 15)]]);
            }
        }
        column += width;
        i += len;
    }
    (out, escaped)
}

/// Whether 8 bytes are all printable ASCII (`!` to `~`, or a space) other than `=`: a word at a
/// time, the bulk of an HTML part. A tab or any other byte sends the caller to its byte loop.
fn printable_word(eight: &[u8]) -> bool {
    const ONES: u64 = u64::from_ne_bytes([0x01; 8]);
    const HIGHS: u64 = u64::from_ne_bytes([0x80; 8]);
    // Some byte of `x` is zero (exact when no byte of the word is 0x80 or more, checked first).
    let zero = |x: u64| x.wrapping_sub(ONES) & !x & HIGHS != 0;
    let w = u64::from_ne_bytes(eight.try_into().expect("8 bytes"));
    let below_space = w.wrapping_sub(ONES * 0x20) & !w & HIGHS != 0;
    w & HIGHS == 0
        && !below_space
        && !zero(w ^ (ONES * 0x7F))
        && !zero(w ^ (ONES * u64::from(b'=')))
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

#[cfg(test)]
mod tests {
    use super::quoted_printable;

    #[test]
    fn a_word_is_printable_exactly_when_each_of_its_bytes_is() {
        let mut rng = fastrand::Rng::with_seed(2026);
        let edges = [
            0x00, 0x09, 0x1F, 0x20, 0x21, 0x3C, 0x3D, 0x3E, 0x7E, 0x7F, 0x80, 0xC3, 0xFF,
        ];
        for round in 0..200_000 {
            let mut word = [0u8; 8];
            for b in &mut word {
                *b = rng.u8(0x20..=0x7E);
            }
            // Most words get one or two odd bytes, anywhere.
            for _ in 0..round % 3 {
                word[rng.usize(..8)] = edges[rng.usize(..edges.len())];
            }
            let each = word
                .iter()
                .all(|&b| (0x20..=0x7E).contains(&b) && b != b'=');
            assert_eq!(super::printable_word(&word), each, "{word:02x?}");
        }
    }

    /// Random texts of the characters that matter to the encoding round-trip through an
    /// independent decoder, and every encoded line keeps the rules.
    #[test]
    fn quoted_printable_round_trips_and_keeps_the_line_rules() {
        let pieces = [
            "a", "Z", " ", "\t", "=", ".", "\n", "\r\n", "\r", "é", "–", "•", "\u{a0}", "😀",
            "psoas ", "=3D", "\u{1}", "~",
        ];
        let mut rng = fastrand::Rng::with_seed(2026);
        for round in 0..5_000 {
            let len = rng.usize(0..if round % 10 == 0 { 400 } else { 60 });
            let text: String = (0..len)
                .map(|_| pieces[rng.usize(..pieces.len())])
                .collect();
            let (encoded, escaped) = quoted_printable(&text);
            let wire = String::from_utf8(encoded.clone()).expect("ASCII");
            for line in wire.split("\r\n") {
                assert!(line.len() <= 76, "{line:?} of {text:?}");
                assert!(!line.ends_with([' ', '\t']), "{line:?} of {text:?}");
                assert!(line.bytes().all(|b| (32..=126).contains(&b) || b == b'\t'));
                // A soft break never splits a UTF-8 character.
                let piece = line.strip_suffix('=').unwrap_or(line);
                let decoded = quoted_printable_crate::decode(
                    piece,
                    quoted_printable_crate::ParseMode::Strict,
                )
                .expect("each line decodes alone");
                assert!(String::from_utf8(decoded).is_ok(), "{line:?} of {text:?}");
            }
            assert!(!wire.replace("\r\n", "").contains(['\r', '\n']));
            let decoded =
                quoted_printable_crate::decode(&encoded, quoted_printable_crate::ParseMode::Strict)
                    .expect("decodes");
            // Line breaks come back as CRLF; a lone CR is data.
            let expected = text.replace("\r\n", "\n").replace('\n', "\r\n");
            assert_eq!(String::from_utf8(decoded).unwrap(), expected, "{text:?}");
            if !escaped {
                assert_eq!(wire, expected, "7bit output is the text itself");
            }
        }
    }

    #[test]
    fn quoted_printable_known_answers() {
        let qp = |t: &str| String::from_utf8(quoted_printable(t).0).unwrap();
        assert_eq!(qp("Hi Ann,\nsee you"), "Hi Ann,\r\nsee you");
        assert!(!quoted_printable("Hi Ann,\nsee you").1);
        assert_eq!(qp("a = b"), "a =3D b");
        assert_eq!(qp("end \nx\t"), "end=20\r\nx=09");
        assert_eq!(qp("caf\u{e9} \u{2013} ok"), "caf=C3=A9 =E2=80=93 ok");
        let long = "x".repeat(80);
        assert_eq!(
            qp(&long),
            format!("{}=\r\n{}", "x".repeat(75), "x".repeat(5))
        );
        // The euro sign would straddle column 75: it moves to the next line whole.
        let edge = format!("{}\u{20ac}", "x".repeat(70));
        assert_eq!(qp(&edge), format!("{}=\r\n=E2=82=AC", "x".repeat(70)));
    }
}
