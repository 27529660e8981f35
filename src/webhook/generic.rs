//! Webhooks of a gateway described in the campaign file: proved by a shared secret the gateway
//! sends in a header, or by an HMAC-SHA256 of the raw body in a header (hex or base64, after an
//! optional prefix such as `sha256=`); read into a [`Receipt`] by JSON pointers (RFC 6901, as
//! `serde_json::Value::pointer` takes them), its status mapped to a state by configured lists.

use serde_json::Value;

use super::error::{ParseError, VerifyError};
use super::mac::{self, Encoding, Hash};
use super::receipt::{DeliveryState, Receipt, error_code};

const SECRET: &str = "webhook secret header";
const SIGNATURE: &str = "webhook signature header";

/// Checks a shared secret sent as a header's whole value. Both sides are hashed before the
/// constant-time comparison, so neither the secret's bytes nor its length show in the timing.
pub fn verify_shared_secret(secret: &[u8], presented: Option<&str>) -> Result<(), VerifyError> {
    let presented = presented
        .filter(|p| !p.is_empty())
        .ok_or(VerifyError::Missing { what: SECRET })?;
    let expected = mac::digest(Hash::Sha256, &[secret]);
    let got = mac::digest(Hash::Sha256, &[presented.as_bytes()]);
    if mac::same(&expected, &got) {
        Ok(())
    } else {
        Err(VerifyError::Mismatch { what: SECRET })
    }
}

/// The header value a gateway signing `body` with `key` sends: `prefix` then the HMAC-SHA256
/// in `encoding`.
pub fn body_hmac(key: &[u8], body: &[u8], encoding: Encoding, prefix: &str) -> String {
    format!(
        "{prefix}{}",
        encoding.encode(&mac::hmac(Hash::Sha256, key, &[body]))
    )
}

/// Checks an HMAC-SHA256 of the raw `body` under `key`, written in `encoding` after `prefix`
/// (empty for none) in the header's value `presented`.
pub fn verify_body_hmac(
    key: &[u8],
    body: &[u8],
    presented: Option<&str>,
    encoding: Encoding,
    prefix: &str,
) -> Result<(), VerifyError> {
    let presented = presented.ok_or(VerifyError::Missing { what: SIGNATURE })?;
    let signature = presented
        .trim()
        .strip_prefix(prefix)
        .ok_or(VerifyError::Malformed {
            what: SIGNATURE,
            reason: "it does not start with the configured prefix",
        })?;
    let expected = mac::hmac(Hash::Sha256, key, &[body]);
    mac::check(SIGNATURE, encoding, Some(signature), &expected)
}

/// Where a gateway's delivery receipt keeps each field: JSON pointers into its body.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ReceiptPointers {
    /// The message id the gateway gave when it accepted the message (required).
    pub id: String,
    /// The gateway's delivery status (required).
    pub status: String,
    /// The carrier's or gateway's error code, if it sends one.
    pub error_code: Option<String>,
    /// When the carrier settled it, if the gateway says.
    pub time: Option<String>,
    /// The recipient, if the gateway says.
    pub recipient: Option<String>,
}

/// Which of a gateway's statuses are final, matched exactly as the gateway writes them;
/// any other status is [`DeliveryState::Pending`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StateMap {
    /// Statuses meaning the handset has it.
    pub delivered: Vec<String>,
    /// Statuses meaning the carrier failed it.
    pub undelivered: Vec<String>,
}

impl StateMap {
    /// The state `status` means.
    pub fn state(&self, status: &str) -> DeliveryState {
        if self.delivered.iter().any(|s| s == status) {
            DeliveryState::Delivered
        } else if self.undelivered.iter().any(|s| s == status) {
            DeliveryState::Undelivered
        } else {
            DeliveryState::Pending
        }
    }
}

/// A delivery receipt from a JSON body, each field where `pointers` say, its state by `states`.
pub fn generic_receipt(
    body: &[u8],
    pointers: &ReceiptPointers,
    states: &StateMap,
) -> Result<Receipt, ParseError> {
    let value: Value = serde_json::from_slice(body).map_err(|e| ParseError::Json(e.to_string()))?;
    let at = |pointer: &str| text_at(&value, pointer);
    let optional = |pointer: &Option<String>| -> Result<Option<String>, ParseError> {
        Ok(match pointer {
            Some(p) => at(p)?.filter(|t| !t.is_empty()),
            None => None,
        })
    };
    let required = |pointer: &str| -> Result<String, ParseError> {
        at(pointer)?
            .filter(|t| !t.is_empty())
            .ok_or_else(|| ParseError::missing(pointer))
    };
    let status = required(&pointers.status)?;
    Ok(Receipt {
        provider_id: required(&pointers.id)?,
        state: states.state(&status),
        status,
        error_code: error_code(optional(&pointers.error_code)?.as_deref()),
        carrier_time: optional(&pointers.time)?,
        recipient: optional(&pointers.recipient)?,
    })
}

/// The text at `pointer`: a string as is, a number or boolean as its JSON text, `None` when
/// absent or `null`; an array or object is not a field.
fn text_at(value: &Value, pointer: &str) -> Result<Option<String>, ParseError> {
    match value.pointer(pointer) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(Value::Number(n)) => Ok(Some(n.to_string())),
        Some(Value::Bool(b)) => Ok(Some(b.to_string())),
        Some(Value::Array(_) | Value::Object(_)) => Err(ParseError::invalid(
            pointer,
            "an array or object, not a single value",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shared_secret_must_be_the_whole_header() {
        let s = b"s3cret-from-the-gateway";
        assert_eq!(
            verify_shared_secret(s, Some("s3cret-from-the-gateway")),
            Ok(())
        );
        let mismatch = Err(VerifyError::Mismatch { what: SECRET });
        assert_eq!(
            verify_shared_secret(s, Some("s3cret-from-the-gatewa")),
            mismatch
        );
        assert_eq!(
            verify_shared_secret(s, Some("s3cret-from-the-gateway ")),
            mismatch
        );
        let missing = Err(VerifyError::Missing { what: SECRET });
        assert_eq!(verify_shared_secret(s, None), missing);
        assert_eq!(verify_shared_secret(s, Some("")), missing);
    }

    #[test]
    fn a_body_hmac_verifies_in_hex_or_base64_after_its_prefix() {
        let key = b"It's a Secret to Everybody";
        let body = b"Hello, World!";
        // GitHub's documented example of X-Hub-Signature-256 (same key, body and prefix).
        let github = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
        assert_eq!(body_hmac(key, body, Encoding::Hex, "sha256="), github);
        assert_eq!(
            verify_body_hmac(key, body, Some(github), Encoding::Hex, "sha256="),
            Ok(())
        );
        let b64 = body_hmac(key, body, Encoding::Base64, "");
        assert_eq!(
            verify_body_hmac(key, body, Some(&b64), Encoding::Base64, ""),
            Ok(())
        );
        assert_eq!(
            verify_body_hmac(
                key,
                b"Hello, World?",
                Some(github),
                Encoding::Hex,
                "sha256="
            ),
            Err(VerifyError::Mismatch { what: SIGNATURE })
        );
        assert!(matches!(
            verify_body_hmac(key, body, Some(&github[7..]), Encoding::Hex, "sha256="),
            Err(VerifyError::Malformed { .. })
        ));
        assert!(matches!(
            verify_body_hmac(key, body, Some(&b64), Encoding::Hex, ""),
            Err(VerifyError::Malformed { .. })
        ));
        assert_eq!(
            verify_body_hmac(key, body, None, Encoding::Hex, ""),
            Err(VerifyError::Missing { what: SIGNATURE })
        );
    }

    fn telnyx() -> (ReceiptPointers, StateMap) {
        (
            ReceiptPointers {
                id: "/data/payload/id".into(),
                status: "/data/payload/to/0/status".into(),
                error_code: Some("/data/payload/errors/0/code".into()),
                time: Some("/data/payload/completed_at".into()),
                recipient: Some("/data/payload/to/0/phone_number".into()),
            },
            StateMap {
                delivered: vec!["delivered".into()],
                undelivered: vec!["delivery_failed".into(), "sending_failed".into()],
            },
        )
    }

    #[test]
    fn a_receipt_is_read_by_pointers_and_mapped() {
        let (pointers, states) = telnyx();
        let body = br#"{"data":{"event_type":"message.finalized","payload":{
            "id":"40385f64-5717-4562-b3fc-2c963f66afa6","completed_at":"2026-11-25T18:02:11Z",
            "to":[{"phone_number":"+13125550142","status":"delivery_failed"}],
            "errors":[{"code":40001,"title":"Not routable"}]}}}"#;
        let r = generic_receipt(body, &pointers, &states).unwrap();
        assert_eq!(r.provider_id, "40385f64-5717-4562-b3fc-2c963f66afa6");
        assert_eq!(r.state, DeliveryState::Undelivered);
        assert_eq!(r.status, "delivery_failed");
        assert_eq!(r.error_code.as_deref(), Some("40001"));
        assert_eq!(r.carrier_time.as_deref(), Some("2026-11-25T18:02:11Z"));
        assert_eq!(r.recipient.as_deref(), Some("+13125550142"));

        let sent = br#"{"data":{"payload":{"id":"m1","to":[{"status":"sent"}],"errors":[]}}}"#;
        let r = generic_receipt(sent, &pointers, &states).unwrap();
        assert_eq!(
            (r.state, r.error_code, r.recipient),
            (DeliveryState::Pending, None, None)
        );
    }

    #[test]
    fn missing_or_unreadable_fields_are_named() {
        let (pointers, states) = telnyx();
        assert_eq!(
            generic_receipt(br#"{"data":{"payload":{"id":"m1"}}}"#, &pointers, &states),
            Err(ParseError::missing("/data/payload/to/0/status"))
        );
        let nested = br#"{"data":{"payload":{"id":{"x":1},"to":[{"status":"sent"}]}}}"#;
        assert!(matches!(
            generic_receipt(nested, &pointers, &states),
            Err(ParseError::Invalid { .. })
        ));
        assert!(matches!(
            generic_receipt(b"not json", &pointers, &states),
            Err(ParseError::Json(_))
        ));
    }
}
