//! `outreach preview`: what each patient will get, before anything is sent. One contact to stdout
//! (headers, text part, SMS with encoding and segments), or a folder that opens from disk in any
//! browser: `index.html` lists every contact with channel and decision, and links each message's
//! HTML, text part, headers and `.eml` file, and each SMS with its counts.
//!
//! The folder holds patient data: it is created owner-only (0700, files 0600).

use std::fmt::Write as _;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use crate::load::Loaded;
use crate::message::header_block;
use crate::model::Channel;
use crate::plan::Decision;
use crate::render::{Outcome, Rendered};
use crate::sms;

/// A preview that could not be written or asked for something that is not there.
#[derive(Debug, thiserror::Error)]
pub enum PreviewError {
    #[error("no contact with id, email or phone {0:?} in {1}")]
    NoSuchContact(String, String),
    #[error("{path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0}")]
    Build(String),
}

pub(crate) fn channels(loaded: &Loaded, only: Option<Channel>) -> Vec<Channel> {
    loaded
        .campaign
        .channels
        .iter()
        .copied()
        .filter(|c| only.is_none_or(|o| o == *c))
        .collect()
}

/// Writes one contact's messages as text to `out`.
pub fn contact_to(
    loaded: &Loaded,
    key: &str,
    only: Option<Channel>,
    out: &mut dyn Write,
) -> Result<(), PreviewError> {
    let index = loaded.find_contact(key).ok_or_else(|| {
        PreviewError::NoSuchContact(key.to_string(), loaded.contacts.path.display().to_string())
    })?;
    let text = contact_text(loaded, index, only)?;
    out.write_all(text.as_bytes())
        .map_err(|source| PreviewError::Write {
            path: "<stdout>".into(),
            source,
        })
}

fn contact_text(
    loaded: &Loaded,
    index: usize,
    only: Option<Channel>,
) -> Result<String, PreviewError> {
    let contact = &loaded.contacts.contacts[index];
    let mut s = String::new();
    let _ = writeln!(
        s,
        "Contact {} (line {}): {}",
        contact.id,
        contact.line,
        contact.display_name()
    );
    if has_language_column(loaded) {
        let _ = writeln!(s, "Language: {}", language_label(loaded, index));
    }
    for channel in channels(loaded, only) {
        let outcome = loaded.outcome(index, channel, true);
        let _ = writeln!(s);
        let to = contact.display_address(channel).unwrap_or("(no address)");
        let _ = writeln!(s, "=== {channel} to {to}: {} ===", outcome.decision);
        for w in &outcome.warnings {
            let _ = writeln!(s, "warning: {w}");
        }
        match &outcome.message {
            Some(r @ Rendered::Email { .. }) => {
                let views = email_views(loaded, index, r, SystemTime::now()).expect("an email")?;
                s.push_str(&views.headers);
                let _ = writeln!(s);
                s.push_str(&views.text);
                if !views.text.ends_with('\n') {
                    s.push('\n');
                }
            }
            Some(Rendered::Sms {
                body,
                count,
                original,
            }) => {
                let _ = writeln!(s, "{}", sms_summary(count));
                if original.is_some() {
                    let _ = writeln!(s, "(smart encoding replaced characters outside GSM-7)");
                }
                let _ = writeln!(s);
                let _ = writeln!(s, "{body}");
            }
            None => {}
        }
    }
    Ok(s)
}

/// Whether the contacts file says each patient's language (previews then show it).
fn has_language_column(loaded: &Loaded) -> bool {
    loaded.contacts.header.index_of("language").is_some()
}

/// The language contact `index`'s messages are written in: `es`, `es (for es-MX)` when the
/// tag fell back, `en (default: no fr templates)` when no set matched.
pub fn language_label(loaded: &Loaded, index: usize) -> String {
    let asked = loaded.contacts.contacts[index].language.as_ref();
    let (used, _) = loaded.templates.pick(asked);
    match asked {
        Some(a) if a == used => used.to_string(),
        Some(a) if a.fallbacks().any(|t| t == used.as_str()) => format!("{used} (for {a})"),
        Some(a) => format!("{used} (default: no {a} templates)"),
        None => used.to_string(),
    }
}

/// "GSM-7, 214 characters, 2 segments of up to 153": the line shown with every SMS.
pub fn sms_summary(count: &sms::SmsCount) -> String {
    let mut s = format!(
        "{}, {} characters ({} units), {} segment{} of up to {}",
        count.encoding,
        count.chars,
        count.units,
        count.segments,
        if count.segments == 1 { "" } else { "s" },
        count.per_segment
    );
    if !count.non_gsm.is_empty() {
        let names: Vec<String> = count
            .non_gsm
            .iter()
            .map(|c| sms::describe_char(*c))
            .collect();
        let _ = write!(s, "; not in GSM-7: {}", names.join(", "));
    }
    s
}

/// Header blocks are folded at 78 columns with CRLF; for reading, show LF line ends.
fn unfold_for_reading(headers: &[u8]) -> String {
    String::from_utf8_lossy(headers).replace("\r\n", "\n")
}

fn escape(s: &str) -> String {
    crate::templates::escape_html(s)
}

/// A file name for a contact's folder: its line and a safe form of its id.
fn slug(line: usize, id: &str) -> String {
    format!("{line:06}-{}", crate::private::file_name_part(id))
}

fn write_private(path: &Path, bytes: &[u8]) -> Result<(), PreviewError> {
    let err = |source| PreviewError::Write {
        path: path.to_path_buf(),
        source,
    };
    crate::private::open(path, crate::private::Open::Truncate)
        .map_err(err)?
        .write_all(bytes)
        .map_err(err)
}

/// The style sheet of every preview page.
pub const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:24px;color:#1f2a30}\
table{border-collapse:collapse;width:100%}th,td{border-bottom:1px solid #dde3e6;padding:6px 8px;\
text-align:left;vertical-align:top;font-size:14px}th{background:#f3f6f7;position:sticky;top:0}\
.due{color:#0a6b2d;font-weight:600}.deferred{color:#8a5a00;font-weight:600}.skipped{color:#9b1c1c}\
.warn{color:#8a5a00;font-size:12px}pre{white-space:pre-wrap;background:#f6f8f9;padding:12px;\
border-radius:6px;font-size:14px}.meta{color:#4b5a61}\
.bubble{white-space:pre-wrap;background:#e9e9eb;color:#000;border-radius:18px;padding:10px 14px;\
max-width:300px;font:16px/1.35 system-ui,sans-serif;overflow-wrap:anywhere}\
mark.nongsm{background:#ffd24d;outline:1px solid #b58100;border-radius:2px}";

/// The file that marks a folder as a campaign's preview (it holds the campaign id), so `purge
/// --preview DIR` deletes only a folder `preview` wrote.
pub const MARKER: &str = ".outreach-preview";

/// One rendered email in the forms a preview shows: its HTML part, text part, headers as sent
/// (unfolded for reading) and the whole `.eml`.
pub struct EmailViews {
    pub subject: String,
    pub html: String,
    pub text: String,
    pub headers: String,
    pub eml: Vec<u8>,
}

/// The views of contact `index`'s rendered email, dated `date`; `None` for an SMS.
pub fn email_views(
    loaded: &Loaded,
    index: usize,
    rendered: &Rendered,
    date: SystemTime,
) -> Option<Result<EmailViews, PreviewError>> {
    let Rendered::Email { parts, .. } = rendered else {
        return None;
    };
    let message = match loaded.email_message(index, rendered, date)? {
        Ok(m) => m,
        Err(e) => return Some(Err(PreviewError::Build(e.to_string()))),
    };
    let eml = crate::message::wire(loaded.campaign.email.as_ref()?, &message, date);
    Some(Ok(EmailViews {
        subject: parts.subject.clone(),
        html: parts.html.clone(),
        text: parts.text.clone(),
        headers: unfold_for_reading(header_block(&eml)),
        eml,
    }))
}

/// An SMS body as HTML with each character outside GSM-7 marked (and named in its title), for
/// a `white-space: pre-wrap` bubble.
pub fn sms_body_html(body: &str, count: &sms::SmsCount) -> String {
    let mut s = String::new();
    let mut buf = [0u8; 4];
    for c in body.chars() {
        let text = escape(c.encode_utf8(&mut buf));
        if count.non_gsm.contains(&c) {
            let _ = write!(
                s,
                "<mark class=\"nongsm\" title=\"not in GSM-7: {}\">{text}</mark>",
                escape(&sms::describe_char(c))
            );
        } else {
            s.push_str(&text);
        }
    }
    s
}

/// Where the links of the recipient list point, and whether message files are written.
pub struct Links<'a> {
    /// The URL of view `name` ("email.html", "email.txt", "email-headers.txt", "message.eml",
    /// "sms.html") of the contact with this slug and line.
    pub href: &'a dyn Fn(&str, usize, &str) -> String,
    /// Writes each message's files under `DIR/messages/SLUG/` (the folder preview).
    pub files: Option<&'a Path>,
    /// Which rows to list (all rows count in the totals).
    pub keep: &'a dyn Fn(usize, &[Outcome]) -> bool,
    /// HTML shown under a contact's name (`check`'s findings on the row).
    pub note: &'a dyn Fn(usize) -> String,
    /// At most this many rows are listed (the rest are counted), so a page stays quick to load.
    pub limit: usize,
}

/// The totals list and the recipient table: one row per contact, one cell per channel with its
/// decision, address, message links and warnings.
pub fn recipients(
    loaded: &Loaded,
    channels: &[Channel],
    links: &Links,
    date: SystemTime,
) -> Result<(String, String), PreviewError> {
    let mut rows = String::new();
    let mut counts = vec![(0usize, 0usize, 0usize, 0usize); channels.len()];
    let mut shown = 0;
    let languages = has_language_column(loaded);
    for (index, contact) in loaded.contacts.contacts.iter().enumerate() {
        let slug = slug(contact.line, &contact.id);
        let outcomes: Vec<Outcome> = channels
            .iter()
            .map(|&ch| loaded.outcome(index, ch, true))
            .collect();
        for (slot, outcome) in outcomes.iter().enumerate() {
            match outcome.decision {
                Decision::Due => counts[slot].0 += 1,
                Decision::Deferred(_) => counts[slot].1 += 1,
                Decision::Skipped(_) => counts[slot].2 += 1,
                Decision::Done(_) => counts[slot].3 += 1,
            }
        }
        if !(links.keep)(index, &outcomes) {
            continue;
        }
        shown += 1;
        if shown > links.limit {
            continue;
        }
        let folder = links.files.map(|dir| dir.join("messages").join(&slug));
        if let Some(folder) = &folder
            && outcomes.iter().any(|o| o.message.is_some())
        {
            mk_dir(folder)?;
        }
        let mut cells = String::new();
        for outcome in &outcomes {
            cells.push_str(&channel_cell(
                loaded,
                index,
                outcome,
                folder.as_deref(),
                &|view| (links.href)(&slug, contact.line, view),
                date,
            )?);
        }
        let language = if languages {
            format!("<td>{}</td>", escape(&language_label(loaded, index)))
        } else {
            String::new()
        };
        let _ = writeln!(
            rows,
            "<tr><td>{}</td><td>{}</td><td>{}{}</td>{language}{cells}</tr>",
            contact.line,
            escape(&contact.id),
            escape(&contact.display_name()),
            (links.note)(index),
        );
    }

    let mut head = String::new();
    if languages {
        head.push_str("<th>language</th>");
    }
    for ch in channels {
        let _ = write!(head, "<th>{ch}</th>");
    }
    let mut summary = String::new();
    for (ch, (due, deferred, skipped, done)) in channels.iter().zip(&counts) {
        let _ = write!(
            summary,
            "<li><b>{ch}</b>: {due} due, {deferred} deferred, {skipped} skipped"
        );
        if *done > 0 {
            let _ = write!(summary, ", {done} settled by earlier runs");
        }
        summary.push_str("</li>");
    }
    let total = loaded.contacts.contacts.len();
    let count = if shown > links.limit {
        format!(
            "{shown} of {total} contacts match; the first {} are listed: search or filter to see others",
            links.limit
        )
    } else {
        format!("{shown} of {total} contacts shown")
    };
    let table = format!(
        "<p class=\"meta\" id=\"shown\">{count}</p>\
         <table><thead><tr><th>line</th><th>id</th><th>name</th>{head}</tr></thead><tbody>\n{rows}</tbody></table>"
    );
    Ok((format!("<ul>{summary}</ul>"), table))
}

/// The words of the recipient list.
pub const LEGEND: &str = "<p class=\"meta\"><span class=\"due\">due</span>: goes on the next run. \
     <span class=\"deferred\">deferred</span>: goes on a later run (SMS quiet hours in the patient's own \
     time zone, daily cap). <span class=\"skipped\">skipped</span>: will not go, for the reason shown.</p>";

/// The campaign line of the recipient list.
pub fn campaign_line(loaded: &Loaded) -> String {
    format!(
        "<p class=\"meta\">Campaign <code>{id}</code> · contacts <code>{csv}</code> · decisions as of {now} UTC. \
         A preview sends nothing. This page holds patient data: keep it private.</p>",
        id = escape(&loaded.campaign.id),
        csv = escape(&crate::paths::show_path(&loaded.contacts.path)),
        now = loaded.now.format("%Y-%m-%d %H:%M"),
    )
}

fn mk_dir(p: &Path) -> Result<(), PreviewError> {
    crate::private::create_dir(p).map_err(|source| PreviewError::Write {
        path: p.to_path_buf(),
        source,
    })
}

/// Writes the browsable preview into `dir`; `approval`: the approval state line, if any.
/// Returns the path of `index.html`.
pub fn folder(
    loaded: &Loaded,
    dir: &Path,
    only: Option<Channel>,
    approval: Option<&str>,
) -> Result<PathBuf, PreviewError> {
    mk_dir(dir)?;
    write_private(
        &dir.join(MARKER),
        format!("{}\n", loaded.campaign.id).as_bytes(),
    )?;
    mk_dir(&dir.join("messages"))?;
    let channels = channels(loaded, only);
    let href = |slug: &str, _line: usize, view: &str| format!("messages/{slug}/{view}");
    let links = Links {
        href: &href,
        files: Some(dir),
        keep: &|_, _| true,
        note: &|_| String::new(),
        limit: usize::MAX,
    };
    let (summary, table) = recipients(loaded, &channels, &links, SystemTime::now())?;
    let index_html = format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>Preview: {name}</title><style>{STYLE}</style></head><body>\
         <h1>Preview: {name}</h1>{line}{approval}{summary}{LEGEND}{table}</body></html>\n",
        name = escape(&loaded.campaign.name),
        line = campaign_line(loaded),
        approval = approval
            .map(|a| format!("<p class=\"meta\">Approval: {}</p>", escape(a)))
            .unwrap_or_default(),
    );
    let index = dir.join("index.html");
    write_private(&index, index_html.as_bytes())?;
    Ok(index)
}

fn channel_cell(
    loaded: &Loaded,
    index: usize,
    outcome: &Outcome,
    folder: Option<&Path>,
    href: &dyn Fn(&str) -> String,
    date: SystemTime,
) -> Result<String, PreviewError> {
    let contact = &loaded.contacts.contacts[index];
    let channel = outcome.channel;
    let mut cell = format!(
        "<td data-channel=\"{channel}\" data-state=\"{word}\"><span class=\"{word}\">{}</span>",
        escape(&outcome.decision.to_string()),
        word = outcome.decision.word(),
    );
    let skipped = matches!(outcome.decision, Decision::Skipped(_) | Decision::Done(_));
    let links = if skipped {
        "<br><span class=\"meta\">preview only, will not be sent:</span> "
    } else {
        "<br>"
    };
    if let Some(addr) = contact.display_address(channel) {
        let _ = write!(cell, "<br><span class=\"meta\">{}</span>", escape(addr));
    }
    match &outcome.message {
        Some(r @ Rendered::Email { .. }) => {
            let views = email_views(loaded, index, r, date).expect("an email")?;
            if let Some(folder) = folder {
                write_private(&folder.join("email.html"), views.html.as_bytes())?;
                write_private(&folder.join("email.txt"), views.text.as_bytes())?;
                write_private(&folder.join("email-headers.txt"), views.headers.as_bytes())?;
                write_private(&folder.join("message.eml"), &views.eml)?;
            }
            let _ = write!(
                cell,
                "<br><span class=\"meta\">{subject}</span>{links}\
                 <a href=\"{}\">HTML</a> · <a href=\"{}\">text</a> · \
                 <a href=\"{}\">headers</a> · <a href=\"{}\">.eml</a>",
                href("email.html"),
                href("email.txt"),
                href("email-headers.txt"),
                href("message.eml"),
                subject = escape(&views.subject),
            );
        }
        Some(Rendered::Sms { body, count, .. }) => {
            if let Some(folder) = folder {
                let page = format!(
                    "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>SMS to {id}</title>\
                     <style>{STYLE}</style></head><body><h1>SMS to {name}</h1>\
                     <p class=\"meta\">{to} · {decision}</p><p>{summary}</p><div class=\"bubble\">{body}</div>\
                     <p><a href=\"../../index.html\">back to the list</a></p></body></html>\n",
                    id = escape(&contact.id),
                    name = escape(&contact.display_name()),
                    to = escape(contact.display_address(Channel::Sms).unwrap_or("")),
                    decision = escape(&outcome.decision.to_string()),
                    summary = escape(&sms_summary(count)),
                    body = sms_body_html(body, count),
                );
                write_private(&folder.join("sms.html"), page.as_bytes())?;
                write_private(&folder.join("sms.txt"), body.as_bytes())?;
            }
            let _ = write!(
                cell,
                "<br><span class=\"meta\">{} · {} segment{}</span>{links}\
                 <a href=\"{}\">SMS</a>",
                count.encoding,
                count.segments,
                if count.segments == 1 { "" } else { "s" },
                href("sms.html"),
            );
        }
        None => {}
    }
    for w in &outcome.warnings {
        let _ = write!(
            cell,
            "<br><span class=\"warn\">{}</span>",
            escape(&w.to_string())
        );
    }
    cell.push_str("</td>");
    Ok(cell)
}
