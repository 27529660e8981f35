//! RFC 3464 delivery status notifications: the `message/delivery-status` part's header blocks
//! (one per message, then one per recipient), read with `mailparse::parse_headers`.

use mailparse::MailHeaderMap;

use super::kinds::{Action, Recipient};
use super::mail::first_address;
use super::status::{best_status, severity};

/// What a delivery-status part says.
#[derive(Debug, Default)]
pub struct Report {
    /// `Reporting-MTA`, its type (`dns;`) dropped.
    pub reporting_mta: Option<String>,
    /// Fields that may hold the envelope sender (`X-Postfix-Sender`, `Original-Envelope-Id`).
    pub sender_fields: Vec<String>,
    /// The recipients that failed or are delayed (delivered, relayed and expanded ones are not
    /// failures and are left out).
    pub recipients: Vec<Recipient>,
    /// How many recipient blocks the part had, failures or not.
    pub blocks: usize,
}

/// Reads a delivery-status body.
pub fn read(body: &str) -> Report {
    let mut report = Report::default();
    for (i, block) in blocks(body).iter().enumerate() {
        let Ok((fields, _)) = mailparse::parse_headers(block.as_bytes()) else {
            continue;
        };
        let get = |name: &str| fields.get_first_value(name).map(|v| v.trim().to_string());
        if let Some(mta) = get("reporting-mta") {
            report.reporting_mta = Some(after_type(&mta).to_string());
        }
        for name in [
            "x-postfix-sender",
            "original-envelope-id",
            "x-original-sender",
        ] {
            report.sender_fields.extend(get(name));
        }
        let (original, fin) = (get("original-recipient"), get("final-recipient"));
        if original.is_none() && fin.is_none() {
            // The per-message block (or a stray one); a recipient block of an Exchange DSN
            // never lacks Final-Recipient.
            if i > 0 && get("action").is_some() {
                report.blocks += 1;
            }
            continue;
        }
        report.blocks += 1;
        let action = match get("action").map(|a| a.to_ascii_lowercase()) {
            Some(a) if a.starts_with("delayed") => Action::Delayed,
            Some(a) if a.starts_with("fail") || a.starts_with("error") => Action::Failed,
            // Delivered, relayed, expanded: not a failure.
            Some(_) => continue,
            // No action: judge by the status class.
            None => match get("status") {
                Some(s) if s.starts_with('4') => Action::Delayed,
                Some(s) if s.starts_with('5') => Action::Failed,
                _ => continue,
            },
        };
        let address = [original.as_deref(), fin.as_deref()]
            .into_iter()
            .flatten()
            .filter(|v| rfc822_type(v))
            .find_map(|v| first_address(after_type(v)));
        let Some(address) = address else { continue };
        let diagnostic = get("diagnostic-code").map(|d| one_line(after_type(&d)));
        let status = best_status(get("status").as_deref(), diagnostic.as_deref());
        let severity = severity(action, status.as_deref(), diagnostic.as_deref());
        report.recipients.push(Recipient {
            address,
            status,
            action,
            diagnostic,
            severity,
        });
    }
    report
}

/// The blank-line-separated header blocks of a delivery-status body.
fn blocks(body: &str) -> Vec<String> {
    let mut out = vec![String::new()];
    for line in body.lines() {
        if line.trim().is_empty() {
            if !out.last().is_some_and(String::is_empty) {
                out.push(String::new());
            }
        } else {
            let last = out.last_mut().expect("never empty");
            last.push_str(line);
            last.push_str("\r\n");
        }
    }
    out.retain(|b| !b.is_empty());
    out
}

/// Whether a recipient field is of type `rfc822` (or has no type, or `<…>` as some write).
fn rfc822_type(value: &str) -> bool {
    match value.split_once(';') {
        Some((kind, _)) => kind.trim().eq_ignore_ascii_case("rfc822"),
        None => true,
    }
}

/// A typed field's value (`rfc822; a@b`, `dns; mx.example`, `smtp; 550 …`) without its type.
fn after_type(value: &str) -> &str {
    match value.split_once(';') {
        Some((kind, rest)) if !kind.contains(' ') => rest.trim(),
        _ => value.trim(),
    }
}

/// Folded text as one line.
pub fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bounce::kinds::Severity;

    #[test]
    fn per_recipient_blocks() {
        let body = "Reporting-MTA: dns; mx.riverside.example\nX-Postfix-Sender: rfc822; \
                    bounces+tok@riverside.example\n\nFinal-Recipient: rfc822; Ann@Example.org\n\
                    Original-Recipient: rfc822;ann@example.org\nAction: failed\nStatus: 5.0.0\n\
                    Diagnostic-Code: smtp; 550 5.1.1 <ann@example.org>:\n  user unknown\n\n\
                    Final-Recipient: rfc822; bob@example.org\nAction: delivered\nStatus: 2.0.0\n";
        let r = read(body);
        assert_eq!(r.reporting_mta.as_deref(), Some("mx.riverside.example"));
        assert_eq!(r.blocks, 2);
        assert_eq!(r.recipients.len(), 1);
        let ann = &r.recipients[0];
        assert_eq!(ann.address, "ann@example.org");
        assert_eq!(ann.status.as_deref(), Some("5.1.1"));
        assert_eq!(ann.severity, Severity::Hard);
        assert_eq!(
            ann.diagnostic.as_deref(),
            Some("550 5.1.1 <ann@example.org>: user unknown")
        );
    }
}
