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

use crate::channel::Channel;
use crate::load::{Loaded, Outcome, Rendered};
use crate::message::header_block;
use crate::plan::Decision;
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

fn channels(loaded: &Loaded, only: Option<Channel>) -> Vec<Channel> {
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
    for channel in channels(loaded, only) {
        let outcome = loaded.outcome(index, channel, true);
        let _ = writeln!(s);
        let to = contact.display_address(channel).unwrap_or("(no address)");
        let _ = writeln!(s, "=== {channel} to {to}: {} ===", outcome.decision);
        for w in &outcome.warnings {
            let _ = writeln!(s, "warning: {w}");
        }
        match &outcome.message {
            Some(r @ Rendered::Email { parts, .. }) => {
                let message = loaded
                    .email_message(index, r, SystemTime::now())
                    .expect("an email")
                    .map_err(|e| PreviewError::Build(e.to_string()))?;
                let formatted = crate::message::wire(
                    loaded.campaign.email.as_ref().expect("an email"),
                    &message,
                    SystemTime::now(),
                );
                s.push_str(&unfold_for_reading(header_block(&formatted)));
                let _ = writeln!(s);
                s.push_str(&parts.text);
                if !parts.text.ends_with('\n') {
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

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:24px;color:#1f2a30}\
table{border-collapse:collapse;width:100%}th,td{border-bottom:1px solid #dde3e6;padding:6px 8px;\
text-align:left;vertical-align:top;font-size:14px}th{background:#f3f6f7;position:sticky;top:0}\
.due{color:#0a6b2d;font-weight:600}.deferred{color:#8a5a00;font-weight:600}.skipped{color:#9b1c1c}\
.warn{color:#8a5a00;font-size:12px}pre{white-space:pre-wrap;background:#f6f8f9;padding:12px;\
border-radius:6px;font-size:14px}.meta{color:#4b5a61}";

/// Writes the browsable preview folder; returns the path of `index.html`.
/// The file that marks a folder as a campaign's preview (it holds the campaign id), so `purge
/// --preview DIR` deletes only a folder `preview` wrote.
pub const MARKER: &str = ".outreach-preview";

/// Writes the browsable preview into `dir`; `approval`: the approval state line, if any.
pub fn folder(
    loaded: &Loaded,
    dir: &Path,
    only: Option<Channel>,
    approval: Option<&str>,
) -> Result<PathBuf, PreviewError> {
    let mk = |p: &Path| {
        crate::private::create_dir(p).map_err(|source| PreviewError::Write {
            path: p.to_path_buf(),
            source,
        })
    };
    mk(dir)?;
    write_private(
        &dir.join(MARKER),
        format!("{}\n", loaded.campaign.id).as_bytes(),
    )?;
    let messages = dir.join("messages");
    mk(&messages)?;
    let date = SystemTime::now();
    let channels = channels(loaded, only);
    let c = &loaded.campaign;

    let mut rows = String::new();
    let mut counts = vec![(0usize, 0usize, 0usize, 0usize); channels.len()];
    for (index, contact) in loaded.contacts.contacts.iter().enumerate() {
        let slug = slug(contact.line, &contact.id);
        let folder = messages.join(&slug);
        let mut cells = String::new();
        let mut made_folder = false;
        for (slot, &channel) in channels.iter().enumerate() {
            let outcome = loaded.outcome(index, channel, true);
            match outcome.decision {
                Decision::Due => counts[slot].0 += 1,
                Decision::Deferred(_) => counts[slot].1 += 1,
                Decision::Skipped(_) => counts[slot].2 += 1,
                Decision::Done(_) => counts[slot].3 += 1,
            }
            if outcome.message.is_some() && !made_folder {
                mk(&folder)?;
                made_folder = true;
            }
            cells.push_str(&channel_cell(
                loaded, index, &outcome, &folder, &slug, date,
            )?);
        }
        let _ = writeln!(
            rows,
            "<tr><td>{}</td><td>{}</td><td>{}</td>{cells}</tr>",
            contact.line,
            escape(&contact.id),
            escape(&contact.display_name()),
        );
    }

    let mut head = String::new();
    for ch in &channels {
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
    let index_html = format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>Preview: {name}</title><style>{STYLE}</style></head><body>\
         <h1>Preview: {name}</h1>\
         <p class=\"meta\">Campaign <code>{id}</code> · contacts <code>{csv}</code> · decisions as of {now} UTC. \
         Nothing has been sent. This page holds patient data: keep it private.</p>\
         {approval}<ul>{summary}</ul>\
         <p class=\"meta\"><span class=\"due\">due</span>: goes on the next run. \
         <span class=\"deferred\">deferred</span>: goes on a later run (SMS quiet hours in the patient's own \
         time zone, daily cap). <span class=\"skipped\">skipped</span>: will not go, for the reason shown.</p>\
         <table><thead><tr><th>line</th><th>id</th><th>name</th>{head}</tr></thead><tbody>\n{rows}</tbody></table>\
         </body></html>\n",
        name = escape(&c.name),
        id = escape(&c.id),
        csv = escape(&crate::check::show_path(&loaded.contacts.path)),
        now = loaded.now.format("%Y-%m-%d %H:%M"),
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
    folder: &Path,
    slug: &str,
    date: SystemTime,
) -> Result<String, PreviewError> {
    let contact = &loaded.contacts.contacts[index];
    let channel = outcome.channel;
    let mut cell = format!(
        "<td><span class=\"{}\">{}</span>",
        outcome.decision.word(),
        escape(&outcome.decision.to_string())
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
        Some(r @ Rendered::Email { parts, .. }) => {
            let message = loaded
                .email_message(index, r, date)
                .expect("an email")
                .map_err(|e| PreviewError::Build(e.to_string()))?;
            let formatted = crate::message::wire(
                loaded.campaign.email.as_ref().expect("an email"),
                &message,
                date,
            );
            write_private(&folder.join("email.html"), parts.html.as_bytes())?;
            write_private(&folder.join("email.txt"), parts.text.as_bytes())?;
            write_private(
                &folder.join("email-headers.txt"),
                unfold_for_reading(header_block(&formatted)).as_bytes(),
            )?;
            write_private(&folder.join("message.eml"), &formatted)?;
            let _ = write!(
                cell,
                "<br><span class=\"meta\">{subject}</span>{links}\
                 <a href=\"messages/{slug}/email.html\">HTML</a> · \
                 <a href=\"messages/{slug}/email.txt\">text</a> · \
                 <a href=\"messages/{slug}/email-headers.txt\">headers</a> · \
                 <a href=\"messages/{slug}/message.eml\">.eml</a>",
                subject = escape(&parts.subject),
            );
        }
        Some(Rendered::Sms { body, count, .. }) => {
            let page = format!(
                "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>SMS to {id}</title>\
                 <style>{STYLE}</style></head><body><h1>SMS to {name}</h1>\
                 <p class=\"meta\">{to} · {decision}</p><p>{summary}</p><pre>{body}</pre>\
                 <p><a href=\"../../index.html\">back to the list</a></p></body></html>\n",
                id = escape(&contact.id),
                name = escape(&contact.display_name()),
                to = escape(contact.display_address(Channel::Sms).unwrap_or("")),
                decision = escape(&outcome.decision.to_string()),
                summary = escape(&sms_summary(count)),
                body = escape(body),
            );
            write_private(&folder.join("sms.html"), page.as_bytes())?;
            write_private(&folder.join("sms.txt"), body.as_bytes())?;
            let _ = write!(
                cell,
                "<br><span class=\"meta\">{} · {} segment{}</span>{links}\
                 <a href=\"messages/{slug}/sms.html\">SMS</a>",
                count.encoding,
                count.segments,
                if count.segments == 1 { "" } else { "s" }
            );
        }
        None => {}
    }
    for w in &outcome.warnings {
        let _ = write!(cell, "<br><span class=\"warn\">{}</span>", escape(w));
    }
    cell.push_str("</td>");
    Ok(cell)
}
