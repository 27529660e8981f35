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
use crate::store::ledger::Ledger;

/// Reads the mailbox of the campaigns' state directory and records what it says.
pub fn run(options: &Options) -> Result<Summary, BouncesError> {
    let setup = setup::load(options)?;
    let mut mailbox = setup.open_mailbox()?;
    let mut ledger = Ledger::open(&setup.state_dir)?;
    let index = matching::Index::build(&ledger, &setup.campaigns)?;
    let name = mailbox.name();
    let mut summary = Summary::new(&name);
    let now = crate::model::Clock::from_env()
        .map(|c| c.now())
        .unwrap_or_else(|_| chrono::Utc::now());
    for id in mailbox.list()? {
        if ledger.mail_processed(&name, &id)? {
            summary.already_read += 1;
            // A run that stopped between its commit and `done` left this one to hand back.
            if !hand_back(mailbox.as_mut(), id, &mut summary) {
                break;
            }
            continue;
        }
        let raw = match mailbox.fetch(&id) {
            Ok(raw) => raw,
            Err(e) => {
                if unread(&mut summary, id, e) {
                    continue;
                }
                break;
            }
        };
        let class = setup.classify(&raw);
        let (label, effect) = index.effect(&ledger, &class)?;
        let Some(recorded) = ledger.record_mail((&name, &id, label), &effect, setup.soft, now)?
        else {
            summary.already_read += 1;
            if !hand_back(mailbox.as_mut(), id, &mut summary) {
                break;
            }
            continue;
        };
        summary.count(label, &effect);
        if let Classification::Unrecognised { why } = &class {
            summary.unrecognised.push(Unread {
                id: id.clone(),
                why: why.clone(),
            });
        }
        summary
            .suppressed
            .extend(recorded.suppressed.iter().map(|a| mask(Channel::Email, a)));
        if !hand_back(mailbox.as_mut(), id, &mut summary) {
            break;
        }
    }
    summary.policy_by_domain = ledger.bounce_counts("")?.policy_by_domain;
    Ok(summary)
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
