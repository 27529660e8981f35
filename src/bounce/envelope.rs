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

/// A bounce address pattern (`bounces+{{token}}@riverside.example`), split around its token.
/// Matched by hand, not by a regex: `classify` is given the pattern on every call, and
/// compiling it each time cost more than the rest of the classification.
#[derive(Debug)]
pub struct Verp {
    before: String,
    after: String,
}

/// A character of a token (the local part of an address, less what would end it).
fn token_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'=' | b'-')
}

impl Verp {
    /// The pattern, lowercased; `None` when it has no `{{token}}`.
    pub fn new(pattern: &str) -> Option<Verp> {
        let (before, after) = pattern.split_once("{{token}}")?;
        Some(Verp {
            before: before.to_ascii_lowercase(),
            after: after.to_ascii_lowercase(),
        })
    }

    /// The token in `text`, if it holds an address of the pattern (letters in any case).
    pub fn token_in(&self, text: &str) -> Option<String> {
        let lower = text.to_ascii_lowercase();
        let bytes = lower.as_bytes();
        let mut from = 0;
        while let Some(at) = lower[from..].find(&self.before).map(|i| i + from) {
            from = at + 1;
            let starts_word =
                at == 0 || !(token_char(bytes[at - 1]) || matches!(bytes[at - 1], b'+' | b'%'));
            let start = at + self.before.len();
            let len = bytes[start..]
                .iter()
                .take_while(|&&c| token_char(c))
                .count();
            let end = start + len;
            let rest = &bytes[end..];
            let whole = rest.starts_with(self.after.as_bytes())
                && rest
                    .get(self.after.len())
                    .is_none_or(|&c| !(c.is_ascii_alphanumeric() || c == b'.' || c == b'-'));
            if starts_word && len > 0 && whole {
                return Some(text[start..end].to_string());
            }
        }
        None
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
            .or_else(|| self.token_in(mail.returned_header("return-path")?))
            .or_else(|| self.token_in(mail.returned_headers.as_deref()?))
    }
}

/// The returned message's `Message-ID`: from the returned part's headers, else from a
/// `Message-ID:` line in the report's text (where qmail and Exim quote the message).
pub fn original_message_id(mail: &Mail) -> Option<String> {
    let from_part = mail.returned_header("message-id").map(str::to_string);
    let id = from_part.or_else(|| {
        let texts = mail.texts.iter().map(String::as_str);
        texts
            .filter_map(|t| Some(MESSAGE_ID_LINE.captures(t)?[1].to_string()))
            .next()
    })?;
    let id = id.trim();
    if id.is_empty() {
        return None;
    }
    Some(if id.starts_with('<') {
        id.to_string()
    } else {
        format!("<{id}>")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verp_tokens_are_found_only_in_the_pattern() {
        let v = Verp::new("bounces+{{token}}@riverside.example").unwrap();
        assert_eq!(
            v.token_in("<bounces+abc123@riverside.example>").as_deref(),
            Some("abc123")
        );
        assert_eq!(
            v.token_in("Bounces+X.y=z@Riverside.Example").as_deref(),
            Some("X.y=z")
        );
        assert_eq!(v.token_in("bounces+abc@riverside.example.org"), None);
        assert_eq!(v.token_in("xbounces+abc@riverside.example"), None);
        assert_eq!(v.token_in("bounces@riverside.example"), None);
        assert!(Verp::new("bounces@riverside.example").is_none());
    }
}
