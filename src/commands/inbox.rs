//! `outreach inbox`: the patients' SMS replies `listen` kept for staff, so that "please stop
//! texting me" is read within a day. Numbers are masked; the text is the patient's own words.
//! Staff mark replies read, or record one as an opt-out (suppressed for SMS in every campaign
//! of the state directory, as a staff decision that no START lifts).

use std::fmt;

use crate::config::Campaign;
use crate::model::{Channel, mask};
use crate::store::feedback::Reply;
use crate::store::ledger::{Ledger, LedgerError};

/// What to do.
pub struct Request {
    /// Every reply, not only the unread ones.
    pub all: bool,
    pub read: Vec<i64>,
    pub opt_out: Vec<i64>,
}

/// The replies shown, and what was done.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Inbox {
    pub campaign: String,
    /// Replies marked read or recorded as opt-outs by this call.
    pub settled: Vec<Shown>,
    /// The replies listed (unread, or all).
    pub replies: Vec<Shown>,
    #[serde(skip)]
    pub all: bool,
    #[serde(skip)]
    pub opted_out: bool,
}

/// A reply as shown: the number masked.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Shown {
    pub id: i64,
    pub campaign: String,
    pub from: String,
    pub body: String,
    pub keyword: String,
    pub action: Option<String>,
    pub received_at: String,
    pub read: bool,
}

impl From<Reply> for Shown {
    fn from(r: Reply) -> Self {
        Shown {
            id: r.id,
            campaign: r.campaign,
            from: mask(Channel::Sms, &r.from),
            body: r.body,
            keyword: r.keyword,
            action: r.action,
            received_at: r.received_at,
            read: r.read_at.is_some(),
        }
    }
}

/// Lists (and settles) the replies kept in `campaign`'s state directory.
pub fn run(campaign: &Campaign, request: &Request) -> Result<Inbox, LedgerError> {
    let store = campaign.sending.store();
    let mut inbox = Inbox {
        campaign: campaign.id.clone(),
        settled: Vec::new(),
        replies: Vec::new(),
        all: request.all,
        opted_out: !request.opt_out.is_empty(),
    };
    let Some(mut ledger) = Ledger::open_existing(&store)? else {
        return Ok(inbox);
    };
    let now = crate::model::Clock::from_env()
        .map(|c| c.now())
        .unwrap_or_else(|_| chrono::Utc::now());
    if !request.read.is_empty() {
        inbox.settled = (ledger.settle_replies(&request.read, false, now)?)
            .into_iter()
            .map(Shown::from)
            .collect();
    }
    if !request.opt_out.is_empty() {
        inbox.settled = (ledger.settle_replies(&request.opt_out, true, now)?)
            .into_iter()
            .map(Shown::from)
            .collect();
    }
    inbox.replies = ledger
        .replies(request.all)?
        .into_iter()
        .map(Shown::from)
        .collect();
    Ok(inbox)
}

impl fmt::Display for Shown {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "#{} {} from {} ({}): {:?}",
            self.id,
            self.received_at
                .get(..16)
                .unwrap_or(&self.received_at)
                .replace('T', " "),
            self.from,
            self.campaign,
            self.body
        )?;
        if let Some(a) = &self.action {
            write!(f, " [{a}]")?;
        }
        Ok(())
    }
}

impl fmt::Display for Inbox {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for s in &self.settled {
            let what = if self.opted_out {
                "recorded as an opt-out"
            } else {
                "marked read"
            };
            writeln!(f, "#{} {what}", s.id)?;
        }
        if self.replies.is_empty() {
            return write!(f, "No {}replies.", if self.all { "" } else { "unread " });
        }
        writeln!(
            f,
            "{} {}replies (newest first; times UTC):",
            self.replies.len(),
            if self.all { "" } else { "unread " }
        )?;
        for r in &self.replies {
            writeln!(f, "  {r}")?;
        }
        write!(
            f,
            "Mark read with `outreach inbox CAMPAIGN --read N`; record an opt-out with --opt-out N."
        )
    }
}
