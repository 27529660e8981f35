//! Vonage's SMS API webhooks: signed requests (the `sig` parameter), delivery receipts as
//! [`Receipt`]s and inbound SMS as [`Inbound`]s, from a query string, a form or a JSON body
//! alike (all three become [`Params`]).
//!
//! The signature, as Vonage's "Signing Messages" guide and its libraries compute it
//! (vonage-php-sdk-core `Client\Signature`, @vonage/auth `createSignatureHash`, the Java SDK's
//! `RequestSigning`): every parameter but `sig`, sorted by name, written `&name=value` with each
//! `&` and `=` in a value replaced by `_`, one string. Then, by the method set in the dashboard:
//! `md5hash` is the MD5 of that string followed by the signature secret; `md5`, `sha1`, `sha256`
//! and `sha512` are the HMAC of it keyed by the secret. Hex, compared in either case (PHP writes
//! HMACs in upper case, MD5 hashes in lower). The signed `timestamp` (Unix seconds) must be
//! within a window of now (the Java SDK's is 5 minutes), or an old request could be replayed.
//! MD5 is broken for this use: both MD5 methods are refused unless the configuration says
//! `allow_md5 = true`.
//!
//! A receipt is one per part: Vonage splits a long message itself and its send reply gives each
//! part its own `message-id`, and each part's receipt names that id in `messageId` (no part
//! number is sent with it). [`whole_message`](super::whole_message) turns the parts' states
//! into the message's.

use super::error::{ParseError, VerifyError};
use super::mac::{self, Encoding, Hash};
use super::params::Params;
use super::receipt::{DeliveryState, Inbound, Part, Receipt, error_code};

/// How far the signed `timestamp` may be from now, either way, by default: 5 minutes, as the
/// Java SDK's `RequestSigning.MAX_ALLOWABLE_TIME_DELTA`.
pub const VONAGE_SIGNATURE_WINDOW_SECS: u64 = 300;

const WHAT: &str = "sig parameter";

/// A signature method of Vonage's dashboard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VonageMethod {
    /// `md5hash`: MD5 of the string and the secret (Vonage's default, and the weakest).
    Md5Hash,
    /// `md5`: HMAC-MD5.
    HmacMd5,
    /// `sha1`: HMAC-SHA1.
    HmacSha1,
    /// `sha256`: HMAC-SHA256.
    HmacSha256,
    /// `sha512`: HMAC-SHA512.
    HmacSha512,
}

impl VonageMethod {
    /// Every method, by the name Vonage's dashboard and libraries give it.
    pub const ALL: [(&'static str, VonageMethod); 5] = [
        ("md5hash", VonageMethod::Md5Hash),
        ("md5", VonageMethod::HmacMd5),
        ("sha1", VonageMethod::HmacSha1),
        ("sha256", VonageMethod::HmacSha256),
        ("sha512", VonageMethod::HmacSha512),
    ];

    /// The method of this name (`md5hash`, `md5`, `sha1`, `sha256`, `sha512`).
    pub fn from_name(name: &str) -> Option<VonageMethod> {
        Self::ALL.iter().find(|(n, _)| *n == name).map(|(_, m)| *m)
    }

    /// The method's name, as the configuration writes it.
    pub fn name(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(_, m)| *m == self)
            .map_or("", |(n, _)| n)
    }

    /// Whether it rests on MD5 (`md5hash` and `md5`).
    pub fn uses_md5(self) -> bool {
        matches!(self, VonageMethod::Md5Hash | VonageMethod::HmacMd5)
    }
}

/// A signature secret with the method it is used with; made only through [`VonageKey::new`],
/// which refuses MD5 unless allowed.
#[derive(Clone)]
pub struct VonageKey {
    secret: Vec<u8>,
    method: VonageMethod,
}

impl std::fmt::Debug for VonageKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "VonageKey({}, …)", self.method.name())
    }
}

impl VonageKey {
    /// The key of `secret` for `method`; an MD5 method only when `allow_md5`.
    pub fn new(
        secret: impl Into<Vec<u8>>,
        method: VonageMethod,
        allow_md5: bool,
    ) -> Result<VonageKey, VerifyError> {
        if method.uses_md5() && !allow_md5 {
            return Err(VerifyError::Md5Refused {
                method: method.name(),
            });
        }
        Ok(VonageKey {
            secret: secret.into(),
            method,
        })
    }

    /// The method this key signs with.
    pub fn method(&self) -> VonageMethod {
        self.method
    }

    fn mac(&self, params: &Params) -> Result<Vec<u8>, VerifyError> {
        let signed = signed_string(params)?;
        let data = signed.as_bytes();
        Ok(match self.method {
            VonageMethod::Md5Hash => mac::digest(Hash::Md5, &[data, &self.secret]),
            VonageMethod::HmacMd5 => mac::hmac(Hash::Md5, &self.secret, &[data]),
            VonageMethod::HmacSha1 => mac::hmac(Hash::Sha1, &self.secret, &[data]),
            VonageMethod::HmacSha256 => mac::hmac(Hash::Sha256, &self.secret, &[data]),
            VonageMethod::HmacSha512 => mac::hmac(Hash::Sha512, &self.secret, &[data]),
        })
    }

    /// The `sig` Vonage sends with `params` (any `sig` among them is left out): lower-case hex
    /// for `md5hash`, upper-case for the HMACs, as Vonage's PHP library writes them.
    pub fn sign(&self, params: &Params) -> Result<String, VerifyError> {
        let hex = Encoding::Hex.encode(&self.mac(params)?);
        Ok(match self.method {
            VonageMethod::Md5Hash => hex,
            _ => hex.to_ascii_uppercase(),
        })
    }

    /// Checks a signed webhook: `params` are every parameter received (query, form or JSON,
    /// `sig` and `timestamp` among them), `now` the current Unix time in seconds, `window` how
    /// far the signed timestamp may be from it ([`VONAGE_SIGNATURE_WINDOW_SECS`] by default).
    pub fn verify(&self, params: &Params, now: i64, window: u64) -> Result<(), VerifyError> {
        let expected = self.mac(params)?;
        mac::check(WHAT, Encoding::Hex, params.get("sig"), &expected)?;
        let timestamp: i64 = params
            .get("timestamp")
            .and_then(|t| t.trim().parse().ok())
            .ok_or(VerifyError::Timestamp)?;
        let age = now.saturating_sub(timestamp);
        if age.unsigned_abs() > window {
            return Err(VerifyError::Stale { age, window });
        }
        Ok(())
    }
}

/// The string Vonage signs: `&name=value` for every parameter but `sig`, sorted by name, `&`
/// and `=` in values replaced by `_`. A name twice is refused: which value Vonage signed cannot
/// be known (its libraries keep one, but not the same one).
fn signed_string(params: &Params) -> Result<String, VerifyError> {
    let mut pairs: Vec<(&str, &str)> = params.iter().filter(|(k, _)| *k != "sig").collect();
    pairs.sort_unstable_by_key(|(k, _)| *k);
    if let Some(w) = pairs.windows(2).find(|w| w[0].0 == w[1].0) {
        return Err(VerifyError::Duplicate {
            name: w[0].0.to_string(),
        });
    }
    let mut out = String::new();
    for (name, value) in pairs {
        out.push('&');
        out.push_str(name);
        out.push('=');
        out.extend(
            value
                .chars()
                .map(|c| if c == '&' || c == '=' { '_' } else { c }),
        );
    }
    Ok(out)
}

/// The delivery state a Vonage receipt's `status` means.
pub fn vonage_state(status: &str) -> DeliveryState {
    match status {
        "delivered" => DeliveryState::Delivered,
        "failed" | "expired" | "rejected" => DeliveryState::Undelivered,
        // accepted, buffered, unknown ("the carrier returned an undocumented status code"),
        // and anything Vonage adds later: a later receipt may settle it.
        _ => DeliveryState::Pending,
    }
}

/// A delivery receipt (one part's): `messageId`, `status`, and when sent `err-code`, `scts` (the
/// carrier's time, `YYMMDDhhmm`) and `msisdn` (the recipient).
pub fn vonage_receipt(params: &Params) -> Result<Receipt, ParseError> {
    let provider_id = params.require("messageId")?.to_string();
    let status = params.require("status")?.to_string();
    Ok(Receipt {
        provider_id,
        state: vonage_state(&status),
        status,
        error_code: error_code(params.get("err-code")),
        carrier_time: params
            .get("scts")
            .filter(|t| !t.is_empty())
            .map(str::to_string),
        recipient: params
            .get("msisdn")
            .filter(|t| !t.is_empty())
            .map(str::to_string),
    })
}

/// An inbound SMS: `msisdn` (the patient), `to`, `text` (absent for a binary message),
/// `messageId`, and for one part of a longer message `concat=true` with `concat-ref`,
/// `concat-total` and `concat-part` ([`join_parts`](super::join_parts) puts them together).
pub fn vonage_inbound(params: &Params) -> Result<Inbound, ParseError> {
    let part = if params.get("concat") == Some("true") {
        let number = |field: &str| -> Result<u32, ParseError> {
            params
                .require(field)?
                .parse()
                .map_err(|_| ParseError::invalid(field, "not a whole number"))
        };
        let (number, total) = (number("concat-part")?, number("concat-total")?);
        if number == 0 || number > total {
            return Err(ParseError::invalid(
                "concat-part",
                format!("part {number} of {total}"),
            ));
        }
        Some(Part {
            reference: params.require("concat-ref")?.to_string(),
            number,
            total,
        })
    } else {
        None
    };
    Ok(Inbound {
        from: params.require("msisdn")?.to_string(),
        to: params.require("to")?.to_string(),
        body: params.get("text").unwrap_or_default().to_string(),
        provider_id: params.require("messageId")?.to_string(),
        part,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"my_secret_key_for_testing";

    /// A real signed inbound message, from vonage-php-sdk-core's SignatureTest.
    fn inbound_2013() -> Params {
        Params::from_pairs([
            ("message-timestamp", "2013-11-21 15:27:30"),
            ("messageId", "020000001B0FE827"),
            ("msisdn", "14843472194"),
            ("text", "Test again"),
            ("timestamp", "1385047698"),
            ("to", "13239877404"),
            ("type", "text"),
        ])
    }

    fn key(method: VonageMethod, secret: &[u8]) -> VonageKey {
        VonageKey::new(secret, method, true).unwrap()
    }

    #[test]
    fn vonages_published_signatures_are_reproduced_for_every_method() {
        // vonage-php-sdk-core test/Client/SignatureTest.php, `signatures()`.
        for (method, sig) in [
            (VonageMethod::Md5Hash, "d2e7b1dc968737c5998ad624e02f90b7"),
            (VonageMethod::HmacMd5, "DDEBD46008C2D4E93CCE578A332A52D5"),
            (
                VonageMethod::HmacSha1,
                "27D0D05C2876C7CB1720DBCDBA4D492E1E55C09A",
            ),
            (
                VonageMethod::HmacSha256,
                "DDB8397C2B90AAC7F3882D306475C9A5058C92322EEF43C92B298B6E0FC0D330",
            ),
            (
                VonageMethod::HmacSha512,
                "E0D3C650F8C9D1A5C174D10DDDBFB003E561F59B265616208B0487C5D819481CD3C311D59CF6165ECD1139622D5BA3A256C0D763AC4A9AD9144B5A426B94FE82",
            ),
        ] {
            assert_eq!(
                key(method, SECRET).sign(&inbound_2013()).unwrap(),
                sig,
                "{method:?}"
            );
        }
    }

    #[test]
    fn ampersands_and_equals_in_values_are_underscores() {
        // Real inbound messages with a nonce, one with "&" and "=" in its text (same source).
        let params = |text: &str, nonce: &str, ts: &str, mts: &str, id: &str, kw: &str| {
            Params::from_pairs([
                ("keyword", kw),
                ("message-timestamp", mts),
                ("messageId", id),
                ("msisdn", "14843472194"),
                ("nonce", nonce),
                ("text", text),
                ("timestamp", ts),
                ("to", "12192259404"),
                ("type", "text"),
            ])
        };
        let k = key(VonageMethod::Md5Hash, SECRET);
        let amp = params(
            "Test with & and =",
            "929d6744-bd28-42c8-b6cf-31d5b4f43732",
            "1491346667",
            "2017-04-04 22:57:47",
            "0B00000042AC53BD",
            "TEST",
        );
        assert_eq!(k.sign(&amp).unwrap(), "e06d9763e3fd0b9c31beb5fc2fcb011c");
        let plain = params(
            "Testings",
            "c4ab6ed2-9bf5-48a0-af91-107e29bdd399",
            "1491347122",
            "2017-04-04 23:05:22",
            "0C00000027217D5B",
            "TESTINGS",
        );
        assert_eq!(k.sign(&plain).unwrap(), "ff933bf31c79ab3fc6a38d100191c48f");
    }

    fn with_sig(params: &Params, sig: &str) -> Params {
        Params::from_pairs(params.iter().chain([("sig", sig)]))
    }

    #[test]
    fn a_signed_request_verifies_within_the_window_only() {
        let k = key(VonageMethod::HmacSha256, SECRET);
        let signed = with_sig(&inbound_2013(), &k.sign(&inbound_2013()).unwrap());
        let ts = 1_385_047_698;
        let w = VONAGE_SIGNATURE_WINDOW_SECS;
        assert_eq!(k.verify(&signed, ts + 299, w), Ok(()));
        assert_eq!(k.verify(&signed, ts - 300, w), Ok(()));
        assert_eq!(
            k.verify(&signed, ts + 301, w),
            Err(VerifyError::Stale {
                age: 301,
                window: w
            })
        );
        // Lower-case hex is the same signature.
        let lower = with_sig(
            &inbound_2013(),
            &k.sign(&inbound_2013()).unwrap().to_lowercase(),
        );
        assert_eq!(k.verify(&lower, ts, w), Ok(()));
    }

    #[test]
    fn tampering_a_wrong_secret_or_no_signature_is_refused() {
        let k = key(VonageMethod::HmacSha512, SECRET);
        let sig = k.sign(&inbound_2013()).unwrap();
        let ts = 1_385_047_698;
        let w = VONAGE_SIGNATURE_WINDOW_SECS;
        let mismatch = Err(VerifyError::Mismatch { what: WHAT });
        let original = inbound_2013();
        let mut changed: Vec<_> = original.iter().collect();
        changed[3].1 = "START";
        assert_eq!(
            k.verify(&with_sig(&Params::from_pairs(changed), &sig), ts, w),
            mismatch
        );
        let other = key(VonageMethod::HmacSha512, b"another secret");
        assert_eq!(
            other.verify(&with_sig(&inbound_2013(), &sig), ts, w),
            mismatch
        );
        assert_eq!(
            k.verify(&inbound_2013(), ts, w),
            Err(VerifyError::Missing { what: WHAT })
        );
        // A SHA-256 signature where SHA-512 is configured: not even the right length.
        let sha256 = key(VonageMethod::HmacSha256, SECRET)
            .sign(&inbound_2013())
            .unwrap();
        assert!(matches!(
            k.verify(&with_sig(&inbound_2013(), &sha256), ts, w),
            Err(VerifyError::Malformed { .. })
        ));
        let twice = Params::from_pairs(inbound_2013().iter().chain([("text", "x"), ("sig", "00")]));
        assert_eq!(
            k.verify(&twice, ts, w),
            Err(VerifyError::Duplicate {
                name: "text".into()
            })
        );
    }

    #[test]
    fn a_signature_without_a_timestamp_is_refused() {
        let k = key(VonageMethod::HmacSha1, SECRET);
        let p = Params::from_pairs([("messageId", "X1"), ("status", "delivered")]);
        let signed = with_sig(&p, &k.sign(&p).unwrap());
        assert_eq!(k.verify(&signed, 0, 300), Err(VerifyError::Timestamp));
    }

    #[test]
    fn md5_methods_need_allow_md5() {
        for (name, method) in VonageMethod::ALL {
            assert_eq!(VonageMethod::from_name(name), Some(method));
            let made = VonageKey::new(SECRET, method, false);
            if method.uses_md5() {
                assert_eq!(made.unwrap_err(), VerifyError::Md5Refused { method: name });
            } else {
                assert!(made.is_ok());
            }
        }
        assert_eq!(VonageMethod::from_name("SHA256"), None);
        assert_eq!(
            format!("{:?}", key(VonageMethod::HmacSha256, SECRET)),
            "VonageKey(sha256, …)"
        );
    }

    #[test]
    fn json_and_query_receipts_read_the_same() {
        // The query of a real receipt (as in Vonage's SMS API reference), and the same as JSON.
        let query = b"msisdn=447700900000&to=AcmeInc&network-code=23410&messageId=0A0000001234567B\
            &price=0.03330000&status=expired&scts=2001011400&err-code=27\
            &api-key=abcd1234&message-timestamp=2020-01-01+12%3A00%3A00";
        let json = br#"{"msisdn":"447700900000","to":"AcmeInc","network-code":"23410",
            "messageId":"0A0000001234567B","price":"0.03330000","status":"expired",
            "scts":"2001011400","err-code":"27","api-key":"abcd1234",
            "message-timestamp":"2020-01-01 12:00:00"}"#;
        let a = vonage_receipt(&Params::from_form(query)).unwrap();
        let b = vonage_receipt(&Params::from_json(json).unwrap()).unwrap();
        assert_eq!(a, b);
        assert_eq!(a.provider_id, "0A0000001234567B");
        assert_eq!(a.state, DeliveryState::Undelivered);
        assert_eq!(a.error_code.as_deref(), Some("27"));
        assert_eq!(a.carrier_time.as_deref(), Some("2001011400"));
        assert_eq!(a.recipient.as_deref(), Some("447700900000"));
        for (status, state) in [
            ("delivered", DeliveryState::Delivered),
            ("failed", DeliveryState::Undelivered),
            ("rejected", DeliveryState::Undelivered),
            ("accepted", DeliveryState::Pending),
            ("buffered", DeliveryState::Pending),
            ("unknown", DeliveryState::Pending),
        ] {
            assert_eq!(vonage_state(status), state, "{status}");
        }
        let delivered = Params::from_pairs([
            ("messageId", "X"),
            ("status", "delivered"),
            ("err-code", "0"),
        ]);
        assert_eq!(vonage_receipt(&delivered).unwrap().error_code, None);
    }

    #[test]
    fn inbound_parts_say_which_part_they_are() {
        let form = b"msisdn=14155550100&to=13125550100&messageId=0B00000012345678&text=Please+st\
            &type=text&concat=true&concat-ref=108&concat-total=2&concat-part=1";
        let m = vonage_inbound(&Params::from_form(form)).unwrap();
        assert_eq!(m.body, "Please st");
        assert_eq!(
            m.part,
            Some(Part {
                reference: "108".into(),
                number: 1,
                total: 2
            })
        );
        let single = Params::from_pairs([
            ("msisdn", "14155550100"),
            ("to", "13125550100"),
            ("messageId", "1"),
            ("text", "STOP"),
        ]);
        assert_eq!(vonage_inbound(&single).unwrap().part, None);
        let bad =
            b"msisdn=1&to=2&messageId=3&concat=true&concat-ref=9&concat-total=2&concat-part=3";
        assert!(matches!(
            vonage_inbound(&Params::from_form(bad)),
            Err(ParseError::Invalid { .. })
        ));
    }
}
