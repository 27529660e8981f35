//! `outreach bounces`: reads the bounce mailbox of one state directory (`[feedback]`: a local
//! Maildir or mbox; IMAP later, behind [`crate::mailbox::Mailbox`]), classifies each message
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
use crate::model::{Channel, mask};
use crate::store::ledger::Ledger;

/// Reads the mailbox of the campaigns' state directory and records what it says.
pub fn run(options: &Options) -> Result<Summary, BouncesError> {
    let setup = setup::load(options)?;
    let mut mailbox = setup.open_mailbox()?;
    let mut ledger = Ledger::open(&setup.state_dir)?;
    let index = matching::Index::build(&ledger, &setup.campaigns)?;
    let name = mailbox.name();
    let ids = setup.campaigns.iter().map(|c| c.id.clone()).collect();
    let mut summary = Summary::new(&name, ids);
    let now = crate::model::Clock::from_env()
        .map(|c| c.now())
        .unwrap_or_else(|_| chrono::Utc::now());
    for id in mailbox.list()? {
        if ledger.mail_processed(&name, &id)? {
            summary.already_read += 1;
            continue;
        }
        let raw = match mailbox.fetch(&id) {
            Ok(raw) => raw,
            Err(e) => {
                summary.unreadable.push(Unread {
                    id,
                    why: e.to_string(),
                });
                continue;
            }
        };
        let class = setup.classify(&raw);
        let (label, effect) = index.effect(&ledger, &class)?;
        let Some(recorded) = ledger.record_mail((&name, &id, label), &effect, setup.soft, now)?
        else {
            summary.already_read += 1;
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
        if let Err(e) = mailbox.done(&id) {
            summary.unreadable.push(Unread {
                id,
                why: e.to_string(),
            });
        }
    }
    summary.policy_by_domain = ledger.bounce_counts("")?.policy_by_domain;
    Ok(summary)
}
