//! Asking a gateway what became of messages it took (`outreach sync`).
//!
//! - Twilio: the Message resource by its sid (`GET …/Messages/{sid}.json`: status, error code),
//!   and the Messages list filtered by `To` and `DateSent>` (what went to one number since a
//!   day), page by page through `next_page_uri`, which settles a message whose send reply was
//!   lost.
//! - A generic gateway: the campaign's `status_url` with the message's id filled in, its answer
//!   read by the configured pointers and status lists. It has no list: its `unknown` rows stay.
//! - Vonage's legacy SMS API has neither; a generic gateway without `status_url` neither.
//!
//! Each answer is classified here, once: a message, a 404 (no such id: counted, not fatal),
//! throttling (429 with its `Retry-After`), rejected credentials (401/403: stop), or a failure
//! to retry another day (5xx, no answer, an unreadable body).

use std::time::Duration;

use reqwest::header::{AUTHORIZATION, HeaderValue};
use reqwest::{Client, RequestBuilder, StatusCode};
use serde_json::Value;

use super::answer::{excerpt, retry_after, text};
use super::error::GatewayError;
use super::generic::Generic;
use super::presets::basic_authorization;
use crate::config::{GatewayPreset, GatewaySettings, StatusLookup};
use crate::webhook::{DeliveryState, Receipt, twilio_state};

/// A message the gateway lists as sent to a number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    pub sid: String,
    pub body: String,
    pub to: String,
}

/// One page of the gateway's list of messages to a number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    pub messages: Vec<Listed>,
    /// The next page's path and query, as the gateway gave it, when there is one.
    pub next: Option<String>,
}

/// Why a lookup has no answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LookupError {
    /// 404: the gateway has no such message.
    #[error("not found (HTTP 404)")]
    NotFound,
    /// 429 (or 503 with `Retry-After`): ask again after the wait.
    #[error("throttled (HTTP {status})")]
    Throttled {
        status: u16,
        retry_after: Option<Duration>,
    },
    /// 401/403: every lookup would fail the same way.
    #[error("credentials rejected (HTTP {status}): {detail}")]
    Rejected { status: u16, detail: String },
    /// Anything else: no answer, 5xx, an unreadable body. Another run asks again.
    #[error("{0}")]
    Failed(String),
}

/// A gateway's status lookups.
pub struct Lookup {
    client: Client,
    dialect: Dialect,
}

enum Dialect {
    Twilio {
        /// `base_url`: a next page's path is joined to it.
        base: String,
        /// `/2010-04-01/Accounts/{account}`.
        root: String,
        authorization: HeaderValue,
    },
    Generic(Box<Generic>),
}

/// Why a gateway cannot be asked.
#[derive(Debug, thiserror::Error)]
pub enum Unsupported {
    #[error("Vonage's SMS API has no status lookup: use outreach listen")]
    Vonage,
    #[error(
        "this generic gateway has no status lookup (sms.gateway.status_url): use outreach \
         listen for its receipts"
    )]
    Generic,
    #[error(transparent)]
    Gateway(#[from] GatewayError),
}

/// The most pages of one number's messages read for one `unknown` row.
pub const MAX_PAGES: usize = 10;

impl Lookup {
    /// The lookups of `settings`' gateway, or why it has none.
    pub fn new(settings: &GatewaySettings) -> Result<Self, Unsupported> {
        let status = settings.generic.as_ref().and_then(|g| g.status.as_ref());
        let asked = match (settings.preset, status) {
            (GatewayPreset::Twilio, _) => settings.base_url.as_str(),
            (GatewayPreset::Vonage, _) => return Err(Unsupported::Vonage),
            (GatewayPreset::Generic, None) => return Err(Unsupported::Generic),
            (GatewayPreset::Generic, Some(s)) => s.url.as_str(),
        };
        let secret = settings
            .token
            .as_ref()
            .map(|s| s.read())
            .transpose()
            .map_err(|e| GatewayError::Token(e.to_string()))?;
        let mut client = Client::builder();
        // As for sending: a gateway on this machine is never reached through a proxy.
        if crate::config::on_this_machine(asked) {
            client = client.no_proxy();
        }
        let client = client
            .user_agent(concat!("outreach/", env!("CARGO_PKG_VERSION")))
            .timeout(settings.timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(GatewayError::Client)?;
        let dialect = match settings.preset {
            GatewayPreset::Generic => Dialect::Generic(Box::new(Generic::new(settings, secret)?)),
            _ => {
                let account = settings.account.as_deref().expect("validated");
                Dialect::Twilio {
                    base: settings.base_url.clone(),
                    root: format!("/2010-04-01/Accounts/{account}"),
                    authorization: basic_authorization(
                        account,
                        &secret.expect("validated: Twilio has a token"),
                    ),
                }
            }
        };
        Ok(Lookup { client, dialect })
    }

    /// Whether the gateway lists the messages sent to a number ([`Lookup::sent_to`]).
    pub fn lists(&self) -> bool {
        matches!(self.dialect, Dialect::Twilio { .. })
    }

    /// What the gateway says of message `id`: its state, status and error code (the recipient
    /// is left to the caller, which knows where it sent the message).
    pub async fn status(&self, id: &str) -> Result<Receipt, LookupError> {
        let request = match &self.dialect {
            Dialect::Twilio {
                base,
                root,
                authorization,
            } => self
                .client
                .get(format!("{base}{root}/Messages/{id}.json"))
                .header(AUTHORIZATION, authorization.clone()),
            Dialect::Generic(g) => g
                .status_request(&self.client, id)
                .expect("a generic Lookup has a status URL"),
        };
        let v = get(request).await?;
        let (state, status, error_code) = match &self.dialect {
            Dialect::Twilio { .. } => twilio_status(&v)?,
            Dialect::Generic(g) => generic_status(&v, g.spec.status.as_ref().expect("checked"))?,
        };
        Ok(Receipt {
            provider_id: id.to_string(),
            state,
            status,
            error_code,
            carrier_time: None,
            recipient: None,
        })
    }

    /// A page of the messages sent to `to` since `since` (RFC 3339; Twilio compares by day),
    /// newest first: the first page, or the one `next` (a previous page's) names. A `next`
    /// outside this account's Messages list is not followed.
    pub async fn sent_to(
        &self,
        to: &str,
        since: &str,
        next: Option<&str>,
    ) -> Result<Page, LookupError> {
        let Dialect::Twilio {
            base,
            root,
            authorization,
        } = &self.dialect
        else {
            return Ok(Page {
                messages: Vec::new(),
                next: None,
            });
        };
        let list = format!("{root}/Messages.json");
        let url = match next {
            Some(path) => format!("{base}{path}"),
            None => reqwest::Url::parse_with_params(
                &format!("{base}{list}"),
                [("To", to), ("DateSent>", since), ("PageSize", "1000")],
            )
            .map_err(|e| LookupError::Failed(format!("the list's URL: {e}")))?
            .to_string(),
        };
        let v = get(self
            .client
            .get(url)
            .header(AUTHORIZATION, authorization.clone()))
        .await?;
        let messages = v["messages"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default()
            .iter()
            .filter(|m| text(&m["direction"]).is_none_or(|d| d.starts_with("outbound")))
            .filter_map(|m| {
                Some(Listed {
                    sid: text(&m["sid"])?,
                    body: text(&m["body"]).unwrap_or_default(),
                    to: text(&m["to"]).unwrap_or_default(),
                })
            })
            .collect();
        // Only a path into this account's list is followed: the credentials go with it.
        let next = text(&v["next_page_uri"])
            .filter(|p| p.starts_with(&format!("{list}?")) && Some(p.as_str()) != next);
        Ok(Page { messages, next })
    }
}

/// What a status answer holds: its state, status and error code.
type Read = Result<(DeliveryState, String, Option<String>), LookupError>;

fn twilio_status(v: &Value) -> Read {
    let status =
        text(&v["status"]).ok_or_else(|| LookupError::Failed("no status in the answer".into()))?;
    Ok((twilio_state(&status), status, error_code(&v["error_code"])))
}

fn generic_status(v: &Value, lookup: &StatusLookup) -> Read {
    let status = v
        .pointer(&lookup.status_pointer)
        .and_then(text)
        .ok_or_else(|| {
            LookupError::Failed(format!(
                "no status at {} in the answer",
                lookup.status_pointer
            ))
        })?;
    let state = if lookup.delivered.contains(&status) {
        DeliveryState::Delivered
    } else if lookup.undelivered.contains(&status) {
        DeliveryState::Undelivered
    } else if lookup.pending.is_empty() || lookup.pending.contains(&status) {
        DeliveryState::Pending
    } else {
        return Err(LookupError::Failed(format!(
            "status {status:?} is in none of status_delivered, status_undelivered and \
             status_pending"
        )));
    };
    let code = lookup
        .error_pointer
        .as_deref()
        .and_then(|p| v.pointer(p))
        .and_then(error_code);
    Ok((state, status, code))
}

/// An error code as recorded: `None` for absent, `null`, empty or 0.
fn error_code(v: &Value) -> Option<String> {
    text(v).filter(|c| !c.is_empty() && c != "0")
}

async fn get(request: RequestBuilder) -> Result<Value, LookupError> {
    let response = request
        .send()
        .await
        .map_err(|e| LookupError::Failed(format!("no answer: {e}")))?;
    let status = response.status();
    let wait = retry_after(response.headers());
    let body = response
        .bytes()
        .await
        .map_err(|e| LookupError::Failed(format!("HTTP {status}, body lost: {e}")))?;
    classify(status, wait, &body)
}

/// What an answer means.
fn classify(status: StatusCode, wait: Option<Duration>, body: &[u8]) -> Result<Value, LookupError> {
    match status.as_u16() {
        200..=299 => serde_json::from_slice(body)
            .map_err(|_| LookupError::Failed(format!("HTTP {status}: {}", excerpt(body)))),
        404 => Err(LookupError::NotFound),
        401 | 403 => Err(LookupError::Rejected {
            status: status.as_u16(),
            detail: excerpt(body),
        }),
        429 => Err(LookupError::Throttled {
            status: 429,
            retry_after: wait,
        }),
        503 if wait.is_some() => Err(LookupError::Throttled {
            status: 503,
            retry_after: wait,
        }),
        _ => Err(LookupError::Failed(format!(
            "HTTP {status}: {}",
            excerpt(body)
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_classified_once() {
        let ok = classify(StatusCode::OK, None, br#"{"sid":"SM1"}"#).unwrap();
        assert_eq!(ok["sid"], "SM1");
        assert_eq!(
            classify(StatusCode::NOT_FOUND, None, b""),
            Err(LookupError::NotFound)
        );
        let wait = Some(Duration::from_secs(2));
        assert_eq!(
            classify(StatusCode::TOO_MANY_REQUESTS, wait, b""),
            Err(LookupError::Throttled {
                status: 429,
                retry_after: wait
            })
        );
        assert!(matches!(
            classify(StatusCode::UNAUTHORIZED, None, b"{}"),
            Err(LookupError::Rejected { status: 401, .. })
        ));
        assert!(matches!(
            classify(StatusCode::BAD_GATEWAY, None, b""),
            Err(LookupError::Failed(_))
        ));
    }

    #[test]
    fn a_generic_status_is_read_by_its_pointers_and_lists() {
        let lookup = StatusLookup {
            url: "https://gw.example/m/{{id}}".into(),
            status_pointer: "/data/state".into(),
            error_pointer: Some("/data/error".into()),
            delivered: vec!["DELIVRD".into()],
            undelivered: vec!["UNDELIV".into()],
            pending: vec!["ENROUTE".into()],
        };
        let read = |v: Value| generic_status(&v, &lookup);
        assert_eq!(
            read(serde_json::json!({"data": {"state": "UNDELIV", "error": 7}})),
            Ok((
                DeliveryState::Undelivered,
                "UNDELIV".into(),
                Some("7".into())
            ))
        );
        assert_eq!(
            read(serde_json::json!({"data": {"state": "ENROUTE", "error": 0}})),
            Ok((DeliveryState::Pending, "ENROUTE".into(), None))
        );
        assert_eq!(
            read(serde_json::json!({"data": {"state": "ODD"}})),
            Err(LookupError::Failed(
                "status \"ODD\" is in none of status_delivered, status_undelivered and \
                 status_pending"
                    .into()
            ))
        );
        assert_eq!(
            read(serde_json::json!({"state": "DELIVRD"})),
            Err(LookupError::Failed(
                "no status at /data/state in the answer".into()
            ))
        );
    }
}
