//! Unsubscribe tokens: opaque per recipient, so the clinic's unsubscribe page holds no patient
//! data. A token is an HMAC of the campaign and address under a key kept in `state_dir`
//! (created 0600 on first use); `outreach unsubscribe` maps tokens back by recomputing them.

use std::io::Write;
use std::path::{Path, PathBuf};

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::model::Channel;

/// The file, inside `state_dir`, that holds the token key.
pub const KEY_FILE: &str = "unsubscribe.key";

/// The secret behind every token of one state directory, kept as HMAC-SHA256 already keyed with
/// it: each token or digest starts from a copy instead of hashing the key again (two of the five
/// SHA-256 blocks of a short one).
#[derive(Clone)]
pub struct TokenKey(Hmac<Sha256>);

impl std::fmt::Debug for TokenKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenKey(…)")
    }
}

impl TokenKey {
    /// Reads the key from `state_dir`, creating it (and the directory) on first use.
    pub fn load_or_create(state_dir: &Path) -> std::io::Result<Self> {
        let path: PathBuf = state_dir.join(KEY_FILE);
        let named =
            |e: std::io::Error| std::io::Error::new(e.kind(), format!("{}: {e}", path.display()));
        match std::fs::read(&path) {
            Ok(bytes) => {
                let key: [u8; 32] = bytes.as_slice().try_into().map_err(|_| {
                    named(std::io::Error::new(
                        std::io::ErrorKind::InvalidData,
                        format!(
                            "{} bytes, not a 32-byte key (an earlier version could leave it short \
                             when killed while creating it, before any message used it): delete \
                             it and run again",
                            bytes.len()
                        ),
                    ))
                })?;
                return Ok(TokenKey::fixed(key));
            }
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(named(e)),
            Err(_) => {}
        }
        crate::private::create_dir(state_dir)?;
        let mut key = [0u8; 32];
        getrandom::fill(&mut key).map_err(|e| std::io::Error::other(e.to_string()))?;
        // Written whole and synced under a name of its own, then linked into place: a process
        // killed at any instant leaves the key whole or absent, never short.
        let tmp = state_dir.join(format!(".{KEY_FILE}.{}.tmp", std::process::id()));
        let mut f = crate::private::open(&tmp, crate::private::Open::Truncate)?;
        f.write_all(&key)?;
        f.sync_all()?;
        drop(f);
        let linked = std::fs::hard_link(&tmp, &path);
        let _ = std::fs::remove_file(&tmp);
        match linked {
            Ok(()) => {
                std::fs::File::open(state_dir)?.sync_all()?;
                Ok(TokenKey::fixed(key))
            }
            // Another process created it first: use theirs.
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                Self::load_or_create(state_dir)
            }
            Err(e) => Err(named(e)),
        }
    }

    /// The key of these bytes: the state directory's, or a fixed one for tests and for
    /// `--test-to`, whose links must not unsubscribe anyone.
    pub fn fixed(bytes: [u8; 32]) -> Self {
        TokenKey(Hmac::<Sha256>::new_from_slice(&bytes).expect("any key length works"))
    }

    /// A keyed digest of `parts` for `purpose` (approvals hash contact rows with it, so the
    /// ledger holds no patient data and its hashes cannot be matched against a list of known
    /// addresses without the key). 128 bits, hex.
    pub fn digest(&self, purpose: &str, parts: &[&str]) -> String {
        let mut mac = self.0.clone();
        mac.update(purpose.as_bytes());
        for p in parts {
            mac.update(b"\x1f");
            mac.update(p.as_bytes());
        }
        data_encoding::HEXLOWER.encode(&mac.finalize().into_bytes()[..16])
    }

    /// The token of `address` (normalised) on `channel` in campaign `campaign_id`.
    pub fn token(&self, campaign_id: &str, channel: Channel, address: &str) -> String {
        let mut mac = self.0.clone();
        mac.update(campaign_id.as_bytes());
        mac.update(b"\0");
        mac.update(channel.as_str().as_bytes());
        mac.update(b"\0");
        mac.update(address.as_bytes());
        let digest = mac.finalize().into_bytes();
        // 128 bits, URL-safe, no padding: short enough for a link, far too long to guess.
        data_encoding::BASE32_NOPAD
            .encode(&digest[..16])
            .to_ascii_lowercase()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_stable_and_distinct() {
        let k = TokenKey::fixed([7; 32]);
        let a = k.token("c1", Channel::Email, "ann@example.com");
        assert_eq!(a, k.token("c1", Channel::Email, "ann@example.com"));
        assert_ne!(a, k.token("c2", Channel::Email, "ann@example.com"));
        assert_ne!(a, k.token("c1", Channel::Email, "bo@example.com"));
        assert_ne!(
            a,
            TokenKey::fixed([8; 32]).token("c1", Channel::Email, "ann@example.com")
        );
        assert_eq!(a.len(), 26);
        assert!(a.chars().all(|c| c.is_ascii_alphanumeric()));
    }

    #[test]
    fn key_file_is_private_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state");
        let k1 = TokenKey::load_or_create(&state).unwrap();
        let k2 = TokenKey::load_or_create(&state).unwrap();
        assert_eq!(
            k1.token("c", Channel::Sms, "+1"),
            k2.token("c", Channel::Sms, "+1")
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(state.join(KEY_FILE))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
            let dmode = std::fs::metadata(&state).unwrap().permissions().mode();
            assert_eq!(dmode & 0o777, 0o700);
        }
    }
}
