//! Feedback-loop complaints in the Abuse Reporting Format (RFC 5965): a `multipart/report;
//! report-type=feedback-report` whose `message/feedback-report` part names the type of
//! complaint, and whose third part returns the message (or its headers).

use mailparse::MailHeaderMap;

use super::envelope::{Verp, original_message_id};
use super::kinds::Complaint;
use super::mail::{Mail, first_address};

/// The complaint in `mail`, if it is one.
pub fn read(mail: &Mail, verp: Option<&Verp>) -> Option<Complaint> {
    let report = mail.feedback_report.as_deref()?;
    let (fields, _) = mailparse::parse_headers(report.as_bytes()).ok()?;
    let get = |name: &str| fields.get_first_value(name).map(|v| v.trim().to_string());
    let feedback_type = get("feedback-type")?.to_ascii_lowercase();
    let recipient = get("original-rcpt-to")
        .and_then(|v| first_address(&v))
        .or_else(|| first_address(mail.returned_header("to")?));
    let source = get("reporting-mta")
        .map(|m| {
            m.split_once(';')
                .map_or(m.clone(), |(_, h)| h.trim().to_string())
        })
        .or_else(|| get("user-agent"))
        .or_else(|| first_address(mail.header("from")?));
    let envelope_from = get("original-mail-from");
    let verp_token = verp.and_then(|v| {
        let from_report = envelope_from.as_deref().and_then(|f| v.token_in(f));
        from_report
            .or_else(|| v.token_in(mail.returned_header("return-path")?))
            .or_else(|| v.token_in(mail.returned_headers.as_deref()?))
    });
    Some(Complaint {
        recipient,
        feedback_type,
        original_message_id: original_message_id(mail),
        verp_token,
        source,
    })
}
