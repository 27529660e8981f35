//! Who gets what, and why not: the rules of DESIGN.md "Who gets what" as one pure function,
//! [`decide`], shared by `check`, `preview` and `send`, so all three show the same plan. The reasons it
//! gives are in `reasons.rs`.

mod reasons;

pub use reasons::{Defer, SKIP_ORDER, Skip};

use std::collections::HashMap;
use std::fmt;

use chrono::{DateTime, Utc};

use crate::config::{Campaign, DEFAULT_MAX_SEGMENTS};
use crate::contacts::{Contact, Suppressions};
use crate::model::{Channel, State};

/// What the ledger already knows of one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prior {
    pub state: State,
    /// For `failed`: whether it was permanent (else a transient failure, retried by any run).
    pub permanent: bool,
    pub attempts: u32,
}
/// What the ledger knows of a campaign's messages, by channel and address.
#[derive(Debug, Clone, Default)]
pub struct Priors([PriorIndex; 2]);

impl Priors {
    /// The message to `address` on `channel`, if the ledger has it.
    pub fn get(&self, channel: Channel, address: &str) -> Option<&Prior> {
        self.0[channel as usize].get(address)
    }

    /// Records what the ledger holds of the message to `address` on `channel`.
    pub fn insert(&mut self, channel: Channel, address: &str, prior: Prior) {
        self.0[channel as usize].insert(address, prior);
    }
}

/// One channel's priors: the addresses end to end in one string, each entry where its address
/// ends and its prior, and a table of entry numbers hashed by address. A map of owned strings
/// took ~113 MiB for 1,000,000 messages (an allocation per address, read by every `send`, `check`
/// and `report` of the campaign); this takes about a third.
#[derive(Debug, Clone, Default)]
struct PriorIndex {
    text: String,
    entries: Vec<(u32, Prior)>,
    table: hashbrown::HashTable<u32>,
    hasher: std::hash::RandomState,
}

impl PriorIndex {
    fn address(&self, entry: u32) -> &str {
        let i = entry as usize;
        let start = i.checked_sub(1).map_or(0, |p| self.entries[p].0 as usize);
        &self.text[start..self.entries[i].0 as usize]
    }

    fn get(&self, address: &str) -> Option<&Prior> {
        use std::hash::BuildHasher;
        let entry = self.table.find(self.hasher.hash_one(address), |&e| {
            self.address(e) == address
        })?;
        Some(&self.entries[*entry as usize].1)
    }

    fn insert(&mut self, address: &str, prior: Prior) {
        use std::hash::BuildHasher;
        let hash = self.hasher.hash_one(address);
        if let Some(&e) = self.table.find(hash, |&e| self.address(e) == address) {
            self.entries[e as usize].1 = prior;
            return;
        }
        self.text.push_str(address);
        let end = u32::try_from(self.text.len()).expect("under 4 GiB of addresses");
        let entry = u32::try_from(self.entries.len()).expect("under 4 billion messages");
        self.entries.push((end, prior));
        let PriorIndex {
            text,
            entries,
            table,
            hasher,
        } = self;
        let rehash = |&e: &u32| {
            let i = e as usize;
            let start = i.checked_sub(1).map_or(0, |p| entries[p].0 as usize);
            hasher.hash_one(&text[start..entries[i].0 as usize])
        };
        table.insert_unique(hash, entry, rehash);
    }
}

/// When other campaigns of the state directory messaged each address (sent, in flight or
/// unknown), by channel: what `sending.max_per_patient` counts.
#[derive(Debug, Clone, Default)]
pub struct Recent([HashMap<String, Vec<DateTime<Utc>>>; 2]);

impl Recent {
    /// The times `address` was messaged on `channel` by other campaigns.
    pub fn get(&self, channel: Channel, address: &str) -> &[DateTime<Utc>] {
        self.0[channel as usize]
            .get(address)
            .map_or(&[], Vec::as_slice)
    }

    /// Adds one message to `address` on `channel` at `at`.
    pub fn push(&mut self, channel: Channel, address: String, at: DateTime<Utc>) {
        self.0[channel as usize]
            .entry(address)
            .or_default()
            .push(at);
    }
}

/// Which settled messages a run takes up again.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Redo {
    /// `--resend-unknown`.
    pub unknown: bool,
    /// `--retry-failed`.
    pub failed: bool,
}

/// What the ledger's record means for a new run: `None` when the message is open (new, a
/// transient failure to retry, or taken up again by `redo`).
pub fn settled(prior: Option<&Prior>, redo: Redo) -> Option<State> {
    let prior = prior?;
    match prior.state {
        State::Sent | State::Sending => Some(prior.state),
        State::Unknown if !redo.unknown => Some(State::Unknown),
        State::Failed if prior.permanent && !redo.failed => Some(State::Failed),
        _ => None,
    }
}

/// What happens to one contact on one channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Due,
    Deferred(Defer),
    Skipped(Skip),
    /// Already settled by an earlier run, as the ledger records it (`sent`, `failed`,
    /// `unknown`; `sending` while another run is under way).
    Done(State),
}

impl Decision {
    /// "due", "deferred" or "skipped".
    pub fn word(&self) -> &'static str {
        match self {
            Decision::Due => "due",
            Decision::Deferred(_) => "deferred",
            Decision::Skipped(_) => "skipped",
            Decision::Done(state) => state.as_str(),
        }
    }

    /// Whether the message is rendered for this decision (due and deferred ones are).
    pub fn will_go(&self) -> bool {
        matches!(self, Decision::Due | Decision::Deferred(_))
    }
}

impl fmt::Display for Decision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Decision::Due => f.write_str("due"),
            Decision::Deferred(d) => write!(f, "deferred: {d}"),
            Decision::Skipped(s) => write!(f, "skipped: {s}"),
            Decision::Done(State::Sent) => f.write_str("sent by an earlier run"),
            Decision::Done(State::Failed) => {
                f.write_str("failed in an earlier run (--retry-failed tries again)")
            }
            Decision::Done(State::Unknown) => f.write_str(
                "unknown: an earlier run died while sending it (--resend-unknown sends it again)",
            ),
            Decision::Done(State::Sending) => f.write_str("being sent by a run under way"),
        }
    }
}

/// What the planner is told about one message besides the campaign and the contact: every
/// fact that changes with time or with what was sent is an input, so [`decide`] reads no clock,
/// no file and no ledger.
#[derive(Debug, Clone, Copy)]
pub struct Inputs<'a> {
    /// The suppression lists (files, and what the ledger learnt while sending).
    pub suppressions: &'a Suppressions,
    /// What the ledger recorded of this message, if anything.
    pub prior: Option<&'a Prior>,
    /// Which settled messages this run takes up again.
    pub redo: Redo,
    /// The instant the decision is for.
    pub now: DateTime<Utc>,
    /// Messages of this channel sent so far in the clinic's day, for `sending.daily_cap`; `None`
    /// before dispatch (a plan counts the cap's deferrals only as messages go).
    pub sent_today: Option<u32>,
    /// The rendered SMS's segment count, for `sms.max_segments`; `None` when not rendered.
    pub segments: Option<usize>,
    /// When other campaigns of the state directory messaged this address on this channel
    /// (sent, in flight or unknown), for `sending.max_per_patient`; empty without the cap.
    pub recent: &'a [DateTime<Utc>],
}

/// Whether one more message fits under `daily_cap` after `sent_today` (0 = no cap). The send
/// run reserves its place under the cap with this same rule.
pub fn within_daily_cap(daily_cap: u32, sent_today: u32) -> bool {
    daily_cap == 0 || sent_today < daily_cap
}

/// Decides what happens to `contact` on `channel`, given `inputs`: DESIGN.md's "Who gets what",
/// rule by rule, in the order reports list them. The channel must be enabled.
pub fn decide(
    campaign: &Campaign,
    contact: &Contact,
    channel: Channel,
    inputs: &Inputs<'_>,
) -> Decision {
    let decision = decide_unrendered(campaign, contact, channel, inputs);
    match inputs.segments {
        Some(segments) => size_rule(campaign, decision, segments),
        None => decision,
    }
}

/// The last rule, once the message is rendered: an SMS over `sms.max_segments` does not go.
pub fn size_rule(campaign: &Campaign, decision: Decision, segments: usize) -> Decision {
    let limit = campaign
        .sms
        .as_ref()
        .map_or(DEFAULT_MAX_SEGMENTS, |s| s.max_segments);
    if segments > limit && decision.will_go() {
        Decision::Skipped(Skip::Message(format!(
            "SMS is {segments} segments, over sms.max_segments = {limit}"
        )))
    } else {
        decision
    }
}

/// Every rule but the message's own size.
fn decide_unrendered(
    campaign: &Campaign,
    contact: &Contact,
    channel: Channel,
    inputs: &Inputs<'_>,
) -> Decision {
    use Decision::Skipped;
    if let Some(skip) = row_skip(contact, channel) {
        return Skipped(skip);
    }
    let Some(address) = contact.address(channel) else {
        return Skipped(Skip::NoAddress);
    };
    if let Some(of) = &contact.duplicate_of[channel as usize] {
        let (line, id) = &**of;
        return Skipped(Skip::Duplicate {
            line: *line,
            id: id.clone(),
        });
    }
    if let Some(state) = settled(inputs.prior, inputs.redo) {
        return Decision::Done(state);
    }
    if !contact.in_audience {
        return Skipped(Skip::NotInAudience);
    }
    if campaign.require_consent && !contact.consent(channel).given() {
        return Skipped(Skip::NoConsent);
    }
    if let Some(by) = inputs.suppressions.get(address) {
        return Skipped(Skip::Suppressed(by.clone()));
    }
    let now = inputs.now;
    if campaign.window.ended_before(now).is_some() {
        return Skipped(Skip::CampaignEnded);
    }
    if let Some(edge) = campaign.window.opens_after(now) {
        return Decision::Deferred(Defer::NotOpen {
            opens: clinic_time(campaign, edge.at),
        });
    }
    if let Some(capped) = frequency_cap(campaign, inputs.recent, now) {
        return capped;
    }
    if let Some(defer) = quiet_hours(campaign, contact, channel, now) {
        return Decision::Deferred(defer);
    }
    if let Some(sent_today) = inputs.sent_today
        && !within_daily_cap(campaign.sending.daily_cap, sent_today)
    {
        return Decision::Deferred(Defer::DailyCap);
    }
    Decision::Due
}

/// The contact's own choice and its row's problems on `channel`.
fn row_skip(contact: &Contact, channel: Channel) -> Option<Skip> {
    if !contact.choice.allows(channel) {
        return Some(Skip::NotChosen);
    }
    let address_field = match channel {
        Channel::Email => "email",
        Channel::Sms => "phone",
    };
    if let Some(p) = contact
        .problems_for(channel)
        .find(|p| p.field == address_field)
    {
        return Some(Skip::InvalidAddress(p.reason.clone()));
    }
    contact
        .problems_for(channel)
        .next()
        .map(|p| Skip::RowProblem(format!("{}: {}", p.field, p.reason)))
}

/// An address other campaigns messaged `max_per_patient` times within its window waits until
/// the oldest of those leaves the window, or is skipped when that is after the campaign ends.
fn frequency_cap(
    campaign: &Campaign,
    recent: &[DateTime<Utc>],
    now: DateTime<Utc>,
) -> Option<Decision> {
    let cap = campaign.sending.max_per_patient?;
    let mut within: Vec<DateTime<Utc>> = recent
        .iter()
        .copied()
        .filter(|t| *t > now - cap.window)
        .collect();
    let count = cap.count as usize;
    if within.len() < count {
        return None;
    }
    within.sort_unstable();
    // Under the cap again once all but `count - 1` of them have left the window.
    let frees = within[within.len() - count] + cap.window;
    Some(if campaign.window.ended_before(frees).is_some() {
        Decision::Skipped(Skip::FrequencyCap)
    } else {
        Decision::Deferred(Defer::FrequencyCap {
            until: clinic_time(campaign, frees),
        })
    })
}

/// An SMS inside quiet hours in the patient's own zone waits for their end.
fn quiet_hours(
    campaign: &Campaign,
    contact: &Contact,
    channel: Channel,
    now: DateTime<Utc>,
) -> Option<Defer> {
    let quiet = campaign.sms.as_ref().and_then(|s| s.quiet_hours)?;
    let local = now.with_timezone(&contact.timezone);
    (channel == Channel::Sms && quiet.contains(local.time())).then(|| Defer::QuietHours {
        until: quiet.end.format("%H:%M").to_string(),
        zone: contact.timezone.name().to_string(),
    })
}

/// An instant as the clinic reads it: `2026-12-01 09:00 CST`.
pub fn clinic_time(campaign: &Campaign, t: DateTime<Utc>) -> String {
    t.with_timezone(&campaign.clinic.timezone)
        .format("%Y-%m-%d %H:%M %Z")
        .to_string()
}

#[cfg(test)]
mod tests {
    //! One test per rule of "Who gets what", each against a campaign and contacts read from
    //! text: the planner itself reads nothing.

    use std::path::Path;

    use super::*;
    use crate::contacts::{self, ContactList, SuppressedBy};

    /// The config tests' campaign, with quiet hours, a segment limit and a daily cap.
    fn campaign_text() -> String {
        format!(
            "{}quiet_hours = \"21:00-08:00\"\nmax_segments = 2\n\n[sending]\ndaily_cap = 10\n",
            crate::config::testing::BASE
        )
    }

    const CONTACTS: &str = "\
id,first_name,email,phone,channel,email_consent,sms_consent,timezone
P1,Ann,ann@example.com,(312) 555-0101,,yes,yes,
P2,Bo,bo@example.com,(312) 555-0102,sms,yes,yes,
P3,Cy,cy@@example.com,(312) 555-0103,,yes,yes,
P4,Di,di@example.com,(312) 555-0104,,yes,maybe,
P5,Ed,,,,yes,yes,
P6,Flo,ann@example.com,(312) 555-0106,,yes,yes,
P7,Gus,gus@example.com,(312) 555-0107,,no,no,
P8,Hal,hal@example.com,(312) 555-0108,,yes,yes,Asia/Tokyo
";

    fn fixture(overrides: &[&str]) -> (Campaign, ContactList) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("campaign.toml");
        std::fs::write(&path, campaign_text()).unwrap();
        let overrides: Vec<String> = overrides.iter().map(|s| s.to_string()).collect();
        let campaign = crate::config::load(&path, &overrides).unwrap();
        let list = contacts::parse(
            Path::new("contacts.csv"),
            CONTACTS.to_string(),
            &campaign.contacts,
            campaign.clinic.region,
            campaign.clinic.timezone,
            &|_| Vec::new(),
        )
        .unwrap();
        (campaign, list)
    }

    /// Noon in Chicago on a weekday: no quiet hours there.
    fn noon() -> DateTime<Utc> {
        "2026-12-01T18:00:00Z".parse().unwrap()
    }

    fn inputs(suppressions: &Suppressions) -> Inputs<'_> {
        Inputs {
            suppressions,
            prior: None,
            redo: Redo::default(),
            now: noon(),
            sent_today: None,
            segments: None,
            recent: &[],
        }
    }

    /// What a test gives the planner besides the campaign and the contact.
    #[derive(Default)]
    struct Given {
        prior: Option<Prior>,
        redo: Redo,
        sent_today: Option<u32>,
        segments: Option<usize>,
        /// Other campaigns' messages to the address, in days before noon.
        recent_days_ago: Vec<i64>,
    }

    /// The decision for contact `id` on `channel`, at noon, with `given`.
    fn decision(id: &str, channel: Channel, overrides: &[&str], given: Given) -> Decision {
        let (campaign, list) = fixture(overrides);
        let suppressions = Suppressions::default();
        let recent: Vec<DateTime<Utc>> = (given.recent_days_ago.iter())
            .map(|d| noon() - chrono::Duration::days(*d))
            .collect();
        let i = Inputs {
            prior: given.prior.as_ref(),
            redo: given.redo,
            sent_today: given.sent_today,
            segments: given.segments,
            recent: &recent,
            ..inputs(&suppressions)
        };
        let contact = list.contacts.iter().find(|c| c.id == id).unwrap();
        decide(&campaign, contact, channel, &i)
    }

    fn prior(state: State) -> Given {
        Given {
            prior: Some(Prior {
                state,
                permanent: false,
                attempts: 1,
            }),
            ..Given::default()
        }
    }

    fn today(n: u32) -> Given {
        Given {
            sent_today: Some(n),
            ..Given::default()
        }
    }

    fn segments(n: usize) -> Given {
        Given {
            segments: Some(n),
            ..Given::default()
        }
    }

    fn label(d: &Decision) -> &'static str {
        match d {
            Decision::Due => "due",
            Decision::Deferred(x) => x.label(),
            Decision::Skipped(x) => x.label(),
            Decision::Done(s) => s.as_str(),
        }
    }

    #[test]
    fn a_consenting_contact_with_an_address_is_due() {
        assert_eq!(
            decision("P1", Channel::Email, &[], Given::default()),
            Decision::Due
        );
        assert_eq!(
            decision("P1", Channel::Sms, &[], Given::default()),
            Decision::Due
        );
    }

    #[test]
    fn the_other_channel_chosen() {
        let d = decision("P2", Channel::Email, &[], Given::default());
        assert_eq!(d, Decision::Skipped(Skip::NotChosen));
        assert_eq!(
            decision("P2", Channel::Sms, &[], Given::default()),
            Decision::Due
        );
    }

    #[test]
    fn an_invalid_address_stops_only_its_channel() {
        let d = decision("P3", Channel::Email, &[], Given::default());
        assert_eq!(label(&d), "invalid_address", "{d}");
        assert_eq!(
            decision("P3", Channel::Sms, &[], Given::default()),
            Decision::Due
        );
    }

    #[test]
    fn a_row_problem_stops_the_channel_it_concerns() {
        let d = decision("P4", Channel::Sms, &[], Given::default());
        assert_eq!(label(&d), "row_error", "{d}");
        assert_eq!(
            decision("P4", Channel::Email, &[], Given::default()),
            Decision::Due
        );
    }

    #[test]
    fn no_address() {
        let d = decision("P5", Channel::Email, &[], Given::default());
        assert_eq!(d, Decision::Skipped(Skip::NoAddress));
    }

    #[test]
    fn a_duplicate_address_goes_to_the_first_row_only() {
        let d = decision("P6", Channel::Email, &[], Given::default());
        assert_eq!(
            d,
            Decision::Skipped(Skip::Duplicate {
                line: 2,
                id: "P1".into()
            })
        );
        assert_eq!(
            decision("P6", Channel::Sms, &[], Given::default()),
            Decision::Due
        );
    }

    #[test]
    fn what_the_ledger_settled_stays_settled_unless_redone() {
        let d = decision("P1", Channel::Email, &[], prior(State::Sent));
        assert_eq!(d, Decision::Done(State::Sent));
        let d = decision("P1", Channel::Email, &[], prior(State::Unknown));
        assert_eq!(d, Decision::Done(State::Unknown));
        let redo = Given {
            redo: Redo {
                unknown: true,
                failed: false,
            },
            ..prior(State::Unknown)
        };
        assert_eq!(decision("P1", Channel::Email, &[], redo), Decision::Due);
        let d = decision("P1", Channel::Email, &[], prior(State::Failed));
        assert_eq!(d, Decision::Due, "a transient failure is retried");
    }

    #[test]
    fn no_consent_unless_the_campaign_needs_none() {
        let d = decision("P7", Channel::Email, &[], Given::default());
        assert_eq!(d, Decision::Skipped(Skip::NoConsent));
        let d = decision(
            "P7",
            Channel::Email,
            &["campaign.require_consent=false"],
            Given::default(),
        );
        assert_eq!(d, Decision::Due);
    }

    #[test]
    fn suppressed() {
        let (campaign, list) = fixture(&[]);
        let mut suppressions = Suppressions::default();
        let by = SuppressedBy {
            file: "opt-outs.csv".into(),
            line: 2,
        };
        assert!(suppressions.insert("ANN@example.com", campaign.clinic.region, by));
        let d = decide(
            &campaign,
            &list.contacts[0],
            Channel::Email,
            &inputs(&suppressions),
        );
        assert_eq!(label(&d), "suppressed", "{d}");
    }

    #[test]
    fn the_window_closes_and_opens() {
        let ended = ["campaign.not_after=2026-11-30"];
        let d = decision("P1", Channel::Email, &ended, Given::default());
        assert_eq!(d, Decision::Skipped(Skip::CampaignEnded));
        let later = ["campaign.not_before=2026-12-02"];
        let d = decision("P1", Channel::Email, &later, Given::default());
        assert_eq!(label(&d), "window_not_open", "{d}");
    }

    #[test]
    fn quiet_hours_in_the_patients_own_zone_defer_sms_only() {
        // Noon in Chicago is 03:00 in Tokyo.
        let d = decision("P8", Channel::Sms, &[], Given::default());
        assert_eq!(
            d,
            Decision::Deferred(Defer::QuietHours {
                until: "08:00".into(),
                zone: "Asia/Tokyo".into()
            })
        );
        assert_eq!(
            decision("P8", Channel::Email, &[], Given::default()),
            Decision::Due
        );
        let d = decision(
            "P8",
            Channel::Sms,
            &["sms.quiet_hours=\"\""],
            Given::default(),
        );
        assert_eq!(d, Decision::Due);
    }

    #[test]
    fn the_daily_cap_defers_once_the_days_count_reaches_it() {
        let d = decision("P1", Channel::Email, &[], today(9));
        assert_eq!(d, Decision::Due);
        let d = decision("P1", Channel::Email, &[], today(10));
        assert_eq!(d, Decision::Deferred(Defer::DailyCap));
        let d = decision("P1", Channel::Email, &["sending.daily_cap=0"], today(1000));
        assert_eq!(d, Decision::Due, "0 is no cap");
        assert!(within_daily_cap(0, u32::MAX) && !within_daily_cap(3, 3));
    }

    fn messaged(days_ago: &[i64]) -> Given {
        Given {
            recent_days_ago: days_ago.to_vec(),
            ..Given::default()
        }
    }

    #[test]
    fn the_frequency_cap_counts_other_campaigns_within_its_window() {
        let cap = &["sending.max_per_patient=2/7d"][..];
        assert_eq!(
            decision("P1", Channel::Email, cap, messaged(&[1])),
            Decision::Due
        );
        assert_eq!(
            decision("P1", Channel::Email, cap, messaged(&[8, 9, 1])),
            Decision::Due,
            "older than the window: not counted"
        );
        // Two within 7 days: free again when the older (3 days ago) leaves the window.
        assert_eq!(
            decision("P1", Channel::Email, cap, messaged(&[1, 3])),
            Decision::Deferred(Defer::FrequencyCap {
                until: "2026-12-05 12:00 CST".to_string()
            })
        );
        // Three within: two must leave, the newer of those 2 days ago.
        let d = decision("P1", Channel::Email, cap, messaged(&[1, 2, 3]));
        assert_eq!(
            d.to_string(),
            "deferred: frequency cap (until 2026-12-06 12:00 CST)"
        );
        // Free only after the campaign's window: skipped.
        let ends = &[
            "sending.max_per_patient=2/7d",
            "campaign.not_after=2026-12-04",
        ][..];
        let d = decision("P1", Channel::Email, ends, messaged(&[1, 3]));
        assert_eq!(d, Decision::Skipped(Skip::FrequencyCap));
        assert_eq!(
            decision("P1", Channel::Email, &[], messaged(&[0, 0, 0])),
            Decision::Due,
            "no cap"
        );
    }

    #[test]
    fn an_sms_over_max_segments_does_not_go() {
        let d = decision("P1", Channel::Sms, &[], segments(2));
        assert_eq!(d, Decision::Due);
        let d = decision("P1", Channel::Sms, &[], segments(3));
        assert_eq!(label(&d), "message_error", "{d}");
        // A message that would not go anyway keeps its own reason.
        let d = decision("P7", Channel::Sms, &[], segments(3));
        assert_eq!(d, Decision::Skipped(Skip::NoConsent));
    }

    #[test]
    fn rules_apply_in_report_order() {
        // No consent and quiet hours at once: the skip wins, a skip is for good.
        let d = decision(
            "P8",
            Channel::Sms,
            &["campaign.require_consent=true"],
            today(99),
        );
        assert_eq!(
            d.word(),
            "deferred",
            "P8 consented: quiet hours first, then the cap"
        );
        assert_eq!(label(&d), "quiet_hours");
        let d = decision("P7", Channel::Sms, &[], today(99));
        assert_eq!(d, Decision::Skipped(Skip::NoConsent));
    }

    #[test]
    fn priors_find_every_address_they_hold_and_no_other() {
        let prior = |attempts| Prior {
            state: State::Sent,
            permanent: false,
            attempts,
        };
        let mut p = Priors::default();
        for i in 0..10_000u32 {
            p.insert(Channel::Email, &format!("p{i}@example.com"), prior(i));
        }
        p.insert(Channel::Sms, "+13125550101", prior(1));
        // Addresses that are prefixes of each other, and one given again (its prior replaced).
        p.insert(Channel::Sms, "+1312555010", prior(2));
        p.insert(Channel::Sms, "+13125550101", prior(3));
        for i in 0..10_000u32 {
            let got = p.get(Channel::Email, &format!("p{i}@example.com"));
            assert_eq!(got.map(|p| p.attempts), Some(i));
        }
        assert_eq!(p.get(Channel::Sms, "+13125550101").unwrap().attempts, 3);
        assert_eq!(p.get(Channel::Sms, "+1312555010").unwrap().attempts, 2);
        assert!(p.get(Channel::Sms, "+131255501").is_none());
        assert!(
            p.get(Channel::Email, "+13125550101").is_none(),
            "per channel"
        );
        assert!(p.get(Channel::Email, "p10000@example.com").is_none());
    }
}
