//! A Maildir: each message a file in `new/` or `cur/`. A message's id is its file name's unique
//! part, before the `:2,` flags, so a mail client moving it from `new/` to `cur/` or flagging
//! it does not make it new again. Files are read, never moved or deleted.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::source::{Mailbox, MailboxError};

/// A Maildir on disk.
pub struct Maildir {
    root: PathBuf,
    /// id → file, as the last `list` found them.
    files: BTreeMap<String, PathBuf>,
}

impl Maildir {
    /// The Maildir at `root`; it must have `new/` or `cur/`.
    pub fn open(root: &Path) -> Result<Self, MailboxError> {
        if !root.join("new").is_dir() && !root.join("cur").is_dir() {
            return Err(MailboxError::NotMaildir(root.to_path_buf()));
        }
        Ok(Maildir {
            root: root.to_path_buf(),
            files: BTreeMap::new(),
        })
    }
}

/// The unique part of a Maildir file name: before the `:2,` flags (or `!2,` on file systems
/// that refuse colons).
fn unique_part(name: &str) -> &str {
    name.split_once(":2,")
        .or_else(|| name.split_once("!2,"))
        .map_or(name, |(u, _)| u)
}

impl Mailbox for Maildir {
    fn name(&self) -> String {
        format!("maildir:{}", self.root.display())
    }

    fn list(&mut self) -> Result<Vec<String>, MailboxError> {
        self.files.clear();
        for sub in ["new", "cur"] {
            let dir = self.root.join(sub);
            let entries = match std::fs::read_dir(&dir) {
                Ok(e) => e,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(source) => return Err(MailboxError::Io { path: dir, source }),
            };
            for entry in entries {
                let entry = entry.map_err(|source| MailboxError::Io {
                    path: dir.clone(),
                    source,
                })?;
                let name = entry.file_name().to_string_lossy().into_owned();
                if name.starts_with('.') {
                    continue;
                }
                let id = unique_part(&name).to_string();
                self.files.entry(id).or_insert_with(|| entry.path());
            }
        }
        Ok(self.files.keys().cloned().collect())
    }

    fn fetch(&mut self, id: &str) -> Result<Vec<u8>, MailboxError> {
        let path = self
            .files
            .get(id)
            .cloned()
            .unwrap_or_else(|| self.root.join(id));
        std::fs::read(&path).map_err(|source| MailboxError::Io { path, source })
    }

    fn done(&mut self, _id: &str) -> Result<(), MailboxError> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_id_is_the_name_before_the_flags() {
        assert_eq!(
            unique_part("1700000000.M1P2.host:2,S"),
            "1700000000.M1P2.host"
        );
        assert_eq!(
            unique_part("1700000000.M1P2.host!2,"),
            "1700000000.M1P2.host"
        );
        assert_eq!(unique_part("1700000000.M1P2.host"), "1700000000.M1P2.host");
    }

    #[test]
    fn new_and_cur_are_listed_and_left_in_place() {
        let dir = tempfile::tempdir().unwrap();
        for sub in ["new", "cur", "tmp"] {
            std::fs::create_dir(dir.path().join(sub)).unwrap();
        }
        std::fs::write(dir.path().join("new/b.host"), "B").unwrap();
        std::fs::write(dir.path().join("cur/a.host:2,S"), "A").unwrap();
        std::fs::write(dir.path().join("tmp/c.host"), "C").unwrap();
        let mut m = Maildir::open(dir.path()).unwrap();
        assert_eq!(m.list().unwrap(), ["a.host", "b.host"]);
        assert_eq!(m.fetch("a.host").unwrap(), b"A");
        m.done("a.host").unwrap();
        assert!(dir.path().join("cur/a.host:2,S").exists());
    }
}
