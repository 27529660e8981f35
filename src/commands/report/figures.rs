//! The campaign report's figures: aggregate counts only, no address, name or id. The plan's half
//! (contacts, chosen, reachable, consented, due; skipped by reason, deferred) comes from asking
//! the planner about every contact, as the CSV report does; the ledger's half (sent, failed,
//! unknown, delivered, bounced, opted out, per hour, per run, segments, failures by code) from
//! `store::report`'s `GROUP BY`s. Times are the clinic's: the ledger's UTC hours are turned into
//! local days and hours here.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;

use crate::load::Loaded;
use crate::model::{Channel, State};
use crate::plan::Decision;
use crate::store::ledger::RunRecord;
use crate::store::ledger::{AFTER_SENDING, Ledger, LedgerError};
use crate::store::tally::{Detail, FailureGroup, MessageGroup, Tally};

/// The skip reasons, in the order the report lists them, with the funnel stage they stop at.
pub const SKIPS: [(&str, &str); 9] = [
    ("not_chosen", "chosen"),
    ("no_address", "reachable"),
    ("invalid_address", "reachable"),
    ("row_error", "reachable"),
    ("duplicate", "reachable"),
    ("no_consent", "consented"),
    ("suppressed", "due"),
    ("message_error", "due"),
    ("campaign_ended", "due"),
];

/// The plan's view of one channel: who the contacts file reaches, and why not.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct PlanCounts {
    pub contacts: u64,
    /// Skip label → contacts.
    pub skipped: BTreeMap<&'static str, u64>,
    /// Will go on a later run (quiet hours, daily cap, window not open).
    pub deferred: u64,
    /// Will go on the next run.
    pub due_now: u64,
    /// Already settled in the ledger.
    pub done: u64,
}

impl PlanCounts {
    /// The contacts still in after the stage `stage` (`chosen`, `reachable`, `consented`,
    /// `due`): the contacts less every skip at or before it.
    pub fn after(&self, stage: &str) -> u64 {
        let order = ["chosen", "reachable", "consented", "due"];
        let upto = order.iter().position(|s| *s == stage).unwrap_or(0);
        let lost: u64 = SKIPS
            .iter()
            .filter(|(_, at)| order.iter().position(|s| s == at).unwrap_or(0) <= upto)
            .map(|(label, _)| self.skipped.get(label).copied().unwrap_or(0))
            .sum();
        self.contacts.saturating_sub(lost)
    }
}

/// The ledger's view of one channel.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct LedgerCounts {
    /// `sent`, `failed` (permanent), `retry`, `unknown`, `sending` → messages.
    pub states: BTreeMap<&'static str, u64>,
    /// [`AFTER_SENDING`]'s words → messages.
    pub after: BTreeMap<&'static str, u64>,
    /// Segments of the sent SMS whose run recorded them, and those messages.
    pub segments: u64,
    pub with_segments: u64,
}

impl LedgerCounts {
    pub fn state(&self, word: &str) -> u64 {
        self.states.get(word).copied().unwrap_or(0)
    }

    pub fn after(&self, word: &str) -> u64 {
        self.after.get(word).copied().unwrap_or(0)
    }
}

/// What happened in one clinic-local period (a day, or an hour of a one-day campaign).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Period {
    pub sent: u64,
    pub delivered: u64,
    pub failed: u64,
    pub opted_out: u64,
}

/// One failure line: never an address, only a code and a receiving domain.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Failure {
    pub channel: Channel,
    pub reason: &'static str,
    pub code: String,
    /// An email's receiving domain; `–` for an SMS.
    pub domain: String,
    pub count: u64,
}

/// A run, with the messages it sent.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Run {
    #[serde(flatten)]
    pub line: RunRecord,
    pub email_sent: u64,
    pub sms_sent: u64,
}

/// Everything the report shows of a campaign.
#[derive(Debug, Clone)]
pub struct Figures {
    pub campaign: String,
    /// The clinic's time zone, which days and hours are in.
    pub timezone: Tz,
    /// The plan's counts per channel; none when the report was made without the contacts
    /// (`report --all`).
    pub plan: BTreeMap<Channel, PlanCounts>,
    pub ledger: BTreeMap<Channel, LedgerCounts>,
    /// Whether `periods` are hours (a campaign whose activity fits in one local day).
    pub hourly: bool,
    /// Local day (`2026-11-25`) or hour (`2026-11-25 12:00`) → channel → what happened.
    pub periods: BTreeMap<String, BTreeMap<Channel, Period>>,
    /// The top failures, most first.
    pub failures: Vec<Failure>,
    pub runs: Vec<Run>,
    /// Who approved it last, and when.
    pub approval: Option<(String, String)>,
}

/// How many failure lines the report shows.
pub const TOP_FAILURES: usize = 10;

impl Figures {
    /// The ledger's figures of `campaign` (times in `timezone`), no plan.
    pub fn from_ledger(ledger: &Ledger, campaign: &str, timezone: Tz) -> Result<Self, LedgerError> {
        let tally = ledger.tally(campaign, Detail::Report)?;
        let mut counts: BTreeMap<Channel, LedgerCounts> = BTreeMap::new();
        for (channel, state, permanent, n) in tally.counts() {
            let word = match (state, permanent) {
                (State::Failed, false) => "retry",
                (s, _) => s.as_str(),
            };
            *counts
                .entry(channel)
                .or_default()
                .states
                .entry(word)
                .or_default() += n;
        }
        for (channel, word, n) in tally.after_sending() {
            *counts
                .entry(channel)
                .or_default()
                .after
                .entry(word)
                .or_default() += n;
        }
        let Tally {
            groups, failures, ..
        } = tally;
        for g in &groups {
            if let Some(s) = g.segments {
                let c = counts.entry(g.channel).or_default();
                c.segments += u64::from(s) * g.count;
                c.with_segments += g.count;
            }
        }
        let (hourly, periods) = periods(&groups, timezone);
        let runs = ledger
            .runs(campaign)?
            .into_iter()
            .map(|line| {
                let sent = |channel| {
                    groups
                        .iter()
                        .filter(|g| g.channel == channel && g.run == Some(line.id))
                        .map(|g| g.count)
                        .sum()
                };
                Run {
                    email_sent: sent(Channel::Email),
                    sms_sent: sent(Channel::Sms),
                    line,
                }
            })
            .collect();
        Ok(Figures {
            campaign: campaign.to_string(),
            timezone,
            plan: BTreeMap::new(),
            ledger: counts,
            hourly,
            periods,
            failures: top_failures(failures),
            runs,
            approval: ledger.last_approval(campaign)?,
        })
    }

    /// The figures of a loaded campaign: the plan's for every contact and enabled channel, and
    /// the ledger's when it has one.
    pub fn of(loaded: &Loaded, ledger: Option<&Ledger>) -> Result<Self, LedgerError> {
        let campaign = &loaded.campaign;
        let tz = campaign.clinic.timezone;
        let mut figures = match ledger {
            Some(l) => Figures::from_ledger(l, &campaign.id, tz)?,
            None => Figures {
                campaign: campaign.id.clone(),
                timezone: tz,
                plan: BTreeMap::new(),
                ledger: BTreeMap::new(),
                hourly: false,
                periods: BTreeMap::new(),
                failures: Vec::new(),
                runs: Vec::new(),
                approval: None,
            },
        };
        for channel in &campaign.channels {
            figures.plan.insert(*channel, plan_counts(loaded, *channel));
            let l = figures.ledger.entry(*channel).or_default();
            for word in ["sent", "failed", "retry", "unknown", "sending"] {
                l.states.entry(word).or_default();
            }
            for word in AFTER_SENDING {
                l.after.entry(word).or_default();
            }
        }
        Ok(figures)
    }
}

/// Asks the planner about every contact on `channel`, at the loaded instant.
fn plan_counts(loaded: &Loaded, channel: Channel) -> PlanCounts {
    let mut counts = PlanCounts {
        contacts: loaded.contacts.contacts.len() as u64,
        ..PlanCounts::default()
    };
    for (label, _) in SKIPS {
        counts.skipped.insert(label, 0);
    }
    for index in 0..loaded.contacts.contacts.len() {
        match loaded.decide(index, channel, loaded.now, None) {
            Decision::Due => counts.due_now += 1,
            Decision::Deferred(_) => counts.deferred += 1,
            Decision::Done(_) => counts.done += 1,
            Decision::Skipped(s) => *counts.skipped.entry(s.label()).or_default() += 1,
        }
    }
    counts
}

/// A stored UTC hour (`2026-11-25T18`) as a local date-time in `tz`.
fn local_hour(hour: &str, tz: Tz) -> Option<chrono::DateTime<Tz>> {
    let naive =
        NaiveDateTime::parse_from_str(&format!("{hour}:00:00"), "%Y-%m-%dT%H:%M:%S").ok()?;
    Some(Utc.from_utc_datetime(&naive).with_timezone(&tz))
}

/// Which count of a [`Period`] an event adds to.
type Field = fn(&mut Period) -> &mut u64;

/// The groups' events by local day, or by local hour when they all fall on one day; days and
/// hours between the first and last are there too, with nothing in them.
fn periods(groups: &[MessageGroup], tz: Tz) -> (bool, BTreeMap<String, BTreeMap<Channel, Period>>) {
    let mut events: Vec<(DateTime<Tz>, Channel, Field, u64)> = Vec::new();
    for g in groups {
        let hours: [(&Option<String>, Field); 4] = [
            (&g.sent_hour, |p| &mut p.sent),
            (&g.delivered_hour, |p| &mut p.delivered),
            (&g.failed_hour, |p| &mut p.failed),
            (&g.opted_out_hour, |p| &mut p.opted_out),
        ];
        for (hour, field) in hours {
            if let Some(at) = hour.as_deref().and_then(|h| local_hour(h, tz)) {
                events.push((at, g.channel, field, g.count));
            }
        }
    }
    let (Some(first), Some(last)) = (
        events.iter().map(|e| e.0).min(),
        events.iter().map(|e| e.0).max(),
    ) else {
        return (false, BTreeMap::new());
    };
    let hourly = first.date_naive() == last.date_naive();
    let key = |at: &chrono::DateTime<Tz>| {
        if hourly {
            at.format("%Y-%m-%d %H:00").to_string()
        } else {
            at.format("%Y-%m-%d").to_string()
        }
    };
    let mut out: BTreeMap<String, BTreeMap<Channel, Period>> = BTreeMap::new();
    let step = if hourly {
        chrono::Duration::hours(1)
    } else {
        chrono::Duration::days(1)
    };
    let mut at = first;
    while key(&at) <= key(&last) {
        out.entry(key(&at)).or_default();
        at += step;
    }
    for (at, channel, field, n) in events {
        let period = out.entry(key(&at)).or_default().entry(channel).or_default();
        *field(period) += n;
    }
    (hourly, out)
}

/// The code a refused send's error text gives: an enhanced status (`5.1.1`), else a
/// provider's five-digit code (Twilio `21211`), else a three-digit SMTP or HTTP status; `–`
/// when it has none. Only this is kept of the text, which may quote the address.
pub fn code_of(text: &str) -> String {
    fn digits(t: &str, n: usize) -> bool {
        t.len() == n && t.bytes().all(|b| b.is_ascii_digit())
    }
    fn enhanced(t: &str) -> bool {
        let parts: Vec<&str> = t.split('.').collect();
        parts.len() == 3
            && matches!(parts[0], "2" | "4" | "5")
            && parts[1..]
                .iter()
                .all(|p| (1..=3).contains(&p.len()) && digits(p, p.len()))
    }
    fn status(t: &str) -> bool {
        digits(t, 3) && matches!(t.as_bytes()[0], b'4' | b'5')
    }
    let tokens: Vec<&str> = text
        .split(|c: char| !(c.is_ascii_digit() || c == '.'))
        .map(|t| t.trim_matches('.'))
        .filter(|t| !t.is_empty())
        .collect();
    let first = |ok: &dyn Fn(&str) -> bool| tokens.iter().copied().find(|t| ok(t));
    first(&enhanced)
        .or_else(|| first(&|t| digits(t, 5)))
        .or_else(|| first(&status))
        .map_or_else(|| "–".to_string(), str::to_string)
}

/// The failure groups as the report lists them: by channel, reason, code and domain, most
/// first, the top [`TOP_FAILURES`].
fn top_failures(groups: Vec<FailureGroup>) -> Vec<Failure> {
    let mut merged: BTreeMap<(Channel, &'static str, String, String), u64> = BTreeMap::new();
    for g in groups {
        let reason = match g.kind.as_str() {
            "send" => "refused when sent",
            "undelivered" => "undelivered (carrier)",
            "hard" => "bounced: bad address",
            "soft" => "soft bounce",
            "policy" => "refused by policy",
            "complaint" => "complaint",
            _ => "other permanent failure",
        };
        let code = match (g.kind.as_str(), g.detail) {
            ("send", Some(text)) => code_of(&text),
            (_, Some(code)) if !code.is_empty() => code_of(&code),
            _ => "–".to_string(),
        };
        let domain = g.domain.unwrap_or_else(|| "–".to_string());
        *merged.entry((g.channel, reason, code, domain)).or_default() += g.count;
    }
    let mut out: Vec<Failure> = merged
        .into_iter()
        .map(|((channel, reason, code, domain), count)| Failure {
            channel,
            reason,
            code,
            domain,
            count,
        })
        .collect();
    out.sort_by_key(|f| std::cmp::Reverse(f.count));
    out.truncate(TOP_FAILURES);
    out
}

/// A stored timestamp in `tz`, to the minute (`2026-11-25 12:00 CST`).
pub fn local_time(stamp: &str, tz: Tz) -> String {
    match DateTime::parse_from_rfc3339(stamp) {
        Ok(t) => t.with_timezone(&tz).format("%Y-%m-%d %H:%M %Z").to_string(),
        Err(_) => stamp.to_string(),
    }
}

/// How long between two stored timestamps (`1 min 12 s`), when both read.
pub fn duration(from: &str, to: &str) -> Option<String> {
    let from = DateTime::parse_from_rfc3339(from).ok()?;
    let to = DateTime::parse_from_rfc3339(to).ok()?;
    let secs = (to - from).num_milliseconds().max(0) as f64 / 1000.0;
    Some(if secs < 60.0 {
        format!("{secs:.1} s")
    } else if secs < 3600.0 {
        format!("{} min {} s", (secs / 60.0) as u64, (secs % 60.0) as u64)
    } else {
        format!(
            "{} h {} min",
            (secs / 3600.0) as u64,
            (secs % 3600.0 / 60.0) as u64
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_come_out_of_error_texts_and_nothing_else_does() {
        assert_eq!(
            code_of("550 5.1.1 <ann@example.com>: user unknown"),
            "5.1.1"
        );
        assert_eq!(
            code_of("HTTP 400: code 21211, To +13125550142 is invalid"),
            "21211"
        );
        assert_eq!(code_of("554 transaction failed"), "554");
        assert_eq!(code_of("connection refused"), "–");
        assert_eq!(code_of("30003"), "30003");
        assert_eq!(code_of("5.7.1"), "5.7.1");
    }

    #[test]
    fn a_stage_keeps_the_contacts_no_earlier_skip_took() {
        let mut p = PlanCounts {
            contacts: 10,
            ..PlanCounts::default()
        };
        p.skipped.insert("not_chosen", 1);
        p.skipped.insert("no_address", 2);
        p.skipped.insert("no_consent", 3);
        p.skipped.insert("suppressed", 1);
        assert_eq!(
            ["chosen", "reachable", "consented", "due"].map(|s| p.after(s)),
            [9, 7, 4, 3]
        );
    }
}
