//! The two gateways outreach knows by name. Twilio's Messages API: a form POST to
//! `/2010-04-01/Accounts/{sid}/Messages.json` with basic auth, the credentials checked by
//! fetching the account, the answer read for the message's `sid` or an error `code`. Vonage's
//! legacy SMS API: a form POST to `/json` with the key and secret in the form, nothing to check
//! them with short of sending a message, the answer a `messages[]` array with a status per part.

use std::time::Duration;

use reqwest::header::{AUTHORIZATION, HeaderValue};
use reqwest::{Client, RequestBuilder, StatusCode, Url};
use serde_json::Value;

use super::answer::{by_status, excerpt, json, text, unreadable};
use super::error::GatewayError;
use crate::config::GatewaySettings;
use crate::sms::Encoding;
use crate::transport::{CheckError, Delivery, SmsOut};

/// Twilio error codes that are not the recipient's fault but the account's or the sender's:
/// every message would fail the same way, so the run stops instead of failing patients.
/// (20003 authentication, 20005 account not active, 21212 invalid From, 21603 From missing,
/// 21606 From cannot send SMS, 21659 From is not a Twilio number.)
const TWILIO_FATAL: &[i64] = &[20003, 20005, 21212, 21603, 21606, 21659];
/// Twilio codes for a recipient who cannot get SMS (21211 invalid To, 21614 not a mobile).
const TWILIO_INVALID_NUMBER: &[i64] = &[21211, 21614];
/// 20429 too many requests; 21611 the sender's queue of messages is full (for now).
const TWILIO_TRANSIENT: &[i64] = &[20429, 21611];

/// Twilio's Messages API, for one account.
pub(super) struct Twilio {
    /// Parsed once: every message goes to the same URL with the same credentials.
    messages_url: Url,
    /// Basic auth of the account and token, for every request (the credentials check too).
    authorization: HeaderValue,
    account_url: String,
    messaging_service_sid: Option<String>,
    status_callback: Option<String>,
}

impl Twilio {
    /// `secret`: the auth token.
    pub(super) fn new(
        settings: &GatewaySettings,
        secret: Option<String>,
    ) -> Result<Self, GatewayError> {
        let account = settings.account.as_deref().expect("validated");
        let root = format!("{}/2010-04-01/Accounts/{account}", settings.base_url);
        Ok(Twilio {
            messages_url: parse_url(&format!("{root}/Messages.json"))?,
            authorization: basic_authorization(account, &secret.expect("validated")),
            account_url: format!("{root}.json"),
            messaging_service_sid: settings.messaging_service_sid.clone(),
            status_callback: settings.status_callback.clone(),
        })
    }

    /// The request that sends `m`.
    pub(super) fn request(&self, client: &Client, m: &SmsOut) -> RequestBuilder {
        let mut form: Vec<(&str, &str)> = vec![("To", m.to.as_str()), ("Body", &m.body)];
        match &self.messaging_service_sid {
            Some(sid) => form.push(("MessagingServiceSid", sid)),
            None => form.push(("From", &m.from)),
        }
        if let Some(cb) = &self.status_callback {
            form.push(("StatusCallback", cb));
        }
        client
            .post(self.messages_url.clone())
            .header(AUTHORIZATION, self.authorization.clone())
            .form(&form)
    }

    /// A fetch of the account, which the credentials must be good for.
    pub(super) fn account_request(&self, client: &Client) -> RequestBuilder {
        client
            .get(&self.account_url)
            .header(AUTHORIZATION, self.authorization.clone())
    }
}

/// What a Twilio reply is read for; every other member is skipped unread.
#[derive(serde::Deserialize)]
struct TwilioReply {
    sid: Option<Value>,
    code: Option<Value>,
    message: Option<Value>,
}

/// What Twilio's answer means: its error `code` first (the account's, an opt-out, throttling,
/// an invalid number), else its status.
pub(super) fn twilio_reply(
    status: StatusCode,
    wait: Option<Duration>,
    body: Option<&[u8]>,
) -> Delivery {
    let body = body.unwrap_or_default();
    let v: Option<TwilioReply> = serde_json::from_slice(body).ok();
    if status.is_success() {
        return match v.as_ref().and_then(|v| v.sid.as_ref()?.as_str()) {
            Some(sid) => Delivery::Sent {
                provider_id: sid.to_string(),
            },
            // Accepted (201) but the reply cannot be read: it went, without an id to show.
            None => Delivery::Sent {
                provider_id: format!("(HTTP {status}, no sid in the reply)"),
            },
        };
    }
    let code = v.as_ref().and_then(|v| v.code.as_ref()?.as_i64());
    let message = v
        .as_ref()
        .and_then(|v| v.message.as_ref()?.as_str())
        .map(str::to_string)
        .unwrap_or_else(|| excerpt(body));
    let detail = match code {
        Some(c) => format!(", Twilio error {c}: {message}"),
        None if message.is_empty() => String::new(),
        None => format!(": {message}"),
    };
    if matches!(status.as_u16(), 401 | 403) {
        return by_status(status, wait, &detail).expect("401 and 403 are fatal");
    }
    if let Some(c) = code {
        let error = format!("HTTP {status}{detail}");
        if TWILIO_FATAL.contains(&c) {
            return Delivery::Fatal { error };
        }
        if c.to_string() == crate::webhook::TWILIO_OPTED_OUT {
            return Delivery::OptedOut { error };
        }
        if TWILIO_TRANSIENT.contains(&c) {
            return Delivery::Transient {
                error,
                retry_after: wait,
            };
        }
        if TWILIO_INVALID_NUMBER.contains(&c) {
            return Delivery::Permanent { error };
        }
    }
    by_status(status, wait, &detail).unwrap_or_else(|| Delivery::Permanent {
        error: format!("HTTP {status}{detail}"),
    })
}

/// Vonage's legacy SMS API, for one API key.
pub(super) struct Vonage {
    url: Url,
    api_key: String,
    api_secret: String,
    callback: Option<String>,
}

impl Vonage {
    /// `secret`: the API secret.
    pub(super) fn new(
        settings: &GatewaySettings,
        secret: Option<String>,
    ) -> Result<Self, GatewayError> {
        Ok(Vonage {
            url: parse_url(&format!("{}/json", settings.base_url))?,
            api_key: settings.account.clone().expect("validated"),
            api_secret: secret.expect("validated"),
            callback: settings.status_callback.clone(),
        })
    }

    /// The request that sends `m`.
    pub(super) fn request(&self, client: &Client, m: &SmsOut) -> RequestBuilder {
        let to = digits(m.to.as_str());
        // A numeric sender is written like `to`; an alphanumeric one as it is.
        let from = if m.from.starts_with('+') {
            digits(&m.from)
        } else {
            m.from.clone()
        };
        let mut form: Vec<(&str, &str)> = vec![
            ("api_key", &self.api_key),
            ("api_secret", &self.api_secret),
            ("from", &from),
            ("to", &to),
            ("text", &m.body),
        ];
        if m.encoding == Encoding::Ucs2 {
            form.push(("type", "unicode"));
        }
        if let Some(cb) = &self.callback {
            form.push(("callback", cb));
        }
        client.post(self.url.clone()).form(&form)
    }

    /// The legacy SMS API offers nothing but sending (its description has one operation,
    /// POST /{format}), so there is nothing to ask without sending a message: the key and
    /// secret were checked for shape (8 characters; 6 to 32) and a rejection on the first
    /// message (status 4) stops the run with exit 3, nobody marked failed.
    pub(super) fn check(&self) -> Result<(), CheckError> {
        if !(6..=32).contains(&self.api_secret.len()) {
            return Err(CheckError::Unusable(
                "sms.gateway.token: a Vonage API secret has 6 to 32 characters".into(),
            ));
        }
        Ok(())
    }
}

/// Vonage's status codes (its "Troubleshooting Failed SMS" table) that say the account or the
/// request as a whole is wrong, not the recipient: 4 invalid credentials, 8 account barred,
/// 9 out of credit, 11 HTTP not enabled, 14 invalid signature, 15 invalid sender,
/// 23 invalid callback URL, 32 signature and secret both given.
const VONAGE_FATAL: &[&str] = &["4", "8", "9", "11", "14", "15", "23", "32"];
/// 1 throttled, 5 internal error, 10 too many binds.
const VONAGE_TRANSIENT: &[&str] = &["1", "5", "10"];
const VONAGE_OPTED_OUT: &str = "7";

/// What Vonage's answer means: the status of each part in `messages[]`, sent only when every
/// part went.
pub(super) fn vonage_reply(
    status: StatusCode,
    wait: Option<Duration>,
    body: Option<&[u8]>,
) -> Delivery {
    let Some(body) = body else {
        return unreadable(status, wait);
    };
    if let Some(d) = by_status(status, wait, &format!(": {}", excerpt(body))) {
        return d;
    }
    let v = json(body);
    let parts = v
        .as_ref()
        .and_then(|v| v["messages"].as_array())
        .filter(|a| !a.is_empty());
    let Some(parts) = parts else {
        // HTTP 200 always, success only in `messages[]`: without it, nobody can tell.
        return if status.is_success() {
            Delivery::Unknown {
                error: format!("HTTP {status} without messages[]: {}", excerpt(body)),
            }
        } else {
            Delivery::Permanent {
                error: format!("HTTP {status}: {}", excerpt(body)),
            }
        };
    };
    // A long text is split: one entry (and one id) per part.
    let status_of = |p: &Value| text(&p["status"]).unwrap_or_default();
    let sent: Vec<&Value> = parts.iter().filter(|p| status_of(p) == "0").collect();
    let ids: Vec<String> = sent.iter().filter_map(|p| text(&p["message-id"])).collect();
    let Some(failed) = parts.iter().find(|p| status_of(p) != "0") else {
        return Delivery::Sent {
            provider_id: ids.join(","),
        };
    };
    let code = status_of(failed);
    let error = format!(
        "Vonage status {code}: {}",
        failed["error-text"].as_str().unwrap_or("(no error-text)")
    );
    if !sent.is_empty() {
        // Some parts went (with an id or not): the patient got part of the message. Not retried.
        return Delivery::Unknown {
            error: format!(
                "partly sent ({} of {} parts): {error}",
                sent.len(),
                parts.len()
            ),
        };
    }
    if VONAGE_FATAL.contains(&code.as_str()) {
        Delivery::Fatal { error }
    } else if VONAGE_TRANSIENT.contains(&code.as_str()) {
        Delivery::Transient {
            error,
            retry_after: wait,
        }
    } else if code == VONAGE_OPTED_OUT {
        Delivery::OptedOut { error }
    } else {
        // 2 missing parameter, 3 invalid parameter (the number), 6 invalid message, 12 too
        // long, 29 not whitelisted, 33 number de-activated, …
        Delivery::Permanent { error }
    }
}

/// `+13125550142` → `13125550142`.
pub(super) fn digits(e164: &str) -> String {
    e164.chars().filter(char::is_ascii_digit).collect()
}

/// A gateway URL from the campaign's `base_url`.
fn parse_url(url: &str) -> Result<Url, GatewayError> {
    Url::parse(url).map_err(|source| GatewayError::BaseUrl {
        url: url.to_string(),
        source,
    })
}

/// `Authorization: Basic …` for `user` and `password`, marked sensitive (kept out of debug
/// output), as reqwest's `basic_auth` writes it.
pub(super) fn basic_authorization(user: &str, password: &str) -> HeaderValue {
    let encoded = data_encoding::BASE64.encode(format!("{user}:{password}").as_bytes());
    let mut value =
        HeaderValue::try_from(format!("Basic {encoded}")).expect("base64 is a valid header value");
    value.set_sensitive(true);
    value
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::http::tests::kind;

    #[test]
    fn a_vonage_part_sent_without_an_id_still_makes_the_message_partly_sent() {
        let reply = br#"{"message-count": "2", "messages": [
            {"status": "0", "to": "13125550101"},
            {"status": "3", "error-text": "Invalid to parameter"}]}"#;
        let d = vonage_reply(StatusCode::OK, None, Some(reply));
        assert!(
            matches!(&d, Delivery::Unknown { error } if error.starts_with("partly sent (1 of 2 parts)")),
            "{d:?}"
        );
    }

    #[test]
    fn twilio_queue_full_is_retried() {
        let reply = br#"{"code": 21611, "message": "This 'From' number has exceeded the maximum number of queued messages", "status": 400}"#;
        let d = twilio_reply(StatusCode::BAD_REQUEST, None, Some(reply));
        assert_eq!(kind(&d), "transient", "{d:?}");
    }
}
