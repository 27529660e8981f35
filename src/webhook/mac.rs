//! The primitives the providers' schemes are built from: HMAC and plain digests over the
//! RustCrypto crates, signatures decoded from hex or base64, and the one comparison every check
//! ends in, constant-time (`subtle`), so the time a wrong guess takes says nothing about how
//! close it was.

use hmac::{Hmac, Mac};
use md5::Md5;
use sha1::Sha1;
use sha2::{Digest, Sha256, Sha512};
use subtle::ConstantTimeEq;

use super::error::VerifyError;

/// A hash function a scheme names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Hash {
    Md5,
    Sha1,
    Sha256,
    Sha512,
}

/// HMAC of the concatenation of `parts` under `key`.
pub(crate) fn hmac(hash: Hash, key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    fn run<M: Mac + hmac::digest::KeyInit>(key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
        let mut mac = <M as hmac::digest::KeyInit>::new_from_slice(key)
            .expect("HMAC takes a key of any length");
        for p in parts {
            mac.update(p);
        }
        mac.finalize().into_bytes().to_vec()
    }
    match hash {
        Hash::Md5 => run::<Hmac<Md5>>(key, parts),
        Hash::Sha1 => run::<Hmac<Sha1>>(key, parts),
        Hash::Sha256 => run::<Hmac<Sha256>>(key, parts),
        Hash::Sha512 => run::<Hmac<Sha512>>(key, parts),
    }
}

/// The plain digest of the concatenation of `parts`.
pub(crate) fn digest(hash: Hash, parts: &[&[u8]]) -> Vec<u8> {
    fn run<D: Digest>(parts: &[&[u8]]) -> Vec<u8> {
        let mut d = D::new();
        for p in parts {
            d.update(p);
        }
        d.finalize().to_vec()
    }
    match hash {
        Hash::Md5 => run::<Md5>(parts),
        Hash::Sha1 => run::<Sha1>(parts),
        Hash::Sha256 => run::<Sha256>(parts),
        Hash::Sha512 => run::<Sha512>(parts),
    }
}

/// Whether two byte strings are equal, in time that depends only on their lengths.
pub(crate) fn same(a: &[u8], b: &[u8]) -> bool {
    a.ct_eq(b).into()
}

/// How a signature is written in the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Encoding {
    /// Hexadecimal digits, either case.
    Hex,
    /// Standard base64 with padding (RFC 4648 §4).
    Base64,
}

impl Encoding {
    /// The bytes a signature of this encoding stands for, or why it cannot be one.
    pub(crate) fn decode(self, what: &'static str, text: &str) -> Result<Vec<u8>, VerifyError> {
        let text = text.trim();
        if text.is_empty() {
            return Err(VerifyError::Missing { what });
        }
        let (decoded, reason) = match self {
            Encoding::Hex => (
                data_encoding::HEXLOWER_PERMISSIVE.decode(text.as_bytes()),
                "not hexadecimal",
            ),
            Encoding::Base64 => (data_encoding::BASE64.decode(text.as_bytes()), "not base64"),
        };
        decoded.map_err(|_| VerifyError::Malformed { what, reason })
    }

    /// `bytes` written in this encoding (hex in lower case).
    pub(crate) fn encode(self, bytes: &[u8]) -> String {
        match self {
            Encoding::Hex => data_encoding::HEXLOWER.encode(bytes),
            Encoding::Base64 => data_encoding::BASE64.encode(bytes),
        }
    }
}

/// Checks a presented signature against the expected bytes: present, decodable, the right
/// length, and equal in constant time.
pub(crate) fn check(
    what: &'static str,
    encoding: Encoding,
    presented: Option<&str>,
    expected: &[u8],
) -> Result<(), VerifyError> {
    let presented = presented.ok_or(VerifyError::Missing { what })?;
    let bytes = encoding.decode(what, presented)?;
    if bytes.len() != expected.len() {
        return Err(VerifyError::Malformed {
            what,
            reason: "the wrong length for the configured algorithm",
        });
    }
    if same(&bytes, expected) {
        Ok(())
    } else {
        Err(VerifyError::Mismatch { what })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmacs_match_rfc_4231_and_2202_vectors() {
        // RFC 4231 test case 2 and RFC 2202 test case 2 ("Jefe").
        let data: &[&[u8]] = &[b"what do ya want ", b"for nothing?"];
        assert_eq!(
            Encoding::Hex.encode(&hmac(Hash::Sha256, b"Jefe", data)),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        assert_eq!(
            Encoding::Hex.encode(&hmac(Hash::Sha1, b"Jefe", data)),
            "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79"
        );
        assert_eq!(
            Encoding::Hex.encode(&hmac(Hash::Md5, b"Jefe", data)),
            "750c783e6ab0b503eaa86e310a5db738"
        );
    }

    #[test]
    fn check_says_what_was_wrong() {
        let expected = [1u8, 2, 3];
        let ok = Encoding::Hex.encode(&expected);
        assert_eq!(check("sig", Encoding::Hex, Some(&ok), &expected), Ok(()));
        assert_eq!(
            check("sig", Encoding::Hex, Some(&ok.to_uppercase()), &expected),
            Ok(())
        );
        assert_eq!(
            check("sig", Encoding::Hex, None, &expected),
            Err(VerifyError::Missing { what: "sig" })
        );
        assert!(matches!(
            check("sig", Encoding::Hex, Some("zz"), &expected),
            Err(VerifyError::Malformed { .. })
        ));
        assert!(matches!(
            check("sig", Encoding::Hex, Some("0102"), &expected),
            Err(VerifyError::Malformed { .. })
        ));
        assert_eq!(
            check("sig", Encoding::Hex, Some("010204"), &expected),
            Err(VerifyError::Mismatch { what: "sig" })
        );
    }
}
