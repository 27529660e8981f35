//! Owner-only files and directories. Everything `outreach` writes holds patient data or a secret
//! (the ledger, outboxes, previews, reports, the token key, the lock naming its holder), so all of
//! it is created 0700 (directories) and 0600 (files), here and nowhere else.

use std::fs::{File, OpenOptions};
use std::path::Path;

/// How to open a private file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Open {
    /// A new file; fails if it exists.
    CreateNew,
    /// Create or empty it; an existing file is made private too.
    Truncate,
    /// Create or append.
    Append,
    /// Create if missing, keep the contents, read and write.
    ReadWrite,
}

/// Creates `dir` (and parents) with owner-only permissions.
pub fn create_dir(dir: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(dir)
}

/// Opens `path` as an owner-only file.
pub fn open(path: &Path, how: Open) -> std::io::Result<File> {
    let mut options = OpenOptions::new();
    match how {
        Open::CreateNew => options.write(true).create_new(true),
        Open::Truncate => options.write(true).create(true).truncate(true),
        Open::Append => options.append(true).create(true),
        Open::ReadWrite => options.read(true).write(true).create(true).truncate(false),
    };
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let file = options.open(path)?;
    #[cfg(unix)]
    if how == Open::Truncate {
        // An existing file keeps its mode on open: make sure it is private.
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    }
    Ok(file)
}

/// A contact id made safe for a file name: ASCII letters, digits, `-` and `_`, at most 40.
pub fn file_name_part(id: &str) -> String {
    id.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .take(40)
        .collect()
}
