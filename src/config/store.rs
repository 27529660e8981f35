//! Where a state directory's store is: SQLite in the directory (the default), or a PostgreSQL
//! database named by `sending.state_url`, its password where `state_password_env` or
//! `state_password_file` says. The URL is written as libpq users write it
//! (`postgres://ROLE@HOST:PORT/DB?sslmode=verify-full`), checked here once: a password inside
//! it is refused (the campaign file is no place for a secret), and so are `sslmode=prefer` and
//! `allow`, which fall back to clear text without a word. Without `sslmode`, a server off this
//! host is reached with `verify-full` (its certificate checked against the system's roots or
//! `sslrootcert`, and its name), one on loopback or a Unix socket in clear (`disable`).
//!
//! A state directory whose store is in PostgreSQL says so in `STATE_DIR/store.toml` (the URL
//! and where the password lives, never the password), written when a campaign first opens it,
//! so that the commands given a state directory rather than a campaign (`suppressions`,
//! `inbox`, `bounces`, `report --all`) find it.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::error::{ConfigError, Locator};
use super::secrets::{SecretSource, secret_source};

/// How the connection to PostgreSQL is protected, as libpq's `sslmode` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslMode {
    /// Clear text.
    Disable,
    /// TLS, the server's certificate not checked (libpq's `require` without a root file).
    Require,
    /// TLS, the certificate's chain checked, not its name.
    VerifyCa,
    /// TLS, the certificate's chain and the server's name checked.
    VerifyFull,
}

impl SslMode {
    pub fn as_str(self) -> &'static str {
        match self {
            SslMode::Disable => "disable",
            SslMode::Require => "require",
            SslMode::VerifyCa => "verify-ca",
            SslMode::VerifyFull => "verify-full",
        }
    }
}

/// The connection timeout when the URL gives none.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// A PostgreSQL store, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateUrl {
    /// A host name or address, or (starting with `/`) the directory of the server's socket.
    pub host: String,
    pub port: u16,
    pub user: String,
    pub dbname: String,
    pub sslmode: SslMode,
    /// `sslrootcert`: the PEM file of the roots to trust instead of the system's.
    pub root_cert: Option<PathBuf>,
    pub connect_timeout: Duration,
    pub application_name: String,
    /// Where the password lives (none: the server trusts the role, or a client certificate).
    pub password: Option<SecretSource>,
    /// The URL as written, for `store.toml`.
    written: String,
}

/// The query parameters a URL may carry.
const PARAMETERS: [&str; 7] = [
    "sslmode",
    "sslrootcert",
    "connect_timeout",
    "application_name",
    "host",
    "port",
    "dbname",
];

impl StateUrl {
    /// Reads `url` (the value of `key`), with the password's place; relative paths are the
    /// campaign file's directory's. The error never repeats a password the URL held.
    pub fn parse(
        url: &str,
        password: Option<SecretSource>,
        dir: &Path,
    ) -> Result<StateUrl, String> {
        let parseable = parseable(url)?;
        let parsed = url::Url::parse(&parseable)
            .map_err(|e| format!("not a URL ({e}): write postgres://ROLE@HOST:PORT/DATABASE"))?;
        if !matches!(parsed.scheme(), "postgres" | "postgresql") {
            return Err(format!(
                "{}:// is not a PostgreSQL URL: write postgres://ROLE@HOST/DATABASE (a SQLite \
                 ledger needs no URL: leave state_url out)",
                parsed.scheme()
            ));
        }
        if parsed.password().is_some() {
            return Err("holds a password: keep it out of the campaign file, in \
                 sending.state_password_env or sending.state_password_file"
                .into());
        }
        let decode = |s: &str| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8()
                .map(|s| s.into_owned())
                .map_err(|_| "is not valid UTF-8 once decoded".to_string())
        };
        let mut host = parsed.host_str().map(str::to_string).unwrap_or_default();
        let mut port = parsed.port();
        let mut user = decode(parsed.username())?;
        let mut dbname = decode(parsed.path().trim_start_matches('/'))?;
        let mut sslmode = None;
        let mut root_cert = None;
        let mut connect_timeout = DEFAULT_CONNECT_TIMEOUT;
        let mut application_name = "outreach".to_string();
        for (k, v) in parsed.query_pairs() {
            match k.as_ref() {
                "sslmode" => {
                    sslmode = Some(match v.as_ref() {
                        "disable" => SslMode::Disable,
                        "require" => SslMode::Require,
                        "verify-ca" => SslMode::VerifyCa,
                        "verify-full" => SslMode::VerifyFull,
                        "prefer" | "allow" => {
                            return Err(format!(
                                "sslmode={v} falls back to clear text without a word: write \
                                 sslmode=verify-full (or require), or sslmode=disable on a \
                                 network you trust"
                            ));
                        }
                        other => {
                            return Err(format!(
                                "sslmode={other}: use disable, require, verify-ca or verify-full"
                            ));
                        }
                    })
                }
                "sslrootcert" => root_cert = Some(dir.join(v.as_ref())),
                "connect_timeout" => {
                    let secs: u64 = v.parse().ok().filter(|s| *s > 0).ok_or_else(|| {
                        format!("connect_timeout={v}: give a whole number of seconds")
                    })?;
                    connect_timeout = Duration::from_secs(secs);
                }
                "application_name" => application_name = v.into_owned(),
                "host" => host = v.into_owned(),
                "port" => {
                    port = Some(
                        v.parse()
                            .map_err(|_| format!("port={v}: not a port number"))?,
                    )
                }
                "dbname" => dbname = v.into_owned(),
                "user" => user = v.into_owned(),
                "password" => {
                    return Err("holds a password: keep it out of the campaign file, in \
                         sending.state_password_env or sending.state_password_file"
                        .into());
                }
                other => {
                    return Err(format!(
                        "unknown parameter {other:?}: outreach reads {}",
                        PARAMETERS.join(", ")
                    ));
                }
            }
        }
        if host.is_empty() {
            return Err("names no host: write postgres://ROLE@HOST/DATABASE".into());
        }
        if user.is_empty() {
            return Err("names no role: write postgres://ROLE@HOST/DATABASE".into());
        }
        if dbname.is_empty() {
            dbname = user.clone();
        }
        let host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        let local = host.starts_with('/')
            || host == "localhost"
            || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback());
        let sslmode = sslmode.unwrap_or(if local {
            SslMode::Disable
        } else {
            SslMode::VerifyFull
        });
        Ok(StateUrl {
            host,
            port: port.unwrap_or(5432),
            user,
            dbname,
            sslmode,
            root_cert,
            connect_timeout,
            application_name,
            password,
            written: url.to_string(),
        })
    }

    /// The store as people read it in messages: a URL with the role, host, port, database and
    /// `sslmode` (never a password).
    pub fn display(&self) -> String {
        let escape = |part: &str| percent_encoding::utf8_percent_encode(part, URL_PART).to_string();
        let mode = self.sslmode.as_str();
        let (user, db) = (escape(&self.user), escape(&self.dbname));
        if self.host.starts_with('/') {
            let (host, port) = (escape(&self.host), self.port);
            return format!("postgres://{user}@/{db}?host={host}&port={port}&sslmode={mode}");
        }
        let host = match self.host.contains(':') {
            true => format!("[{}]", self.host),
            false => escape(&self.host),
        };
        format!("postgres://{user}@{host}:{}/{db}?sslmode={mode}", self.port)
    }
}

/// What a part of a shown URL escapes: what would end it or be misread.
const URL_PART: &percent_encoding::AsciiSet = &percent_encoding::CONTROLS
    .add(b' ')
    .add(b'%')
    .add(b'@')
    .add(b':')
    .add(b'/')
    .add(b'?')
    .add(b'&')
    .add(b'=')
    .add(b'#')
    .add(b'[')
    .add(b']');

/// `url` as the URL parser can read it, or why it must not be read at all.
fn parseable(url: &str) -> Result<std::borrow::Cow<'_, str>, String> {
    // As libpq reads it, the user part ends at the first '@' before any '/'. Any later '@'
    // is refused: a password holding a '/', '?' or '@' would put it there, and the URL
    // would otherwise be read as another host, port and database, and shown in messages.
    if let Some(rest) = url.split_once("://").map(|(_, rest)| rest) {
        let user_part_end = rest
            .find(['@', '/'])
            .filter(|&i| rest.as_bytes()[i] == b'@');
        let after = user_part_end.map_or(rest, |i| &rest[i + 1..]);
        if after.contains('@') {
            return Err(
                "has an '@' after its role: write a literal '@' as %40 (a password \
                 belongs in sending.state_password_env or sending.state_password_file)"
                    .into(),
            );
        }
    }
    // libpq's way to name a Unix socket: no host in the URL, its directory in `?host=`.
    // The URL parser wants a host after a role: one stands in until `host=` replaces it.
    let socket_form = url.contains("@/") && url.contains("host=/");
    Ok(match socket_form {
        true => std::borrow::Cow::Owned(url.replacen("@/", "@socket/", 1)),
        false => std::borrow::Cow::Borrowed(url),
    })
}

/// Where a state directory's store is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Store {
    /// The state directory (the lock files, reports and the token key live there whatever the
    /// store).
    pub dir: PathBuf,
    /// The PostgreSQL store, if the ledger is not SQLite's file in `dir`.
    pub url: Option<StateUrl>,
}

/// `STATE_DIR/store.toml`: where a state directory's store is, when not in the directory.
pub const POINTER_FILE: &str = "store.toml";

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Pointer {
    state_url: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    state_password_env: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    state_password_file: Option<PathBuf>,
}

impl Store {
    /// The store of the state directory `dir` given alone: the PostgreSQL database its
    /// `store.toml` names, else its SQLite file.
    pub fn of_dir(dir: &Path) -> Result<Store, ConfigError> {
        let path = dir.join(POINTER_FILE);
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(Store {
                    dir: dir.to_path_buf(),
                    url: None,
                });
            }
            Err(e) => {
                return Err(ConfigError::Pointer {
                    path,
                    message: e.to_string(),
                });
            }
        };
        let invalid = |message: String| ConfigError::Pointer {
            path: path.clone(),
            message,
        };
        let p: Pointer = toml::from_str(&text).map_err(|e| {
            // Where in the file: TOML's message alone names no line.
            let at = e.span().map(|s| super::parse::line_of(&text, s.start));
            invalid(match at {
                Some((line, column)) => format!("line {line}, column {column}: {}", e.message()),
                None => e.message().to_string(),
            })
        })?;
        let password = match (p.state_password_env, p.state_password_file) {
            (Some(e), _) => Some(SecretSource::Env(e)),
            (None, Some(f)) => Some(SecretSource::File(f)),
            (None, None) => None,
        };
        let url = StateUrl::parse(&p.state_url, password, dir)
            .map_err(|e| invalid(format!("state_url: {e}")))?;
        Ok(Store {
            dir: dir.to_path_buf(),
            url: Some(url),
        })
    }

    /// Whether `self` and `other` are one ledger: the same state directory's file, or the same
    /// database (whatever the state directories).
    pub fn same_ledger(&self, other: &Store) -> bool {
        match (&self.url, &other.url) {
            (None, None) => {
                let canonical = |p: &Path| std::fs::canonicalize(p).unwrap_or(p.to_path_buf());
                canonical(&self.dir) == canonical(&other.dir)
            }
            (Some(a), Some(b)) => (&a.host, a.port, &a.dbname) == (&b.host, b.port, &b.dbname),
            _ => false,
        }
    }

    /// What `store.toml` says of this store (none for SQLite's file).
    pub fn pointer(&self) -> Option<String> {
        let url = self.url.as_ref()?;
        let (env, file) = match &url.password {
            Some(SecretSource::Env(e)) => (Some(e.clone()), None),
            Some(SecretSource::File(f)) => (None, Some(f.clone())),
            None => (None, None),
        };
        let p = Pointer {
            state_url: url.written.clone(),
            state_password_env: env,
            state_password_file: file,
        };
        Some(format!(
            "# Written by outreach: this state directory's ledger is in PostgreSQL.\n{}",
            toml::to_string(&p).expect("a pointer serialises")
        ))
    }
}

/// `sending.state_url` and its password's place, checked.
pub(super) fn state_url(
    url: Option<&str>,
    password_env: Option<&str>,
    password_file: Option<&str>,
    loc: &Locator,
    dir: &Path,
) -> Result<Option<StateUrl>, ConfigError> {
    let password = secret_source(
        password_env,
        password_file,
        loc,
        "sending.state_password",
        dir,
    )?;
    let Some(url) = url else {
        if password.is_some() {
            return Err(loc.invalid(
                "sending.state_password_env",
                "a password is set but no sending.state_url",
            ));
        }
        return Ok(None);
    };
    StateUrl::parse(url, password, dir)
        .map(Some)
        .map_err(|e| loc.invalid("sending.state_url", e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(url: &str) -> Result<StateUrl, String> {
        StateUrl::parse(url, None, Path::new("/etc/outreach"))
    }

    #[test]
    fn sslmode_defaults_to_verify_full_off_this_host_and_to_disable_on_it() {
        for (url, mode) in [
            ("postgres://o@db.example.org/outreach", SslMode::VerifyFull),
            ("postgres://o@10.0.0.5/outreach", SslMode::VerifyFull),
            ("postgres://o@127.0.0.1:5433/outreach", SslMode::Disable),
            ("postgres://o@localhost/outreach", SslMode::Disable),
            ("postgres://o@[::1]/outreach", SslMode::Disable),
            (
                "postgres://o@x/outreach?host=/run/postgresql",
                SslMode::Disable,
            ),
            (
                "postgres://o@/outreach?host=/run/postgresql",
                SslMode::Disable,
            ),
            (
                "postgres://o@127.0.0.1/x?sslmode=verify-ca",
                SslMode::VerifyCa,
            ),
            (
                "postgresql://o@db.example.org/x?sslmode=require",
                SslMode::Require,
            ),
        ] {
            assert_eq!(parse(url).unwrap().sslmode, mode, "{url}");
        }
        let u =
            parse("postgres://outreach%40clinic@db.example.org:6432/?sslrootcert=ca.pem").unwrap();
        assert_eq!(
            (u.user.as_str(), u.port, u.dbname.as_str()),
            ("outreach@clinic", 6432, "outreach@clinic")
        );
        assert_eq!(u.root_cert, Some(PathBuf::from("/etc/outreach/ca.pem")));
        assert_eq!(
            u.display(),
            "postgres://outreach%40clinic@db.example.org:6432/outreach%40clinic?sslmode=verify-full"
        );
    }

    #[test]
    fn passwords_clear_text_fallbacks_and_unknown_parameters_are_refused() {
        let e = parse("postgres://o:hunter2@db.example.org/x").unwrap_err();
        assert!(
            e.contains("state_password_env") && !e.contains("hunter2"),
            "{e}"
        );
        let e = parse("postgres://o@db.example.org/x?password=hunter2").unwrap_err();
        assert!(!e.contains("hunter2"), "{e}");
        for mode in ["prefer", "allow"] {
            let e = parse(&format!("postgres://o@db.example.org/x?sslmode={mode}")).unwrap_err();
            assert!(e.contains("clear text"), "{e}");
        }
        let e = parse("postgres://o@db.example.org/x?sslcompression=1").unwrap_err();
        assert!(e.contains("\"sslcompression\""), "{e}");
        assert!(
            parse("mysql://o@h/x")
                .unwrap_err()
                .contains("not a PostgreSQL URL")
        );
        assert!(
            parse("postgres://db.example.org/x")
                .unwrap_err()
                .contains("no role")
        );
        // A password holding a '/': no host, port or database made of its pieces.
        let e = parse("postgres://u:1234/x@h/db").unwrap_err();
        assert!(
            e.contains("'@' after its role") && !e.contains("1234"),
            "{e}"
        );
    }

    #[test]
    fn a_pointer_file_names_the_store_and_where_its_password_is_never_the_password() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(Store::of_dir(dir.path()).unwrap().url, None);
        let url = StateUrl::parse(
            "postgres://o@db.example.org/x?sslmode=verify-full",
            Some(SecretSource::Env("OUTREACH_DB_PASSWORD".into())),
            dir.path(),
        )
        .unwrap();
        let store = Store {
            dir: dir.path().to_path_buf(),
            url: Some(url.clone()),
        };
        let text = store.pointer().unwrap();
        assert!(
            text.contains("state_password_env = \"OUTREACH_DB_PASSWORD\""),
            "{text}"
        );
        std::fs::write(dir.path().join(POINTER_FILE), text).unwrap();
        assert_eq!(Store::of_dir(dir.path()).unwrap(), store);
        // A broken one is named with the line of its fault.
        let broken = "state_url = \"postgres://o@db.example.org/x\"\nstate_password_env = 7\n";
        std::fs::write(dir.path().join(POINTER_FILE), broken).unwrap();
        let e = Store::of_dir(dir.path()).unwrap_err().to_string();
        assert!(
            e.contains("store.toml: line 2, column 22: invalid type"),
            "{e}"
        );
    }
}
