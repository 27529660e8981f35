//! `[campaign.utm]`: the campaign tags (`utm_source`, `utm_medium`, `utm_campaign`, and an
//! optional `utm_content`) that `crate::utm` appends to links pointing at the clinic's own hosts.
//! Off unless the table is written. Every value is static text checked here: no Handlebars, so no
//! patient value can ever reach a link's tags. The hosts are normalised the way a URL parser
//! reads a link's host (lowercase, IDNA), so comparing them later is plain equality.

use super::error::{ConfigError, Locator};
use super::raw::RawUtm;

/// `utm_source` when `[campaign.utm]` does not name one.
pub const DEFAULT_UTM_SOURCE: &str = "outreach";

/// The longest tag value accepted: analytics tools cut longer ones anyway.
const MAX_VALUE_LEN: usize = 100;

/// Campaign tags for the clinic's links, ready to use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UtmSettings {
    pub source: String,
    /// `None`: the channel's name (`email`, `sms`).
    pub medium: Option<String>,
    /// The campaign id unless written.
    pub campaign: String,
    pub content: Option<String>,
    /// Every host whose links are tagged, normalised: the hosts of `clinic.website` and
    /// `clinic.booking_url`, then `hosts`, each once.
    pub hosts: Vec<String>,
}

impl UtmSettings {
    /// The `utm_medium` of a channel's messages.
    pub fn medium<'a>(&'a self, channel: &'a str) -> &'a str {
        self.medium.as_deref().unwrap_or(channel)
    }
}

/// Checks `[campaign.utm]`. `id` is the campaign id; `clinic_urls` are `clinic.website` and
/// `clinic.booking_url` with their keys, already checked as http(s) URLs.
pub(super) fn validate_utm(
    raw: RawUtm,
    id: &str,
    clinic_urls: [(&str, &str); 2],
    loc: &Locator,
) -> Result<UtmSettings, ConfigError> {
    let value = |v: Option<String>, key: &str| -> Result<Option<String>, ConfigError> {
        v.map(|v| tag_value(v, key, loc)).transpose()
    };
    let mut hosts: Vec<String> = Vec::new();
    for (key, url) in clinic_urls {
        let host = url::Url::parse(url)
            .ok()
            .as_ref()
            .and_then(url_host)
            .ok_or_else(|| loc.invalid(key, "has no host whose links could be tagged"))?;
        if !hosts.contains(&host) {
            hosts.push(host);
        }
    }
    for written in raw.hosts.unwrap_or_default() {
        let host = normalise_host(&written).ok_or_else(|| {
            loc.invalid(
                "campaign.utm.hosts",
                format!(
                    "{written:?} is not a host name: write the host alone, e.g. \
                     \"book.riverside.example\" (no scheme, port or path)"
                ),
            )
        })?;
        if !hosts.contains(&host) {
            hosts.push(host);
        }
    }
    Ok(UtmSettings {
        source: value(raw.source, "campaign.utm.source")?
            .unwrap_or_else(|| DEFAULT_UTM_SOURCE.to_string()),
        medium: value(raw.medium, "campaign.utm.medium")?,
        campaign: value(raw.campaign, "campaign.utm.campaign")?.unwrap_or_else(|| id.to_string()),
        content: value(raw.content, "campaign.utm.content")?,
        hosts,
    })
}

/// A tag value: static text, trimmed, not empty, no template, no control character.
fn tag_value(v: String, key: &str, loc: &Locator) -> Result<String, ConfigError> {
    let v = v.trim();
    if v.is_empty() {
        return Err(loc.invalid(key, "must not be empty (leave the key out for its default)"));
    }
    if v.contains("{{") || v.contains("}}") {
        return Err(loc.invalid(
            key,
            "is static text: templates are not expanded here, so no patient value can reach a link",
        ));
    }
    if v.chars().any(char::is_control) {
        return Err(loc.invalid(key, "must not contain control characters"));
    }
    if v.chars().count() > MAX_VALUE_LEN {
        return Err(loc.invalid(key, format!("is longer than {MAX_VALUE_LEN} characters")));
    }
    Ok(v.to_string())
}

/// The host of an http(s) URL as [`UtmSettings::hosts`] holds hosts: lowercase, IDNA, without
/// a trailing dot.
pub fn url_host(url: &url::Url) -> Option<String> {
    let host = url.host_str()?;
    Some(host.trim_end_matches('.').to_string())
}

/// A host as written in `hosts`, normalised like a parsed URL's host; `None` when it is not a
/// bare host name or address.
fn normalise_host(written: &str) -> Option<String> {
    let written = written.trim();
    if written.is_empty() || written.contains("{{") {
        return None;
    }
    let host = url::Host::parse(written).ok()?.to_string();
    Some(host.trim_end_matches('.').to_string())
}

#[cfg(test)]
mod tests {
    use crate::config::testing::{BASE, assert_errors_after, load_error};

    #[test]
    fn errors_name_the_key() {
        assert_errors_after(
            &[],
            &[
                (
                    &["campaign.utm.source=\"\""],
                    "--set campaign.utm.source=\"\": `campaign.utm.source`: must not be empty (leave the key out for its default)",
                ),
                (
                    &["campaign.utm.campaign={{contact.id}}"],
                    "--set campaign.utm.campaign={{contact.id}}: `campaign.utm.campaign`: is static text: templates are not expanded here, so no patient value can reach a link",
                ),
                (
                    &["campaign.utm.hosts=[\"https://book.riverside.example/\"]"],
                    "--set campaign.utm.hosts=[\"https://book.riverside.example/\"]: `campaign.utm.hosts`: \"https://book.riverside.example/\" is not a host name: write the host alone, e.g. \"book.riverside.example\" (no scheme, port or path)",
                ),
                (
                    &["campaign.utm.hosts=[\"riverside.example:8443\"]"],
                    "--set campaign.utm.hosts=[\"riverside.example:8443\"]: `campaign.utm.hosts`: \"riverside.example:8443\" is not a host name: write the host alone, e.g. \"book.riverside.example\" (no scheme, port or path)",
                ),
            ],
        );
        // `[campaign.utm]` after `[sms]` is still the campaign's table.
        let text = format!("{BASE}\n[campaign.utm]\nsource = \"x\"\nsurprise = 1\n");
        assert!(load_error(&text, &[]).contains("`campaign.utm.surprise`: unknown field"));
    }

    #[test]
    fn defaults_and_hosts() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("campaign.toml");
        let text = format!(
            "{BASE}\n[campaign.utm]\nhosts = [\"Book.Riverside.EXAMPLE.\", \"riverside.example\"]\n"
        );
        std::fs::write(&path, text).unwrap();
        let c = crate::config::load(&path, &[]).unwrap();
        let utm = c.utm.unwrap();
        assert_eq!(utm.source, "outreach");
        assert_eq!(utm.medium("sms"), "sms");
        assert_eq!(utm.campaign, "t-1");
        assert_eq!(utm.content, None);
        assert_eq!(utm.hosts, ["riverside.example", "book.riverside.example"]);
    }

    #[test]
    fn off_without_the_table() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("campaign.toml");
        std::fs::write(&path, BASE).unwrap();
        assert_eq!(crate::config::load(&path, &[]).unwrap().utm, None);
    }
}
