//! `[sms]` and its HTTP gateway: the sender, quiet hours and segment ceiling, and the gateway
//! presets. Twilio and Vonage are checked here, the generic preset in `generic`; each preset
//! refuses the keys only another one uses, and every URL the gateway's traffic takes must be
//! `https://` unless it stays on this machine or the campaign allows clear text.

use std::path::{Path, PathBuf};

use super::error::{ConfigError, Locator};
use super::generic::{GatewayAuth, GenericGateway, validate_generic};
use super::listen::{WebhookCheck, WebhookSettings, validate_webhook};
use super::raw::{RawGateway, RawSms};
use super::secrets::{SecretSource, secret_source};
use super::values::{QuietHours, check_url, is_loopback, parse_duration, parse_quiet_hours};
use crate::address::E164Phone;

/// Default quiet hours for SMS, in each patient's own time zone.
pub const DEFAULT_QUIET_HOURS: &str = "21:00-08:00";
/// Default ceiling on SMS segments per message (`check` flags anything longer).
pub const DEFAULT_MAX_SEGMENTS: usize = 3;
/// The SMS outbox (JSON lines), relative to the campaign file.
pub const DEFAULT_SMS_OUTBOX: &str = "outbox/sms.jsonl";
/// Default request timeout for an SMS gateway. A reply that does not come in time leaves the
/// message `unknown` (it may have gone), so this is generous.
pub const DEFAULT_GATEWAY_TIMEOUT: &str = "30s";
/// Twilio's API root.
pub const TWILIO_BASE_URL: &str = "https://api.twilio.com";
/// Vonage's legacy SMS API root (the preset posts to `{base_url}/json`).
pub const VONAGE_BASE_URL: &str = "https://rest.nexmo.com/sms";

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

/// HTTP gateway settings, checked for the preset they serve.
#[derive(Debug, Clone)]
pub struct GatewaySettings {
    pub preset: GatewayPreset,
    /// The API root, without a trailing slash (the preset's default when not given).
    pub base_url: String,
    /// Twilio: the Account SID. Vonage: the API key (`api_key` or `account`). Generic: the user
    /// name for basic auth.
    pub account: Option<String>,
    /// Twilio: the auth token. Vonage: the API secret. Generic: the password, bearer token or
    /// header value.
    pub token: Option<SecretSource>,
    pub messaging_service_sid: Option<String>,
    pub status_callback: Option<String>,
    /// Whole-request timeout: connect, send, reply.
    pub timeout: std::time::Duration,
    /// Present for the generic preset.
    pub generic: Option<Box<GenericGateway>>,
    pub outbox: PathBuf,
    /// How `outreach listen` checks this gateway's webhooks (`None`: it does not take them).
    pub webhook: Option<Box<WebhookSettings>>,
}

/// Known gateway dialects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GatewayPreset {
    Twilio,
    Vonage,
    Generic,
}

impl GatewaySettings {
    /// The error codes this gateway reports that suppress a number.
    pub fn error_codes(&self) -> crate::webhook::ErrorCodes {
        match self.preset {
            GatewayPreset::Twilio => crate::webhook::ErrorCodes::Twilio,
            GatewayPreset::Vonage => crate::webhook::ErrorCodes::Vonage,
            GatewayPreset::Generic => crate::webhook::ErrorCodes::Generic {
                opted_out: self
                    .generic
                    .as_ref()
                    .map(|g| g.opted_out_codes.clone())
                    .unwrap_or_default(),
            },
        }
    }
}

impl GatewayPreset {
    /// The name the campaign file gives it.
    fn name(self) -> &'static str {
        match self {
            GatewayPreset::Twilio => "twilio",
            GatewayPreset::Vonage => "vonage",
            GatewayPreset::Generic => "generic",
        }
    }
}

/// Checks `[sms]`; `region` reads a sender number written without its country code.
pub(super) fn validate_sms(
    rs: RawSms,
    loc: &Locator,
    dir: &Path,
    region: phonenumber::country::Id,
    listen_callback: Option<String>,
) -> Result<SmsSettings, ConfigError> {
    let from = sender(loc.non_empty(rs.from, "sms.from")?, region, loc)?;
    let outbox = loc.resolve(
        "sms.outbox",
        rs.outbox.as_deref().unwrap_or(DEFAULT_SMS_OUTBOX),
        dir,
    );
    let transport = match rs.transport.as_deref().unwrap_or("file") {
        "file" => SmsTransport::File { outbox },
        "http" => SmsTransport::Http(validate_gateway(
            loc.required(rs.gateway, "sms.gateway")?,
            loc,
            dir,
            outbox,
            listen_callback,
        )?),
        other => {
            return Err(loc.invalid(
                "sms.transport",
                format!("unknown transport {other:?}: use \"file\" or \"http\""),
            ));
        }
    };
    let quiet_hours = loc.at(
        "sms.quiet_hours",
        parse_quiet_hours(rs.quiet_hours.as_deref().unwrap_or(DEFAULT_QUIET_HOURS)),
    )?;
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

/// `sms.from`: a phone number (made E.164) or an alphanumeric sender id (up to 11 characters).
fn sender(
    from: String,
    region: phonenumber::country::Id,
    loc: &Locator,
) -> Result<String, ConfigError> {
    if from.chars().any(|c| c.is_ascii_digit()) && !from.chars().any(|c| c.is_ascii_alphabetic()) {
        loc.at("sms.from", E164Phone::parse(&from, region))
            .map(|p| p.to_string())
    } else if from.len() <= 11 && from.chars().all(|c| c.is_ascii_alphanumeric() || c == ' ') {
        Ok(from)
    } else {
        Err(loc.invalid(
            "sms.from",
            "must be a phone number or an alphanumeric sender id of at most 11 characters",
        ))
    }
}

/// Checks `[sms.gateway]` for its preset; the SMS outbox stays known for a switch back to `file`.
fn validate_gateway(
    mut g: RawGateway,
    loc: &Locator,
    dir: &Path,
    outbox: PathBuf,
    listen_callback: Option<String>,
) -> Result<GatewaySettings, ConfigError> {
    let preset = preset(g.preset.as_deref(), loc)?;
    let webhook = match g.webhook.take() {
        Some(w) => Some(Box::new(validate_webhook(w, preset.name(), loc, dir)?)),
        // Twilio signs with the auth token: nothing more to say.
        None if preset == GatewayPreset::Twilio => Some(Box::new(WebhookSettings {
            check: WebhookCheck::Twilio(crate::webhook::TwilioAlgorithm::HmacSha1),
            key: None,
            accept_get: false,
            receipts: None,
        })),
        None => None,
    };
    refuse_keys_of_other_presets(&g, preset, loc)?;
    let base_url = base_url(g.base_url.as_deref(), preset, loc)?;
    if let Some(u) = &g.status_callback {
        loc.at("sms.gateway.status_callback", check_url(u))?;
    }
    let token = secret_source(
        g.token_env.as_deref(),
        g.token_file.as_deref(),
        loc,
        "sms.gateway.token",
        dir,
    )?;
    let timeout = loc.at(
        "sms.gateway.timeout",
        parse_duration(g.timeout.as_deref().unwrap_or(DEFAULT_GATEWAY_TIMEOUT)),
    )?;
    let need_token = |what: &str| match token {
        Some(_) => Ok(()),
        None => Err(loc.invalid(
            "sms.gateway.token_env",
            format!(
                "the {} preset needs {what}: name it with token_env or token_file",
                preset.name()
            ),
        )),
    };
    let account = g.account.as_deref().map(|a| a.trim().to_string());
    let (account, generic) = match preset {
        GatewayPreset::Twilio => {
            check_twilio_sids(account.as_deref(), g.messaging_service_sid.as_deref(), loc)?;
            need_token("the auth token")?;
            (account, None)
        }
        GatewayPreset::Vonage => {
            let api_key = vonage_api_key(g.api_key.as_deref(), account, loc)?;
            need_token("the API secret")?;
            (Some(api_key), None)
        }
        GatewayPreset::Generic => {
            let generic = validate_generic(&g, loc, &base_url)?;
            if generic.auth != GatewayAuth::None {
                need_token("a secret for its auth")?;
            }
            if generic.auth == GatewayAuth::Basic && account.is_none() {
                return Err(loc.invalid(
                    "sms.gateway.account",
                    "auth = \"basic\" needs account (the user name)",
                ));
            }
            (account, Some(Box::new(generic)))
        }
    };
    if !g.allow_insecure.unwrap_or(false) {
        refuse_clear_text(&base_url, &g.status_callback, generic.as_deref(), loc)?;
    }
    Ok(GatewaySettings {
        preset,
        base_url,
        account,
        token,
        messaging_service_sid: g.messaging_service_sid,
        // `outreach listen`'s receipts URL unless the campaign names another.
        status_callback: g.status_callback.or(listen_callback),
        timeout,
        generic,
        outbox,
        webhook,
    })
}

/// `sms.gateway.preset`, which has no default.
fn preset(preset: Option<&str>, loc: &Locator) -> Result<GatewayPreset, ConfigError> {
    match preset.unwrap_or("") {
        "twilio" => Ok(GatewayPreset::Twilio),
        "vonage" => Ok(GatewayPreset::Vonage),
        "generic" => Ok(GatewayPreset::Generic),
        other => Err(loc.invalid(
            "sms.gateway.preset",
            format!("unknown preset {other:?}: use \"twilio\", \"vonage\" or \"generic\""),
        )),
    }
}

/// A key another preset uses is refused, not silently ignored.
fn refuse_keys_of_other_presets(
    g: &RawGateway,
    preset: GatewayPreset,
    loc: &Locator,
) -> Result<(), ConfigError> {
    let only = |present: bool, key: &str, presets: &str| {
        if present {
            Err(loc.invalid(
                &format!("sms.gateway.{key}"),
                format!(
                    "is not used by the {} preset (only by {presets})",
                    preset.name()
                ),
            ))
        } else {
            Ok(())
        }
    };
    let generic_only = [
        ("method", g.method.is_some()),
        ("url", g.url.is_some()),
        ("auth", g.auth.is_some()),
        ("auth_header", g.auth_header.is_some()),
        ("body_format", g.body_format.is_some()),
        ("body_template", g.body_template.is_some()),
        ("success_status", g.success_status.is_some()),
        ("success_pointer", g.success_pointer.is_some()),
        ("success_value", g.success_value.is_some()),
        ("id_pointer", g.id_pointer.is_some()),
        ("error_pointer", g.error_pointer.is_some()),
        ("opted_out_codes", g.opted_out_codes.is_some()),
        ("permanent_codes", g.permanent_codes.is_some()),
        ("transient_codes", g.transient_codes.is_some()),
        ("check_url", g.check_url.is_some()),
        ("status_url", g.status_url.is_some()),
        ("status_pointer", g.status_pointer.is_some()),
        ("status_error_pointer", g.status_error_pointer.is_some()),
        ("status_delivered", g.status_delivered.is_some()),
        ("status_undelivered", g.status_undelivered.is_some()),
        ("status_pending", g.status_pending.is_some()),
    ];
    if preset != GatewayPreset::Generic {
        for (key, present) in generic_only {
            only(present, key, "generic")?;
        }
    }
    if preset != GatewayPreset::Twilio {
        only(
            g.messaging_service_sid.is_some(),
            "messaging_service_sid",
            "twilio",
        )?;
    }
    if preset != GatewayPreset::Vonage {
        only(g.api_key.is_some(), "api_key", "vonage")?;
    }
    Ok(())
}

/// `sms.gateway.base_url` without a trailing slash, else the preset's own (none for generic).
fn base_url(
    base_url: Option<&str>,
    preset: GatewayPreset,
    loc: &Locator,
) -> Result<String, ConfigError> {
    Ok(match (base_url, preset) {
        (Some(u), _) => {
            loc.at("sms.gateway.base_url", check_url(u))?;
            u.trim().trim_end_matches('/').to_string()
        }
        (None, GatewayPreset::Twilio) => TWILIO_BASE_URL.to_string(),
        (None, GatewayPreset::Vonage) => VONAGE_BASE_URL.to_string(),
        (None, GatewayPreset::Generic) => String::new(),
    })
}

/// Whether `s` is `prefix` followed by 32 hex digits (a Twilio SID).
fn is_sid(s: &str, prefix: &str) -> bool {
    s.len() == 34 && s.starts_with(prefix) && s[2..].chars().all(|c| c.is_ascii_hexdigit())
}

/// Twilio: the Account SID is required, and a Messaging Service SID must look like one.
fn check_twilio_sids(
    account: Option<&str>,
    messaging_service_sid: Option<&str>,
    loc: &Locator,
) -> Result<(), ConfigError> {
    let a = loc.required(account, "sms.gateway.account")?;
    if !is_sid(a, "AC") {
        return Err(loc.invalid(
            "sms.gateway.account",
            format!("{a:?} is not a Twilio Account SID (AC followed by 32 hex digits)"),
        ));
    }
    if let Some(m) = messaging_service_sid
        && !is_sid(m, "MG")
    {
        return Err(loc.invalid(
            "sms.gateway.messaging_service_sid",
            format!("{m:?} is not a Messaging Service SID (MG followed by 32 hex digits)"),
        ));
    }
    Ok(())
}

/// Vonage: the API key, given as `api_key` (Vonage's own word) or `account` (so a campaign can
/// switch preset by changing `preset` and the values alone), not both.
fn vonage_api_key(
    api_key: Option<&str>,
    account: Option<String>,
    loc: &Locator,
) -> Result<String, ConfigError> {
    let (key, value) = match (api_key, account) {
        (Some(_), Some(_)) => {
            return Err(loc.invalid(
                "sms.gateway.api_key",
                "give either api_key or account (the same thing for Vonage), not both",
            ));
        }
        (Some(k), None) => ("sms.gateway.api_key", k.trim().to_string()),
        (None, Some(a)) => ("sms.gateway.account", a),
        (None, None) => {
            return Err(loc.invalid("sms.gateway.api_key", "required key is missing"));
        }
    };
    // The API description: exactly 8 characters.
    if value.len() != 8 || !value.chars().all(|c| c.is_ascii_alphanumeric()) {
        return Err(loc.invalid(
            key,
            format!("{value:?} is not a Vonage API key (8 letters and digits)"),
        ));
    }
    Ok(value)
}

/// TLS by default, as for SMTP: the gateway is sent credentials and patients' numbers and
/// messages, and the status callback is sent their numbers, so a plain `http://` URL is refused
/// unless it reaches this machine (a local relay, tests) or the campaign sets
/// `sms.gateway.allow_insecure = true`.
fn refuse_clear_text(
    base_url: &str,
    status_callback: &Option<String>,
    generic: Option<&GenericGateway>,
    loc: &Locator,
) -> Result<(), ConfigError> {
    const REQUESTS: &str = "the gateway's credentials and patients' numbers and messages";
    let mut urls = vec![("base_url", base_url, REQUESTS)];
    if let Some(g) = generic {
        // A path joined to base_url was checked with it.
        urls.push(("url", &g.url, REQUESTS));
        if let Some(u) = &g.check_url {
            urls.push(("check_url", u, "the gateway's credentials"));
        }
        if let Some(s) = &g.status {
            urls.push(("status_url", &s.url, "the gateway's credentials"));
        }
    }
    if let Some(u) = status_callback {
        urls.push((
            "status_callback",
            u,
            "patients' numbers and delivery statuses",
        ));
    }
    for (key, url, what) in urls {
        // Read as the HTTP client reads it (`HTTP://`, `\\` before an `@`: the scheme and host
        // it will use, not the ones a string search would see). A URL that does not parse is
        // reported where it is read.
        let clear = reqwest::Url::parse(url).is_ok_and(|u| u.scheme() == "http");
        if clear && !on_this_machine(url) {
            return Err(loc.invalid(
                &format!("sms.gateway.{key}"),
                format!(
                    "{url:?} would carry {what} in clear text: use https://, or set \
                     sms.gateway.allow_insecure = true (plain http is allowed to this machine)"
                ),
            ));
        }
    }
    Ok(())
}

/// Whether `url`'s host is this machine (`localhost` or a loopback address), as the HTTP
/// client parses it.
pub fn on_this_machine(url: &str) -> bool {
    reqwest::Url::parse(url).is_ok_and(|u| {
        u.host_str()
            .is_some_and(|h| is_loopback(h.trim_start_matches('[').trim_end_matches(']')))
    })
}

#[cfg(test)]
mod tests {
    use crate::config::testing::{assert_errors, assert_errors_after};

    /// `[sms]` outside its gateway; `[sms]` is checked before `[sending]`. Exact messages.
    #[test]
    fn sms_errors() {
        let sets: &[(&[&str], &str)] = &[
            (
                &["sending.concurrency=0", "sms.max_segments=0"],
                "--set sms.max_segments=0: `sms.max_segments`: must be at least 1",
            ),
            (
                &["sms.quiet_hours=\"9pm-8am\""],
                "--set sms.quiet_hours=\"9pm-8am\": `sms.quiet_hours`: \"9pm\" is not a time of day (HH:MM)",
            ),
            (
                &["sms.quiet_hours=\"10:00-10:00\""],
                "--set sms.quiet_hours=\"10:00-10:00\": `sms.quiet_hours`: start and end are equal; use \"\" to turn quiet hours off",
            ),
            (
                &["sms.quiet_hours=nine"],
                "--set sms.quiet_hours=nine: `sms.quiet_hours`: \"nine\" is not a window: write e.g. \"21:00-08:00\", or \"\" for none",
            ),
            (
                &["sms.quiet_hours=\"10:00-25:00\""],
                "--set sms.quiet_hours=\"10:00-25:00\": `sms.quiet_hours`: \"25:00\" is not a time of day (HH:MM)",
            ),
            (
                &["sms.max_segments=0"],
                "--set sms.max_segments=0: `sms.max_segments`: must be at least 1",
            ),
            (
                &["sms.from=\"a very long sender\""],
                "--set sms.from=\"a very long sender\": `sms.from`: must be a phone number or an alphanumeric sender id of at most 11 characters",
            ),
            (
                &["sms.from=\"12\""],
                "--set sms.from=\"12\": `sms.from`: \"12\" is not a phone number",
            ),
            (
                &["sms.transport=pigeon"],
                "--set sms.transport=pigeon: `sms.transport`: unknown transport \"pigeon\": use \"file\" or \"http\"",
            ),
        ];
        assert_errors(sets, &[]);
    }

    /// `[sms.gateway]` whatever the preset: the preset itself, keys only another preset uses, URLs,
    /// the token source, the timeout. Exact messages.
    #[test]
    fn gateway_errors() {
        let cases: &[(&[&str], &str)] = &[
            (
                &[],
                "campaign.toml:24: `sms.gateway`: required key is missing",
            ),
            (
                &["sms.gateway.preset=carrier-pigeon"],
                "--set sms.gateway.preset=carrier-pigeon: `sms.gateway.preset`: unknown preset \"carrier-pigeon\": use \"twilio\", \"vonage\" or \"generic\"",
            ),
            (
                &["sms.gateway.preset=twilio", "sms.gateway.method=GET"],
                "--set sms.gateway.method=GET: `sms.gateway.method`: is not used by the twilio preset (only by generic)",
            ),
            (
                &["sms.gateway.preset=twilio", "sms.gateway.check_url=x"],
                "--set sms.gateway.check_url=x: `sms.gateway.check_url`: is not used by the twilio preset (only by generic)",
            ),
            (
                &["sms.gateway.preset=twilio", "sms.gateway.api_key=abcd1234"],
                "--set sms.gateway.api_key=abcd1234: `sms.gateway.api_key`: is not used by the twilio preset (only by vonage)",
            ),
            (
                &[
                    "sms.gateway.preset=vonage",
                    "sms.gateway.messaging_service_sid=MG1",
                ],
                "--set sms.gateway.messaging_service_sid=MG1: `sms.gateway.messaging_service_sid`: is not used by the vonage preset (only by twilio)",
            ),
            (
                &[
                    "sms.gateway.preset=twilio",
                    "sms.gateway.base_url=api.twilio.com",
                ],
                "--set sms.gateway.base_url=api.twilio.com: `sms.gateway.base_url`: \"api.twilio.com\" is not an http(s) URL (e.g. https://riverside.example/book)",
            ),
            (
                &[
                    "sms.gateway.preset=twilio",
                    "sms.gateway.status_callback=nope",
                ],
                "--set sms.gateway.status_callback=nope: `sms.gateway.status_callback`: \"nope\" is not an http(s) URL (e.g. https://riverside.example/book)",
            ),
            (
                &[
                    "sms.gateway.preset=twilio",
                    "sms.gateway.token_env=T",
                    "sms.gateway.token_file=t",
                ],
                "--set sms.gateway.token_file=t: `sms.gateway.token_file`: give either sms.gateway.token_env or sms.gateway.token_file, not both",
            ),
            (
                &["sms.gateway.preset=twilio", "sms.gateway.timeout=\"30\""],
                "--set sms.gateway.timeout=\"30\": `sms.gateway.timeout`: \"30\" is not a duration: write e.g. \"30s\" or \"500ms\"",
            ),
            (
                &["sms.gateway.preset=generic", "sms.gateway.api_key=abcd1234"],
                "--set sms.gateway.api_key=abcd1234: `sms.gateway.api_key`: is not used by the generic preset (only by vonage)",
            ),
        ];
        assert_errors_after(&["sms.transport=http"], cases);
    }

    /// The Twilio preset: its SIDs, its token, clear text. Exact messages.
    #[test]
    fn twilio_errors() {
        let cases: &[(&[&str], &str)] = &[
            (
                &[],
                "campaign.toml:24: `sms.gateway.account`: required key is missing",
            ),
            (
                &["sms.gateway.account=AC123"],
                "--set sms.gateway.account=AC123: `sms.gateway.account`: \"AC123\" is not a Twilio Account SID (AC followed by 32 hex digits)",
            ),
            (
                &["sms.gateway.account=ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"],
                "campaign.toml:24: `sms.gateway.token_env`: the twilio preset needs the auth token: name it with token_env or token_file",
            ),
            (
                &[
                    "sms.gateway.account=ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
                    "sms.gateway.messaging_service_sid=MG1",
                    "sms.gateway.token_env=T",
                ],
                "--set sms.gateway.messaging_service_sid=MG1: `sms.gateway.messaging_service_sid`: \"MG1\" is not a Messaging Service SID (MG followed by 32 hex digits)",
            ),
            (
                &[
                    "sms.gateway.account=ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
                    "sms.gateway.token_env=T",
                    "sms.gateway.base_url=\"http://api.twilio.example/\"",
                ],
                "--set sms.gateway.base_url=\"http://api.twilio.example/\": `sms.gateway.base_url`: \"http://api.twilio.example\" would carry the gateway's credentials and patients' numbers and messages in clear text: use https://, or set sms.gateway.allow_insecure = true (plain http is allowed to this machine)",
            ),
            (
                &[
                    "sms.gateway.account=ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
                    "sms.gateway.token_env=T",
                    "sms.gateway.status_callback=\"http://x.example/cb\"",
                ],
                "--set sms.gateway.status_callback=\"http://x.example/cb\": `sms.gateway.status_callback`: \"http://x.example/cb\" would carry patients' numbers and delivery statuses in clear text: use https://, or set sms.gateway.allow_insecure = true (plain http is allowed to this machine)",
            ),
        ];
        assert_errors_after(&["sms.transport=http", "sms.gateway.preset=twilio"], cases);
    }

    /// The Vonage preset: its API key (as `api_key` or `account`), its secret, clear text. Exact
    /// messages.
    #[test]
    fn vonage_errors() {
        let cases: &[(&[&str], &str)] = &[
            (
                &[],
                "campaign.toml:24: `sms.gateway.api_key`: required key is missing",
            ),
            (
                &[
                    "sms.gateway.api_key=abcd1234",
                    "sms.gateway.account=abcd1234",
                ],
                "--set sms.gateway.api_key=abcd1234: `sms.gateway.api_key`: give either api_key or account (the same thing for Vonage), not both",
            ),
            (
                &["sms.gateway.account=abc"],
                "--set sms.gateway.account=abc: `sms.gateway.account`: \"abc\" is not a Vonage API key (8 letters and digits)",
            ),
            (
                &["sms.gateway.api_key=\"abcd-123\""],
                "--set sms.gateway.api_key=\"abcd-123\": `sms.gateway.api_key`: \"abcd-123\" is not a Vonage API key (8 letters and digits)",
            ),
            (
                &["sms.gateway.api_key=abcd1234"],
                "campaign.toml:24: `sms.gateway.token_env`: the vonage preset needs the API secret: name it with token_env or token_file",
            ),
            (
                &[
                    "sms.gateway.api_key=abcd1234",
                    "sms.gateway.token_env=T",
                    "sms.gateway.base_url=\"http://rest.example/sms\"",
                ],
                "--set sms.gateway.base_url=\"http://rest.example/sms\": `sms.gateway.base_url`: \"http://rest.example/sms\" would carry the gateway's credentials and patients' numbers and messages in clear text: use https://, or set sms.gateway.allow_insecure = true (plain http is allowed to this machine)",
            ),
        ];
        assert_errors_after(&["sms.transport=http", "sms.gateway.preset=vonage"], cases);
    }
}
