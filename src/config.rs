//! The campaign file: TOML parsed into a raw, all-optional form, `--set` overrides applied, then
//! validated once into [`Campaign`], whose fields cannot be wrong. Every error names the file (or
//! the `--set` argument) and the line of the key at fault.
//!
//! Two passes keep line numbers exact: serde (with `deny_unknown_fields`) reads the file text
//! itself, so an unknown or mistyped key is reported by the TOML parser at its own line; a spanned
//! parse of the same text maps every dotted key to its line for the semantic checks that follow.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use chrono::NaiveTime;
use chrono_tz::Tz;
use lettre::message::Mailbox;
use serde::Deserialize;

use crate::channel::Channel;

/// Default quiet hours for SMS, in each patient's own time zone.
pub const DEFAULT_QUIET_HOURS: &str = "21:00-08:00";
/// Default ceiling on SMS segments per message (`check` flags anything longer).
pub const DEFAULT_MAX_SEGMENTS: usize = 3;
/// Default per-channel rates.
pub const DEFAULT_EMAIL_RATE: &str = "20/s";
pub const DEFAULT_SMS_RATE: &str = "1/s";
pub const DEFAULT_CONCURRENCY: usize = 8;
pub const DEFAULT_MAX_ATTEMPTS: u32 = 4;
pub const DEFAULT_MAX_CONSECUTIVE_FAILURES: u32 = 20;
pub const DEFAULT_RETRY_DELAY: &str = "2s";
pub const DEFAULT_STATE_DIR: &str = ".outreach";
pub const DEFAULT_EMAIL_OUTBOX: &str = "outbox/email";
pub const DEFAULT_SMS_OUTBOX: &str = "outbox/sms.jsonl";

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
    #[error("cannot read campaign file {path}: {source}")]
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
}

// ---------------------------------------------------------------------------------------------
// Raw form: exactly the file's shape, every field optional, unknown keys refused.
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    campaign: Option<RawCampaign>,
    clinic: Option<RawClinic>,
    contacts: Option<RawContacts>,
    templates: Option<RawTemplates>,
    email: Option<RawEmail>,
    sms: Option<RawSms>,
    sending: Option<RawSending>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCampaign {
    id: Option<String>,
    name: Option<String>,
    channels: Option<Vec<String>>,
    require_consent: Option<bool>,
    require_approval: Option<bool>,
    /// A date or date-time, written as a TOML date (`2026-12-01`) or a string.
    not_before: Option<toml::Value>,
    not_after: Option<toml::Value>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawClinic {
    name: Option<String>,
    phone: Option<String>,
    address: Option<String>,
    website: Option<String>,
    booking_url: Option<String>,
    timezone: Option<String>,
    region: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawContacts {
    path: Option<String>,
    suppress: Option<Vec<String>>,
    encoding: Option<String>,
    delimiter: Option<String>,
    columns: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTemplates {
    dir: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEmail {
    from: Option<String>,
    reply_to: Option<String>,
    transport: Option<String>,
    outbox: Option<String>,
    unsubscribe_url: Option<String>,
    unsubscribe_mailto: Option<String>,
    smtp: Option<RawSmtp>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSmtp {
    host: Option<String>,
    port: Option<u16>,
    tls: Option<String>,
    username: Option<String>,
    password_env: Option<String>,
    password_file: Option<String>,
    allow_insecure: Option<bool>,
    ca_file: Option<String>,
    timeout: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSms {
    from: Option<String>,
    transport: Option<String>,
    outbox: Option<String>,
    quiet_hours: Option<String>,
    max_segments: Option<usize>,
    smart_encoding: Option<bool>,
    gateway: Option<RawGateway>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGateway {
    preset: Option<String>,
    base_url: Option<String>,
    account: Option<String>,
    token_env: Option<String>,
    token_file: Option<String>,
    messaging_service_sid: Option<String>,
    status_callback: Option<String>,
}

/// A rate written as text (`"20/s"`) or, for "off", as the number `0`.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum RawRate {
    Text(String),
    Number(i64),
}

impl RawRate {
    fn text(self) -> String {
        match self {
            RawRate::Text(s) => s,
            RawRate::Number(n) => n.to_string(),
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSending {
    email_rate: Option<RawRate>,
    sms_rate: Option<RawRate>,
    concurrency: Option<usize>,
    max_attempts: Option<u32>,
    max_consecutive_failures: Option<u32>,
    retry_delay: Option<String>,
    daily_cap: Option<u32>,
    state_dir: Option<String>,
}

// ---------------------------------------------------------------------------------------------
// Validated form.
// ---------------------------------------------------------------------------------------------

/// A campaign ready to use: every value checked, every path absolute.
#[derive(Debug, Clone)]
pub struct Campaign {
    /// The campaign file, as given.
    pub file: PathBuf,
    pub id: String,
    pub name: String,
    /// Enabled channels, in a fixed order (email, then SMS).
    pub channels: Vec<Channel>,
    pub require_consent: bool,
    /// `send` refuses to send what an admin has not approved (`outreach approve`).
    pub require_approval: bool,
    /// When the campaign may send (`not_before` / `not_after`).
    pub window: Window,
    pub clinic: Clinic,
    pub contacts: ContactsSource,
    pub templates_dir: PathBuf,
    /// Present when email is enabled.
    pub email: Option<EmailSettings>,
    /// Present when SMS is enabled.
    pub sms: Option<SmsSettings>,
    pub sending: Sending,
}

/// The campaign's sending window, in the clinic's time zone.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Window {
    /// Nothing is sent before this instant.
    pub not_before: Option<WindowEdge>,
    /// Nothing is sent from this instant on (a date means: through the end of that day).
    pub not_after: Option<WindowEdge>,
}

/// One end of the window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WindowEdge {
    /// As written (`2026-12-01`, `2026-12-01T09:00`).
    pub written: String,
    /// The instant it stands for.
    pub at: chrono::DateTime<chrono::Utc>,
}

impl Window {
    /// When the window opens, if `now` is before it.
    pub fn opens_after(&self, now: chrono::DateTime<chrono::Utc>) -> Option<&WindowEdge> {
        self.not_before.as_ref().filter(|e| now < e.at)
    }

    /// When the window closed, if `now` is past it.
    pub fn ended_before(&self, now: chrono::DateTime<chrono::Utc>) -> Option<&WindowEdge> {
        self.not_after.as_ref().filter(|e| now >= e.at)
    }
}

/// The clinic, also given to templates as `clinic.*`.
#[derive(Debug, Clone)]
pub struct Clinic {
    pub name: String,
    /// As written in the campaign file (what patients read).
    pub phone: String,
    /// The same number in E.164, for `tel:` links.
    pub phone_e164: String,
    pub address: String,
    pub website: String,
    pub booking_url: String,
    pub timezone: Tz,
    pub region: phonenumber::country::Id,
    /// The region as written ("US"), for templates and reports.
    pub region_code: String,
}

/// Where contacts come from and how to read them.
#[derive(Debug, Clone)]
pub struct ContactsSource {
    pub path: PathBuf,
    pub suppress: Vec<PathBuf>,
    /// `None`: detect (UTF-8 with or without BOM, UTF-16 with BOM, else a guess that must be
    /// Windows-1252 or the file is refused).
    pub encoding: Option<&'static encoding_rs::Encoding>,
    /// `None`: detect from the header line.
    pub delimiter: Option<u8>,
    /// Standard field → header name in the file.
    pub columns: BTreeMap<String, String>,
}

/// The standard contact fields a `[contacts.columns]` table may map.
pub const CONTACT_FIELDS: &[&str] = &[
    "id",
    "first_name",
    "last_name",
    "email",
    "phone",
    "channel",
    "email_consent",
    "sms_consent",
    "timezone",
];

/// Email settings.
#[derive(Debug, Clone)]
pub struct EmailSettings {
    pub from: Mailbox,
    pub reply_to: Option<Mailbox>,
    pub transport: EmailTransport,
    /// An `https://` or `http://` URL containing `{{token}}`.
    pub unsubscribe_url: String,
    pub unsubscribe_mailto: Option<lettre::Address>,
}

/// How email leaves.
#[derive(Debug, Clone)]
pub enum EmailTransport {
    /// `.eml` files in this directory: exactly the bytes SMTP would carry.
    File { outbox: PathBuf },
    /// An SMTP relay.
    Smtp(SmtpSettings),
}

/// TLS mode for SMTP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsMode {
    StartTls,
    Tls,
    None,
}

/// SMTP relay settings. The password itself is never held here: only where to find it.
#[derive(Debug, Clone)]
pub struct SmtpSettings {
    pub host: String,
    pub port: u16,
    pub tls: TlsMode,
    pub username: Option<String>,
    pub password: Option<SecretSource>,
    pub allow_insecure: bool,
    pub ca_file: Option<PathBuf>,
    pub timeout: std::time::Duration,
    /// The outbox is still known so a switch back to `file` needs nothing else.
    pub outbox: PathBuf,
}

/// Where a secret lives. The value is read when needed and never stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretSource {
    Env(String),
    File(PathBuf),
}

/// SMS settings.
#[derive(Debug, Clone)]
pub struct SmsSettings {
    /// E.164 number or alphanumeric sender id.
    pub from: String,
    pub transport: SmsTransport,
    pub quiet_hours: Option<QuietHours>,
    pub max_segments: usize,
    pub smart_encoding: bool,
}

/// How SMS leaves.
#[derive(Debug, Clone)]
pub enum SmsTransport {
    /// JSON lines appended to this file.
    File { outbox: PathBuf },
    /// An HTTP gateway.
    Http(GatewaySettings),
}

/// HTTP gateway settings (presets are filled in by the SMS channel).
#[derive(Debug, Clone)]
pub struct GatewaySettings {
    pub preset: GatewayPreset,
    pub base_url: Option<String>,
    pub account: Option<String>,
    pub token: Option<SecretSource>,
    pub messaging_service_sid: Option<String>,
    pub status_callback: Option<String>,
    pub outbox: PathBuf,
}

/// Known gateway dialects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GatewayPreset {
    Twilio,
    Vonage,
    Generic,
}

/// A daily window, in a patient's local time, during which no SMS goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuietHours {
    pub start: NaiveTime,
    pub end: NaiveTime,
}

impl QuietHours {
    /// Whether `t` falls inside the window (which may wrap past midnight).
    pub fn contains(&self, t: NaiveTime) -> bool {
        if self.start <= self.end {
            t >= self.start && t < self.end
        } else {
            t >= self.start || t < self.end
        }
    }
}

impl fmt::Display for QuietHours {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}-{}",
            self.start.format("%H:%M"),
            self.end.format("%H:%M")
        )
    }
}

/// A rate limit: `count` messages per `per`; `None` in [`Sending`] means unlimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    pub count: u32,
    pub per: std::time::Duration,
}

impl fmt::Display for Rate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let unit = match self.per.as_secs() {
            1 => "s",
            60 => "min",
            _ => "h",
        };
        write!(f, "{}/{unit}", self.count)
    }
}

/// Pacing and state.
#[derive(Debug, Clone)]
pub struct Sending {
    pub email_rate: Option<Rate>,
    pub sms_rate: Option<Rate>,
    pub concurrency: usize,
    pub max_attempts: u32,
    pub max_consecutive_failures: u32,
    /// The first retry's delay; each further retry doubles it (with jitter, capped at a minute).
    pub retry_delay: std::time::Duration,
    /// 0 = no cap.
    pub daily_cap: u32,
    pub state_dir: PathBuf,
}

// ---------------------------------------------------------------------------------------------
// Loading.
// ---------------------------------------------------------------------------------------------

/// Where each dotted key was written, so semantic errors can name a line.
struct Locator {
    path: PathBuf,
    lines: HashMap<String, usize>,
    overrides: HashMap<String, String>,
}

impl Locator {
    fn origin(&self, key: &str) -> Origin {
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

    fn invalid(&self, key: &str, message: impl Into<String>) -> ConfigError {
        ConfigError::Invalid {
            origin: self.origin(key),
            key: key.to_string(),
            message: message.into(),
        }
    }

    /// Paths given with `--set` are relative to the current directory; in the file, to the file.
    fn resolve(&self, key: &str, value: &str, file_dir: &Path) -> PathBuf {
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

/// `campaigns/../contacts/x.csv` → `contacts/x.csv`, lexically (reports read better; the file
/// system is not consulted, so a symlinked directory keeps its `..`).
pub fn fold_parents(path: &Path) -> PathBuf {
    use std::path::Component;
    let mut parts: Vec<Component> = Vec::new();
    for c in path.components() {
        match c {
            Component::ParentDir if matches!(parts.last(), Some(Component::Normal(_))) => {
                parts.pop();
            }
            Component::CurDir => {}
            other => parts.push(other),
        }
    }
    if parts.is_empty() {
        return PathBuf::from(".");
    }
    parts.iter().collect()
}

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

/// Secrets must come from the environment or a file; a key that looks like an inline secret gets
/// a message that says so instead of a bare "unknown field".
const INLINE_SECRET_KEYS: &[&str] = &["password", "token", "secret", "api_secret", "auth_token"];

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
        let leaf = key.rsplit('.').next().unwrap_or(key);
        if INLINE_SECRET_KEYS.contains(&leaf) {
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
    let mut locator = Locator {
        path: path.to_path_buf(),
        lines,
        overrides: HashMap::new(),
    };
    if !overrides.is_empty() {
        let mut table: toml::Table = text.parse().map_err(parse_error)?;
        for arg in overrides {
            let (key, value) = apply_override(&mut table, arg)?;
            let leaf = key.rsplit('.').next().unwrap_or(&key);
            if INLINE_SECRET_KEYS.contains(&leaf) {
                return Err(ConfigError::Override {
                    arg: format!("{key}=…"),
                    message: "secrets are never taken from the command line; use the *_env or \
                              *_file key"
                        .into(),
                });
            }
            let _ = value;
            locator.overrides.insert(key, arg.clone());
        }
        raw = serde_path_to_error::deserialize(toml::Value::Table(table)).map_err(|e| {
            let key = e.path().to_string();
            let arg = locator
                .overrides
                .iter()
                .find(|(k, _)| key.starts_with(k.as_str()) || k.starts_with(&key))
                .map(|(_, a)| a.clone())
                .unwrap_or_else(|| overrides.join(" --set "));
            ConfigError::Override {
                arg,
                message: format!("`{key}`: {}", e.inner().message().trim()),
            }
        })?;
    }

    validate(path, raw, &locator)
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

fn required<T>(value: Option<T>, loc: &Locator, key: &str) -> Result<T, ConfigError> {
    value.ok_or_else(|| loc.invalid(key, "required key is missing"))
}

fn non_empty(value: Option<String>, loc: &Locator, key: &str) -> Result<String, ConfigError> {
    let v = required(value, loc, key)?;
    if v.trim().is_empty() {
        return Err(loc.invalid(key, "must not be empty"));
    }
    Ok(v.trim().to_string())
}

fn parse_url(value: &str, loc: &Locator, key: &str) -> Result<(), ConfigError> {
    let rest = value
        .strip_prefix("https://")
        .or_else(|| value.strip_prefix("http://"));
    match rest {
        Some(r)
            if !r.is_empty() && !r.starts_with('/') && !value.chars().any(char::is_whitespace) =>
        {
            Ok(())
        }
        _ => Err(loc.invalid(
            key,
            format!("{value:?} is not an http(s) URL (e.g. https://riverside.example/book)"),
        )),
    }
}

/// Parses `20/s`, `60/min`, `1000/h`; `0` or `unlimited` turn the limit off.
pub fn parse_rate(value: &str) -> Result<Option<Rate>, String> {
    let v = value.trim();
    if v == "0" || v.eq_ignore_ascii_case("unlimited") {
        return Ok(None);
    }
    let (n, unit) = v.split_once('/').ok_or_else(|| {
        format!("{v:?} is not a rate: write e.g. \"20/s\", \"60/min\", \"unlimited\"")
    })?;
    let count: u32 = n
        .trim()
        .parse()
        .map_err(|_| format!("{n:?} is not a whole number of messages"))?;
    let per = match unit.trim() {
        "s" | "sec" | "second" => 1,
        "m" | "min" | "minute" => 60,
        "h" | "hour" => 3600,
        other => return Err(format!("unknown rate unit {other:?}: use s, min or h")),
    };
    if count == 0 {
        return Ok(None);
    }
    Ok(Some(Rate {
        count,
        per: std::time::Duration::from_secs(per),
    }))
}

/// Parses `21:00-08:00`; an empty value turns quiet hours off.
pub fn parse_quiet_hours(value: &str) -> Result<Option<QuietHours>, String> {
    let v = value.trim();
    if v.is_empty() {
        return Ok(None);
    }
    let (a, b) = v.split_once('-').ok_or_else(|| {
        format!("{v:?} is not a window: write e.g. \"21:00-08:00\", or \"\" for none")
    })?;
    let t = |s: &str| {
        NaiveTime::parse_from_str(s.trim(), "%H:%M")
            .map_err(|_| format!("{:?} is not a time of day (HH:MM)", s.trim()))
    };
    let (start, end) = (t(a)?, t(b)?);
    if start == end {
        return Err("start and end are equal; use \"\" to turn quiet hours off".into());
    }
    Ok(Some(QuietHours { start, end }))
}

fn parse_duration(value: &str) -> Result<std::time::Duration, String> {
    let v = value.trim();
    let (n, mult) = if let Some(n) = v.strip_suffix("ms") {
        (n, 0.001)
    } else if let Some(n) = v.strip_suffix('s') {
        (n, 1.0)
    } else if let Some(n) = v.strip_suffix("min") {
        (n, 60.0)
    } else {
        return Err(format!(
            "{v:?} is not a duration: write e.g. \"30s\" or \"500ms\""
        ));
    };
    let n: f64 = n
        .trim()
        .parse()
        .map_err(|_| format!("{v:?} is not a duration"))?;
    if n <= 0.0 || !n.is_finite() {
        return Err(format!("{v:?} must be positive"));
    }
    Ok(std::time::Duration::from_secs_f64(n * mult))
}

fn validate(path: &Path, raw: RawConfig, loc: &Locator) -> Result<Campaign, ConfigError> {
    let dir = path
        .parent()
        .map(|p| {
            if p.as_os_str().is_empty() {
                Path::new(".")
            } else {
                p
            }
        })
        .unwrap_or(Path::new("."))
        .to_path_buf();

    let rc = required(raw.campaign, loc, "campaign")?;
    let id = non_empty(rc.id, loc, "campaign.id")?;
    if !id
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        return Err(loc.invalid(
            "campaign.id",
            "use letters, digits, '-', '_' and '.' only (it names files and ledger rows)",
        ));
    }
    let name = rc.name.unwrap_or_else(|| id.clone());
    let mut channels = Vec::new();
    for c in rc
        .channels
        .unwrap_or_else(|| vec!["email".into(), "sms".into()])
    {
        let ch = Channel::from_str(&c).map_err(|m| loc.invalid("campaign.channels", m))?;
        if !channels.contains(&ch) {
            channels.push(ch);
        }
    }
    if channels.is_empty() {
        return Err(loc.invalid("campaign.channels", "enable at least one channel"));
    }
    channels.sort();
    let require_consent = rc.require_consent.unwrap_or(true);
    let require_approval = rc.require_approval.unwrap_or(false);

    let cl = required(raw.clinic, loc, "clinic")?;
    let region_code = non_empty(cl.region, loc, "clinic.region")?.to_ascii_uppercase();
    let region = phonenumber::country::Id::from_str(&region_code).map_err(|_| {
        loc.invalid(
            "clinic.region",
            format!("{region_code:?} is not an ISO 3166 region code (e.g. \"US\", \"GB\")"),
        )
    })?;
    let tz_name = non_empty(cl.timezone, loc, "clinic.timezone")?;
    let timezone = parse_timezone(&tz_name).map_err(|m| loc.invalid("clinic.timezone", m))?;
    let edge = |value: Option<toml::Value>, key: &str, end_of_day: bool| {
        value
            .map(|v| {
                let text = match v {
                    toml::Value::String(s) => s,
                    toml::Value::Datetime(d) => d.to_string(),
                    other => other.to_string(),
                };
                parse_window_edge(&text, timezone, end_of_day).map_err(|m| loc.invalid(key, m))
            })
            .transpose()
    };
    let window = Window {
        not_before: edge(rc.not_before, "campaign.not_before", false)?,
        not_after: edge(rc.not_after, "campaign.not_after", true)?,
    };
    if let (Some(b), Some(a)) = (&window.not_before, &window.not_after)
        && b.at >= a.at
    {
        return Err(loc.invalid(
            "campaign.not_after",
            format!(
                "{} is not after campaign.not_before = {}: the window would be empty",
                a.written, b.written
            ),
        ));
    }
    let phone = non_empty(cl.phone, loc, "clinic.phone")?;
    let phone_e164 = crate::contacts::normalise_phone(&phone, region)
        .map_err(|m| loc.invalid("clinic.phone", m))?;
    let website = non_empty(cl.website, loc, "clinic.website")?;
    parse_url(&website, loc, "clinic.website")?;
    let booking_url = non_empty(cl.booking_url, loc, "clinic.booking_url")?;
    parse_url(&booking_url, loc, "clinic.booking_url")?;
    let clinic = Clinic {
        name: non_empty(cl.name, loc, "clinic.name")?,
        phone,
        phone_e164,
        address: non_empty(cl.address, loc, "clinic.address")?,
        website,
        booking_url,
        timezone,
        region,
        region_code,
    };

    let co = required(raw.contacts, loc, "contacts")?;
    let contacts_path = non_empty(co.path, loc, "contacts.path")?;
    let suppress = co
        .suppress
        .unwrap_or_default()
        .iter()
        .map(|s| loc.resolve("contacts.suppress", s, &dir))
        .collect();
    let encoding =
        match co.encoding.as_deref().map(str::trim) {
            None | Some("") | Some("auto") => None,
            Some(label) => Some(
                encoding_rs::Encoding::for_label(label.as_bytes()).ok_or_else(|| {
                    loc.invalid(
                "contacts.encoding",
                format!("unknown encoding {label:?} (e.g. \"utf-8\", \"windows-1252\", \"auto\")"),
            )
                })?,
            ),
        };
    let delimiter = match co.delimiter.as_deref() {
        None | Some("") | Some("auto") => None,
        Some(",") => Some(b','),
        Some(";") => Some(b';'),
        Some("\t") | Some("tab") => Some(b'\t'),
        Some("|") => Some(b'|'),
        Some(other) => {
            return Err(loc.invalid(
                "contacts.delimiter",
                format!("{other:?}: use \",\", \";\", \"tab\", \"|\" or \"auto\""),
            ));
        }
    };
    let mut columns = BTreeMap::new();
    for (field, header) in co.columns.unwrap_or_default() {
        let key = format!("contacts.columns.{field}");
        if !CONTACT_FIELDS.contains(&field.as_str()) {
            return Err(loc.invalid(
                &key,
                format!(
                    "unknown contact field `{field}`; mappable fields: {}",
                    CONTACT_FIELDS.join(", ")
                ),
            ));
        }
        if header.trim().is_empty() {
            return Err(loc.invalid(&key, "header name must not be empty"));
        }
        columns.insert(field, header.trim().to_string());
    }
    let contacts = ContactsSource {
        path: loc.resolve("contacts.path", &contacts_path, &dir),
        suppress,
        encoding,
        delimiter,
        columns,
    };

    let templates_dir = {
        let t = required(raw.templates, loc, "templates")?;
        let d = non_empty(t.dir, loc, "templates.dir")?;
        loc.resolve("templates.dir", &d, &dir)
    };

    let email = if channels.contains(&Channel::Email) {
        Some(validate_email(
            required(raw.email, loc, "email")?,
            loc,
            &dir,
        )?)
    } else {
        None
    };
    let sms = if channels.contains(&Channel::Sms) {
        Some(validate_sms(
            required(raw.sms, loc, "sms")?,
            loc,
            &dir,
            region,
        )?)
    } else {
        None
    };

    let rs = raw.sending.unwrap_or_default();
    let rate = |v: Option<RawRate>, key: &str, default: &str| {
        let text = v.map(RawRate::text);
        parse_rate(text.as_deref().unwrap_or(default)).map_err(|m| loc.invalid(key, m))
    };
    let concurrency = rs.concurrency.unwrap_or(DEFAULT_CONCURRENCY);
    if concurrency == 0 || concurrency > 1024 {
        return Err(loc.invalid("sending.concurrency", "must be between 1 and 1024"));
    }
    let max_attempts = rs.max_attempts.unwrap_or(DEFAULT_MAX_ATTEMPTS);
    if max_attempts == 0 {
        return Err(loc.invalid("sending.max_attempts", "must be at least 1"));
    }
    let max_consecutive_failures = rs
        .max_consecutive_failures
        .unwrap_or(DEFAULT_MAX_CONSECUTIVE_FAILURES);
    if max_consecutive_failures == 0 {
        return Err(loc.invalid("sending.max_consecutive_failures", "must be at least 1"));
    }
    let sending = Sending {
        email_rate: rate(rs.email_rate, "sending.email_rate", DEFAULT_EMAIL_RATE)?,
        sms_rate: rate(rs.sms_rate, "sending.sms_rate", DEFAULT_SMS_RATE)?,
        concurrency,
        max_attempts,
        max_consecutive_failures,
        retry_delay: parse_duration(rs.retry_delay.as_deref().unwrap_or(DEFAULT_RETRY_DELAY))
            .map_err(|m| loc.invalid("sending.retry_delay", m))?,
        daily_cap: rs.daily_cap.unwrap_or(0),
        state_dir: loc.resolve(
            "sending.state_dir",
            rs.state_dir.as_deref().unwrap_or(DEFAULT_STATE_DIR),
            &dir,
        ),
    };

    Ok(Campaign {
        file: path.to_path_buf(),
        id,
        name,
        channels,
        require_consent,
        require_approval,
        window,
        clinic,
        contacts,
        templates_dir,
        email,
        sms,
        sending,
    })
}

fn parse_mailbox(value: &str, loc: &Locator, key: &str) -> Result<Mailbox, ConfigError> {
    if value.contains(['\r', '\n']) {
        return Err(loc.invalid(key, "must not contain line breaks"));
    }
    value.trim().parse::<Mailbox>().map_err(|e| {
        loc.invalid(
            key,
            format!("{value:?} is not an address like \"Clinic <care@clinic.example>\": {e}"),
        )
    })
}

fn validate_email(re: RawEmail, loc: &Locator, dir: &Path) -> Result<EmailSettings, ConfigError> {
    let from = parse_mailbox(&non_empty(re.from, loc, "email.from")?, loc, "email.from")?;
    let reply_to = re
        .reply_to
        .filter(|s| !s.trim().is_empty())
        .map(|r| parse_mailbox(&r, loc, "email.reply_to"))
        .transpose()?;
    let outbox = loc.resolve(
        "email.outbox",
        re.outbox.as_deref().unwrap_or(DEFAULT_EMAIL_OUTBOX),
        dir,
    );
    let transport = match re.transport.as_deref().unwrap_or("file") {
        "file" => EmailTransport::File { outbox },
        "smtp" => EmailTransport::Smtp(validate_smtp(
            required(re.smtp, loc, "email.smtp")?,
            loc,
            dir,
            outbox,
        )?),
        other => {
            return Err(loc.invalid(
                "email.transport",
                format!("unknown transport {other:?}: use \"file\" or \"smtp\""),
            ));
        }
    };
    let unsubscribe_url = non_empty(re.unsubscribe_url, loc, "email.unsubscribe_url")?;
    parse_url(&unsubscribe_url, loc, "email.unsubscribe_url")?;
    if !unsubscribe_url.contains("{{token}}") {
        return Err(loc.invalid(
            "email.unsubscribe_url",
            "must contain {{token}}, the opaque per-recipient token (e.g. https://clinic.example/unsubscribe?t={{token}})",
        ));
    }
    let unsubscribe_mailto = re
        .unsubscribe_mailto
        .filter(|s| !s.trim().is_empty())
        .map(|m| {
            let m = m.trim().trim_start_matches("mailto:");
            m.parse::<lettre::Address>().map_err(|e| {
                loc.invalid(
                    "email.unsubscribe_mailto",
                    format!("{m:?} is not an email address: {e}"),
                )
            })
        })
        .transpose()?;
    Ok(EmailSettings {
        from,
        reply_to,
        transport,
        unsubscribe_url,
        unsubscribe_mailto,
    })
}

fn secret(
    env: Option<String>,
    file: Option<String>,
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
            &f,
            dir,
        )))),
        (None, None) => Ok(None),
    }
}

fn validate_smtp(
    rs: RawSmtp,
    loc: &Locator,
    dir: &Path,
    outbox: PathBuf,
) -> Result<SmtpSettings, ConfigError> {
    let host = non_empty(rs.host, loc, "email.smtp.host")?;
    let tls = match rs.tls.as_deref().unwrap_or("starttls") {
        "starttls" => TlsMode::StartTls,
        "tls" => TlsMode::Tls,
        "none" => TlsMode::None,
        other => {
            return Err(loc.invalid(
                "email.smtp.tls",
                format!("unknown mode {other:?}: use \"starttls\", \"tls\" or \"none\""),
            ));
        }
    };
    let allow_insecure = rs.allow_insecure.unwrap_or(false);
    let loopback = host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .map(|ip| ip.is_loopback())
            .unwrap_or(false);
    if tls == TlsMode::None && !loopback && !allow_insecure {
        return Err(loc.invalid(
            "email.smtp.tls",
            format!(
                "\"none\" sends patient data in clear text to {host}; it is allowed only to \
                 loopback, or with allow_insecure = true"
            ),
        ));
    }
    let port = rs.port.unwrap_or(match tls {
        TlsMode::Tls => 465,
        TlsMode::StartTls => 587,
        TlsMode::None => 25,
    });
    let password = secret(
        rs.password_env,
        rs.password_file,
        loc,
        "email.smtp.password",
        dir,
    )?;
    if password.is_some() && rs.username.is_none() {
        return Err(loc.invalid("email.smtp.username", "a password is set but no username"));
    }
    Ok(SmtpSettings {
        host,
        port,
        tls,
        username: rs.username,
        password,
        allow_insecure,
        ca_file: rs
            .ca_file
            .map(|f| loc.resolve("email.smtp.ca_file", &f, dir)),
        timeout: parse_duration(rs.timeout.as_deref().unwrap_or("30s"))
            .map_err(|m| loc.invalid("email.smtp.timeout", m))?,
        outbox,
    })
}

fn validate_sms(
    rs: RawSms,
    loc: &Locator,
    dir: &Path,
    region: phonenumber::country::Id,
) -> Result<SmsSettings, ConfigError> {
    let from_raw = non_empty(rs.from, loc, "sms.from")?;
    // A sender is a phone number or an alphanumeric sender id (up to 11 characters).
    let from = if from_raw.chars().any(|c| c.is_ascii_digit())
        && !from_raw.chars().any(|c| c.is_ascii_alphabetic())
    {
        crate::contacts::normalise_phone(&from_raw, region)
            .map_err(|m| loc.invalid("sms.from", m))?
    } else if from_raw.len() <= 11
        && from_raw
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == ' ')
    {
        from_raw
    } else {
        return Err(loc.invalid(
            "sms.from",
            "must be a phone number or an alphanumeric sender id of at most 11 characters",
        ));
    };
    let outbox = loc.resolve(
        "sms.outbox",
        rs.outbox.as_deref().unwrap_or(DEFAULT_SMS_OUTBOX),
        dir,
    );
    let transport = match rs.transport.as_deref().unwrap_or("file") {
        "file" => SmsTransport::File { outbox },
        "http" => {
            let g = required(rs.gateway, loc, "sms.gateway")?;
            let preset = match g.preset.as_deref().unwrap_or("") {
                "twilio" => GatewayPreset::Twilio,
                "vonage" => GatewayPreset::Vonage,
                "generic" => GatewayPreset::Generic,
                other => {
                    return Err(loc.invalid(
                        "sms.gateway.preset",
                        format!(
                            "unknown preset {other:?}: use \"twilio\", \"vonage\" or \"generic\""
                        ),
                    ));
                }
            };
            if let Some(u) = &g.base_url {
                parse_url(u, loc, "sms.gateway.base_url")?;
            }
            SmsTransport::Http(GatewaySettings {
                preset,
                base_url: g.base_url,
                account: g.account,
                token: secret(g.token_env, g.token_file, loc, "sms.gateway.token", dir)?,
                messaging_service_sid: g.messaging_service_sid,
                status_callback: g.status_callback,
                outbox,
            })
        }
        other => {
            return Err(loc.invalid(
                "sms.transport",
                format!("unknown transport {other:?}: use \"file\" or \"http\""),
            ));
        }
    };
    let quiet_hours = parse_quiet_hours(rs.quiet_hours.as_deref().unwrap_or(DEFAULT_QUIET_HOURS))
        .map_err(|m| loc.invalid("sms.quiet_hours", m))?;
    let max_segments = rs.max_segments.unwrap_or(DEFAULT_MAX_SEGMENTS);
    if max_segments == 0 {
        return Err(loc.invalid("sms.max_segments", "must be at least 1"));
    }
    Ok(SmsSettings {
        from,
        transport,
        quiet_hours,
        max_segments,
        smart_encoding: rs.smart_encoding.unwrap_or(false),
    })
}

/// Parses a window edge: a date (`2026-12-01`: its start, or with `end_of_day` its end, i.e. the
/// next midnight) or a local date-time (`2026-12-01T09:00`, `2026-12-01 09:00:00`) in `tz`.
pub fn parse_window_edge(value: &str, tz: Tz, end_of_day: bool) -> Result<WindowEdge, String> {
    use chrono::{NaiveDate, NaiveDateTime, TimeZone};
    let v = value.trim();
    let local = if let Ok(d) = NaiveDate::parse_from_str(v, "%Y-%m-%d") {
        let d = if end_of_day {
            d.succ_opt()
                .ok_or_else(|| format!("{v:?} is out of range"))?
        } else {
            d
        };
        d.and_hms_opt(0, 0, 0).expect("midnight")
    } else {
        [
            "%Y-%m-%dT%H:%M",
            "%Y-%m-%dT%H:%M:%S",
            "%Y-%m-%d %H:%M",
            "%Y-%m-%d %H:%M:%S",
        ]
        .iter()
        .find_map(|f| NaiveDateTime::parse_from_str(v, f).ok())
        .ok_or_else(|| {
            format!(
                "{v:?} is not a date (2026-12-01) or a date and time (2026-12-01T09:00) in \
                     the clinic's time zone"
            )
        })?
    };
    let at = tz
        .from_local_datetime(&local)
        .earliest()
        // A local time skipped by a DST change: the first instant after the gap.
        .or_else(|| {
            tz.from_local_datetime(&(local + chrono::Duration::hours(1)))
                .earliest()
        })
        .ok_or_else(|| format!("{v:?} does not exist in {}", tz.name()))?
        .with_timezone(&chrono::Utc);
    Ok(WindowEdge {
        written: v.to_string(),
        at,
    })
}

/// Parses an IANA time zone name, with a hint for common mistakes.
pub fn parse_timezone(name: &str) -> Result<Tz, String> {
    name.trim().parse::<Tz>().map_err(|_| {
        format!("{name:?} is not an IANA time zone (e.g. \"America/Chicago\", \"Europe/London\")")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates() {
        assert_eq!(
            parse_rate("20/s").unwrap(),
            Some(Rate {
                count: 20,
                per: std::time::Duration::from_secs(1)
            })
        );
        assert_eq!(parse_rate("60/min").unwrap().unwrap().per.as_secs(), 60);
        assert_eq!(parse_rate("0").unwrap(), None);
        assert_eq!(parse_rate("unlimited").unwrap(), None);
        assert!(parse_rate("fast").is_err());
        assert!(parse_rate("5/day").is_err());
    }

    #[test]
    fn quiet_hours_wrap_midnight() {
        let q = parse_quiet_hours("21:00-08:00").unwrap().unwrap();
        let t = |h, m| NaiveTime::from_hms_opt(h, m, 0).unwrap();
        assert!(q.contains(t(21, 0)));
        assert!(q.contains(t(23, 59)));
        assert!(q.contains(t(7, 59)));
        assert!(!q.contains(t(8, 0)));
        assert!(!q.contains(t(20, 59)));
        let day = parse_quiet_hours("12:00-13:00").unwrap().unwrap();
        assert!(day.contains(t(12, 30)) && !day.contains(t(13, 0)));
        assert_eq!(parse_quiet_hours("").unwrap(), None);
        assert!(parse_quiet_hours("9pm-8am").is_err());
    }

    #[test]
    fn line_and_column() {
        assert_eq!(line_of("a\nbc\nd", 3), (2, 2));
        assert_eq!(line_of("abc", 0), (1, 1));
    }
}
