//! The campaign file's text read into its raw form, with `--set` overrides merged in, and a
//! [`Locator`] that knows where each key came from.
//!
//! Two passes keep line numbers exact: serde (with `deny_unknown_fields`) reads the file text
//! itself, so an unknown or mistyped key is reported by the TOML parser at its own line; a spanned
//! parse of the same text maps every dotted key to its line for the semantic checks that follow.
//! Overrides are applied to the parsed table, which is then read again as a whole; an error in
//! that second reading names the `--set` argument instead of a line.

use std::collections::HashMap;
use std::ops::Range;
use std::path::Path;

use super::error::{ConfigError, Locator, Origin};
use super::raw::RawConfig;
use super::secrets::inline_secret;

/// Each dotted key with the byte range from the key to the end of its value.
type Spans = Vec<(String, Range<usize>)>;

/// Reads `text`, the file at `path`, with `overrides` (`KEY=VALUE` strings from `--set`).
pub(super) fn parse(
    path: &Path,
    text: &str,
    overrides: &[String],
) -> Result<(RawConfig, Locator), ConfigError> {
    let spanned = toml::de::DeTable::parse(text).map_err(|e| parse_error(path, text, &e, None))?;
    let mut lines = HashMap::new();
    let mut spans = Spans::new();
    collect_lines(text, "", spanned.get_ref(), &mut lines, &mut spans);
    refuse_inline_secrets(path, &lines)?;

    // Pass 1: the file alone, so the TOML parser reports unknown and mistyped keys at their line.
    let raw: RawConfig = toml::from_str(text).map_err(|e| {
        let key = e.span().and_then(|s| key_at(&spans, s.start));
        parse_error(path, text, &e, key)
    })?;
    let mut locator = Locator::new(path, lines);
    if overrides.is_empty() {
        return Ok((raw, locator));
    }
    // Pass 2: with overrides applied to the table, re-read the merged whole.
    let raw = read_with_overrides(path, text, overrides, &mut locator)?;
    Ok((raw, locator))
}

/// A TOML error at its line and column, after the key it is about when known.
fn parse_error(path: &Path, text: &str, e: &toml::de::Error, key: Option<&str>) -> ConfigError {
    let (line, column) = e.span().map(|s| line_of(text, s.start)).unwrap_or((1, 1));
    let message = in_words(e.message().trim(), key.unwrap_or_default());
    ConfigError::Parse {
        path: path.to_path_buf(),
        line,
        column,
        message: match key {
            Some(key) => format!("`{key}`: {message}"),
            None => message,
        },
    }
}

/// serde's message with Rust's type names said the way a campaign's author says them:
/// "expected usize" is "expected a whole number", a port's u16 "a port number (1-65535)".
fn in_words(message: &str, key: &str) -> String {
    let sixteen = if key.ends_with("port") {
        "expected a port number (1-65535)"
    } else {
        "expected a whole number from 0 to 65535"
    };
    message
        .replace("expected u16", sixteen)
        .replace("expected usize", "expected a whole number")
        .replace("expected u32", "expected a whole number")
        .replace("expected u64", "expected a whole number")
}

/// The line and column (both from 1) of byte `offset` of `text`.
pub(super) fn line_of(text: &str, offset: usize) -> (usize, usize) {
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
    spans: &mut Spans,
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
fn key_at(spans: &Spans, offset: usize) -> Option<&str> {
    spans
        .iter()
        .filter(|(_, r)| r.start <= offset && offset < r.end.max(r.start + 1))
        .min_by_key(|(_, r)| r.end - r.start)
        .map(|(k, _)| k.as_str())
}

/// Secrets are never read from the campaign file: a key that would hold one is an error that
/// says where secrets go.
fn refuse_inline_secrets(path: &Path, lines: &HashMap<String, usize>) -> Result<(), ConfigError> {
    for (key, line) in lines {
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
    Ok(())
}

/// The file with every override applied in order, read again; `locator` learns which keys the
/// overrides gave.
fn read_with_overrides(
    path: &Path,
    text: &str,
    overrides: &[String],
    locator: &mut Locator,
) -> Result<RawConfig, ConfigError> {
    let mut table: toml::Table = text
        .parse()
        .map_err(|e| parse_error(path, text, &e, None))?;
    for arg in overrides {
        let key = apply_override(&mut table, arg)?;
        if inline_secret(&key).is_some() {
            return Err(ConfigError::Override {
                arg: format!("{key}=…"),
                message: "secrets are never taken from the command line; use the *_env or \
                          *_file key"
                    .into(),
            });
        }
        locator.record_override(key, arg);
    }
    serde_path_to_error::deserialize(toml::Value::Table(table)).map_err(|e| {
        let key = e.path().to_string();
        let arg = locator
            .override_around(&key)
            .map_or_else(|| overrides.join(" --set "), str::to_string);
        ConfigError::Override {
            arg,
            message: format!("`{key}`: {}", in_words(e.inner().message().trim(), &key)),
        }
    })
}

/// Applies one `KEY=VALUE` to the table; returns the key.
fn apply_override(table: &mut toml::Table, arg: &str) -> Result<String, ConfigError> {
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
    cursor.insert(segments[segments.len() - 1].to_string(), parsed);
    Ok(key.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::testing::assert_errors;

    #[test]
    fn line_and_column() {
        assert_eq!(line_of("a\nbc\nd", 3), (2, 2));
        assert_eq!(line_of("abc", 0), (1, 1));
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
                "--set sending.bogus=1: `sending.bogus`: unknown field `bogus`, expected one of `email_rate`, `sms_rate`, `concurrency`, `max_attempts`, `max_consecutive_failures`, `retry_delay`, `daily_cap`, `max_per_patient`, `state_dir`, `state_url`, `state_password_env`, `state_password_file`",
            ),
            (
                &["sending.concurrency=lots"],
                "--set sending.concurrency=lots: `sending.concurrency`: invalid type: string \"lots\", expected a whole number",
            ),
            (
                &["sending.max_attempts=-1"],
                "--set sending.max_attempts=-1: `sending.max_attempts`: invalid value: integer `-1`, expected a whole number",
            ),
            (
                &["email.smtp.port=99999"],
                "--set email.smtp.port=99999: `email.smtp.port`: invalid value: integer `99999`, expected a port number (1-65535)",
            ),
            (
                &["sms.gateway.success_status=[70000]"],
                "--set sms.gateway.success_status=[70000]: `sms.gateway.success_status[0]`: invalid value: integer `70000`, expected a whole number from 0 to 65535",
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
                "campaign.toml:25:16: `sms.max_segments`: invalid type: string \"three\", expected a whole number",
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
}
