//! The campaign file: TOML parsed into a raw, all-optional form, `--set` overrides applied, then
//! validated once into [`Campaign`], whose fields cannot be wrong. Every error names the file (or
//! the `--set` argument) and the line of the key at fault.
//!
//! Two passes keep line numbers exact: serde (with `deny_unknown_fields`) reads the file text
//! itself, so an unknown or mistyped key is reported by the TOML parser at its own line; a spanned
//! parse of the same text maps every dotted key to its line for the semantic checks that follow.

mod email;
mod error;
mod gateway;
mod generic;
mod raw;
mod secrets;
mod values;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use chrono_tz::Tz;

use crate::address::normalise_phone;
use crate::model::Channel;
use crate::model::parse_timezone;
use email::validate_email;
pub use email::{
    DEFAULT_EMAIL_OUTBOX, DkimSigner, EmailSettings, EmailTransport, SmtpSettings, TlsMode,
};
use error::Locator;
pub use error::{ConfigError, Origin};
use gateway::validate_sms;
pub use gateway::{
    DEFAULT_GATEWAY_TIMEOUT, DEFAULT_MAX_SEGMENTS, DEFAULT_QUIET_HOURS, DEFAULT_SMS_OUTBOX,
    GatewayPreset, GatewaySettings, SmsSettings, SmsTransport, TWILIO_BASE_URL, VONAGE_BASE_URL,
    on_this_machine,
};
pub use generic::{
    BodyFormat, GATEWAY_PLACEHOLDERS, GatewayAuth, GenericGateway, HttpMethod, TemplateError,
    fill_template,
};
use raw::{RawConfig, RawRate};
use secrets::inline_secret;
pub use secrets::{SecretError, SecretSource};
pub use values::{
    InvalidValue, QuietHours, Rate, WindowEdge, parse_quiet_hours, parse_rate, parse_window_edge,
};
use values::{check_url, parse_duration};

/// Default per-channel rates.
pub const DEFAULT_EMAIL_RATE: &str = "20/s";
pub const DEFAULT_SMS_RATE: &str = "1/s";
pub const DEFAULT_CONCURRENCY: usize = 8;
pub const DEFAULT_MAX_ATTEMPTS: u32 = 4;
pub const DEFAULT_MAX_CONSECUTIVE_FAILURES: u32 = 20;
pub const DEFAULT_RETRY_DELAY: &str = "2s";
pub const DEFAULT_STATE_DIR: &str = ".outreach";

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

    let rc = loc.required(raw.campaign, "campaign")?;
    let id = loc.non_empty(rc.id, "campaign.id")?;
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
        let ch = loc.at("campaign.channels", Channel::from_str(&c))?;
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

    let cl = loc.required(raw.clinic, "clinic")?;
    let region_code = loc
        .non_empty(cl.region, "clinic.region")?
        .to_ascii_uppercase();
    let region = phonenumber::country::Id::from_str(&region_code).map_err(|_| {
        loc.invalid(
            "clinic.region",
            format!("{region_code:?} is not an ISO 3166 region code (e.g. \"US\", \"GB\")"),
        )
    })?;
    let tz_name = loc.non_empty(cl.timezone, "clinic.timezone")?;
    let timezone = loc.at("clinic.timezone", parse_timezone(&tz_name))?;
    let edge = |value: Option<toml::Value>, key: &str, end_of_day: bool| {
        value
            .map(|v| {
                let text = match v {
                    toml::Value::String(s) => s,
                    toml::Value::Datetime(d) => d.to_string(),
                    other => other.to_string(),
                };
                loc.at(key, parse_window_edge(&text, timezone, end_of_day))
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
    let phone = loc.non_empty(cl.phone, "clinic.phone")?;
    let phone_e164 = loc.at("clinic.phone", normalise_phone(&phone, region))?;
    let website = loc.non_empty(cl.website, "clinic.website")?;
    loc.at("clinic.website", check_url(&website))?;
    let booking_url = loc.non_empty(cl.booking_url, "clinic.booking_url")?;
    loc.at("clinic.booking_url", check_url(&booking_url))?;
    let clinic = Clinic {
        name: loc.non_empty(cl.name, "clinic.name")?,
        phone,
        phone_e164,
        address: loc.non_empty(cl.address, "clinic.address")?,
        website,
        booking_url,
        timezone,
        region,
        region_code,
    };

    let co = loc.required(raw.contacts, "contacts")?;
    let contacts_path = loc.non_empty(co.path, "contacts.path")?;
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
        let t = loc.required(raw.templates, "templates")?;
        let d = loc.non_empty(t.dir, "templates.dir")?;
        loc.resolve("templates.dir", &d, &dir)
    };

    let email = if channels.contains(&Channel::Email) {
        Some(validate_email(
            loc.required(raw.email, "email")?,
            loc,
            &dir,
        )?)
    } else {
        None
    };
    let sms = if channels.contains(&Channel::Sms) {
        Some(validate_sms(
            loc.required(raw.sms, "sms")?,
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
        loc.at(key, parse_rate(text.as_deref().unwrap_or(default)))
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
        retry_delay: loc.at(
            "sending.retry_delay",
            parse_duration(rs.retry_delay.as_deref().unwrap_or(DEFAULT_RETRY_DELAY)),
        )?,
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

    /// `[campaign]`: id, channels and the sending window. Exact messages.
    #[test]
    fn campaign_errors() {
        let sets: &[(&[&str], &str)] = &[
            (
                &["campaign.channels=[\"fax\"]"],
                "--set campaign.channels=[\"fax\"]: `campaign.channels`: unknown channel \"fax\": use \"email\" or \"sms\"",
            ),
            (
                &["campaign.channels=[]"],
                "--set campaign.channels=[]: `campaign.channels`: enable at least one channel",
            ),
            (
                &["campaign.not_before=next week"],
                "--set campaign.not_before=next week: `campaign.not_before`: \"next week\" is not a date (2026-12-01) or a date and time (2026-12-01T09:00) in the clinic's time zone",
            ),
            (
                &[
                    "campaign.not_before=2026-12-02",
                    "campaign.not_after=2026-12-01",
                ],
                "--set campaign.not_after=2026-12-01: `campaign.not_after`: 2026-12-01 is not after campaign.not_before = 2026-12-02: the window would be empty",
            ),
            (
                &["campaign.not_after=\"+262142-12-31\""],
                "--set campaign.not_after=\"+262142-12-31\": `campaign.not_after`: \"+262142-12-31\" is out of range",
            ),
            (
                &["campaign.not_after=\"2026-13-01\""],
                "--set campaign.not_after=\"2026-13-01\": `campaign.not_after`: \"2026-13-01\" is not a date (2026-12-01) or a date and time (2026-12-01T09:00) in the clinic's time zone",
            ),
            (
                &["clinic.phone=\"12\"", "campaign.not_before=x"],
                "--set campaign.not_before=x: `campaign.not_before`: \"x\" is not a date (2026-12-01) or a date and time (2026-12-01T09:00) in the clinic's time zone",
            ),
        ];
        let edits: &[(&str, &str, &str)] = &[
            (
                "id = \"t-1\"",
                "id = \"t 1\"",
                "campaign.toml:2: `campaign.id`: use letters, digits, '-', '_' and '.' only (it names files and ledger rows)",
            ),
            (
                "id = \"t-1\"",
                "id = \"\"",
                "campaign.toml:2: `campaign.id`: must not be empty",
            ),
            (
                "id = \"t-1\"\n",
                "",
                "campaign.toml:1: `campaign.id`: required key is missing",
            ),
        ];
        assert_errors(sets, edits);
    }

    /// `[clinic]`: region, time zone, phone, URLs, required text. Exact messages.
    #[test]
    fn clinic_errors() {
        let sets: &[(&[&str], &str)] = &[
            (
                &["clinic.region=ZZZ"],
                "--set clinic.region=ZZZ: `clinic.region`: \"ZZZ\" is not an ISO 3166 region code (e.g. \"US\", \"GB\")",
            ),
            (
                &["clinic.region=\"\""],
                "--set clinic.region=\"\": `clinic.region`: must not be empty",
            ),
            (
                &["clinic.timezone=Mars/Base"],
                "--set clinic.timezone=Mars/Base: `clinic.timezone`: \"Mars/Base\" is not an IANA time zone (e.g. \"America/Chicago\", \"Europe/London\")",
            ),
            (
                &["clinic.timezone=Mars/Base", "campaign.not_before=x"],
                "--set clinic.timezone=Mars/Base: `clinic.timezone`: \"Mars/Base\" is not an IANA time zone (e.g. \"America/Chicago\", \"Europe/London\")",
            ),
            (
                &["clinic.phone=\"12\""],
                "--set clinic.phone=\"12\": `clinic.phone`: \"12\" is not a phone number",
            ),
            (
                &["clinic.website=riverside.example"],
                "--set clinic.website=riverside.example: `clinic.website`: \"riverside.example\" is not an http(s) URL (e.g. https://riverside.example/book)",
            ),
            (
                &["clinic.booking_url=\"https:// x\""],
                "--set clinic.booking_url=\"https:// x\": `clinic.booking_url`: \"https:// x\" is not an http(s) URL (e.g. https://riverside.example/book)",
            ),
            (
                &["clinic.name=\"  \""],
                "--set clinic.name=\"  \": `clinic.name`: must not be empty",
            ),
            (
                &["clinic.address=\"\""],
                "--set clinic.address=\"\": `clinic.address`: must not be empty",
            ),
        ];
        let edits: &[(&str, &str, &str)] = &[(
            "address = \"12 Example St\"\n",
            "",
            "campaign.toml:5: `clinic.address`: required key is missing",
        )];
        assert_errors(sets, edits);
    }

    /// `[contacts]` and `[templates]`. Exact messages.
    #[test]
    fn contacts_and_templates_errors() {
        let sets: &[(&[&str], &str)] = &[
            (
                &["contacts.encoding=klingon"],
                "--set contacts.encoding=klingon: `contacts.encoding`: unknown encoding \"klingon\" (e.g. \"utf-8\", \"windows-1252\", \"auto\")",
            ),
            (
                &["contacts.delimiter=\":\""],
                "--set contacts.delimiter=\":\": `contacts.delimiter`: \":\": use \",\", \";\", \"tab\", \"|\" or \"auto\"",
            ),
            (
                &["contacts.columns.mail=Email"],
                "--set contacts.columns.mail=Email: `contacts.columns.mail`: unknown contact field `mail`; mappable fields: id, first_name, last_name, email, phone, channel, email_consent, sms_consent, timezone",
            ),
            (
                &["contacts.columns.email=\" \""],
                "--set contacts.columns.email=\" \": `contacts.columns.email`: header name must not be empty",
            ),
            (
                &["templates.dir=\"\""],
                "--set templates.dir=\"\": `templates.dir`: must not be empty",
            ),
        ];
        let edits: &[(&str, &str, &str)] = &[(
            "[templates]\ndir = \"templates\"\n",
            "",
            "campaign.toml: `templates`: required key is missing",
        )];
        assert_errors(sets, edits);
    }

    /// `[sending]`: limits, rates, the retry delay, and which is reported first. Exact messages.
    #[test]
    fn sending_errors() {
        let sets: &[(&[&str], &str)] = &[
            (
                &["sending.concurrency=0"],
                "--set sending.concurrency=0: `sending.concurrency`: must be between 1 and 1024",
            ),
            (
                &["sending.concurrency=2000"],
                "--set sending.concurrency=2000: `sending.concurrency`: must be between 1 and 1024",
            ),
            (
                &["sending.max_attempts=0"],
                "--set sending.max_attempts=0: `sending.max_attempts`: must be at least 1",
            ),
            (
                &["sending.max_consecutive_failures=0"],
                "--set sending.max_consecutive_failures=0: `sending.max_consecutive_failures`: must be at least 1",
            ),
            (
                &["sending.email_rate=fast"],
                "--set sending.email_rate=fast: `sending.email_rate`: \"fast\" is not a rate: write e.g. \"20/s\", \"60/min\", \"unlimited\"",
            ),
            (
                &["sending.email_rate=\"x/s\""],
                "--set sending.email_rate=\"x/s\": `sending.email_rate`: \"x\" is not a whole number of messages",
            ),
            (
                &["sending.sms_rate=\"5/day\""],
                "--set sending.sms_rate=\"5/day\": `sending.sms_rate`: unknown rate unit \"day\": use s, min or h",
            ),
            (
                &["sending.retry_delay=5x"],
                "--set sending.retry_delay=5x: `sending.retry_delay`: \"5x\" is not a duration: write e.g. \"30s\" or \"500ms\"",
            ),
            (
                &["sending.retry_delay=\"abcs\""],
                "--set sending.retry_delay=\"abcs\": `sending.retry_delay`: \"abcs\" is not a duration",
            ),
            (
                &["sending.retry_delay=\"0s\""],
                "--set sending.retry_delay=\"0s\": `sending.retry_delay`: \"0s\" must be positive",
            ),
            (
                &["sending.retry_delay=\"-1ms\""],
                "--set sending.retry_delay=\"-1ms\": `sending.retry_delay`: \"-1ms\" must be positive",
            ),
            (
                &["sending.concurrency=0", "sending.email_rate=fast"],
                "--set sending.concurrency=0: `sending.concurrency`: must be between 1 and 1024",
            ),
            (
                &["sending.email_rate=fast", "sending.retry_delay=5x"],
                "--set sending.email_rate=fast: `sending.email_rate`: \"fast\" is not a rate: write e.g. \"20/s\", \"60/min\", \"unlimited\"",
            ),
        ];
        assert_errors(sets, &[]);
    }

    #[test]
    fn line_and_column() {
        assert_eq!(line_of("a\nbc\nd", 3), (2, 2));
        assert_eq!(line_of("abc", 0), (1, 1));
    }
}
