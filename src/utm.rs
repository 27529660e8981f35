//! Campaign-tagged links: `utm_source`, `utm_medium`, `utm_campaign` (and `utm_content`) appended
//! to every http(s) link that points at one of the clinic's hosts
//! ([`UtmSettings::hosts`](crate::config::UtmSettings)), in an email's HTML part (`href`
//! attributes), its text part and an SMS body. Off unless the campaign has `[campaign.utm]`.
//!
//! **Where.** On each rendered part ([`crate::render`] calls [`Tagger`] right after the templates
//! render), not in the templates nor in the `clinic.*` values. A link can be written in a
//! template's text, come from a partial, or be a `clinic.*` value folded in when the templates
//! load; only the rendered part holds them all, and the rendered part is what `check` counts,
//! `preview` shows and `send` sends, so all three see the same tagged links. The unsubscribe
//! link is known there too (each message has its own), and is left alone.
//!
//! **What is never touched.** A link to any other host: hosts are compared whole, after the URL
//! parser's normalisation (case, IDNA, a trailing dot), so `riverside.example.evil.com` or
//! `riverside.example@evil.com` is not `riverside.example`. Any scheme but http and https
//! (`tel:`, `mailto:`, relative links). The message's unsubscribe link. A `utm_*` key the
//! author already wrote (kept as written, not doubled). A link's own bytes: the tags go at the
//! end of its query (or start one) and before its `#fragment`; the `url` crate (already in the
//! tree through reqwest and lettre) only reads the link, which is never re-serialised. A part
//! with no link to tag comes back borrowed, byte for byte.
//!
//! **HTML.** A small scanner over start tags' attributes rather than an HTML parser: html5ever
//! (in the tree through css-inline) builds a tree and serialises the whole document again,
//! changing bytes the author and the CSS inliner wrote, and lol_html would be a new dependency
//! for one attribute. The scanner skips the raw text of `<style>`, `<script>`, `<title>` and
//! `<textarea>`, reads tags inside comments (Outlook's `<!--[if mso]>` buttons are links too),
//! decodes an `href` value's character references, and re-encodes the tagged value
//! ([`escape_html`]: `&` becomes `&amp;`). In HTML only `href`s are tagged: a URL shown as text
//! is for reading. In the text part and an SMS every http(s) URL is a link; trailing sentence
//! punctuation (`.`, `,`, `)`…) is not part of it.

use std::borrow::Cow;
use std::sync::LazyLock;

use regex::Regex;

use crate::config::{UtmSettings, url_host};
use crate::model::Channel;
use crate::templates::escape_html;

/// Elements whose content is text, not markup: a `<` in them starts no tag.
const RAW_TEXT: &[&str] = &["script", "style", "title", "textarea"];

/// An http(s) URL in plain text, up to the first character a URL cannot hold.
static TEXT_URL: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r#"(?i)\bhttps?://[^\s<>"'`{}|\\^]+"#).expect("a valid regex"));

/// Tags the links of one message.
pub struct Tagger<'a> {
    params: Vec<(&'static str, &'a str)>,
    hosts: &'a [String],
    unsubscribe: Option<&'a str>,
}

impl<'a> Tagger<'a> {
    /// The tags of `channel`'s messages. `unsubscribe`: the message's unsubscribe link, which
    /// stays as it is.
    pub fn new(utm: &'a UtmSettings, channel: Channel, unsubscribe: Option<&'a str>) -> Self {
        let mut params = vec![
            ("utm_source", utm.source.as_str()),
            ("utm_medium", utm.medium(channel.as_str())),
            ("utm_campaign", utm.campaign.as_str()),
        ];
        if let Some(content) = &utm.content {
            params.push(("utm_content", content.as_str()));
        }
        Tagger {
            params,
            hosts: &utm.hosts,
            unsubscribe,
        }
    }

    /// `link` with the tags it lacks, or `None` when it stays as it is (not the clinic's, not
    /// http(s), the unsubscribe link, or every tag already there).
    pub fn link(&self, link: &str) -> Option<String> {
        if self.unsubscribe == Some(link) {
            return None;
        }
        let url = url::Url::parse(link).ok()?;
        if !matches!(url.scheme(), "http" | "https") || !self.hosts.contains(&url_host(&url)?) {
            return None;
        }
        let (head, fragment) = link.split_at(link.find('#').unwrap_or(link.len()));
        let written: Vec<String> = match head.split_once('?') {
            Some((_, query)) => form_urlencoded::parse(query.as_bytes())
                .map(|(k, _)| k.into_owned())
                .collect(),
            None => Vec::new(),
        };
        let mut out = head.to_string();
        for (key, value) in &self.params {
            if written.iter().any(|w| w.eq_ignore_ascii_case(key)) {
                continue;
            }
            if !out.contains('?') {
                out.push('?');
            } else if !out.ends_with(['?', '&']) {
                out.push('&');
            }
            out.push_str(key);
            out.push('=');
            out.extend(form_urlencoded::byte_serialize(value.as_bytes()));
        }
        if out.len() == head.len() {
            return None;
        }
        out.push_str(fragment);
        Some(out)
    }

    /// A plain-text part or an SMS body with its clinic links tagged.
    pub fn text<'t>(&self, text: &'t str) -> Cow<'t, str> {
        let mut out = String::new();
        let mut copied = 0;
        for m in TEXT_URL.find_iter(text) {
            let link = trim_punctuation(m.as_str());
            if let Some(tagged) = self.link(link) {
                out.push_str(&text[copied..m.start()]);
                out.push_str(&tagged);
                copied = m.start() + link.len();
            }
        }
        finish(text, out, copied)
    }

    /// An HTML part with the `href` of every clinic link tagged.
    pub fn html<'t>(&self, html: &'t str) -> Cow<'t, str> {
        let b = html.as_bytes();
        let mut out = String::new();
        let mut copied = 0;
        let mut i = 0;
        while let Some(lt) = memchr::memchr(b'<', &b[i..]).map(|p| p + i) {
            i = lt + 1;
            if !b.get(i).is_some_and(u8::is_ascii_alphabetic) {
                continue;
            }
            let name_end = i + b[i..]
                .iter()
                .take_while(|c| c.is_ascii_alphanumeric() || matches!(**c, b':' | b'-'))
                .count();
            let name = &html[i..name_end];
            i = name_end;
            while let Some(attr) = next_attribute(b, &mut i) {
                if !html[attr.name.clone()].eq_ignore_ascii_case("href") {
                    continue;
                }
                let Some(tagged) = self.attribute(&html[attr.value.clone()]) else {
                    continue;
                };
                out.push_str(&html[copied..attr.value.start]);
                if attr.quoted {
                    out.push_str(&tagged);
                } else {
                    out.push('"');
                    out.push_str(&tagged);
                    out.push('"');
                }
                copied = attr.value.end;
            }
            if RAW_TEXT.iter().any(|r| r.eq_ignore_ascii_case(name)) {
                i = end_of_raw_text(html, i, name);
            }
        }
        finish(html, out, copied)
    }

    /// An `href` value as written in HTML, tagged and encoded again; `None` when it stays.
    fn attribute(&self, written: &str) -> Option<String> {
        let decoded = decode_references(written)?;
        let link = decoded.trim_matches(|c: char| c.is_ascii_whitespace());
        let tagged = self.link(link)?;
        Some(escape_html(&decoded.replacen(link, &tagged, 1)))
    }
}

/// `text` with `out` (everything before `copied`, rewritten) in front of its rest.
fn finish(text: &str, mut out: String, copied: usize) -> Cow<'_, str> {
    if copied == 0 {
        return Cow::Borrowed(text);
    }
    out.push_str(&text[copied..]);
    Cow::Owned(out)
}

/// A URL found in text without the punctuation that ends the sentence around it: `.`, `,`, `;`,
/// `:`, `!`, `?`, and a closing bracket the URL did not open.
fn trim_punctuation(mut url: &str) -> &str {
    loop {
        let trimmed = url.trim_end_matches(['.', ',', ';', ':', '!', '?']);
        let trimmed = match trimmed.chars().last() {
            Some(')') if trimmed.matches('(').count() < trimmed.matches(')').count() => {
                &trimmed[..trimmed.len() - 1]
            }
            Some(']') if trimmed.matches('[').count() < trimmed.matches(']').count() => {
                &trimmed[..trimmed.len() - 1]
            }
            _ => trimmed,
        };
        if trimmed.len() == url.len() {
            return url;
        }
        url = trimmed;
    }
}

/// One attribute of a start tag: where its name and value are.
struct Attribute {
    name: std::ops::Range<usize>,
    /// Inside the quotes when quoted.
    value: std::ops::Range<usize>,
    quoted: bool,
}

/// The next attribute with a value in the tag being read from `*i`; `None` at the tag's end.
/// Attributes without a value are stepped over.
fn next_attribute(b: &[u8], i: &mut usize) -> Option<Attribute> {
    let skip_space = |i: &mut usize| {
        while b.get(*i).is_some_and(u8::is_ascii_whitespace) {
            *i += 1;
        }
    };
    loop {
        while b
            .get(*i)
            .is_some_and(|c| c.is_ascii_whitespace() || *c == b'/')
        {
            *i += 1;
        }
        if b.get(*i).is_none_or(|c| *c == b'>') {
            return None;
        }
        let start = *i;
        *i += 1; // a name's first character may be anything, even `=`
        while b
            .get(*i)
            .is_some_and(|c| !c.is_ascii_whitespace() && !matches!(*c, b'=' | b'>' | b'/'))
        {
            *i += 1;
        }
        let name = start..*i;
        let mut j = *i;
        skip_space(&mut j);
        if b.get(j) != Some(&b'=') {
            continue;
        }
        j += 1;
        skip_space(&mut j);
        let attribute = match b.get(j).copied() {
            Some(q @ (b'"' | b'\'')) => {
                let end = memchr::memchr(q, &b[j + 1..]).map_or(b.len(), |p| j + 1 + p);
                *i = (end + 1).min(b.len());
                Attribute {
                    name,
                    value: j + 1..end,
                    quoted: true,
                }
            }
            _ => {
                let end = j + b[j..]
                    .iter()
                    .take_while(|c| !c.is_ascii_whitespace() && **c != b'>')
                    .count();
                *i = end;
                Attribute {
                    name,
                    value: j..end,
                    quoted: false,
                }
            }
        };
        return Some(attribute);
    }
}

/// Where the raw text of element `name`, which starts at `from`, ends: at its end tag.
fn end_of_raw_text(html: &str, from: usize, name: &str) -> usize {
    let close = format!("</{}", name.to_ascii_lowercase());
    let rest = html[from..].to_ascii_lowercase();
    rest.find(&close).map_or(html.len(), |p| from + p)
}

/// An attribute value with its character references decoded (`&amp;`, `&quot;`, `&#39;`,
/// `&#x3D;`…). `None` when it holds a named reference other than the five the templates' own
/// escaping writes: decoding it properly needs HTML's whole table, and such a link is left as
/// written rather than changed wrongly. A `&` that starts no reference is a plain `&`.
fn decode_references(value: &str) -> Option<Cow<'_, str>> {
    if !value.contains('&') {
        return Some(Cow::Borrowed(value));
    }
    let mut out = String::with_capacity(value.len());
    let mut rest = value;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        rest = &rest[amp..];
        let name_len = rest[1..]
            .bytes()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == b'#')
            .count();
        if rest.as_bytes().get(1 + name_len) != Some(&b';') || name_len == 0 {
            out.push('&');
            rest = &rest[1..];
            continue;
        }
        let name = &rest[1..1 + name_len];
        let c = match name {
            "amp" => '&',
            "lt" => '<',
            "gt" => '>',
            "quot" => '"',
            "apos" => '\'',
            _ => {
                let number = name.strip_prefix('#')?;
                let code = match number.strip_prefix(['x', 'X']) {
                    Some(hex) => u32::from_str_radix(hex, 16).ok()?,
                    None => number.parse().ok()?,
                };
                char::from_u32(code)?
            }
        };
        out.push(c);
        rest = &rest[name_len + 2..];
    }
    out.push_str(rest);
    Some(Cow::Owned(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(content: Option<&str>) -> UtmSettings {
        UtmSettings {
            source: "outreach".into(),
            medium: None,
            campaign: "psoas-2026-11".into(),
            content: content.map(String::from),
            hosts: vec!["riverside.example".into(), "book.riverside.example".into()],
        }
    }

    const TAGS: &str = "utm_source=outreach&utm_medium=email&utm_campaign=psoas-2026-11";

    #[test]
    fn links_link_by_link() {
        let utm = settings(None);
        let t = Tagger::new(
            &utm,
            Channel::Email,
            Some("https://riverside.example/u?t=abc"),
        );
        // `{T}` stands for the tags.
        let tagged = [
            "https://riverside.example -> https://riverside.example?{T}",
            "https://riverside.example/book -> https://riverside.example/book?{T}",
            "https://riverside.example/b?a=1 -> https://riverside.example/b?a=1&{T}",
            "https://riverside.example/b? -> https://riverside.example/b?{T}",
            "https://riverside.example/b?a=1#s -> https://riverside.example/b?a=1&{T}#s",
            "https://riverside.example/#top?x -> https://riverside.example/?{T}#top?x",
            "HTTP://Book.Riverside.Example./x -> HTTP://Book.Riverside.Example./x?{T}",
            "https://riverside.example:8443/x -> https://riverside.example:8443/x?{T}",
            "https://riverside.example/b?utm_source=flyer -> \
             https://riverside.example/b?utm_source=flyer&utm_medium=email&utm_campaign=psoas-2026-11",
        ];
        for case in tagged {
            let (link, want) = case.split_once(" -> ").unwrap();
            assert_eq!(t.link(link), Some(want.replace("{T}", TAGS)), "{link}");
        }
        let untouched = [
            "https://riverside.example/b?utm_source=a&utm_medium=b&utm_campaign=c",
            "https://riverside.example/u?t=abc",
            "https://riverside.example.evil.com/book",
            "https://riverside.example@evil.com/book",
            "https://evil.com/riverside.example",
            "https://sub.riverside.example/",
            "https://youtu.be/fvee--yJGME",
            "ftp://riverside.example/x",
            "mailto:care@riverside.example",
            "tel:+13125550100",
            "/book",
        ];
        for link in untouched {
            assert_eq!(t.link(link), None, "{link}");
        }
    }

    #[test]
    fn values_are_encoded_and_content_is_optional() {
        let mut utm = settings(Some("spring a&b"));
        utm.medium = Some("newsletter".into());
        let t = Tagger::new(&utm, Channel::Sms, None);
        assert_eq!(
            t.link("https://riverside.example/").unwrap(),
            "https://riverside.example/?utm_source=outreach&utm_medium=newsletter\
             &utm_campaign=psoas-2026-11&utm_content=spring+a%26b"
        );
    }

    #[test]
    fn text_and_sms() {
        let utm = settings(None);
        let t = Tagger::new(&utm, Channel::Sms, None);
        let tags = TAGS.replace("email", "sms");
        assert_eq!(
            t.text(
                "Book: https://riverside.example/book. Or (https://riverside.example/a_(b)), \
                    https://youtu.be/x!"
            ),
            format!(
                "Book: https://riverside.example/book?{tags}. Or \
                 (https://riverside.example/a_(b)?{tags}), https://youtu.be/x!"
            )
        );
        let plain = "no links here, https://youtu.be/fvee--yJGME only";
        assert!(matches!(t.text(plain), Cow::Borrowed(p) if p == plain));
    }

    #[test]
    fn html_hrefs_only_escaped_and_unsubscribe_kept() {
        let utm = settings(None);
        let unsubscribe = "https://riverside.example/u?t=abc&x=1";
        let t = Tagger::new(&utm, Channel::Email, Some(unsubscribe));
        let html = "<style>a[href=\"https://riverside.example/\"] { }</style>\
            <a class=x href=\"https://riverside.example/book?a=1&amp;b=2#f\">https://riverside.example/book</a>\
            <A HREF='https://riverside.example/u?t=abc&amp;x=1'>Unsubscribe</A>\
            <a href=https://riverside.example/s>s</a>\
            <a data-x=\"<a href='https://riverside.example/no'>\" href=\"https://youtu.be/v\">v</a>\
            <!--[if mso]><v:roundrect href=\"https://riverside.example/b\"><![endif]-->\
            <a href=\"mailto:u@riverside.example?subject=Unsubscribe\">m</a>\
            <a href=\"https://riverside.example/&nbsp;\">kept</a>";
        let tagged = |path: &str| {
            format!(
                "https://riverside.example/{path}{}",
                TAGS.replace('&', "&amp;")
            )
        };
        assert_eq!(
            t.html(html),
            format!(
                "<style>a[href=\"https://riverside.example/\"] {{ }}</style>\
                <a class=x href=\"{}#f\">https://riverside.example/book</a>\
                <A HREF='https://riverside.example/u?t=abc&amp;x=1'>Unsubscribe</A>\
                <a href=\"{}\">s</a>\
                <a data-x=\"<a href='https://riverside.example/no'>\" href=\"https://youtu.be/v\">v</a>\
                <!--[if mso]><v:roundrect href=\"{}\"><![endif]-->\
                <a href=\"mailto:u@riverside.example?subject=Unsubscribe\">m</a>\
                <a href=\"https://riverside.example/&nbsp;\">kept</a>",
                tagged("book?a=1&amp;b=2&amp;"),
                tagged("s?"),
                tagged("b?"),
            )
        );
        let plain = "<p><a href=\"https://youtu.be/v\">v</a></p>";
        assert!(matches!(t.html(plain), Cow::Borrowed(p) if p == plain));
    }

    #[test]
    fn references_decode() {
        assert_eq!(
            decode_references("a&amp;b&#x3D;c&#39;&lt;&q").as_deref(),
            Some("a&b=c'<&q")
        );
        assert_eq!(decode_references("&nbsp;"), None);
    }
}
