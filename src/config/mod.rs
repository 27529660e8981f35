//! The campaign file: TOML read into a raw, all-optional form, `--set` overrides applied, then
//! validated once into a [`Campaign`], whose fields cannot be wrong. Every error names the file
//! (or the `--set` argument) and the line of the key at fault. [`load`] is the way in.
//!
//! The steps, bottom up: `values` parses single values (rates, durations, dates, URLs) and
//! `secrets` where a secret lives; `raw` is the file's shape; `parse` reads the text into it,
//! overrides merged, with an `error::Locator` that remembers each key's line; `campaign`,
//! `utm`, `email`, `gateway`, `generic`, `listen`, `feedback`, `imap` and `report` check their tables into the types the rest of the
//! program uses. Every public item is re-exported here, so callers name it `crate::config::X`; the files
//! import one another but never this one, which keeps the module free of import cycles.

mod campaign;
mod email;
mod error;
mod feedback;
mod gateway;
mod generic;
mod imap;
mod listen;
mod parse;
mod raw;
mod report;
mod secrets;
mod store;
mod utm;
mod values;

use std::path::Path;

pub use campaign::{
    CONTACT_FIELDS, Campaign, Clinic, ContactsSource, DEFAULT_CONCURRENCY, DEFAULT_EMAIL_RATE,
    DEFAULT_LANGUAGE, DEFAULT_MAX_ATTEMPTS, DEFAULT_MAX_CONSECUTIVE_FAILURES, DEFAULT_RETRY_DELAY,
    DEFAULT_SMS_RATE, DEFAULT_STATE_DIR, ID_RULE, Sending, Window, is_campaign_id,
};
pub use email::{
    DEFAULT_EMAIL_OUTBOX, DkimSigner, EmailSettings, EmailTransport, SmtpSettings, TlsMode,
};
pub use error::{ConfigError, Origin};
pub use feedback::{
    DEFAULT_SOFT_BOUNCE_LIMIT, DEFAULT_SOFT_BOUNCE_WINDOW_DAYS, FeedbackSettings, MailboxSource,
};
pub use gateway::{
    DEFAULT_GATEWAY_TIMEOUT, DEFAULT_MAX_SEGMENTS, DEFAULT_QUIET_HOURS, DEFAULT_SMS_OUTBOX,
    GatewayPreset, GatewaySettings, SmsSettings, SmsTransport, TWILIO_BASE_URL, VONAGE_BASE_URL,
    on_this_machine,
};
pub use generic::{
    BodyFormat, DEFAULT_STATUS_DELIVERED, DEFAULT_STATUS_PENDING, DEFAULT_STATUS_POINTER,
    DEFAULT_STATUS_UNDELIVERED, GATEWAY_PLACEHOLDERS, GatewayAuth, GenericGateway, HttpMethod,
    STATUS_PLACEHOLDERS, StatusLookup, TemplateError, fill_template,
};
pub use imap::{DEFAULT_IMAP_FOLDER, DEFAULT_IMAP_TIMEOUT, ImapSettings, ImapTls, Processed};
pub use listen::{DEFAULT_LISTEN_ADDR, ListenSettings, TlsFiles, WebhookCheck, WebhookSettings};
pub use report::{DEFAULT_CURRENCY, Price, ReportSettings};
pub use secrets::{SecretError, SecretSource};
pub use store::{DEFAULT_CONNECT_TIMEOUT, POINTER_FILE, SslMode, StateUrl, Store};
pub use utm::{DEFAULT_UTM_SOURCE, UtmSettings, url_host};
pub use values::{
    FrequencyCap, InvalidValue, QuietHours, Rate, WindowEdge, parse_duration, parse_quiet_hours,
    parse_rate, parse_window_edge,
};

/// Reads, overrides and validates a campaign file.
///
/// `overrides` are `KEY=VALUE` strings from `--set`.
pub fn load(path: &Path, overrides: &[String]) -> Result<Campaign, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let (raw, locator) = parse::parse(path, &text, overrides)?;
    campaign::validate(path, raw, &locator)
}

/// What the tests of every file here share: a campaign that loads, and the exact error `load`
/// gives for a variant of it.
#[cfg(test)]
pub(crate) mod testing {
    use super::load;

    /// A campaign that loads: both channels, file transports.
    pub(crate) const BASE: &str = r#"[campaign]
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

    /// [`assert_errors`] for `--set` lists that all begin with `prefix`.
    pub(super) fn assert_errors_after(prefix: &[&str], sets: &[(&[&str], &str)]) {
        for (sets, want) in sets {
            let sets: Vec<&str> = prefix.iter().chain(sets.iter()).copied().collect();
            assert_eq!(load_error(BASE, &sets), *want, "--set {sets:?}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::testing::BASE;
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
}
