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
//!
//! This file counts ([`count`], [`Encoding`], the segment builder); the rest is in files of
//! their own, none of which uses another but `smart.rs` using `gsm7.rs`: `gsm7.rs` (the
//! alphabet), `graphemes.rs` (clusters and their Unicode 10 tables), `names.rs`
//! ([`describe_char`] and its table of names), `smart.rs` ([`smart_encode`]).

mod graphemes;
mod gsm7;
mod names;
mod smart;
mod twilio_smart;

use std::fmt;

pub use gsm7::{gsm7_septets, is_gsm7};
pub use names::describe_char;
pub use smart::smart_encode;

use graphemes::cluster_utf16_lens;

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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
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

/// The characters of `fixed` (text that every body of a template has, whatever else the body
/// holds) that make every such body UCS-2, in order of first appearance: those outside GSM-7
/// that [`smart_encode`] leaves as they are when `smart_encoding` is on. Whitespace is left out
/// (a body's ends are trimmed, so it may not be sent), and so are the zero-width joiners (smart
/// encoding keeps one or not by what is next to it).
#[must_use]
pub fn forced_ucs2(fixed: &str, smart_encoding: bool) -> Vec<char> {
    let mut out: Vec<char> = Vec::new();
    let mut buf = [0u8; 4];
    for c in fixed.chars() {
        if is_gsm7(c) || c.is_whitespace() || out.contains(&c) {
            continue;
        }
        let kept = !smart_encoding
            || matches!(
                smart_encode(c.encode_utf8(&mut buf)),
                std::borrow::Cow::Borrowed(_)
            );
        if kept && !matches!(c, '\u{200C}' | '\u{200D}') {
            out.push(c);
        }
    }
    out
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
    fn forced_ucs2_is_what_smart_encoding_leaves() {
        let fixed = "Evaluación “gratis” – ¿sí?\u{00A0}\u{200D}ó";
        assert_eq!(forced_ucs2(fixed, false), vec!['ó', '“', '”', '–', 'í']);
        assert_eq!(forced_ucs2(fixed, true), vec!['ó', 'í']);
        assert!(forced_ucs2("Hola, ¿qué tal? €5", true).is_empty());
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
