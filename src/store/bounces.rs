//! What `outreach bounces` learns from the bounce mailbox: each message read is kept by its
//! mailbox id (`processed_mail`) in the same transaction as its effect, so a rerun, or a run
//! after a crash, changes nothing that was already committed and loses nothing that was not.
//! Delivery events of emails (`bounces`: hard, soft, policy, other, complaint) point at the
//! message they were matched to; an email's delivery state is read from them (`bounced` for a
//! hard bounce, `complained`), and only grows: no row is ever updated or removed here.
//!
//! Suppression follows the rules: a hard bounce or a complaint suppresses the address
//! for email in every campaign of the state directory; soft bounces suppress once `limit` of
//! them fall within `window`; policy and other permanent failures only count (per receiving
//! domain): they are usually the clinic's own sending problem, not the patient's address.
//! The tables are `sqlite.rs`'s `BOUNCES`.

use chrono::{DateTime, Utc};

use super::db::{Begin, Db, DbResult, args};
use super::feedback::unsubscribe_in;
use super::sqlite::{Ledger, LedgerError, timestamp};
use super::suppressions;

/// What a delivery event says about an address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    Hard,
    Soft,
    Policy,
    Other,
    Complaint,
}

impl EventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Hard => "hard",
            EventKind::Soft => "soft",
            EventKind::Policy => "policy",
            EventKind::Other => "other",
            EventKind::Complaint => "complaint",
        }
    }
}

/// One delivery event to record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailEvent {
    /// The email it was matched to (`messages.rowid`); `None` when the address is the state
    /// directory's but its message could not be told (several campaigns hold it).
    pub message: Option<i64>,
    /// The normalised address.
    pub address: String,
    pub kind: EventKind,
    pub status: Option<String>,
    pub diagnostic: Option<String>,
}

/// What one mailbox message does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MailEffect {
    /// Delivery events (a bounce's recipients, a complaint).
    Events(Vec<MailEvent>),
    /// An opt-out by the unsubscribe mailto: the token's address suppressed, like a link.
    Unsubscribe { token: String },
    /// Nothing (an automatic reply, an unrecognised or unmatched message): only kept as read.
    Nothing,
}

/// When soft bounces suppress.
#[derive(Debug, Clone, Copy)]
pub struct SoftRule {
    pub limit: u32,
    pub window: chrono::Duration,
}

/// What recording a mailbox message did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Recorded {
    /// Addresses this message newly suppressed.
    pub suppressed: Vec<String>,
}

/// An email of the state directory: its row, campaign and address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmailRow {
    pub message: i64,
    pub campaign: String,
    pub address: String,
}

/// What `status` shows of an email campaign's delivery events.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct BounceCounts {
    /// Emails with a hard bounce.
    pub bounced_hard: u64,
    /// Emails with soft bounces only.
    pub bounced_soft: u64,
    /// Emails complained about.
    pub complained: u64,
    /// Policy and other permanent failures of the whole state directory, per receiving domain.
    pub policy_by_domain: std::collections::BTreeMap<String, u64>,
}

fn domain_of(address: &str) -> String {
    address.rsplit_once('@').map_or("", |(_, d)| d).to_string()
}

fn reason(e: &MailEvent) -> String {
    let why = match e.kind {
        EventKind::Complaint => "complained (marked as spam)".to_string(),
        EventKind::Soft => "soft bounces reached the limit".to_string(),
        _ => format!("bounced {}", e.status.as_deref().unwrap_or("(no status)")),
    };
    match &e.diagnostic {
        Some(d) if e.kind != EventKind::Complaint => format!("{why}: {d}"),
        _ => why,
    }
}

impl Ledger {
    /// Every email message of the state directory.
    pub fn email_rows(&self) -> Result<Vec<EmailRow>, LedgerError> {
        self.sql(|c| {
            c.query(
                "SELECT rowid, campaign, address FROM messages WHERE channel = 'email'
                 ORDER BY rowid",
                args![],
                |r| {
                    Ok(EmailRow {
                        message: r.get(0)?,
                        campaign: r.get(1)?,
                        address: r.get(2)?,
                    })
                },
            )
        })
    }

    /// The email a token stands for.
    pub fn email_of_token(&self, token: &str) -> Result<Option<EmailRow>, LedgerError> {
        self.sql(|c| {
            c.query_opt(
                "SELECT m.rowid, m.campaign, m.address FROM tokens t
                 JOIN messages m ON m.rowid = t.message WHERE t.token = ?1",
                args![token],
                |r| {
                    Ok(EmailRow {
                        message: r.get(0)?,
                        campaign: r.get(1)?,
                        address: r.get(2)?,
                    })
                },
            )
        })
    }

    /// Whether mailbox message `id` was read before.
    pub fn mail_processed(&self, mailbox: &str, id: &str) -> Result<bool, LedgerError> {
        self.sql(|c| {
            c.query_row(
                "SELECT CASE WHEN EXISTS (SELECT 1 FROM processed_mail
                                          WHERE mailbox = ?1 AND id = ?2)
                        THEN 1 ELSE 0 END",
                args![mailbox, id],
                |r| r.get(0),
            )
        })
    }

    /// Records a batch of messages of `mailbox`, each `(id, class, effect)`, as read with their
    /// effects, in one transaction: one sync of the ledger for the batch, not one per message
    /// (10,000 DSNs took 19 s one commit each). For each, in order: what it did, or `None` when
    /// it was read before and nothing changed.
    pub fn record_mails(
        &mut self,
        mailbox: &str,
        batch: &[(&str, &str, &MailEffect)],
        soft: SoftRule,
        now: DateTime<Utc>,
    ) -> Result<Vec<Option<Recorded>>, LedgerError> {
        self.transaction(Begin::Immediate, |tx| {
            let mut done = Vec::with_capacity(batch.len());
            for &(id, class, effect) in batch {
                done.push(mail_in(tx, (mailbox, id, class), effect, soft, now)?);
            }
            Ok(done)
        })
    }

    /// The delivery events of `campaign`'s emails, and the state directory's policy failures
    /// per domain.
    pub fn bounce_counts(&self, campaign: &str) -> Result<BounceCounts, LedgerError> {
        self.sql(|c| {
            let (hard, soft, complained): (i64, i64, i64) = c.query_row(
                "SELECT COUNT(*) FILTER (WHERE hard > 0),
                        COUNT(*) FILTER (WHERE hard = 0 AND soft > 0),
                        COUNT(*) FILTER (WHERE complaint > 0) FROM (
                     SELECT COUNT(*) FILTER (WHERE b.kind = 'hard') AS hard,
                            COUNT(*) FILTER (WHERE b.kind = 'soft') AS soft,
                            COUNT(*) FILTER (WHERE b.kind = 'complaint') AS complaint
                     FROM bounces b JOIN messages m ON m.rowid = b.message
                     WHERE m.campaign = ?1 GROUP BY b.message) AS per_message",
                args![campaign],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )?;
            let policy_by_domain = c
                .query(
                    "SELECT domain, COUNT(*) FROM bounces WHERE kind = 'policy' OR kind = 'other'
                     GROUP BY domain ORDER BY domain",
                    args![],
                    |r| Ok((r.get::<String>(0)?, r.get::<i64>(1)? as u64)),
                )?
                .into_iter()
                .collect();
            Ok(BounceCounts {
                bounced_hard: hard as u64,
                bounced_soft: soft as u64,
                complained: complained as u64,
                policy_by_domain,
            })
        })
    }
}

/// Records one mailbox message as read and its effect; `None` when it was read before.
fn mail_in(
    tx: &Db,
    (mailbox, id, class): (&str, &str, &str),
    effect: &MailEffect,
    soft: SoftRule,
    now: DateTime<Utc>,
) -> DbResult<Option<Recorded>> {
    let at = timestamp(now);
    let inserted = tx.execute(
        "INSERT INTO processed_mail (mailbox, id, class, processed_at)
         VALUES (?1, ?2, ?3, ?4) ON CONFLICT DO NOTHING",
        args![mailbox, id, class, at],
    )?;
    if inserted == 0 {
        return Ok(None);
    }
    let mut recorded = Recorded::default();
    match effect {
        MailEffect::Nothing => {}
        MailEffect::Unsubscribe { token } => {
            let before = suppressed_in(tx, token)?;
            if let Some(row) = unsubscribe_in(tx, token, "mailto", &at)?
                && !before
            {
                recorded.suppressed.push(row.address);
            }
        }
        MailEffect::Events(events) => {
            for e in events {
                if event_in(tx, e, soft, now)? {
                    recorded.suppressed.push(e.address.clone());
                }
            }
        }
    }
    Ok(Some(recorded))
}

fn suppressed_in(tx: &Db, token: &str) -> DbResult<bool> {
    Ok(super::feedback::token_in(tx, token)?.is_some_and(|r| r.suppressed))
}

/// Records one event; returns whether it newly suppressed its address.
fn event_in(tx: &Db, e: &MailEvent, soft: SoftRule, now: DateTime<Utc>) -> DbResult<bool> {
    let at = timestamp(now);
    tx.execute(
        "INSERT INTO bounces (message, address, kind, status, diagnostic, domain, at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        args![
            e.message,
            e.address,
            e.kind.as_str(),
            e.status,
            e.diagnostic,
            domain_of(&e.address),
            at
        ],
    )?;
    let suppress = match e.kind {
        EventKind::Hard | EventKind::Complaint => true,
        EventKind::Policy | EventKind::Other => false,
        EventKind::Soft => {
            let since = timestamp(now - soft.window);
            let n: i64 = tx.query_row(
                "SELECT COUNT(*) FROM bounces WHERE address = ?1 AND kind = 'soft' AND at > ?2",
                args![e.address, since],
                |r| r.get(0),
            )?;
            n >= i64::from(soft.limit)
        }
    };
    if !suppress {
        return Ok(false);
    }
    let added = tx.execute(
        suppressions::INSERT,
        args![e.address, reason(e), "bounce mailbox", at],
    )?;
    Ok(added == 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(kind: EventKind) -> MailEvent {
        MailEvent {
            message: None,
            address: "ann@example.org".into(),
            kind,
            status: Some("4.2.2".into()),
            diagnostic: None,
        }
    }

    #[test]
    fn a_message_is_recorded_once_and_soft_bounces_suppress_at_the_limit() {
        let dir = tempfile::tempdir().unwrap();
        let mut l = Ledger::open(dir.path()).unwrap();
        let rule = SoftRule {
            limit: 2,
            window: chrono::Duration::days(30),
        };
        let t0 = Utc::now();
        let soft = MailEffect::Events(vec![event(EventKind::Soft)]);
        let first = one(&mut l, "1", &soft, rule, t0);
        assert_eq!(first, Some(Recorded::default()));
        assert_eq!(one(&mut l, "1", &soft, rule, t0), None);
        // Outside the window: not counted with the first.
        let late = t0 + chrono::Duration::days(31);
        let second = one(&mut l, "2", &soft, rule, late);
        assert_eq!(second, Some(Recorded::default()));
        let third = one(&mut l, "3", &soft, rule, late);
        assert_eq!(third.unwrap().suppressed, ["ann@example.org"]);
        assert!(l.mail_processed("mb", "3").unwrap());
        assert!(!l.mail_processed("mb", "4").unwrap());
    }

    /// Records message `id` of mailbox `mb` alone.
    fn one(
        l: &mut Ledger,
        id: &str,
        effect: &MailEffect,
        rule: SoftRule,
        now: DateTime<Utc>,
    ) -> Option<Recorded> {
        l.record_mails("mb", &[(id, "bounce", effect)], rule, now)
            .unwrap()
            .pop()
            .unwrap()
    }

    #[test]
    fn a_batch_counts_as_its_messages_one_by_one() {
        let dir = tempfile::tempdir().unwrap();
        let mut l = Ledger::open(dir.path()).unwrap();
        let rule = SoftRule {
            limit: 2,
            window: chrono::Duration::days(30),
        };
        let soft = MailEffect::Events(vec![event(EventKind::Soft)]);
        let batch = [
            ("1", "bounce", &soft),
            ("1", "bounce", &soft),
            ("2", "bounce", &soft),
        ];
        let done = l.record_mails("mb", &batch, rule, Utc::now()).unwrap();
        assert_eq!(done[0], Some(Recorded::default()));
        assert_eq!(
            done[1], None,
            "the same message twice in a batch counts once"
        );
        assert_eq!(done[2].as_ref().unwrap().suppressed, ["ann@example.org"]);
    }

    #[test]
    fn policy_failures_never_suppress() {
        let dir = tempfile::tempdir().unwrap();
        let mut l = Ledger::open(dir.path()).unwrap();
        let rule = SoftRule {
            limit: 1,
            window: chrono::Duration::days(30),
        };
        let policy = MailEffect::Events(vec![event(EventKind::Policy)]);
        let r = one(&mut l, "1", &policy, rule, Utc::now());
        assert!(r.unwrap().suppressed.is_empty());
        assert!(l.suppressions().unwrap().is_empty());
        let counts = l.bounce_counts("c").unwrap();
        assert_eq!(counts.policy_by_domain.get("example.org"), Some(&1));
    }
}
