//! Messages from people (or their mail programs) rather than mail systems: out-of-office and
//! vacation replies, opt-outs sent to the unsubscribe mailto, and the signs that a message is
//! instead a mail system's bounce.

use std::sync::LazyLock;

use regex::Regex;

use super::mail::{Mail, addresses, first_address, is_system_address};

/// Subjects of automatic replies, in the languages clinics' patients write in most.
static AUTO_SUBJECT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?i)^\s*(?:out of (?:the )?office|automatic reply|auto(?:matic)?[- ]?(?:reply|response|antwort)|autoreply|auto:|vacation|on vacation|away from (?:the )?office|abwesenheitsnotiz|abwesend|r[ée]ponse automatique|absence|respuesta autom[áa]tica|fuera de la oficina|risposta automatica)",
    )
    .expect("valid regex")
});

/// Subjects of bounces.
static BOUNCE_SUBJECT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?i)undeliver|returned mail|return(?:ed)? to sender|delivery (?:status )?notification|failure notice|delivery fail|mail delivery|could not be delivered|couldn't be delivered|non[- ]?delivery|delivery problem|delivery report|warning: could not|delayed mail|mail system error|failed mail|not delivered|delivery error|message status|bounce",
    )
    .expect("valid regex")
});

/// An unsubscribe token as `token::TokenKey::token` writes it: 26 characters of `[a-z2-7]`.
static TOKEN: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)(?:^|[^A-Za-z0-9])([a-z2-7]{26})(?:$|[^A-Za-z0-9])").expect("valid regex")
});

/// Whether the message is plainly a mail system's report: a report type, a mail system as
/// sender, or a bounce subject on a message with the null return path.
pub fn looks_like_bounce(mail: &Mail) -> bool {
    let from = mail.header("from").unwrap_or_default();
    let from_system = first_address(from).is_some_and(|a| is_system_address(&a))
        || from.to_ascii_lowercase().contains("mail delivery");
    let subject = mail.header("subject").unwrap_or_default();
    mail.mime_type == "multipart/report" || from_system || BOUNCE_SUBJECT.is_match(subject)
}

/// Whether the message is an automatic reply: `Auto-Submitted` (RFC 3834) other than `no`,
/// the de-facto `X-Autoreply`/`X-Autorespond` fields, `Precedence: auto_reply`, or an
/// out-of-office subject (some vacation programs set no field at all).
pub fn is_auto_reply(mail: &Mail) -> bool {
    let field = |name: &str| mail.header(name).map(|v| v.trim().to_ascii_lowercase());
    let submitted = field("auto-submitted").is_some_and(|v| !v.is_empty() && v != "no");
    let flagged = ["x-autoreply", "x-autorespond", "x-autoresponse"]
        .iter()
        .any(|h| field(h).is_some_and(|v| v != "no"));
    let precedence = field("precedence").is_some_and(|v| v == "auto_reply");
    let oof = mail.header("x-ms-exchange-inbox-rules-loop").is_some()
        && field("x-auto-response-suppress").is_some();
    submitted
        || flagged
        || precedence
        || oof
        || AUTO_SUBJECT.is_match(mail.header("subject").unwrap_or_default())
}

/// Whether the message was sent to one of the unsubscribe mailto addresses.
pub fn to_unsubscribe(mail: &Mail, mailto: &[String]) -> bool {
    let wanted: Vec<String> = mailto
        .iter()
        .map(|m| m.trim().trim_start_matches("mailto:").to_ascii_lowercase())
        .collect();
    ["to", "cc", "delivered-to", "x-original-to", "envelope-to"]
        .iter()
        .flat_map(|h| mail.headers(h))
        .flat_map(addresses)
        .any(|a| wanted.contains(&a))
}

/// The unsubscribe token in the subject (where the mailto link puts it), else in the body.
pub fn unsubscribe_token(mail: &Mail) -> Option<String> {
    let subject = mail.header("subject").unwrap_or_default();
    let in_text = |t: &str| Some(TOKEN.captures(t)?[1].to_ascii_lowercase());
    in_text(subject).or_else(|| mail.texts.iter().find_map(|t| in_text(t)))
}

/// The sender, lowercased.
pub fn sender(mail: &Mail) -> Option<String> {
    first_address(mail.header("from")?)
}
