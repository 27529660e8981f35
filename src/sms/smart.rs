//! Smart encoding: an opt-in transliteration of typographic characters (curly quotes, dashes,
//! bullets, ellipses, Unicode spaces, zero-width characters, fullwidth and small forms, …) to
//! GSM-7 look-alikes, so text pasted from a word processor does not cost UCS-2 rates. It covers
//! Twilio's published Smart Encoding table ([`super::twilio_smart`]) but for [`EXCEPTIONS`]:
//! combining marks, controls and letters of names are never changed.

use std::borrow::Cow;

use super::gsm7::is_gsm7;
use super::twilio_smart::TWILIO;

/// The entries of Twilio's table left out on purpose, each with why, sorted by character.
pub const EXCEPTIONS: &[(char, &str)] = &[
    ('\u{0000}', CONTROL),
    ('\u{0003}', CONTROL),
    ('\u{0004}', CONTROL),
    ('\u{0009}', CONTROL),
    ('\u{0010}', CONTROL),
    ('\u{0011}', CONTROL),
    ('\u{0012}', CONTROL),
    ('\u{0013}', CONTROL),
    ('\u{0014}', CONTROL),
    ('\u{0017}', CONTROL),
    ('\u{0019}', CONTROL),
    ('\u{0080}', CONTROL),
    ('\u{008D}', CONTROL),
    ('\u{0090}', CONTROL),
    ('\u{009B}', CONTROL),
    ('\u{009F}', CONTROL),
    ('\u{00A0}', SPACE),
    (
        '\u{01C3}',
        "a letter (the click of Khoisan names, as in !Xóõ), not an exclamation mark",
    ),
    (
        '\u{02BB}',
        "a letter of names (the Hawaiian ʻokina), not a quotation mark",
    ),
    (
        '\u{02BC}',
        "a letter of names (the modifier apostrophe), not a quotation mark",
    ),
    ('\u{0302}', COMBINING),
    ('\u{0303}', COMBINING),
    ('\u{0313}', COMBINING),
    ('\u{0314}', COMBINING),
    ('\u{0326}', COMBINING),
    ('\u{0330}', COMBINING),
    ('\u{0332}', COMBINING),
    ('\u{0334}', COMBINING),
    ('\u{0337}', COMBINING),
    ('\u{0338}', COMBINING),
    ('\u{0347}', COMBINING),
    ('\u{1DCD}', COMBINING),
    ('\u{2000}', SPACE),
    ('\u{2002}', SPACE),
    ('\u{2003}', SPACE),
    ('\u{2004}', SPACE),
    ('\u{2005}', SPACE),
    ('\u{2006}', SPACE),
    ('\u{2007}', SPACE),
    ('\u{2008}', SPACE),
    ('\u{2009}', SPACE),
    ('\u{200A}', SPACE),
    (
        '\u{200C}',
        "a joiner: removed only where it joins nothing that stays UCS-2 (emoji keep it)",
    ),
    (
        '\u{201A}',
        "a low opening quotation mark: an apostrophe, not Twilio's comma",
    ),
    ('\u{2028}', "a line separator: a line break, not a space"),
    (
        '\u{2029}',
        "a paragraph separator: a line break, not a space",
    ),
    ('\u{202F}', SPACE),
    ('\u{205F}', SPACE),
    ('\u{20D2}', COMBINING),
    ('\u{20D3}', COMBINING),
    ('\u{20E5}', COMBINING),
    ('\u{3000}', SPACE),
];

/// Why controls are left out.
const CONTROL: &str = "a control character, not text: a problem of the row, never rewritten";
/// Why Unicode spaces are not Twilio's.
const SPACE: &str = "a space: one plain space (Twilio's table makes two, which lengthens the text)";
/// Why combining marks are left out.
const COMBINING: &str =
    "a combining mark: part of the letter before it (n + U+0303 is the ñ of a decomposed name)";

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
/// * and every other entry of Twilio's Smart Encoding table (fullwidth and small
///   forms, modifier quotes, fractions, ornamental punctuation, …), but for
///   [`EXCEPTIONS`]
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

/// The replacement for `c` in [`smart_encode`], if any: this module's own choices first, then
/// Twilio's table but for its [`EXCEPTIONS`].
fn smart_replacement(c: char) -> Option<&'static str> {
    if is_gsm7(c) {
        return None;
    }
    if let Some(own) = own_replacement(c) {
        return Some(own);
    }
    if EXCEPTIONS.binary_search_by(|(e, _)| e.cmp(&c)).is_ok() {
        return None;
    }
    TWILIO
        .binary_search_by(|(t, _)| t.cmp(&c))
        .ok()
        .map(|i| TWILIO[i].1)
}

/// The replacements this module chose before Twilio's table (the same where both have one).
const fn own_replacement(c: char) -> Option<&'static str> {
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

    /// Each character of Twilio's table becomes what Twilio makes of it, or is a listed
    /// exception, left as it is (or given this module's own replacement); every replacement
    /// is GSM-7, and the exceptions name only characters of the table.
    #[test]
    fn twilios_table_is_applied_but_for_the_listed_exceptions() {
        assert!(TWILIO.windows(2).all(|w| w[0].0 < w[1].0), "sorted, unique");
        assert!(
            EXCEPTIONS.windows(2).all(|w| w[0].0 < w[1].0),
            "sorted, unique"
        );
        let mut applied = 0;
        for &(c, to) in TWILIO {
            let text = format!("a{c}b");
            let got = smart_encode(&text);
            if EXCEPTIONS.iter().any(|(e, _)| *e == c) {
                assert_ne!(smart_replacement(c), Some(to), "U+{:04X}", c as u32);
                continue;
            }
            assert_eq!(got, format!("a{to}b"), "U+{:04X}", c as u32);
            assert!(to.chars().all(is_gsm7), "U+{:04X} -> {to:?}", c as u32);
            applied += 1;
        }
        assert_eq!(applied + EXCEPTIONS.len(), TWILIO.len());
        for (e, why) in EXCEPTIONS {
            assert!(TWILIO.iter().any(|(c, _)| c == e), "U+{:04X}", *e as u32);
            assert!(!why.is_empty());
        }
        // What the exceptions protect: a decomposed ñ, the ʻokina, a click letter, a control.
        for kept in ["Mun\u{0303}oz", "Kaʻahumanu", "\u{01C3}Xoo", "tab\there"] {
            assert!(matches!(smart_encode(kept), Cow::Borrowed(_)), "{kept:?}");
        }
        assert_eq!(smart_encode("«ＨＩ» ½ ＄５"), "\"HI\" 1/2 $5");
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
