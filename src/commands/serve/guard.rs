//! Who may see the preview: every response gets the security headers; on loopback the `Host`
//! header must name this machine (no DNS rebinding), off it every request needs the random token
//! printed at start (then kept in a cookie).

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// The cookie that carries the token after the first request that gave it in the query.
const COOKIE: &str = "outreach_token";

/// What a request must bring.
pub(super) struct Gate {
    /// The token off loopback.
    pub token: Option<String>,
    /// Host header values accepted (host part, lowercase); `None` off loopback.
    pub hosts: Option<Vec<String>>,
}

/// Security headers on every response; the Host check on loopback; the token off it.
pub(super) async fn guard(State(gate): State<Arc<Gate>>, req: Request, next: Next) -> Response {
    if let Some(hosts) = &gate.hosts {
        let host = req
            .headers()
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or("");
        if !host_allowed(host, hosts) {
            return secure(
                (
                    StatusCode::MISDIRECTED_REQUEST,
                    "this preview answers on loopback only\n",
                )
                    .into_response(),
            );
        }
    }
    let mut set_cookie = None;
    if let Some(token) = &gate.token {
        let given = req.uri().query().and_then(|q| {
            q.split('&')
                .find_map(|kv| kv.strip_prefix("token=").map(str::to_string))
        });
        let cookie = req
            .headers()
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .find_map(|kv| {
                kv.trim()
                    .strip_prefix(COOKIE)
                    .and_then(|r| r.strip_prefix('='))
                    .map(str::to_string)
            });
        if given.as_deref().is_some_and(|g| same(g, token)) {
            set_cookie = Some(format!(
                "{COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict"
            ));
        } else if !cookie.as_deref().is_some_and(|c| same(c, token)) {
            return secure(
                (
                    StatusCode::UNAUTHORIZED,
                    "this preview needs its token: open the address `outreach preview --serve` printed\n",
                )
                    .into_response(),
            );
        }
    }
    let mut response = next.run(req).await;
    if let Some(c) = set_cookie
        && let Ok(v) = HeaderValue::from_str(&c)
    {
        response.headers_mut().insert(header::SET_COOKIE, v);
    }
    secure(response)
}

/// Whether a Host header (`name` or `name:port`) names one of `hosts`.
fn host_allowed(host: &str, hosts: &[String]) -> bool {
    let host = host.to_ascii_lowercase();
    let name = match host.rfind(':') {
        Some(i) if !host.ends_with(']') => &host[..i],
        _ => host.as_str(),
    };
    hosts.iter().any(|h| h == name)
}

/// Compares a given token with the real one in time independent of where they differ.
fn same(given: &str, token: &str) -> bool {
    given.len() == token.len()
        && given
            .bytes()
            .zip(token.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}

/// The policy of every response: nothing loads from anywhere but this server, the one script
/// is `/app.js`, and nothing here can be framed by another site.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'unsafe-inline'; \
    img-src 'self' data:; connect-src 'self'; frame-src 'none'; form-action 'self'; \
    base-uri 'none'; frame-ancestors 'none'";

pub(super) fn secure(response: Response) -> Response {
    crate::commands::headers::secure(response, CSP)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_names_loopback_or_not() {
        let hosts: Vec<String> = ["127.0.0.1", "localhost", "[::1]"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        for ok in [
            "127.0.0.1:8025",
            "localhost:8025",
            "LOCALHOST",
            "[::1]:8025",
            "[::1]",
        ] {
            assert!(host_allowed(ok, &hosts), "{ok}");
        }
        for bad in [
            "",
            "evil.example:8025",
            "127.0.0.1.evil.example",
            "localhost.:80",
            "[::2]",
        ] {
            assert!(!host_allowed(bad, &hosts), "{bad}");
        }
    }

    #[test]
    fn token_comparison() {
        assert!(same("abc123", "abc123"));
        assert!(!same("abc124", "abc123"));
        assert!(!same("abc12", "abc123"));
        assert!(!same("", "abc123"));
    }
}
