//! SMS length accounting: encoding, length and billable segment count.
//!
//! This module owns the answers to "which encoding does this body need
//! (GSM-7 or UCS-2), how many septets / UTF-16 code units does it take, and
//! into how many segments is it split", plus the helpers that explain *why* a
//! body went UCS-2 ([`describe_char`]) and an opt-in transliteration back to
//! GSM-7 ([`smart_encode`]). Pure std: nothing here sends anything.
//!
//! Segment counting deliberately reproduces Twilio's npm package
//! `sms-segments-calculator` v1.3.0 (checked row by row against
//! `tests/data/sms-segments.tsv`, produced by `scripts/sms-reference.mjs`), so
//! the numbers we print match what gateways bill and what clinic staff see in
//! Twilio's public calculator. Its rules, in short:
//!
//! * GSM-7 when every character is in the GSM 03.38 default alphabet or its
//!   extension table, else UCS-2 for the whole message.
//! * A segment carries 140 octets (1120 bits). A single-part message uses them
//!   all: 160 septets or 70 UTF-16 code units. Once split, every part loses 6
//!   octets to the concatenation header: 153 septets or 67 code units.
//! * Nothing is ever split across parts: not an extension character (escape +
//!   character) and not a whole grapheme cluster (surrogate pairs, emoji ZWJ
//!   sequences, flags, base letter + combining marks). Clusters follow the
//!   package's grapheme-splitter 1.0.4 (Unicode 10 rules), except that CR LF
//!   counts as two separate characters, as the package does.
//! * Empty text is one (empty) segment.

mod gsm7;
mod smart;

use std::fmt;

pub use gsm7::{gsm7_septets, is_gsm7};
pub use smart::smart_encode;

/// Bits in one SMS segment's user data (140 octets).
const SEGMENT_BITS: usize = 140 * 8;
/// Bits of the concatenation user data header carried by every part of a
/// multipart message (6 octets, as the reference package reserves).
const UDH_BITS: usize = 6 * 8;
/// Bits one GSM-7 septet occupies.
const SEPTET_BITS: usize = 7;
/// Bits one UTF-16 code unit occupies in UCS-2.
const UCS2_UNIT_BITS: usize = 16;

/// The character encoding an SMS body is sent in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum Encoding {
    /// GSM 03.38 default alphabet, 7 bits per septet.
    #[serde(rename = "GSM-7")]
    Gsm7,
    /// UTF-16 (historically UCS-2), 16 bits per code unit.
    #[serde(rename = "UCS-2")]
    Ucs2,
}

impl Encoding {
    /// The conventional name, `"GSM-7"` or `"UCS-2"` (also the serde form).
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Gsm7 => "GSM-7",
            Self::Ucs2 => "UCS-2",
        }
    }

    /// Bits one unit (septet or UTF-16 code unit) occupies on the air.
    const fn unit_bits(self) -> usize {
        match self {
            Self::Gsm7 => SEPTET_BITS,
            Self::Ucs2 => UCS2_UNIT_BITS,
        }
    }

    /// Units that fit in a message sent as one segment: 160 or 70.
    #[must_use]
    pub const fn single_segment_units(self) -> usize {
        SEGMENT_BITS / self.unit_bits()
    }

    /// Units that fit in each part of a multipart message: 153 or 67.
    #[must_use]
    pub const fn multipart_segment_units(self) -> usize {
        (SEGMENT_BITS - UDH_BITS) / self.unit_bits()
    }
}

impl fmt::Display for Encoding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How long an SMS body is, in the terms carriers bill by.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SmsCount {
    /// Encoding the whole body must be sent in.
    pub encoding: Encoding,
    /// Unicode scalar values in the text (what `str::chars` counts).
    pub chars: usize,
    /// GSM-7 septets (extension characters count 2) or UTF-16 code units
    /// (characters outside the BMP, e.g. most emoji, count 2).
    pub units: usize,
    /// Billable segments; 1 for empty text, as the reference package says.
    pub segments: usize,
    /// Units per segment that applied: 160 / 70 when the body fits in one
    /// segment, 153 / 67 once it is split.
    pub per_segment: usize,
    /// The distinct characters that forced UCS-2, in order of first
    /// appearance; empty for GSM-7.
    pub non_gsm: Vec<char>,
}

/// Measures `text` as an SMS body: encoding, length and segment count.
#[must_use]
pub fn count(text: &str) -> SmsCount {
    // Most bodies are ASCII within GSM-7's default alphabet: a septet per byte and no piece that
    // cannot be split across segments, so the count is arithmetic (no table of pieces per body).
    if text
        .bytes()
        .all(|b| b.is_ascii() && gsm7_septets(b as char) == Some(1))
    {
        let n = text.len();
        let (segments, per_segment) = if n <= Encoding::Gsm7.single_segment_units() {
            (1, Encoding::Gsm7.single_segment_units())
        } else {
            let per = Encoding::Gsm7.multipart_segment_units();
            (n.div_ceil(per), per)
        };
        return SmsCount {
            encoding: Encoding::Gsm7,
            chars: n,
            units: n,
            segments,
            per_segment,
            non_gsm: Vec::new(),
        };
    }
    count_pieces(text)
}

/// [`count`] the long way: character by character, each a piece of a segment.
fn count_pieces(text: &str) -> SmsCount {
    let mut non_gsm: Vec<char> = Vec::new();
    for c in text.chars() {
        // Linear `contains` is fine: a body has a handful of distinct
        // offenders at most, and it keeps first-appearance order for free.
        if !is_gsm7(c) && !non_gsm.contains(&c) {
            non_gsm.push(c);
        }
    }
    let encoding = if non_gsm.is_empty() {
        Encoding::Gsm7
    } else {
        Encoding::Ucs2
    };

    let mut parts = SegmentCounter::default();
    let units = match encoding {
        Encoding::Gsm7 => {
            // In a GSM-7 body every grapheme cluster is a single character:
            // clusters of several code points always include a non-GSM one
            // (CR LF being split, as the reference does).
            let mut septets = 0;
            for c in text.chars() {
                let n = gsm7_septets(c).unwrap_or(1);
                septets += n;
                parts.push(n * SEPTET_BITS);
            }
            septets
        }
        Encoding::Ucs2 => {
            let mut code_units = 0;
            for n in cluster_utf16_lens(text) {
                code_units += n;
                parts.push(n * UCS2_UNIT_BITS);
            }
            code_units
        }
    };
    let segments = parts.segments();
    let per_segment = if segments > 1 {
        encoding.multipart_segment_units()
    } else {
        encoding.single_segment_units()
    };

    SmsCount {
        encoding,
        chars: text.chars().count(),
        units,
        segments,
        per_segment,
        non_gsm,
    }
}

/// A human-readable name for `c`, for reports that explain why a body went
/// UCS-2, e.g. `"’ (U+2019 RIGHT SINGLE QUOTATION MARK)"` or
/// `"no-break space (U+00A0)"`.
///
/// Visible characters are shown followed by their code point and, for the
/// typographic punctuation and Latin letters a built-in table knows, their
/// Unicode name. Invisible ones (spaces, joiners, controls, combining marks)
/// are named in words instead, since printing them shows nothing.
#[must_use]
pub fn describe_char(c: char) -> String {
    let cp = u32::from(c);
    if let Some(words) = invisible_name(c) {
        return format!("{words} (U+{cp:04X})");
    }
    if let Ok(i) = NAMED.binary_search_by_key(&c, |&(k, _)| k) {
        return format!("{c} (U+{cp:04X} {})", NAMED[i].1);
    }
    if c.is_whitespace() {
        format!("space character (U+{cp:04X})")
    } else if c.is_control() {
        format!("control character (U+{cp:04X})")
    } else {
        format!("{c} (U+{cp:04X})")
    }
}

/// Words for characters that print as nothing (or only as a modifier of
/// their neighbour), so a report shows something a person can act on.
const fn invisible_name(c: char) -> Option<&'static str> {
    Some(match c {
        '\t' => "tab",
        '\n' => "line feed",
        '\r' => "carriage return",
        '\u{000C}' => "form feed",
        '\u{001B}' => "escape",
        '\u{00A0}' => "no-break space",
        '\u{00AD}' => "soft hyphen",
        '\u{0300}' => "combining grave accent",
        '\u{0301}' => "combining acute accent",
        '\u{0302}' => "combining circumflex accent",
        '\u{0303}' => "combining tilde",
        '\u{0304}' => "combining macron",
        '\u{0308}' => "combining diaeresis",
        '\u{030A}' => "combining ring above",
        '\u{030C}' => "combining caron",
        '\u{0327}' => "combining cedilla",
        '\u{1680}' => "ogham space mark",
        '\u{2000}' => "en quad",
        '\u{2001}' => "em quad",
        '\u{2002}' => "en space",
        '\u{2003}' => "em space",
        '\u{2004}' => "three-per-em space",
        '\u{2005}' => "four-per-em space",
        '\u{2006}' => "six-per-em space",
        '\u{2007}' => "figure space",
        '\u{2008}' => "punctuation space",
        '\u{2009}' => "thin space",
        '\u{200A}' => "hair space",
        '\u{200B}' => "zero-width space",
        '\u{200C}' => "zero-width non-joiner",
        '\u{200D}' => "zero-width joiner",
        '\u{200E}' => "left-to-right mark",
        '\u{200F}' => "right-to-left mark",
        '\u{2028}' => "line separator",
        '\u{2029}' => "paragraph separator",
        '\u{202F}' => "narrow no-break space",
        '\u{205F}' => "medium mathematical space",
        '\u{2060}' => "word joiner",
        '\u{3000}' => "ideographic space",
        '\u{FE0E}' => "variation selector-15 (text style)",
        '\u{FE0F}' => "variation selector-16 (emoji style)",
        '\u{FEFF}' => "zero-width no-break space (byte order mark)",
        _ => return None,
    })
}

/// Replays the reference package's segment builder over the sizes, in bits,
/// of the message's indivisible pieces (characters for GSM-7, grapheme
/// clusters for UCS-2).
///
/// The quirk it must keep: the first segment is filled to the full 1120 bits;
/// only when a piece no longer fits is the header retrofitted to it, and the
/// pieces it then pushes out move, whole, to the second segment. Every later
/// segment starts with its header. A piece too big for an empty segment is
/// still placed (overfilling it), as the package does.
#[derive(Debug, Default)]
struct SegmentCounter {
    /// Sizes of the pieces in the first segment, needed for the retrofit.
    first: Vec<usize>,
    /// Bits used in the first segment.
    first_bits: usize,
    /// Segments beyond the first.
    more: usize,
    /// Bits used in the last segment, once there is more than one.
    last_bits: usize,
}

impl SegmentCounter {
    /// Adds a piece of `bits` to the message.
    fn push(&mut self, bits: usize) {
        let used = if self.more == 0 {
            self.first_bits
        } else {
            self.last_bits
        };
        if used + bits > SEGMENT_BITS {
            self.more += 1;
            self.last_bits = UDH_BITS;
            if self.more == 1 {
                self.first_bits += UDH_BITS;
                let mut moved = 0;
                while self.first_bits > SEGMENT_BITS {
                    let Some(piece) = self.first.pop() else { break };
                    self.first_bits -= piece;
                    moved += piece;
                }
                self.last_bits += moved;
            }
        }
        if self.more == 0 {
            self.first.push(bits);
            self.first_bits += bits;
        } else {
            self.last_bits += bits;
        }
    }

    /// Segments used so far (at least 1, even for no pieces).
    const fn segments(&self) -> usize {
        1 + self.more
    }
}

/// UTF-16 length of each grapheme cluster of `text`, with CR LF counted as two
/// clusters, exactly as the reference package splits a UCS-2 message.
fn cluster_utf16_lens(text: &str) -> Vec<usize> {
    let props: Vec<(Gcb, usize)> = text.chars().map(|c| (gcb(c), c.len_utf16())).collect();
    let mut lens = Vec::new();
    let mut all: Vec<Gcb> = Vec::new();
    let mut i = 0;
    while i < props.len() {
        all.clear();
        all.push(props[i].0);
        let mut j = i + 1;
        while j < props.len() {
            all.push(props[j].0);
            if should_break(&all) {
                all.pop();
                break;
            }
            j += 1;
        }
        if all == [Gcb::Cr, Gcb::Lf] {
            lens.extend([1, 1]);
        } else {
            lens.push(props[i..j].iter().map(|&(_, n)| n).sum());
        }
        i = j;
    }
    lens
}

/// Grapheme cluster break property, Unicode 10 (as in grapheme-splitter).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Gcb {
    Cr,
    Lf,
    Control,
    Extend,
    RegionalIndicator,
    SpacingMark,
    L,
    V,
    T,
    Lv,
    Lvt,
    Other,
    Prepend,
    EBase,
    EModifier,
    Zwj,
    GlueAfterZwj,
    EBaseGaz,
}

/// Grapheme cluster break property of `c`.
fn gcb(c: char) -> Gcb {
    const TABLES: [(&[u32], Gcb); 13] = [
        (GCB_CONTROL, Gcb::Control),
        (GCB_EXTEND, Gcb::Extend),
        (GCB_REGIONAL_INDICATOR, Gcb::RegionalIndicator),
        (GCB_SPACING_MARK, Gcb::SpacingMark),
        (GCB_L, Gcb::L),
        (GCB_V, Gcb::V),
        (GCB_T, Gcb::T),
        (GCB_PREPEND, Gcb::Prepend),
        (GCB_E_BASE, Gcb::EBase),
        (GCB_E_MODIFIER, Gcb::EModifier),
        (GCB_ZWJ, Gcb::Zwj),
        (GCB_GLUE_AFTER_ZWJ, Gcb::GlueAfterZwj),
        (GCB_E_BASE_GAZ, Gcb::EBaseGaz),
    ];
    let cp = u32::from(c);
    match cp {
        0x0D => return Gcb::Cr,
        0x0A => return Gcb::Lf,
        // Precomposed Hangul syllables: LV every 28th code point, else LVT.
        0xAC00..=0xD7A3 => {
            return if (cp - 0xAC00) % 28 == 0 {
                Gcb::Lv
            } else {
                Gcb::Lvt
            };
        }
        _ => {}
    }
    TABLES
        .iter()
        .find(|(table, _)| in_ranges(table, cp))
        .map_or(Gcb::Other, |&(_, prop)| prop)
}

/// Whether `cp` lies in one of the inclusive, sorted `[start, end]` pairs of
/// the flattened `table`.
fn in_ranges(table: &[u32], cp: u32) -> bool {
    let (pairs, _) = table.as_chunks::<2>();
    let i = pairs.partition_point(|&[_, end]| end < cp);
    pairs.get(i).is_some_and(|&[start, _]| start <= cp)
}

/// grapheme-splitter 1.0.4's `shouldBreak`, ported as is (including its
/// lookahead shortcuts) because matching the reference matters more here than
/// matching today's Unicode. `all` is the cluster so far plus the candidate:
/// the cluster's first property, those after it, and the candidate last.
fn should_break(all: &[Gcb]) -> bool {
    use Gcb::{
        Control, Cr, EBase, EBaseGaz, EModifier, Extend, GlueAfterZwj, L, Lf, Lv, Lvt, Prepend,
        RegionalIndicator as Ri, SpacingMark, T, V, Zwj,
    };
    let len = all.len();
    let (start, next, previous) = (all[0], all[len - 1], all[len - 2]);
    let mid = &all[1..len - 1];

    // Lookahead terminator for GB10: E_Modifier after Extends not on a base.
    if let Some(e) = all.iter().rposition(|&p| p == EModifier)
        && e > 1
        && all[1..e].iter().all(|&p| p == Extend)
        && !matches!(start, Extend | EBase | EBaseGaz)
    {
        return true;
    }
    // Lookahead terminator for GB12/GB13 (regional indicator pairs).
    if let Some(r) = all.iter().rposition(|&p| p == Ri)
        && r > 0
        && all[1..r].iter().all(|&p| p == Ri)
        && !matches!(previous, Prepend | Ri)
    {
        return true;
    }
    if previous == Cr && next == Lf {
        return false; // GB3
    }
    if matches!(previous, Control | Cr | Lf) || matches!(next, Control | Cr | Lf) {
        return true; // GB4, GB5
    }
    if (previous == L && matches!(next, L | V | Lv | Lvt))
        || (matches!(previous, Lv | V) && matches!(next, V | T))
        || (matches!(previous, Lvt | T) && next == T)
    {
        return false; // GB6-GB8: Hangul syllable sequences
    }
    if matches!(next, Extend | Zwj | SpacingMark) || previous == Prepend {
        return false; // GB9, GB9a, GB9b
    }
    // GB10: (E_Base | E_Base_GAZ) Extend* × E_Modifier, with the package's way
    // of finding the base (just before the last Extend, if any).
    let base = match all.iter().rposition(|&p| p == Extend) {
        Some(x) => x.checked_sub(1),
        None => Some(len - 2),
    };
    if let Some(b) = base
        && matches!(all[b], EBase | EBaseGaz)
        && all[b + 1..len - 1].iter().all(|&p| p == Extend)
        && next == EModifier
    {
        return false;
    }
    if previous == Zwj && matches!(next, GlueAfterZwj | EBaseGaz) {
        return false; // GB11
    }
    if mid.contains(&Ri) {
        return true; // GB12/GB13: a flag is exactly two indicators
    }
    !(previous == Ri && next == Ri)
}

/// Typographic punctuation and Latin letters (Latin-1 Supplement, Latin
/// Extended-A, Romanian comma-below letters) with their Unicode names, sorted
/// by character for binary search. Names come from the Unicode Character
/// Database.
const NAMED: &[(char, &str)] = &[
    ('[', "LEFT SQUARE BRACKET"),
    ('\\', "REVERSE SOLIDUS"),
    (']', "RIGHT SQUARE BRACKET"),
    ('^', "CIRCUMFLEX ACCENT"),
    ('`', "GRAVE ACCENT"),
    ('{', "LEFT CURLY BRACKET"),
    ('|', "VERTICAL LINE"),
    ('}', "RIGHT CURLY BRACKET"),
    ('~', "TILDE"),
    ('¡', "INVERTED EXCLAMATION MARK"),
    ('¢', "CENT SIGN"),
    ('£', "POUND SIGN"),
    ('¤', "CURRENCY SIGN"),
    ('¥', "YEN SIGN"),
    ('¦', "BROKEN BAR"),
    ('§', "SECTION SIGN"),
    ('¨', "DIAERESIS"),
    ('©', "COPYRIGHT SIGN"),
    ('ª', "FEMININE ORDINAL INDICATOR"),
    ('«', "LEFT-POINTING DOUBLE ANGLE QUOTATION MARK"),
    ('¬', "NOT SIGN"),
    ('®', "REGISTERED SIGN"),
    ('¯', "MACRON"),
    ('°', "DEGREE SIGN"),
    ('±', "PLUS-MINUS SIGN"),
    ('²', "SUPERSCRIPT TWO"),
    ('³', "SUPERSCRIPT THREE"),
    ('´', "ACUTE ACCENT"),
    ('µ', "MICRO SIGN"),
    ('¶', "PILCROW SIGN"),
    ('·', "MIDDLE DOT"),
    ('¸', "CEDILLA"),
    ('¹', "SUPERSCRIPT ONE"),
    ('º', "MASCULINE ORDINAL INDICATOR"),
    ('»', "RIGHT-POINTING DOUBLE ANGLE QUOTATION MARK"),
    ('¼', "VULGAR FRACTION ONE QUARTER"),
    ('½', "VULGAR FRACTION ONE HALF"),
    ('¾', "VULGAR FRACTION THREE QUARTERS"),
    ('¿', "INVERTED QUESTION MARK"),
    ('À', "LATIN CAPITAL LETTER A WITH GRAVE"),
    ('Á', "LATIN CAPITAL LETTER A WITH ACUTE"),
    ('Â', "LATIN CAPITAL LETTER A WITH CIRCUMFLEX"),
    ('Ã', "LATIN CAPITAL LETTER A WITH TILDE"),
    ('Ä', "LATIN CAPITAL LETTER A WITH DIAERESIS"),
    ('Å', "LATIN CAPITAL LETTER A WITH RING ABOVE"),
    ('Æ', "LATIN CAPITAL LETTER AE"),
    ('Ç', "LATIN CAPITAL LETTER C WITH CEDILLA"),
    ('È', "LATIN CAPITAL LETTER E WITH GRAVE"),
    ('É', "LATIN CAPITAL LETTER E WITH ACUTE"),
    ('Ê', "LATIN CAPITAL LETTER E WITH CIRCUMFLEX"),
    ('Ë', "LATIN CAPITAL LETTER E WITH DIAERESIS"),
    ('Ì', "LATIN CAPITAL LETTER I WITH GRAVE"),
    ('Í', "LATIN CAPITAL LETTER I WITH ACUTE"),
    ('Î', "LATIN CAPITAL LETTER I WITH CIRCUMFLEX"),
    ('Ï', "LATIN CAPITAL LETTER I WITH DIAERESIS"),
    ('Ð', "LATIN CAPITAL LETTER ETH"),
    ('Ñ', "LATIN CAPITAL LETTER N WITH TILDE"),
    ('Ò', "LATIN CAPITAL LETTER O WITH GRAVE"),
    ('Ó', "LATIN CAPITAL LETTER O WITH ACUTE"),
    ('Ô', "LATIN CAPITAL LETTER O WITH CIRCUMFLEX"),
    ('Õ', "LATIN CAPITAL LETTER O WITH TILDE"),
    ('Ö', "LATIN CAPITAL LETTER O WITH DIAERESIS"),
    ('×', "MULTIPLICATION SIGN"),
    ('Ø', "LATIN CAPITAL LETTER O WITH STROKE"),
    ('Ù', "LATIN CAPITAL LETTER U WITH GRAVE"),
    ('Ú', "LATIN CAPITAL LETTER U WITH ACUTE"),
    ('Û', "LATIN CAPITAL LETTER U WITH CIRCUMFLEX"),
    ('Ü', "LATIN CAPITAL LETTER U WITH DIAERESIS"),
    ('Ý', "LATIN CAPITAL LETTER Y WITH ACUTE"),
    ('Þ', "LATIN CAPITAL LETTER THORN"),
    ('ß', "LATIN SMALL LETTER SHARP S"),
    ('à', "LATIN SMALL LETTER A WITH GRAVE"),
    ('á', "LATIN SMALL LETTER A WITH ACUTE"),
    ('â', "LATIN SMALL LETTER A WITH CIRCUMFLEX"),
    ('ã', "LATIN SMALL LETTER A WITH TILDE"),
    ('ä', "LATIN SMALL LETTER A WITH DIAERESIS"),
    ('å', "LATIN SMALL LETTER A WITH RING ABOVE"),
    ('æ', "LATIN SMALL LETTER AE"),
    ('ç', "LATIN SMALL LETTER C WITH CEDILLA"),
    ('è', "LATIN SMALL LETTER E WITH GRAVE"),
    ('é', "LATIN SMALL LETTER E WITH ACUTE"),
    ('ê', "LATIN SMALL LETTER E WITH CIRCUMFLEX"),
    ('ë', "LATIN SMALL LETTER E WITH DIAERESIS"),
    ('ì', "LATIN SMALL LETTER I WITH GRAVE"),
    ('í', "LATIN SMALL LETTER I WITH ACUTE"),
    ('î', "LATIN SMALL LETTER I WITH CIRCUMFLEX"),
    ('ï', "LATIN SMALL LETTER I WITH DIAERESIS"),
    ('ð', "LATIN SMALL LETTER ETH"),
    ('ñ', "LATIN SMALL LETTER N WITH TILDE"),
    ('ò', "LATIN SMALL LETTER O WITH GRAVE"),
    ('ó', "LATIN SMALL LETTER O WITH ACUTE"),
    ('ô', "LATIN SMALL LETTER O WITH CIRCUMFLEX"),
    ('õ', "LATIN SMALL LETTER O WITH TILDE"),
    ('ö', "LATIN SMALL LETTER O WITH DIAERESIS"),
    ('÷', "DIVISION SIGN"),
    ('ø', "LATIN SMALL LETTER O WITH STROKE"),
    ('ù', "LATIN SMALL LETTER U WITH GRAVE"),
    ('ú', "LATIN SMALL LETTER U WITH ACUTE"),
    ('û', "LATIN SMALL LETTER U WITH CIRCUMFLEX"),
    ('ü', "LATIN SMALL LETTER U WITH DIAERESIS"),
    ('ý', "LATIN SMALL LETTER Y WITH ACUTE"),
    ('þ', "LATIN SMALL LETTER THORN"),
    ('ÿ', "LATIN SMALL LETTER Y WITH DIAERESIS"),
    ('Ā', "LATIN CAPITAL LETTER A WITH MACRON"),
    ('ā', "LATIN SMALL LETTER A WITH MACRON"),
    ('Ă', "LATIN CAPITAL LETTER A WITH BREVE"),
    ('ă', "LATIN SMALL LETTER A WITH BREVE"),
    ('Ą', "LATIN CAPITAL LETTER A WITH OGONEK"),
    ('ą', "LATIN SMALL LETTER A WITH OGONEK"),
    ('Ć', "LATIN CAPITAL LETTER C WITH ACUTE"),
    ('ć', "LATIN SMALL LETTER C WITH ACUTE"),
    ('Ĉ', "LATIN CAPITAL LETTER C WITH CIRCUMFLEX"),
    ('ĉ', "LATIN SMALL LETTER C WITH CIRCUMFLEX"),
    ('Ċ', "LATIN CAPITAL LETTER C WITH DOT ABOVE"),
    ('ċ', "LATIN SMALL LETTER C WITH DOT ABOVE"),
    ('Č', "LATIN CAPITAL LETTER C WITH CARON"),
    ('č', "LATIN SMALL LETTER C WITH CARON"),
    ('Ď', "LATIN CAPITAL LETTER D WITH CARON"),
    ('ď', "LATIN SMALL LETTER D WITH CARON"),
    ('Đ', "LATIN CAPITAL LETTER D WITH STROKE"),
    ('đ', "LATIN SMALL LETTER D WITH STROKE"),
    ('Ē', "LATIN CAPITAL LETTER E WITH MACRON"),
    ('ē', "LATIN SMALL LETTER E WITH MACRON"),
    ('Ĕ', "LATIN CAPITAL LETTER E WITH BREVE"),
    ('ĕ', "LATIN SMALL LETTER E WITH BREVE"),
    ('Ė', "LATIN CAPITAL LETTER E WITH DOT ABOVE"),
    ('ė', "LATIN SMALL LETTER E WITH DOT ABOVE"),
    ('Ę', "LATIN CAPITAL LETTER E WITH OGONEK"),
    ('ę', "LATIN SMALL LETTER E WITH OGONEK"),
    ('Ě', "LATIN CAPITAL LETTER E WITH CARON"),
    ('ě', "LATIN SMALL LETTER E WITH CARON"),
    ('Ĝ', "LATIN CAPITAL LETTER G WITH CIRCUMFLEX"),
    ('ĝ', "LATIN SMALL LETTER G WITH CIRCUMFLEX"),
    ('Ğ', "LATIN CAPITAL LETTER G WITH BREVE"),
    ('ğ', "LATIN SMALL LETTER G WITH BREVE"),
    ('Ġ', "LATIN CAPITAL LETTER G WITH DOT ABOVE"),
    ('ġ', "LATIN SMALL LETTER G WITH DOT ABOVE"),
    ('Ģ', "LATIN CAPITAL LETTER G WITH CEDILLA"),
    ('ģ', "LATIN SMALL LETTER G WITH CEDILLA"),
    ('Ĥ', "LATIN CAPITAL LETTER H WITH CIRCUMFLEX"),
    ('ĥ', "LATIN SMALL LETTER H WITH CIRCUMFLEX"),
    ('Ħ', "LATIN CAPITAL LETTER H WITH STROKE"),
    ('ħ', "LATIN SMALL LETTER H WITH STROKE"),
    ('Ĩ', "LATIN CAPITAL LETTER I WITH TILDE"),
    ('ĩ', "LATIN SMALL LETTER I WITH TILDE"),
    ('Ī', "LATIN CAPITAL LETTER I WITH MACRON"),
    ('ī', "LATIN SMALL LETTER I WITH MACRON"),
    ('Ĭ', "LATIN CAPITAL LETTER I WITH BREVE"),
    ('ĭ', "LATIN SMALL LETTER I WITH BREVE"),
    ('Į', "LATIN CAPITAL LETTER I WITH OGONEK"),
    ('į', "LATIN SMALL LETTER I WITH OGONEK"),
    ('İ', "LATIN CAPITAL LETTER I WITH DOT ABOVE"),
    ('ı', "LATIN SMALL LETTER DOTLESS I"),
    ('Ĳ', "LATIN CAPITAL LIGATURE IJ"),
    ('ĳ', "LATIN SMALL LIGATURE IJ"),
    ('Ĵ', "LATIN CAPITAL LETTER J WITH CIRCUMFLEX"),
    ('ĵ', "LATIN SMALL LETTER J WITH CIRCUMFLEX"),
    ('Ķ', "LATIN CAPITAL LETTER K WITH CEDILLA"),
    ('ķ', "LATIN SMALL LETTER K WITH CEDILLA"),
    ('ĸ', "LATIN SMALL LETTER KRA"),
    ('Ĺ', "LATIN CAPITAL LETTER L WITH ACUTE"),
    ('ĺ', "LATIN SMALL LETTER L WITH ACUTE"),
    ('Ļ', "LATIN CAPITAL LETTER L WITH CEDILLA"),
    ('ļ', "LATIN SMALL LETTER L WITH CEDILLA"),
    ('Ľ', "LATIN CAPITAL LETTER L WITH CARON"),
    ('ľ', "LATIN SMALL LETTER L WITH CARON"),
    ('Ŀ', "LATIN CAPITAL LETTER L WITH MIDDLE DOT"),
    ('ŀ', "LATIN SMALL LETTER L WITH MIDDLE DOT"),
    ('Ł', "LATIN CAPITAL LETTER L WITH STROKE"),
    ('ł', "LATIN SMALL LETTER L WITH STROKE"),
    ('Ń', "LATIN CAPITAL LETTER N WITH ACUTE"),
    ('ń', "LATIN SMALL LETTER N WITH ACUTE"),
    ('Ņ', "LATIN CAPITAL LETTER N WITH CEDILLA"),
    ('ņ', "LATIN SMALL LETTER N WITH CEDILLA"),
    ('Ň', "LATIN CAPITAL LETTER N WITH CARON"),
    ('ň', "LATIN SMALL LETTER N WITH CARON"),
    ('ŉ', "LATIN SMALL LETTER N PRECEDED BY APOSTROPHE"),
    ('Ŋ', "LATIN CAPITAL LETTER ENG"),
    ('ŋ', "LATIN SMALL LETTER ENG"),
    ('Ō', "LATIN CAPITAL LETTER O WITH MACRON"),
    ('ō', "LATIN SMALL LETTER O WITH MACRON"),
    ('Ŏ', "LATIN CAPITAL LETTER O WITH BREVE"),
    ('ŏ', "LATIN SMALL LETTER O WITH BREVE"),
    ('Ő', "LATIN CAPITAL LETTER O WITH DOUBLE ACUTE"),
    ('ő', "LATIN SMALL LETTER O WITH DOUBLE ACUTE"),
    ('Œ', "LATIN CAPITAL LIGATURE OE"),
    ('œ', "LATIN SMALL LIGATURE OE"),
    ('Ŕ', "LATIN CAPITAL LETTER R WITH ACUTE"),
    ('ŕ', "LATIN SMALL LETTER R WITH ACUTE"),
    ('Ŗ', "LATIN CAPITAL LETTER R WITH CEDILLA"),
    ('ŗ', "LATIN SMALL LETTER R WITH CEDILLA"),
    ('Ř', "LATIN CAPITAL LETTER R WITH CARON"),
    ('ř', "LATIN SMALL LETTER R WITH CARON"),
    ('Ś', "LATIN CAPITAL LETTER S WITH ACUTE"),
    ('ś', "LATIN SMALL LETTER S WITH ACUTE"),
    ('Ŝ', "LATIN CAPITAL LETTER S WITH CIRCUMFLEX"),
    ('ŝ', "LATIN SMALL LETTER S WITH CIRCUMFLEX"),
    ('Ş', "LATIN CAPITAL LETTER S WITH CEDILLA"),
    ('ş', "LATIN SMALL LETTER S WITH CEDILLA"),
    ('Š', "LATIN CAPITAL LETTER S WITH CARON"),
    ('š', "LATIN SMALL LETTER S WITH CARON"),
    ('Ţ', "LATIN CAPITAL LETTER T WITH CEDILLA"),
    ('ţ', "LATIN SMALL LETTER T WITH CEDILLA"),
    ('Ť', "LATIN CAPITAL LETTER T WITH CARON"),
    ('ť', "LATIN SMALL LETTER T WITH CARON"),
    ('Ŧ', "LATIN CAPITAL LETTER T WITH STROKE"),
    ('ŧ', "LATIN SMALL LETTER T WITH STROKE"),
    ('Ũ', "LATIN CAPITAL LETTER U WITH TILDE"),
    ('ũ', "LATIN SMALL LETTER U WITH TILDE"),
    ('Ū', "LATIN CAPITAL LETTER U WITH MACRON"),
    ('ū', "LATIN SMALL LETTER U WITH MACRON"),
    ('Ŭ', "LATIN CAPITAL LETTER U WITH BREVE"),
    ('ŭ', "LATIN SMALL LETTER U WITH BREVE"),
    ('Ů', "LATIN CAPITAL LETTER U WITH RING ABOVE"),
    ('ů', "LATIN SMALL LETTER U WITH RING ABOVE"),
    ('Ű', "LATIN CAPITAL LETTER U WITH DOUBLE ACUTE"),
    ('ű', "LATIN SMALL LETTER U WITH DOUBLE ACUTE"),
    ('Ų', "LATIN CAPITAL LETTER U WITH OGONEK"),
    ('ų', "LATIN SMALL LETTER U WITH OGONEK"),
    ('Ŵ', "LATIN CAPITAL LETTER W WITH CIRCUMFLEX"),
    ('ŵ', "LATIN SMALL LETTER W WITH CIRCUMFLEX"),
    ('Ŷ', "LATIN CAPITAL LETTER Y WITH CIRCUMFLEX"),
    ('ŷ', "LATIN SMALL LETTER Y WITH CIRCUMFLEX"),
    ('Ÿ', "LATIN CAPITAL LETTER Y WITH DIAERESIS"),
    ('Ź', "LATIN CAPITAL LETTER Z WITH ACUTE"),
    ('ź', "LATIN SMALL LETTER Z WITH ACUTE"),
    ('Ż', "LATIN CAPITAL LETTER Z WITH DOT ABOVE"),
    ('ż', "LATIN SMALL LETTER Z WITH DOT ABOVE"),
    ('Ž', "LATIN CAPITAL LETTER Z WITH CARON"),
    ('ž', "LATIN SMALL LETTER Z WITH CARON"),
    ('ſ', "LATIN SMALL LETTER LONG S"),
    ('Ș', "LATIN CAPITAL LETTER S WITH COMMA BELOW"),
    ('ș', "LATIN SMALL LETTER S WITH COMMA BELOW"),
    ('Ț', "LATIN CAPITAL LETTER T WITH COMMA BELOW"),
    ('ț', "LATIN SMALL LETTER T WITH COMMA BELOW"),
    ('‐', "HYPHEN"),
    ('‑', "NON-BREAKING HYPHEN"),
    ('‒', "FIGURE DASH"),
    ('–', "EN DASH"),
    ('—', "EM DASH"),
    ('―', "HORIZONTAL BAR"),
    ('‖', "DOUBLE VERTICAL LINE"),
    ('‗', "DOUBLE LOW LINE"),
    ('‘', "LEFT SINGLE QUOTATION MARK"),
    ('’', "RIGHT SINGLE QUOTATION MARK"),
    ('‚', "SINGLE LOW-9 QUOTATION MARK"),
    ('‛', "SINGLE HIGH-REVERSED-9 QUOTATION MARK"),
    ('“', "LEFT DOUBLE QUOTATION MARK"),
    ('”', "RIGHT DOUBLE QUOTATION MARK"),
    ('„', "DOUBLE LOW-9 QUOTATION MARK"),
    ('‟', "DOUBLE HIGH-REVERSED-9 QUOTATION MARK"),
    ('†', "DAGGER"),
    ('‡', "DOUBLE DAGGER"),
    ('•', "BULLET"),
    ('‣', "TRIANGULAR BULLET"),
    ('․', "ONE DOT LEADER"),
    ('‥', "TWO DOT LEADER"),
    ('…', "HORIZONTAL ELLIPSIS"),
    ('‧', "HYPHENATION POINT"),
    ('‰', "PER MILLE SIGN"),
    ('′', "PRIME"),
    ('″', "DOUBLE PRIME"),
    ('‹', "SINGLE LEFT-POINTING ANGLE QUOTATION MARK"),
    ('›', "SINGLE RIGHT-POINTING ANGLE QUOTATION MARK"),
    ('⁃', "HYPHEN BULLET"),
    ('⁄', "FRACTION SLASH"),
    ('€', "EURO SIGN"),
    ('№', "NUMERO SIGN"),
    ('™', "TRADE MARK SIGN"),
    ('−', "MINUS SIGN"),
    ('∙', "BULLET OPERATOR"),
    ('●', "BLACK CIRCLE"),
];

// Grapheme cluster break property ranges, flattened `[start, end, start, end,
// ...]` inclusive pairs sorted by start; CR, LF and the Hangul syllables (LV,
// LVT) are computed in `gcb` instead.
// Generated by scripts/sms-reference.mjs --gcb-table from grapheme-splitter 1.0.4.
const GCB_CONTROL: &[u32] = &[
    0x0000, 0x0009, 0x000B, 0x000C, 0x000E, 0x001F, 0x007F, 0x009F, 0x00AD, 0x00AD, 0x061C, 0x061C,
    0x180E, 0x180E, 0x200B, 0x200B, 0x200E, 0x200F, 0x2028, 0x202E, 0x2060, 0x206F, 0xD800, 0xDFFF,
    0xFEFF, 0xFEFF, 0xFFF0, 0xFFFB, 0x1BCA0, 0x1BCA3, 0x1D173, 0x1D17A, 0xE0000, 0xE001F, 0xE0080,
    0xE00FF, 0xE01F0, 0xE0FFF,
];
const GCB_EXTEND: &[u32] = &[
    0x0300, 0x036F, 0x0483, 0x0489, 0x0591, 0x05BD, 0x05BF, 0x05BF, 0x05C1, 0x05C2, 0x05C4, 0x05C5,
    0x05C7, 0x05C7, 0x0610, 0x061A, 0x064B, 0x065F, 0x0670, 0x0670, 0x06D6, 0x06DC, 0x06DF, 0x06E4,
    0x06E7, 0x06E8, 0x06EA, 0x06ED, 0x0711, 0x0711, 0x0730, 0x074A, 0x07A6, 0x07B0, 0x07EB, 0x07F3,
    0x0816, 0x0819, 0x081B, 0x0823, 0x0825, 0x0827, 0x0829, 0x082D, 0x0859, 0x085B, 0x08D4, 0x08E1,
    0x08E3, 0x0902, 0x093A, 0x093A, 0x093C, 0x093C, 0x0941, 0x0948, 0x094D, 0x094D, 0x0951, 0x0957,
    0x0962, 0x0963, 0x0981, 0x0981, 0x09BC, 0x09BC, 0x09BE, 0x09BE, 0x09C1, 0x09C4, 0x09CD, 0x09CD,
    0x09D7, 0x09D7, 0x09E2, 0x09E3, 0x0A01, 0x0A02, 0x0A3C, 0x0A3C, 0x0A41, 0x0A42, 0x0A47, 0x0A48,
    0x0A4B, 0x0A4D, 0x0A51, 0x0A51, 0x0A70, 0x0A71, 0x0A75, 0x0A75, 0x0A81, 0x0A82, 0x0ABC, 0x0ABC,
    0x0AC1, 0x0AC5, 0x0AC7, 0x0AC8, 0x0ACD, 0x0ACD, 0x0AE2, 0x0AE3, 0x0AFA, 0x0AFF, 0x0B01, 0x0B01,
    0x0B3C, 0x0B3C, 0x0B3E, 0x0B3F, 0x0B41, 0x0B44, 0x0B4D, 0x0B4D, 0x0B56, 0x0B57, 0x0B62, 0x0B63,
    0x0B82, 0x0B82, 0x0BBE, 0x0BBE, 0x0BC0, 0x0BC0, 0x0BCD, 0x0BCD, 0x0BD7, 0x0BD7, 0x0C00, 0x0C00,
    0x0C3E, 0x0C40, 0x0C46, 0x0C48, 0x0C4A, 0x0C4D, 0x0C55, 0x0C56, 0x0C62, 0x0C63, 0x0C81, 0x0C81,
    0x0CBC, 0x0CBC, 0x0CBF, 0x0CBF, 0x0CC2, 0x0CC2, 0x0CC6, 0x0CC6, 0x0CCC, 0x0CCD, 0x0CD5, 0x0CD6,
    0x0CE2, 0x0CE3, 0x0D00, 0x0D01, 0x0D3B, 0x0D3C, 0x0D3E, 0x0D3E, 0x0D41, 0x0D44, 0x0D4D, 0x0D4D,
    0x0D57, 0x0D57, 0x0D62, 0x0D63, 0x0DCA, 0x0DCA, 0x0DCF, 0x0DCF, 0x0DD2, 0x0DD4, 0x0DD6, 0x0DD6,
    0x0DDF, 0x0DDF, 0x0E31, 0x0E31, 0x0E34, 0x0E3A, 0x0E47, 0x0E4E, 0x0EB1, 0x0EB1, 0x0EB4, 0x0EB9,
    0x0EBB, 0x0EBC, 0x0EC8, 0x0ECD, 0x0F18, 0x0F19, 0x0F35, 0x0F35, 0x0F37, 0x0F37, 0x0F39, 0x0F39,
    0x0F71, 0x0F7E, 0x0F80, 0x0F84, 0x0F86, 0x0F87, 0x0F8D, 0x0F97, 0x0F99, 0x0FBC, 0x0FC6, 0x0FC6,
    0x102D, 0x1030, 0x1032, 0x1037, 0x1039, 0x103A, 0x103D, 0x103E, 0x1058, 0x1059, 0x105E, 0x1060,
    0x1071, 0x1074, 0x1082, 0x1082, 0x1085, 0x1086, 0x108D, 0x108D, 0x109D, 0x109D, 0x135D, 0x135F,
    0x1712, 0x1714, 0x1732, 0x1734, 0x1752, 0x1753, 0x1772, 0x1773, 0x17B4, 0x17B5, 0x17B7, 0x17BD,
    0x17C6, 0x17C6, 0x17C9, 0x17D3, 0x17DD, 0x17DD, 0x180B, 0x180D, 0x1885, 0x1886, 0x18A9, 0x18A9,
    0x1920, 0x1922, 0x1927, 0x1928, 0x1932, 0x1932, 0x1939, 0x193B, 0x1A17, 0x1A18, 0x1A1B, 0x1A1B,
    0x1A56, 0x1A56, 0x1A58, 0x1A5E, 0x1A60, 0x1A60, 0x1A62, 0x1A62, 0x1A65, 0x1A6C, 0x1A73, 0x1A7C,
    0x1A7F, 0x1A7F, 0x1AB0, 0x1ABE, 0x1B00, 0x1B03, 0x1B34, 0x1B34, 0x1B36, 0x1B3A, 0x1B3C, 0x1B3C,
    0x1B42, 0x1B42, 0x1B6B, 0x1B73, 0x1B80, 0x1B81, 0x1BA2, 0x1BA5, 0x1BA8, 0x1BA9, 0x1BAB, 0x1BAD,
    0x1BE6, 0x1BE6, 0x1BE8, 0x1BE9, 0x1BED, 0x1BED, 0x1BEF, 0x1BF1, 0x1C2C, 0x1C33, 0x1C36, 0x1C37,
    0x1CD0, 0x1CD2, 0x1CD4, 0x1CE0, 0x1CE2, 0x1CE8, 0x1CED, 0x1CED, 0x1CF4, 0x1CF4, 0x1CF8, 0x1CF9,
    0x1DC0, 0x1DF9, 0x1DFB, 0x1DFF, 0x200C, 0x200C, 0x20D0, 0x20F0, 0x2CEF, 0x2CF1, 0x2D7F, 0x2D7F,
    0x2DE0, 0x2DFF, 0x302A, 0x302F, 0x3099, 0x309A, 0xA66F, 0xA672, 0xA674, 0xA67D, 0xA69E, 0xA69F,
    0xA6F0, 0xA6F1, 0xA802, 0xA802, 0xA806, 0xA806, 0xA80B, 0xA80B, 0xA825, 0xA826, 0xA8C4, 0xA8C5,
    0xA8E0, 0xA8F1, 0xA926, 0xA92D, 0xA947, 0xA951, 0xA980, 0xA982, 0xA9B3, 0xA9B3, 0xA9B6, 0xA9B9,
    0xA9BC, 0xA9BC, 0xA9E5, 0xA9E5, 0xAA29, 0xAA2E, 0xAA31, 0xAA32, 0xAA35, 0xAA36, 0xAA43, 0xAA43,
    0xAA4C, 0xAA4C, 0xAA7C, 0xAA7C, 0xAAB0, 0xAAB0, 0xAAB2, 0xAAB4, 0xAAB7, 0xAAB8, 0xAABE, 0xAABF,
    0xAAC1, 0xAAC1, 0xAAEC, 0xAAED, 0xAAF6, 0xAAF6, 0xABE5, 0xABE5, 0xABE8, 0xABE8, 0xABED, 0xABED,
    0xFB1E, 0xFB1E, 0xFE00, 0xFE0F, 0xFE20, 0xFE2F, 0xFF9E, 0xFF9F, 0x101FD, 0x101FD, 0x102E0,
    0x102E0, 0x10376, 0x1037A, 0x10A01, 0x10A03, 0x10A05, 0x10A06, 0x10A0C, 0x10A0F, 0x10A38,
    0x10A3A, 0x10A3F, 0x10A3F, 0x10AE5, 0x10AE6, 0x11001, 0x11001, 0x11038, 0x11046, 0x1107F,
    0x11081, 0x110B3, 0x110B6, 0x110B9, 0x110BA, 0x11100, 0x11102, 0x11127, 0x1112B, 0x1112D,
    0x11134, 0x11173, 0x11173, 0x11180, 0x11181, 0x111B6, 0x111BE, 0x111CA, 0x111CC, 0x1122F,
    0x11231, 0x11234, 0x11234, 0x11236, 0x11237, 0x1123E, 0x1123E, 0x112DF, 0x112DF, 0x112E3,
    0x112EA, 0x11300, 0x11301, 0x1133C, 0x1133C, 0x1133E, 0x1133E, 0x11340, 0x11340, 0x11357,
    0x11357, 0x11366, 0x1136C, 0x11370, 0x11374, 0x11438, 0x1143F, 0x11442, 0x11444, 0x11446,
    0x11446, 0x114B0, 0x114B0, 0x114B3, 0x114B8, 0x114BA, 0x114BA, 0x114BD, 0x114BD, 0x114BF,
    0x114C0, 0x114C2, 0x114C3, 0x115AF, 0x115AF, 0x115B2, 0x115B5, 0x115BC, 0x115BD, 0x115BF,
    0x115C0, 0x115DC, 0x115DD, 0x11633, 0x1163A, 0x1163D, 0x1163D, 0x1163F, 0x11640, 0x116AB,
    0x116AB, 0x116AD, 0x116AD, 0x116B0, 0x116B5, 0x116B7, 0x116B7, 0x1171D, 0x1171F, 0x11722,
    0x11725, 0x11727, 0x1172B, 0x11A01, 0x11A06, 0x11A09, 0x11A0A, 0x11A33, 0x11A38, 0x11A3B,
    0x11A3E, 0x11A47, 0x11A47, 0x11A51, 0x11A56, 0x11A59, 0x11A5B, 0x11A8A, 0x11A96, 0x11A98,
    0x11A99, 0x11C30, 0x11C36, 0x11C38, 0x11C3D, 0x11C3F, 0x11C3F, 0x11C92, 0x11CA7, 0x11CAA,
    0x11CB0, 0x11CB2, 0x11CB3, 0x11CB5, 0x11CB6, 0x11D31, 0x11D36, 0x11D3A, 0x11D3A, 0x11D3C,
    0x11D3D, 0x11D3F, 0x11D45, 0x11D47, 0x11D47, 0x16AF0, 0x16AF4, 0x16B30, 0x16B36, 0x16F8F,
    0x16F92, 0x1BC9D, 0x1BC9E, 0x1D165, 0x1D165, 0x1D167, 0x1D169, 0x1D16E, 0x1D172, 0x1D17B,
    0x1D182, 0x1D185, 0x1D18B, 0x1D1AA, 0x1D1AD, 0x1D242, 0x1D244, 0x1DA00, 0x1DA36, 0x1DA3B,
    0x1DA6C, 0x1DA75, 0x1DA75, 0x1DA84, 0x1DA84, 0x1DA9B, 0x1DA9F, 0x1DAA1, 0x1DAAF, 0x1E000,
    0x1E006, 0x1E008, 0x1E018, 0x1E01B, 0x1E021, 0x1E023, 0x1E024, 0x1E026, 0x1E02A, 0x1E8D0,
    0x1E8D6, 0x1E944, 0x1E94A, 0xE0020, 0xE007F, 0xE0100, 0xE01EF,
];
const GCB_REGIONAL_INDICATOR: &[u32] = &[0x1F1E6, 0x1F1FF];
const GCB_SPACING_MARK: &[u32] = &[
    0x0903, 0x0903, 0x093B, 0x093B, 0x093E, 0x0940, 0x0949, 0x094C, 0x094E, 0x094F, 0x0982, 0x0983,
    0x09BF, 0x09C0, 0x09C7, 0x09C8, 0x09CB, 0x09CC, 0x0A03, 0x0A03, 0x0A3E, 0x0A40, 0x0A83, 0x0A83,
    0x0ABE, 0x0AC0, 0x0AC9, 0x0AC9, 0x0ACB, 0x0ACC, 0x0B02, 0x0B03, 0x0B40, 0x0B40, 0x0B47, 0x0B48,
    0x0B4B, 0x0B4C, 0x0BBF, 0x0BBF, 0x0BC1, 0x0BC2, 0x0BC6, 0x0BC8, 0x0BCA, 0x0BCC, 0x0C01, 0x0C03,
    0x0C41, 0x0C44, 0x0C82, 0x0C83, 0x0CBE, 0x0CBE, 0x0CC0, 0x0CC1, 0x0CC3, 0x0CC4, 0x0CC7, 0x0CC8,
    0x0CCA, 0x0CCB, 0x0D02, 0x0D03, 0x0D3F, 0x0D40, 0x0D46, 0x0D48, 0x0D4A, 0x0D4C, 0x0D82, 0x0D83,
    0x0DD0, 0x0DD1, 0x0DD8, 0x0DDE, 0x0DF2, 0x0DF3, 0x0E33, 0x0E33, 0x0EB3, 0x0EB3, 0x0F3E, 0x0F3F,
    0x0F7F, 0x0F7F, 0x1031, 0x1031, 0x103B, 0x103C, 0x1056, 0x1057, 0x1084, 0x1084, 0x17B6, 0x17B6,
    0x17BE, 0x17C5, 0x17C7, 0x17C8, 0x1923, 0x1926, 0x1929, 0x192B, 0x1930, 0x1931, 0x1933, 0x1938,
    0x1A19, 0x1A1A, 0x1A55, 0x1A55, 0x1A57, 0x1A57, 0x1A6D, 0x1A72, 0x1B04, 0x1B04, 0x1B35, 0x1B35,
    0x1B3B, 0x1B3B, 0x1B3D, 0x1B41, 0x1B43, 0x1B44, 0x1B82, 0x1B82, 0x1BA1, 0x1BA1, 0x1BA6, 0x1BA7,
    0x1BAA, 0x1BAA, 0x1BE7, 0x1BE7, 0x1BEA, 0x1BEC, 0x1BEE, 0x1BEE, 0x1BF2, 0x1BF3, 0x1C24, 0x1C2B,
    0x1C34, 0x1C35, 0x1CE1, 0x1CE1, 0x1CF2, 0x1CF3, 0x1CF7, 0x1CF7, 0xA823, 0xA824, 0xA827, 0xA827,
    0xA880, 0xA881, 0xA8B4, 0xA8C3, 0xA952, 0xA953, 0xA983, 0xA983, 0xA9B4, 0xA9B5, 0xA9BA, 0xA9BB,
    0xA9BD, 0xA9C0, 0xAA2F, 0xAA30, 0xAA33, 0xAA34, 0xAA4D, 0xAA4D, 0xAAEB, 0xAAEB, 0xAAEE, 0xAAEF,
    0xAAF5, 0xAAF5, 0xABE3, 0xABE4, 0xABE6, 0xABE7, 0xABE9, 0xABEA, 0xABEC, 0xABEC, 0x11000,
    0x11000, 0x11002, 0x11002, 0x11082, 0x11082, 0x110B0, 0x110B2, 0x110B7, 0x110B8, 0x1112C,
    0x1112C, 0x11182, 0x11182, 0x111B3, 0x111B5, 0x111BF, 0x111C0, 0x1122C, 0x1122E, 0x11232,
    0x11233, 0x11235, 0x11235, 0x112E0, 0x112E2, 0x11302, 0x11303, 0x1133F, 0x1133F, 0x11341,
    0x11344, 0x11347, 0x11348, 0x1134B, 0x1134D, 0x11362, 0x11363, 0x11435, 0x11437, 0x11440,
    0x11441, 0x11445, 0x11445, 0x114B1, 0x114B2, 0x114B9, 0x114B9, 0x114BB, 0x114BC, 0x114BE,
    0x114BE, 0x114C1, 0x114C1, 0x115B0, 0x115B1, 0x115B8, 0x115BB, 0x115BE, 0x115BE, 0x11630,
    0x11632, 0x1163B, 0x1163C, 0x1163E, 0x1163E, 0x116AC, 0x116AC, 0x116AE, 0x116AF, 0x116B6,
    0x116B6, 0x11720, 0x11721, 0x11726, 0x11726, 0x11A07, 0x11A08, 0x11A39, 0x11A39, 0x11A57,
    0x11A58, 0x11A97, 0x11A97, 0x11C2F, 0x11C2F, 0x11C3E, 0x11C3E, 0x11CA9, 0x11CA9, 0x11CB1,
    0x11CB1, 0x11CB4, 0x11CB4, 0x16F51, 0x16F7E, 0x1D166, 0x1D166, 0x1D16D, 0x1D16D,
];
const GCB_L: &[u32] = &[0x1100, 0x115F, 0xA960, 0xA97C];
const GCB_V: &[u32] = &[0x1160, 0x11A7, 0xD7B0, 0xD7C6];
const GCB_T: &[u32] = &[0x11A8, 0x11FF, 0xD7CB, 0xD7FB];
const GCB_PREPEND: &[u32] = &[
    0x0600, 0x0605, 0x06DD, 0x06DD, 0x070F, 0x070F, 0x08E2, 0x08E2, 0x0D4E, 0x0D4E, 0x110BD,
    0x110BD, 0x111C2, 0x111C3, 0x11A3A, 0x11A3A, 0x11A86, 0x11A89, 0x11D46, 0x11D46,
];
const GCB_E_BASE: &[u32] = &[
    0x261D, 0x261D, 0x26F9, 0x26F9, 0x270A, 0x270D, 0x1F385, 0x1F385, 0x1F3C2, 0x1F3C4, 0x1F3C7,
    0x1F3C7, 0x1F3CA, 0x1F3CC, 0x1F442, 0x1F443, 0x1F446, 0x1F450, 0x1F46E, 0x1F46E, 0x1F470,
    0x1F478, 0x1F47C, 0x1F47C, 0x1F481, 0x1F483, 0x1F485, 0x1F487, 0x1F4AA, 0x1F4AA, 0x1F574,
    0x1F575, 0x1F57A, 0x1F57A, 0x1F590, 0x1F590, 0x1F595, 0x1F596, 0x1F645, 0x1F647, 0x1F64B,
    0x1F64F, 0x1F6A3, 0x1F6A3, 0x1F6B4, 0x1F6B6, 0x1F6C0, 0x1F6C0, 0x1F6CC, 0x1F6CC, 0x1F918,
    0x1F91C, 0x1F91E, 0x1F91F, 0x1F926, 0x1F926, 0x1F930, 0x1F939, 0x1F93D, 0x1F93E, 0x1F9D1,
    0x1F9DD,
];
const GCB_E_MODIFIER: &[u32] = &[0x1F3FB, 0x1F3FF];
const GCB_ZWJ: &[u32] = &[0x200D, 0x200D];
const GCB_GLUE_AFTER_ZWJ: &[u32] = &[
    0x2640, 0x2640, 0x2642, 0x2642, 0x2695, 0x2696, 0x2708, 0x2708, 0x2764, 0x2764, 0x1F308,
    0x1F308, 0x1F33E, 0x1F33E, 0x1F373, 0x1F373, 0x1F393, 0x1F393, 0x1F3A4, 0x1F3A4, 0x1F3A8,
    0x1F3A8, 0x1F3EB, 0x1F3EB, 0x1F3ED, 0x1F3ED, 0x1F48B, 0x1F48B, 0x1F4BB, 0x1F4BC, 0x1F527,
    0x1F527, 0x1F52C, 0x1F52C, 0x1F5E8, 0x1F5E8, 0x1F680, 0x1F680, 0x1F692, 0x1F692,
];
const GCB_E_BASE_GAZ: &[u32] = &[0x1F466, 0x1F469];

#[cfg(test)]
mod tests {
    use super::*;

    const REFERENCE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/sms-segments.tsv");

    #[test]
    fn matches_reference_package_table() {
        let table = std::fs::read_to_string(REFERENCE).expect("read the reference table");
        let mut rows = 0;
        let mut mismatches = Vec::new();
        for (line_no, line) in table.lines().enumerate() {
            let fields: Vec<&str> = line.split('\t').collect();
            assert_eq!(fields.len(), 4, "line {}: {line:?}", line_no + 1);
            let text: String = serde_json::from_str(fields[0]).expect("text column is JSON");
            let want = (
                fields[1].to_owned(),
                fields[2].parse::<usize>().expect("segments"),
                fields[3].parse::<usize>().expect("units"),
            );
            let got = count(&text);
            let got_triple = (got.encoding.to_string(), got.segments, got.units);
            if got_triple != want {
                mismatches.push(format!(
                    "line {}: {}: want {want:?}, got {got_triple:?}",
                    line_no + 1,
                    fields[0]
                ));
            }
            // Internal consistency the table does not state directly.
            assert_eq!(got.non_gsm.is_empty(), got.encoding == Encoding::Gsm7);
            assert!(got.units <= got.segments * got.per_segment, "{got:?}");
            rows += 1;
        }
        assert!(rows >= 30, "reference table has only {rows} rows");
        assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
    }

    #[test]
    fn plain_ascii_counts_as_character_by_character() {
        // Default-alphabet bytes, then the extension table, '`' (not GSM-7) and a Latin-1 letter
        // that is, so both paths run; lengths around every segment boundary.
        let plain: Vec<char> = (b' '..=b'z')
            .map(char::from)
            .filter(|&c| gsm7_septets(c) == Some(1))
            .chain(['\n', '\r'])
            .collect();
        let mut rng = fastrand::Rng::with_seed(2026);
        let mut fast = 0;
        for i in 0..4_000 {
            let len = rng.usize(0..=470);
            let mut text: String = (0..len).map(|_| plain[rng.usize(..plain.len())]).collect();
            if i % 4 == 1 {
                text.insert(
                    rng.usize(..=text.len()),
                    ['{', '~', '`', 'é'][rng.usize(..4)],
                );
            }
            fast += usize::from(i % 4 != 1);
            assert_eq!(count(&text), count_pieces(&text), "{text:?}");
        }
        assert!(fast > 2_000);
    }

    #[test]
    fn boundaries_and_capacities() {
        let a = |n: usize| "a".repeat(n);
        assert_eq!(
            (count(&a(160)).segments, count(&a(160)).per_segment),
            (1, 160)
        );
        assert_eq!(
            (count(&a(161)).segments, count(&a(161)).per_segment),
            (2, 153)
        );
        // 152 septets + € (escape + char) cannot share part one's last septet.
        let straddle = count(&format!("{}€{}", a(152), a(8)));
        assert_eq!((straddle.units, straddle.segments), (162, 2));
        let straddle = count(&format!("{}€{}", a(152), a(152)));
        assert_eq!((straddle.units, straddle.segments), (306, 3));
        // 66 code units + 👍 (a surrogate pair) + 1: the pair moves whole.
        let emoji = count(&format!("í{}👍{}", a(65), a(67)));
        assert_eq!((emoji.units, emoji.segments, emoji.chars), (135, 3, 134));
        assert_eq!(count(&format!("í{}", a(69))).per_segment, 70);
        assert_eq!(count(&format!("í{}", a(70))).per_segment, 67);
        assert_eq!(Encoding::Gsm7.single_segment_units(), 160);
        assert_eq!(Encoding::Gsm7.multipart_segment_units(), 153);
        assert_eq!(Encoding::Ucs2.single_segment_units(), 70);
        assert_eq!(Encoding::Ucs2.multipart_segment_units(), 67);
    }

    #[test]
    fn empty_text_is_one_segment() {
        let c = count("");
        assert_eq!(
            c,
            SmsCount {
                encoding: Encoding::Gsm7,
                chars: 0,
                units: 0,
                segments: 1,
                per_segment: 160,
                non_gsm: vec![],
            }
        );
    }

    #[test]
    fn non_gsm_is_distinct_in_first_appearance_order() {
        let c = count("It’s “free” – it’s “really” free… 👍 👍");
        assert_eq!(c.encoding, Encoding::Ucs2);
        assert_eq!(c.non_gsm, vec!['’', '“', '”', '–', '…', '👍']);
        assert!(count("José, Ça va? €5 [ok]").non_gsm.is_empty());
        assert_eq!(
            count("Hi María and Zoë, ça va").non_gsm,
            vec!['í', 'ë', 'ç']
        );
    }

    #[test]
    fn chars_count_scalars_units_count_utf16() {
        let c = count("👍🏽 ok");
        assert_eq!((c.chars, c.units), (5, 7));
        let c = count("€ok");
        assert_eq!((c.chars, c.units, c.encoding), (3, 4, Encoding::Gsm7));
    }

    #[test]
    fn describes_characters_for_reports() {
        assert_eq!(describe_char('’'), "’ (U+2019 RIGHT SINGLE QUOTATION MARK)");
        assert_eq!(describe_char('–'), "– (U+2013 EN DASH)");
        assert_eq!(describe_char('•'), "• (U+2022 BULLET)");
        assert_eq!(describe_char('…'), "… (U+2026 HORIZONTAL ELLIPSIS)");
        assert_eq!(describe_char('\u{00A0}'), "no-break space (U+00A0)");
        assert_eq!(
            describe_char('í'),
            "í (U+00ED LATIN SMALL LETTER I WITH ACUTE)"
        );
        assert_eq!(
            describe_char('Ō'),
            "Ō (U+014C LATIN CAPITAL LETTER O WITH MACRON)"
        );
        assert_eq!(describe_char('`'), "` (U+0060 GRAVE ACCENT)");
        assert_eq!(describe_char('\t'), "tab (U+0009)");
        assert_eq!(describe_char('\u{0301}'), "combining acute accent (U+0301)");
        assert_eq!(describe_char('👍'), "👍 (U+1F44D)");
        assert_eq!(describe_char('\u{0007}'), "control character (U+0007)");
        assert_eq!(describe_char('\u{0085}'), "space character (U+0085)");
    }

    #[test]
    fn named_table_is_sorted_for_binary_search() {
        assert!(NAMED.windows(2).all(|w| w[0].0 < w[1].0));
    }

    #[test]
    fn grapheme_clusters_follow_the_reference() {
        assert_eq!(cluster_utf16_lens("👨\u{200D}👩\u{200D}👧"), vec![8]);
        assert_eq!(cluster_utf16_lens("🇺🇸🇫🇷🇩"), vec![4, 4, 2]);
        assert_eq!(cluster_utf16_lens("👍🏽e\u{0301}"), vec![4, 2]);
        assert_eq!(cluster_utf16_lens("a\r\nb"), vec![1, 1, 1, 1]);
        assert_eq!(cluster_utf16_lens("\u{1100}\u{1161}\u{11A8}각"), vec![3, 1]);
        assert!(in_ranges(GCB_EXTEND, 0x0300) && in_ranges(GCB_EXTEND, 0x036F));
        assert!(!in_ranges(GCB_EXTEND, 0x0370));
    }

    #[test]
    fn serializes_with_conventional_names() {
        let json = serde_json::to_value(count("Hi Zoë")).expect("serialize");
        assert_eq!(
            json,
            serde_json::json!({
                "encoding": "UCS-2",
                "chars": 6,
                "units": 6,
                "segments": 1,
                "per_segment": 70,
                "non_gsm": ["ë"],
            })
        );
        assert_eq!(Encoding::Gsm7.to_string(), "GSM-7");
    }
}
