//! Asking a gateway what became of messages it took (`outreach sync`): Twilio's Message
//! resource by its sid (`GET …/Messages/{sid}.json`: status, error code, segments), and its
//! Messages list filtered by `To` and `DateSent>` (what went to one number since a day), which
//! settles a message whose send reply was lost. Vonage's legacy SMS API has neither; a generic
//! gateway's status URL is not supported yet.
//!
//! Each answer is classified here, once: a message, a 404 (no such sid: counted, not fatal),
//! throttling (429 with its `Retry-After`), rejected credentials (401/403: stop), or a failure
//! to retry another day (5xx, no answer, an unreadable body).

use std::time::Duration;

use reqwest::header::{AUTHORIZATION, HeaderValue};
use reqwest::{Client, StatusCode};
use serde_json::Value;

use super::answer::{excerpt, retry_after, text};
use super::error::GatewayError;
use super::presets::basic_authorization;
use crate::config::{GatewayPreset, GatewaySettings};

/// What the gateway says of one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    pub sid: String,
    /// The provider's word (`queued`, `sent`, `delivered`, `undelivered`, `failed`, …).
    pub status: String,
    /// The error code, `None` when absent or 0.
    pub error_code: Option<String>,
    pub segments: Option<u32>,
    pub price: Option<String>,
}

/// A message the gateway lists as sent to a number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    pub sid: String,
    pub body: String,
    pub to: String,
    pub segments: Option<u32>,
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
    /// `…/2010-04-01/Accounts/{account}`.
    root: String,
    authorization: HeaderValue,
}

/// Why a gateway cannot be asked.
#[derive(Debug, thiserror::Error)]
pub enum Unsupported {
    #[error("Vonage's SMS API has no status lookup: use outreach listen")]
    Vonage,
    #[error(
        "a generic gateway's status lookup is not supported yet: use outreach listen for its \
         receipts"
    )]
    Generic,
    #[error(transparent)]
    Gateway(#[from] GatewayError),
}

impl Lookup {
    /// The lookups of `settings`' gateway, or why it has none.
    pub fn new(settings: &GatewaySettings) -> Result<Self, Unsupported> {
        match settings.preset {
            GatewayPreset::Twilio => {}
            GatewayPreset::Vonage => return Err(Unsupported::Vonage),
            GatewayPreset::Generic => return Err(Unsupported::Generic),
        }
        let token = settings
            .token
            .as_ref()
            .expect("validated: Twilio has a token")
            .read()
            .map_err(|e| GatewayError::Token(e.to_string()))?;
        let account = settings.account.as_deref().expect("validated");
        let mut client = Client::builder();
        if crate::config::on_this_machine(&settings.base_url) {
            client = client.no_proxy();
        }
        let client = client
            .user_agent(concat!("outreach/", env!("CARGO_PKG_VERSION")))
            .timeout(settings.timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(GatewayError::Client)?;
        Ok(Lookup {
            client,
            root: format!("{}/2010-04-01/Accounts/{account}", settings.base_url),
            authorization: basic_authorization(account, &token),
        })
    }

    /// Twilio's Message resource `sid`.
    pub async fn status(&self, sid: &str) -> Result<Status, LookupError> {
        let url = format!("{}/Messages/{sid}.json", self.root);
        let v = self.get(self.client.get(url)).await?;
        Ok(Status {
            sid: text(&v["sid"]).unwrap_or_else(|| sid.to_string()),
            status: text(&v["status"])
                .ok_or_else(|| LookupError::Failed("no status in the answer".into()))?,
            // Twilio writes `null` for none; 0 means none too.
            error_code: text(&v["error_code"]).filter(|c| !c.is_empty() && c != "0"),
            segments: text(&v["num_segments"]).and_then(|s| s.parse().ok()),
            price: text(&v["price"]),
        })
    }

    /// The messages sent to `to` since `since` (RFC 3339; Twilio compares by day), first page
    /// of up to 1000 (newest first): enough for one number within a day or two.
    pub async fn sent_to(&self, to: &str, since: &str) -> Result<Vec<Listed>, LookupError> {
        let url = reqwest::Url::parse_with_params(
            &format!("{}/Messages.json", self.root),
            [("To", to), ("DateSent>", since), ("PageSize", "1000")],
        )
        .map_err(|e| LookupError::Failed(format!("the list's URL: {e}")))?;
        let v = self.get(self.client.get(url)).await?;
        let listed = v["messages"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default();
        Ok(listed
            .iter()
            .filter(|m| text(&m["direction"]).is_none_or(|d| d.starts_with("outbound")))
            .filter_map(|m| {
                Some(Listed {
                    sid: text(&m["sid"])?,
                    body: text(&m["body"]).unwrap_or_default(),
                    to: text(&m["to"]).unwrap_or_default(),
                    segments: text(&m["num_segments"]).and_then(|s| s.parse().ok()),
                })
            })
            .collect())
    }

    async fn get(&self, request: reqwest::RequestBuilder) -> Result<Value, LookupError> {
        let response = request
            .header(AUTHORIZATION, self.authorization.clone())
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
}
