//! A gateway's webhooks: delivery receipts (`/sms/CAMPAIGN/status`) and patients' replies
//! (`/sms/CAMPAIGN/inbound`). Each request is checked with the algorithm and secret the
//! campaign's configuration names for its gateway before anything of it is read for meaning;
//! a request that fails the check is answered 403 and nothing of it is recorded.

use axum::http::{HeaderMap, Method, StatusCode};

use super::setup::Gateway;
use crate::config::{GatewayPreset, WebhookCheck};
use crate::webhook::{
    self, Inbound, Params, ParseError, Receipt, VONAGE_SIGNATURE_WINDOW_SECS, VerifyError,
    VonageKey,
};

/// What a request carried, as received.
pub struct Request<'a> {
    pub method: &'a Method,
    /// The full public URL the provider requested (the base URL's origin, then the path and
    /// query as received).
    pub url: &'a str,
    pub query: &'a str,
    pub headers: &'a HeaderMap,
    pub body: &'a [u8],
}

/// Why a request is refused.
#[derive(Debug)]
pub enum Refused {
    /// Not provably the provider's: 403.
    Forged(VerifyError),
    /// Authentic, but not something to record: 400.
    Unreadable(ParseError),
    /// A method the gateway's configuration does not accept (a Vonage GET unless allowed): 405.
    Method,
}

impl Refused {
    pub fn status(&self) -> StatusCode {
        match self {
            Refused::Forged(_) => StatusCode::FORBIDDEN,
            Refused::Unreadable(_) => StatusCode::BAD_REQUEST,
            Refused::Method => StatusCode::METHOD_NOT_ALLOWED,
        }
    }
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refused::Forged(e) => write!(f, "refused: {e}"),
            Refused::Unreadable(e) => write!(f, "unreadable: {e}"),
            Refused::Method => f.write_str("refused: this method is not accepted here"),
        }
    }
}

/// The parameters of an authentic request, checked as `gateway` says; `now` in Unix seconds
/// (Vonage's freshness window).
pub fn verified(gateway: &Gateway, req: &Request<'_>, now: i64) -> Result<Params, Refused> {
    let header = |name: &str| req.headers.get(name).and_then(|v| v.to_str().ok());
    let json = header("content-type").is_some_and(|t| t.starts_with("application/json"));
    let is_get = *req.method == Method::GET;
    if is_get && !(gateway.preset == GatewayPreset::Vonage && gateway.settings.accept_get) {
        return Err(Refused::Method);
    }
    let params = || -> Result<Params, Refused> {
        if is_get {
            Ok(Params::from_form(req.query.as_bytes()))
        } else if json {
            Params::from_json(req.body).map_err(Refused::Unreadable)
        } else {
            Ok(Params::from_form(req.body))
        }
    };
    let key = &gateway.key;
    match &gateway.settings.check {
        WebhookCheck::Twilio(alg) => {
            let signature = header(webhook::TWILIO_SIGNATURE_HEADER);
            if json {
                webhook::verify_twilio_json(key, *alg, req.url, req.body, signature)
                    .map_err(Refused::Forged)?;
                params()
            } else {
                let params = params()?;
                webhook::verify_twilio(key, *alg, req.url, &params, signature)
                    .map_err(Refused::Forged)?;
                Ok(params)
            }
        }
        WebhookCheck::Vonage { method, allow_md5 } => {
            let params = params()?;
            let signer =
                VonageKey::new(key.clone(), *method, *allow_md5).map_err(Refused::Forged)?;
            signer
                .verify(&params, now, VONAGE_SIGNATURE_WINDOW_SECS)
                .map_err(Refused::Forged)?;
            Ok(params)
        }
        // A generic gateway's receipt is read from the body by JSON pointers, not as
        // parameters (its JSON may nest).
        WebhookCheck::SharedSecret { header: name } => {
            webhook::verify_shared_secret(key, header(name)).map_err(Refused::Forged)?;
            if json {
                Ok(Params::default())
            } else {
                params()
            }
        }
        WebhookCheck::BodyHmac {
            header: name,
            encoding,
            prefix,
        } => {
            webhook::verify_body_hmac(key, req.body, header(name), *encoding, prefix)
                .map_err(Refused::Forged)?;
            if json {
                Ok(Params::default())
            } else {
                params()
            }
        }
    }
}

/// The delivery receipt an authentic request carries.
pub fn receipt(gateway: &Gateway, params: &Params, body: &[u8]) -> Result<Receipt, Refused> {
    match gateway.preset {
        GatewayPreset::Twilio => webhook::twilio_receipt(params),
        GatewayPreset::Vonage => webhook::vonage_receipt(params),
        GatewayPreset::Generic => {
            let (pointers, states) = gateway
                .settings
                .receipts
                .as_ref()
                .expect("validated: a generic webhook names its pointers");
            webhook::generic_receipt(body, pointers, states)
        }
    }
    .map_err(Refused::Unreadable)
}

/// The reply an authentic request carries (Twilio and Vonage; a generic gateway's replies are
/// not read).
pub fn inbound(gateway: &Gateway, params: &Params) -> Result<Option<Inbound>, Refused> {
    match gateway.preset {
        GatewayPreset::Twilio => webhook::twilio_inbound(params).map(Some),
        GatewayPreset::Vonage => webhook::vonage_inbound(params).map(Some),
        GatewayPreset::Generic => Ok(None),
    }
    .map_err(Refused::Unreadable)
}
