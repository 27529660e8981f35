//! What can be wrong with a campaign file, and where: [`ConfigError`] names the file and line of
//! the key at fault (or the `--set` argument that gave it), and the [`Locator`] that the checks
//! hold knows, for every dotted key, where it was written.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};

use crate::paths::fold_parents;

/// Where a configuration value came from, for error messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// A line of the campaign file.
    File { path: PathBuf, line: usize },
    /// A `--set KEY=VALUE` argument.
    Override(String),
    /// The key is absent; the file as a whole is at fault.
    Missing { path: PathBuf },
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::File { path, line } => write!(f, "{}:{line}", path.display()),
            Origin::Override(arg) => write!(f, "--set {arg}"),
            Origin::Missing { path } => write!(f, "{}", path.display()),
        }
    }
}

/// Everything that can be wrong with a campaign file or its overrides.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read campaign file {path}: {source}{}", read_fix(.source))]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}:{line}:{column}: {message}")]
    Parse {
        path: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },
    #[error("{origin}: `{key}`: {message}")]
    Invalid {
        origin: Origin,
        key: String,
        message: String,
    },
    #[error("--set {arg}: {message}")]
    Override { arg: String, message: String },
    /// A state directory's `store.toml` (where its PostgreSQL store is) that cannot be used.
    #[error("{path}: {message}")]
    Pointer { path: PathBuf, message: String },
}

/// Where each dotted key was written, so semantic errors can name a line.
pub(super) struct Locator {
    path: PathBuf,
    lines: HashMap<String, usize>,
    /// Key → the `--set` argument that gave it.
    overrides: HashMap<String, String>,
}

impl Locator {
    /// `lines`: the line of every dotted key written in the file at `path`.
    pub(super) fn new(path: &Path, lines: HashMap<String, usize>) -> Self {
        Locator {
            path: path.to_path_buf(),
            lines,
            overrides: HashMap::new(),
        }
    }

    /// Records that `arg` (`KEY=VALUE`) gave `key`.
    pub(super) fn record_override(&mut self, key: String, arg: &str) {
        self.overrides.insert(key, arg.to_string());
    }

    /// The `--set` argument that gave `key`, a table holding it or a key inside it.
    pub(super) fn override_around(&self, key: &str) -> Option<&str> {
        self.overrides
            .iter()
            .find(|(k, _)| key.starts_with(k.as_str()) || k.starts_with(key))
            .map(|(_, arg)| arg.as_str())
    }

    /// Where `key` was given: its line in the file, the `--set` that gave it, or the file.
    pub(super) fn origin(&self, key: &str) -> Origin {
        if let Some(arg) = self.overrides.get(key) {
            return Origin::Override(arg.clone());
        }
        // A key inside an array or a table: fall back to the closest written ancestor.
        let mut k = key;
        loop {
            if let Some(line) = self.lines.get(k) {
                return Origin::File {
                    path: self.path.clone(),
                    line: *line,
                };
            }
            match k.rfind('.') {
                Some(i) => k = &k[..i],
                None => {
                    return Origin::Missing {
                        path: self.path.clone(),
                    };
                }
            }
        }
    }

    /// The error for `key`: `message` says what is wrong with its value.
    pub(super) fn invalid(&self, key: &str, message: impl fmt::Display) -> ConfigError {
        ConfigError::Invalid {
            origin: self.origin(key),
            key: key.to_string(),
            message: message.to_string(),
        }
    }

    /// `checked`, its error charged to `key`.
    pub(super) fn at<T, E: fmt::Display>(
        &self,
        key: &str,
        checked: Result<T, E>,
    ) -> Result<T, ConfigError> {
        checked.map_err(|e| self.invalid(key, e))
    }

    /// The value of a key that must be given.
    pub(super) fn required<T>(&self, value: Option<T>, key: &str) -> Result<T, ConfigError> {
        value.ok_or_else(|| self.invalid(key, "required key is missing"))
    }

    /// The trimmed text of a key that must be given and not blank.
    pub(super) fn non_empty(
        &self,
        value: Option<String>,
        key: &str,
    ) -> Result<String, ConfigError> {
        let v = self.required(value, key)?;
        if v.trim().is_empty() {
            return Err(self.invalid(key, "must not be empty"));
        }
        Ok(v.trim().to_string())
    }

    /// Paths given with `--set` are relative to the current directory; in the file, to the file.
    pub(super) fn resolve(&self, key: &str, value: &str, file_dir: &Path) -> PathBuf {
        let p = Path::new(value);
        if p.is_absolute() {
            return p.to_path_buf();
        }
        let overridden = self.overrides.contains_key(key)
            || self
                .overrides
                .keys()
                .any(|k| key.starts_with(&format!("{k}.")) || key.starts_with(&format!("{k}[")));
        let joined = if overridden {
            std::env::current_dir()
                .map(|d| d.join(p))
                .unwrap_or_else(|_| p.to_path_buf())
        } else {
            file_dir.join(p)
        };
        fold_parents(&joined)
    }
}

/// What to do about a campaign file that cannot be read: the first error a newcomer meets.
fn read_fix(source: &std::io::Error) -> &'static str {
    match source.kind() {
        std::io::ErrorKind::NotFound => {
            "; give the path of a campaign TOML file (`outreach new NAME` makes one: \
             NAME/campaign.toml)"
        }
        std::io::ErrorKind::PermissionDenied => {
            "; run as a user who may read it (the packages' units run as the user outreach)"
        }
        _ => "",
    }
}
