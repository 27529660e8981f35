//! `outreach bounces`: reads the bounce mailbox of one state directory (`[feedback]`: a local
//! Maildir or mbox, or an IMAP folder, behind [`crate::mailbox::Mailbox`]), classifies each message
//! (`bounce::classify`), matches it to the email it is about (`matching.rs`), and records what
//! it does: suppressions, delivery events, an opt-out. Each message's id is kept in the ledger
//! in the same commit as its effect and only then handed back to the mailbox (`done`), so a
//! rerun changes nothing and a crash loses or doubles nothing. The summary is in `summary.rs`.

mod matching;
mod setup;
mod summary;

pub use setup::{BouncesError, Options};
pub use summary::{Summary, Unread};

use crate::bounce::Classification;
use crate::mailbox::{Mailbox, MailboxError};
use crate::model::{Channel, mask};
use crate::store::bounces::MailEffect;
use crate::store::ledger::Ledger;

/// Messages recorded in one transaction: one sync of the ledger for each batch.
const BATCH: usize = 256;

/// A message read and classified, waiting for its batch's commit.
struct Read {
    id: String,
    label: &'static str,
    effect: MailEffect,
    /// Why it was not recognised, if it was not.
    unrecognised: Option<String>,
}

/// Reads the mailbox of the campaigns' state directory and records what it says.
pub fn run(options: &Options) -> Result<Summary, BouncesError> {
    let setup = setup::load(options)?;
    let mut mailbox = setup.open_mailbox()?;
    let mut ledger = Ledger::open_store(&setup.store)?;
    let index = matching::Index::build(&ledger, &setup.campaigns)?;
    let name = mailbox.name();
    let ids = setup.campaigns.iter().map(|c| c.id.clone()).collect();
    let mut summary = Summary::new(&name, ids);
    let now = crate::model::Clock::from_env()
        .map(|c| c.now())
        .unwrap_or_else(|_| chrono::Utc::now());
    let mut batch: Vec<Read> = Vec::with_capacity(BATCH);
    let mut go_on = true;
    for id in mailbox.list()? {
        if ledger.mail_processed(&name, &id)? {
            summary.already_read += 1;
            // A run that stopped between its commit and `done` left this one to hand back.
            go_on = hand_back(mailbox.as_mut(), id, &mut summary);
        } else {
            match mailbox.fetch(&id) {
                Ok(raw) => {
                    let class = setup.classify(&raw);
                    let (label, effect) = index.effect(&ledger, &class)?;
                    let unrecognised = match class {
                        Classification::Unrecognised { why } => Some(why),
                        _ => None,
                    };
                    batch.push(Read {
                        id,
                        label,
                        effect,
                        unrecognised,
                    });
                }
                Err(e) => go_on = unread(&mut summary, id, e),
            }
        }
        if !go_on {
            break;
        }
        if batch.len() == BATCH {
            let at = (name.as_str(), &setup, now);
            if !commit(&mut ledger, mailbox.as_mut(), at, &mut batch, &mut summary)? {
                break;
            }
        }
    }
    let at = (name.as_str(), &setup, now);
    commit(&mut ledger, mailbox.as_mut(), at, &mut batch, &mut summary)?;
    summary.policy_by_domain = ledger.bounce_counts("")?.policy_by_domain;
    Ok(summary)
}

/// Records the batch in one transaction, then hands each message back to the mailbox (`done`)
/// and counts it. False when the mailbox can give nothing more this run.
fn commit(
    ledger: &mut Ledger,
    mailbox: &mut dyn Mailbox,
    (name, setup, now): (&str, &setup::Setup, chrono::DateTime<chrono::Utc>),
    batch: &mut Vec<Read>,
    summary: &mut Summary,
) -> Result<bool, BouncesError> {
    if batch.is_empty() {
        return Ok(true);
    }
    let records: Vec<(&str, &str, &MailEffect)> = batch
        .iter()
        .map(|r| (r.id.as_str(), r.label, &r.effect))
        .collect();
    let done = ledger.record_mails(name, &records, setup.soft, now)?;
    let mut go_on = true;
    for (read, recorded) in batch.drain(..).zip(done) {
        match recorded {
            None => summary.already_read += 1,
            Some(recorded) => {
                summary.count(read.label, &read.effect);
                if let Some(why) = read.unrecognised {
                    summary.unrecognised.push(Unread {
                        id: read.id.clone(),
                        why,
                    });
                }
                summary
                    .suppressed
                    .extend(recorded.suppressed.iter().map(|a| mask(Channel::Email, a)));
            }
        }
        // Recorded, whatever the mailbox says now: the next run hands the rest back.
        go_on = go_on && hand_back(mailbox, read.id, summary);
    }
    Ok(go_on)
}

/// Tells the mailbox that the ledger holds what message `id` did. False when the mailbox can
/// give nothing more this run.
fn hand_back(mailbox: &mut dyn Mailbox, id: String, summary: &mut Summary) -> bool {
    match mailbox.done(&id) {
        Ok(()) => true,
        Err(e) => unread(summary, id, e),
    }
}

/// Lists message `id` as unreadable (the run exits 1 and the next one tries it again). False
/// when the mailbox can give nothing more this run: a broken connection would fail every
/// message left, and listing each would bury the one line that says why.
fn unread(summary: &mut Summary, id: String, e: MailboxError) -> bool {
    let go_on = !e.ends_session();
    summary.unreadable.push(Unread {
        id,
        why: e.to_string(),
    });
    go_on
}
