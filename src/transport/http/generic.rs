//! The `generic` gateway, described entirely in the campaign file: its auth header (built and
//! checked once), the request for a message (the body template filled in, each value escaped
//! for the body's format; for a GET, the query string), and how its answer is read (a success
//! status, a JSON pointer that must hold a value, the id and error code at other pointers, the
//! error codes that mean opted out, transient or permanent).

use std::time::Duration;

use reqwest::header::{AUTHORIZATION, HeaderName, HeaderValue};
use reqwest::{Client, RequestBuilder, StatusCode};
use serde_json::Value;

use super::answer::{by_status, excerpt, json, text, unreadable};
use super::error::GatewayError;
use super::presets::{basic_authorization, digits};
use crate::config::{BodyFormat, GatewayAuth, GatewaySettings, GenericGateway, HttpMethod};
use crate::sms::Encoding;
use crate::transport::{Delivery, SmsOut};

/// A generic gateway, as the campaign file describes it.
pub(super) struct Generic {
    pub(super) spec: Box<GenericGateway>,
    account: Option<String>,
    /// The auth header, built (and checked) once, marked sensitive.
    auth: Option<(HeaderName, HeaderValue)>,
    status_callback: Option<String>,
}

impl Generic {
    /// `secret`: the password, bearer token or header value its auth needs.
    pub(super) fn new(
        settings: &GatewaySettings,
        secret: Option<String>,
    ) -> Result<Self, GatewayError> {
        let spec = settings.generic.clone().expect("validated");
        let auth = generic_auth(&spec.auth, settings.account.as_deref(), secret)?;
        Ok(Generic {
            spec,
            account: settings.account.clone(),
            auth,
            status_callback: settings.status_callback.clone(),
        })
    }

    /// The request that sends `m`.
    pub(super) fn request(
        &self,
        client: &Client,
        m: &SmsOut,
    ) -> Result<RequestBuilder, GatewayError> {
        let spec = &self.spec;
        let escape = |s: &str| match spec.body_format {
            BodyFormat::Form => form_encode(s),
            BodyFormat::Json => json_escape(s),
        };
        let filled = crate::config::fill_template(&spec.body_template, |name| {
            let v = match name {
                "to" => m.to.to_string(),
                "to_digits" => digits(m.to.as_str()),
                "from" => m.from.clone(),
                "body" => m.body.clone(),
                "encoding" => m.encoding.as_str().to_string(),
                "unicode" => (m.encoding == Encoding::Ucs2).to_string(),
                "segments" => m.segments.to_string(),
                "campaign" => m.campaign.clone(),
                "contact" => m.contact.clone(),
                "account" => self.account.clone().unwrap_or_default(),
                "status_callback" => self.status_callback.clone().unwrap_or_default(),
                _ => return None,
            };
            Some(escape(&v))
        })
        .map_err(GatewayError::BodyTemplate)?;
        let r = match spec.method {
            HttpMethod::Get => {
                let sep = if spec.url.contains('?') { '&' } else { '?' };
                client.get(format!("{}{sep}{filled}", spec.url))
            }
            HttpMethod::Post | HttpMethod::Put => {
                let r = if spec.method == HttpMethod::Post {
                    client.post(&spec.url)
                } else {
                    client.put(&spec.url)
                };
                let content_type = match spec.body_format {
                    BodyFormat::Form => "application/x-www-form-urlencoded",
                    BodyFormat::Json => "application/json",
                };
                r.header(reqwest::header::CONTENT_TYPE, content_type)
                    .body(filled)
            }
        };
        Ok(authed(r, &self.auth))
    }

    /// A fetch of `check_url`, with the auth header, when the campaign names one.
    pub(super) fn check_request(&self, client: &Client) -> Option<RequestBuilder> {
        let url = self.spec.check_url.as_ref()?;
        Some(authed(client.get(url), &self.auth))
    }

    /// A fetch of the status lookup's URL for message `id`, with the auth header, when the
    /// campaign configures one.
    pub(super) fn status_request(&self, client: &Client, id: &str) -> Option<RequestBuilder> {
        let lookup = self.spec.status.as_ref()?;
        let url = crate::config::fill_template(&lookup.url, |name| match name {
            "id" => Some(percent_encode(id, false)),
            "account" => Some(percent_encode(
                self.account.as_deref().unwrap_or_default(),
                false,
            )),
            _ => None,
        })
        .expect("validated: the status URL's placeholders are known");
        Some(authed(client.get(url), &self.auth))
    }
}

fn authed(r: RequestBuilder, auth: &Option<(HeaderName, HeaderValue)>) -> RequestBuilder {
    match auth {
        Some((name, value)) => r.header(name, value.clone()),
        None => r,
    }
}

/// A generic gateway's auth header, checked here: a secret that a header cannot carry (a line
/// end left in an environment file, say) is an error before anything is claimed, where each
/// request would otherwise fail to be made.
fn generic_auth(
    auth: &GatewayAuth,
    account: Option<&str>,
    secret: Option<String>,
) -> Result<Option<(HeaderName, HeaderValue)>, GatewayError> {
    let secret = secret.unwrap_or_default();
    let sensitive = |text: String| -> Result<HeaderValue, GatewayError> {
        let mut value = HeaderValue::try_from(text).map_err(GatewayError::TokenNotInHeader)?;
        value.set_sensitive(true);
        Ok(value)
    };
    Ok(Some(match auth {
        GatewayAuth::None => return Ok(None),
        GatewayAuth::Basic => (
            AUTHORIZATION,
            basic_authorization(account.unwrap_or_default(), &secret),
        ),
        GatewayAuth::Bearer => (AUTHORIZATION, sensitive(format!("Bearer {secret}"))?),
        GatewayAuth::Header(h) => (
            HeaderName::try_from(h.as_str()).map_err(|source| GatewayError::AuthHeader {
                name: h.clone(),
                source,
            })?,
            sensitive(secret)?,
        ),
    }))
}

/// `application/x-www-form-urlencoded` escaping of one value.
fn form_encode(s: &str) -> String {
    percent_encode(s, true)
}

/// Every byte but letters, digits and `*-._` as `%XX`; a space as `+` when `space_plus` (a
/// form), else `%20` (a URL path, where `+` is a plus).
fn percent_encode(s: &str, space_plus: bool) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'*' | b'-' | b'.' | b'_' => {
                out.push(b as char)
            }
            b' ' if space_plus => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// The text of a JSON string literal without its quotes.
fn json_escape(s: &str) -> String {
    let quoted = serde_json::to_string(s).expect("a string serialises");
    quoted[1..quoted.len() - 1].to_string()
}

/// What a generic gateway's answer means, as `spec` says to read it.
pub(super) fn generic_reply(
    spec: &GenericGateway,
    status: StatusCode,
    wait: Option<Duration>,
    body: Option<&[u8]>,
) -> Delivery {
    let success_status = if spec.success_status.is_empty() {
        status.is_success()
    } else {
        spec.success_status.contains(&status.as_u16())
    };
    let Some(body) = body else {
        return if success_status && spec.success_pointer.is_none() {
            Delivery::Sent {
                provider_id: format!("(HTTP {status}, reply unreadable)"),
            }
        } else {
            unreadable(status, wait)
        };
    };
    let v = json(body);
    if success_status && spec.success_pointer.is_some() && v.is_none() {
        // A success status whose reply cannot be tested (not JSON, or cut at the reading
        // limit): it may well have gone.
        return Delivery::Unknown {
            error: format!(
                "HTTP {status}, a reply that is not JSON, so success_pointer cannot be tested: {}",
                excerpt(body)
            ),
        };
    }
    let at = |p: &Option<String>| -> Option<String> {
        let p = p.as_deref()?;
        v.as_ref()?.pointer(p).and_then(text)
    };
    // Present: any value but `null` (an object or an array too); and not `false` (or "false")
    // unless a `success_value` says what it must be.
    let passes = match (&spec.success_pointer, &spec.success_value) {
        (None, _) => true,
        (Some(p), Some(want)) => at(&Some(p.clone())).as_deref() == Some(want.as_str()),
        (Some(p), None) => v.as_ref().and_then(|v| v.pointer(p)).is_some_and(|x| {
            !matches!(x, Value::Null | Value::Bool(false)) && x.as_str() != Some("false")
        }),
    };
    if success_status && passes {
        return Delivery::Sent {
            provider_id: at(&spec.id_pointer).unwrap_or_else(|| format!("(HTTP {status})")),
        };
    }
    let code = at(&spec.error_pointer);
    let detail = match &code {
        Some(c) => format!(", error {c}: {}", excerpt(body)),
        None => format!(": {}", excerpt(body)),
    };
    let error = format!("HTTP {status}{detail}");
    if let Some(c) = &code {
        if spec.opted_out_codes.contains(c) {
            return Delivery::OptedOut { error };
        }
        if spec.transient_codes.contains(c) {
            return Delivery::Transient {
                error,
                retry_after: wait,
            };
        }
        if spec.permanent_codes.contains(c) {
            return Delivery::Permanent { error };
        }
    }
    by_status(status, wait, &detail).unwrap_or(Delivery::Permanent { error })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::http::tests::{generic, kind};

    #[test]
    fn form_and_json_escaping() {
        assert_eq!(form_encode("Hi María & co"), "Hi+Mar%C3%ADa+%26+co");
        assert_eq!(json_escape("a \"b\"\n"), "a \\\"b\\\"\\n");
    }

    #[test]
    fn a_generic_success_pointer_may_name_an_object() {
        let ok = StatusCode::OK;
        let reply = br#"{"data": {"id": "abc", "to": [{"status": "queued"}]}}"#;
        let d = generic_reply(&generic("/data"), ok, None, Some(reply));
        assert!(
            matches!(&d, Delivery::Sent { provider_id } if provider_id == "abc"),
            "{d:?}"
        );
        for (pointer, reply, want) in [
            ("/data/to", &reply[..], "sent"),
            ("/data/missing", &reply[..], "permanent"),
            ("/ok", br#"{"ok": null}"#, "permanent"),
            ("/ok", br#"{"ok": false}"#, "permanent"),
            ("/ok", br#"{"ok": "false"}"#, "permanent"),
            ("/ok", br#"{"ok": 0}"#, "sent"),
            // Accepted, but nothing to test the pointer on: it may have gone.
            ("/data", b"<html>queued</html>", "unknown"),
        ] {
            let d = generic_reply(&generic(pointer), ok, None, Some(reply));
            assert_eq!(kind(&d), want, "{pointer} {d:?}");
        }
    }
}
