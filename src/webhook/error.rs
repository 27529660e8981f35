//! What can be wrong with a provider's request: its signature ([`VerifyError`], answered 403
//! with nothing recorded) or, once it is authentic, its content ([`ParseError`]). Neither quotes
//! a secret, a signature or an expected digest: they say which part was wrong and why.

/// The request is not provably the provider's. Nothing of it may be recorded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// The signature (a header, or Vonage's `sig` parameter) is absent or empty.
    #[error("no signature: the {what} is missing")]
    Missing { what: &'static str },
    /// The signature is there but cannot be one (not hex, not base64, wrong length).
    #[error("the {what} is not a signature: {reason}")]
    Malformed {
        what: &'static str,
        reason: &'static str,
    },
    /// Well formed, but not the one the configured secret and algorithm give for this request.
    #[error("the {what} does not match this request under the configured secret and algorithm")]
    Mismatch { what: &'static str },
    /// Twilio's `bodySHA256` query parameter is not the SHA-256 of the JSON body received.
    #[error("the JSON body's SHA-256 is not the bodySHA256 of the URL Twilio signed")]
    BodyHash,
    /// A Vonage signed request carries no `timestamp`, or one that is not whole seconds.
    #[error("the signed request's timestamp is missing or not a number of seconds")]
    Timestamp,
    /// A Vonage signed request whose `timestamp` is outside the freshness window: an old request
    /// replayed, or a clock far off.
    #[error(
        "the signed request is {age}s from now, outside the {window}s window (replayed, or a clock is off)"
    )]
    Stale { age: i64, window: u64 },
    /// The same parameter twice: which value was signed cannot be known.
    #[error("parameter {name:?} appears more than once")]
    Duplicate { name: String },
    /// An MD5 signature method without `allow_md5 = true`.
    #[error("signature method {method} uses MD5, refused unless allow_md5 = true")]
    Md5Refused { method: &'static str },
}

/// An authentic request whose content is not a receipt or a message this module can read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// A field the provider always sends is absent or empty.
    #[error("field {0:?} is missing")]
    Missing(String),
    /// A field is there but not of the form the provider documents.
    #[error("field {field:?} is not valid: {reason}")]
    Invalid { field: String, reason: String },
    /// The body is not JSON, or not the JSON object expected.
    #[error("the body is not a JSON object: {0}")]
    Json(String),
}

impl ParseError {
    pub(crate) fn missing(field: &str) -> Self {
        ParseError::Missing(field.to_string())
    }

    pub(crate) fn invalid(field: &str, reason: impl Into<String>) -> Self {
        ParseError::Invalid {
            field: field.to_string(),
            reason: reason.into(),
        }
    }
}
