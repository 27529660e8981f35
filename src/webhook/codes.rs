//! The error codes a gateway reports about a number, and what outreach does about them: one
//! table that `listen` (a status callback, a delivery receipt) and `sync` (a status lookup)
//! both read, so a code means the same whichever way it came back.
//!
//! - Twilio 21610: the number replied STOP to the sender (Twilio's own opt-out). Suppressed.
//! - Twilio 30006: the number is a landline or cannot take SMS ("Landline or unreachable
//!   carrier"). Suppressed with reason `landline`, so no later campaign texts it.
//! - Vonage 9 (a delivery receipt's `err-code`, "Illegal Number: the user has requested not to
//!   receive messages from a specific service", Vonage's SMS delivery error codes,
//!   api.support.vonage.com article 204014733). Suppressed as an opt-out. (The send reply's
//!   status 7, "Number Barred", is another vocabulary, read by the transport.)
//! - A generic gateway: the codes its campaign lists in `sms.gateway.opted_out_codes`.
//!
//! Every other code is recorded with its receipt and changes nothing else.

/// Twilio: the number opted out (replied STOP).
pub const TWILIO_OPTED_OUT: &str = "21610";
/// Twilio: a landline, or a number that cannot take SMS.
pub const TWILIO_LANDLINE: &str = "30006";
/// Vonage delivery receipts: the recipient asked not to receive messages from this service.
pub const VONAGE_OPTED_OUT: &str = "9";

/// Whose codes these are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ErrorCodes {
    Twilio,
    Vonage,
    /// A generic gateway: the codes that mean an opt-out, as its campaign lists them.
    Generic {
        opted_out: Vec<String>,
    },
}

/// What a code asks for: the number suppressed for SMS, with this reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodeSuppression {
    /// The suppression's reason (`opted out (Twilio 21610)`, `landline`, …).
    pub reason: String,
    /// The code as people name it (`Twilio 21610`), for the suppression's source.
    pub code: String,
}

impl ErrorCodes {
    /// The suppression `code` asks for, if any.
    pub fn suppression(&self, code: &str) -> Option<CodeSuppression> {
        let code = code.trim();
        let (who, reason) = match self {
            ErrorCodes::Twilio if code == TWILIO_OPTED_OUT => ("Twilio", None),
            ErrorCodes::Twilio if code == TWILIO_LANDLINE => ("Twilio", Some("landline")),
            ErrorCodes::Vonage if code == VONAGE_OPTED_OUT => ("Vonage", None),
            ErrorCodes::Generic { opted_out } if opted_out.iter().any(|c| c == code) => {
                ("gateway code", None)
            }
            _ => return None,
        };
        let named = format!("{who} {code}");
        Some(CodeSuppression {
            reason: reason.map_or_else(|| format!("opted out ({named})"), str::to_string),
            code: named,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reason(codes: &ErrorCodes, code: &str) -> Option<String> {
        codes.suppression(code).map(|s| s.reason)
    }

    #[test]
    fn each_gateway_has_its_own_codes() {
        let twilio = ErrorCodes::Twilio;
        assert_eq!(
            reason(&twilio, "21610").as_deref(),
            Some("opted out (Twilio 21610)")
        );
        assert_eq!(reason(&twilio, "30006").as_deref(), Some("landline"));
        assert_eq!(reason(&twilio, "30003"), None);
        assert_eq!(reason(&twilio, "9"), None);
        let vonage = ErrorCodes::Vonage;
        assert_eq!(
            reason(&vonage, "9").as_deref(),
            Some("opted out (Vonage 9)")
        );
        assert_eq!(reason(&vonage, "21610"), None);
        assert_eq!(reason(&vonage, "4"), None);
        let generic = ErrorCodes::Generic {
            opted_out: vec!["STOPPED".into()],
        };
        assert_eq!(
            generic.suppression("STOPPED"),
            Some(CodeSuppression {
                reason: "opted out (gateway code STOPPED)".into(),
                code: "gateway code STOPPED".into()
            })
        );
        assert_eq!(reason(&generic, "21610"), None);
    }
}
