//! Secrets: where a password or token lives, never its value. The campaign file names an
//! environment variable (`*_env`) or a file (`*_file`); a key that looks like an inline secret is
//! refused with a message that says so. The value is read only when a transport starts, and an
//! error names where it looked, never what it found.

use std::fmt;
use std::path::{Path, PathBuf};

use super::error::{ConfigError, Locator};

/// Where a secret lives. The value is read when needed and never stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretSource {
    Env(String),
    File(PathBuf),
}

/// Why a secret cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("the environment variable {name} is not set")]
    NotSet { name: String },
    #[error("the environment variable {name} is not valid UTF-8")]
    NotUnicode { name: String },
    /// The I/O error is part of the message, not a `source()`: errors are printed once, by
    /// their `Display`, and a cause chain would repeat it.
    #[error("cannot read {}: {error}", path.display())]
    Unreadable {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("{secret} is empty")]
    Empty { secret: SecretSource },
}

impl SecretSource {
    /// Reads the secret: the variable's value or the file's content, without a final line end
    /// (an environment file written on Windows leaves a `\r` in the variable). The error names
    /// where it looked, never the value.
    pub fn read(&self) -> Result<String, SecretError> {
        let value = match self {
            SecretSource::Env(name) => std::env::var(name).map_err(|e| match e {
                std::env::VarError::NotPresent => SecretError::NotSet { name: name.clone() },
                std::env::VarError::NotUnicode(_) => SecretError::NotUnicode { name: name.clone() },
            })?,
            SecretSource::File(path) => {
                std::fs::read_to_string(path).map_err(|error| SecretError::Unreadable {
                    path: path.clone(),
                    error,
                })?
            }
        };
        let value = value.trim_end_matches(['\r', '\n']).to_string();
        if value.is_empty() {
            return Err(SecretError::Empty {
                secret: self.clone(),
            });
        }
        Ok(value)
    }
}

impl fmt::Display for SecretSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SecretSource::Env(name) => write!(f, "the environment variable {name}"),
            SecretSource::File(path) => write!(f, "{}", path.display()),
        }
    }
}

/// Key names that would hold a secret inline, which the campaign file and `--set` refuse: a
/// message that says where secrets go is more use than a bare "unknown field".
const INLINE_SECRET_KEYS: &[&str] = &["password", "token", "secret", "api_secret", "auth_token"];

/// The last part of the dotted `key` when it names an inline secret (`sms.gateway.token`:
/// `token`).
pub(super) fn inline_secret(key: &str) -> Option<&str> {
    let leaf = key.rsplit('.').next().unwrap_or(key);
    INLINE_SECRET_KEYS.contains(&leaf).then_some(leaf)
}

/// The secret `{key}_env` or `{key}_file` names (at most one of them), if any.
pub(super) fn secret_source(
    env: Option<&str>,
    file: Option<&str>,
    loc: &Locator,
    key: &str,
    dir: &Path,
) -> Result<Option<SecretSource>, ConfigError> {
    match (env, file) {
        (Some(_), Some(_)) => Err(loc.invalid(
            &format!("{key}_file"),
            format!("give either {key}_env or {key}_file, not both"),
        )),
        (Some(e), None) => {
            if e.trim().is_empty() {
                return Err(loc.invalid(&format!("{key}_env"), "must name an environment variable"));
            }
            Ok(Some(SecretSource::Env(e.trim().to_string())))
        }
        (None, Some(f)) => Ok(Some(SecretSource::File(loc.resolve(
            &format!("{key}_file"),
            f,
            dir,
        )))),
        (None, None) => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_errors_name_where_they_looked() {
        let unset = SecretSource::Env("OUTREACH_CONFIG_TEST_NEVER_SET".into());
        assert_eq!(
            unset.read().unwrap_err().to_string(),
            "the environment variable OUTREACH_CONFIG_TEST_NEVER_SET is not set"
        );
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret");
        assert_eq!(
            SecretSource::File(path.clone())
                .read()
                .unwrap_err()
                .to_string(),
            format!(
                "cannot read {}: No such file or directory (os error 2)",
                path.display()
            )
        );
        std::fs::write(&path, "\r\n").unwrap();
        assert_eq!(
            SecretSource::File(path.clone())
                .read()
                .unwrap_err()
                .to_string(),
            format!("{} is empty", path.display())
        );
        std::fs::write(&path, "hunter2\r\n").unwrap();
        assert_eq!(SecretSource::File(path).read().unwrap(), "hunter2");
    }

    #[test]
    fn inline_secrets_are_recognised_by_their_last_part() {
        assert_eq!(inline_secret("sms.gateway.token"), Some("token"));
        assert_eq!(inline_secret("password"), Some("password"));
        assert_eq!(inline_secret("sms.gateway.token_env"), None);
    }
}
