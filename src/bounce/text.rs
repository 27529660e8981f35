//! Bounces without a delivery-status part, read from their text: the layouts of qmail,
//! Postfix, Exim, Exchange, Gmail and Yahoo, Exim's `X-Failed-Recipients`, and, for a message
//! that is plainly a bounce, addresses near the usual failure wordings. Each layout is a
//! `Section`: a line that opens the list of recipients, the line that names one, the line
//! that closes the list.

use std::collections::BTreeSet;
use std::sync::LazyLock;

use regex::Regex;

use super::dsn::one_line;
use super::kinds::{Action, Format, Recipient};
use super::mail::{Mail, addresses, is_system_address};
use super::status::{best_status, says_no_such_mailbox, severity};

/// One MTA's layout.
struct Section {
    format: Format,
    /// A line that opens the recipients (it may name one itself).
    start: Regex,
    /// A line that names a recipient: group 1 the address, group 2 (optional) the reason.
    address: Regex,
    /// A line after which no recipient is named (the returned message follows).
    end: Regex,
    /// Whether the layout reports a delay, not a failure.
    delayed: bool,
}

fn re(pattern: &str) -> Regex {
    Regex::new(pattern).expect("valid regex")
}

/// The end of the report's own text in most layouts: the returned message follows.
const RETURNED: &str = r"(?i)^\s*(?:-{2,}.*(?:original|returned|copy|below|header|follows|forwarded|transcript|session|undelivered)|(?:original message|returned mail|message text|message headers?|original message headers) (?:follows|details)|return-path:|received:\s|\*+\s*end of message)";

/// The layouts, most distinctive first.
static SECTIONS: LazyLock<Vec<Section>> = LazyLock::new(|| {
    let bare = r"^\s*[<'\x22]?([^\s<>'\x22@]+@[^\s<>'\x22@:]+)[>'\x22]?:?(?:\s+(.*))?$";
    vec![
        Section {
            format: Format::Qmail,
            start: re(
                r"(?i)^\s*(?:Hi\. This is the qmail|Hi\. This is the|Hi\. The MTA program at|This is the mail delivery agent at|We're sorry\. There's a problem with the e-mail address)",
            ),
            address: re(r"^\s*<([^>\s]+@[^>\s]+)>:?\s*(.*)$"),
            end: re(r"^\s*-{2,}"),
            delayed: false,
        },
        Section {
            format: Format::PostfixPlain,
            start: re(
                r"(?i)This is the (?:bns )?(?:postfix program|mail system|smtp_gateway|keftamail program) at",
            ),
            address: re(r"^\s*<([^>\s]+@[^>\s]+)>(?:\s*\(expanded from <([^>\s]+)>\))?:\s*(.*)$"),
            end: re(RETURNED),
            delayed: false,
        },
        Section {
            format: Format::Exim,
            start: re(
                r"(?i)could not be delivered to one or more of its|The following address(?:\(es\))? failed:",
            ),
            address: re(r"^\s+([^\s<>@]+@[^\s<>@:]+?)\s*(?:<[^>]*>)?:?\s*$"),
            end: re(r"(?i)^\s*-{4,}|^\s*Reporting-MTA:"),
            delayed: false,
        },
        Section {
            format: Format::Exim,
            start: re(
                r"(?i)has not yet been delivered to one or more of its recipients|address(?:es)? to which the message has not yet been delivered",
            ),
            address: re(r"^\s+([^\s<>@]+@[^\s<>@:]+?)\s*(?:<[^>]*>)?:?\s*$"),
            end: re(r"(?i)^\s*-{4,}|No action is required"),
            delayed: true,
        },
        Section {
            format: Format::Exchange,
            start: re(
                r"(?i)did not reach (?:some or all of )?the following recipient|following recipient\(s\) (?:could not|cannot) be reached|Delivery has failed to these recipients or groups",
            ),
            address: re(
                r"^\s*(?:.*SMTP=([^;\s]+);|'?([^\s@'<>]+@[^\s@'<>]+?)'?\s+on\s|'?([^\s@'<>()]+@[^\s@'<>()]+?)'?\s*(?:\([^)]*\))?\s*$)",
            ),
            end: re(
                r"(?i)MSEXCH:|Diagnostic information for administrators|Original message headers|^\s*Reporting-MTA",
            ),
            delayed: false,
        },
        Section {
            format: Format::Gmail,
            start: re(
                r"(?i)Delivery to the following recipients? failed|Delivery to the following recipients? was aborted|Delivery to these recipients or groups failed",
            ),
            address: re(bare),
            end: re(r"(?i)Technical details|^\s*-{3,}\s*Original message"),
            delayed: false,
        },
        Section {
            format: Format::Gmail,
            start: re(r"(?i)Delivery to the following recipients? has been delayed"),
            address: re(bare),
            end: re(r"(?i)Message will be retried|Technical details|^\s*-{3,}"),
            delayed: true,
        },
        Section {
            format: Format::Yahoo,
            start: re(
                r"(?i)unable to deliver your message to the following address|Unable to deliver message to the following address|^\s*Message from yahoo\.",
            ),
            address: re(r"^\s*<([^>\s]+@[^>\s]+)>:\s*(.*)$"),
            end: re(
                r"(?i)^\s*-{3}\s*(?:Original message follows|Below this line)|Forwarded message",
            ),
            delayed: false,
        },
    ]
});

/// A line that opens the recipients of a bounce of another MTA: the usual failure wordings.
static GENERIC_START: LazyLock<Regex> = LazyLock::new(|| {
    re(r"(?ix)
        (?:could\s+not|couldn't|cannot|can't|was\s+not|wasn't|unable\s+to|not)\s+(?:be\s+)?deliver
        | undeliverable | deli[vr]e?ry\s+(?:has\s+)?failed | delivery\s+failure
        | failed\s+(?:permanently|recipient|addresses|address) | permanent\s+(?:fatal\s+)?error
        | following\s+(?:addresses|recipients?|address(?:\(es\))?|user)\s+(?:had|failed|could|did|was|were|is)
        | did\s+not\s+reach | delivery\s+to\s+the\s+following | invalid\s+final\s+delivery
        | user\s+unknown | no\s+such\s+user | unknown\s+user | mailbox\s+(?:is\s+)?full | over\s+quota
        | message\s+(?:was\s+)?(?:rejected|bounced|undelivered) | failed\s+addresses\s+follow
        | undeliverable\s+address | intended\s+recipient | error-for:")
});

/// Wordings that make a generic report a warning, not a failure.
static WARNING: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"(?i)THIS IS A WARNING ONLY|has not yet been delivered|has been delayed|will (?:continue to )?(?:be )?retr|delivery attempts will continue|has been postponed|advisory-only|not (?:yet )?been delivered.{0,40}(?:hours|days)|just a warning",
    )
});

/// A reason line: a status code or the server's refusal.
static REASON: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"(?i)\b[45][0-9][0-9]\b|unknown|no such|not exist|rejected|refused|invalid|full|quota|failed|error|unavailable|disabled|denied",
    )
});

/// A host named by the report's opening line.
static HOST: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"(?i)(?:at host|program at|system at|agent at|deliver program at|server at)\s+([A-Za-z0-9][A-Za-z0-9.-]*[A-Za-z0-9])",
    )
});

/// What a text report says: how it was read, its recipients, its host.
pub struct Found {
    pub format: Format,
    pub recipients: Vec<Recipient>,
    pub reporting_mta: Option<String>,
}

/// Reads a text report. `bouncy` says whether the message is plainly a bounce (from a mail
/// system, a bounce subject): only then are generic wordings trusted.
pub fn read(mail: &Mail, bouncy: bool) -> Option<Found> {
    let text = mail.text();
    let lines: Vec<&str> = text.lines().collect();
    let host = HOST
        .captures(&text)
        .map(|c| c[1].trim_end_matches('.').to_ascii_lowercase());
    let found = |format, recipients: Vec<Recipient>| {
        (!recipients.is_empty()).then(|| Found {
            format,
            recipients,
            reporting_mta: host.clone(),
        })
    };
    let senders = senders(mail);
    for section in SECTIONS.iter() {
        let listed = section_recipients(section, &lines);
        if let Some(f) = found(section.format, listed) {
            return Some(f);
        }
    }
    let failed: Vec<String> = mail
        .headers("x-failed-recipients")
        .flat_map(addresses)
        .collect();
    if let Some(f) = found(Format::Exim, from_header(&failed, &lines)) {
        return Some(f);
    }
    if bouncy {
        let delayed = WARNING.is_match(&text);
        return found(Format::Generic, generic(&lines, &senders, delayed));
    }
    None
}

/// Addresses that are the report's sender or ours, never a failed recipient.
fn senders(mail: &Mail) -> BTreeSet<String> {
    let ours = [
        "to",
        "from",
        "return-path",
        "sender",
        "reply-to",
        "errors-to",
        "delivered-to",
    ];
    let mut set: BTreeSet<String> = ours
        .iter()
        .flat_map(|h| mail.headers(h))
        .flat_map(addresses)
        .collect();
    for name in ["from", "return-path", "sender"] {
        if let Some(v) = mail.returned_header(name) {
            set.extend(addresses(v));
        }
    }
    set
}

/// The recipients one layout names in `lines` (the layout is exact enough that an address it
/// names is a recipient even when it is also the sender's: a test sent to oneself).
fn section_recipients(section: &Section, lines: &[&str]) -> Vec<Recipient> {
    let Some(start) = lines.iter().position(|l| section.start.is_match(l)) else {
        return Vec::new();
    };
    let mut out: Vec<Recipient> = Vec::new();
    let action = if section.delayed {
        Action::Delayed
    } else {
        Action::Failed
    };
    for (i, line) in lines.iter().enumerate().skip(start + 1) {
        if section.end.is_match(line) {
            break;
        }
        let Some(c) = section.address.captures(line) else {
            continue;
        };
        // The last address group that matched is the one sent to ("expanded from" wins).
        let groups = (1..c.len()).filter_map(|g| c.get(g)).map(|m| m.as_str());
        let Some(address) = groups.clone().rfind(|g| g.contains('@')) else {
            continue;
        };
        // Through the same filter as every address (no `david...@gmail.com`).
        let Some(address) = addresses(address).next() else {
            continue;
        };
        if is_system_address(&address) {
            continue;
        }
        let rest = groups
            .filter(|g| !g.contains('@') || g.contains(' '))
            .collect::<Vec<_>>()
            .join(" ");
        let reason = reason_after(&rest, &lines[i + 1..], &section.address, &section.end);
        push(&mut out, address, action, reason);
    }
    out
}

/// The reason given with a recipient: the rest of its line and the lines under it, up to a
/// blank line, the next recipient or the end of the list.
fn reason_after(rest: &str, next: &[&str], address: &Regex, end: &Regex) -> Option<String> {
    let mut words = vec![rest.to_string()];
    for line in next.iter().take(8) {
        if line.trim().is_empty() || address.is_match(line) || end.is_match(line) {
            break;
        }
        words.push(line.to_string());
    }
    let joined = one_line(&words.join(" "));
    (!joined.is_empty()).then(|| joined.chars().take(400).collect())
}

/// Adds a recipient once, its severity judged by the issue's rules.
fn push(out: &mut Vec<Recipient>, address: String, action: Action, reason: Option<String>) {
    if out.iter().any(|r| r.address == address) {
        return;
    }
    let status = best_status(None, reason.as_deref());
    let severity = severity(action, status.as_deref(), reason.as_deref());
    out.push(Recipient {
        address,
        status,
        action,
        diagnostic: reason,
        severity,
    });
}

/// Recipients of an `X-Failed-Recipients` header, each with the first reason line that
/// names it (else the first reason line of the text).
fn from_header(failed: &[String], lines: &[&str]) -> Vec<Recipient> {
    let mut out = Vec::new();
    let reasons = || {
        lines
            .iter()
            .filter(|l| REASON.is_match(l) && (says_no_such_mailbox(l) || l.contains(['4', '5'])))
    };
    for address in failed {
        let own = reasons().find(|l| l.to_ascii_lowercase().contains(address.as_str()));
        let reason = own.or_else(|| reasons().next()).map(|l| one_line(l));
        push(&mut out, address.clone(), Action::Failed, reason);
    }
    out
}

/// Recipients of a report in no known layout: after its first failure wording and before the
/// returned message, each address alone on a line, in `<…>`, opening a line, or on a line
/// that gives a reason.
fn generic(lines: &[&str], senders: &BTreeSet<String>, delayed: bool) -> Vec<Recipient> {
    static ALONE: LazyLock<Regex> = LazyLock::new(|| {
        re(
            r#"^[\s>*-]*(?:[A-Za-z -]+:\s*)?[<'"\[]?(?:SMTP:)?[^\s<>'"@\[\]]+@[^\s<>'"@\]]+?[>'"\]]?[.:,]?\s*$|<[^>\s]+@[^>\s]+>|^\s*[^\s@<>]+@[^\s@<>:]+:"#,
        )
    });
    static END: LazyLock<Regex> = LazyLock::new(|| re(RETURNED));
    let end = &*END;
    let Some(start) = lines.iter().position(|l| GENERIC_START.is_match(l)) else {
        return Vec::new();
    };
    let action = if delayed {
        Action::Delayed
    } else {
        Action::Failed
    };
    let mut out = Vec::new();
    for (i, line) in lines.iter().enumerate().skip(start) {
        if i > start && end.is_match(line) {
            break;
        }
        if !(ALONE.is_match(line) || REASON.is_match(line)) {
            continue;
        }
        for address in addresses(line) {
            if is_system_address(&address) || senders.contains(&address) || !address.contains('.') {
                continue;
            }
            let rest = line.replace(&address, " ");
            let reason = reason_after(&rest, &lines[i + 1..], &ALONE, end);
            push(&mut out, address, action, reason);
        }
    }
    out
}
