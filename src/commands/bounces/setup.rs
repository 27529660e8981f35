//! What `bounces` reads, checked before it reads: the campaigns of one state directory and
//! their one `[feedback]` table, the VERP patterns and unsubscribe mailtos to classify with.

use std::path::{Path, PathBuf};

use crate::bounce::{self, Classification, Context};
use crate::config::{self, Campaign, ConfigError, FeedbackSettings, MailboxSource};
use crate::mailbox::{Imap, Mailbox, MailboxError, Maildir, Mbox};
use crate::paths::show_path;
use crate::store::bounces::SoftRule;

/// What `bounces` is given.
pub struct Options {
    /// Campaign files, all of one state directory.
    pub campaigns: Vec<PathBuf>,
    /// `--set` overrides for every campaign.
    pub overrides: Vec<String>,
}

/// Why `bounces` cannot read its mailbox (exit 2).
#[derive(Debug, thiserror::Error)]
pub enum BouncesError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(
        "{} has no [feedback] table: bounces needs maildir = \"PATH\", mbox = \"PATH\" or a \
         [feedback.imap] table",
        show_path(.0)
    )]
    NotConfigured(PathBuf),
    #[error(
        "{} and {} keep their ledgers in different state directories: run bounces once per \
         state directory",
        show_path(.0), show_path(.1)
    )]
    StateDirs(PathBuf, PathBuf),
    #[error(
        "{} and {} give different [feedback] tables: a state directory has one bounce mailbox",
        show_path(.0), show_path(.1)
    )]
    Differ(PathBuf, PathBuf),
    #[error(transparent)]
    Mailbox(#[from] MailboxError),
    #[error(transparent)]
    Ledger(#[from] crate::store::ledger::LedgerError),
}

/// The campaigns and what they agree on.
pub(super) struct Setup {
    pub campaigns: Vec<Campaign>,
    pub state_dir: PathBuf,
    pub feedback: FeedbackSettings,
    pub soft: SoftRule,
    /// The distinct `email.bounce_address` patterns.
    patterns: Vec<String>,
    mailtos: Vec<String>,
}

/// Loads and checks the campaigns.
pub(super) fn load(options: &Options) -> Result<Setup, BouncesError> {
    let mut campaigns: Vec<Campaign> = Vec::new();
    let mut feedback: Option<FeedbackSettings> = None;
    for path in &options.campaigns {
        let c = config::load(path, &options.overrides)?;
        let f = c
            .feedback
            .clone()
            .ok_or_else(|| BouncesError::NotConfigured(path.clone()))?;
        if let Some(first) = campaigns.first() {
            if first.sending.state_dir != c.sending.state_dir {
                return Err(BouncesError::StateDirs(first.file.clone(), path.clone()));
            }
            if feedback.as_ref() != Some(&f) {
                return Err(BouncesError::Differ(first.file.clone(), path.clone()));
            }
        }
        feedback = Some(f);
        campaigns.push(c);
    }
    let (Some(feedback), Some(first)) = (feedback, campaigns.first()) else {
        unreachable!("clap requires at least one campaign")
    };
    let state_dir = first.sending.state_dir.clone();
    let mut patterns: Vec<String> = Vec::new();
    let mut mailtos: Vec<String> = Vec::new();
    for e in campaigns.iter().filter_map(|c| c.email.as_ref()) {
        if let Some(b) = &e.bounce_address
            && !patterns.iter().any(|p| p == b.pattern())
        {
            patterns.push(b.pattern().to_string());
        }
        if let Some(m) = &e.unsubscribe_mailto {
            mailtos.push(m.to_string().to_ascii_lowercase());
        }
    }
    Ok(Setup {
        soft: SoftRule {
            limit: feedback.soft_bounce_limit,
            window: feedback.soft_bounce_window,
        },
        campaigns,
        state_dir,
        feedback,
        patterns,
        mailtos,
    })
}

impl Setup {
    /// The mailbox `[feedback]` names, a local one under its canonical path (so that the
    /// ledger knows it whichever directory `bounces` runs from).
    pub fn open_mailbox(&self) -> Result<Box<dyn Mailbox>, MailboxError> {
        let canonical = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
        Ok(match &self.feedback.mailbox {
            MailboxSource::Maildir(p) => Box::new(Maildir::open(&canonical(p))?),
            MailboxSource::Mbox(p) => Box::new(Mbox::open(&canonical(p))?),
            MailboxSource::Imap(settings) => Box::new(Imap::open(settings)?),
        })
    }

    /// Classifies one message with each campaign's VERP pattern in turn, until one finds its
    /// token (campaigns of a state directory usually share one).
    pub fn classify(&self, raw: &[u8]) -> Classification {
        let context = |pattern| Context {
            bounce_pattern: pattern,
            unsubscribe_mailto: &self.mailtos,
        };
        let first = bounce::classify(raw, &context(self.patterns.first().map(String::as_str)));
        if self.patterns.len() < 2 || has_token(&first) {
            return first;
        }
        for p in &self.patterns[1..] {
            let next = bounce::classify(raw, &context(Some(p.as_str())));
            if has_token(&next) {
                return next;
            }
        }
        first
    }
}

fn has_token(c: &Classification) -> bool {
    match c {
        Classification::Bounce(b) => b.verp_token.is_some(),
        Classification::Complaint(c) => c.verp_token.is_some(),
        _ => true,
    }
}
