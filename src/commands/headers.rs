//! The security headers of every answer the servers give (`preview --serve`, `listen`): the
//! page's content policy, no type sniffing, no referrer, nothing cached (pages show patient
//! data).

use axum::http::{HeaderValue, header};
use axum::response::Response;

/// `response` with the security headers, `csp` its Content-Security-Policy.
pub fn secure(mut response: Response, csp: &'static str) -> Response {
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(csp),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}
