//! What comes back by mail, read: one message from the bounce or unsubscribe mailbox in, a
//! [`Classification`] out. Pure (bytes in, a value out; no I/O), for `outreach bounces` to
//! act on (issue 19).
//!
//! In order: a feedback-loop complaint (ARF, `arf.rs`); a standard delivery status
//! notification (RFC 3464, `dsn.rs`); then, for a message that is not plainly a mail system's,
//! an automatic reply or an opt-out sent to the unsubscribe mailto (`reply.rs`); then the text
//! layouts of MTAs that send no report part (`text.rs`). What none of them reads is
//! `Unrecognised`, with the reason, rather than guessed. Each failed recipient's severity
//! follows the rules (`status.rs`); the VERP token and the returned `Message-ID` tie a
//! report to its message (`envelope.rs`). `mail.rs` takes the message apart with `mailparse`.

mod arf;
mod dsn;
mod envelope;
mod kinds;
mod mail;
mod reply;
mod status;
mod text;

pub use kinds::{Action, Bounce, Classification, Complaint, Context, Format, Recipient, Severity};

/// Reads one raw message (RFC 5322 bytes, as a mailbox holds them).
pub fn classify(raw: &[u8], ctx: &Context<'_>) -> Classification {
    let mail = match mail::read(raw) {
        Ok(mail) => mail,
        Err(why) => return Classification::Unrecognised { why },
    };
    let verp = ctx.bounce_pattern.and_then(envelope::Verp::new);
    if let Some(complaint) = arf::read(&mail, verp.as_ref()) {
        return Classification::Complaint(complaint);
    }
    let report = mail.delivery_status.as_deref().map(dsn::read);
    let bounce = |recipients, format, reporting_mta, extra: &[String]| {
        let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
        Classification::Bounce(Bounce {
            recipients,
            verp_token: verp.as_ref().and_then(|v| v.find(&mail, &extra)),
            original_message_id: envelope::original_message_id(&mail),
            reporting_mta,
            format,
        })
    };
    if let Some(report) = &report
        && !report.recipients.is_empty()
    {
        let recipients = report.recipients.clone();
        return bounce(
            recipients,
            Format::Dsn,
            report.reporting_mta.clone(),
            &report.sender_fields,
        );
    }
    let bouncy = reply::looks_like_bounce(&mail);
    if !bouncy && reply::is_auto_reply(&mail) {
        return Classification::AutoReply {
            from: reply::sender(&mail),
        };
    }
    if !bouncy && reply::to_unsubscribe(&mail, ctx.unsubscribe_mailto) {
        return Classification::Unsubscribe {
            token: reply::unsubscribe_token(&mail),
            from: reply::sender(&mail),
        };
    }
    if let Some(found) = text::read(&mail, bouncy) {
        let mta = report
            .as_ref()
            .and_then(|r| r.reporting_mta.clone())
            .or(found.reporting_mta);
        let extra = report.map(|r| r.sender_fields).unwrap_or_default();
        return bounce(found.recipients, found.format, mta, &extra);
    }
    let why = match report {
        Some(r) if r.blocks > 0 => "a delivery report with no failed or delayed recipient",
        Some(_) => "a delivery report whose recipients could not be read",
        None if bouncy => "looks like a bounce, but names no recipient in a layout known here",
        None => "not a bounce, complaint, automatic reply or message to the unsubscribe address",
    };
    Classification::Unrecognised {
        why: why.to_string(),
    }
}
