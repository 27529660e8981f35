//! What an inbound SMS asks for: to stop ([`Keyword::OptOut`]), to start again
//! ([`Keyword::OptIn`]), help ([`Keyword::Help`]), or nothing a machine should act on
//! ([`Keyword::Other`], kept for staff to read).
//!
//! A keyword is the whole message, as carriers and Twilio apply it: "STOP" opts out, "Please
//! stop texting me" does not (a person reads it). Around the word, case, spaces, punctuation and
//! emoji do not count, nor do accents ("Parár" is "PARAR") or full-width letters, nor spaces or
//! hyphens inside it ("stop all", "opt-out").
//!
//! The lists. English opt-out: Twilio's defaults, STOP, STOPALL, UNSUBSCRIBE, CANCEL, END, QUIT,
//! REVOKE and OPTOUT (twilio.com/docs/messaging/tutorials/advanced-opt-out; REVOKE and OPTOUT
//! joined for the FCC's consent-revocation rule of April 2025, and Sinch lists the same set).
//! Spanish opt-out: ALTO, the word carriers require Spanish-language programs to honour (Twilio's
//! "requirements for a Spanish-language short code", with AYUDA for help), and PARAR, CANCELAR,
//! BAJA and DETENER, the plain Spanish for stop, cancel, unsubscribe and halt; no provider
//! publishes a default Spanish list. Opt-in: START and UNSTOP (Twilio's), COMENZAR. Twilio also
//! opts a number back in on YES; here YES lifts nothing, since a patient answering a question
//! with "yes" has not asked to be messaged again. Help: HELP and INFO (Twilio's), AYUDA.
//!
//! An opt-in lifts only an opt-out that an SMS keyword created: that rule is the ledger's, which
//! knows why a number is suppressed.

/// What an inbound SMS asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Keyword {
    /// Stop messaging this number.
    OptOut,
    /// Start again after an SMS opt-out.
    OptIn,
    /// The clinic's name and phone, if the campaign gives them.
    Help,
    /// Anything else: kept for staff.
    Other,
}

/// Opt-out words, folded (upper case, no accents, no spaces).
pub const OPT_OUT_WORDS: &[&str] = &[
    "STOP",
    "STOPALL",
    "UNSUBSCRIBE",
    "CANCEL",
    "END",
    "QUIT",
    "REVOKE",
    "OPTOUT",
    "ALTO",
    "PARAR",
    "CANCELAR",
    "BAJA",
    "DETENER",
];

/// Opt-in words, folded.
pub const OPT_IN_WORDS: &[&str] = &["START", "UNSTOP", "COMENZAR"];

/// Help words, folded.
pub const HELP_WORDS: &[&str] = &["HELP", "INFO", "AYUDA"];

/// What `body` asks for.
pub fn classify(body: &str) -> Keyword {
    let word = fold(body);
    if OPT_OUT_WORDS.contains(&word.as_str()) {
        Keyword::OptOut
    } else if OPT_IN_WORDS.contains(&word.as_str()) {
        Keyword::OptIn
    } else if HELP_WORDS.contains(&word.as_str()) {
        Keyword::Help
    } else {
        Keyword::Other
    }
}

/// The longest folded message worth comparing: longer than any keyword is never one.
const LONGEST: usize = 16;

/// `body` as the lists are written: its letters and digits only, in upper case, without accents.
fn fold(body: &str) -> String {
    let mut out = String::new();
    for c in body.chars().filter(|c| c.is_alphanumeric()) {
        for upper in c.to_uppercase() {
            out.push(unaccented(upper));
        }
        if out.len() > LONGEST {
            break;
        }
    }
    out
}

/// The letter without its accent, for the accented capitals of Spanish and its neighbours; a
/// full-width letter or digit (East Asian keyboards) as its ASCII form.
fn unaccented(c: char) -> char {
    match c {
        '\u{FF10}'..='\u{FF5A}' => char::from_u32(u32::from(c) - 0xFEE0).unwrap_or(c),
        'Á' | 'À' | 'Â' | 'Ä' | 'Ã' | 'Å' => 'A',
        'É' | 'È' | 'Ê' | 'Ë' => 'E',
        'Í' | 'Ì' | 'Î' | 'Ï' => 'I',
        'Ó' | 'Ò' | 'Ô' | 'Ö' | 'Õ' => 'O',
        'Ú' | 'Ù' | 'Û' | 'Ü' => 'U',
        'Ñ' => 'N',
        'Ç' => 'C',
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::Keyword::{Help, OptIn, OptOut, Other};
    use super::*;

    #[test]
    fn whole_message_keywords_in_any_dress() {
        let cases = [
            ("STOP", OptOut),
            ("stop", OptOut),
            ("  Stop.  ", OptOut),
            ("STOP!!!", OptOut),
            ("\"stop\"", OptOut),
            ("🛑 STOP 🛑", OptOut),
            ("Stop\n", OptOut),
            ("ＳＴＯＰ", OptOut),
            ("stopall", OptOut),
            ("Stop All", OptOut),
            ("UNSUBSCRIBE", OptOut),
            ("cancel", OptOut),
            ("End", OptOut),
            ("quit.", OptOut),
            ("Revoke", OptOut),
            ("OPTOUT", OptOut),
            ("opt-out", OptOut),
            ("Opt out", OptOut),
            ("¡ALTO!", OptOut),
            ("alto", OptOut),
            ("Parar", OptOut),
            ("PARÁR", OptOut),
            ("cancelar", OptOut),
            ("Baja", OptOut),
            ("Detener", OptOut),
            ("START", OptIn),
            ("start", OptIn),
            ("Unstop", OptIn),
            ("un-stop", OptIn),
            ("Comenzar", OptIn),
            ("HELP", Help),
            ("help?", Help),
            ("Info", Help),
            ("¿Ayuda?", Help),
        ];
        for (body, expected) in cases {
            assert_eq!(classify(body), expected, "{body:?}");
        }
    }

    #[test]
    fn anything_else_is_kept_for_staff() {
        let cases = [
            "Please stop texting me",
            "STOP PLEASE",
            "stop it",
            "don't stop",
            "stopp",
            "stopping",
            "ending",
            "YES",
            "yes!",
            "Y",
            "no",
            "dar de baja",
            "Can I book for Tuesday?",
            "",
            "   ",
            "!!!",
            "🛑",
            "ＳＴＯＰ ＰＬＥＡＳＥ",
        ];
        for body in cases {
            assert_eq!(classify(body), Other, "{body:?}");
        }
    }

    #[test]
    fn folding_keeps_only_letters_and_digits_in_capitals() {
        assert_eq!(fold("  ¡Pará-r! "), "PARAR");
        assert_eq!(fold("Straße"), "STRASSE");
        assert_eq!(fold("opt_out"), "OPTOUT");
        assert_eq!(fold("ｓｔｏｐ１"), "STOP1");
    }
}
