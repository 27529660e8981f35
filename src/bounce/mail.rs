//! One message taken apart for the readers: its top headers, and the parts a report is made
//! of (the delivery-status and feedback-report fields, the returned message's headers, the
//! human-readable text), found by walking the MIME tree once with `mailparse`.

use std::sync::LazyLock;

use mailparse::{MailHeader, ParsedMail};
use regex::Regex;

/// An address as reports write it: bare, in `<…>`, after `rfc822;`. Loose on purpose (bounces
/// carry local hosts without a dot, `user@sims-ms-daemon`); callers check what they keep.
static ADDRESS: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r#"[^\s<>()\[\]"',;:=]+@[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?"#)
        .expect("valid regex")
});

/// The parts of a message that say what it is.
#[derive(Debug, Default)]
pub struct Mail {
    /// The top-level header fields, as (lowercased name, unfolded and decoded value).
    pub headers: Vec<(String, String)>,
    /// The top-level MIME type, lowercased (`multipart/report`).
    pub mime_type: String,
    /// The body of the `message/delivery-status` part (RFC 3464).
    pub delivery_status: Option<String>,
    /// The body of the `message/feedback-report` part (RFC 5965).
    pub feedback_report: Option<String>,
    /// The header block of the returned message (`message/rfc822`, `text/rfc822-headers`).
    pub returned_headers: Option<String>,
    /// The same block's fields, as (lowercased name, value).
    returned_fields: Vec<(String, String)>,
    /// The text parts outside the returned message, decoded (HTML reduced to its text when a
    /// part has no plain alternative), in order.
    pub texts: Vec<String>,
}

impl Mail {
    /// The first top-level header field `name` (lowercase).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Every top-level header field `name` (lowercase).
    pub fn headers(&self, name: &str) -> impl Iterator<Item = &str> {
        self.headers
            .iter()
            .filter(move |(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// A header field of the returned message, when one came back.
    pub fn returned_header(&self, name: &str) -> Option<&str> {
        let found = self.returned_fields.iter().find(|(n, _)| n == name);
        found.map(|(_, v)| v.as_str())
    }

    /// The text parts joined, one after the other.
    pub fn text(&self) -> String {
        self.texts.join("\n")
    }
}

/// Takes `raw` apart; `Err` says why it is not a message at all.
pub fn read(raw: &[u8]) -> Result<Mail, String> {
    // A message kept in an mbox starts with its `From ` separator line, which is no header.
    let raw = match raw.strip_prefix(b"From ") {
        Some(rest) => rest
            .iter()
            .position(|&b| b == b'\n')
            .map_or(&raw[..0], |i| &rest[i + 1..]),
        None => raw,
    };
    let parsed = mailparse::parse_mail(raw).map_err(|e| format!("not a mail message: {e}"))?;
    if parsed.headers.is_empty() {
        return Err("not a mail message: no header fields".into());
    }
    let mut mail = Mail {
        headers: parsed.headers.iter().map(named).collect(),
        mime_type: parsed.ctype.mimetype.to_ascii_lowercase(),
        ..Mail::default()
    };
    walk(&parsed, &mut mail);
    Ok(mail)
}

/// One header field as (lowercased name, value).
fn named(h: &MailHeader<'_>) -> (String, String) {
    (h.get_key_ref().to_ascii_lowercase(), h.get_value())
}

/// Visits every part below `part`, keeping what the readers need.
fn walk(part: &ParsedMail<'_>, mail: &mut Mail) {
    let mime = part.ctype.mimetype.to_ascii_lowercase();
    let body = || part.get_body().unwrap_or_default();
    match mime.as_str() {
        "message/delivery-status" | "message/global-delivery-status" => {
            mail.delivery_status.get_or_insert_with(body);
        }
        "message/feedback-report" => {
            mail.feedback_report.get_or_insert_with(body);
        }
        "message/rfc822"
        | "message/global"
        | "text/rfc822-headers"
        | "message/rfc822-headers"
        | "message/global-headers" => keep_returned(part, mail),
        m if m.starts_with("multipart/") => {
            let plain = part
                .subparts
                .iter()
                .any(|p| p.ctype.mimetype.eq_ignore_ascii_case("text/plain"));
            for sub in &part.subparts {
                // An alternative's HTML says what its plain text says.
                let html = sub.ctype.mimetype.eq_ignore_ascii_case("text/html");
                if !(html && plain && m == "multipart/alternative") {
                    walk(sub, mail);
                }
            }
        }
        "text/html" => mail.texts.push(html_text(&body())),
        m if m.starts_with("text/") || m.is_empty() => mail.texts.push(body()),
        _ => {}
    }
}

/// Keeps the header block of the first returned message (a report returns one).
fn keep_returned(part: &ParsedMail<'_>, mail: &mut Mail) {
    if mail.returned_headers.is_some() {
        return;
    }
    let raw = part.get_body_raw().unwrap_or_default();
    let text = String::from_utf8_lossy(&raw);
    let block = &text[..header_block_end(&text)];
    if let Ok((fields, _)) = mailparse::parse_headers(block.as_bytes()) {
        mail.returned_fields = fields.iter().map(named).collect();
    }
    mail.returned_headers = Some(block.to_string());
}

/// Where the first header block of `text` ends (its blank line, or the end).
fn header_block_end(text: &str) -> usize {
    let lf = text.find("\n\n").map(|i| i + 1);
    let crlf = text.find("\r\n\r\n").map(|i| i + 2);
    match (lf, crlf) {
        (Some(a), Some(b)) => a.min(b),
        (a, b) => a.or(b).unwrap_or(text.len()),
    }
}

/// The text of an HTML part: tags dropped, block ends made line ends, a few entities decoded.
/// Enough for the readers' line patterns; not a renderer.
fn html_text(html: &str) -> String {
    static BLOCK: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r"(?i)<\s*(?:br|/p|/div|/tr|/li|/h[1-6]|/table)\b[^>]*>").expect("valid regex")
    });
    static TAG: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r"(?s)<!--.*?-->|<(?:style|script)\b.*?</(?:style|script)>|<[^>]*>")
            .expect("valid regex")
    });
    let lined = BLOCK.replace_all(html, "\n");
    let bare = TAG.replace_all(&lined, " ");
    bare.replace("&nbsp;", " ")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&amp;", "&")
}

/// Every address in `text`, lowercased, in order: a domain ends at a doubled dot
/// (`user@example.net...User unknown`), and a local part with one (`david...@gmail.com`, as
/// archives shorten them) is no address.
pub fn addresses(text: &str) -> impl Iterator<Item = String> + '_ {
    ADDRESS.find_iter(text).filter_map(|m| {
        let found = m.as_str();
        let found = found
            .find("..")
            .filter(|&i| i > found.find('@').unwrap_or(0))
            .map_or(found, |i| &found[..i]);
        let (local, _) = found.split_once('@')?;
        (!local.contains("..")).then(|| found.trim_end_matches('.').to_ascii_lowercase())
    })
}

/// The first address in `text`, lowercased.
pub fn first_address(text: &str) -> Option<String> {
    addresses(text).next()
}

/// Whether `address` is a mail system's own (the report's sender, not a recipient).
pub fn is_system_address(address: &str) -> bool {
    let local = address.split('@').next().unwrap_or_default();
    matches!(
        local,
        "mailer-daemon" | "postmaster" | "mailerdaemon" | "mail-daemon" | "root" | "abuse"
    ) || local.starts_with("mailer-daemon")
}
