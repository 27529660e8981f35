//! `outreach listen`: the server a clinic runs beside cron, behind its HTTPS reverse proxy (or
//! with its own certificate), that closes the loop: one-click unsubscribes and the unsubscribe
//! page, SMS delivery receipts, and patients' replies (STOP, START, HELP, and everything else
//! for staff). It serves the campaigns of one state directory and records into its ledger, so
//! with SQLite it runs on the host that holds that directory.
//!
//! Every request is hostile until checked: a token must be well formed and indexed, a
//! provider's request must carry its signature under the configured secret (else 403 and
//! nothing recorded), bodies over 64 KiB are refused (413). What is recorded is committed
//! before the answer (see `store::feedback_writer`), and everything is idempotent: a provider
//! retries. The files: `setup.rs` (what is served, checked before binding), `pages.rs` (the
//! patient's pages and the security headers), `sms.rs` (a gateway's webhooks, checked and
//! read), `tls.rs` (HTTPS with the clinic's own certificate), and this one (routes, handlers,
//! the server's life).

mod pages;
mod setup;
mod sms;
mod tls;

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

pub use setup::{ListenError, Site, site};

use crate::config::{Clinic, GatewayPreset};
use crate::model::{Channel, Clock, mask};
use crate::store::feedback::{ReceiptRecord, ReplyAction, ReplyKind, ReplyRecord, TokenRow};
use crate::store::feedback_writer::{Answer, FeedbackHandle, FeedbackWriter, Op};
use crate::store::ledger::Ledger;
use crate::token::TokenKey;
use crate::webhook::Keyword;
use pages::Words;

/// Bodies larger than this are refused (413): no webhook or form is near it.
pub const MAX_BODY: usize = 64 * 1024;

/// `outreach listen`'s options.
pub struct Options {
    pub campaigns: Vec<std::path::PathBuf>,
    pub overrides: Vec<String>,
    /// Overrides `[listen] addr`.
    pub addr: Option<String>,
    pub quiet: bool,
}

/// What every handler shares.
struct App {
    site: Site,
    /// The base URL's scheme and host: a request's public URL is this, then its path.
    origin: String,
    writer: FeedbackHandle,
    clock: Clock,
}

/// Runs the server until SIGTERM or Ctrl-C; requests in flight finish first.
pub fn run(opts: &Options) -> Result<(), ListenError> {
    let mut site = site(&opts.campaigns, &opts.overrides)?;
    if let Some(addr) = &opts.addr {
        site.listen.addr = addr.clone();
    }
    let clock = Clock::from_env().map_err(|e| ListenError::State {
        path: site.state_dir.clone(),
        source: std::io::Error::other(e.to_string()),
    })?;
    let key = TokenKey::load_or_create(&site.state_dir).map_err(|source| ListenError::State {
        path: site.state_dir.clone(),
        source,
    })?;
    let mut ledger = Ledger::open_store(&site.store)?;
    // Emails claimed by earlier versions have no indexed token yet.
    let indexed =
        ledger.index_tokens(|campaign, address| key.token(campaign, Channel::Email, address))?;
    if indexed > 0 {
        tracing::info!("indexed the unsubscribe tokens of {indexed} earlier emails");
    }
    let writer = FeedbackWriter::start(ledger, Arc::new(move || clock.now()));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|source| ListenError::State {
            path: site.state_dir.clone(),
            source,
        })?;
    let origin = origin(&site.listen.base_url);
    let served = runtime.block_on(serve(
        App {
            site,
            origin,
            writer: writer.handle(),
            clock,
        },
        opts.quiet,
    ));
    drop(runtime);
    writer.finish();
    served
}

/// The scheme and host of a base URL (what precedes its path).
fn origin(base_url: &str) -> String {
    let (scheme, rest) = base_url.split_once("://").unwrap_or(("https", base_url));
    let host = rest.split('/').next().unwrap_or(rest);
    format!("{scheme}://{host}")
}

async fn serve(app: App, quiet: bool) -> Result<(), ListenError> {
    let addr = app.site.listen.addr.clone();
    // Before binding: a certificate or key that cannot be used stops the start.
    let tls = app
        .site
        .listen
        .tls
        .as_ref()
        .map(tls::acceptor)
        .transpose()?;
    let listener = tokio::net::TcpListener::bind(&addr)
        .await
        .map_err(|source| ListenError::Bind {
            addr: addr.clone(),
            source,
        })?;
    if !quiet {
        announce(&app.site, &listener);
    }
    let prefix = app.site.listen.path_prefix().to_string();
    let router = Router::new()
        .route(
            &format!("{prefix}/unsubscribe/{{token}}"),
            get(unsubscribe_page).post(unsubscribe),
        )
        .route(
            &format!("{prefix}/unsubscribe"),
            get(unsubscribe_page_query).post(unsubscribe_query),
        )
        .route(
            &format!("{prefix}/sms/{{campaign}}/status"),
            post(sms_status).get(sms_status),
        )
        .route(
            &format!("{prefix}/sms/{{campaign}}/inbound"),
            post(sms_inbound).get(sms_inbound),
        )
        .fallback(|| async { pages::not_found() })
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .layer(axum::middleware::map_response(|r: Response| async move {
            pages::secure(r)
        }))
        .with_state(Arc::new(app));
    tls::serve(listener, tls, router, shutdown())
        .await
        .map_err(|source| ListenError::Bind { addr, source })
}

/// Resolves on SIGTERM or Ctrl-C.
async fn shutdown() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = term => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}

/// Says where the server listens and which URL each provider gets, in one write (a reader of
/// the first line has the rest).
fn announce(site: &Site, listener: &tokio::net::TcpListener) {
    use std::fmt::Write as _;
    use std::io::Write as _;
    let bound = listener
        .local_addr()
        .map_or_else(|_| site.listen.addr.clone(), |a| a.to_string());
    let mut text = format!(
        "Listening on {bound} for {} (state directory {})\n  unsubscribe links: {}\n",
        site.listen.base_url,
        crate::paths::show_path(&site.state_dir),
        site.listen.unsubscribe_url()
    );
    for (id, served) in &site.campaigns {
        if let Some(g) = &served.gateway {
            let name = match g.preset {
                GatewayPreset::Twilio => "Twilio",
                GatewayPreset::Vonage => "Vonage",
                GatewayPreset::Generic => "the gateway",
            };
            let _ = writeln!(
                text,
                "  campaign {id}: give {name} {} for delivery receipts and {} for replies",
                site.listen.status_url(id),
                site.listen.inbound_url(id)
            );
        }
    }
    for line in &site.deaf {
        let _ = writeln!(text, "  {line}");
    }
    let mut out = crate::terminal::stdout();
    let _ = out.write_all(text.as_bytes());
    let _ = out.flush();
}

/// Whether `token` could be a token at all: 26 characters of a-z and 2-7.
fn well_formed(token: &str) -> bool {
    token.len() == 26
        && token
            .bytes()
            .all(|b| b.is_ascii_lowercase() || (b'2'..=b'7').contains(&b))
}

/// The clinic a token's page speaks for (its campaign's, else the first served campaign's), and
/// the words it speaks in: those of the language the request's `Accept-Language` prefers among
/// the campaign's, else English.
fn clinic_of<'a>(
    app: &'a App,
    row: &TokenRow,
    headers: &HeaderMap,
) -> (&'a Clinic, &'static Words) {
    let served = app
        .site
        .campaigns
        .get(&row.campaign)
        .or_else(|| app.site.campaigns.values().next())
        .expect("at least one campaign");
    let accept = headers
        .get(header::ACCEPT_LANGUAGE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let language = crate::language::negotiate(accept, &served.languages);
    (&served.campaign.clinic, pages::words(language))
}

/// A ledger that cannot record: 503, so the provider (or the patient) tries again.
fn unavailable(e: &crate::store::ledger::LedgerError) -> Response {
    tracing::warn!("not recorded: {e}");
    (
        StatusCode::SERVICE_UNAVAILABLE,
        "not recorded, try again later\n",
    )
        .into_response()
}

async fn unsubscribe_page(
    State(app): State<Arc<App>>,
    Path(token): Path<String>,
    headers: HeaderMap,
) -> Response {
    if !well_formed(&token) {
        return pages::not_found();
    }
    match app.writer.submit(Op::Lookup(token)).await {
        Ok(Answer::Token(Some(row))) => {
            let masked = mask(row.channel, &row.address);
            let (clinic, words) = clinic_of(&app, &row, &headers);
            if row.suppressed {
                pages::done(words, clinic, &masked)
            } else {
                pages::confirm(words, clinic, &masked)
            }
        }
        Ok(_) => pages::not_found(),
        Err(e) => unavailable(&e),
    }
}

async fn unsubscribe(
    State(app): State<Arc<App>>,
    Path(token): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if !well_formed(&token) {
        return pages::not_found();
    }
    // RFC 8058: the body is `List-Unsubscribe=One-Click`, urlencoded or as multipart form data.
    // The page's own button says `unsubscribe=page`. Any POST to a valid token unsubscribes:
    // mail scanners GET links, they do not POST forms.
    let one_click = body
        .windows(b"One-Click".len())
        .any(|w| w.eq_ignore_ascii_case(b"One-Click"));
    let how = if one_click { "one-click" } else { "page" };
    match app.writer.submit(Op::Unsubscribe { token, how }).await {
        Ok(Answer::Token(Some(row))) => {
            tracing::info!(
                campaign = %row.campaign,
                to = %mask(row.channel, &row.address),
                "unsubscribed ({how})"
            );
            let (clinic, words) = clinic_of(&app, &row, &headers);
            pages::done(words, clinic, &mask(row.channel, &row.address))
        }
        Ok(_) => pages::not_found(),
        Err(e) => unavailable(&e),
    }
}

async fn unsubscribe_page_query(
    state: State<Arc<App>>,
    Query(q): Query<BTreeMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let token = q.get("t").cloned().unwrap_or_default();
    unsubscribe_page(state, Path(token), headers).await
}

async fn unsubscribe_query(
    state: State<Arc<App>>,
    Query(q): Query<BTreeMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let token = q.get("t").cloned().unwrap_or_default();
    unsubscribe(state, Path(token), headers, body).await
}

/// The served campaign's gateway and the request, checked; or the answer that refuses it.
fn checked(
    app: &App,
    campaign: &str,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(setup::Gateway, crate::webhook::Params), Box<Response>> {
    let Some(gateway) = app
        .site
        .campaigns
        .get(campaign)
        .and_then(|s| s.gateway.clone())
    else {
        return Err(Box::new(pages::not_found()));
    };
    let url = format!(
        "{}{}",
        app.origin,
        uri.path_and_query().map_or("/", |p| p.as_str())
    );
    let request = sms::Request {
        method,
        url: &url,
        query: uri.query().unwrap_or(""),
        headers,
        body,
    };
    match sms::verified(&gateway, &request, app.clock.now().timestamp()) {
        Ok(params) => Ok((gateway, params)),
        Err(refused) => {
            tracing::warn!("{} {}: {refused}", method, uri.path());
            Err(Box::new(
                (refused.status(), format!("{refused}\n")).into_response(),
            ))
        }
    }
}

async fn sms_status(
    State(app): State<Arc<App>>,
    Path(campaign): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (gateway, params) = match checked(&app, &campaign, &method, &uri, &headers, &body) {
        Ok(v) => v,
        Err(r) => return *r,
    };
    let receipt = match sms::receipt(&gateway, &params, &body) {
        Ok(r) => r,
        Err(refused) => return (refused.status(), format!("{refused}\n")).into_response(),
    };
    let region = app.site.campaigns[&campaign].campaign.clinic.region;
    let id = receipt.provider_id.clone();
    let to = receipt.recipient.as_deref().map(|r| e164(r, region));
    let record = ReceiptRecord::new(
        crate::webhook::Receipt {
            recipient: to.clone(),
            ..receipt
        },
        &gateway.codes,
        "outreach listen",
    );
    let masked = mask(Channel::Sms, to.as_deref().unwrap_or(""));
    match app.writer.submit(Op::Receipt(record)).await {
        Ok(Answer::Receipt(done)) => {
            if !done.matched {
                tracing::info!(%id, to = %masked, "a receipt for an id no sent message has (yet): kept");
            }
            if done.suppressed {
                tracing::info!(%id, to = %masked, "suppressed for SMS by the receipt's error code");
            }
            StatusCode::NO_CONTENT.into_response()
        }
        Ok(_) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => unavailable(&e),
    }
}

async fn sms_inbound(
    State(app): State<Arc<App>>,
    Path(campaign): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (gateway, params) = match checked(&app, &campaign, &method, &uri, &headers, &body) {
        Ok(v) => v,
        Err(r) => return *r,
    };
    let inbound = match sms::inbound(&gateway, &params) {
        Ok(Some(i)) => i,
        Ok(None) => return pages::not_found(),
        Err(refused) => return (refused.status(), format!("{refused}\n")).into_response(),
    };
    let served = &app.site.campaigns[&campaign];
    let region = served.campaign.clinic.region;
    // Vonage writes numbers without the `+`; both ends are kept in E.164 where they are
    // numbers (a START must find the STOP whichever provider carried it).
    let from = e164(&inbound.from, region);
    let to = e164(&inbound.to, region);
    // One part of a longer message is kept for staff: an opt-out word is never split.
    let kind = match (&inbound.part, crate::webhook::classify(&inbound.body)) {
        (Some(_), _) => ReplyKind::Other,
        (None, Keyword::OptOut) => ReplyKind::OptOut,
        (None, Keyword::OptIn) => ReplyKind::OptIn,
        (None, Keyword::Help) => ReplyKind::Help,
        (None, Keyword::Other) => ReplyKind::Other,
    };
    let record = ReplyRecord {
        provider_id: inbound.provider_id.clone(),
        campaign: campaign.clone(),
        from: from.clone(),
        to,
        body: inbound.body.clone(),
        kind,
        part: inbound
            .part
            .as_ref()
            .map(|p| (p.reference.clone(), p.number, p.total)),
    };
    let action = match app.writer.submit(Op::Reply(record)).await {
        Ok(Answer::Reply(action)) => action,
        Ok(_) => ReplyAction::Kept,
        Err(e) => return unavailable(&e),
    };
    tracing::info!(from = %mask(Channel::Sms, &from), kind = kind.as_str(), "reply: {}", action.as_str());
    let help =
        (kind == ReplyKind::Help && action != ReplyAction::Repeated && app.site.listen.help_reply)
            .then(|| {
                let clinic = &served.campaign.clinic;
                format!(
                    "{}: call {}. Reply STOP to opt out.",
                    clinic.name, clinic.phone
                )
            });
    match gateway.preset {
        // Twilio reads the answer as TwiML: an empty one sends nothing.
        GatewayPreset::Twilio => twiml(help.as_deref()),
        _ => StatusCode::NO_CONTENT.into_response(),
    }
}

/// A number as a provider wrote it (`+13125550101`, Vonage's `13125550101`) in E.164; a short
/// code or a sender name as written.
fn e164(written: &str, region: phonenumber::country::Id) -> String {
    let plus = if !written.starts_with('+')
        && written.len() > 7
        && written.bytes().all(|b| b.is_ascii_digit())
    {
        format!("+{written}")
    } else {
        written.to_string()
    };
    crate::address::E164Phone::parse(&plus, region).map_or(plus, |p| p.as_str().to_string())
}

/// A TwiML answer: one message back, or none.
fn twiml(message: Option<&str>) -> Response {
    let body = match message {
        Some(m) => format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response><Message>{}</Message></Response>",
            crate::templates::escape_html(m)
        ),
        None => "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response/>".to_string(),
    };
    ([(header::CONTENT_TYPE, "text/xml; charset=utf-8")], body).into_response()
}
