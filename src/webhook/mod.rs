//! Provider webhooks, the pure part: is a request really the provider's, and what does it say.
//! Bytes and strings in, typed results out; no I/O, no clock (the caller passes the instant),
//! no secret read here (the caller passes the bytes the configuration names). It is what
//! `outreach listen` (delivery receipts, replies, unsubscribes) is to be built on: a request
//! whose check fails gets 403 and nothing of it is recorded.
//!
//! The files: `twilio` (the `X-Twilio-Signature` check, status callbacks, inbound messages),
//! `vonage` (signed webhooks of the SMS API, delivery receipts, inbound messages, parts),
//! `generic` (a shared-secret header or an HMAC of the body; receipts read by JSON pointers),
//! `keywords` (what an inbound SMS asks for: opt out, opt in, help, or nothing), `codes` (the
//! error codes that suppress a number, which `sync` reads too), over `receipt`
//! (the [`Receipt`] and [`Inbound`] every provider comes down to), `params` (a request's
//! parameters as sent), `mac` (HMACs, digests, constant-time comparison) and `error`.

mod codes;
mod error;
mod generic;
mod keywords;
mod mac;
mod params;
mod receipt;
mod twilio;
mod vonage;

pub use codes::{CodeSuppression, ErrorCodes, TWILIO_LANDLINE, TWILIO_OPTED_OUT, VONAGE_OPTED_OUT};
pub use error::{ParseError, VerifyError};
pub use generic::{
    ReceiptPointers, StateMap, body_hmac, generic_receipt, verify_body_hmac, verify_shared_secret,
};
pub use keywords::{HELP_WORDS, Keyword, OPT_IN_WORDS, OPT_OUT_WORDS, classify};
pub use mac::Encoding;
pub use params::Params;
pub use receipt::{DeliveryState, Inbound, Part, Receipt, join_parts, whole_message};
pub use twilio::{
    TWILIO_SETTINGS_HEADER, TWILIO_SIGNATURE_HEADER, TwilioAlgorithm, twilio_inbound,
    twilio_receipt, twilio_signature, twilio_state, verify_twilio, verify_twilio_json,
};
pub use vonage::{
    VONAGE_SIGNATURE_WINDOW_SECS, VonageKey, VonageMethod, vonage_inbound, vonage_receipt,
    vonage_state,
};
