//! The GSM 03.38 alphabet: which characters a GSM-7 body can carry, and in how many septets
//! (one for the default alphabet, two for the extension table, sent as escape + character).
//! The table mirrors the reference package's, gaps included: a character missing here sends the
//! whole body as UCS-2.

/// Whether `c` can be sent in GSM-7 (default alphabet or extension table).
#[must_use]
pub const fn is_gsm7(c: char) -> bool {
    gsm7_septets(c).is_some()
}

/// Septets `c` takes in GSM-7, or `None` if it cannot be sent in GSM-7.
///
/// `Some(1)` for the default alphabet, `Some(2)` for the extension table
/// (`^ { } \ [ ~ ] | €` and form feed, sent as escape + character).
#[must_use]
#[allow(
    clippy::match_same_arms,
    reason = "one arm per block of the GSM table reads better"
)]
pub const fn gsm7_septets(c: char) -> Option<usize> {
    // Mirrors the reference package's Unicode-to-GSM map exactly. Note what is
    // absent: '`', tab, and accented letters such as í á ó ú ê ç ë.
    match c {
        // ASCII minus '`' and the extension characters.
        '\n' | '\r' | ' '..='Z' | '_' | 'a'..='z' => Some(1),
        // Latin-1 letters and symbols.
        '¡' | '£' | '¤' | '¥' | '§' | '¿' | 'Ä' | 'Å' | 'Æ' | 'Ç' | 'É' | 'Ñ' | 'Ö' | 'Ø' | 'Ü'
        | 'ß' | 'à' | 'ä' | 'å' | 'æ' | 'è' | 'é' | 'ì' | 'ñ' | 'ò' | 'ö' | 'ø' | 'ù' | 'ü' => {
            Some(1)
        }
        // Greek capitals that do not look like Latin ones.
        'Γ' | 'Δ' | 'Θ' | 'Λ' | 'Ξ' | 'Π' | 'Σ' | 'Φ' | 'Ψ' | 'Ω' => Some(1),
        '\u{000C}' | '^' | '{' | '}' | '\\' | '[' | '~' | ']' | '|' | '€' => Some(2),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gsm7_membership() {
        for c in "é è ù ì ò Ç Ø ø Å å Ä Ö Ñ Ü ä ö ñ ü à Æ æ ß É Δ Φ Γ Λ Ω Π Ψ Σ Θ Ξ ¡ ¿ £ ¥ § ¤ @ $ _\n\r".chars() {
            assert_eq!(gsm7_septets(c), Some(1), "{c:?}");
        }
        for c in "^{}\\[~]|€\u{000C}".chars() {
            assert_eq!(gsm7_septets(c), Some(2), "{c:?}");
        }
        for c in "íáóúêçëα`\t’–•…\u{00A0}👍".chars() {
            assert_eq!(gsm7_septets(c), None, "{c:?}");
            assert!(!is_gsm7(c));
        }
    }
}
