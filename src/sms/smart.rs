//! Smart encoding: an opt-in transliteration of typographic characters (curly quotes, dashes,
//! bullets, ellipses, Unicode spaces, zero-width characters) to GSM-7 look-alikes, so text pasted
//! from a word processor does not cost UCS-2 rates. Names and accented letters are never changed.

use std::borrow::Cow;

use super::gsm7::is_gsm7;

/// Opt-in transliteration of typographic characters to GSM-7 look-alikes.
///
/// Text pasted from a word processor or web page should not silently cost
/// UCS-2 rates. Returns [`Cow::Borrowed`] when nothing changes.
///
/// * `‘ ’ ‚ ‛ ′` → `'`; `“ ” „ ‟ ″` → `"`
/// * `‐ ‑ ‒ – — ― −` → `-`
/// * `• · ‣ ⁃ ∙` → `-` (Twilio's Smart Encoding also maps the bullet to `-`,
///   and it reads as a list marker in a text message)
/// * `…` → `...`
/// * no-break, narrow no-break, figure, en/em/thin/hair and other Unicode
///   spaces → a plain space; line and paragraph separators → `\n`
/// * zero-width space, word joiner, byte order mark and soft hyphen are
///   removed; zero-width (non-)joiners too, unless next to a character that
///   stays non-GSM (they glue emoji sequences, which need UCS-2 anyway)
///
/// Everything else, including accented letters, is left alone: changing a
/// patient's name is not a typographic fix.
#[must_use]
pub fn smart_encode(text: &str) -> Cow<'_, str> {
    let Some(first) = text.char_indices().position(|(i, c)| {
        smart_replacement(c).is_some() || (is_joiner(c) && stray_joiner(text, i, c))
    }) else {
        return Cow::Borrowed(text);
    };
    let mut out = String::with_capacity(text.len());
    for (n, (i, c)) in text.char_indices().enumerate() {
        if n < first {
            out.push(c);
        } else if let Some(rep) = smart_replacement(c) {
            out.push_str(rep);
        } else if !(is_joiner(c) && stray_joiner(text, i, c)) {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// The fixed replacement for `c` in [`smart_encode`], if any.
const fn smart_replacement(c: char) -> Option<&'static str> {
    Some(match c {
        '\u{2018}' | '\u{2019}' | '\u{201A}' | '\u{201B}' | '\u{2032}' => "'",
        '\u{201C}' | '\u{201D}' | '\u{201E}' | '\u{201F}' | '\u{2033}' => "\"",
        // Hyphens and dashes, then bullets.
        '\u{2010}'..='\u{2015}'
        | '\u{2212}'
        | '\u{2022}'
        | '\u{00B7}'
        | '\u{2023}'
        | '\u{2043}'
        | '\u{2219}' => "-",
        '\u{2026}' => "...",
        '\u{00A0}'
        | '\u{1680}'
        | '\u{2000}'..='\u{200A}'
        | '\u{202F}'
        | '\u{205F}'
        | '\u{3000}' => " ",
        '\u{2028}' | '\u{2029}' => "\n",
        '\u{200B}' | '\u{2060}' | '\u{FEFF}' | '\u{00AD}' => "",
        _ => return None,
    })
}

/// Zero-width non-joiner / joiner: removable only when stray.
const fn is_joiner(c: char) -> bool {
    matches!(c, '\u{200C}' | '\u{200D}')
}

/// Whether the joiner `c` at byte `i` sits between characters that will be
/// GSM-7 anyway, so it only costs the message its GSM-7 encoding.
fn stray_joiner(text: &str, i: usize, c: char) -> bool {
    let stays_gsm = |n: Option<char>| {
        n.is_none_or(|n| is_joiner(n) || is_gsm7(n) || smart_replacement(n).is_some())
    };
    stays_gsm(text[..i].chars().next_back()) && stays_gsm(text[i + c.len_utf8()..].chars().next())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sms::{Encoding, count};

    #[test]
    fn smart_encode_turns_the_article_into_gsm7() {
        let article = "Tight psoas – lower back pain.\n• Stretch daily.\nIt’s “free”…\u{00A0}Call\u{202F}today — no referral.";
        assert_eq!(count(article).encoding, Encoding::Ucs2);
        let fixed = smart_encode(article);
        assert_eq!(
            fixed,
            "Tight psoas - lower back pain.\n- Stretch daily.\nIt's \"free\"... Call today - no referral."
        );
        let c = count(&fixed);
        assert_eq!(c.encoding, Encoding::Gsm7);
        assert!(c.non_gsm.is_empty());
    }

    #[test]
    fn smart_encode_borrows_when_nothing_changes() {
        assert!(matches!(
            smart_encode("Plain text, José €5"),
            Cow::Borrowed(_)
        ));
        // Accented names are left alone even though they force UCS-2.
        assert!(matches!(smart_encode("María"), Cow::Borrowed(_)));
        assert!(matches!(smart_encode(""), Cow::Borrowed(_)));
    }

    #[test]
    fn smart_encode_spaces_and_zero_width() {
        assert_eq!(smart_encode("a\u{2007}b\u{3000}c"), "a b c");
        assert_eq!(
            smart_encode("a\u{200B}b\u{FEFF}c\u{00AD}d\u{2060}e"),
            "abcde"
        );
        assert_eq!(smart_encode("line\u{2028}next"), "line\nnext");
        // A stray joiner between letters goes; one gluing an emoji stays.
        assert_eq!(smart_encode("Jo\u{200D}e"), "Joe");
        let family = "👨\u{200D}👩\u{200D}👧 – hi";
        assert_eq!(smart_encode(family), "👨\u{200D}👩\u{200D}👧 - hi");
    }
}
