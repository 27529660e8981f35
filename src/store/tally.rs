//! What became of a campaign's messages, counted in one pass: [`Ledger::tally`], which `status`,
//! `report` (HTML and `--all`) and the end of `send` read.
//!
//! What came back is read first, each table whole and in its own order (the parts of SMS with
//! their receipts, the bounces, the unsubscribes, the STOP replies), into maps keyed by message;
//! then the campaign's messages are read once and each is counted in its group. SQLite joins
//! did the same work a message at a time, each a jump to another page: on a ledger of 1,000,000
//! messages `status` took 8 s and the report's groups 11 s; the maps hold what came back (a few
//! bytes per SMS part) and the groups, never the messages.
//!
//! The rules of what a message became, here in one place:
//! - an SMS is `undelivered` once a receipt of one of its parts says so, `delivered` once as
//!   many receipts say delivered as it has parts, at the hour of its last receipt;
//! - an email is, by what the bounce mailbox said, the gravest of `complained`, `bounced` (a
//!   hard bounce), `undelivered` (refused by policy, or another permanent failure) and
//!   `soft-bounced`; an email's delivery is never known;
//! - an email is opted out by its unsubscribe (page, button or mailto), an SMS by a STOP reply
//!   from its number at or after it was sent (the first such reply's hour).
//!
//! The per-recipient CSV (`each_row`, `rows_of`) asks the same of one message at a time in SQL
//! (`delivery_columns!` in `ledger.rs`).

use std::collections::HashMap;

use super::db::{Db, DbResult, Row, args};

use super::sqlite::{Ledger, LedgerError};
use crate::model::{Channel, State};

/// Messages sharing every column of the grouping.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageGroup {
    pub channel: Channel,
    pub state: State,
    /// A permanent failure (`failed` only).
    pub permanent: bool,
    /// The UTC hour they were sent (`2026-11-25T18`), when sent.
    pub sent_hour: Option<String>,
    /// The UTC hour they failed for good, when they did.
    pub failed_hour: Option<String>,
    /// What became of them after sending (see the module's rules): `delivered`,
    /// `undelivered`, `bounced`, `soft-bounced`, `complained`; none when nothing came back.
    pub after: Option<&'static str>,
    /// The UTC hour the last receipt said delivered (SMS: every part delivered), when it did.
    pub delivered_hour: Option<String>,
    /// The UTC hour the patient opted out after the message, when they did (empty in a tally
    /// of [`Detail::Counts`]).
    pub opted_out_hour: Option<String>,
    /// A sent SMS's segments, when its run recorded them.
    pub segments: Option<u32>,
    /// The run that claimed them last, when they were sent.
    pub run: Option<i64>,
    pub count: u64,
}

/// Failed messages sharing a reason, a detail and a receiving domain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailureGroup {
    pub channel: Channel,
    /// `send` (the server or gateway refused it), `undelivered` (the carrier's receipt), or a
    /// bounce's kind (`hard`, `soft`, `policy`, `other`, `complaint`).
    pub kind: String,
    /// The error text of a refused send (may quote an address: read a code out of it, never
    /// show it), the carrier's code, or the DSN status.
    pub detail: Option<String>,
    /// The receiving domain of an email; none for an SMS.
    pub domain: Option<String>,
    /// Messages (not events: three soft bounces of one email count once).
    pub count: u64,
}

/// [`Ledger::tally`]'s answer.
#[derive(Debug, Clone, Default)]
pub struct Tally {
    /// Every message of the campaign, in groups.
    pub groups: Vec<MessageGroup>,
    /// Refused sends, undelivered SMS and returned mail, in groups (`failures` only).
    pub failures: Vec<FailureGroup>,
    /// Receipts of the whole ledger that match a part of a sent SMS (of any campaign).
    pub matched_receipts: u64,
}

/// What a tally reads beyond the counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Detail {
    /// States and what came back: `status`, the end of `send`.
    Counts,
    /// Also the hours, segments, runs and failure groups: the report.
    Report,
}

impl Tally {
    /// Messages by channel, state and whether a failure is permanent.
    pub fn counts(&self) -> Vec<(Channel, State, bool, u64)> {
        let mut out: HashMap<(Channel, State, bool), u64> = HashMap::new();
        for g in &self.groups {
            *out.entry((g.channel, g.state, g.permanent)).or_default() += g.count;
        }
        let mut out: Vec<_> = out.into_iter().map(|((c, s, p), n)| (c, s, p, n)).collect();
        out.sort_by_key(|&(c, s, p, _)| (c, s.as_str(), p));
        out
    }

    /// Messages by channel and what became of them after sending, and those opted out after
    /// them (`opted out`): the words of `AFTER_SENDING`, none of them zero.
    pub fn after_sending(&self) -> Vec<(Channel, &'static str, u64)> {
        let mut out: HashMap<(Channel, &'static str), u64> = HashMap::new();
        for g in &self.groups {
            if let Some(word) = g.after {
                *out.entry((g.channel, word)).or_default() += g.count;
            }
            if g.opted_out_hour.is_some() {
                *out.entry((g.channel, "opted out")).or_default() += g.count;
            }
        }
        let mut out: Vec<_> = out.into_iter().map(|((c, w), n)| (c, w, n)).collect();
        out.sort();
        out
    }

    /// The campaign's messages of `channel` that became `word` after sending.
    pub fn after(&self, channel: Channel, word: &str) -> u64 {
        self.groups
            .iter()
            .filter(|g| g.channel == channel && g.after == Some(word))
            .map(|g| g.count)
            .sum()
    }

    /// The campaign's messages opted out after (any channel).
    pub fn opted_out(&self, channel: Channel) -> u64 {
        self.groups
            .iter()
            .filter(|g| g.channel == channel && g.opted_out_hour.is_some())
            .map(|g| g.count)
            .sum()
    }
}

/// The UTC hour of a stored timestamp (`2026-11-25T18:03:12Z` → `2026-11-25T18`), kept without
/// allocating: its first 13 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
struct Hour([u8; 13]);

impl Hour {
    fn of(stamp: &str) -> Hour {
        let mut h = [0u8; 13];
        let n = stamp.len().min(13);
        h[..n].copy_from_slice(&stamp.as_bytes()[..n]);
        Hour(h)
    }

    fn text(self) -> String {
        let end = self.0.iter().position(|&b| b == 0).unwrap_or(13);
        String::from_utf8_lossy(&self.0[..end]).into_owned()
    }
}

/// What the receipts said of one SMS's parts (a few bytes: a map holds one per sent SMS).
#[derive(Debug, Default)]
struct SmsBack {
    /// The parts it was sent in (the largest `parts` of its rows).
    parts: u32,
    delivered: u32,
    undelivered: bool,
    /// The hour of its last receipt.
    last: Option<Hour>,
}

/// What the bounce mailbox said of one email.
#[derive(Debug, Default, Clone, Copy)]
struct EmailBack {
    complaint: bool,
    hard: bool,
    refused: bool,
    soft: bool,
}

impl EmailBack {
    fn word(self) -> Option<&'static str> {
        if self.complaint {
            Some("complained")
        } else if self.hard {
            Some("bounced")
        } else if self.refused {
            Some("undelivered")
        } else if self.soft {
            Some("soft-bounced")
        } else {
            None
        }
    }
}

/// What came back, by message (and STOP replies by number).
#[derive(Default)]
struct Back {
    sms: HashMap<i64, SmsBack>,
    /// The carrier's codes of an undelivered SMS's parts, each once.
    codes: HashMap<i64, Vec<Option<String>>>,
    email: HashMap<i64, EmailBack>,
    unsubscribed: HashMap<i64, Hour>,
    /// Number → the times of its STOP replies, in order.
    stops: HashMap<String, Vec<String>>,
    matched_receipts: u64,
}

impl Back {
    fn read(c: &Db) -> DbResult<Back> {
        let mut back = Back::default();
        c.for_each(
            "SELECT p.message, p.parts, r.state, r.received_at, r.code
             FROM sms_parts p LEFT JOIN receipts r ON r.provider_id = p.provider_id",
            args![],
            |r| back.receipt(r),
        )?;
        c.for_each(
            "SELECT message, kind FROM bounces WHERE message IS NOT NULL",
            args![],
            |r| {
                let m = back.email.entry(r.get(0)?).or_default();
                match r.str(1)?.unwrap_or_default() {
                    "complaint" => m.complaint = true,
                    "hard" => m.hard = true,
                    "policy" | "other" => m.refused = true,
                    "soft" => m.soft = true,
                    _ => {}
                }
                Ok(())
            },
        )?;
        c.for_each("SELECT message, at FROM unsubscribes", args![], |r| {
            back.unsubscribed
                .insert(r.get(0)?, Hour::of(r.str(1)?.unwrap_or_default()));
            Ok(())
        })?;
        c.for_each(
            "SELECT from_number, received_at FROM replies WHERE keyword = 'opt_out'
             ORDER BY from_number, received_at",
            args![],
            |r| {
                back.stops.entry(r.get(0)?).or_default().push(r.get(1)?);
                Ok(())
            },
        )?;
        Ok(back)
    }

    /// Counts one SMS part and its receipt: `message, parts, state, received_at, code`.
    fn receipt(&mut self, r: &Row<'_>) -> DbResult<()> {
        let back = self;
        {
            let message: i64 = r.get(0)?;
            let m = back.sms.entry(message).or_default();
            m.parts = m.parts.max(r.get(1)?);
            let Some(state) = r.str(2)? else {
                return Ok(());
            };
            back.matched_receipts += 1;
            match state {
                "delivered" => m.delivered += 1,
                "undelivered" => {
                    m.undelivered = true;
                    let code: Option<String> = r.get(4)?;
                    let codes = back.codes.entry(message).or_default();
                    if !codes.contains(&code) {
                        codes.push(code);
                    }
                }
                _ => {}
            }
            let at = Hour::of(r.str(3)?.unwrap_or_default());
            m.last = m.last.max(Some(at));
        }
        Ok(())
    }

    /// The hour of the first STOP reply from `number` at or after `sent_at`.
    fn stop_after(&self, number: &str, sent_at: &str) -> Option<Hour> {
        let times = self.stops.get(number)?;
        let i = times.partition_point(|t| t.as_str() < sent_at);
        times.get(i).map(|t| Hour::of(t))
    }
}

/// The grouping of [`MessageGroup`], without its count.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Key {
    channel: Channel,
    state: State,
    permanent: bool,
    sent: Option<Hour>,
    failed: Option<Hour>,
    after: Option<&'static str>,
    delivered: Option<Hour>,
    opted_out: Option<Hour>,
    segments: Option<u32>,
    run: Option<i64>,
}

impl Ledger {
    /// What became of `campaign`'s messages ([`Tally`]): the messages read once, what came
    /// back once. With [`Detail::Counts`] the hours, segments, runs and failures are left out.
    pub fn tally(&self, campaign: &str, detail: Detail) -> Result<Tally, LedgerError> {
        self.sql(|c| {
            let back = Back::read(c)?;
            let mut counter = Counter::new(&back, detail == Detail::Report);
            c.for_each(
                &format!(
                    "SELECT rowid, channel, state, permanent, sent_at, updated_at, segments,
                            run_id, address, last_error
                     FROM {} WHERE campaign = ?1",
                    super::ledger::campaign_rows(c)?
                ),
                args![campaign],
                |r| counter.add(r),
            )?;
            let returned = match counter.report {
                true => returned_mail(c, campaign)?,
                false => Vec::new(),
            };
            Ok(counter.finish(returned))
        })
    }
}

/// Counts messages into their groups, as [`Ledger::tally`] reads them.
struct Counter<'b> {
    back: &'b Back,
    report: bool,
    groups: HashMap<Key, u64>,
    /// Refused sends by channel, error text and receiving domain.
    refused: HashMap<(Channel, Option<String>, Option<String>), u64>,
    /// Undelivered SMS by carrier code.
    codes: HashMap<Option<String>, u64>,
}

impl<'b> Counter<'b> {
    fn new(back: &'b Back, report: bool) -> Self {
        Counter {
            back,
            report,
            groups: HashMap::new(),
            refused: HashMap::new(),
            codes: HashMap::new(),
        }
    }

    /// Counts one message: `rowid, channel, state, permanent, sent_at, updated_at, segments,
    /// run_id, address, last_error`.
    fn add(&mut self, r: &Row<'_>) -> DbResult<()> {
        let id: i64 = r.get(0)?;
        let Ok(channel) = r.str(1)?.unwrap_or_default().parse::<Channel>() else {
            return Ok(());
        };
        let state = State::parse(r.str(2)?.unwrap_or_default());
        let permanent = r.get::<i64>(3)? != 0;
        let sent_at = r.str(4)?;
        let mut key = Key {
            channel,
            state,
            permanent,
            sent: None,
            failed: None,
            after: None,
            delivered: None,
            opted_out: None,
            segments: None,
            run: None,
        };
        let back = self.back;
        match channel {
            Channel::Sms => {
                if let Some(m) = back.sms.get(&id) {
                    if m.undelivered {
                        key.after = Some("undelivered");
                    } else if m.delivered == m.parts {
                        key.after = Some("delivered");
                        key.delivered = m.last.filter(|_| self.report);
                    }
                    if let Some(codes) = back.codes.get(&id).filter(|_| self.report) {
                        for code in codes {
                            *self.codes.entry(code.clone()).or_default() += 1;
                        }
                    }
                }
                if let Some(sent_at) = sent_at.filter(|_| !back.stops.is_empty()) {
                    key.opted_out = back.stop_after(r.str(8)?.unwrap_or_default(), sent_at);
                }
            }
            Channel::Email => {
                key.after = back.email.get(&id).and_then(|b| b.word());
                key.opted_out = back.unsubscribed.get(&id).copied();
            }
        }
        if !self.report {
            // Whether, not when.
            key.opted_out = key.opted_out.map(|_| Hour::of(""));
        } else if state == State::Sent {
            key.sent = sent_at.map(Hour::of);
            key.segments = r.get::<Option<i64>>(6)?.map(|n| n as u32);
            key.run = r.get(7)?;
        } else if state == State::Failed && permanent {
            key.failed = Some(Hour::of(r.str(5)?.unwrap_or_default()));
            let domain = match channel {
                Channel::Email => {
                    let address = r.str(8)?.unwrap_or_default();
                    let at = address.find('@').map_or(0, |i| i + 1);
                    Some(address[at..].to_ascii_lowercase())
                }
                Channel::Sms => None,
            };
            *self
                .refused
                .entry((channel, r.get(9)?, domain))
                .or_default() += 1;
        }
        *self.groups.entry(key).or_default() += 1;
        Ok(())
    }

    /// The tally, with `returned` mail among its failures.
    fn finish(self, returned: Vec<FailureGroup>) -> Tally {
        let mut failures: Vec<FailureGroup> = self
            .refused
            .into_iter()
            .map(|((channel, detail, domain), count)| FailureGroup {
                channel,
                kind: "send".into(),
                detail,
                domain,
                count,
            })
            .collect();
        failures.extend(self.codes.into_iter().map(|(detail, count)| FailureGroup {
            channel: Channel::Sms,
            kind: "undelivered".into(),
            detail,
            domain: None,
            count,
        }));
        failures.extend(returned);
        failures.sort_by(|a, b| {
            (a.channel, &a.kind, &a.detail, &a.domain)
                .cmp(&(b.channel, &b.kind, &b.detail, &b.domain))
        });
        let hour = |h: Option<Hour>| h.map(Hour::text);
        let mut groups: Vec<MessageGroup> = self
            .groups
            .into_iter()
            .map(|(k, count)| MessageGroup {
                channel: k.channel,
                state: k.state,
                permanent: k.permanent,
                sent_hour: hour(k.sent),
                failed_hour: hour(k.failed),
                after: k.after,
                delivered_hour: hour(k.delivered),
                opted_out_hour: hour(k.opted_out),
                segments: k.segments,
                run: k.run,
                count,
            })
            .collect();
        groups.sort_by(|a, b| {
            (a.channel, a.state.as_str(), &a.sent_hour, a.run).cmp(&(
                b.channel,
                b.state.as_str(),
                &b.sent_hour,
                b.run,
            ))
        });
        Tally {
            groups,
            failures,
            matched_receipts: self.back.matched_receipts,
        }
    }
}

/// `campaign`'s returned mail by kind, DSN status and receiving domain (messages, not bounces).
fn returned_mail(c: &Db, campaign: &str) -> DbResult<Vec<FailureGroup>> {
    c.query(
        &format!(
            "SELECT b.kind, b.status, b.domain, COUNT(DISTINCT b.message)
             FROM bounces b {} messages m ON m.rowid = b.message
             WHERE m.campaign = ?1
             GROUP BY b.kind, b.status, b.domain",
            c.join_in_order()
        ),
        args![campaign],
        |r| {
            Ok(FailureGroup {
                channel: Channel::Email,
                kind: r.get(0)?,
                detail: r.get(1)?,
                domain: r.get(2)?,
                count: r.get::<i64>(3)? as u64,
            })
        },
    )
}

#[cfg(test)]
mod tests {
    use rusqlite::Connection;

    use super::*;

    /// A ledger holding `sql`'s rows (after the schema `Ledger::open` makes).
    fn ledger_with(sql: &str) -> (tempfile::TempDir, Ledger) {
        let dir = tempfile::tempdir().unwrap();
        drop(Ledger::open(dir.path()).unwrap());
        let c = Connection::open(dir.path().join(crate::store::ledger::FILE)).unwrap();
        c.execute_batch(sql).unwrap();
        drop(c);
        let l = Ledger::open(dir.path()).unwrap();
        (dir, l)
    }

    /// A message row: rowid, campaign, channel, address, state, permanent, sent_at.
    fn message(id: i64, campaign: &str, channel: &str, address: &str, state: &str) -> String {
        let permanent = i64::from(state == "failed");
        let sent = match state {
            "sent" => "'2026-11-25T10:00:00Z'",
            _ => "NULL",
        };
        format!(
            "INSERT INTO messages (rowid, campaign, channel, address, contact_id, state, permanent,
                 last_error, fingerprint, run_id, created_at, updated_at, sent_at, segments)
             VALUES ({id}, '{campaign}', '{channel}', '{address}', 'P{id}', '{state}',
                 {permanent}, '550 5.1.1 no such user <{address}>', 'fp', 1,
                 '2026-11-25T09:00:00Z', '2026-11-25T11:30:00Z', {sent},
                 CASE WHEN '{channel}' = 'sms' THEN 2 END);\n"
        )
    }

    fn part(message: i64, part: i64, parts: i64) -> String {
        format!(
            "INSERT INTO sms_parts (provider_id, message, part, parts)
             VALUES ('SM{message}-{part}', {message}, {part}, {parts});\n"
        )
    }

    fn receipt(message: i64, part: i64, state: &str, code: &str, hour: u32) -> String {
        format!(
            "INSERT INTO receipts (provider_id, state, status, code, received_at, updated_at)
             VALUES ('SM{message}-{part}', '{state}', '{state}', {code},
                     '2026-11-25T{hour:02}:05:00Z', '2026-11-25T{hour:02}:05:00Z');\n"
        )
    }

    /// Campaign `c`'s messages, each showing one rule (and one of another campaign).
    fn sample() -> String {
        let mut sql = String::new();
        // SMS 1: both parts delivered, the last at 13:05. SMS 2: one part undelivered (30003)
        // and one delivered. SMS 3: one of two parts delivered: nothing known yet. SMS 4: a STOP
        // before it was sent (not counted) and two after it (the first counts). SMS 5: another
        // campaign's, delivered: not counted.
        for (id, campaign) in [(1, "c"), (2, "c"), (3, "c"), (4, "c"), (5, "other")] {
            sql += &message(id, campaign, "sms", &format!("+1312555010{id}"), "sent");
            sql += &part(id, 1, 2);
            sql += &part(id, 2, 2);
        }
        sql += &receipt(1, 1, "delivered", "NULL", 12);
        sql += &receipt(1, 2, "delivered", "NULL", 13);
        sql += &receipt(2, 1, "undelivered", "'30003'", 12);
        sql += &receipt(2, 2, "undelivered", "'30003'", 12);
        sql += &receipt(3, 1, "delivered", "NULL", 12);
        sql += &receipt(5, 1, "delivered", "NULL", 12);
        sql += &receipt(5, 2, "delivered", "NULL", 12);
        for (n, at) in [(1, "09:00"), (2, "15:10"), (3, "16:00")] {
            sql += &format!(
                "INSERT INTO replies (provider_id, campaign, from_number, to_number, body,
                     keyword, received_at)
                 VALUES ('R{n}', 'c', '+13125550104', '+13125550000', 'STOP', 'opt_out',
                         '2026-11-25T{at}:00Z');\n"
            );
        }
        // Email 11: a soft then a hard bounce (bounced). Email 12: a complaint and a soft
        // bounce (complained), and unsubscribed at 14:20. Email 13: failed for good at Example.ORG.
        sql += &message(11, "c", "email", "ann@example.com", "sent");
        sql += &message(12, "c", "email", "bo@example.com", "sent");
        sql += &message(13, "c", "email", "cy@Example.ORG", "failed");
        for (id, message, kind) in [
            (1, 11, "soft"),
            (2, 11, "hard"),
            (3, 12, "complaint"),
            (4, 12, "soft"),
        ] {
            sql += &format!(
                "INSERT INTO bounces (id, message, address, kind, status, domain, at)
                 VALUES ({id}, {message}, 'x@example.com', '{kind}', '5.1.1', 'example.com',
                         '2026-11-25T12:00:00Z');\n"
            );
        }
        sql += "INSERT INTO unsubscribes (message, how, at) VALUES (12, 'page', '2026-11-25T14:20:00Z');\n";
        // A receipt nobody's.
        sql += "INSERT INTO receipts (provider_id, state, status, received_at, updated_at)
                VALUES ('SMnobody', 'delivered', 'delivered', '2026-11-25T12:00:00Z', '2026-11-25T12:00:00Z');\n";
        sql
    }

    #[test]
    fn every_rule_of_what_a_message_became() {
        let (_dir, l) = ledger_with(&sample());

        let t = l.tally("c", Detail::Report).unwrap();
        let after = t.after_sending();
        assert_eq!(
            after,
            [
                (Channel::Email, "bounced", 1),
                (Channel::Email, "complained", 1),
                (Channel::Email, "opted out", 1),
                (Channel::Sms, "delivered", 1),
                (Channel::Sms, "opted out", 1),
                (Channel::Sms, "undelivered", 1),
            ]
        );
        let group = |channel, id_hour: &str| {
            t.groups
                .iter()
                .filter(|g| g.channel == channel)
                .find(|g| {
                    g.delivered_hour.as_deref() == Some(id_hour)
                        || g.opted_out_hour.as_deref() == Some(id_hour)
                })
                .cloned()
        };
        assert_eq!(
            group(Channel::Sms, "2026-11-25T13").unwrap().after,
            Some("delivered")
        );
        assert!(
            group(Channel::Sms, "2026-11-25T15").is_some(),
            "the first STOP after sending"
        );
        assert!(
            group(Channel::Email, "2026-11-25T14").is_some(),
            "the unsubscribe's hour"
        );
        assert_eq!(
            t.counts(),
            [
                (Channel::Email, State::Failed, true, 1),
                (Channel::Email, State::Sent, false, 2),
                (Channel::Sms, State::Sent, false, 4),
            ]
        );
        let failures: Vec<_> = t
            .failures
            .iter()
            .map(|f| {
                (
                    f.kind.as_str(),
                    f.detail.as_deref(),
                    f.domain.as_deref(),
                    f.count,
                )
            })
            .collect();
        assert_eq!(
            failures,
            [
                ("complaint", Some("5.1.1"), Some("example.com"), 1),
                ("hard", Some("5.1.1"), Some("example.com"), 1),
                (
                    "send",
                    Some("550 5.1.1 no such user <cy@Example.ORG>"),
                    Some("example.org"),
                    1
                ),
                ("soft", Some("5.1.1"), Some("example.com"), 2),
                ("undelivered", Some("30003"), None, 1),
            ]
        );
        // Segments of the sent SMS: 4 × 2.
        let segments: u64 = t
            .groups
            .iter()
            .filter_map(|g| g.segments.map(|s| u64::from(s) * g.count))
            .sum();
        assert_eq!(segments, 8);
        // Every receipt but the one nobody's matched a part (7 of 8), of any campaign.
        assert_eq!(t.matched_receipts, 7);

        // Counts only: the same counts, no hours.
        let c = l.tally("c", Detail::Counts).unwrap();
        assert_eq!(c.after_sending(), after);
        assert_eq!(c.counts(), t.counts());
        assert!(
            c.groups
                .iter()
                .all(|g| g.sent_hour.is_none() && g.delivered_hour.is_none())
        );
        assert!(c.failures.is_empty());
    }
}
