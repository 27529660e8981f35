//! An mbox file: messages separated by lines that start with `From ` (mboxo and mboxrd; a body
//! line escaped as `>From ` is given back as `From `, mboxrd's rule). An mbox has no ids, so a
//! message's id is the SHA-256 of its bytes (with `#2`, `#3` for identical copies): the same
//! message is the same id in every run, wherever it sits in the file. The file is never
//! rewritten.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::source::{Mailbox, MailboxError};

/// An mbox file, read whole when listed.
pub struct Mbox {
    path: PathBuf,
    messages: BTreeMap<String, Vec<u8>>,
}

impl Mbox {
    /// The mbox at `path` (read when listed).
    pub fn open(path: &Path) -> Result<Self, MailboxError> {
        Ok(Mbox {
            path: path.to_path_buf(),
            messages: BTreeMap::new(),
        })
    }
}

/// The messages of an mbox, in order, unescaped, without their `From ` lines.
pub(super) fn split(bytes: &[u8]) -> Vec<Vec<u8>> {
    let mut out: Vec<Vec<u8>> = Vec::new();
    let mut current: Option<Vec<u8>> = None;
    for line in bytes.split_inclusive(|&b| b == b'\n') {
        if line.starts_with(b"From ") {
            out.extend(current.take());
            current = Some(Vec::new());
            continue;
        }
        let Some(msg) = current.as_mut() else {
            continue; // text before the first separator is not a message
        };
        let quoted = line.iter().take_while(|&&b| b == b'>').count();
        if quoted > 0 && line[quoted..].starts_with(b"From ") {
            msg.extend_from_slice(&line[1..]);
        } else {
            msg.extend_from_slice(line);
        }
    }
    out.extend(current);
    for msg in &mut out {
        // The blank line a writer puts before the next separator is the format's, not the
        // message's.
        if msg.ends_with(b"\n\n") {
            msg.pop();
        } else if msg.ends_with(b"\r\n\r\n") {
            msg.truncate(msg.len() - 2);
        }
    }
    out
}

impl Mailbox for Mbox {
    fn name(&self) -> String {
        format!("mbox:{}", self.path.display())
    }

    fn list(&mut self) -> Result<Vec<String>, MailboxError> {
        let bytes = std::fs::read(&self.path).map_err(|source| MailboxError::Io {
            path: self.path.clone(),
            source,
        })?;
        self.messages.clear();
        let mut ids = Vec::new();
        for msg in split(&bytes) {
            let hash = data_encoding::HEXLOWER.encode(&Sha256::digest(&msg));
            let mut id = hash.clone();
            let mut n = 1;
            while self.messages.contains_key(&id) {
                n += 1;
                id = format!("{hash}#{n}");
            }
            ids.push(id.clone());
            self.messages.insert(id, msg);
        }
        Ok(ids)
    }

    fn fetch(&mut self, id: &str) -> Result<Vec<u8>, MailboxError> {
        self.messages
            .get(id)
            .cloned()
            .ok_or_else(|| MailboxError::Io {
                path: self.path.clone(),
                source: std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    format!("no message {id}"),
                ),
            })
    }

    fn done(&mut self, _id: &str) -> Result<(), MailboxError> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_split_on_from_lines_and_unescape() {
        let mbox = b"From a@x Mon Jan  1 00:00:00 2026\nSubject: one\n\n>From here\n>>From there\n\nFrom b@x Mon Jan  1 00:00:00 2026\nSubject: two\n\nbody\n";
        let msgs = split(mbox);
        assert_eq!(msgs.len(), 2);
        assert_eq!(msgs[0], b"Subject: one\n\nFrom here\n>From there\n");
        assert_eq!(msgs[1], b"Subject: two\n\nbody\n");
    }

    #[test]
    fn identical_copies_get_their_own_ids() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mbox");
        std::fs::write(&path, "From a\nX: 1\n\nFrom a\nX: 1\n\nFrom b\nX: 2\n").unwrap();
        let mut m = Mbox::open(&path).unwrap();
        let ids = m.list().unwrap();
        assert_eq!(ids.len(), 3);
        assert_eq!(ids[1], format!("{}#2", ids[0]));
        assert_eq!(m.fetch(&ids[2]).unwrap(), b"X: 2\n");
    }
}
