//! `report --all STATE_DIR`: every campaign its ledger has seen send, one line each, oldest
//! first, from the ledger alone (no contacts file is read: the plan's half of the funnel is
//! the per-campaign report's). The CSV has a column per figure; the HTML page a row per
//! campaign with a sparkline of its sends per day. A campaign's name and time zone come from its
//! file when the ledger still knows where it is (`campaign_files`), else its id and UTC.

use std::collections::BTreeMap;
use std::fmt::Write;

use chrono_tz::Tz;

use crate::chart::{self, escape};
use crate::model::Channel;
use crate::recipients::ReportError;
use crate::store::ledger::Ledger;

use super::figures::{Figures, local_time};
use super::html;

/// The CSV's columns.
pub const ALL_COLUMNS: [&str; 18] = [
    "campaign",
    "name",
    "started_at",
    "runs",
    "last_run",
    "email_sent",
    "email_failed",
    "email_bounced",
    "email_complained",
    "email_opted_out",
    "sms_sent",
    "sms_failed",
    "sms_delivered",
    "sms_undelivered",
    "sms_opted_out",
    "sms_segments",
    "unknown",
    "days",
];

/// One campaign's line.
#[derive(Debug, Clone)]
pub struct CampaignLine {
    pub name: String,
    pub started_at: String,
    pub figures: Figures,
}

impl CampaignLine {
    fn ledger(&self, c: Channel, get: impl Fn(&super::figures::LedgerCounts) -> u64) -> u64 {
        self.figures.ledger.get(&c).map_or(0, get)
    }

    /// The line's cells, in [`ALL_COLUMNS`]' order.
    fn cells(&self) -> Vec<String> {
        let f = &self.figures;
        let last = f.runs.last().map_or(String::new(), |r| {
            r.line
                .outcome
                .clone()
                .unwrap_or_else(|| "not finished".into())
        });
        let e = Channel::Email;
        let s = Channel::Sms;
        let unknown: u64 = f.ledger.values().map(|l| l.state("unknown")).sum();
        let mut cells = vec![
            f.campaign.clone(),
            self.name.clone(),
            self.started_at.clone(),
            f.runs.len().to_string(),
            last,
        ];
        let numbers = [
            self.ledger(e, |l| l.state("sent")),
            self.ledger(e, |l| l.state("failed")),
            self.ledger(e, |l| l.after("bounced")),
            self.ledger(e, |l| l.after("complained")),
            self.ledger(e, |l| l.after("opted out")),
            self.ledger(s, |l| l.state("sent")),
            self.ledger(s, |l| l.state("failed")),
            self.ledger(s, |l| l.after("delivered")),
            self.ledger(s, |l| l.after("undelivered")),
            self.ledger(s, |l| l.after("opted out")),
            self.ledger(s, |l| l.segments),
            unknown,
            f.periods.len() as u64,
        ];
        cells.extend(numbers.iter().map(u64::to_string));
        cells
    }
}

/// The campaigns of `ledger`, oldest first.
pub fn lines(ledger: &Ledger) -> Result<Vec<CampaignLine>, ReportError> {
    let files: BTreeMap<String, std::path::PathBuf> =
        ledger.campaign_files()?.into_iter().collect();
    let mut out = Vec::new();
    for c in ledger.campaigns()? {
        let file = files
            .get(&c.id)
            .and_then(|f| crate::config::load(f, &[]).ok())
            .filter(|campaign| campaign.id == c.id);
        let (name, tz) = match &file {
            Some(campaign) => (campaign.name.clone(), campaign.clinic.timezone),
            None => (c.id.clone(), Tz::UTC),
        };
        let figures = Figures::from_ledger(ledger, &c.id, tz)?;
        out.push(CampaignLine {
            name,
            started_at: c.started_at,
            figures,
        });
    }
    out.sort_by(|a, b| a.started_at.cmp(&b.started_at));
    Ok(out)
}

/// The lines as CSV.
pub fn csv(lines: &[CampaignLine]) -> Result<Vec<u8>, ReportError> {
    let mut w = csv::Writer::from_writer(Vec::new());
    let err = |e: csv::Error| ReportError::Write(e.into());
    w.write_record(ALL_COLUMNS).map_err(err)?;
    for line in lines {
        let cells = line.cells();
        w.write_record(
            cells
                .iter()
                .map(|c| crate::recipients::escape_cell(c).into_owned()),
        )
        .map_err(err)?;
    }
    w.into_inner()
        .map_err(|e| ReportError::Write(e.into_error()))
}

/// The lines as an HTML page: a table, a sparkline of sends per day (or hour) per campaign.
pub fn page(lines: &[CampaignLine], now: chrono::DateTime<chrono::Utc>) -> String {
    let mut out = String::new();
    html::open(&mut out, "Campaigns — report");
    let _ = write!(
        out,
        "<header><h1>Campaigns</h1><p class=\"sub\">{} campaigns · report made {}</p></header>\
         <section><table><tr><th>campaign</th><th>started</th><th class=\"n\">runs</th>\
         <th class=\"n\">emails sent</th><th class=\"n\">SMS sent</th>\
         <th class=\"n\">SMS delivered</th><th class=\"n\">failed</th>\
         <th class=\"n\">bounced</th><th class=\"n\">opted out</th><th>sent over time</th></tr>",
        lines.len(),
        now.format("%Y-%m-%d %H:%M UTC")
    );
    for line in lines {
        let f = &line.figures;
        let sum = |get: fn(&super::figures::LedgerCounts) -> u64| -> u64 {
            f.ledger.values().map(get).sum()
        };
        let categories: Vec<String> = f.periods.keys().cloned().collect();
        let sent: Vec<u64> = f
            .periods
            .values()
            .map(|m| m.values().map(|p| p.sent).sum())
            .collect();
        let _ = write!(
            out,
            "<tr><td><b>{}</b><br><code>{}</code></td><td>{}</td><td class=\"n\">{}</td>\
             <td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td>\
             <td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td>",
            escape(&line.name),
            escape(&f.campaign),
            escape(&local_time(&line.started_at, f.timezone)),
            f.runs.len(),
            line.ledger(Channel::Email, |l| l.state("sent")),
            line.ledger(Channel::Sms, |l| l.state("sent")),
            line.ledger(Channel::Sms, |l| l.after("delivered")),
            sum(|l| l.state("failed")),
            line.ledger(Channel::Email, |l| l.after("bounced")),
            sum(|l| l.after("opted out")),
        );
        chart::write_into(
            &mut out,
            &chart::sparkline(
                &format!(
                    "{} sent per {}",
                    f.campaign,
                    if f.hourly { "hour" } else { "day" }
                ),
                &categories,
                "sent",
                &sent,
            ),
        );
        out.push_str("</td></tr>");
    }
    out.push_str("</table></section>");
    html::close(&mut out);
    out
}
