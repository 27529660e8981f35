//! The pages a patient sees: the unsubscribe confirmation (`GET`: the clinic's name, the masked
//! address and one button that POSTs; mail scanners follow every link, so a `GET` never
//! unsubscribes), the page after it, and a 404 that says nothing about anyone. The first two
//! are in English or Spanish ([`words`]): the ledger does not record a message's language, so
//! the page takes the one the browser asks for (`Accept-Language`) among the campaign's. No script, no
//! remote content: the styles are inline and the only form posts back to the same URL.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};

use crate::config::Clinic;
use crate::language::Language;
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

/// The words of the unsubscribe pages in one language. `{name}`, `{address}` and `{phone}`
/// stand for the clinic's name, the masked address and the clinic's phone.
pub struct Words {
    /// The page's `lang` attribute.
    pub lang: &'static str,
    confirm_title: &'static str,
    confirm_question: &'static str,
    button: &'static str,
    questions: &'static str,
    done_title: &'static str,
    done_heading: &'static str,
    done_text: &'static str,
    mistake: &'static str,
}

/// English: the pages' words when no other language is asked for and offered.
pub const ENGLISH: Words = Words {
    lang: "en",
    confirm_title: "Unsubscribe from {name}",
    confirm_question: "Stop emails from {name} to <strong>{address}</strong>?",
    button: "Unsubscribe",
    questions: "Questions? Call {name} at {phone}.",
    done_title: "Unsubscribed from {name}",
    done_heading: "You are unsubscribed",
    done_text: "{name} will send no more emails to <strong>{address}</strong>.",
    mistake: "Unsubscribed by mistake? Call {name} at {phone}.",
};

/// Spanish.
pub const SPANISH: Words = Words {
    lang: "es",
    confirm_title: "Cancelar la suscripción a {name}",
    confirm_question: "¿Dejar de recibir correos de {name} en <strong>{address}</strong>?",
    button: "Cancelar la suscripción",
    questions: "¿Preguntas? Llame a {name} al {phone}.",
    done_title: "Suscripción cancelada: {name}",
    done_heading: "Su suscripción está cancelada",
    done_text: "{name} no le enviará más correos a <strong>{address}</strong>.",
    mistake: "¿La canceló por error? Llame a {name} al {phone}.",
};

/// The pages' words for `language` (the one negotiated for the request): Spanish for any `es`
/// tag, else English.
pub fn words(language: Option<&Language>) -> &'static Words {
    match language {
        Some(l) if l.fallbacks().any(|t| t == "es") => &SPANISH,
        _ => &ENGLISH,
    }
}

fn page(status: StatusCode, lang: &str, title: &str, body: &str) -> Response {
    let html = format!(
        "<!doctype html>\n<html lang=\"{lang}\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <meta name=\"robots\" content=\"noindex\">\
         <title>{title}</title>\
         <style>body{{font:16px/1.5 system-ui,sans-serif;max-width:32rem;margin:3rem auto;\
         padding:0 1rem;color:#222}}h1{{font-size:1.4rem}}button{{font:inherit;padding:.6rem \
         1.2rem;border:0;border-radius:.3rem;background:#1d4ed8;color:#fff;cursor:pointer}}\
         .muted{{color:#666;font-size:.9rem}}</style></head>\n<body>\n{body}\n</body></html>\n",
        title = escape_html(title),
    );
    let mut response = (status, Html(html)).into_response();
    // The words depend on the request's Accept-Language: a cache must not hand them to another.
    response
        .headers_mut()
        .insert(header::VARY, HeaderValue::from_static("accept-language"));
    response
}

/// A page's sentence with the clinic's name, the masked address and the phone written in
/// (escaped for HTML, or not for the title).
fn fill(words: &str, clinic: &Clinic, masked: &str, html: bool) -> String {
    let e = |s: &str| if html { escape_html(s) } else { s.to_string() };
    words
        .replace("{name}", &e(&clinic.name))
        .replace("{address}", &e(masked))
        .replace("{phone}", &e(&clinic.phone))
}

/// The confirmation page of a token: one button that POSTs back to this URL.
pub fn confirm(words: &Words, clinic: &Clinic, masked: &str) -> Response {
    let w = |s| fill(s, clinic, masked, true);
    page(
        StatusCode::OK,
        words.lang,
        &fill(words.confirm_title, clinic, masked, false),
        &format!(
            "<h1>{}</h1>\n\
             <p>{}</p>\n\
             <form method=\"post\"><input type=\"hidden\" name=\"unsubscribe\" value=\"page\">\
             <button type=\"submit\">{}</button></form>\n\
             <p class=\"muted\">{}</p>",
            w(words.confirm_title),
            w(words.confirm_question),
            words.button,
            w(words.questions),
        ),
    )
}

/// The page after unsubscribing (or on a later visit).
pub fn done(words: &Words, clinic: &Clinic, masked: &str) -> Response {
    let w = |s| fill(s, clinic, masked, true);
    page(
        StatusCode::OK,
        words.lang,
        &fill(words.done_title, clinic, masked, false),
        &format!(
            "<h1>{}</h1>\n\
             <p>{}</p>\n\
             <p class=\"muted\">{}</p>",
            words.done_heading,
            w(words.done_text),
            w(words.mistake),
        ),
    )
}

/// For a token that is malformed or stands for no message: nothing about anyone.
pub fn not_found() -> Response {
    page(
        StatusCode::NOT_FOUND,
        "en",
        "Link not found",
        "<h1>This link is not valid</h1>\n<p>It may have been copied only in part. If you \
         meant to unsubscribe, use the link in the email as it came, or reply to the email.</p>",
    )
}
