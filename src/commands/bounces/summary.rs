//! What a `bounces` run read and did, as text for cron's mail and as JSON. Addresses are
//! masked; unrecognised and unreadable messages are named by their mailbox id, so staff can
//! look at them.

use std::collections::BTreeMap;
use std::fmt;

use crate::store::bounces::MailEffect;

/// A message named by its mailbox id, and why it is listed.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Unread {
    pub id: String,
    pub why: String,
}

/// The run's summary.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Summary {
    pub mailbox: String,
    /// The campaigns whose emails the mail was matched against (their ids).
    pub campaigns: Vec<String>,
    /// Messages read and recorded by this run.
    pub read: u64,
    /// Messages an earlier run recorded: skipped.
    pub already_read: u64,
    /// Messages read, by class (`bounce`, `complaint`, `unsubscribe`, `auto-reply`,
    /// `unrecognised`, `unmatched`).
    pub classes: BTreeMap<&'static str, u64>,
    /// Delivery events recorded, by kind (`hard`, `soft`, `policy`, `other`, `complaint`).
    pub events: BTreeMap<&'static str, u64>,
    /// Addresses this run suppressed, masked.
    pub suppressed: Vec<String>,
    /// Policy and other permanent failures of the state directory so far, per receiving
    /// domain: usually the clinic's own sending (DMARC, reputation), never suppressing.
    pub policy_by_domain: BTreeMap<String, u64>,
    pub unrecognised: Vec<Unread>,
    /// Messages that could not be read: the run exits 1, and the next run tries them again.
    pub unreadable: Vec<Unread>,
}

impl Summary {
    pub(super) fn new(mailbox: &str, campaigns: Vec<String>) -> Self {
        Summary {
            mailbox: mailbox.to_string(),
            campaigns,
            ..Summary::default()
        }
    }

    pub(super) fn count(&mut self, label: &'static str, effect: &MailEffect) {
        self.read += 1;
        *self.classes.entry(label).or_default() += 1;
        if let MailEffect::Events(events) = effect {
            for e in events {
                *self.events.entry(e.kind.as_str()).or_default() += 1;
            }
        }
    }

    /// Whether every message could be read.
    pub fn all_read(&self) -> bool {
        self.unreadable.is_empty()
    }
}

fn list(map: &BTreeMap<&'static str, u64>) -> String {
    map.iter()
        .map(|(k, v)| format!("{v} {k}"))
        .collect::<Vec<_>>()
        .join(", ")
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {} messages read, {} read before\n  campaigns: {}",
            self.mailbox,
            self.read,
            self.already_read,
            self.campaigns.join(", ")
        )?;
        if !self.classes.is_empty() {
            write!(f, "\n  messages: {}", list(&self.classes))?;
        }
        if !self.events.is_empty() {
            write!(f, "\n  events: {}", list(&self.events))?;
        }
        if !self.suppressed.is_empty() {
            write!(
                f,
                "\n  suppressed for email: {}",
                self.suppressed.join(", ")
            )?;
        }
        if !self.policy_by_domain.is_empty() {
            let domains: Vec<String> = self
                .policy_by_domain
                .iter()
                .map(|(d, n)| format!("{d} {n}"))
                .collect();
            write!(
                f,
                "\n  refused by policy or other permanent failures, by domain (check your \
                 sending: SPF, DKIM, DMARC, reputation): {}",
                domains.join(", ")
            )?;
        }
        for u in &self.unrecognised {
            write!(f, "\n  not recognised: {} ({})", u.id, u.why)?;
        }
        for u in &self.unreadable {
            write!(f, "\n  could not read: {} ({})", u.id, u.why)?;
        }
        Ok(())
    }
}
