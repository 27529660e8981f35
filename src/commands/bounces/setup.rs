//! What `bounces` reads, checked before it reads: the campaigns of one state directory and
//! their one `[feedback]` table, the VERP patterns and unsubscribe mailtos to classify with.

use std::path::{Path, PathBuf};

use crate::bounce::{self, Classification, Context};
use crate::config::{self, Campaign, ConfigError, FeedbackSettings, MailboxSource};
use crate::mailbox::{Imap, Mailbox, MailboxError, Maildir, Mbox};
use crate::paths::show_path;
use crate::store::bounces::SoftRule;
use crate::store::ledger::Ledger;

/// What `bounces` is given.
pub struct Options {
    /// Campaign files or state directories, all of one state directory. A state directory
    /// stands for every campaign its ledger has seen approved or sent whose file is still there.
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
    #[error(
        "{}: no ledger here (ledger.sqlite): give a campaign file, or the state directory of \
         campaigns that were approved or sent",
        show_path(.0)
    )]
    NoLedger(PathBuf),
    #[error(
        "{}: the ledger knows no campaign file that is still there{}: give the campaign files",
        show_path(.0),
        if .1.is_empty() { String::new() } else { format!(" ({})", .1.join("; ")) }
    )]
    NoCampaigns(PathBuf, Vec<String>),
    #[error(transparent)]
    Mailbox(#[from] MailboxError),
    #[error(transparent)]
    Ledger(#[from] crate::store::ledger::LedgerError),
}

/// The campaigns and what they agree on.
pub(super) struct Setup {
    pub campaigns: Vec<Campaign>,
    pub store: config::Store,
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
    let mut seen: Vec<PathBuf> = Vec::new();
    for (path, c) in expand(options)? {
        let canonical = canonical_or_same(&path);
        if seen.contains(&canonical) {
            continue;
        }
        seen.push(canonical);
        let path = &path;
        let mut f = c
            .feedback
            .clone()
            .ok_or_else(|| BouncesError::NotConfigured(path.clone()))?;
        // One mailbox named by two campaign files in different folders is still one mailbox.
        f.mailbox = match f.mailbox {
            MailboxSource::Maildir(p) => MailboxSource::Maildir(canonical_or_same(&p)),
            MailboxSource::Mbox(p) => MailboxSource::Mbox(canonical_or_same(&p)),
            imap @ MailboxSource::Imap(_) => imap,
        };
        if let Some(first) = campaigns.first() {
            if !first.sending.store().same_ledger(&c.sending.store()) {
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
    let store = first.sending.store();
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
        store,
        feedback,
        patterns,
        mailtos,
    })
}

/// The campaigns given, each loaded: a campaign file as it is, a state directory as the
/// campaign files its ledger remembers. A remembered file that is gone, no longer loads, or now
/// keeps its ledger elsewhere is left out with a warning.
fn expand(options: &Options) -> Result<Vec<(PathBuf, Campaign)>, BouncesError> {
    let mut loaded = Vec::new();
    for path in &options.campaigns {
        if !path.is_dir() {
            loaded.push((path.clone(), config::load(path, &options.overrides)?));
            continue;
        }
        let store = config::Store::of_dir(path)?;
        let Some(ledger) = Ledger::open_existing(&store)? else {
            return Err(BouncesError::NoLedger(path.clone()));
        };
        let mut left_out = Vec::new();
        let before = loaded.len();
        for (id, file) in ledger.campaign_files()? {
            let why = match config::load(&file, &options.overrides) {
                Ok(c) if c.sending.store().same_ledger(&store) => {
                    loaded.push((file, c));
                    continue;
                }
                Ok(c) => format!("its ledger is now in {}", show_path(&c.sending.state_dir)),
                Err(ConfigError::Read { .. }) => "its file is gone".to_string(),
                Err(e) => e.to_string(),
            };
            let why = format!("campaign {id} ({}): {why}", show_path(&file));
            tracing::warn!("bounces: left out {why}");
            left_out.push(why);
        }
        if loaded.len() == before {
            return Err(BouncesError::NoCampaigns(path.clone(), left_out));
        }
    }
    Ok(loaded)
}

impl Setup {
    /// The mailbox `[feedback]` names, a local one under its canonical path (`load` made it
    /// so: the ledger knows it whichever directory `bounces` runs from).
    pub fn open_mailbox(&self) -> Result<Box<dyn Mailbox>, MailboxError> {
        Ok(match &self.feedback.mailbox {
            MailboxSource::Maildir(p) => Box::new(Maildir::open(p)?),
            MailboxSource::Mbox(p) => Box::new(Mbox::open(p)?),
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

/// `path` made absolute with its links resolved, or as it is when that fails (it is not there).
fn canonical_or_same(path: &Path) -> PathBuf {
    std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf())
}

fn has_token(c: &Classification) -> bool {
    match c {
        Classification::Bounce(b) => b.verp_token.is_some(),
        Classification::Complaint(c) => c.verp_token.is_some(),
        _ => true,
    }
}
