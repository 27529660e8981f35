//! What stops a contacts or suppression file as a whole ([`ContactsError`]: it cannot be read,
//! decoded or split, or its header cannot work) and what only warns about one ([`FileWarning`]).
//! A problem in one row is neither: it is a `Problem` kept with the row.

use std::path::PathBuf;

/// A contacts or suppression file that cannot be used at all.
#[derive(Debug, thiserror::Error)]
pub enum ContactsError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}:{line}: {message}")]
    Encoding {
        path: PathBuf,
        line: usize,
        message: String,
    },
    #[error("{path}:{line}: {message}")]
    Header {
        path: PathBuf,
        line: usize,
        message: String,
    },
    #[error("{path}:{line}: {message}")]
    Csv {
        path: PathBuf,
        line: usize,
        message: String,
    },
}

/// A warning about a file as a whole (not a row).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FileWarning {
    pub file: PathBuf,
    pub line: Option<usize>,
    pub message: String,
}
