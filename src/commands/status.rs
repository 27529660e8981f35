//! `outreach status`: counts by channel and state from the ledger, the suppressions learnt
//! while sending and the last run. Reads the ledger only (no contacts), and shows no address:
//! its output is what cron mails.

use std::collections::BTreeMap;

use crate::model::{Channel, State};
use crate::store::bounces::BounceCounts;
use crate::store::feedback::FeedbackCounts;
use crate::store::ledger::{AFTER_SENDING, Ledger, LedgerError};
use crate::store::tally::Detail;

/// Counts for `status`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Status {
    pub campaign: String,
    /// The ledger's file, or its database.
    pub ledger: String,
    /// channel → state → count (`failed` is permanent; `retry` is a transient failure).
    pub counts: BTreeMap<Channel, BTreeMap<&'static str, u64>>,
    pub last_run: Option<crate::store::ledger::RunRecord>,
    /// Addresses suppressed while sending (opt-out replies), shared by every campaign of the
    /// state directory.
    pub suppressed: usize,
    /// What came back (`outreach listen`): delivery receipts, unsubscribes by link, replies.
    pub feedback: FeedbackCounts,
    /// What the bounce mailbox said (`outreach bounces`): the campaign's emails bounced or
    /// complained about, and policy failures per domain.
    pub bounces: BounceCounts,
    /// channel → what became of its messages after they were sent (`delivered`,
    /// `undelivered`, `bounced`, `soft-bounced`, `complained`, `opted out`) → count.
    pub after_sending: BTreeMap<Channel, BTreeMap<&'static str, u64>>,
}

/// Reads the campaign's state from the ledger (without loading contacts).
pub fn status(campaign: &crate::config::Campaign) -> Result<Status, LedgerError> {
    let store = campaign.sending.store();
    let mut counts: BTreeMap<Channel, BTreeMap<&'static str, u64>> = BTreeMap::new();
    for c in &campaign.channels {
        let m = counts.entry(*c).or_default();
        for s in ["sent", "failed", "retry", "unknown", "sending"] {
            m.insert(s, 0);
        }
    }
    let mut last_run = None;
    let mut suppressed = 0;
    let mut feedback = FeedbackCounts::default();
    let mut bounces = BounceCounts::default();
    let mut after_sending: BTreeMap<Channel, BTreeMap<&'static str, u64>> = BTreeMap::new();
    for c in &campaign.channels {
        let m = after_sending.entry(*c).or_default();
        for word in after_words(*c) {
            m.insert(word, 0);
        }
    }
    if let Some(ledger) = Ledger::open_existing(&store)? {
        let tally = ledger.tally(&campaign.id, Detail::Counts)?;
        for (channel, state, permanent, n) in tally.counts() {
            let word = match (state, permanent) {
                (State::Failed, false) => "retry",
                (s, _) => s.as_str(),
            };
            *counts.entry(channel).or_default().entry(word).or_default() += n;
        }
        last_run = ledger.last_run(&campaign.id)?;
        suppressed = ledger.suppressions()?.len();
        feedback = ledger.feedback_counts(&tally)?;
        bounces = ledger.bounce_counts(&campaign.id)?;
        for (channel, word, n) in tally.after_sending() {
            *after_sending
                .entry(channel)
                .or_default()
                .entry(word)
                .or_default() += n;
        }
    }
    Ok(Status {
        campaign: campaign.id.clone(),
        ledger: Ledger::name_of(&store),
        counts,
        last_run,
        suppressed,
        feedback,
        bounces,
        after_sending,
    })
}

/// The states a channel's messages can reach after sending: an email's delivery is never
/// known (only its failures come back), an SMS neither bounces nor is complained about.
fn after_words(channel: Channel) -> impl Iterator<Item = &'static str> {
    AFTER_SENDING.into_iter().filter(move |w| match channel {
        Channel::Email => *w != "delivered",
        Channel::Sms => !matches!(*w, "bounced" | "soft-bounced" | "complained"),
    })
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "Campaign {} (ledger {})", self.campaign, self.ledger)?;
        let states = ["sent", "failed", "retry", "unknown", "sending"];
        write!(f, "{:<7}", "")?;
        for s in states {
            write!(f, "{s:>9}")?;
        }
        writeln!(f)?;
        for (channel, m) in &self.counts {
            write!(f, "{:<7}", channel.as_str())?;
            for s in states {
                write!(f, "{:>9}", m.get(s).copied().unwrap_or(0))?;
            }
            writeln!(f)?;
        }
        match &self.last_run {
            Some(r) => {
                let outcome = r
                    .outcome
                    .as_deref()
                    .unwrap_or("not finished (still running, or it died)");
                write!(
                    f,
                    "Last run: {} started {}, {outcome}",
                    r.number, r.started_at
                )?;
                match r.summary.as_deref().filter(|s| !s.is_empty()) {
                    Some(summary) => write!(f, " ({summary})"),
                    None => Ok(()),
                }
            }
            None => write!(f, "No run yet."),
        }?;
        if self.suppressed > 0 {
            write!(
                f,
                "\nSuppressed while sending (opt-out replies, all campaigns of this state \
                 directory): {}",
                self.suppressed
            )?;
        }
        self.fmt_feedback(f)
    }
}

impl Status {
    /// What became of the messages after sending, a table by channel, when anything came back
    /// (`-`: what the channel cannot tell).
    fn fmt_after_sending(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if !self
            .after_sending
            .values()
            .flat_map(|m| m.values())
            .any(|n| *n > 0)
        {
            return Ok(());
        }
        write!(f, "\nAfter sending (listen, sync, bounces)\n{:<7}", "")?;
        for w in AFTER_SENDING {
            write!(f, "{w:>13}")?;
        }
        for (channel, m) in &self.after_sending {
            write!(f, "\n{:<7}", channel.as_str())?;
            for w in AFTER_SENDING {
                match m.get(w) {
                    Some(n) => write!(f, "{n:>13}")?,
                    None => write!(f, "{:>13}", "-")?,
                }
            }
        }
        Ok(())
    }

    /// The lines of what came back, each only when there is something to say.
    fn fmt_feedback(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let b = &self.feedback;
        let m = &self.bounces;
        self.fmt_after_sending(f)?;
        if !m.policy_by_domain.is_empty() {
            let domains: Vec<String> = m
                .policy_by_domain
                .iter()
                .map(|(d, n)| format!("{d} {n}"))
                .collect();
            write!(
                f,
                "\nRefused by policy, by domain (all campaigns; check SPF, DKIM, DMARC): {}",
                domains.join(", ")
            )?;
        }
        if b.replies > 0 {
            write!(
                f,
                "\nSMS replies (all campaigns of this state directory): {}, {} opt-outs, {} \
                 unread (outreach inbox)",
                b.replies, b.opt_out_replies, b.unread_replies
            )?;
        }
        if b.unmatched_receipts > 0 {
            write!(
                f,
                "\nReceipts for no message this ledger holds: {}",
                b.unmatched_receipts
            )?;
        }
        Ok(())
    }
}
