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
//!
//! `presets` speaks Twilio and Vonage, `generic` the gateway the campaign describes, `answer`
//! reads what every dialect's answer shares (the body, `Retry-After`, a redirect, what a status
//! alone says); `error` says what can be wrong with the settings.

mod answer;
mod error;
mod generic;
pub mod lookup;
mod presets;

use std::time::Duration;

use futures::future::BoxFuture;
use reqwest::{Client, StatusCode};

pub use error::GatewayError;

use super::{CheckError, Delivery, SmsOut, Transport};
use crate::config::{GatewayPreset, GatewaySettings};
use answer::{read_reply, redirected, retry_after};
use generic::{Generic, generic_reply};
use presets::{Twilio, Vonage, digits, twilio_reply, vonage_reply};

/// Connecting must not take the whole request timeout: a connect failure provably sent nothing
/// and is retried, so it is worth telling apart from a reply that never came.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// A gateway as the send loop sees it.
pub struct Gateway {
    client: Client,
    dialect: Dialect,
    timeout: Duration,
}

/// The API a gateway speaks, with what each request needs prepared once.
enum Dialect {
    Twilio(Twilio),
    Vonage(Vonage),
    Generic(Generic),
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
            GatewayPreset::Twilio => Dialect::Twilio(Twilio::new(settings, secret)?),
            GatewayPreset::Vonage => Dialect::Vonage(Vonage::new(settings, secret)?),
            GatewayPreset::Generic => Dialect::Generic(Generic::new(settings, secret)?),
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
            Dialect::Twilio(twilio) => twilio.request(&self.client, m),
            Dialect::Vonage(vonage) => vonage.request(&self.client, m),
            Dialect::Generic(generic) => match generic.request(&self.client, m) {
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
                    Dialect::Twilio(_) => twilio_reply(status, wait, body),
                    Dialect::Vonage(_) => vonage_reply(status, wait, body),
                    Dialect::Generic(generic) => generic_reply(&generic.spec, status, wait, body),
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
                Dialect::Generic(generic) => {
                    !generic.spec.success_status.contains(&status.as_u16())
                }
                _ => true,
            }
    }

    /// The campaign-file key of the URL messages go to.
    fn url_key(&self) -> &'static str {
        match self.dialect {
            Dialect::Generic(_) => "sms.gateway.url",
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
            Dialect::Twilio(twilio) => (
                twilio.account_request(&self.client),
                "the account",
                "sms.gateway.base_url",
            ),
            Dialect::Vonage(vonage) => return vonage.check(),
            Dialect::Generic(generic) => match generic.check_request(&self.client) {
                Some(request) => {
                    let key = "sms.gateway.check_url";
                    (request, key, key)
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
            Dialect::Twilio(_) => "twilio",
            Dialect::Vonage(_) => "vonage",
            Dialect::Generic(_) => "generic",
        }
    }

    fn check(&self) -> BoxFuture<'_, Result<(), CheckError>> {
        Box::pin(self.check_credentials())
    }

    fn send<'a>(&'a self, message: &'a SmsOut) -> BoxFuture<'a, Delivery> {
        Box::pin(self.send_sms(message))
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{BodyFormat, GatewayAuth, GenericGateway, HttpMethod};

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
            webhook: None,
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

    /// A generic gateway that tests its replies at `success_pointer`.
    pub(super) fn generic(success_pointer: &str) -> GenericGateway {
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
            status: None,
        }
    }

    /// What kind of outcome `d` is.
    pub(super) fn kind(d: &Delivery) -> &'static str {
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
}
