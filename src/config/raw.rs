//! The campaign file's raw form: exactly its shape, every field optional, unknown keys refused
//! (`deny_unknown_fields`), so serde reports a misspelt or mistyped key at its own line. Nothing
//! here is checked beyond its TOML type; `validate` turns these into a
//! [`Campaign`](super::Campaign). The types are private to `config`.

use std::collections::BTreeMap;

use serde::Deserialize;

/// The whole file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawConfig {
    pub campaign: Option<RawCampaign>,
    pub clinic: Option<RawClinic>,
    pub contacts: Option<RawContacts>,
    pub templates: Option<RawTemplates>,
    pub email: Option<RawEmail>,
    pub sms: Option<RawSms>,
    pub sending: Option<RawSending>,
    pub listen: Option<RawListen>,
    pub feedback: Option<RawFeedback>,
    pub report: Option<RawReport>,
}

/// `[report]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawReport {
    pub sms_price_per_segment: Option<String>,
    pub currency: Option<String>,
}

/// `[feedback]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawFeedback {
    pub maildir: Option<String>,
    pub mbox: Option<String>,
    pub imap: Option<RawImap>,
    pub soft_bounce_limit: Option<i64>,
    pub soft_bounce_window: Option<String>,
}

/// `[feedback.imap]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawImap {
    pub host: Option<String>,
    pub port: Option<u16>,
    pub tls: Option<String>,
    pub user: Option<String>,
    pub password_env: Option<String>,
    pub password_file: Option<String>,
    pub folder: Option<String>,
    pub ca_file: Option<String>,
    pub timeout: Option<String>,
    pub move_to: Option<String>,
    pub delete: Option<bool>,
}

/// `[listen]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawListen {
    pub base_url: Option<String>,
    pub addr: Option<String>,
    pub tls_cert_file: Option<String>,
    pub tls_key_file: Option<String>,
    pub help_reply: Option<bool>,
    pub allow_insecure: Option<bool>,
}

/// `[sms.gateway.webhook]`: the keys of every preset; `validate` refuses those the chosen one
/// does not use.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawWebhook {
    pub key_env: Option<String>,
    pub key_file: Option<String>,
    pub algorithm: Option<String>,
    pub allow_md5: Option<bool>,
    pub accept_get: Option<bool>,
    pub header: Option<String>,
    pub encoding: Option<String>,
    pub prefix: Option<String>,
    pub id_pointer: Option<String>,
    pub status_pointer: Option<String>,
    pub error_pointer: Option<String>,
    pub delivered: Option<Vec<String>>,
    pub undelivered: Option<Vec<String>>,
}

/// `[campaign]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawCampaign {
    pub id: Option<String>,
    pub name: Option<String>,
    pub channels: Option<Vec<String>>,
    pub require_consent: Option<bool>,
    pub require_approval: Option<bool>,
    /// The language of the templates directory's own files (BCP 47).
    pub language: Option<String>,
    /// A date or date-time, written as a TOML date (`2026-12-01`) or a string.
    pub not_before: Option<toml::Value>,
    pub not_after: Option<toml::Value>,
    pub utm: Option<RawUtm>,
}

/// `[campaign.utm]`: campaign tags on the clinic's links.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawUtm {
    pub source: Option<String>,
    pub medium: Option<String>,
    pub campaign: Option<String>,
    pub content: Option<String>,
    pub hosts: Option<Vec<String>>,
}

/// `[clinic]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawClinic {
    pub name: Option<String>,
    pub phone: Option<String>,
    pub address: Option<String>,
    pub website: Option<String>,
    pub booking_url: Option<String>,
    pub timezone: Option<String>,
    pub region: Option<String>,
}

/// `[contacts]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawContacts {
    pub path: Option<String>,
    pub suppress: Option<Vec<String>>,
    pub encoding: Option<String>,
    pub delimiter: Option<String>,
    pub columns: Option<BTreeMap<String, String>>,
    #[serde(rename = "where")]
    pub filter: Option<String>,
    pub date_formats: Option<BTreeMap<String, String>>,
}

/// `[templates]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTemplates {
    pub dir: Option<String>,
}

/// `[email]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawEmail {
    pub from: Option<String>,
    pub reply_to: Option<String>,
    pub transport: Option<String>,
    pub outbox: Option<String>,
    pub unsubscribe_url: Option<String>,
    pub unsubscribe_mailto: Option<String>,
    pub bounce_address: Option<String>,
    pub smtp: Option<RawSmtp>,
    pub dkim: Option<RawDkim>,
}

/// `[email.dkim]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawDkim {
    pub selector: Option<String>,
    pub domain: Option<String>,
    pub key_file: Option<String>,
    pub algorithm: Option<String>,
}

/// `[email.smtp]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSmtp {
    pub host: Option<String>,
    pub port: Option<u16>,
    pub tls: Option<String>,
    pub username: Option<String>,
    pub password_env: Option<String>,
    pub password_file: Option<String>,
    pub allow_insecure: Option<bool>,
    pub ca_file: Option<String>,
    pub timeout: Option<String>,
    pub final_timeout: Option<String>,
    pub helo: Option<String>,
}

/// `[sms]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSms {
    pub from: Option<String>,
    pub transport: Option<String>,
    pub outbox: Option<String>,
    pub quiet_hours: Option<String>,
    pub max_segments: Option<usize>,
    pub smart_encoding: Option<bool>,
    pub gateway: Option<RawGateway>,
}

/// `[sms.gateway]`: the keys of every preset; `validate` refuses those the chosen one does not use.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawGateway {
    pub preset: Option<String>,
    pub base_url: Option<String>,
    pub account: Option<String>,
    pub api_key: Option<String>,
    pub token_env: Option<String>,
    pub token_file: Option<String>,
    pub messaging_service_sid: Option<String>,
    pub status_callback: Option<String>,
    pub timeout: Option<String>,
    pub allow_insecure: Option<bool>,
    // The generic preset.
    pub method: Option<String>,
    pub url: Option<String>,
    pub auth: Option<String>,
    pub auth_header: Option<String>,
    pub body_format: Option<String>,
    pub body_template: Option<String>,
    pub success_status: Option<Vec<u16>>,
    pub success_pointer: Option<String>,
    pub success_value: Option<String>,
    pub id_pointer: Option<String>,
    pub error_pointer: Option<String>,
    pub opted_out_codes: Option<Vec<RawCode>>,
    pub permanent_codes: Option<Vec<RawCode>>,
    pub transient_codes: Option<Vec<RawCode>>,
    pub check_url: Option<String>,
    pub status_url: Option<String>,
    pub status_pointer: Option<String>,
    pub status_error_pointer: Option<String>,
    pub status_delivered: Option<Vec<String>>,
    pub status_undelivered: Option<Vec<String>>,
    pub status_pending: Option<Vec<String>>,
    pub webhook: Option<RawWebhook>,
}

/// A provider's error code, written as a string or a number (`"40300"` or `40300`).
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(super) enum RawCode {
    Text(String),
    Number(i64),
}

impl RawCode {
    pub(super) fn text(&self) -> String {
        match self {
            RawCode::Text(s) => s.trim().to_string(),
            RawCode::Number(n) => n.to_string(),
        }
    }
}

/// A rate written as text (`"20/s"`) or, for "off", as the number `0`.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(super) enum RawRate {
    Text(String),
    Number(i64),
}

impl RawRate {
    pub(super) fn text(self) -> String {
        match self {
            RawRate::Text(s) => s,
            RawRate::Number(n) => n.to_string(),
        }
    }
}

/// `[sending]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSending {
    pub email_rate: Option<RawRate>,
    pub sms_rate: Option<RawRate>,
    pub concurrency: Option<usize>,
    pub max_attempts: Option<u32>,
    pub max_consecutive_failures: Option<u32>,
    pub retry_delay: Option<String>,
    pub daily_cap: Option<u32>,
    pub max_per_patient: Option<String>,
    pub state_dir: Option<String>,
    pub state_url: Option<String>,
    pub state_password_env: Option<String>,
    pub state_password_file: Option<String>,
}
