//! Issue 19's severity rules: an enhanced status code (RFC 3463) and the server's words → how
//! bad the failure is for the address.

use std::sync::LazyLock;

use regex::Regex;

use super::kinds::{Action, Severity};

/// An enhanced status code anywhere in a text (`5.1.1`, `4.2.2`, `5.7.26`), not inside a
/// longer number or an IP address.
static CODE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?:^|[^0-9.])([245])\.([0-9]{1,3})\.([0-9]{1,3})(?:[^0-9.]|\.(?:[^0-9]|$)|$)")
        .expect("valid regex")
});

/// The wordings servers use for a mailbox that does not exist.
static NO_SUCH_MAILBOX: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?ix)
        user\s+unknown | unknown\s+user | no\s+such\s+(?:user|recipient|mailbox|address|account)
        | mailbox\s+(?:unavailable|not\s+found|does\s+not\s+exist|is\s+inactive|disabled)
        | (?:does\s+not|doesn't|did\s+not)\s+exist | not\s+exist
        | recipient\s+address\s+rejected | address\s+rejected
        | (?:invalid|unknown|bad)\s+(?:recipient|mailbox|address|user)
        | recipient\s+(?:unknown|not\s+found|invalid)
        | user\s+(?:not\s+found|doesn't\s+have|does\s+not\s+have)
        | address\s+(?:not\s+found|couldn't\s+be\s+found|could\s+not\s+be\s+found)
        | no\s+mailbox | not\s+a\s+valid\s+(?:mailbox|user|recipient)
        | unrouteable\s+address | account\s+(?:has\s+been\s+)?(?:disabled|closed|deleted)
        | no\s+longer\s+(?:valid|available|active) | not\s+our\s+customer
        | is\s+not\s+a\s+known\s+user | not\s+known\s+here | unknown\s+(?:local\s+part|alias)
        | recipientnotfound | resolver\.adr\.",
    )
    .expect("valid regex")
});

/// The first enhanced status code in `text`, as `class.subject.detail`.
pub fn find_code(text: &str) -> Option<String> {
    let c = CODE.captures(text)?;
    Some(format!("{}.{}.{}", &c[1], &c[2], &c[3]))
}

/// The status a recipient is judged by: the report's `Status`, unless it is absent or only
/// says its class (`5.0.0`, `4.0.0`) and the diagnostic gives a more exact code.
pub fn best_status(status: Option<&str>, diagnostic: Option<&str>) -> Option<String> {
    let given = status.and_then(find_code);
    let in_words = diagnostic.and_then(find_code);
    match (given, in_words) {
        (Some(g), Some(w)) if g.ends_with(".0.0") && w.starts_with(&g[..1]) => Some(w),
        (Some(g), _) => Some(g),
        (None, w) => w,
    }
}

/// Whether the server's words say the mailbox does not exist.
pub fn says_no_such_mailbox(text: &str) -> bool {
    NO_SUCH_MAILBOX.is_match(text)
}

/// The severity of one recipient's failure, by the issue's rules: `4.x.x` or delayed is soft;
/// `5.7.x` policy; `5.1.x`, `5.2.1`, `5.4.4` hard; another `5.x.x`, or no code, is hard only
/// when the diagnostic says the mailbox does not exist, else other-permanent.
pub fn severity(action: Action, status: Option<&str>, diagnostic: Option<&str>) -> Severity {
    if action == Action::Delayed {
        return Severity::Soft;
    }
    let mut parts = status.map(|s| s.split('.')).into_iter().flatten();
    let (class, subject, detail) = (parts.next(), parts.next(), parts.next());
    match (class, subject, detail) {
        (Some("4"), _, _) => Severity::Soft,
        (Some("5"), Some("7"), _) => Severity::Policy,
        (Some("5"), Some("1"), _) | (Some("5"), Some("2"), Some("1")) => Severity::Hard,
        (Some("5"), Some("4"), Some("4")) => Severity::Hard,
        _ if diagnostic.is_some_and(says_no_such_mailbox) => Severity::Hard,
        _ => Severity::OtherPermanent,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sev(status: Option<&str>, diagnostic: Option<&str>) -> Severity {
        severity(Action::Failed, status, diagnostic)
    }

    #[test]
    fn codes_are_found_in_words_but_not_in_addresses() {
        assert_eq!(
            find_code("smtp; 550 5.1.1 <a@b.example>: User unknown").as_deref(),
            Some("5.1.1")
        );
        assert_eq!(
            find_code("550-5.1.1 The email account").as_deref(),
            Some("5.1.1")
        );
        assert_eq!(find_code("host 192.0.2.25 said 550 go away"), None);
        assert_eq!(
            find_code("5.7.26 unauthenticated").as_deref(),
            Some("5.7.26")
        );
        assert_eq!(find_code("Status: 4.2.2."), Some("4.2.2".into()));
    }

    #[test]
    fn the_issue_rules() {
        assert_eq!(sev(Some("5.1.1"), None), Severity::Hard);
        assert_eq!(sev(Some("5.1.10"), None), Severity::Hard);
        assert_eq!(sev(Some("5.2.1"), None), Severity::Hard);
        assert_eq!(sev(Some("5.4.4"), None), Severity::Hard);
        assert_eq!(
            sev(Some("5.2.2"), Some("mailbox full")),
            Severity::OtherPermanent
        );
        assert_eq!(
            sev(
                Some("5.7.1"),
                Some("recipient address rejected: access denied")
            ),
            Severity::Policy
        );
        assert_eq!(
            sev(Some("5.0.0"), Some("550 No such user here")),
            Severity::Hard
        );
        assert_eq!(
            sev(Some("5.0.0"), Some("552 message too big")),
            Severity::OtherPermanent
        );
        assert_eq!(
            sev(
                None,
                Some("550 Requested action not taken: mailbox unavailable")
            ),
            Severity::Hard
        );
        assert_eq!(sev(None, None), Severity::OtherPermanent);
        assert_eq!(sev(Some("4.2.2"), Some("user unknown")), Severity::Soft);
        assert_eq!(
            severity(Action::Delayed, Some("5.1.1"), None),
            Severity::Soft
        );
    }

    #[test]
    fn a_class_only_status_defers_to_the_diagnostic() {
        assert_eq!(
            best_status(Some("5.0.0"), Some("550 5.1.1 unknown")).as_deref(),
            Some("5.1.1")
        );
        assert_eq!(
            best_status(Some("5.1.1"), Some("550 5.7.1 no")).as_deref(),
            Some("5.1.1")
        );
        assert_eq!(
            best_status(None, Some("421 4.7.0 try later")).as_deref(),
            Some("4.7.0")
        );
        assert_eq!(
            best_status(Some("5.0.0"), Some("451 4.3.0 odd")).as_deref(),
            Some("5.0.0")
        );
    }
}
