//! The campaign file: TOML parsed into a raw, all-optional form, `--set` overrides applied, then
//! validated once into [`Campaign`], whose fields cannot be wrong. Every error names the file (or
//! the `--set` argument) and the line of the key at fault.
//!
//! Two passes keep line numbers exact: serde (with `deny_unknown_fields`) reads the file text
//! itself, so an unknown or mistyped key is reported by the TOML parser at its own line; a spanned
//! parse of the same text maps every dotted key to its line for the semantic checks that follow.

mod campaign;
mod email;
mod error;
mod gateway;
mod generic;
mod raw;
mod secrets;
mod values;

use std::collections::HashMap;
use std::path::Path;

pub use campaign::{
    CONTACT_FIELDS, Campaign, Clinic, ContactsSource, DEFAULT_CONCURRENCY, DEFAULT_EMAIL_RATE,
    DEFAULT_MAX_ATTEMPTS, DEFAULT_MAX_CONSECUTIVE_FAILURES, DEFAULT_RETRY_DELAY, DEFAULT_SMS_RATE,
    DEFAULT_STATE_DIR, Sending, Window,
};
pub use email::{
    DEFAULT_EMAIL_OUTBOX, DkimSigner, EmailSettings, EmailTransport, SmtpSettings, TlsMode,
};
use error::Locator;
pub use error::{ConfigError, Origin};
pub use gateway::{
    DEFAULT_GATEWAY_TIMEOUT, DEFAULT_MAX_SEGMENTS, DEFAULT_QUIET_HOURS, DEFAULT_SMS_OUTBOX,
    GatewayPreset, GatewaySettings, SmsSettings, SmsTransport, TWILIO_BASE_URL, VONAGE_BASE_URL,
    on_this_machine,
};
pub use generic::{
    BodyFormat, GATEWAY_PLACEHOLDERS, GatewayAuth, GenericGateway, HttpMethod, TemplateError,
    fill_template,
};
use raw::RawConfig;
use secrets::inline_secret;
pub use secrets::{SecretError, SecretSource};
pub use values::{
    InvalidValue, QuietHours, Rate, WindowEdge, parse_quiet_hours, parse_rate, parse_window_edge,
};

// ---------------------------------------------------------------------------------------------
// Loading.
// ---------------------------------------------------------------------------------------------

fn line_of(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.len() - before.rfind('\n').map(|i| i + 1).unwrap_or(0) + 1;
    (line, column)
}

/// Records, for every dotted key, its line and the byte range from key to end of value.
fn collect_lines(
    text: &str,
    prefix: &str,
    table: &toml::de::DeTable<'_>,
    out: &mut HashMap<String, usize>,
    spans: &mut Vec<(String, std::ops::Range<usize>)>,
) {
    for (key, value) in table.iter() {
        let dotted = if prefix.is_empty() {
            key.get_ref().to_string()
        } else {
            format!("{prefix}.{}", key.get_ref())
        };
        out.entry(dotted.clone())
            .or_insert_with(|| line_of(text, key.span().start).0);
        spans.push((
            dotted.clone(),
            key.span().start..value.span().end.max(key.span().end),
        ));
        if let toml::de::DeValue::Table(inner) = value.get_ref() {
            collect_lines(text, &dotted, inner, out, spans);
        }
    }
}

/// The innermost key whose text covers `offset`.
fn key_at(spans: &[(String, std::ops::Range<usize>)], offset: usize) -> Option<&str> {
    spans
        .iter()
        .filter(|(_, r)| r.start <= offset && offset < r.end.max(r.start + 1))
        .min_by_key(|(_, r)| r.end - r.start)
        .map(|(k, _)| k.as_str())
}

/// Reads, overrides and validates a campaign file.
///
/// `overrides` are `KEY=VALUE` strings from `--set`.
pub fn load(path: &Path, overrides: &[String]) -> Result<Campaign, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let parse_error = |e: toml::de::Error| {
        let (line, column) = e.span().map(|s| line_of(&text, s.start)).unwrap_or((1, 1));
        ConfigError::Parse {
            path: path.to_path_buf(),
            line,
            column,
            message: e.message().trim().to_string(),
        }
    };

    let spanned = toml::de::DeTable::parse(&text).map_err(parse_error)?;
    let mut lines = HashMap::new();
    let mut spans = Vec::new();
    collect_lines(&text, "", spanned.get_ref(), &mut lines, &mut spans);
    for (key, line) in &lines {
        if let Some(leaf) = inline_secret(key) {
            return Err(ConfigError::Invalid {
                origin: Origin::File {
                    path: path.to_path_buf(),
                    line: *line,
                },
                key: key.clone(),
                message: format!(
                    "secrets are never read from the campaign file; name an environment variable \
                     with `{leaf}_env` or a file with `{leaf}_file`"
                ),
            });
        }
    }

    // Pass 1: the file alone, so the TOML parser reports unknown and mistyped keys at their line.
    let mut raw: RawConfig = toml::from_str(&text).map_err(|e| {
        let key = e
            .span()
            .and_then(|s| key_at(&spans, s.start))
            .map(str::to_string);
        match (parse_error(e), key) {
            (
                ConfigError::Parse {
                    path,
                    line,
                    column,
                    message,
                },
                Some(key),
            ) => ConfigError::Parse {
                path,
                line,
                column,
                message: format!("`{key}`: {message}"),
            },
            (other, _) => other,
        }
    })?;

    // Pass 2: with overrides applied to the table, re-read the merged whole.
    let mut locator = Locator::new(path, lines);
    if !overrides.is_empty() {
        let mut table: toml::Table = text.parse().map_err(parse_error)?;
        for arg in overrides {
            let (key, value) = apply_override(&mut table, arg)?;
            if inline_secret(&key).is_some() {
                return Err(ConfigError::Override {
                    arg: format!("{key}=…"),
                    message: "secrets are never taken from the command line; use the *_env or \
                              *_file key"
                        .into(),
                });
            }
            let _ = value;
            locator.record_override(key, arg);
        }
        raw = serde_path_to_error::deserialize(toml::Value::Table(table)).map_err(|e| {
            let key = e.path().to_string();
            let arg = locator
                .override_around(&key)
                .map_or_else(|| overrides.join(" --set "), str::to_string);
            ConfigError::Override {
                arg,
                message: format!("`{key}`: {}", e.inner().message().trim()),
            }
        })?;
    }

    campaign::validate(path, raw, &locator)
}

/// Applies one `KEY=VALUE` to the table; returns the key and the parsed value.
fn apply_override(
    table: &mut toml::Table,
    arg: &str,
) -> Result<(String, toml::Value), ConfigError> {
    let err = |message: &str| ConfigError::Override {
        arg: arg.to_string(),
        message: message.to_string(),
    };
    let (key, value) = arg
        .split_once('=')
        .ok_or_else(|| err("expected KEY=VALUE, e.g. --set email.smtp.port=2525"))?;
    let key = key.trim();
    if key.is_empty()
        || key
            .split('.')
            .any(|s| s.is_empty() || !s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
    {
        return Err(err(
            "KEY must be a dotted path of plain names, e.g. sending.concurrency",
        ));
    }
    if key == "campaign.id" {
        return Err(err(
            "the campaign id cannot be overridden: a new id is a new campaign and would message \
             everyone again; edit the campaign file instead",
        ));
    }
    // VALUE is TOML when it parses as TOML, else a plain string ("--set email.transport=smtp").
    let parsed = format!("v = {value}")
        .parse::<toml::Table>()
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(value.to_string()));

    let mut cursor = table;
    let segments: Vec<&str> = key.split('.').collect();
    for seg in &segments[..segments.len() - 1] {
        let entry = cursor
            .entry(seg.to_string())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        cursor = match entry {
            toml::Value::Table(t) => t,
            _ => return Err(err(&format!("`{seg}` is a value, not a table"))),
        };
    }
    cursor.insert(segments[segments.len() - 1].to_string(), parsed.clone());
    Ok((key.to_string(), parsed))
}

/// What the tests of every file here share: a campaign that loads, and the exact error `load`
/// gives for a variant of it.
#[cfg(test)]
mod testing {
    use super::load;

    /// A campaign that loads: both channels, file transports.
    pub(super) const BASE: &str = r#"[campaign]
id = "t-1"
channels = ["email", "sms"]

[clinic]
name = "Riverside Physio"
phone = "+1 312 555 0100"
address = "12 Example St"
website = "https://riverside.example"
booking_url = "https://riverside.example/book"
timezone = "America/Chicago"
region = "US"

[contacts]
path = "contacts.csv"

[templates]
dir = "templates"

[email]
from = "Riverside Physio <care@riverside.example>"
unsubscribe_url = "https://riverside.example/unsubscribe?t={{token}}"

[sms]
from = "+13125550100"
"#;

    /// The error `load` gives for `text` with `sets`, the temporary directory left out.
    pub(super) fn load_error(text: &str, sets: &[&str]) -> String {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("campaign.toml");
        std::fs::write(&path, text).unwrap();
        std::fs::write(
            dir.path().join("ed25519.key"),
            "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
        )
        .unwrap();
        std::fs::write(dir.path().join("empty"), "").unwrap();
        let sets: Vec<String> = sets.iter().map(|s| s.to_string()).collect();
        let err = load(&path, &sets).expect_err("an error").to_string();
        err.replace(&format!("{}/", dir.path().display()), "")
    }

    /// Asserts the exact error for each `--set` list on [`BASE`], and for each edit of its text.
    pub(super) fn assert_errors(sets: &[(&[&str], &str)], edits: &[(&str, &str, &str)]) {
        for (sets, want) in sets {
            assert_eq!(load_error(BASE, sets), *want, "--set {sets:?}");
        }
        for (from, to, want) in edits {
            assert!(BASE.contains(from), "{from}");
            assert_eq!(load_error(&BASE.replacen(from, to, 1), &[]), *want, "{to}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::testing::{BASE, assert_errors};
    use super::*;
    use crate::model::Channel;

    #[test]
    fn the_base_campaign_loads() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("campaign.toml");
        std::fs::write(&path, BASE).unwrap();
        let c = load(&path, &[]).unwrap();
        assert_eq!(c.id, "t-1");
        assert_eq!(c.channels, [Channel::Email, Channel::Sms]);
    }

    /// The TOML text itself, inline secrets, and `--set` arguments. Exact messages.
    #[test]
    fn file_and_override_errors() {
        let sets: &[(&[&str], &str)] = &[
            (
                &["nonsense"],
                "--set nonsense: expected KEY=VALUE, e.g. --set email.smtp.port=2525",
            ),
            (
                &["a..b=1"],
                "--set a..b=1: KEY must be a dotted path of plain names, e.g. sending.concurrency",
            ),
            (
                &["campaign.id=other"],
                "--set campaign.id=other: the campaign id cannot be overridden: a new id is a new campaign and would message everyone again; edit the campaign file instead",
            ),
            (
                &["clinic.name.first=x"],
                "--set clinic.name.first=x: `name` is a value, not a table",
            ),
            (
                &["sending.bogus=1"],
                "--set sending.bogus=1: `sending.bogus`: unknown field `bogus`, expected one of `email_rate`, `sms_rate`, `concurrency`, `max_attempts`, `max_consecutive_failures`, `retry_delay`, `daily_cap`, `state_dir`",
            ),
            (
                &["sending.concurrency=lots"],
                "--set sending.concurrency=lots: `sending.concurrency`: invalid type: string \"lots\", expected usize",
            ),
            (
                &["sms.gateway.token=x"],
                "--set sms.gateway.token=…: secrets are never taken from the command line; use the *_env or *_file key",
            ),
        ];
        let edits: &[(&str, &str, &str)] = &[
            (
                "[sms]",
                "[sms]\npassword = \"x\"",
                "campaign.toml:25: `sms.password`: secrets are never read from the campaign file; name an environment variable with `password_env` or a file with `password_file`",
            ),
            (
                "[sms]",
                "[sms]\nsurprise = 1",
                "campaign.toml:25:1: `sms.surprise`: unknown field `surprise`, expected one of `from`, `transport`, `outbox`, `quiet_hours`, `max_segments`, `smart_encoding`, `gateway`",
            ),
            (
                "[sms]",
                "[sms]\nmax_segments = \"three\"",
                "campaign.toml:25:16: `sms.max_segments`: invalid type: string \"three\", expected usize",
            ),
            (
                "[sms]",
                "[sms\n",
                "campaign.toml:24:5: unclosed table, expected `]`",
            ),
            (
                "region = \"US\"",
                "region = \"US\"\nregion = \"GB\"",
                "campaign.toml:13:1: duplicate key",
            ),
        ];
        assert_errors(sets, edits);
    }

    #[test]
    fn line_and_column() {
        assert_eq!(line_of("a\nbc\nd", 3), (2, 2));
        assert_eq!(line_of("abc", 0), (1, 1));
    }
}
