//! What an SMTP reply means for the message it answers: sent, worth another try (4xx, a
//! connection lost before the message was complete), refused for this recipient (5xx), or
//! fatal to the run (authentication wanted; the relay's policy or the sender refused before any
//! recipient went through). Replies quote the recipient, so their text is masked before it
//! reaches a log or the ledger.

use lettre::transport::smtp::Error as LettreError;
use lettre::transport::smtp::response::Response;

use crate::transport::Delivery;

/// An error reply to RCPT, DATA or the message: 4xx is worth another try; 5xx is this
/// recipient's permanent failure. Except, before the server has taken any recipient this
/// run (`relaying` false), when its enhanced status code (RFC 3463) says the relay's policy, the protocol or the
/// sender (relay access denied, a sender or HELO the relay refuses): every message would
/// meet that, so the run stops, nobody marked failed. (Postfix reports its client, HELO and
/// sender restrictions at RCPT, so a relay not set up for this host looks like a refused
/// recipient unless the code is read.) Once a recipient went through, the same codes are
/// one recipient's (`check_recipient_access`, a content filter): stopping there would stop
/// every later run at that patient.
pub(super) fn refusal(e: &LettreError, relaying: bool) -> Delivery {
    if is_auth_reply(e) {
        Delivery::Fatal {
            error: format!("the server wants authentication: {}", reply_text(e)),
        }
    } else if is_transient(e) {
        transient(e)
    } else if !relaying && enhanced_code(&reply_text(e)).is_some_and(not_the_recipients) {
        Delivery::Fatal {
            error: format!(
                "the server refused: {} (a refusal of the relay, the sender or the message, \
                 not of the patient's address)",
                reply_text(e)
            ),
        }
    } else {
        Delivery::Permanent {
            error: reply_text(e),
        }
    }
}

/// A connection lost or timed out before the message was complete: nothing was delivered.
pub(super) fn lost(error: String) -> Delivery {
    Delivery::Transient {
        error,
        retry_after: None,
    }
}

pub(super) fn transient(e: &LettreError) -> Delivery {
    Delivery::Transient {
        error: reply_text(e),
        retry_after: None,
    }
}

/// The enhanced status code after a reply's code (`550 5.1.1 …` → `(5, 1, 1)`), if it has one.
fn enhanced_code(reply: &str) -> Option<(u16, u16, u16)> {
    let token = reply.split_whitespace().nth(1)?;
    let mut parts = token.split('.').map(|p| p.parse::<u16>().ok());
    let code = (parts.next()??, parts.next()??, parts.next()??);
    (parts.next().is_none() && matches!(code.0, 2 | 4 | 5)).then_some(code)
}

/// Whether an enhanced status code says the refusal is not about the recipient (RFC 3463):
/// security or policy (X.7.x: relay access denied, sender not allowed, authentication), the
/// protocol (X.5.x: a HELO refused) or the sender's address (X.1.7, X.1.8). The others (the
/// recipient's address or mailbox, X.1.x and X.2.x; the mail system, X.3.x; routing, X.4.x;
/// content, X.6.x; undefined, X.0.0) stay the recipient's.
fn not_the_recipients((_, subject, detail): (u16, u16, u16)) -> bool {
    matches!((subject, detail), (7, _) | (5, _) | (1, 7 | 8))
}

/// 421: the server is closing the session, as Postfix does once a session sat idle past its
/// timeout. To the first command on a reused session, it means the session was stale, not that
/// the message was refused.
pub(super) fn is_closing(e: &LettreError) -> bool {
    e.status().is_some_and(|c| c.to_string() == "421")
}

pub(super) fn is_transient(e: &LettreError) -> bool {
    e.is_transient()
}

/// 530 (authentication required), 534, 535 (credentials rejected), 538.
fn is_auth_reply(e: &LettreError) -> bool {
    e.status()
        .is_some_and(|c| matches!(c.to_string().as_str(), "530" | "534" | "535" | "538"))
}

/// `550 5.1.1 <…>: Recipient address rejected` from lettre's error text.
pub(super) fn reply_text(e: &LettreError) -> String {
    let text = e.to_string();
    // lettre writes "permanent error (550): …"; keep the server's words with the code first.
    match (e.status(), text.split_once("): ")) {
        (Some(code), Some((_, rest))) => format!("{code} {}", rest.trim()),
        (Some(code), None) => format!("{code} {text}"),
        (None, _) => text,
    }
}

pub(super) fn first_digit(r: &Response) -> u8 {
    r.code().to_string().as_bytes()[0] - b'0'
}

/// `250 2.0.0 Ok: queued as 4XyZ`: the reply that proves the message was taken.
pub(super) fn response_text(r: &Response) -> String {
    let lines: Vec<&str> = r.message().collect();
    format!("{} {}", r.code(), lines.join(" "))
        .trim()
        .to_string()
}

/// `delivery` with every mention of `address` (any case) masked.
pub(super) fn masked(delivery: Delivery, address: &str) -> Delivery {
    let hide = |error: String| {
        let lower = error.to_lowercase();
        let needle = address.to_lowercase();
        if needle.is_empty() || !lower.contains(&needle) {
            return error;
        }
        let mask = crate::model::mask(crate::model::Channel::Email, address);
        let mut out = String::with_capacity(error.len());
        let mut rest = 0;
        // Lowercasing ASCII keeps byte offsets; a non-ASCII reply is masked as a whole.
        if lower.len() != error.len() {
            return lower.replace(&needle, &mask);
        }
        for (i, _) in lower.match_indices(&needle) {
            out.push_str(&error[rest..i]);
            out.push_str(&mask);
            rest = i + needle.len();
        }
        out.push_str(&error[rest..]);
        out
    };
    delivery.map_error(hide)
}

#[cfg(test)]
mod tests {
    use super::{enhanced_code, not_the_recipients};

    #[test]
    fn enhanced_codes_tell_the_recipients_refusals_from_the_relays() {
        let relays = |reply: &str| enhanced_code(reply).map(not_the_recipients);
        for reply in [
            "550 5.1.1 <a@b>: Recipient address rejected",
            "552 5.2.2 Mailbox full",
            "550 5.1.10 RESOLVER.ADR.RecipientNotFound",
            "554 5.4.4 Unable to route",
            "500 5.3.0 Error: command failed",
        ] {
            assert_eq!(relays(reply), Some(false), "{reply}");
        }
        for reply in [
            "554 5.7.1 <a@b>: Relay access denied",
            "553 5.7.1 <s@c>: Sender address rejected",
            "504 5.5.2 <vm>: Helo command rejected",
            "550 5.1.8 Bad sender's system address",
        ] {
            assert_eq!(relays(reply), Some(true), "{reply}");
        }
        assert_eq!(relays("500 Error: command failed"), None);
        assert_eq!(relays("550 5.1 odd"), None);
    }

    #[test]
    fn replies_quoting_the_recipient_are_masked() {
        use super::{Delivery, masked};
        let d = masked(
            Delivery::Permanent {
                error: "550 5.1.1 <Ann.Lee@Example.com>: Recipient address rejected".into(),
            },
            "ann.lee@example.com",
        );
        assert_eq!(
            d,
            Delivery::Permanent {
                error: "550 5.1.1 <a***@example.com>: Recipient address rejected".into()
            }
        );
    }
}
