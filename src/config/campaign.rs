//! The campaign as the rest of the program sees it: [`Campaign`] and the tables it owns
//! (`[campaign]`, `[clinic]`, `[contacts]`, `[templates]`, `[sending]`), checked here from their
//! raw form, step by step in the order the file reads; `[email]` and `[sms]` are checked by
//! `email` and `gateway`, `[campaign.utm]` by `utm`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use chrono_tz::Tz;

use super::email::{EmailSettings, validate_email};
use super::error::{ConfigError, Locator, Origin};
use super::feedback::{FeedbackSettings, validate_feedback};
use super::gateway::{SmsSettings, validate_sms};
use super::listen::{ListenSettings, validate_listen};
use super::raw::{RawClinic, RawConfig, RawContacts, RawRate, RawSending};
use super::report::{ReportSettings, validate_report};
use super::store::{StateUrl, Store, state_url};
use super::utm::{UtmSettings, validate_utm};
use super::values::{
    FrequencyCap, Rate, WindowEdge, check_url, parse_duration, parse_frequency_cap, parse_rate,
    parse_window_edge,
};
use crate::address::E164Phone;
use crate::audience::{DateForm, Filter};
use crate::language::Language;
use crate::model::{Channel, parse_timezone};

/// Default per-channel rates.
pub const DEFAULT_EMAIL_RATE: &str = "20/s";
pub const DEFAULT_SMS_RATE: &str = "1/s";
/// Default number of messages on their way at once.
pub const DEFAULT_CONCURRENCY: usize = 8;
/// Default tries per message, the first included.
pub const DEFAULT_MAX_ATTEMPTS: u32 = 4;
/// Default number of failures in a row that stops a run.
pub const DEFAULT_MAX_CONSECUTIVE_FAILURES: u32 = 20;
/// Default delay before the first retry.
pub const DEFAULT_RETRY_DELAY: &str = "2s";
/// Default language of a campaign's templates.
pub const DEFAULT_LANGUAGE: &str = "en";
/// Default directory of the ledger, relative to the campaign file.
pub const DEFAULT_STATE_DIR: &str = ".outreach";

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
    /// The language of the templates directory's own files: what a contact gets whose language
    /// has no folder of its own (`campaign.language`, default [`DEFAULT_LANGUAGE`]).
    pub language: Language,
    /// When the campaign may send (`not_before` / `not_after`).
    pub window: Window,
    /// `[campaign.utm]`: campaign tags on the clinic's links; `None` (the default) tags nothing.
    pub utm: Option<UtmSettings>,
    pub clinic: Clinic,
    pub contacts: ContactsSource,
    pub templates_dir: PathBuf,
    /// Present when email is enabled.
    pub email: Option<EmailSettings>,
    /// Present when SMS is enabled.
    pub sms: Option<SmsSettings>,
    pub sending: Sending,
    /// `[listen]`: where `outreach listen` is reached, if it is.
    pub listen: Option<ListenSettings>,
    /// `[feedback]`: the mailbox `outreach bounces` reads, if any.
    pub feedback: Option<FeedbackSettings>,
    /// `[report]`: the SMS price the HTML report's cost uses.
    pub report: ReportSettings,
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
    /// `contacts.where`: the rows the campaign is for, and where the key was written (for an
    /// error about a column the file lacks, found only once the file is read).
    pub audience: Option<(Filter, Origin)>,
    /// `contacts.date_formats`: column → how its dates are written, for the audience filter.
    pub date_forms: BTreeMap<String, DateForm>,
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
    "consent_source",
    "language",
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
    /// At most this many messages to one address per channel within a window, across every
    /// campaign of the state directory.
    pub max_per_patient: Option<FrequencyCap>,
    pub state_dir: PathBuf,
    /// `state_url`: the PostgreSQL database that holds the ledger instead of `state_dir`.
    pub state_url: Option<StateUrl>,
    /// The `--set` argument that gave `state_dir`, when one did (`send` then refuses a ledger
    /// that has never seen the campaign, unless `--new-ledger`).
    pub state_dir_override: Option<String>,
}

/// Checks the whole file: `[campaign]`, `[clinic]`, `[contacts]`, `[templates]`, the tables of
/// the enabled channels, then `[sending]`, reporting the first error in that order.
pub(super) fn validate(
    path: &Path,
    raw: RawConfig,
    loc: &Locator,
) -> Result<Campaign, ConfigError> {
    let dir = base_dir(path);
    let rc = loc.required(raw.campaign, "campaign")?;
    let id = campaign_id(rc.id, loc)?;
    let name = rc.name.unwrap_or_else(|| id.clone());
    let channels = channels(rc.channels, loc)?;
    let language = Language::parse(rc.language.as_deref().unwrap_or(DEFAULT_LANGUAGE))
        .map_err(|e| loc.invalid("campaign.language", e))?;
    let mut cl = loc.required(raw.clinic, "clinic")?;
    let place = place(cl.region.take(), cl.timezone.take(), loc)?;
    let window = window(rc.not_before, rc.not_after, place.timezone, loc)?;
    let region = place.region;
    let clinic = clinic(cl, place, loc)?;
    let utm = match rc.utm {
        Some(ru) => Some(validate_utm(
            ru,
            &id,
            [
                ("clinic.website", clinic.website.as_str()),
                ("clinic.booking_url", clinic.booking_url.as_str()),
            ],
            loc,
        )?),
        None => None,
    };
    let contacts = contacts(loc.required(raw.contacts, "contacts")?, loc, &dir)?;
    let templates = loc.required(raw.templates, "templates")?;
    let templates_dir = loc.non_empty(templates.dir, "templates.dir")?;
    let templates_dir = loc.resolve("templates.dir", &templates_dir, &dir);
    let listen = match raw.listen {
        Some(rl) => Some(validate_listen(rl, loc, &dir)?),
        None => None,
    };
    let email = if channels.contains(&Channel::Email) {
        Some(validate_email(
            loc.required(raw.email, "email")?,
            loc,
            &dir,
            listen.as_ref(),
        )?)
    } else {
        None
    };
    let sms = if channels.contains(&Channel::Sms) {
        let rs = loc.required(raw.sms, "sms")?;
        let callback = listen.as_ref().map(|l| l.status_url(&id));
        Some(validate_sms(rs, loc, &dir, region, callback)?)
    } else {
        None
    };
    Ok(Campaign {
        file: path.to_path_buf(),
        id,
        name,
        channels,
        require_consent: rc.require_consent.unwrap_or(true),
        require_approval: rc.require_approval.unwrap_or(false),
        language,
        window,
        utm,
        clinic,
        contacts,
        templates_dir,
        email,
        sms,
        sending: sending(raw.sending.unwrap_or_default(), loc, &dir)?,
        listen,
        feedback: match raw.feedback {
            Some(rf) => Some(validate_feedback(rf, loc, &dir)?),
            None => None,
        },
        report: validate_report(raw.report.unwrap_or_default(), loc)?,
    })
}

/// The directory relative paths in the file are taken from: the campaign file's own.
fn base_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// What a `campaign.id` may hold, said to whoever wrote another: it names files and ledger rows.
pub const ID_RULE: &str =
    "use letters, digits, '-', '_' and '.' only (it names files and ledger rows)";

/// Whether `id` can be a `campaign.id` ([`ID_RULE`]).
pub fn is_campaign_id(id: &str) -> bool {
    !id.is_empty()
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// `campaign.id`, which names files and ledger rows.
fn campaign_id(id: Option<String>, loc: &Locator) -> Result<String, ConfigError> {
    let id = loc.non_empty(id, "campaign.id")?;
    if !is_campaign_id(&id) {
        return Err(loc.invalid("campaign.id", ID_RULE));
    }
    Ok(id)
}

/// `campaign.channels` (both unless given), each once, email first.
fn channels(written: Option<Vec<String>>, loc: &Locator) -> Result<Vec<Channel>, ConfigError> {
    let mut channels = Vec::new();
    for c in written.unwrap_or_else(|| vec!["email".into(), "sms".into()]) {
        let ch = loc.at("campaign.channels", Channel::from_str(&c))?;
        if !channels.contains(&ch) {
            channels.push(ch);
        }
    }
    if channels.is_empty() {
        return Err(loc.invalid("campaign.channels", "enable at least one channel"));
    }
    channels.sort();
    Ok(channels)
}

/// Where the clinic is, read before the rest: the window's dates are in its time zone, and its
/// region reads phone numbers written without a country code.
struct Place {
    region_code: String,
    region: phonenumber::country::Id,
    timezone: Tz,
}

/// `clinic.region` and `clinic.timezone`.
fn place(
    region: Option<String>,
    timezone: Option<String>,
    loc: &Locator,
) -> Result<Place, ConfigError> {
    let region_code = loc.non_empty(region, "clinic.region")?.to_ascii_uppercase();
    let region = phonenumber::country::Id::from_str(&region_code).map_err(|_| {
        loc.invalid(
            "clinic.region",
            format!("{region_code:?} is not an ISO 3166 region code (e.g. \"US\", \"GB\")"),
        )
    })?;
    let timezone = loc.non_empty(timezone, "clinic.timezone")?;
    let timezone = loc.at("clinic.timezone", parse_timezone(&timezone))?;
    Ok(Place {
        region_code,
        region,
        timezone,
    })
}

/// `campaign.not_before` and `campaign.not_after`, in the clinic's time zone; the window they
/// leave must not be empty.
fn window(
    not_before: Option<toml::Value>,
    not_after: Option<toml::Value>,
    timezone: Tz,
    loc: &Locator,
) -> Result<Window, ConfigError> {
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
        not_before: edge(not_before, "campaign.not_before", false)?,
        not_after: edge(not_after, "campaign.not_after", true)?,
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
    Ok(window)
}

/// The rest of `[clinic]`, once its `place` is known.
fn clinic(cl: RawClinic, place: Place, loc: &Locator) -> Result<Clinic, ConfigError> {
    let phone = loc.non_empty(cl.phone, "clinic.phone")?;
    let phone_e164 = loc
        .at("clinic.phone", E164Phone::parse(&phone, place.region))?
        .to_string();
    let website = loc.non_empty(cl.website, "clinic.website")?;
    loc.at("clinic.website", check_url(&website))?;
    let booking_url = loc.non_empty(cl.booking_url, "clinic.booking_url")?;
    loc.at("clinic.booking_url", check_url(&booking_url))?;
    Ok(Clinic {
        name: loc.non_empty(cl.name, "clinic.name")?,
        phone,
        phone_e164,
        address: loc.non_empty(cl.address, "clinic.address")?,
        website,
        booking_url,
        timezone: place.timezone,
        region: place.region,
        region_code: place.region_code,
    })
}

/// `[contacts]`: the file, its suppression lists, and how to read it.
fn contacts(co: RawContacts, loc: &Locator, dir: &Path) -> Result<ContactsSource, ConfigError> {
    let path = loc.non_empty(co.path, "contacts.path")?;
    let suppress = co
        .suppress
        .unwrap_or_default()
        .iter()
        .map(|s| loc.resolve("contacts.suppress", s, dir))
        .collect();
    let encoding = match co.encoding.as_deref().map(str::trim) {
        None | Some("") | Some("auto") => None,
        Some(label) => Some(
            encoding_rs::Encoding::for_label(label.as_bytes()).ok_or_else(|| {
                loc.invalid(
                    "contacts.encoding",
                    format!(
                        "unknown encoding {label:?} (e.g. \"utf-8\", \"windows-1252\", \"auto\")"
                    ),
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
    Ok(ContactsSource {
        path: loc.resolve("contacts.path", &path, dir),
        suppress,
        encoding,
        delimiter,
        columns: columns(co.columns.unwrap_or_default(), loc)?,
        audience: match co.filter {
            Some(text) if !text.trim().is_empty() => Some((
                loc.at("contacts.where", Filter::parse(&text))?,
                loc.origin("contacts.where"),
            )),
            _ => None,
        },
        date_forms: co
            .date_formats
            .unwrap_or_default()
            .into_iter()
            .map(|(column, form)| {
                let key = format!("contacts.date_formats.{column}");
                Ok((column, loc.at(&key, form.parse::<DateForm>())?))
            })
            .collect::<Result<_, ConfigError>>()?,
    })
}

/// `[contacts.columns]`: standard field → the header a file uses for it.
fn columns(
    written: BTreeMap<String, String>,
    loc: &Locator,
) -> Result<BTreeMap<String, String>, ConfigError> {
    let mut columns = BTreeMap::new();
    for (field, header) in written {
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
    Ok(columns)
}

/// `[sending]`, every key optional.
fn sending(rs: RawSending, loc: &Locator, dir: &Path) -> Result<Sending, ConfigError> {
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
    Ok(Sending {
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
        max_per_patient: match rs.max_per_patient {
            None => None,
            Some(v) => Some(loc.at("sending.max_per_patient", parse_frequency_cap(&v))?),
        },
        state_dir: loc.resolve(
            "sending.state_dir",
            rs.state_dir.as_deref().unwrap_or(DEFAULT_STATE_DIR),
            dir,
        ),
        state_url: state_url(
            rs.state_url.as_deref(),
            rs.state_password_env.as_deref(),
            rs.state_password_file.as_deref(),
            loc,
            dir,
        )?,
        state_dir_override: loc.override_around("sending.state_dir").map(str::to_string),
    })
}

impl Sending {
    /// Where the ledger is.
    pub fn store(&self) -> Store {
        Store {
            dir: self.state_dir.clone(),
            url: self.state_url.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::config::testing::assert_errors;

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
                "--set contacts.columns.mail=Email: `contacts.columns.mail`: unknown contact field `mail`; mappable fields: id, first_name, last_name, email, phone, channel, email_consent, sms_consent, timezone, consent_source, language",
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
}
