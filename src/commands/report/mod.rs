//! `outreach report`: the campaign's per-recipient CSV ([`crate::recipients`]), or with `--html`
//! its aggregate report as one self-contained HTML file (`figures.rs` counts, `html.rs` draws),
//! or with `--all STATE_DIR` one line per campaign of a state directory (`all.rs`: CSV, or HTML
//! with sparklines). Written to `--out`, or by default to `STATE_DIR/reports/`
//! (`CAMPAIGN-report.csv`, `CAMPAIGN-report.html`, `all-campaigns.csv`, `all-campaigns.html`),
//! owner-only like every report.

mod all;
mod figures;
mod html;

use std::io::Write;
use std::path::{Path, PathBuf};

pub use all::{ALL_COLUMNS, CampaignLine};
pub use figures::{Figures, code_of};
pub use html::{CSP, FOOTER};

use crate::load::Loaded;
use crate::recipients::{self, ReportError};
use crate::store::ledger::{self, Ledger};

/// A report written.
#[derive(Debug, Clone)]
pub struct Written {
    pub path: PathBuf,
    /// Its rows: recipients of the CSV, campaigns of `--all`, stages of nothing for `--html`
    /// (the contacts counted).
    pub rows: usize,
}

/// Which report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// One row per recipient.
    Csv,
    /// The aggregate HTML report.
    Html,
}

/// The path a report goes to: `out`, else `STATE_DIR/reports/NAME` (the folder made 0700).
fn target(state_dir: &Path, out: Option<&Path>, name: &str) -> Result<PathBuf, ReportError> {
    if let Some(out) = out {
        return Ok(out.to_path_buf());
    }
    let dir = state_dir.join("reports");
    let path = dir.join(name);
    crate::private::create_dir(&dir).map_err(|source| ReportError::Io {
        path: path.clone(),
        source,
    })?;
    Ok(path)
}

/// Writes `text` to `path`, 0600, replacing any file there.
fn write_private(path: &Path, text: &[u8]) -> Result<(), ReportError> {
    let io = |source| ReportError::Io {
        path: path.to_path_buf(),
        source,
    };
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(io)?;
    }
    let mut file = crate::private::open(path, crate::private::Open::Truncate).map_err(io)?;
    file.write_all(text).map_err(io)
}

/// Writes the report of `loaded` to `out`, else to the state directory's `reports/` folder.
pub fn run(loaded: &Loaded, kind: Kind, out: Option<&Path>) -> Result<Written, ReportError> {
    let state_dir = &loaded.campaign.sending.state_dir;
    let store = loaded.campaign.sending.store();
    let ledger = Ledger::open_existing(&store)?;
    let id = &loaded.campaign.id;
    match kind {
        Kind::Csv => {
            let path = target(state_dir, out, &format!("{id}-report.csv"))?;
            let rows = recipients::write(&path, loaded, ledger.as_ref())?;
            Ok(Written { path, rows })
        }
        Kind::Html => {
            let path = target(state_dir, out, &format!("{id}-report.html"))?;
            let figures = Figures::of(loaded, ledger.as_ref())?;
            let page = html::page(&page_of(loaded, &figures));
            write_private(&path, page.as_bytes())?;
            Ok(Written {
                path,
                rows: loaded.contacts.contacts.len(),
            })
        }
    }
}

/// The page of `figures`, with what the campaign file says of its window and price.
fn page_of<'a>(loaded: &'a Loaded, figures: &'a Figures) -> html::Page<'a> {
    let c = &loaded.campaign;
    let tz = c.clinic.timezone;
    let mut window = Vec::new();
    let edge = |e: &crate::config::WindowEdge| {
        format!(
            "{} ({})",
            e.written,
            figures::local_time(&ledger::timestamp(e.at), tz)
        )
    };
    if let Some(e) = &c.window.not_before {
        window.push(("sends from".to_string(), edge(e)));
    }
    if let Some(e) = &c.window.not_after {
        window.push(("sends until".to_string(), edge(e)));
    }
    if let Some(q) = c.sms.as_ref().and_then(|s| s.quiet_hours) {
        window.push((
            "SMS quiet hours".to_string(),
            format!("{q} in each patient's time zone"),
        ));
    }
    if c.sending.daily_cap > 0 {
        window.push((
            "daily cap".to_string(),
            format!("{} per channel per day", c.sending.daily_cap),
        ));
    }
    let mut sent = figures
        .periods
        .iter()
        .filter(|(_, m)| m.values().any(|p| p.sent > 0));
    let first = sent.clone().next().map(|(k, _)| k.clone());
    let last = sent.next_back().map(|(k, _)| k.clone());
    if let (Some(first), Some(last)) = (first, last) {
        let span = if first == last {
            first
        } else {
            format!("{first} to {last}")
        };
        window.push(("messages went".to_string(), span));
    }
    html::Page {
        figures,
        name: &c.name,
        clinic: &c.clinic.name,
        generated: loaded
            .now
            .with_timezone(&tz)
            .format("%Y-%m-%d %H:%M %Z")
            .to_string(),
        window,
        price: c.report.sms_price_per_segment,
        currency: &c.report.currency,
    }
}

/// `report --all STATE_DIR`: one line per campaign of the state directory's ledger, as CSV or
/// (`Kind::Html`) a page with a sparkline of each campaign's sends per day.
pub fn run_all(
    state_dir: &Path,
    kind: Kind,
    out: Option<&Path>,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<Written, ReportError> {
    let store = crate::config::Store::of_dir(state_dir)?;
    let Some(ledger) = Ledger::open_existing(&store)? else {
        return Err(ReportError::Io {
            path: Ledger::name_of(&store).into(),
            source: std::io::Error::new(
                std::io::ErrorKind::NotFound,
                "no ledger here: give the state directory of a campaign that has sent",
            ),
        });
    };
    let lines = all::lines(&ledger)?;
    let (name, text) = match kind {
        Kind::Csv => ("all-campaigns.csv", all::csv(&lines)?),
        Kind::Html => ("all-campaigns.html", all::page(&lines, now).into_bytes()),
    };
    let path = target(state_dir, out, name)?;
    write_private(&path, &text)?;
    Ok(Written {
        path,
        rows: lines.len(),
    })
}
