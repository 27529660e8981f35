//! What ties a report to the message it is about: the VERP token of the envelope sender the
//! message went out with, and the returned message's `Message-ID`.

use std::sync::LazyLock;

use regex::Regex;

use super::mail::Mail;

/// A `Message-ID:` line in a text that quotes the returned headers (qmail, Exim, old Exchange).
static MESSAGE_ID_LINE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?im)^[ \t>]*Message-Id:[ \t]*(<[^>\s]+>|[^\s<>]+@[^\s<>]+)").expect("valid regex")
});

/// The headers a receiving server writes the envelope recipient of the bounce into (it went
/// to the envelope sender of our message), most trustworthy first.
const ENVELOPE_HEADERS: [&str; 6] = [
    "delivered-to",
    "x-original-to",
    "envelope-to",
    "x-envelope-to",
    "to",
    "return-path",
];

/// A bounce address pattern (`bounces+{{token}}@riverside.example`) compiled to find tokens.
#[derive(Debug)]
pub struct Verp(Regex);

impl Verp {
    /// The pattern compiled; `None` when it has no `{{token}}`.
    pub fn new(pattern: &str) -> Option<Verp> {
        let (before, after) = pattern.split_once("{{token}}")?;
        let re = format!(
            "(?i)(?:^|[^A-Za-z0-9._%+-]){}([A-Za-z0-9._=-]+){}(?:$|[^A-Za-z0-9.-])",
            regex::escape(before),
            regex::escape(after)
        );
        Regex::new(&re).ok().map(Verp)
    }

    /// The token in `text`, if it holds an address of the pattern.
    pub fn token_in(&self, text: &str) -> Option<String> {
        Some(self.0.captures(text)?[1].to_string())
    }

    /// The token of a report: from the headers the receiving server wrote (the bounce's own
    /// envelope), then from the returned message's `Return-Path`, then from the returned
    /// text. The report's prose is never read for it.
    pub fn find(&self, mail: &Mail, extra: &[&str]) -> Option<String> {
        let own = ENVELOPE_HEADERS
            .iter()
            .flat_map(|name| mail.headers(name))
            .find_map(|v| self.token_in(v));
        own.or_else(|| extra.iter().find_map(|v| self.token_in(v)))
            .or_else(|| self.token_in(&mail.returned_header("return-path")?))
            .or_else(|| self.token_in(mail.returned_headers.as_deref()?))
    }
}

/// The returned message's `Message-ID`: from the returned part's headers, else from a
/// `Message-ID:` line in the report's text (where qmail and Exim quote the message).
pub fn original_message_id(mail: &Mail) -> Option<String> {
    let from_part = mail.returned_header("message-id");
    let id = from_part.or_else(|| {
        let texts = mail.texts.iter().map(String::as_str);
        texts.filter_map(|t| Some(MESSAGE_ID_LINE.captures(t)?[1].to_string())).next()
    })?;
    let id = id.trim();
    if id.is_empty() {
        return None;
    }
    Some(if id.starts_with('<') { id.to_string() } else { format!("<{id}>") })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verp_tokens_are_found_only_in_the_pattern() {
        let v = Verp::new("bounces+{{token}}@riverside.example").unwrap();
        assert_eq!(v.token_in("<bounces+abc123@riverside.example>").as_deref(), Some("abc123"));
        assert_eq!(v.token_in("Bounces+X.y=z@Riverside.Example").as_deref(), Some("X.y=z"));
        assert_eq!(v.token_in("bounces+abc@riverside.example.org"), None);
        assert_eq!(v.token_in("xbounces+abc@riverside.example"), None);
        assert_eq!(v.token_in("bounces@riverside.example"), None);
        assert!(Verp::new("bounces@riverside.example").is_none());
    }
}
