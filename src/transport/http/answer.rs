//! What every gateway's answer is read for, whatever its dialect: the body, cut at a size no
//! gateway needs; `Retry-After`; a redirect, which is never followed and says so without the
//! credentials or the query its `Location` may carry; what a status alone says (credentials
//! rejected, no such endpoint, throttling, a server error); and the JSON helpers the dialects
//! read their bodies with.

use std::time::Duration;

use reqwest::header::{HeaderMap, LOCATION, RETRY_AFTER};
use reqwest::{StatusCode, Url};
use serde_json::Value;

use crate::transport::Delivery;

/// The most of a reply that is read: a gateway answers in a few hundred bytes, and an error page
/// or a server that never stops sending must not fill the run's memory (or hold the message
/// until the timeout makes it `unknown`).
const MAX_REPLY: usize = 64 * 1024;

/// A reply's body, cut at [`MAX_REPLY`] bytes; `None` when it broke off (or timed out) first.
pub(super) async fn read_reply(mut response: reqwest::Response) -> Option<Vec<u8>> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.ok()? {
        body.extend_from_slice(&chunk[..chunk.len().min(MAX_REPLY - body.len())]);
        if body.len() == MAX_REPLY {
            break;
        }
    }
    Some(body)
}

/// `Retry-After` as seconds or an HTTP date.
pub(super) fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let v = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let when = chrono::DateTime::parse_from_rfc2822(v).ok()?;
    let wait = when.with_timezone(&chrono::Utc) - chrono::Utc::now();
    Some(wait.to_std().unwrap_or(Duration::ZERO))
}

/// The error for a redirect not followed; `key`: the campaign-file key to change.
pub(super) fn redirected(status: StatusCode, headers: &HeaderMap, key: &str) -> String {
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
pub(super) fn unreadable(status: StatusCode, wait: Option<Duration>) -> Delivery {
    let detail = ", the reply could not be read";
    by_status(status, wait, detail).unwrap_or_else(|| Delivery::Unknown {
        error: format!("HTTP {status}{detail}"),
    })
}

/// What every dialect agrees on, whatever the body says: credentials (401/403), an address or
/// a request format the gateway does not take (404/405/415: every message would get the same,
/// so it is nobody's failure), a proxy's 502/504 (unknown), throttling (429) and the provider's
/// own server errors (500, 503: transient).
pub(super) fn by_status(
    status: StatusCode,
    wait: Option<Duration>,
    detail: &str,
) -> Option<Delivery> {
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
    } else if matches!(status.as_u16(), 502 | 504) {
        // A proxy's "bad gateway" or "gateway timeout" can come after the provider took the
        // request: nobody can tell whether it went, so it is never sent again on its own.
        Some(Delivery::Unknown {
            error: format!("{error} (a proxy's answer: the gateway may have taken the message)"),
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

/// A body as JSON, if it is that.
pub(super) fn json(body: &[u8]) -> Option<Value> {
    serde_json::from_slice(body).ok()
}

/// A JSON value as text: strings as they are, numbers and booleans written out.
pub(super) fn text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// A short excerpt of a body that is not what was expected.
pub(super) fn excerpt(body: &[u8]) -> String {
    let s = String::from_utf8_lossy(body);
    let s = s.trim();
    match s.char_indices().nth(200) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
