//! DKIM signing (RFC 6376, relaxed/relaxed; RFC 8463 for Ed25519) of a message exactly as it goes
//! on the wire.
//!
//! lettre 0.11's own signer hashes a multipart message's `Content-Type` header as part of the
//! body and lists it in `h=` without hashing it, so its signatures of our multipart/alternative
//! messages never verify. Signing the formatted bytes here avoids that and makes the signature
//! deterministic: `t=` is the message's `Date`, and both RSA PKCS#1 v1.5 and Ed25519 signatures
//! depend only on key and data, so the file transport writes the bytes SMTP carries.

use rsa::pkcs1::DecodeRsaPrivateKey;
use rsa::pkcs8::DecodePrivateKey;
use sha2::{Digest, Sha256};

/// A DKIM key file that holds no usable key.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("not a usable RSA key: {0}")]
    Rsa(rsa::pkcs1::Error),
    #[error("a PKCS#8 key, but neither a usable RSA nor Ed25519 key")]
    Pkcs8,
    #[error(
        "an unsupported PEM block: use an RSA (PKCS#1 or PKCS#8) or Ed25519 (PKCS#8) private key"
    )]
    Pem,
    #[error("neither PEM nor the base64 of an Ed25519 seed: {0}")]
    Seed(data_encoding::DecodeError),
    #[error("an Ed25519 seed is 32 bytes, this one is {0} bytes")]
    SeedLength(usize),
}

/// A signing key.
pub enum Key {
    Rsa(Box<rsa::RsaPrivateKey>),
    Ed25519(Box<ed25519_dalek::SigningKey>),
}

impl Key {
    /// Reads a key: an RSA key as PKCS#1 (`openssl genrsa -traditional`) or PKCS#8 PEM, an
    /// Ed25519 key as PKCS#8 PEM (`openssl genpkey -algorithm ed25519`) or the base64 of its
    /// 32-byte seed. `algorithm` ("rsa", "ed25519") settles what a PEM file may hold.
    pub fn parse(text: &str, algorithm: Option<&str>) -> Result<Key, KeyError> {
        let text = text.trim();
        if text.starts_with("-----BEGIN RSA PRIVATE KEY") {
            return rsa::RsaPrivateKey::from_pkcs1_pem(text)
                .map(|k| Key::Rsa(Box::new(k)))
                .map_err(KeyError::Rsa);
        }
        if text.starts_with("-----BEGIN PRIVATE KEY") {
            if algorithm != Some("ed25519")
                && let Ok(k) = rsa::RsaPrivateKey::from_pkcs8_pem(text)
            {
                return Ok(Key::Rsa(Box::new(k)));
            }
            if algorithm != Some("rsa")
                && let Ok(k) = ed25519_dalek::SigningKey::from_pkcs8_pem(text)
            {
                return Ok(Key::Ed25519(Box::new(k)));
            }
            return Err(KeyError::Pkcs8);
        }
        if text.starts_with("-----BEGIN") {
            return Err(KeyError::Pem);
        }
        let seed = data_encoding::BASE64
            .decode(text.as_bytes())
            .map_err(KeyError::Seed)?;
        let seed: [u8; 32] = seed
            .try_into()
            .map_err(|v: Vec<u8>| KeyError::SeedLength(v.len()))?;
        Ok(Key::Ed25519(Box::new(
            ed25519_dalek::SigningKey::from_bytes(&seed),
        )))
    }

    /// "rsa" or "ed25519".
    pub fn algorithm(&self) -> &'static str {
        match self {
            Key::Rsa(_) => "rsa",
            Key::Ed25519(_) => "ed25519",
        }
    }

    fn sign(&self, digest: &[u8]) -> Vec<u8> {
        match self {
            Key::Rsa(k) => k
                .sign(rsa::Pkcs1v15Sign::new::<Sha256>(), digest)
                .expect("an RSA key of at least 1024 bits signs a SHA-256 digest"),
            Key::Ed25519(k) => {
                use ed25519_dalek::Signer;
                k.sign(digest).to_bytes().to_vec()
            }
        }
    }
}

/// Signs `message` (headers, empty line, body; CRLF line ends) and returns it with a
/// `DKIM-Signature` header first. `headers` are the names to cover, each over-signed: `h=`
/// names it once more than the message has it (RFC 6376 5.4.2, 8.15), and the extra, absent
/// instance is signed as empty, so that a copy added on the way (a second `Subject` above ours,
/// which many mail readers show, or a `Reply-To` where we had none) breaks the signature.
pub fn sign(
    message: &[u8],
    key: &Key,
    domain: &str,
    selector: &str,
    headers: &[&str],
    timestamp: i64,
) -> Vec<u8> {
    let split = message
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map_or(message.len(), |i| i + 2);
    let (head, body) = message.split_at(split);
    let body = body.strip_prefix(b"\r\n").unwrap_or(body);
    let fields = header_fields(head);

    let bh = data_encoding::BASE64.encode(&Sha256::digest(relaxed_body(body)));
    let mut signed = Vec::new();
    let mut hashed = Vec::new();
    for name in headers {
        // The last occurrence is signed first (RFC 6376 5.4.2); ours have one of each at most.
        if let Some((_, field)) = fields
            .iter()
            .rev()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
        {
            signed.push(name.to_ascii_lowercase());
            hashed.extend_from_slice(relaxed_header(field).as_bytes());
            hashed.extend_from_slice(b"\r\n");
        }
        // The instance the message does not have: nothing hashed.
        signed.push(name.to_ascii_lowercase());
    }
    let tags = [
        "v=1".to_string(),
        format!("a={}-sha256", key.algorithm()),
        "c=relaxed/relaxed".to_string(),
        format!("d={domain}"),
        format!("s={selector}"),
        format!("t={timestamp}"),
        format!("h={}", signed.join(":")),
        format!("bh={bh}"),
    ];
    let unsigned = format!("DKIM-Signature: {}; b=", tags.join("; "));
    hashed.extend_from_slice(relaxed_header(&unsigned).as_bytes());
    let signature = data_encoding::BASE64.encode(&key.sign(&Sha256::digest(&hashed)));

    // Folded at tag boundaries and every 72 characters of the signature: the relaxed form of
    // the result is what was hashed, with the b= value added.
    let mut header = format!("DKIM-Signature: {};\r\n b=", tags.join(";\r\n "));
    for (i, chunk) in signature.as_bytes().chunks(72).enumerate() {
        if i > 0 {
            header.push_str("\r\n ");
        }
        header.push_str(std::str::from_utf8(chunk).expect("base64 is ASCII"));
    }
    header.push_str("\r\n");
    let mut out = Vec::with_capacity(header.len() + message.len());
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(message);
    out
}

/// The header fields of a header block: (name, whole field without its final CRLF).
fn header_fields(head: &[u8]) -> Vec<(String, String)> {
    let text = String::from_utf8_lossy(head);
    let mut fields: Vec<(String, String)> = Vec::new();
    for line in text.split("\r\n").filter(|l| !l.is_empty()) {
        if line.starts_with([' ', '\t']) {
            if let Some((_, field)) = fields.last_mut() {
                field.push_str("\r\n");
                field.push_str(line);
            }
        } else {
            let name = line.split(':').next().unwrap_or("").trim().to_string();
            fields.push((name, line.to_string()));
        }
    }
    fields
}

/// RFC 6376 3.4.2: lowercase name, unfolded, runs of white space as one space, none at the end
/// of the value nor around the colon. No CRLF at the end.
fn relaxed_header(field: &str) -> String {
    let (name, value) = field.split_once(':').unwrap_or((field, ""));
    let unfolded = value.replace("\r\n", "");
    let mut out = name.trim_end().to_ascii_lowercase();
    out.push(':');
    let mut space = false;
    for c in unfolded.trim_matches([' ', '\t']).chars() {
        if c == ' ' || c == '\t' {
            space = true;
        } else {
            if space {
                out.push(' ');
                space = false;
            }
            out.push(c);
        }
    }
    out
}

/// RFC 6376 3.4.4: white space runs as one space, none at line ends, no empty lines at the end.
fn relaxed_body(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len());
    for line in body.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let mut space = false;
        for &b in line {
            if b == b' ' || b == b'\t' {
                space = true;
            } else {
                if space {
                    out.push(b' ');
                    space = false;
                }
                out.push(b);
            }
        }
        out.extend_from_slice(b"\r\n");
    }
    while out.ends_with(b"\r\n\r\n") {
        out.truncate(out.len() - 2);
    }
    if out == b"\r\n" {
        out.clear();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relaxed_canonicalisation_follows_the_rfc_examples() {
        // RFC 6376 3.4.5.
        assert_eq!(relaxed_header("A: X"), "a:X");
        assert_eq!(relaxed_header("B : Y\t\r\n\tZ  "), "b:Y Z");
        assert_eq!(relaxed_body(b" C \r\nD \t E\r\n\r\n\r\n"), b" C\r\nD E\r\n");
        assert_eq!(relaxed_body(b""), b"");
        assert_eq!(relaxed_body(b"\r\n\r\n"), b"");
    }

    #[test]
    fn signatures_are_deterministic_and_over_sign_every_header() {
        let key = Key::parse(&data_encoding::BASE64.encode(&[7u8; 32]), None).unwrap();
        let msg = b"From: a@example.com\r\nSubject: Hi\r\n\r\nBody\r\n";
        let a = sign(msg, &key, "example.com", "s", &["From", "To", "Subject"], 1);
        let b = sign(msg, &key, "example.com", "s", &["From", "To", "Subject"], 1);
        assert_eq!(a, b);
        let text = String::from_utf8(a).unwrap();
        assert!(text.starts_with("DKIM-Signature: v=1;\r\n a=ed25519-sha256;"));
        // Present: listed twice (the second, absent instance signed empty); absent: once.
        assert!(text.contains("h=from:from:to:subject:subject;"), "{text}");
        assert!(text.ends_with("From: a@example.com\r\nSubject: Hi\r\n\r\nBody\r\n"));
    }
}
