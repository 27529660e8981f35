//! The pages a patient sees: the unsubscribe confirmation (`GET`: the clinic's name, the masked
//! address and one button that POSTs; mail scanners follow every link, so a `GET` never
//! unsubscribes), the page after it, and a 404 that says nothing about anyone. No script, no
//! remote content: the styles are inline and the only form posts back to the same URL.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};

use crate::config::Clinic;
use crate::templates::escape_html;

/// Every response's policy: nothing loads from anywhere, no script runs, the one form posts
/// back here, and no other site may frame the page.
pub const CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; \
    base-uri 'none'; frame-ancestors 'none'";

/// The security headers of every response, as the preview server's (with this policy).
pub fn secure(response: Response) -> Response {
    let mut response = crate::commands::headers::secure(response, CSP);
    response
        .headers_mut()
        .insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    response
}

fn page(status: StatusCode, title: &str, body: &str) -> Response {
    let html = format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <meta name=\"robots\" content=\"noindex\">\
         <title>{title}</title>\
         <style>body{{font:16px/1.5 system-ui,sans-serif;max-width:32rem;margin:3rem auto;\
         padding:0 1rem;color:#222}}h1{{font-size:1.4rem}}button{{font:inherit;padding:.6rem \
         1.2rem;border:0;border-radius:.3rem;background:#1d4ed8;color:#fff;cursor:pointer}}\
         .muted{{color:#666;font-size:.9rem}}</style></head>\n<body>\n{body}\n</body></html>\n",
        title = escape_html(title),
    );
    (status, Html(html)).into_response()
}

/// The confirmation page of a token: one button that POSTs back to this URL.
pub fn confirm(clinic: &Clinic, masked: &str) -> Response {
    let name = escape_html(&clinic.name);
    page(
        StatusCode::OK,
        &format!("Unsubscribe from {}", clinic.name),
        &format!(
            "<h1>Unsubscribe from {name}</h1>\n\
             <p>Stop emails from {name} to <strong>{}</strong>?</p>\n\
             <form method=\"post\"><input type=\"hidden\" name=\"unsubscribe\" value=\"page\">\
             <button type=\"submit\">Unsubscribe</button></form>\n\
             <p class=\"muted\">Questions? Call {name} at {}.</p>",
            escape_html(masked),
            escape_html(&clinic.phone)
        ),
    )
}

/// The page after unsubscribing (or on a later visit).
pub fn done(clinic: &Clinic, masked: &str) -> Response {
    let name = escape_html(&clinic.name);
    page(
        StatusCode::OK,
        &format!("Unsubscribed from {}", clinic.name),
        &format!(
            "<h1>You are unsubscribed</h1>\n\
             <p>{name} will send no more emails to <strong>{}</strong>.</p>\n\
             <p class=\"muted\">Unsubscribed by mistake? Call {name} at {}.</p>",
            escape_html(masked),
            escape_html(&clinic.phone)
        ),
    )
}

/// For a token that is malformed or stands for no message: nothing about anyone.
pub fn not_found() -> Response {
    page(
        StatusCode::NOT_FOUND,
        "Link not found",
        "<h1>This link is not valid</h1>\n<p>It may have been copied only in part. If you \
         meant to unsubscribe, use the link in the email as it came, or reply to the email.</p>",
    )
}
