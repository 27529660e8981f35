//! What a run did, as cron mails it: counts per channel ([`ChannelRun`]), the [`RunSummary`]
//! with its exit code and text, and the [`WindowNotice`] printed instead of sending outside the
//! campaign's window.

use std::collections::BTreeMap;

use crate::load::Loaded;
use crate::model::{Channel, Exit};
use crate::plan::{self, Decision};

/// Counts for one channel of one run.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct ChannelRun {
    pub channel: Option<Channel>,
    /// Due when the run started.
    pub due: usize,
    pub sent: usize,
    pub failed: usize,
    /// Failed with an opt-out reply (not an error of the run).
    pub opted_out: usize,
    pub unknown: usize,
    /// Transient failures that outlived this run's attempts: the next run retries them.
    pub retry_later: usize,
    /// Not attempted: `--limit` reached or the run stopped.
    pub not_attempted: usize,
    pub deferred: BTreeMap<&'static str, usize>,
    pub skipped: BTreeMap<&'static str, usize>,
    /// What earlier runs already settled: sent, failed, unknown.
    pub already: BTreeMap<&'static str, usize>,
}

/// What a run did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RunSummary {
    pub campaign: String,
    pub run: Option<i64>,
    pub dry_run: bool,
    pub seconds: f64,
    pub channels: Vec<ChannelRun>,
    /// Why the run stopped early, if it did.
    pub stopped: Option<String>,
    /// Rows an earlier, dead run left in flight, now `unknown`.
    pub recovered_unknown: usize,
    /// When the campaign first sent with other templates.
    pub templates_changed_since: Option<String>,
    pub report: Option<std::path::PathBuf>,
    /// The campaign's SMS the carrier delivered and failed so far, by the receipts `listen`
    /// recorded (earlier runs' messages: this run's receipts come after it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delivery: Option<Delivered>,
    /// The approval state (dry runs).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub approval: Option<crate::approval::Status>,
}

/// SMS delivered and undelivered, by their receipts.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct Delivered {
    pub delivered: u64,
    pub undelivered: u64,
}

/// What `send` says instead of sending, outside the campaign's window.
#[derive(Debug, Clone, serde::Serialize)]
pub struct WindowNotice {
    pub campaign: String,
    /// "not_open" or "ended".
    pub window: &'static str,
    /// The instant (UTC, RFC 3339) the window opens or ended.
    pub at: String,
    /// Messages dropped because the campaign ended.
    pub dropped: usize,
    pub message: String,
}

impl std::fmt::Display for WindowNotice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// The notice `send` prints instead of sending when the clock is outside the campaign's window.
pub fn window_notice(loaded: &Loaded, only: Option<Channel>) -> Option<WindowNotice> {
    let c = &loaded.campaign;
    let now = loaded.now;
    if let Some(edge) = c.window.opens_after(now) {
        return Some(WindowNotice {
            campaign: c.id.clone(),
            window: "not_open",
            at: edge.at.to_rfc3339(),
            dropped: 0,
            message: format!(
                "Campaign {}: nothing sent; its window opens {} (campaign.not_before = {})",
                c.id,
                plan::clinic_time(c, edge.at),
                edge.written
            ),
        });
    }
    let edge = c.window.ended_before(now)?;
    let mut dropped = 0;
    for &channel in c
        .channels
        .iter()
        .filter(|ch| only.is_none_or(|o| o == **ch))
    {
        for index in 0..loaded.contacts.contacts.len() {
            if loaded.decide(index, channel, now, None)
                == Decision::Skipped(plan::Skip::CampaignEnded)
            {
                dropped += 1;
            }
        }
    }
    Some(WindowNotice {
        campaign: c.id.clone(),
        window: "ended",
        at: edge.at.to_rfc3339(),
        dropped,
        message: format!(
            "Campaign {} ended {} (campaign.not_after = {}): nothing sent; {dropped} messages \
             dropped (campaign ended); remove it from crontab",
            c.id,
            plan::clinic_time(c, edge.at),
            edge.written
        ),
    })
}

impl RunSummary {
    /// The exit code DESIGN.md fixes.
    pub fn exit(&self) -> Exit {
        let retry_later: usize = self.channels.iter().map(|c| c.retry_later).sum();
        if self.stopped.is_some() || retry_later > 0 {
            Exit::Stopped
        } else if self.channels.iter().any(|c| c.failed > 0 || c.unknown > 0) {
            Exit::Failed
        } else {
            Exit::Ok
        }
    }
}

fn labels(map: &BTreeMap<&'static str, usize>) -> String {
    let mut items: Vec<(&&str, &usize)> = map.iter().filter(|(_, n)| **n > 0).collect();
    items.sort_by_key(|(l, _)| {
        plan::SKIP_ORDER
            .iter()
            .position(|x| x == *l)
            .unwrap_or(usize::MAX)
    });
    items
        .iter()
        .map(|(l, n)| format!("{} {n}", l.replace('_', " ")))
        .collect::<Vec<_>>()
        .join(", ")
}

impl RunSummary {
    /// One line, stored with the run in the ledger.
    pub fn one_line(&self) -> String {
        self.channels
            .iter()
            .map(|c| {
                format!(
                    "{}: {} sent, {} deferred, {} failed, {} unknown",
                    c.channel.map(|c| c.as_str()).unwrap_or(""),
                    c.sent,
                    c.deferred.values().sum::<usize>(),
                    c.failed,
                    c.unknown
                )
            })
            .collect::<Vec<_>>()
            .join("; ")
    }
}

impl std::fmt::Display for RunSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let what = if self.dry_run {
            "dry run (nothing sent)"
        } else {
            "run"
        };
        match self.run {
            Some(id) => writeln!(
                f,
                "Campaign {}, {what} {id}: {:.1}s",
                self.campaign, self.seconds
            )?,
            None => writeln!(
                f,
                "Campaign {}, {what}: {:.1}s",
                self.campaign, self.seconds
            )?,
        }
        if let Some(a) = &self.approval {
            writeln!(f, "Approval: {a}")?;
        }
        if let Some(since) = &self.templates_changed_since {
            writeln!(
                f,
                "Warning: the templates changed since this campaign first sent ({since}): \
                 messages from now on differ from earlier ones"
            )?;
        }
        if self.recovered_unknown > 0 {
            writeln!(
                f,
                "Warning: {} messages were in flight when an earlier run died; their outcome is \
                 unknown and they are not resent (check, then use --resend-unknown)",
                self.recovered_unknown
            )?;
        }
        let sent_word = if self.dry_run { "would send" } else { "sent" };
        writeln!(
            f,
            "{:<7}{:>11}{:>10}{:>9}{:>8}{:>9}{:>14}",
            "", sent_word, "deferred", "skipped", "failed", "unknown", "already done"
        )?;
        for c in &self.channels {
            writeln!(
                f,
                "{:<7}{:>11}{:>10}{:>9}{:>8}{:>9}{:>14}",
                c.channel.map(|c| c.as_str()).unwrap_or(""),
                c.sent,
                c.deferred.values().sum::<usize>(),
                c.skipped.values().sum::<usize>(),
                c.failed + c.opted_out,
                c.unknown,
                c.already.values().sum::<usize>()
            )?;
        }
        for c in &self.channels {
            let name = c.channel.map(|c| c.as_str()).unwrap_or("");
            if !c.skipped.is_empty() {
                writeln!(f, "Skipped {name}: {}", labels(&c.skipped))?;
            }
            if c.deferred.values().any(|n| *n > 0) {
                writeln!(f, "Deferred {name} to a later run: {}", labels(&c.deferred))?;
            }
            if c.opted_out > 0 {
                writeln!(f, "Opted out {name}: {} (now suppressed)", c.opted_out)?;
            }
            if c.retry_later > 0 {
                writeln!(
                    f,
                    "Retry later {name}: {} (a rerun retries them)",
                    c.retry_later
                )?;
            }
            if c.not_attempted > 0 {
                writeln!(
                    f,
                    "Not attempted {name}: {} (limit or stop; a rerun sends them)",
                    c.not_attempted
                )?;
            }
        }
        if let Some(reason) = &self.stopped {
            writeln!(f, "Stopped early: {reason}")?;
        }
        if let Some(d) = &self.delivery {
            writeln!(
                f,
                "SMS delivery so far (receipts): {} delivered, {} undelivered",
                d.delivered, d.undelivered
            )?;
        }
        if let Some(report) = &self.report {
            write!(f, "Report: {}", crate::paths::show_path(report))?;
        }
        Ok(())
    }
}
