//! The `http` SMS transport: one reqwest client (rustls, pooled keep-alive connections) speaking
//! one of three gateway dialects — Twilio's Messages API, Vonage's legacy SMS API, or a `generic`
//! gateway described entirely in the campaign file (method, URL, auth, body template, how to read
//! the reply).
//!
//! Every reply is classified here and nowhere else (DESIGN.md, "Decisions"):
//! - sent: the provider's id is kept;
//! - permanent for this recipient (an invalid number), not retried;
//! - opted out (Twilio 21610, Vonage 7): permanent, and the number is suppressed from now on;
//! - transient (429, 5xx, Twilio 20429, Vonage 1/5, a connection that failed before the request
//!   went out): retried by the send loop, honouring `Retry-After`;
//! - a timeout or a lost connection once the request was handed over: `unknown`, never retried,
//!   because the message may have gone;
//! - credentials or account rejected (401/403, Vonage 4/8/9, …), or no such endpoint
//!   (404/405/415): fatal, the run stops and no patient is marked failed;
//! - a redirect (3xx): fatal too, and not followed. A request carries the credentials (Vonage's
//!   secret in its very form) and a patient's number and message: a redirect followed would
//!   hand them to whatever address it names, over plain HTTP as readily as not, past the check
//!   of the campaign's URLs. A gateway that moved is a configuration to fix, not a patient's
//!   failure.

use std::time::Duration;

use futures::future::BoxFuture;
use reqwest::header::{
    AUTHORIZATION, HeaderMap, HeaderName, HeaderValue, InvalidHeaderName, InvalidHeaderValue,
    LOCATION, RETRY_AFTER,
};
use reqwest::{Client, RequestBuilder, StatusCode, Url};
use serde_json::Value;

use super::{CheckError, Delivery, SmsOut, Transport};
use crate::config::{
    BodyFormat, GatewayAuth, GatewayPreset, GatewaySettings, GenericGateway, HttpMethod,
};
use crate::sms::Encoding;

/// Connecting must not take the whole request timeout: a connect failure provably sent nothing
/// and is retried, so it is worth telling apart from a reply that never came.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Twilio error codes that are not the recipient's fault but the account's or the sender's:
/// every message would fail the same way, so the run stops instead of failing patients.
/// (20003 authentication, 20005 account not active, 21212 invalid From, 21603 From missing,
/// 21606 From cannot send SMS, 21659 From is not a Twilio number.)
const TWILIO_FATAL: &[i64] = &[20003, 20005, 21212, 21603, 21606, 21659];
/// Twilio codes for a recipient who cannot get SMS (21211 invalid To, 21614 not a mobile).
const TWILIO_INVALID_NUMBER: &[i64] = &[21211, 21614];
const TWILIO_OPTED_OUT: i64 = 21610;
/// 20429 too many requests; 21611 the sender's queue of messages is full (for now).
const TWILIO_TRANSIENT: &[i64] = &[20429, 21611];

/// `url`'s `ParseError`, which reqwest does not re-export.
type UrlParseError = <Url as std::str::FromStr>::Err;

/// Why an SMS gateway cannot be set up from the campaign's `[sms.gateway]` settings (found
/// before anything is claimed), or a generic gateway's request cannot be made for a message.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    /// The token's environment variable or file cannot be read (the reason as the campaign
    /// loader words it).
    #[error("sms.gateway.token: {0}")]
    Token(String),
    #[error(
        "sms.gateway.token: the secret holds a character an HTTP header cannot carry \
             (a control character or line end)"
    )]
    TokenNotInHeader(#[source] InvalidHeaderValue),
    #[error("sms.gateway.base_url: {url:?} is not a URL: {source}")]
    BaseUrl { url: String, source: UrlParseError },
    #[error("sms.gateway.auth_header: {name:?} is not a header name: {source}")]
    AuthHeader {
        name: String,
        source: InvalidHeaderName,
    },
    #[error("building the HTTP client: {0}")]
    Client(#[source] reqwest::Error),
    /// A generic gateway's body template cannot be filled for a message (its placeholders are
    /// checked when the campaign is loaded, so this is not expected).
    #[error("sms.gateway.body_template: {0:?}")]
    BodyTemplate(crate::config::TemplateError),
}

/// A gateway as the send loop sees it.
pub struct Gateway {
    client: Client,
    dialect: Dialect,
    timeout: Duration,
}

enum Dialect {
    Twilio {
        /// Parsed once: every message goes to the same URL with the same credentials.
        messages_url: Url,
        /// Basic auth of the account and token, for every request (the credentials check too).
        authorization: HeaderValue,
        account_url: String,
        messaging_service_sid: Option<String>,
        status_callback: Option<String>,
    },
    Vonage {
        url: Url,
        api_key: String,
        api_secret: String,
        callback: Option<String>,
    },
    Generic {
        spec: Box<GenericGateway>,
        account: Option<String>,
        /// The auth header, built (and checked) once, marked sensitive.
        auth: Option<(HeaderName, HeaderValue)>,
        status_callback: Option<String>,
    },
}

impl Gateway {
    /// Builds the client and reads the secret (an unset variable or unreadable file is an error
    /// here, before anything is claimed). `concurrency`: connections kept open; the send loop's
    /// permits (`Transport::sessions`) bound the requests at once.
    pub fn new(settings: &GatewaySettings, concurrency: usize) -> Result<Self, GatewayError> {
        let secret = settings
            .token
            .as_ref()
            .map(|s| s.read())
            .transpose()
            .map_err(|e| GatewayError::Token(e.to_string()))?;
        let dialect = match settings.preset {
            GatewayPreset::Twilio => {
                let account = settings.account.as_deref().expect("validated");
                let root = format!("{}/2010-04-01/Accounts/{account}", settings.base_url);
                Dialect::Twilio {
                    messages_url: parse_url(&format!("{root}/Messages.json"))?,
                    authorization: basic_authorization(account, &secret.expect("validated")),
                    account_url: format!("{root}.json"),
                    messaging_service_sid: settings.messaging_service_sid.clone(),
                    status_callback: settings.status_callback.clone(),
                }
            }
            GatewayPreset::Vonage => Dialect::Vonage {
                url: parse_url(&format!("{}/json", settings.base_url))?,
                api_key: settings.account.clone().expect("validated"),
                api_secret: secret.expect("validated"),
                callback: settings.status_callback.clone(),
            },
            GatewayPreset::Generic => {
                let spec = settings.generic.clone().expect("validated");
                let auth = generic_auth(&spec.auth, settings.account.as_deref(), secret)?;
                Dialect::Generic {
                    spec,
                    account: settings.account.clone(),
                    auth,
                    status_callback: settings.status_callback.clone(),
                }
            }
        };
        // A proxy from the environment (`https_proxy`, …) is for reaching other machines: a
        // gateway on this one, allowed plain http for that reason, must not be reached through
        // one, which would carry its requests in clear text across the network.
        // Decided by where the messages go (a generic gateway's url is whole, base_url joined
        // in; its base_url may be empty); a check_url elsewhere is then reached directly too.
        let messages_url = match &settings.generic {
            Some(g) => g.url.as_str(),
            None => settings.base_url.as_str(),
        };
        let local = crate::config::on_this_machine(messages_url);
        let mut client = Client::builder();
        if local {
            client = client.no_proxy();
        }
        let client = client
            .user_agent(concat!("outreach/", env!("CARGO_PKG_VERSION")))
            // Below the whole request's: a connection that cannot be made in time is then told
            // apart (nothing went, retried) from a reply that does not come (`unknown`).
            .connect_timeout(CONNECT_TIMEOUT.min(settings.timeout / 2))
            .timeout(settings.timeout)
            .pool_idle_timeout(Duration::from_secs(50))
            .pool_max_idle_per_host(concurrency)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(GatewayError::Client)?;
        Ok(Gateway {
            client,
            dialect,
            timeout: settings.timeout,
        })
    }

    async fn send_sms(&self, m: &SmsOut) -> Delivery {
        let request = match &self.dialect {
            Dialect::Twilio {
                messages_url,
                authorization,
                messaging_service_sid,
                status_callback,
                ..
            } => {
                let mut form: Vec<(&str, &str)> = vec![("To", m.to.as_str()), ("Body", &m.body)];
                match messaging_service_sid {
                    Some(sid) => form.push(("MessagingServiceSid", sid)),
                    None => form.push(("From", &m.from)),
                }
                if let Some(cb) = status_callback {
                    form.push(("StatusCallback", cb));
                }
                self.client
                    .post(messages_url.clone())
                    .header(AUTHORIZATION, authorization.clone())
                    .form(&form)
            }
            Dialect::Vonage {
                url,
                api_key,
                api_secret,
                callback,
            } => {
                let to = digits(m.to.as_str());
                // A numeric sender is written like `to`; an alphanumeric one as it is.
                let from = if m.from.starts_with('+') {
                    digits(&m.from)
                } else {
                    m.from.clone()
                };
                let mut form: Vec<(&str, &str)> = vec![
                    ("api_key", api_key),
                    ("api_secret", api_secret),
                    ("from", &from),
                    ("to", &to),
                    ("text", &m.body),
                ];
                if m.encoding == Encoding::Ucs2 {
                    form.push(("type", "unicode"));
                }
                if let Some(cb) = callback {
                    form.push(("callback", cb));
                }
                self.client.post(url.clone()).form(&form)
            }
            Dialect::Generic {
                spec,
                account,
                auth,
                status_callback,
            } => match generic_request(&self.client, spec, account, auth, status_callback, m) {
                Ok(r) => r,
                Err(e) => {
                    return Delivery::Permanent {
                        error: e.to_string(),
                    };
                }
            },
        };
        let delivery = match request.send().await {
            Err(e) => self.failed_request(e),
            Ok(response) if self.refuses_redirect(response.status()) => Delivery::Fatal {
                error: redirected(response.status(), response.headers(), self.url_key()),
            },
            Ok(response) => {
                let status = response.status();
                let wait = retry_after(response.headers());
                let body = read_reply(response).await;
                let body = body.as_deref();
                match &self.dialect {
                    Dialect::Twilio { .. } => twilio_reply(status, wait, body),
                    Dialect::Vonage { .. } => vonage_reply(status, wait, body),
                    Dialect::Generic { spec, .. } => generic_reply(spec, status, wait, body),
                }
            }
        };
        hide_number(delivery, m.to.as_str())
    }

    /// Whether `status` is a redirect to refuse: any 3xx, unless a generic gateway's
    /// `success_status` lists it.
    fn refuses_redirect(&self, status: StatusCode) -> bool {
        status.is_redirection()
            && match &self.dialect {
                Dialect::Generic { spec, .. } => !spec.success_status.contains(&status.as_u16()),
                _ => true,
            }
    }

    /// The campaign-file key of the URL messages go to.
    fn url_key(&self) -> &'static str {
        match self.dialect {
            Dialect::Generic { .. } => "sms.gateway.url",
            _ => "sms.gateway.base_url",
        }
    }

    /// A request that got no reply.
    fn failed_request(&self, e: reqwest::Error) -> Delivery {
        // Without the URL, whose query may hold a message (a generic GET) or a key.
        let e = e.without_url();
        let error = error_chain(&e);
        if e.is_builder() {
            // Never sent; every message would fail the same way.
            Delivery::Fatal {
                error: format!("the request could not be made: {error}"),
            }
        } else if e.is_connect() {
            // No connection, so no request: nothing went.
            Delivery::Transient {
                error: format!("cannot connect: {error}"),
                retry_after: None,
            }
        } else if e.is_timeout() {
            Delivery::Unknown {
                error: format!(
                    "no reply within {:?} (sms.gateway.timeout): the message may have gone",
                    self.timeout
                ),
            }
        } else {
            // The connection broke once the request was under way: it may have been taken.
            Delivery::Unknown {
                error: format!("the connection failed mid-request: {error}"),
            }
        }
    }

    async fn check_credentials(&self) -> Result<(), CheckError> {
        // What is fetched, what to call it in an error, and the key that sets its URL.
        let (request, what, key) = match &self.dialect {
            Dialect::Twilio {
                account_url,
                authorization,
                ..
            } => (
                self.client
                    .get(account_url)
                    .header(AUTHORIZATION, authorization.clone()),
                "the account",
                "sms.gateway.base_url",
            ),
            // The legacy SMS API offers nothing but sending (its description has one operation,
            // POST /{format}), so there is nothing to ask without sending a message: the key and
            // secret were checked for shape (8 characters; 6 to 32) and a rejection on the first
            // message (status 4) stops the run with exit 3, nobody marked failed.
            Dialect::Vonage { api_secret, .. } => {
                if !(6..=32).contains(&api_secret.len()) {
                    return Err(CheckError::Unusable(
                        "sms.gateway.token: a Vonage API secret has 6 to 32 characters".into(),
                    ));
                }
                return Ok(());
            }
            Dialect::Generic { spec, auth, .. } => match &spec.check_url {
                Some(url) => {
                    let key = "sms.gateway.check_url";
                    (authed(self.client.get(url), auth), key, key)
                }
                None => return Ok(()),
            },
        };
        // A server out of reach or busy now is exit 3 (a later run may work); a rejection or an
        // answer that no later run will change is exit 2.
        let response = match request.send().await {
            Ok(r) => r,
            Err(e) => {
                let e = e.without_url();
                let error = format!("could not check the credentials: {}", error_chain(&e));
                return Err(if e.is_builder() {
                    CheckError::Unusable(error)
                } else {
                    CheckError::Unavailable(error)
                });
            }
        };
        let status = response.status();
        match status.as_u16() {
            _ if status.is_success() => Ok(()),
            _ if status.is_redirection() => Err(CheckError::Unusable(format!(
                "could not check the credentials: {}",
                redirected(status, response.headers(), key)
            ))),
            401 | 403 | 404 => Err(CheckError::Unusable(format!(
                "the gateway rejected the credentials (HTTP {status} for {what}): check \
                 sms.gateway.account and the token"
            ))),
            408 | 429 | 500..=599 => Err(CheckError::Unavailable(format!(
                "could not check the credentials: HTTP {status} for {what}"
            ))),
            _ => Err(CheckError::Unusable(format!(
                "could not check the credentials: HTTP {status} for {what}"
            ))),
        }
    }
}

impl Transport<SmsOut> for Gateway {
    fn name(&self) -> &str {
        match self.dialect {
            Dialect::Twilio { .. } => "twilio",
            Dialect::Vonage { .. } => "vonage",
            Dialect::Generic { .. } => "generic",
        }
    }

    fn check(&self) -> BoxFuture<'_, Result<(), CheckError>> {
        Box::pin(self.check_credentials())
    }

    fn send<'a>(&'a self, message: &'a SmsOut) -> BoxFuture<'a, Delivery> {
        Box::pin(self.send_sms(message))
    }
}

/// `+13125550142` → `13125550142`.
fn digits(e164: &str) -> String {
    e164.chars().filter(char::is_ascii_digit).collect()
}

/// A reqwest error with its causes ("error sending request: connection refused").
fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut s = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let c = cause.to_string();
        if !s.contains(&c) {
            s.push_str(": ");
            s.push_str(&c);
        }
        source = cause.source();
    }
    s
}

/// Gateways quote the number in their errors ("The 'To' number +13125550142 is not valid"):
/// errors reach logs, so the number is masked in them like everywhere else.
fn hide_number(d: Delivery, to: &str) -> Delivery {
    d.map_error(|e| {
        let masked = crate::model::mask(crate::model::Channel::Sms, to);
        e.replace(to, &masked).replace(&digits(to), &masked)
    })
}

/// The most of a reply that is read: a gateway answers in a few hundred bytes, and an error page
/// or a server that never stops sending must not fill the run's memory (or hold the message
/// until the timeout makes it `unknown`).
const MAX_REPLY: usize = 64 * 1024;

/// A reply's body, cut at [`MAX_REPLY`] bytes; `None` when it broke off (or timed out) first.
async fn read_reply(mut response: reqwest::Response) -> Option<Vec<u8>> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.ok()? {
        body.extend_from_slice(&chunk[..chunk.len().min(MAX_REPLY - body.len())]);
        if body.len() == MAX_REPLY {
            break;
        }
    }
    Some(body)
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
fn basic_authorization(user: &str, password: &str) -> HeaderValue {
    let encoded = data_encoding::BASE64.encode(format!("{user}:{password}").as_bytes());
    let mut value =
        HeaderValue::try_from(format!("Basic {encoded}")).expect("base64 is a valid header value");
    value.set_sensitive(true);
    value
}

/// `Retry-After` as seconds or an HTTP date.
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let v = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let when = chrono::DateTime::parse_from_rfc2822(v).ok()?;
    let wait = when.with_timezone(&chrono::Utc) - chrono::Utc::now();
    Some(wait.to_std().unwrap_or(Duration::ZERO))
}

/// The error for a redirect not followed; `key`: the campaign-file key to change.
fn redirected(status: StatusCode, headers: &HeaderMap, key: &str) -> String {
    // Where it points, without what a URL may carry besides: a user and password, and a query
    // (a moved GET gateway's Location repeats the request's: key, number, message).
    let to = match headers
        .get(LOCATION)
        .map(|l| String::from_utf8_lossy(l.as_bytes()))
    {
        Some(l) => {
            let bare = match Url::parse(&l) {
                Ok(mut u) => {
                    let _ = u.set_username("");
                    let _ = u.set_password(None);
                    u.set_query(None);
                    u.set_fragment(None);
                    u.to_string()
                }
                // A relative Location: its path.
                Err(_) => l.split(['?', '#']).next().unwrap_or_default().to_string(),
            };
            format!(" to {}", excerpt(bare.as_bytes()))
        }
        None => String::new(),
    };
    format!(
        "HTTP {status}{to}: outreach does not follow a gateway's redirects (a request carries \
         the credentials and a patient's number); if the gateway has moved, set {key} to its \
         new address"
    )
}

/// A reply whose body broke off (or timed out) after its status line: what the status alone
/// says (credentials, throttling, a server error), else nobody can tell whether it went.
fn unreadable(status: StatusCode, wait: Option<Duration>) -> Delivery {
    let detail = ", the reply could not be read";
    by_status(status, wait, detail).unwrap_or_else(|| Delivery::Unknown {
        error: format!("HTTP {status}{detail}"),
    })
}

/// What every dialect agrees on, whatever the body says: credentials (401/403), an address or
/// a request format the gateway does not take (404/405/415: every message would get the same,
/// so it is nobody's failure), throttling (429) and server errors (5xx).
fn by_status(status: StatusCode, wait: Option<Duration>, detail: &str) -> Option<Delivery> {
    let error = format!("HTTP {status}{detail}");
    if matches!(status.as_u16(), 401 | 403) {
        Some(Delivery::Fatal {
            error: format!("credentials rejected: {error}"),
        })
    } else if matches!(status.as_u16(), 404 | 405 | 415) {
        Some(Delivery::Fatal {
            error: format!(
                "the gateway takes no messages there: {error} (check [sms.gateway]'s URL and \
                 account)"
            ),
        })
    } else if status == StatusCode::TOO_MANY_REQUESTS
        || status == StatusCode::REQUEST_TIMEOUT
        || status.is_server_error()
    {
        Some(Delivery::Transient {
            error,
            retry_after: wait,
        })
    } else {
        None
    }
}

fn json(body: &[u8]) -> Option<Value> {
    serde_json::from_slice(body).ok()
}

/// A JSON value as text: strings as they are, numbers and booleans written out.
fn text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// A short excerpt of a body that is not what was expected.
fn excerpt(body: &[u8]) -> String {
    let s = String::from_utf8_lossy(body);
    let s = s.trim();
    match s.char_indices().nth(200) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

/// What a Twilio reply is read for; every other member is skipped unread.
#[derive(serde::Deserialize)]
struct TwilioReply {
    sid: Option<Value>,
    code: Option<Value>,
    message: Option<Value>,
}

fn twilio_reply(status: StatusCode, wait: Option<Duration>, body: Option<&[u8]>) -> Delivery {
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
        if c == TWILIO_OPTED_OUT {
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

/// Vonage's status codes (its "Troubleshooting Failed SMS" table) that say the account or the
/// request as a whole is wrong, not the recipient: 4 invalid credentials, 8 account barred,
/// 9 out of credit, 11 HTTP not enabled, 14 invalid signature, 15 invalid sender,
/// 23 invalid callback URL, 32 signature and secret both given.
const VONAGE_FATAL: &[&str] = &["4", "8", "9", "11", "14", "15", "23", "32"];
/// 1 throttled, 5 internal error, 10 too many binds.
const VONAGE_TRANSIENT: &[&str] = &["1", "5", "10"];
const VONAGE_OPTED_OUT: &str = "7";

fn vonage_reply(status: StatusCode, wait: Option<Duration>, body: Option<&[u8]>) -> Delivery {
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
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'*' | b'-' | b'.' | b'_' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
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

fn generic_request(
    client: &Client,
    spec: &GenericGateway,
    account: &Option<String>,
    auth: &Option<(HeaderName, HeaderValue)>,
    status_callback: &Option<String>,
    m: &SmsOut,
) -> Result<RequestBuilder, GatewayError> {
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
            "account" => account.clone().unwrap_or_default(),
            "status_callback" => status_callback.clone().unwrap_or_default(),
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
    Ok(authed(r, auth))
}

fn generic_reply(
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

    /// Word for word what these settings were refused with when the errors were strings.
    #[test]
    fn settings_that_cannot_work_are_refused_before_any_request() {
        let dir = tempfile::tempdir().unwrap();
        let token = |text: &str| {
            let path = dir.path().join("token");
            std::fs::write(&path, text).unwrap();
            Some(crate::config::SecretSource::File(path))
        };
        let refused = |s: &GatewaySettings| Gateway::new(s, 1).err().expect("refused").to_string();
        let mut s = GatewaySettings {
            preset: GatewayPreset::Vonage,
            base_url: "rest.nexmo.com/sms".into(),
            account: Some("abcd1234".into()),
            token: token("secret12"),
            messaging_service_sid: None,
            status_callback: None,
            timeout: Duration::from_secs(5),
            generic: None,
            outbox: "outbox".into(),
        };
        assert_eq!(
            refused(&s),
            "sms.gateway.base_url: \"rest.nexmo.com/sms/json\" is not a URL: relative URL \
             without a base"
        );
        let mut g = generic("/data");
        g.auth = GatewayAuth::Header("X Key".into());
        s.preset = GatewayPreset::Generic;
        s.generic = Some(Box::new(g.clone()));
        assert_eq!(
            refused(&s),
            "sms.gateway.auth_header: \"X Key\" is not a header name: invalid HTTP header name"
        );
        g.auth = GatewayAuth::Bearer;
        s.generic = Some(Box::new(g));
        s.token = token("abc\ndef");
        assert_eq!(
            refused(&s),
            "sms.gateway.token: the secret holds a character an HTTP header cannot carry (a \
             control character or line end)"
        );
    }

    #[test]
    fn form_and_json_escaping() {
        assert_eq!(form_encode("Hi María & co"), "Hi+Mar%C3%ADa+%26+co");
        assert_eq!(json_escape("a \"b\"\n"), "a \\\"b\\\"\\n");
    }

    #[test]
    fn retry_after_seconds_and_dates() {
        let mut h = HeaderMap::new();
        h.insert(RETRY_AFTER, "3".parse().unwrap());
        assert_eq!(retry_after(&h), Some(Duration::from_secs(3)));
        h.insert(
            RETRY_AFTER,
            "Wed, 21 Oct 2015 07:28:00 GMT".parse().unwrap(),
        );
        assert_eq!(retry_after(&h), Some(Duration::ZERO));
    }

    fn generic(success_pointer: &str) -> GenericGateway {
        GenericGateway {
            method: HttpMethod::Post,
            url: "https://gw.example/messages".into(),
            auth: GatewayAuth::None,
            body_format: BodyFormat::Json,
            body_template: String::new(),
            success_status: Vec::new(),
            success_pointer: Some(success_pointer.into()),
            success_value: None,
            id_pointer: Some("/data/id".into()),
            error_pointer: Some("/errors/0/code".into()),
            opted_out_codes: Vec::new(),
            permanent_codes: Vec::new(),
            transient_codes: Vec::new(),
            check_url: None,
        }
    }

    fn kind(d: &Delivery) -> &'static str {
        match d {
            Delivery::Sent { .. } => "sent",
            Delivery::Transient { .. } => "transient",
            Delivery::Permanent { .. } => "permanent",
            Delivery::OptedOut { .. } => "opted out",
            Delivery::Unknown { .. } => "unknown",
            Delivery::Fatal { .. } => "fatal",
        }
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

    #[test]
    fn a_reply_that_broke_off_is_read_by_its_status() {
        let g = generic("/data");
        for (status, want) in [
            (401, "fatal"),
            (503, "transient"),
            (429, "transient"),
            (200, "unknown"),
        ] {
            let status = StatusCode::from_u16(status).unwrap();
            assert_eq!(
                kind(&generic_reply(&g, status, None, None)),
                want,
                "generic {status}"
            );
            assert_eq!(
                kind(&vonage_reply(status, None, None)),
                want,
                "vonage {status}"
            );
        }
    }

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
