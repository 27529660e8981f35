//! Twilio's webhooks: the `X-Twilio-Signature` check, the message `StatusCallback` as a
//! [`Receipt`], and an inbound SMS as an [`Inbound`].
//!
//! The signature, as Twilio's libraries compute it (twilio-python `RequestValidator`, twilio-node
//! `validateRequest`) and its security page describes it: take the full URL Twilio requested,
//! query string included and as written; for a form POST append each body parameter's name and
//! value, sorted by name, a repeated name once per value with its values sorted, no separators;
//! HMAC that string under the key and write it in base64. A GET has no body parameters: its query
//! is already in the URL. Twilio's back end is not consistent about ports, so the libraries
//! accept the URL with its port removed and with the scheme's default port added; so does
//! [`verify_twilio`].
//!
//! The key and hash are the account's Auth Token and SHA-1 by default. When a Webhook Rule of the
//! Webhooks configuration API (Public Beta) matches the URL, Twilio signs with that Setting's
//! SharedKey secret and the Setting's algorithm instead (`HMAC_SHA1` or `HMAC_SHA256`), still in
//! `X-Twilio-Signature`, and says so in `X-Twilio-Webhooks-Signature-Settings:
//! key=…,algorithm=…`; only the hash changes, not the signed string. The configuration names
//! which key and algorithm to expect; that header is read only to explain a mismatch.
//!
//! A JSON body is not signed as parameters: Twilio adds `bodySHA256` (the body's SHA-256, hex) to
//! the URL's query and signs the URL alone ([`verify_twilio_json`]).

use super::error::{ParseError, VerifyError};
use super::mac::{self, Encoding, Hash};
use super::params::Params;
use super::receipt::{DeliveryState, Inbound, Receipt, error_code};

/// The header holding the signature.
pub const TWILIO_SIGNATURE_HEADER: &str = "X-Twilio-Signature";
/// The header by which Twilio says a Webhook Setting's shared key signed the request.
pub const TWILIO_SETTINGS_HEADER: &str = "X-Twilio-Webhooks-Signature-Settings";

const WHAT: &str = "X-Twilio-Signature header";

/// The HMAC a Twilio signature uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum TwilioAlgorithm {
    /// HMAC-SHA1: always with the Auth Token, and a Webhook Setting may choose it too.
    #[serde(rename = "HMAC_SHA1")]
    HmacSha1,
    /// HMAC-SHA256, with a Webhook Setting's SharedKey secret.
    #[serde(rename = "HMAC_SHA256")]
    HmacSha256,
}

impl TwilioAlgorithm {
    fn hash(self) -> Hash {
        match self {
            TwilioAlgorithm::HmacSha1 => Hash::Sha1,
            TwilioAlgorithm::HmacSha256 => Hash::Sha256,
        }
    }

    /// The algorithm a `X-Twilio-Webhooks-Signature-Settings` header names (`algorithm=…`),
    /// if any: for an error message that says why a signature did not match, never to choose
    /// how to verify.
    pub fn named_in_settings(header: &str) -> Option<TwilioAlgorithm> {
        header.split(',').find_map(|item| {
            let (k, v) = item.split_once('=')?;
            if !k.trim().eq_ignore_ascii_case("algorithm") {
                return None;
            }
            match v.trim() {
                "HMAC_SHA1" => Some(TwilioAlgorithm::HmacSha1),
                "HMAC_SHA256" => Some(TwilioAlgorithm::HmacSha256),
                _ => None,
            }
        })
    }
}

/// The `X-Twilio-Signature` Twilio sends for `url` (exactly as requested) and the form body
/// parameters `params` (none for a GET), under `key` with `algorithm`.
pub fn twilio_signature(
    key: &[u8],
    algorithm: TwilioAlgorithm,
    url: &str,
    params: &Params,
) -> String {
    Encoding::Base64.encode(&signed_mac(key, algorithm, url, params))
}

fn signed_mac(key: &[u8], algorithm: TwilioAlgorithm, url: &str, params: &Params) -> Vec<u8> {
    let mut pairs: Vec<(&str, &str)> = params.iter().collect();
    // Sorted by name, then by value: twilio-python sorts a repeated name's values.
    pairs.sort_unstable();
    let mut parts: Vec<&[u8]> = Vec::with_capacity(1 + 2 * pairs.len());
    parts.push(url.as_bytes());
    for (name, value) in pairs {
        parts.push(name.as_bytes());
        parts.push(value.as_bytes());
    }
    mac::hmac(algorithm.hash(), key, &parts)
}

/// Checks a form or GET request: `url` is the full public URL Twilio requested (scheme, host,
/// path and query as configured with Twilio, not as a proxy rewrote them), `params` the form
/// body's parameters (empty for a GET), `header` the `X-Twilio-Signature` value.
pub fn verify_twilio(
    key: &[u8],
    algorithm: TwilioAlgorithm,
    url: &str,
    params: &Params,
    header: Option<&str>,
) -> Result<(), VerifyError> {
    let header = header.ok_or(VerifyError::Missing { what: WHAT })?;
    let presented = Encoding::Base64.decode(WHAT, header)?;
    let mut mismatch = Err(VerifyError::Malformed {
        what: WHAT,
        reason: "the wrong length for the configured algorithm",
    });
    for candidate in url_variants(url) {
        let expected = signed_mac(key, algorithm, &candidate, params);
        if presented.len() != expected.len() {
            continue;
        }
        if mac::same(&presented, &expected) {
            return Ok(());
        }
        mismatch = Err(VerifyError::Mismatch { what: WHAT });
    }
    mismatch
}

/// Checks a request with a JSON body: the URL (which carries `bodySHA256`) is signed with no
/// parameters, and `bodySHA256` must be the SHA-256 of `body`.
pub fn verify_twilio_json(
    key: &[u8],
    algorithm: TwilioAlgorithm,
    url: &str,
    body: &[u8],
    header: Option<&str>,
) -> Result<(), VerifyError> {
    verify_twilio(key, algorithm, url, &Params::default(), header)?;
    let query = url.split_once('?').map_or("", |(_, q)| q);
    let query = query.split_once('#').map_or(query, |(q, _)| q);
    let params = Params::from_form(query.as_bytes());
    let claimed = params
        .get("bodySHA256")
        .ok_or(VerifyError::Missing {
            what: "bodySHA256 query parameter",
        })?
        .to_ascii_lowercase();
    let actual = Encoding::Hex.encode(&mac::digest(Hash::Sha256, &[body]));
    if mac::same(claimed.as_bytes(), actual.as_bytes()) {
        Ok(())
    } else {
        Err(VerifyError::BodyHash)
    }
}

/// `url` itself, without its port, and with the scheme's default port when it has none (the
/// forms twilio-python and twilio-node accept), each once.
fn url_variants(url: &str) -> Vec<String> {
    let mut out = vec![url.to_string()];
    let Some((scheme, rest)) = url.split_once("://") else {
        return out;
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    let (userinfo, hostport) = match authority.rfind('@') {
        Some(at) => authority.split_at(at + 1),
        None => ("", authority),
    };
    // The port follows the last `:` unless that `:` is inside an IPv6 literal.
    let port_at = hostport
        .rfind(':')
        .filter(|&i| !hostport[i..].contains(']'));
    let with = |hostport: &str| format!("{scheme}://{userinfo}{hostport}{tail}");
    match port_at {
        Some(i) => out.push(with(&hostport[..i])),
        None => {
            let default = if scheme.eq_ignore_ascii_case("https") {
                443
            } else {
                80
            };
            out.push(with(&format!("{hostport}:{default}")));
        }
    }
    out.dedup();
    out
}

/// The delivery state a Twilio `MessageStatus` means.
pub fn twilio_state(status: &str) -> DeliveryState {
    match status {
        // `read` is a WhatsApp read receipt: delivered and then some.
        "delivered" | "read" => DeliveryState::Delivered,
        "undelivered" | "failed" => DeliveryState::Undelivered,
        // queued, sending, sent, accepted, scheduled, canceled, receiving, received, and any
        // status Twilio adds later: not a carrier's final word on delivery.
        _ => DeliveryState::Pending,
    }
}

/// A message `StatusCallback` (form parameters): `MessageSid`, `MessageStatus`, and when Twilio
/// has them `ErrorCode`, `RawDlrDoneDate` and `To`. Older callbacks name the status `SmsStatus`.
pub fn twilio_receipt(params: &Params) -> Result<Receipt, ParseError> {
    let provider_id = params.require("MessageSid")?.to_string();
    let status = params
        .require("MessageStatus")
        .or_else(|_| params.require("SmsStatus"))
        .map_err(|_| ParseError::missing("MessageStatus"))?
        .to_string();
    Ok(Receipt {
        provider_id,
        state: twilio_state(&status),
        status,
        error_code: error_code(params.get("ErrorCode")),
        carrier_time: params
            .get("RawDlrDoneDate")
            .filter(|t| !t.is_empty())
            .map(str::to_string),
        recipient: params
            .get("To")
            .filter(|t| !t.is_empty())
            .map(str::to_string),
    })
}

/// An inbound message webhook (form parameters): `From`, `To`, `Body` (may be empty: an MMS with
/// only media) and `MessageSid`. Twilio joins the parts of a long SMS before it calls.
pub fn twilio_inbound(params: &Params) -> Result<Inbound, ParseError> {
    Ok(Inbound {
        from: params.require("From")?.to_string(),
        to: params.require("To")?.to_string(),
        body: params.get("Body").unwrap_or_default().to_string(),
        provider_id: params.require("MessageSid")?.to_string(),
        part: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKEN: &[u8] = b"12345";
    const URL: &str = "https://mycompany.com/myapp.php?foo=1&bar=2";
    const SHA1: TwilioAlgorithm = TwilioAlgorithm::HmacSha1;

    fn call(number: &str) -> Params {
        Params::from_pairs([
            ("CallSid", "CA1234567890ABCDE"),
            ("Caller", number),
            ("Digits", "1234"),
            ("From", number),
            ("To", "+18005551212"),
        ])
    }

    #[test]
    fn twilios_published_example_validates() {
        // twilio.com/docs/usage/webhooks/webhooks-security: auth token 12345, this URL, these
        // POST parameters.
        let params = call("+14158675310");
        let sig = "GvWf1cFY/Q7PnoempGyD5oXAezc=";
        assert_eq!(twilio_signature(TOKEN, SHA1, URL, &params), sig);
        assert_eq!(verify_twilio(TOKEN, SHA1, URL, &params, Some(sig)), Ok(()));
    }

    #[test]
    fn twilio_pythons_own_vectors_validate() {
        // twilio-python tests/unit/test_request_validator.py.
        let params = call("+14158675309");
        let sig = "RSOYDt4T1cUTdK1PDd93/VVr8B8=";
        assert_eq!(twilio_signature(TOKEN, SHA1, URL, &params), sig);
        // A repeated name: each value, sorted (Digits 1234 before 5678).
        let repeated = Params::from_form(b"Sid=CA123&SidAccount=AC123&Digits=5678&Digits=1234");
        assert_eq!(
            twilio_signature(TOKEN, SHA1, URL, &repeated),
            "IK+Dwps556ElfBT0I3Rgjkr1wJU="
        );
        // The port: removed, or the default added, whichever form Twilio signed.
        let with_port = URL.replace(".com", ".com:1234");
        assert_eq!(
            verify_twilio(TOKEN, SHA1, &with_port, &params, Some(sig)),
            Ok(())
        );
        let http_port = with_port.replace("https", "http");
        let ok = |url: &str, sig: &str| verify_twilio(TOKEN, SHA1, url, &params, Some(sig));
        assert_eq!(ok(&http_port, "Zmvh+3yNM1Phv2jhDCwEM3q5ebU="), Ok(()));
        assert_eq!(ok(URL, "kvajT1Ptam85bY51eRf/AJRuM3w="), Ok(()));
        assert_eq!(
            ok(
                &URL.replace("https", "http"),
                "0ZXoZLH/DfblKGATFgpif+LLRf4="
            ),
            Ok(())
        );
    }

    #[test]
    fn a_json_body_is_checked_by_its_hash_in_the_url() {
        // twilio-python's body vector.
        let body = br#"{"property": "value", "boolean": true}"#;
        let hash = "0a1ff7634d9ab3b95db5c9a2dfe9416e41502b283a80c7cf19632632f96e6620";
        let url = format!("{URL}&bodySHA256={hash}");
        let sig = Some("a9nBmqA0ju/hNViExpshrM61xv4=");
        assert_eq!(verify_twilio_json(TOKEN, SHA1, &url, body, sig), Ok(()));
        assert_eq!(
            verify_twilio_json(TOKEN, SHA1, &url, br#"{"property": "other"}"#, sig),
            Err(VerifyError::BodyHash)
        );
        assert_eq!(
            verify_twilio_json(
                TOKEN,
                SHA1,
                URL,
                body,
                Some(&twilio_signature(TOKEN, SHA1, URL, &Params::default()))
            ),
            Err(VerifyError::Missing {
                what: "bodySHA256 query parameter"
            })
        );
    }

    #[test]
    fn a_shared_key_signs_with_sha256_and_only_that_verifies() {
        let key = b"a webhook setting's shared key";
        let sha256 = TwilioAlgorithm::HmacSha256;
        let params = call("+14158675310");
        let sig = twilio_signature(key, sha256, URL, &params);
        assert_eq!(
            data_encoding::BASE64.decode(sig.as_bytes()).unwrap().len(),
            32
        );
        assert_eq!(verify_twilio(key, sha256, URL, &params, Some(&sig)), Ok(()));
        // The configuration says SHA-1 with the Auth Token: a SHA-256 signature is refused,
        // whatever the request claims.
        assert!(verify_twilio(key, SHA1, URL, &params, Some(&sig)).is_err());
        assert_eq!(
            TwilioAlgorithm::named_in_settings("key=KS123,algorithm=HMAC_SHA256"),
            Some(sha256)
        );
        assert_eq!(TwilioAlgorithm::named_in_settings("key=KS123"), None);
    }

    #[test]
    fn wrong_missing_or_tampered_signatures_are_refused() {
        let params = call("+14158675310");
        let sig = Some("GvWf1cFY/Q7PnoempGyD5oXAezc=");
        let mismatch = Err(VerifyError::Mismatch { what: WHAT });
        assert_eq!(verify_twilio(b"54321", SHA1, URL, &params, sig), mismatch);
        let mut tampered: Vec<_> = params.iter().collect();
        tampered[2].1 = "9999";
        let tampered = Params::from_pairs(tampered);
        assert_eq!(verify_twilio(TOKEN, SHA1, URL, &tampered, sig), mismatch);
        assert_eq!(
            verify_twilio(TOKEN, SHA1, &URL.replace("foo=1", "foo=2"), &params, sig),
            mismatch
        );
        assert_eq!(
            verify_twilio(TOKEN, SHA1, URL, &params, None),
            Err(VerifyError::Missing { what: WHAT })
        );
        assert!(matches!(
            verify_twilio(TOKEN, SHA1, URL, &params, Some("not base64!")),
            Err(VerifyError::Malformed { .. })
        ));
    }

    #[test]
    fn url_variants_strip_or_add_the_port_once() {
        assert_eq!(
            url_variants("https://a.example/x?p=1"),
            ["https://a.example/x?p=1", "https://a.example:443/x?p=1"]
        );
        assert_eq!(
            url_variants("http://u:pw@a.example:8080?q"),
            ["http://u:pw@a.example:8080?q", "http://u:pw@a.example?q"]
        );
        assert_eq!(
            url_variants("https://[::1]/x"),
            ["https://[::1]/x", "https://[::1]:443/x"]
        );
    }

    #[test]
    fn status_callbacks_become_receipts() {
        let form = b"SmsSid=SM1&SmsStatus=undelivered&MessageStatus=undelivered&To=%2B13125550142\
            &MessageSid=SM1&AccountSid=AC1&From=%2B13125550100&ErrorCode=30003&RawDlrDoneDate=2611251802";
        let r = twilio_receipt(&Params::from_form(form)).unwrap();
        assert_eq!(r.provider_id, "SM1");
        assert_eq!(r.state, DeliveryState::Undelivered);
        assert_eq!(r.status, "undelivered");
        assert_eq!(r.error_code.as_deref(), Some("30003"));
        assert_eq!(r.carrier_time.as_deref(), Some("2611251802"));
        assert_eq!(r.recipient.as_deref(), Some("+13125550142"));
        for (status, state) in [
            ("delivered", DeliveryState::Delivered),
            ("failed", DeliveryState::Undelivered),
            ("sent", DeliveryState::Pending),
            ("queued", DeliveryState::Pending),
            ("accepted", DeliveryState::Pending),
        ] {
            let p = Params::from_pairs([("MessageSid", "SM2"), ("MessageStatus", status)]);
            assert_eq!(twilio_receipt(&p).unwrap().state, state, "{status}");
        }
        assert_eq!(
            twilio_receipt(&Params::from_pairs([("MessageStatus", "sent")])),
            Err(ParseError::missing("MessageSid"))
        );
    }

    #[test]
    fn inbound_messages_are_read() {
        let form = b"MessageSid=SM9&From=%2B13125550142&To=%2B13125550100&Body=STOP&NumMedia=0";
        let m = twilio_inbound(&Params::from_form(form)).unwrap();
        assert_eq!(
            (
                m.from.as_str(),
                m.to.as_str(),
                m.body.as_str(),
                m.provider_id.as_str()
            ),
            ("+13125550142", "+13125550100", "STOP", "SM9")
        );
        assert_eq!(m.part, None);
    }
}
