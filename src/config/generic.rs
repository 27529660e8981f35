//! The generic SMS gateway preset: any HTTP API described in the campaign file, by its method,
//! URL, authentication, a body template with `{{placeholders}}`, and where its replies hold
//! success, the message id and error codes. Checked once here, with a sample rendering of the
//! template, so a template that cannot work fails before anything is sent.

use super::error::{ConfigError, Locator};
use super::raw::{RawCode, RawGateway};
use super::values::check_url;

/// How a generic gateway is called and how its replies are read.
#[derive(Debug, Clone)]
pub struct GenericGateway {
    pub method: HttpMethod,
    /// Absolute URL.
    pub url: String,
    pub auth: GatewayAuth,
    pub body_format: BodyFormat,
    /// The request body (or, for GET, the query string) with `{{placeholders}}`.
    pub body_template: String,
    /// Statuses that can mean success; empty: any 2xx.
    pub success_status: Vec<u16>,
    /// A JSON pointer into the reply that must exist (and equal `success_value`, when given).
    pub success_pointer: Option<String>,
    pub success_value: Option<String>,
    /// Where the reply holds the provider's message id.
    pub id_pointer: Option<String>,
    /// Where an error reply holds the provider's error code.
    pub error_pointer: Option<String>,
    pub opted_out_codes: Vec<String>,
    pub permanent_codes: Vec<String>,
    pub transient_codes: Vec<String>,
    /// A URL fetched (GET, same auth) before the first message to check credentials.
    pub check_url: Option<String>,
    /// How `outreach sync` asks about a message (`None`: it cannot; `listen` can).
    pub status: Option<StatusLookup>,
}

/// A generic gateway's status lookup: a GET of `url` with the message's id filled in, its
/// answer read by JSON pointers, its status mapped by the configured lists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusLookup {
    /// Absolute URL with `{{id}}` (the provider's message id) and optionally `{{account}}`.
    pub url: String,
    /// Where the answer holds the status.
    pub status_pointer: String,
    /// Where the answer holds an error code, if it has one.
    pub error_pointer: Option<String>,
    pub delivered: Vec<String>,
    pub undelivered: Vec<String>,
    pub pending: Vec<String>,
}

/// The placeholders a generic status URL may use.
pub const STATUS_PLACEHOLDERS: &[&str] = &["id", "account"];
/// Where a status answer holds the status unless `status_pointer` says.
pub const DEFAULT_STATUS_POINTER: &str = "/status";
/// Statuses that mean delivered unless `status_delivered` says.
pub const DEFAULT_STATUS_DELIVERED: &[&str] = &["delivered"];
/// Statuses that mean the carrier failed it unless `status_undelivered` says.
pub const DEFAULT_STATUS_UNDELIVERED: &[&str] = &["undelivered", "failed", "rejected", "expired"];
/// Statuses that mean not final yet unless `status_pending` says.
pub const DEFAULT_STATUS_PENDING: &[&str] = &[
    "accepted",
    "queued",
    "scheduled",
    "sending",
    "sent",
    "buffered",
];

/// An HTTP method a generic gateway accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HttpMethod {
    Post,
    Put,
    /// The rendered form template becomes the query string.
    Get,
}

/// How a generic gateway authenticates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GatewayAuth {
    None,
    /// `account` and the token.
    Basic,
    /// `Authorization: Bearer <token>`.
    Bearer,
    /// The token in this header.
    Header(String),
}

/// The body a generic gateway takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyFormat {
    /// `application/x-www-form-urlencoded`: placeholders are percent-encoded.
    Form,
    /// `application/json`: placeholders sit inside JSON strings and are escaped for them.
    Json,
}

/// The placeholders a generic body template may use.
pub const GATEWAY_PLACEHOLDERS: &[&str] = &[
    "to",
    "to_digits",
    "from",
    "body",
    "encoding",
    "unicode",
    "segments",
    "campaign",
    "contact",
    "account",
    "status_callback",
];

/// Why a gateway body template cannot be filled.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    #[error("a `{{{{` is not closed by `}}}}`")]
    Unclosed,
    #[error("unknown placeholder {{{{{0}}}}}; known: {known}", known = GATEWAY_PLACEHOLDERS.join(", "))]
    Unknown(String),
}

/// Fills `{{name}}` placeholders of a gateway body template; `value` returns the (already
/// escaped) text for a name, or `None` for an unknown name.
pub fn fill_template(
    template: &str,
    mut value: impl FnMut(&str) -> Option<String>,
) -> Result<String, TemplateError> {
    let mut out = String::with_capacity(template.len() + 64);
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after.find("}}").ok_or(TemplateError::Unclosed)?;
        let name = after[..end].trim();
        out.push_str(&value(name).ok_or_else(|| TemplateError::Unknown(name.to_string()))?);
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Checks the generic preset's keys of `g`. `base_url` (already checked; empty when not given)
/// prefixes a `url` or `check_url` written as a path.
pub(super) fn validate_generic(
    g: &RawGateway,
    loc: &Locator,
    base_url: &str,
) -> Result<GenericGateway, ConfigError> {
    let method = method(g.method.as_deref(), loc)?;
    let url = loc.required(g.url.as_deref(), "sms.gateway.url")?;
    let url = endpoint("sms.gateway.url", url, base_url, loc)?;
    let check_url = g
        .check_url
        .as_deref()
        .map(|u| endpoint("sms.gateway.check_url", u, base_url, loc))
        .transpose()?;
    let auth = auth(g.auth.as_deref(), g.auth_header.as_deref(), loc)?;
    let body_format = body_format(g.body_format.as_deref(), method, loc)?;
    let body_template = loc.required(g.body_template.clone(), "sms.gateway.body_template")?;
    check_body_template(&body_template, body_format, loc)?;

    let success_pointer = pointer("sms.gateway.success_pointer", &g.success_pointer, loc)?;
    if g.success_value.is_some() && success_pointer.is_none() {
        return Err(loc.invalid(
            "sms.gateway.success_value",
            "needs success_pointer (where in the reply to find it)",
        ));
    }
    let success_status = g.success_status.clone().unwrap_or_default();
    if let Some(s) = success_status.iter().find(|s| !(100..600).contains(*s)) {
        return Err(loc.invalid(
            "sms.gateway.success_status",
            format!("{s} is not an HTTP status"),
        ));
    }
    let error_pointer = pointer("sms.gateway.error_pointer", &g.error_pointer, loc)?;
    let [opted_out_codes, permanent_codes, transient_codes] =
        [&g.opted_out_codes, &g.permanent_codes, &g.transient_codes].map(|codes| {
            codes
                .iter()
                .flatten()
                .map(RawCode::text)
                .collect::<Vec<_>>()
        });
    if error_pointer.is_none()
        && !(opted_out_codes.is_empty() && permanent_codes.is_empty() && transient_codes.is_empty())
    {
        return Err(loc.invalid(
            "sms.gateway.error_pointer",
            "error codes are listed but error_pointer (where the reply holds the code) is missing",
        ));
    }
    Ok(GenericGateway {
        method,
        url,
        auth,
        body_format,
        body_template,
        success_status,
        success_pointer,
        success_value: g.success_value.clone(),
        id_pointer: pointer("sms.gateway.id_pointer", &g.id_pointer, loc)?,
        error_pointer,
        opted_out_codes,
        permanent_codes,
        transient_codes,
        check_url,
        status: status_lookup(g, loc, base_url)?,
    })
}

/// The `status_*` keys: a status lookup when `status_url` is given, else none (and then no
/// other `status_*` key may be).
fn status_lookup(
    g: &RawGateway,
    loc: &Locator,
    base_url: &str,
) -> Result<Option<StatusLookup>, ConfigError> {
    const URL: &str = "sms.gateway.status_url";
    let Some(url) = g.status_url.as_deref() else {
        let given = [
            ("status_pointer", g.status_pointer.is_some()),
            ("status_error_pointer", g.status_error_pointer.is_some()),
            ("status_delivered", g.status_delivered.is_some()),
            ("status_undelivered", g.status_undelivered.is_some()),
            ("status_pending", g.status_pending.is_some()),
        ];
        return match given.iter().find(|(_, given)| *given) {
            Some((key, _)) => Err(loc.invalid(
                &format!("sms.gateway.{key}"),
                "needs status_url (where to ask about a message)",
            )),
            None => Ok(None),
        };
    };
    // Filled with a sample id, the URL must be one; unfilled, it must name the id.
    let mut names_id = false;
    let sample = fill_template(url, |name| {
        names_id |= name == "id";
        STATUS_PLACEHOLDERS
            .contains(&name)
            .then(|| "SAMPLE".to_string())
    })
    .map_err(|e| match e {
        TemplateError::Unknown(name) => loc.invalid(
            URL,
            format!(
                "unknown placeholder {{{{{name}}}}}; known: {}",
                STATUS_PLACEHOLDERS.join(", ")
            ),
        ),
        e => loc.invalid(URL, e),
    })?;
    if !names_id {
        return Err(loc.invalid(
            URL,
            "does not name the message: put {{id}} where the gateway's message id goes",
        ));
    }
    let url = endpoint(URL, url, base_url, loc)?;
    endpoint(URL, &sample, base_url, loc)?;
    let status_pointer = pointer("sms.gateway.status_pointer", &g.status_pointer, loc)?
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| DEFAULT_STATUS_POINTER.to_string());
    let list = |given: &Option<Vec<String>>, default: &[&str]| -> Vec<String> {
        match given {
            Some(l) => l.iter().map(|s| s.trim().to_string()).collect(),
            None => default.iter().map(|s| s.to_string()).collect(),
        }
    };
    let delivered = list(&g.status_delivered, DEFAULT_STATUS_DELIVERED);
    let undelivered = list(&g.status_undelivered, DEFAULT_STATUS_UNDELIVERED);
    let pending = list(&g.status_pending, DEFAULT_STATUS_PENDING);
    let lists = [
        ("status_delivered", &delivered),
        ("status_undelivered", &undelivered),
        ("status_pending", &pending),
    ];
    for (i, (key, l)) in lists.iter().enumerate() {
        if *key != "status_pending" && l.is_empty() {
            return Err(loc.invalid(
                &format!("sms.gateway.{key}"),
                "is empty: name the gateway's statuses that mean it",
            ));
        }
        if let Some(blank) = l.iter().find(|s| s.is_empty()) {
            return Err(loc.invalid(
                &format!("sms.gateway.{key}"),
                format!("{blank:?} is not a status"),
            ));
        }
        for (other, o) in &lists[i + 1..] {
            if let Some(both) = l.iter().find(|s| o.contains(s)) {
                return Err(loc.invalid(
                    &format!("sms.gateway.{other}"),
                    format!("{both:?} is also in {key}: a status means one thing"),
                ));
            }
        }
    }
    Ok(Some(StatusLookup {
        url,
        status_pointer,
        error_pointer: pointer(
            "sms.gateway.status_error_pointer",
            &g.status_error_pointer,
            loc,
        )?,
        delivered,
        undelivered,
        pending,
    }))
}

/// `sms.gateway.method`: POST unless given.
fn method(method: Option<&str>, loc: &Locator) -> Result<HttpMethod, ConfigError> {
    match method.unwrap_or("POST").to_ascii_uppercase().as_str() {
        "POST" => Ok(HttpMethod::Post),
        "PUT" => Ok(HttpMethod::Put),
        "GET" => Ok(HttpMethod::Get),
        other => Err(loc.invalid(
            "sms.gateway.method",
            format!("unknown method {other:?}: use \"POST\", \"PUT\" or \"GET\""),
        )),
    }
}

/// The URL at `key`: a URL, or a path joined to `base_url`.
fn endpoint(key: &str, url: &str, base_url: &str, loc: &Locator) -> Result<String, ConfigError> {
    let u = url.trim();
    // A fragment never leaves this machine: a GET's filled template after it would be lost.
    if u.contains('#') {
        return Err(loc.invalid(
            key,
            format!("{u:?} has a #fragment, which is never sent to the server: remove it"),
        ));
    }
    if u.starts_with('/') {
        if base_url.is_empty() {
            return Err(loc.invalid(
                key,
                format!("{u:?} is a path: give a full URL, or base_url as well"),
            ));
        }
        return Ok(format!("{base_url}{u}"));
    }
    loc.at(key, check_url(u))?;
    Ok(u.to_string())
}

/// `sms.gateway.auth` and, for `header`, the header's name (`auth_header`, refused otherwise).
fn auth(
    auth: Option<&str>,
    header: Option<&str>,
    loc: &Locator,
) -> Result<GatewayAuth, ConfigError> {
    let auth = match auth.unwrap_or("none") {
        "none" => GatewayAuth::None,
        "basic" => GatewayAuth::Basic,
        "bearer" => GatewayAuth::Bearer,
        "header" => {
            let h = header.map(str::trim).unwrap_or("");
            if h.is_empty()
                || !h
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_'))
            {
                return Err(loc.invalid(
                    "sms.gateway.auth_header",
                    "auth = \"header\" needs auth_header, a header name such as \"X-API-Key\"",
                ));
            }
            GatewayAuth::Header(h.to_string())
        }
        other => {
            return Err(loc.invalid(
                "sms.gateway.auth",
                format!(
                    "unknown auth {other:?}: use \"none\", \"basic\", \"bearer\" or \"header\""
                ),
            ));
        }
    };
    if header.is_some() && !matches!(auth, GatewayAuth::Header(_)) {
        return Err(loc.invalid(
            "sms.gateway.auth_header",
            "is used only with auth = \"header\"",
        ));
    }
    Ok(auth)
}

/// `sms.gateway.body_format`: form unless given; a GET, which has no body, takes only form.
fn body_format(
    format: Option<&str>,
    method: HttpMethod,
    loc: &Locator,
) -> Result<BodyFormat, ConfigError> {
    let body_format = match format.unwrap_or("form") {
        "form" => BodyFormat::Form,
        "json" => BodyFormat::Json,
        other => {
            return Err(loc.invalid(
                "sms.gateway.body_format",
                format!("unknown format {other:?}: use \"form\" or \"json\""),
            ));
        }
    };
    if method == HttpMethod::Get && body_format == BodyFormat::Json {
        return Err(loc.invalid(
            "sms.gateway.body_format",
            "a GET has no body: its template is a query string, so use \"form\"",
        ));
    }
    Ok(body_format)
}

/// Renders the template once with awkward sample values, so a template that cannot work (an
/// unclosed or unknown placeholder, JSON that breaks once filled in) fails here.
fn check_body_template(
    template: &str,
    format: BodyFormat,
    loc: &Locator,
) -> Result<(), ConfigError> {
    const KEY: &str = "sms.gateway.body_template";
    let sample = fill_template(template, |name| {
        GATEWAY_PLACEHOLDERS.contains(&name).then(|| match format {
            BodyFormat::Json => "a \\\"quoted\\\"\\nline".to_string(),
            BodyFormat::Form => "a%22b".to_string(),
        })
    });
    let sample = loc.at(KEY, sample)?;
    if format == BodyFormat::Json
        && let Err(e) = serde_json::from_str::<serde_json::Value>(&sample)
    {
        return Err(loc.invalid(
            KEY,
            format!(
                "is not JSON once filled in ({e}); placeholders go inside JSON strings, \
                 e.g. {{\"to\": \"{{{{to}}}}\", \"text\": \"{{{{body}}}}\"}}"
            ),
        ));
    }
    Ok(())
}

/// The JSON pointer at `key`, if given.
fn pointer(key: &str, p: &Option<String>, loc: &Locator) -> Result<Option<String>, ConfigError> {
    match p {
        Some(p) if !p.is_empty() && !p.starts_with('/') => Err(loc.invalid(
            key,
            format!("{p:?} is not a JSON pointer (e.g. \"/data/id\", \"/messages/0/status\")"),
        )),
        Some(p) => Ok(Some(p.clone())),
        None => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use crate::config::testing::assert_errors_after;

    /// The generic preset's request: method, URLs, authentication, body format. Exact messages.
    #[test]
    fn generic_request_errors() {
        let cases: &[(&[&str], &str)] = &[
            (
                &[],
                "campaign.toml:24: `sms.gateway.url`: required key is missing",
            ),
            (
                &["sms.gateway.method=PATCH"],
                "--set sms.gateway.method=PATCH: `sms.gateway.method`: unknown method \"PATCH\": use \"POST\", \"PUT\" or \"GET\"",
            ),
            (
                &["sms.gateway.url=/send"],
                "--set sms.gateway.url=/send: `sms.gateway.url`: \"/send\" is a path: give a full URL, or base_url as well",
            ),
            (
                &["sms.gateway.url=\"https://gw.example/send#x\""],
                "--set sms.gateway.url=\"https://gw.example/send#x\": `sms.gateway.url`: \"https://gw.example/send#x\" has a #fragment, which is never sent to the server: remove it",
            ),
            (
                &["sms.gateway.url=\"gw.example/send\""],
                "--set sms.gateway.url=\"gw.example/send\": `sms.gateway.url`: \"gw.example/send\" is not an http(s) URL (e.g. https://riverside.example/book)",
            ),
            (
                &[
                    "sms.gateway.url=\"https://gw.example/send\"",
                    "sms.gateway.check_url=/balance",
                ],
                "--set sms.gateway.check_url=/balance: `sms.gateway.check_url`: \"/balance\" is a path: give a full URL, or base_url as well",
            ),
            (
                &[
                    "sms.gateway.url=\"https://gw.example/send\"",
                    "sms.gateway.auth=magic",
                ],
                "--set sms.gateway.auth=magic: `sms.gateway.auth`: unknown auth \"magic\": use \"none\", \"basic\", \"bearer\" or \"header\"",
            ),
            (
                &[
                    "sms.gateway.url=\"https://gw.example/send\"",
                    "sms.gateway.auth=header",
                ],
                "campaign.toml:24: `sms.gateway.auth_header`: auth = \"header\" needs auth_header, a header name such as \"X-API-Key\"",
            ),
            (
                &[
                    "sms.gateway.url=\"https://gw.example/send\"",
                    "sms.gateway.auth=header",
                    "sms.gateway.auth_header=\"X Key\"",
                ],
                "--set sms.gateway.auth_header=\"X Key\": `sms.gateway.auth_header`: auth = \"header\" needs auth_header, a header name such as \"X-API-Key\"",
            ),
            (
                &[
                    "sms.gateway.url=\"https://gw.example/send\"",
                    "sms.gateway.auth_header=X-Key",
                ],
                "--set sms.gateway.auth_header=X-Key: `sms.gateway.auth_header`: is used only with auth = \"header\"",
            ),
            (
                &[
                    "sms.gateway.url=\"https://gw.example/send\"",
                    "sms.gateway.body_format=xml",
                ],
                "--set sms.gateway.body_format=xml: `sms.gateway.body_format`: unknown format \"xml\": use \"form\" or \"json\"",
            ),
            (
                &[
                    "sms.gateway.url=\"https://gw.example/send\"",
                    "sms.gateway.method=get",
                    "sms.gateway.body_format=json",
                ],
                "--set sms.gateway.body_format=json: `sms.gateway.body_format`: a GET has no body: its template is a query string, so use \"form\"",
            ),
        ];
        assert_errors_after(&["sms.transport=http", "sms.gateway.preset=generic"], cases);
    }

    /// The generic preset's status lookup (`outreach sync`): each key named. Exact messages.
    #[test]
    fn generic_status_lookup_errors() {
        const GW: &[&str] = &[
            "sms.transport=http",
            "sms.gateway.preset=generic",
            "sms.gateway.url=\"https://gw.example/send\"",
            "sms.gateway.body_template=\"to={{to}}\"",
        ];
        let cases: &[(&[&str], &str)] = &[
            (
                &["sms.gateway.status_pointer=/state"],
                "--set sms.gateway.status_pointer=/state: `sms.gateway.status_pointer`: needs status_url (where to ask about a message)",
            ),
            (
                &["sms.gateway.status_url=\"https://gw.example/m\""],
                "--set sms.gateway.status_url=\"https://gw.example/m\": `sms.gateway.status_url`: does not name the message: put {{id}} where the gateway's message id goes",
            ),
            (
                &["sms.gateway.status_url=\"https://gw.example/m/{{sid}}\""],
                "--set sms.gateway.status_url=\"https://gw.example/m/{{sid}}\": `sms.gateway.status_url`: unknown placeholder {{sid}}; known: id, account",
            ),
            (
                &["sms.gateway.status_url=/m/{{id}}"],
                "--set sms.gateway.status_url=/m/{{id}}: `sms.gateway.status_url`: \"/m/{{id}}\" is a path: give a full URL, or base_url as well",
            ),
            (
                &[
                    "sms.gateway.status_url=\"https://gw.example/m/{{id}}\"",
                    "sms.gateway.status_error_pointer=error",
                ],
                "--set sms.gateway.status_error_pointer=error: `sms.gateway.status_error_pointer`: \"error\" is not a JSON pointer (e.g. \"/data/id\", \"/messages/0/status\")",
            ),
            (
                &[
                    "sms.gateway.status_url=\"https://gw.example/m/{{id}}\"",
                    "sms.gateway.status_delivered=[]",
                ],
                "--set sms.gateway.status_delivered=[]: `sms.gateway.status_delivered`: is empty: name the gateway's statuses that mean it",
            ),
            (
                &[
                    "sms.gateway.status_url=\"https://gw.example/m/{{id}}\"",
                    "sms.gateway.status_pending=[\"sent\", \"delivered\"]",
                ],
                "--set sms.gateway.status_pending=[\"sent\", \"delivered\"]: `sms.gateway.status_pending`: \"delivered\" is also in status_delivered: a status means one thing",
            ),
            (
                &["sms.gateway.status_url=\"http://gw.example/m/{{id}}\""],
                "--set sms.gateway.status_url=\"http://gw.example/m/{{id}}\": `sms.gateway.status_url`: \"http://gw.example/m/{{id}}\" would carry the gateway's credentials in clear text: use https://, or set sms.gateway.allow_insecure = true (plain http is allowed to this machine)",
            ),
        ];
        assert_errors_after(GW, cases);
    }

    /// The generic preset's body template, how its replies are read, its credentials, clear text.
    /// Exact messages.
    #[test]
    fn generic_template_and_reply_errors() {
        let cases: &[(&[&str], &str)] = &[
            (
                &["sms.gateway.url=\"https://gw.example/send\""],
                "campaign.toml:24: `sms.gateway.body_template`: required key is missing",
            ),
            (
                &[
                    "sms.gateway.url=\"https://gw.example/send\"",
                    "sms.gateway.body_template=\"to={{to\"",
                ],
                "--set sms.gateway.body_template=\"to={{to\": `sms.gateway.body_template`: a `{{` is not closed by `}}`",
            ),
            (
                &[
                    "sms.gateway.url=\"https://gw.example/send\"",
                    "sms.gateway.body_template=\"to={{ phone }}\"",
                ],
                "--set sms.gateway.body_template=\"to={{ phone }}\": `sms.gateway.body_template`: unknown placeholder {{phone}}; known: to, to_digits, from, body, encoding, unicode, segments, campaign, contact, account, status_callback",
            ),
            (
                &[
                    "sms.gateway.url=\"https://gw.example/send\"",
                    "sms.gateway.body_format=json",
                    "sms.gateway.body_template='{\"to\": {{to}}}'",
                ],
                "--set sms.gateway.body_template='{\"to\": {{to}}}': `sms.gateway.body_template`: is not JSON once filled in (expected value at line 1 column 8); placeholders go inside JSON strings, e.g. {\"to\": \"{{to}}\", \"text\": \"{{body}}\"}",
            ),
            (
                &[
                    "sms.gateway.url=\"https://gw.example/send\"",
                    "sms.gateway.body_template=\"to={{to}}\"",
                    "sms.gateway.success_pointer=data",
                ],
                "--set sms.gateway.success_pointer=data: `sms.gateway.success_pointer`: \"data\" is not a JSON pointer (e.g. \"/data/id\", \"/messages/0/status\")",
            ),
            (
                &[
                    "sms.gateway.url=\"https://gw.example/send\"",
                    "sms.gateway.body_template=\"to={{to}}\"",
                    "sms.gateway.success_value=ok",
                ],
                "--set sms.gateway.success_value=ok: `sms.gateway.success_value`: needs success_pointer (where in the reply to find it)",
            ),
            (
                &[
                    "sms.gateway.url=\"https://gw.example/send\"",
                    "sms.gateway.body_template=\"to={{to}}\"",
                    "sms.gateway.success_status=[200, 99]",
                ],
                "--set sms.gateway.success_status=[200, 99]: `sms.gateway.success_status`: 99 is not an HTTP status",
            ),
            (
                &[
                    "sms.gateway.url=\"https://gw.example/send\"",
                    "sms.gateway.body_template=\"to={{to}}\"",
                    "sms.gateway.error_pointer=code",
                ],
                "--set sms.gateway.error_pointer=code: `sms.gateway.error_pointer`: \"code\" is not a JSON pointer (e.g. \"/data/id\", \"/messages/0/status\")",
            ),
            (
                &[
                    "sms.gateway.url=\"https://gw.example/send\"",
                    "sms.gateway.body_template=\"to={{to}}\"",
                    "sms.gateway.permanent_codes=[1, \"2\"]",
                ],
                "campaign.toml:24: `sms.gateway.error_pointer`: error codes are listed but error_pointer (where the reply holds the code) is missing",
            ),
            (
                &[
                    "sms.gateway.url=\"https://gw.example/send\"",
                    "sms.gateway.body_template=\"to={{to}}\"",
                    "sms.gateway.id_pointer=id",
                ],
                "--set sms.gateway.id_pointer=id: `sms.gateway.id_pointer`: \"id\" is not a JSON pointer (e.g. \"/data/id\", \"/messages/0/status\")",
            ),
            (
                &[
                    "sms.gateway.url=\"https://gw.example/send\"",
                    "sms.gateway.body_template=\"to={{to}}\"",
                    "sms.gateway.auth=bearer",
                ],
                "campaign.toml:24: `sms.gateway.token_env`: the generic preset needs a secret for its auth: name it with token_env or token_file",
            ),
            (
                &[
                    "sms.gateway.url=\"https://gw.example/send\"",
                    "sms.gateway.body_template=\"to={{to}}\"",
                    "sms.gateway.auth=basic",
                    "sms.gateway.token_env=T",
                ],
                "campaign.toml:24: `sms.gateway.account`: auth = \"basic\" needs account (the user name)",
            ),
            (
                &[
                    "sms.gateway.url=\"http://gw.example/send\"",
                    "sms.gateway.body_template=\"to={{to}}\"",
                ],
                "--set sms.gateway.url=\"http://gw.example/send\": `sms.gateway.url`: \"http://gw.example/send\" would carry the gateway's credentials and patients' numbers and messages in clear text: use https://, or set sms.gateway.allow_insecure = true (plain http is allowed to this machine)",
            ),
            (
                &[
                    "sms.gateway.url=\"https://gw.example/send\"",
                    "sms.gateway.check_url=\"http://gw.example/balance\"",
                    "sms.gateway.body_template=\"to={{to}}\"",
                ],
                "--set sms.gateway.check_url=\"http://gw.example/balance\": `sms.gateway.check_url`: \"http://gw.example/balance\" would carry the gateway's credentials in clear text: use https://, or set sms.gateway.allow_insecure = true (plain http is allowed to this machine)",
            ),
        ];
        assert_errors_after(&["sms.transport=http", "sms.gateway.preset=generic"], cases);
    }
}
