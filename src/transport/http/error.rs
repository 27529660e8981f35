//! What can be wrong with the `[sms.gateway]` settings before any request is made (a token that
//! cannot be read or carried in a header, a URL or header name that is not one, an HTTP client
//! that cannot be built), and the one thing that can stop a generic gateway's request from being
//! made for a message: a body template that cannot be filled.

use reqwest::Url;
use reqwest::header::{InvalidHeaderName, InvalidHeaderValue};

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
