//! `[listen]` and `[sms.gateway.webhook]`: where `outreach listen` is reached, and how each
//! provider's requests to it are proven to be the provider's. The public base URL is what
//! providers request and what their signatures are computed over; every route of the server is
//! below it (`/unsubscribe/TOKEN`, `/sms/CAMPAIGN/status`, `/sms/CAMPAIGN/inbound`). When it is
//! set, the email's unsubscribe link and the SMS gateway's status callback default to it.

use std::path::{Path, PathBuf};

use super::error::{ConfigError, Locator};
use super::raw::{RawListen, RawWebhook};
use super::secrets::{SecretSource, secret_source};
use super::values::{check_url, is_loopback};
use crate::webhook::{Encoding, ReceiptPointers, StateMap, TwilioAlgorithm, VonageMethod};

/// Where `outreach listen` binds unless told otherwise: this machine only.
pub const DEFAULT_LISTEN_ADDR: &str = "127.0.0.1:8026";

/// `[listen]`, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenSettings {
    /// The public base URL, without a trailing slash (`https://outreach.riverside.example`).
    pub base_url: String,
    /// The address the server binds.
    pub addr: String,
    /// Its own certificate and key (PEM), for a server reached without a reverse proxy.
    pub tls: Option<TlsFiles>,
    /// A patient's HELP (INFO, AYUDA) is answered with the clinic's name and phone. Off by
    /// default: Twilio answers HELP itself unless told not to, and two answers confuse.
    pub help_reply: bool,
}

/// A certificate chain and its private key, PEM files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl ListenSettings {
    /// The public URL of a route (`path` starts with `/`).
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    /// The path part of the base URL (empty, or `/outreach`): every route is below it.
    pub fn path_prefix(&self) -> &str {
        let rest = self
            .base_url
            .split_once("://")
            .map_or(self.base_url.as_str(), |(_, r)| r);
        rest.find('/').map_or("", |i| &rest[i..])
    }

    /// The unsubscribe link of the emails, when the campaign names none.
    pub fn unsubscribe_url(&self) -> String {
        self.url("/unsubscribe/{{token}}")
    }

    /// Where a campaign's SMS delivery receipts go.
    pub fn status_url(&self, campaign: &str) -> String {
        self.url(&format!("/sms/{campaign}/status"))
    }

    /// Where replies to a campaign's SMS go.
    pub fn inbound_url(&self, campaign: &str) -> String {
        self.url(&format!("/sms/{campaign}/inbound"))
    }
}

/// How a gateway's webhook requests are checked: the algorithm is the configuration's, never the
/// request's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WebhookCheck {
    /// `X-Twilio-Signature`: HMAC-SHA1 with the auth token, or the algorithm of a Webhook
    /// Setting with its shared key.
    Twilio(TwilioAlgorithm),
    /// Vonage's signed webhooks (`sig`); MD5 methods only when allowed.
    Vonage {
        method: VonageMethod,
        allow_md5: bool,
    },
    /// A header holding the shared secret itself.
    SharedSecret { header: String },
    /// A header holding an HMAC-SHA256 of the body.
    BodyHmac {
        header: String,
        encoding: Encoding,
        prefix: String,
    },
}

/// `[sms.gateway.webhook]`, checked for the preset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookSettings {
    pub check: WebhookCheck,
    /// The secret requests are signed with. `None` for Twilio: the gateway's auth token.
    pub key: Option<SecretSource>,
    /// Vonage delivery receipts by GET (their parameters, numbers included, end up in proxy
    /// logs): refused unless set.
    pub accept_get: bool,
    /// A generic gateway's receipts: where each field is, and which statuses are final.
    pub receipts: Option<(ReceiptPointers, StateMap)>,
}

/// Checks `[listen]`.
pub(super) fn validate_listen(
    raw: RawListen,
    loc: &Locator,
    dir: &Path,
) -> Result<ListenSettings, ConfigError> {
    let base_url = loc.non_empty(raw.base_url, "listen.base_url")?;
    let base_url = base_url.trim_end_matches('/').to_string();
    loc.at("listen.base_url", check_url(&base_url))?;
    if base_url.contains(['?', '#']) {
        return Err(loc.invalid(
            "listen.base_url",
            "must be a plain base URL, without a query or fragment",
        ));
    }
    let host = base_url
        .split_once("://")
        .map(|(_, r)| r.split(['/', ':']).next().unwrap_or(""))
        .unwrap_or("");
    if base_url.starts_with("http://") && !is_loopback(host) && !raw.allow_insecure.unwrap_or(false)
    {
        return Err(loc.invalid(
            "listen.base_url",
            "is http:// off this machine: providers would send patients' numbers and replies in \
             clear text; use https:// (a reverse proxy, or tls_cert_file and tls_key_file), or \
             set allow_insecure = true",
        ));
    }
    let addr = raw
        .addr
        .map(|a| a.trim().to_string())
        .unwrap_or_else(|| DEFAULT_LISTEN_ADDR.to_string());
    if addr.parse::<std::net::SocketAddr>().is_err() {
        return Err(loc.invalid(
            "listen.addr",
            format!("{addr:?} is not an address and port (e.g. {DEFAULT_LISTEN_ADDR})"),
        ));
    }
    let tls = match (raw.tls_cert_file, raw.tls_key_file) {
        (None, None) => None,
        (Some(cert), Some(key)) => Some(TlsFiles {
            cert: loc.resolve("listen.tls_cert_file", &cert, dir),
            key: loc.resolve("listen.tls_key_file", &key, dir),
        }),
        (Some(_), None) => {
            return Err(loc.invalid("listen.tls_cert_file", "needs tls_key_file too"));
        }
        (None, Some(_)) => {
            return Err(loc.invalid("listen.tls_key_file", "needs tls_cert_file too"));
        }
    };
    Ok(ListenSettings {
        base_url,
        addr,
        tls,
        help_reply: raw.help_reply.unwrap_or(false),
    })
}

/// Checks `[sms.gateway.webhook]` for `preset` (`"twilio"`, `"vonage"` or `"generic"`).
pub(super) fn validate_webhook(
    raw: RawWebhook,
    preset: &str,
    loc: &Locator,
    dir: &Path,
) -> Result<WebhookSettings, ConfigError> {
    const KEY: &str = "sms.gateway.webhook.key";
    let key = secret_source(
        raw.key_env.as_deref(),
        raw.key_file.as_deref(),
        loc,
        KEY,
        dir,
    )?;
    let refuse = |name: &str, set: bool| {
        if set {
            Err(loc.invalid(
                &format!("sms.gateway.webhook.{name}"),
                format!("is not used by the {preset} preset"),
            ))
        } else {
            Ok(())
        }
    };
    let generic_keys = raw.header.is_some()
        || raw.encoding.is_some()
        || raw.prefix.is_some()
        || raw.id_pointer.is_some()
        || raw.status_pointer.is_some();
    let algorithm = raw.algorithm.as_deref().map(str::trim);
    let check = match preset {
        "twilio" => {
            refuse("allow_md5", raw.allow_md5.is_some())?;
            refuse("accept_get", raw.accept_get.is_some())?;
            refuse("header", generic_keys)?;
            let alg = match algorithm.unwrap_or("HMAC_SHA1") {
                "HMAC_SHA1" | "hmac-sha1" | "sha1" => TwilioAlgorithm::HmacSha1,
                "HMAC_SHA256" | "hmac-sha256" | "sha256" => TwilioAlgorithm::HmacSha256,
                other => {
                    return Err(loc.invalid(
                        "sms.gateway.webhook.algorithm",
                        format!(
                            "unknown algorithm {other:?}: use \"HMAC_SHA1\" or \"HMAC_SHA256\""
                        ),
                    ));
                }
            };
            if alg == TwilioAlgorithm::HmacSha256 && key.is_none() {
                return Err(loc.invalid(
                    "sms.gateway.webhook.algorithm",
                    "HMAC_SHA256 is a Webhook Setting's: name its shared key with key_env or key_file",
                ));
            }
            WebhookCheck::Twilio(alg)
        }
        "vonage" => {
            refuse("header", generic_keys)?;
            if key.is_none() {
                return Err(loc.invalid(
                    "sms.gateway.webhook.key_env",
                    "Vonage signs webhooks with the account's signature secret: name it with \
                     key_env or key_file",
                ));
            }
            let name = algorithm.unwrap_or("sha256");
            let method = VonageMethod::from_name(name).ok_or_else(|| {
                loc.invalid(
                    "sms.gateway.webhook.algorithm",
                    format!(
                        "unknown signature method {name:?}: use {}",
                        VonageMethod::ALL.map(|(n, _)| format!("{n:?}")).join(", ")
                    ),
                )
            })?;
            let allow_md5 = raw.allow_md5.unwrap_or(false);
            if method.uses_md5() && !allow_md5 {
                return Err(loc.invalid(
                    "sms.gateway.webhook.algorithm",
                    format!(
                        "{name:?} is MD5, which no longer resists forgery: choose \"sha256\" in \
                         the Vonage dashboard, or set allow_md5 = true"
                    ),
                ));
            }
            WebhookCheck::Vonage { method, allow_md5 }
        }
        _ => {
            refuse("allow_md5", raw.allow_md5.is_some())?;
            refuse("accept_get", raw.accept_get.is_some())?;
            generic_check(&raw, algorithm, key.is_some(), loc)?
        }
    };
    let receipts = if preset == "generic" {
        Some(generic_receipts(&raw, loc)?)
    } else {
        None
    };
    Ok(WebhookSettings {
        check,
        key,
        accept_get: raw.accept_get.unwrap_or(false),
        receipts,
    })
}

/// A generic gateway's check: the header and how it proves the request.
fn generic_check(
    raw: &RawWebhook,
    algorithm: Option<&str>,
    has_key: bool,
    loc: &Locator,
) -> Result<WebhookCheck, ConfigError> {
    if !has_key {
        return Err(loc.invalid(
            "sms.gateway.webhook.key_env",
            "a generic gateway's webhooks are checked with a secret: name it with key_env or \
             key_file",
        ));
    }
    let header = loc.non_empty(raw.header.clone(), "sms.gateway.webhook.header")?;
    Ok(match algorithm.unwrap_or("shared-secret") {
        "shared-secret" => WebhookCheck::SharedSecret { header },
        "hmac-sha256" => WebhookCheck::BodyHmac {
            header,
            encoding: match raw.encoding.as_deref().unwrap_or("hex") {
                "hex" => Encoding::Hex,
                "base64" => Encoding::Base64,
                other => {
                    return Err(loc.invalid(
                        "sms.gateway.webhook.encoding",
                        format!("unknown encoding {other:?}: use \"hex\" or \"base64\""),
                    ));
                }
            },
            prefix: raw.prefix.clone().unwrap_or_default(),
        },
        other => {
            return Err(loc.invalid(
                "sms.gateway.webhook.algorithm",
                format!("unknown algorithm {other:?}: use \"shared-secret\" or \"hmac-sha256\""),
            ));
        }
    })
}

/// A generic gateway's receipts: JSON pointers and the statuses that are final.
fn generic_receipts(
    raw: &RawWebhook,
    loc: &Locator,
) -> Result<(ReceiptPointers, StateMap), ConfigError> {
    let pointer = |value: Option<&String>, key: &str| -> Result<Option<String>, ConfigError> {
        match value {
            Some(p) if !p.is_empty() && !p.starts_with('/') => Err(loc.invalid(
                &format!("sms.gateway.webhook.{key}"),
                format!("{p:?} is not a JSON pointer (they start with /, e.g. \"/data/id\")"),
            )),
            other => Ok(other.cloned()),
        }
    };
    let id = pointer(raw.id_pointer.as_ref(), "id_pointer")?;
    let status = pointer(raw.status_pointer.as_ref(), "status_pointer")?;
    let id = loc.non_empty(id, "sms.gateway.webhook.id_pointer")?;
    let status = loc.non_empty(status, "sms.gateway.webhook.status_pointer")?;
    let states = StateMap {
        delivered: raw.delivered.clone().unwrap_or_default(),
        undelivered: raw.undelivered.clone().unwrap_or_default(),
    };
    if states.delivered.is_empty() {
        return Err(loc.invalid(
            "sms.gateway.webhook.delivered",
            "name the statuses that mean delivered (e.g. [\"delivered\"])",
        ));
    }
    Ok((
        ReceiptPointers {
            id,
            status,
            error_code: pointer(raw.error_pointer.as_ref(), "error_pointer")?,
            time: None,
            recipient: None,
        },
        states,
    ))
}

#[cfg(test)]
mod tests {
    use crate::config::testing::{BASE, assert_errors_after, load_error};

    #[test]
    fn listen_errors_name_the_key() {
        assert_errors_after(
            &[],
            &[
                (
                    &["listen.base_url=\"http://outreach.riverside.example\""],
                    "--set listen.base_url=\"http://outreach.riverside.example\": \
                     `listen.base_url`: is http:// off this machine: providers would send \
                     patients' numbers and replies in clear text; use https:// (a reverse \
                     proxy, or tls_cert_file and tls_key_file), or set allow_insecure = true",
                ),
                (
                    &[
                        "listen.base_url=\"https://o.riverside.example\"",
                        "listen.addr=\"localhost\"",
                    ],
                    "--set listen.addr=\"localhost\": `listen.addr`: \"localhost\" is not an \
                     address and port (e.g. 127.0.0.1:8026)",
                ),
            ],
        );
        let twilio = BASE.replace(
            "[sms]\nfrom = \"+13125550100\"\n",
            "[sms]\nfrom = \"+13125550100\"\ntransport = \"http\"\n[sms.gateway]\npreset = \
             \"vonage\"\napi_key = \"k\"\ntoken_env = \"T\"\n[sms.gateway.webhook]\nkey_env = \
             \"S\"\nalgorithm = \"md5hash\"\n",
        );
        assert!(
            load_error(&twilio, &[]).ends_with(
                "`sms.gateway.webhook.algorithm`: \"md5hash\" is MD5, which no longer resists \
                 forgery: choose \"sha256\" in the Vonage dashboard, or set allow_md5 = true"
            ),
            "{}",
            load_error(&twilio, &[])
        );
    }
}
