//! `outreach preview --serve`: the preview as a local web site that follows every edit. The
//! recipient list (search, filters by channel and plan state), each email as a mail client shows
//! it (in a sandboxed iframe, at desktop and phone width) with its text part, headers and `.eml`,
//! each SMS as a phone bubble with its counts and the characters outside GSM-7 marked; `check`'s
//! findings beside the contact they concern.
//!
//! A watcher re-loads the campaign when its file, templates, contacts, suppression lists or
//! ledger change, and tells open pages by Server-Sent Events (`/events`; `/version` for polling);
//! a campaign that no longer loads (a template syntax error) shows its error, file and line, in
//! the page, and the server keeps running. Rendering is [`crate::preview`]'s and decisions are
//! [`Loaded::outcome`]'s: the pages show what `preview --out` and `send` would.
//!
//! It never sends. Every page is self-contained (inline CSS, one script served by the binary) and
//! every response carries a Content-Security-Policy that forbids loads from anywhere else. The
//! pages hold patient data: off loopback (`--allow-remote`) every request needs a random token,
//! and on loopback the Host header must name loopback (no DNS rebinding).

use std::convert::Infallible;
use std::fmt::Write as _;
use std::io::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use axum::Router;
use axum::extract::{Path as UrlPath, Query, State};
use axum::http::{StatusCode, header};
use axum::middleware;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use tokio::sync::watch;

mod guard;

use guard::{Gate, guard};

use crate::commands::check::{self, Finding};
use crate::commands::preview::{self, Links};
use crate::load::Loaded;
use crate::model::Channel;
use crate::render::Rendered;
use crate::templates::escape_html as escape;

/// Default address of `--serve`.
pub const DEFAULT_ADDR: &str = "127.0.0.1:8025";

/// How often the watched files are looked at. Polling a dozen files' metadata costs nothing and
/// sees every way editors save (in place, or a new file renamed over the old one).
const POLL: Duration = Duration::from_millis(150);

/// Rows listed at most on one page (the totals count every contact); search and filters reach
/// the others. Rendering is per request, so a list of 100,000 stays a page that loads.
const LIST_LIMIT: usize = 500;

/// What `--serve` needs.
#[derive(Debug, Clone)]
pub struct Options {
    pub addr: String,
    pub allow_remote: bool,
    pub campaign: PathBuf,
    pub overrides: Vec<String>,
    pub only: Option<Channel>,
    pub quiet: bool,
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("--serve {0:?}: not an address and port (e.g. {DEFAULT_ADDR})")]
    Addr(String),
    #[error(
        "--serve {0}: not a loopback address; the pages hold patient data, so serving them to \
         other machines needs --allow-remote (every request then needs the token printed at start)"
    )]
    Remote(SocketAddr),
    #[error("listening on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("starting the async runtime: {0}")]
    Runtime(std::io::Error),
}

/// Why the pages show no campaign.
#[derive(Debug, thiserror::Error)]
enum NotLoaded {
    #[error(transparent)]
    Load(crate::load::LoadError),
    #[error("loading the campaign failed unexpectedly; save again to retry")]
    Panicked,
}

/// The campaign as last loaded.
struct Site {
    /// Bumped on every re-load; pages compare it with theirs.
    version: u64,
    loaded: Result<Loaded, NotLoaded>,
    approval: Option<String>,
    /// `check`'s errors (true) and warnings (false).
    findings: Vec<(Finding, bool)>,
}

struct App {
    site: RwLock<Site>,
    version: watch::Sender<u64>,
    only: Option<Channel>,
}

/// Serves the preview until interrupted.
pub fn run(opts: &Options) -> Result<(), ServeError> {
    let addr: SocketAddr = opts
        .addr
        .parse()
        .map_err(|_| ServeError::Addr(opts.addr.clone()))?;
    if !addr.ip().is_loopback() && !opts.allow_remote {
        return Err(ServeError::Remote(addr));
    }
    let token = opts.allow_remote.then(|| {
        let mut bytes = [0u8; 16];
        getrandom::fill(&mut bytes).expect("the OS random source");
        data_encoding::HEXLOWER.encode(&bytes)
    });
    let hosts = (!opts.allow_remote).then(|| {
        let ip = match addr.ip() {
            std::net::IpAddr::V6(ip) => format!("[{ip}]"),
            ip => ip.to_string(),
        };
        vec![ip, "localhost".into(), "127.0.0.1".into(), "[::1]".into()]
    });
    // Stamped before the first load and before the address is printed: an edit made as soon as
    // the page is up (or while it loads) is always seen.
    let paths = watched(opts, &[]);
    let stamped = stamp(&paths);
    let site = load(opts, 0);
    let (version, _) = watch::channel(0u64);
    let gate = Arc::new(Gate { token, hosts });
    let app = Arc::new(App {
        site: RwLock::new(site),
        version,
        only: opts.only,
    });

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(ServeError::Runtime)?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|source| ServeError::Listen { addr, source })?;
        let bound = listener
            .local_addr()
            .map_err(|source| ServeError::Listen { addr, source })?;
        // The token is printed even with -q: without it nobody can open the pages.
        if !opts.quiet || gate.token.is_some() {
            let query = gate
                .token
                .as_ref()
                .map(|t| format!("?token={t}"))
                .unwrap_or_default();
            let url = format!("http://{bound}/{query}");
            let mut out = crate::terminal::stdout();
            let _ = if opts.quiet {
                writeln!(out, "{url}")
            } else {
                writeln!(
                    out,
                    "Serving the preview of {} at {url}\n\
                     It follows every edit of the campaign, templates and contacts; nothing is \
                     sent. Ctrl-C stops it.",
                    opts.campaign.display()
                )
            };
            let _ = out.flush();
        }
        let watcher = Arc::clone(&app);
        let opts = opts.clone();
        std::thread::spawn(move || watch_files(&opts, &watcher, paths, stamped));

        let router = Router::new()
            .route("/", get(index))
            .route("/app.js", get(script))
            .route("/events", get(events))
            .route("/version", get(current_version))
            .route("/m/{line}/{view}", get(message))
            .layer(middleware::from_fn_with_state(gate, guard))
            .with_state(app);
        tokio::select! {
            r = axum::serve(listener, router) => r.map_err(|source| ServeError::Listen { addr, source }),
            _ = tokio::signal::ctrl_c() => Ok(()),
        }
    })
}

/// Loads the campaign and what the pages show beside it.
fn load(opts: &Options, version: u64) -> Site {
    let loaded = Loaded::load(&opts.campaign, &opts.overrides)
        .and_then(|l| l.check_reach(opts.only).map(|()| l));
    match loaded {
        Ok(loaded) => {
            let report = check::run(&loaded);
            let approval = crate::approval::status(&loaded)
                .ok()
                .filter(|s| s.worth_showing())
                .map(|s| s.to_string());
            let mut findings: Vec<(Finding, bool)> =
                report.errors.into_iter().map(|f| (f, true)).collect();
            findings.extend(report.warnings.into_iter().map(|f| (f, false)));
            Site {
                version,
                loaded: Ok(loaded),
                approval,
                findings,
            }
        }
        Err(e) => Site {
            version,
            loaded: Err(NotLoaded::Load(e)),
            approval: None,
            findings: Vec::new(),
        },
    }
}

/// The files a campaign is made of (and its ledger, for the states of earlier runs). Read from
/// the campaign file alone, so a broken template or CSV is still watched; when the campaign file
/// itself does not load, the files of its last good version stay watched.
fn watched(opts: &Options, previous: &[PathBuf]) -> Vec<PathBuf> {
    let Ok(c) = crate::config::load(&opts.campaign, &opts.overrides) else {
        let mut paths = previous.to_vec();
        if paths.is_empty() {
            paths.push(opts.campaign.clone());
        }
        return paths;
    };
    let mut paths = vec![opts.campaign.clone(), c.contacts.path.clone()];
    paths.extend(c.contacts.suppress.iter().cloned());
    paths.push(c.templates_dir.clone());
    let ledger = c.sending.state_dir.join(crate::store::ledger::FILE);
    let mut wal = ledger.clone().into_os_string();
    wal.push("-wal");
    paths.push(ledger);
    paths.push(wal.into());
    paths
}

type Stamp = Vec<(PathBuf, Option<(SystemTime, u64)>)>;

/// Modification time and size of every watched file (folders: every file under them).
fn stamp(paths: &[PathBuf]) -> Stamp {
    fn walk(p: &Path, out: &mut Stamp) {
        let meta = std::fs::metadata(p).ok();
        if meta.as_ref().is_some_and(|m| m.is_dir()) {
            let mut entries: Vec<PathBuf> = std::fs::read_dir(p)
                .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
                .unwrap_or_default();
            entries.sort();
            for e in entries {
                walk(&e, out);
            }
        } else {
            let at = meta.and_then(|m| Some((m.modified().ok()?, m.len())));
            out.push((p.to_path_buf(), at));
        }
    }
    let mut out = Vec::new();
    for p in paths {
        walk(p, &mut out);
    }
    out
}

/// Re-loads the campaign whenever one of its files changes, and tells the open pages.
fn watch_files(opts: &Options, app: &App, mut paths: Vec<PathBuf>, mut last: Stamp) {
    loop {
        std::thread::sleep(POLL);
        let now = stamp(&paths);
        if now == last {
            continue;
        }
        // Let a save that writes in several steps finish.
        std::thread::sleep(Duration::from_millis(50));
        // Stamped before the load: a write that lands while it runs is seen at the next poll
        // and loaded again, never lost.
        last = stamp(&paths);
        let version = *app.version.borrow() + 1;
        let site =
            match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| load(opts, version))) {
                Ok(site) => site,
                // Whatever went wrong, the server keeps watching.
                Err(_) => Site {
                    version,
                    loaded: Err(NotLoaded::Panicked),
                    approval: None,
                    findings: Vec::new(),
                },
            };
        let before = paths.clone();
        paths = watched(opts, &paths);
        if paths != before {
            last = stamp(&paths);
        }
        match &site.loaded {
            Ok(_) => tracing::info!("re-loaded {} (version {version})", opts.campaign.display()),
            Err(e) => tracing::warn!("{} does not load: {e}", opts.campaign.display()),
        }
        *app.site.write().expect("site lock") = site;
        app.version.send_replace(version);
    }
}

/// The page script: filters without a reload, and follows the server's re-loads.
const SCRIPT: &str = include_str!("serve.js");

async fn script() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        SCRIPT,
    )
}

async fn current_version(State(app): State<Arc<App>>) -> String {
    format!("{}\n", *app.version.borrow())
}

/// One event per version: the current one at once, then each re-load.
async fn events(State(app): State<Arc<App>>) -> impl IntoResponse {
    let rx = app.version.subscribe();
    let stream = futures::stream::unfold((rx, true), |(mut rx, first)| async move {
        if !first {
            rx.changed().await.ok()?;
        }
        let v = *rx.borrow_and_update();
        Some((
            Ok::<_, Infallible>(Event::default().data(v.to_string())),
            (rx, false),
        ))
    });
    Sse::new(stream).keep_alive(KeepAlive::default())
}

/// A whole page; `content` is what the script swaps on a re-load.
fn page(site: &Site, title: &str, before: &str, content: &str) -> Html<String> {
    Html(format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{title}</title><link rel=\"icon\" href=\"data:,\"><style>{style}{EXTRA_STYLE}</style>\
         <script src=\"/app.js\" defer></script></head>\
         <body data-version=\"{version}\">{before}<div id=\"content\">{content}</div></body></html>\n",
        title = escape(title),
        style = preview::STYLE,
        version = site.version,
    ))
}

const EXTRA_STYLE: &str = ".error{border:2px solid #9b1c1c;background:#fdf2f2;padding:12px;\
border-radius:6px}.error pre{background:#fff}pre{overflow-wrap:anywhere}form.filters{display:flex;gap:8px;flex-wrap:wrap;\
margin:12px 0}form.filters input{min-width:260px}input,select,button{font:inherit;padding:4px 6px}\
.views{display:flex;gap:24px;flex-wrap:wrap;align-items:flex-start}figure{margin:0}\
figcaption{color:#4b5a61;font-size:13px;margin-bottom:4px}iframe{box-sizing:border-box;max-width:100%;border:1px solid #c9d2d6;\
border-radius:6px;background:#fff;height:900px}iframe.desktop{width:800px}iframe.phone{width:375px}\
.phone-frame{width:340px;border:1px solid #c9d2d6;border-radius:28px;padding:28px 16px;\
background:#fafafa}.findings li{color:#8a5a00}.findings li.problem{color:#9b1c1c}\
@media (max-width:700px){body{margin:10px}figure.desktop{display:none}.views{display:block}iframe.phone{width:100%}\
.phone-frame{width:auto}form.filters input{min-width:0;flex:1}table{font-size:13px}}";

/// The error a campaign that does not load shows in place of the pages.
fn load_error(e: &str) -> String {
    format!(
        "<div class=\"error\" id=\"load-error\"><h2>The campaign does not load</h2><pre>{}</pre>\
         <p>Fix it and save: this page updates by itself.</p></div>",
        escape(e)
    )
}

/// Filters of the recipient list.
#[derive(Debug, Default, serde::Deserialize)]
struct Filter {
    #[serde(default)]
    q: String,
    #[serde(default)]
    channel: String,
    #[serde(default)]
    state: String,
}

/// The plan states a list can be filtered by: `Decision::word`s.
const STATES: [(&str, &str); 6] = [
    ("due", "would send (due)"),
    ("deferred", "deferred"),
    ("skipped", "skipped"),
    ("sent", "already sent"),
    ("failed", "failed earlier"),
    ("unknown", "unknown (earlier run died)"),
];

async fn index(State(app): State<Arc<App>>, Query(filter): Query<Filter>) -> Response {
    let site = app.site.read().expect("site lock");
    let title = match &site.loaded {
        Ok(l) => format!("Preview: {}", l.campaign.name),
        Err(_) => "Preview: the campaign does not load".to_string(),
    };
    let channels = match &site.loaded {
        Ok(l) => preview::channels(l, app.only),
        Err(_) => vec![Channel::Email, Channel::Sms],
    };
    let mut form = format!(
        "<h1 id=\"title\">{}</h1><form class=\"filters\" id=\"filters\" method=\"get\" action=\"/\">\
         <input type=\"search\" name=\"q\" placeholder=\"search id, name, email, phone\" value=\"{}\" aria-label=\"search\">\
         <select name=\"channel\" aria-label=\"channel\"><option value=\"\">all channels</option>",
        escape(&title),
        escape(&filter.q)
    );
    for ch in &channels {
        let _ = write!(
            form,
            "<option value=\"{ch}\"{}>{ch}</option>",
            selected(&filter.channel, &ch.to_string())
        );
    }
    form.push_str("</select><select name=\"state\" aria-label=\"state\"><option value=\"\">any state</option>");
    for (word, label) in STATES {
        let _ = write!(
            form,
            "<option value=\"{word}\"{}>{label}</option>",
            selected(&filter.state, word)
        );
    }
    form.push_str("</select><noscript><button>filter</button></noscript></form>");
    let content = match &site.loaded {
        Err(e) => load_error(&e.to_string()),
        Ok(loaded) => match list(&site, loaded, &channels, &filter) {
            Ok(c) => c,
            Err(e) => load_error(&e.to_string()),
        },
    };
    page(&site, &title, &form, &content).into_response()
}

fn selected(value: &str, option: &str) -> &'static str {
    if value == option { " selected" } else { "" }
}

fn list(
    site: &Site,
    loaded: &Loaded,
    channels: &[Channel],
    filter: &Filter,
) -> Result<String, preview::PreviewError> {
    let q = filter.q.trim().to_lowercase();
    let channel: Option<Channel> = filter.channel.parse().ok();
    let state = Some(filter.state.as_str()).filter(|s| !s.is_empty());
    let keep = |index: usize, outcomes: &[crate::render::Outcome]| {
        let c = &loaded.contacts.contacts[index];
        let text_ok = q.is_empty()
            || [
                c.id.to_lowercase(),
                c.display_name().to_lowercase(),
                c.display_address(Channel::Email)
                    .unwrap_or("")
                    .to_lowercase(),
                c.display_address(Channel::Sms).unwrap_or("").to_string(),
            ]
            .iter()
            .any(|s| s.contains(&q));
        text_ok
            && outcomes.iter().any(|o| {
                channel.is_none_or(|ch| ch == o.channel)
                    && state.is_none_or(|s| s == o.decision.word())
            })
    };
    let href = |_slug: &str, line: usize, view: &str| match view {
        "email.txt" => format!("/m/{line}/email#text"),
        "email-headers.txt" => format!("/m/{line}/email#headers"),
        "message.eml" => format!("/m/{line}/message.eml"),
        "sms.html" => format!("/m/{line}/sms"),
        _ => format!("/m/{line}/email"),
    };
    let note = |index: usize| findings_html(site, loaded, index, None);
    let links = Links {
        href: &href,
        files: None,
        keep: &keep,
        note: &note,
        limit: LIST_LIMIT,
    };
    let (summary, table) = preview::recipients(loaded, channels, &links, SystemTime::now())?;
    let mut general = String::new();
    for (f, _) in site.findings.iter().filter(|(f, _)| f.contact.is_none()) {
        let _ = write!(general, "<li>{}</li>", escape(&finding_text(f)));
    }
    if !general.is_empty() {
        general = format!("<ul class=\"findings\">{general}</ul>");
    }
    let approval = site
        .approval
        .as_ref()
        .map(|a| format!("<p class=\"meta\">Approval: {}</p>", escape(a)))
        .unwrap_or_default();
    Ok(format!(
        "{line}{approval}{summary}{general}{legend}{table}",
        line = preview::campaign_line(loaded),
        legend = preview::LEGEND,
    ))
}

fn finding_text(f: &Finding) -> String {
    let mut s = crate::paths::show_path(&f.file);
    if let Some(line) = f.line {
        let _ = write!(s, ":{line}");
    }
    if let Some(id) = &f.contact {
        let _ = write!(s, " {id}");
    }
    let _ = write!(s, ": {}", f.message);
    if !f.channels.is_empty() {
        let names: Vec<String> = f.channels.iter().map(|c| c.to_string()).collect();
        let _ = write!(s, " [{}]", names.join(", "));
    }
    if let Some(rows) = f.rows_note() {
        let _ = write!(s, ": {rows}");
    }
    s
}

/// `check`'s findings on contact `index`'s row (on `channel`, when given).
fn findings_html(site: &Site, loaded: &Loaded, index: usize, channel: Option<Channel>) -> String {
    let contact = &loaded.contacts.contacts[index];
    let mut s = String::new();
    for (f, problem) in site.findings.iter().filter(|(f, _)| {
        f.line == Some(contact.line)
            && f.contact.as_deref() == Some(&contact.id)
            && channel.is_none_or(|ch| f.channels.is_empty() || f.channels.contains(&ch))
    }) {
        let _ = write!(
            s,
            "<li class=\"{}\">{}</li>",
            if *problem { "problem" } else { "warning" },
            escape(&finding_text(f))
        );
    }
    if s.is_empty() {
        s
    } else {
        format!("<ul class=\"findings\">{s}</ul>")
    }
}

async fn message(
    State(app): State<Arc<App>>,
    UrlPath((line, view)): UrlPath<(usize, String)>,
) -> Response {
    let site = app.site.read().expect("site lock");
    let loaded = match &site.loaded {
        Ok(l) => l,
        Err(e) => {
            return page(
                &site,
                "Preview: the campaign does not load",
                "",
                &load_error(&e.to_string()),
            )
            .into_response();
        }
    };
    let not_found = || (StatusCode::NOT_FOUND, "no such message\n").into_response();
    let Some(index) = loaded.contacts.contacts.iter().position(|c| c.line == line) else {
        return not_found();
    };
    let channel = match view.as_str() {
        "email" | "message.eml" => Channel::Email,
        "sms" => Channel::Sms,
        _ => return not_found(),
    };
    if !preview::channels(loaded, app.only).contains(&channel) {
        return not_found();
    }
    let contact = &loaded.contacts.contacts[index];
    let outcome = loaded.outcome(index, channel, true);
    let date = SystemTime::now();
    if view == "message.eml" {
        return match outcome
            .message
            .as_ref()
            .and_then(|r| preview::email_views(loaded, index, r, date))
        {
            Some(Ok(v)) => {
                ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], v.eml).into_response()
            }
            Some(Err(e)) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
            None => not_found(),
        };
    }
    let name = contact.display_name();
    let title = format!(
        "{} to {name}",
        if channel == Channel::Email {
            "Email"
        } else {
            "SMS"
        }
    );
    let mut c = format!(
        "<p><a href=\"/\">← all recipients</a></p><h1>{}</h1>\
         <p class=\"meta\">{id} · line {line} · {to} · <span class=\"{word}\" id=\"decision\">{decision}</span></p>",
        escape(&title),
        id = escape(&contact.id),
        to = escape(contact.display_address(channel).unwrap_or("no address")),
        word = outcome.decision.word(),
        decision = escape(&outcome.decision.to_string()),
    );
    let mut warnings = String::new();
    for w in &outcome.warnings {
        let _ = write!(warnings, "<li>{}</li>", escape(&w.to_string()));
    }
    if !warnings.is_empty() {
        let _ = write!(c, "<ul class=\"findings\">{warnings}</ul>");
    }
    c.push_str(&findings_html(&site, loaded, index, Some(channel)));
    match &outcome.message {
        None => c.push_str("<p>No message: nothing to show for this contact on this channel.</p>"),
        Some(r @ Rendered::Email { .. }) => match preview::email_views(loaded, index, r, date) {
            Some(Ok(v)) => {
                let doc = escape(&v.html);
                let _ = write!(
                    c,
                    "<p><b>Subject:</b> <span id=\"subject\">{subject}</span></p>\
                     <div class=\"views\">\
                     <figure class=\"desktop\"><figcaption>desktop (800 px)</figcaption>\
                     <iframe class=\"desktop\" sandbox=\"\" title=\"the email at desktop width\" srcdoc=\"{doc}\"></iframe></figure>\
                     <figure><figcaption>phone (375 px)</figcaption>\
                     <iframe class=\"phone\" sandbox=\"\" title=\"the email at phone width\" srcdoc=\"{doc}\"></iframe></figure></div>\
                     <h2 id=\"text\">Text part</h2><pre>{text}</pre>\
                     <h2 id=\"headers\">Headers</h2><pre>{headers}</pre>\
                     <p><a href=\"/m/{line}/message.eml\">the whole message (.eml)</a></p>",
                    subject = escape(&v.subject),
                    text = escape(&v.text),
                    headers = escape(&v.headers),
                );
            }
            Some(Err(e)) => c.push_str(&load_error(&e.to_string())),
            None => {}
        },
        Some(Rendered::Sms {
            body,
            count,
            original,
        }) => {
            let _ = write!(
                c,
                "<div class=\"phone-frame\"><div class=\"bubble\" id=\"bubble\">{}</div></div>\
                 <p id=\"counts\">{}</p>",
                preview::sms_body_html(body, count),
                escape(&preview::sms_summary(count)),
            );
            if !count.non_gsm.is_empty() {
                c.push_str(
                    "<p class=\"meta\">Marked: characters outside GSM-7, which make the whole \
                     SMS UCS-2 (70 characters a segment, 67 once split).</p>",
                );
            }
            if original.is_some() {
                c.push_str(
                    "<p class=\"meta\">Smart encoding replaced typographic characters outside GSM-7.</p>",
                );
            }
        }
    }
    page(&site, &title, "", &c).into_response()
}
