//! Everything a command needs, loaded and validated once: the campaign, its contacts and
//! suppression lists, its templates, the token key, the clock, and what the ledger recorded of
//! the campaign. What one contact gets on one channel is [`crate::render`]'s business.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};

use crate::address::E164Phone;
use crate::config::{self, Campaign, ConfigError};
use crate::contacts::{self, ContactList, ContactsError, FileWarning, Suppressions};
use crate::model::{Channel, Clock, ClockError};
use crate::plan::{Priors, Recent, Redo};
use crate::store::ledger::Ledger;
use crate::template_sets::TemplateSets;
use crate::templates::{SMS_TEXT, TemplateError};
use crate::token::TokenKey;

/// Why a campaign cannot run at all (exit 2).
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Contacts(#[from] ContactsError),
    #[error(transparent)]
    Template(#[from] TemplateError),
    #[error("{}", .0.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("\n"))]
    Columns(Vec<ColumnError>),
    #[error(
        "state directory {path}: {source}; the campaign's ledger lives there: make it a \
         directory this user may write (sending.state_dir, or --set sending.state_dir=DIR for \
         one run), or run as its owner (the packages' units run as the user outreach: sudo -u \
         outreach outreach …)"
    )]
    State {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Clock(#[from] ClockError),
    #[error(transparent)]
    Ledger(#[from] crate::store::ledger::LedgerError),
}

/// A template naming a column the contacts file lacks.
#[derive(Debug, thiserror::Error)]
#[error(
    "{path}:{line}: `contact.{column}` is not a column of {csv} (it has: {have}); add the column, \
     map it with [contacts.columns], or give a fallback with {{{{default contact.{column} \"…\"}}}}"
)]
pub struct ColumnError {
    pub path: PathBuf,
    pub line: usize,
    pub column: String,
    pub csv: String,
    pub have: String,
}

/// The warning on an SMS template whose own text makes every SMS UCS-2 because of `chars`.
fn forced_ucs2_message(chars: &[char]) -> String {
    let named: Vec<String> = chars
        .iter()
        .map(|c| crate::sms::describe_char(*c))
        .collect();
    format!(
        "every SMS from this template is UCS-2 ({} characters a segment, {} when split) \
         because of {} in the text it writes for every contact",
        crate::sms::Encoding::Ucs2.single_segment_units(),
        crate::sms::Encoding::Ucs2.multipart_segment_units(),
        named.join(", ")
    )
}

/// A campaign with everything it needs.
pub struct Loaded {
    pub campaign: Campaign,
    pub contacts: ContactList,
    pub suppressions: Suppressions,
    /// The templates of every language the campaign has.
    pub templates: TemplateSets,
    pub key: TokenKey,
    /// The instant decisions are made for: the clock read once, when the campaign loaded.
    pub now: DateTime<Utc>,
    /// The clock, for a run that decides again as each message goes.
    pub clock: Clock,
    /// Warnings about the files (encoding guesses, unknown suppression entries, guarded columns
    /// the file lacks, duplicate ids, an SMS template whose own text makes every SMS UCS-2).
    pub warnings: Vec<FileWarning>,
    /// What the ledger recorded of this campaign, by channel and address (empty before the first
    /// `send`), so `check`, `preview` and `send` make the same plan.
    pub priors: Priors,
    /// When other campaigns of the state directory messaged each address, within
    /// `sending.max_per_patient`'s window (empty without the cap).
    pub recent: Recent,
    /// Which settled messages are taken up again (`send --resend-unknown`, `--retry-failed`).
    pub redo: Redo,
}

impl Loaded {
    /// Loads the campaign at `path` with `--set` overrides.
    pub fn load(path: &Path, overrides: &[String]) -> Result<Self, LoadError> {
        let campaign = config::load(path, overrides)?;
        let clock = Clock::from_env()?;
        let now = clock.now();
        let mut templates = TemplateSets::load(
            &campaign.templates_dir,
            &campaign.channels,
            &campaign.language,
        )?;
        templates.fold_constants(&campaign);
        // What each channel's messages show of a contact: its templates' reads, and the name
        // in an email's `To:`.
        let readers = |field: &str| -> Vec<Channel> {
            let to_name = matches!(field, "first_name" | "last_name");
            (campaign.channels.iter().copied())
                .filter(|&c| {
                    templates.reads(c).contact_field(field) || (c == Channel::Email && to_name)
                })
                .collect()
        };
        let contacts = contacts::load(
            &campaign.contacts,
            campaign.clinic.region,
            campaign.clinic.timezone,
            &readers,
        )?;
        let mut contacts = contacts;
        if let Some((filter, origin)) = &campaign.contacts.audience {
            let today = now.with_timezone(&campaign.clinic.timezone).date_naive();
            let forms = &campaign.contacts.date_forms;
            let missing = contacts::select_audience(&mut contacts, filter, today, forms);
            if !missing.is_empty() {
                return Err(config::ConfigError::Invalid {
                    origin: origin.clone(),
                    key: "contacts.where".to_string(),
                    message: format!(
                        "{} has no column {} (its columns: {})",
                        contacts.path.display(),
                        missing
                            .iter()
                            .map(|m| format!("{m:?}"))
                            .collect::<Vec<_>>()
                            .join(", "),
                        contacts.header.written.join(", ")
                    ),
                }
                .into());
            }
        }
        let suppressions = Suppressions::load(&campaign.contacts.suppress, campaign.clinic.region)?;
        let key = TokenKey::load_or_create(&campaign.sending.state_dir).map_err(|source| {
            LoadError::State {
                path: campaign.sending.state_dir.clone(),
                source,
            }
        })?;

        let mut warnings = contacts.warnings.clone();
        warnings.extend(suppressions.warnings.iter().cloned());
        let mut available: BTreeSet<String> = contacts.columns.iter().cloned().collect();
        available.extend(["id".to_string(), "timezone".to_string()]);
        available.extend(
            config::CONTACT_FIELDS
                .iter()
                .filter(|f| contacts.header.index_of(f).is_some())
                .map(|f| f.to_string()),
        );
        let mut errors = Vec::new();
        let mut warned = BTreeSet::new();
        for u in &templates.column_uses {
            if available.contains(&u.column) {
                continue;
            }
            let path = templates.dir().join(&u.template);
            if u.guarded {
                if warned.insert(u.column.clone()) {
                    warnings.push(FileWarning {
                        file: path,
                        line: Some(u.line),
                        message: format!(
                            "`contact.{}` is not a column of {}: every contact gets the fallback",
                            u.column,
                            contacts.path.display()
                        ),
                    });
                }
            } else {
                errors.push(ColumnError {
                    path,
                    line: u.line,
                    column: u.column.clone(),
                    csv: contacts.path.display().to_string(),
                    have: contacts.columns.join(", "),
                });
            }
        }
        if !errors.is_empty() {
            return Err(LoadError::Columns(errors));
        }
        // Said once per set: each of its SMS would otherwise carry it (`check` names only the
        // characters a row's own values bring).
        for (_, set) in templates.sets() {
            let forced = set.sms_forced_ucs2();
            if !forced.is_empty() {
                warnings.push(FileWarning {
                    file: set.dir().join(SMS_TEXT),
                    line: None,
                    message: forced_ucs2_message(forced),
                });
            }
        }
        let mut loaded = Loaded {
            campaign,
            contacts,
            suppressions,
            templates,
            key,
            now,
            clock,
            warnings,
            priors: Priors::default(),
            recent: Recent::default(),
            redo: Redo::default(),
        };
        loaded.read_ledger()?;
        Ok(loaded)
    }

    /// What the ledger `l` holds of other campaigns' messages within `sending.max_per_patient`'s
    /// window (nothing without the cap).
    pub fn recent_of(&self, l: &Ledger) -> Result<Recent, crate::store::ledger::LedgerError> {
        Ok(match self.campaign.sending.max_per_patient {
            Some(cap) => l.recent(&self.campaign.id, self.now - cap.window)?,
            None => Recent::default(),
        })
    }

    /// Refuses a campaign that would silently drop a channel: one of its enabled channels (or
    /// `only` that one, for a command limited to it) whose address column the contacts file
    /// lacks, or has empty on every row. For the commands that decide who gets what (`check`,
    /// `preview`, `approve`, `send`), not for those that only look up or clean up.
    pub fn check_reach(&self, only: Option<Channel>) -> Result<(), LoadError> {
        let channels: Vec<Channel> = self
            .campaign
            .channels
            .iter()
            .copied()
            .filter(|c| only.is_none_or(|o| o == *c))
            .collect();
        contacts::check_reach(&self.contacts, &channels, self.campaign.clinic.region)?;
        Ok(())
    }

    /// Reads what the ledger knows (if the campaign ever sent): the messages' states, and the
    /// suppressions learnt while sending (opt-out replies, `unsubscribe`).
    pub fn read_ledger(&mut self) -> Result<(), LoadError> {
        let store = self.campaign.sending.store();
        let Some(l) = Ledger::open_existing(&store)? else {
            return Ok(());
        };
        self.priors = l.priors(&self.campaign.id)?;
        self.recent = self.recent_of(&l)?;
        for (address, _reason, _source) in l.suppressions()? {
            self.suppressions.insert(
                &address,
                self.campaign.clinic.region,
                crate::contacts::SuppressedBy {
                    file: l.path().to_path_buf(),
                    line: 0,
                },
            );
        }
        Ok(())
    }

    /// Finds a contact by id, email (any case) or phone (any written form). An address on
    /// several rows finds the row that gets the message on that channel (not a duplicate).
    pub fn find_contact(&self, key: &str) -> Option<usize> {
        let key = key.trim();
        let list = &self.contacts.contacts;
        if let Some(i) = list.iter().position(|c| c.id == key) {
            return Some(i);
        }
        let (channel, address) = if key.contains('@') {
            (Channel::Email, key.to_lowercase())
        } else {
            let phone = E164Phone::parse(key, self.campaign.clinic.region).ok()?;
            (Channel::Sms, phone.as_str().to_string())
        };
        let has = |c: &contacts::Contact| c.address(channel) == Some(address.as_str());
        list.iter()
            .position(|c| has(c) && c.duplicate_of[channel as usize].is_none())
            .or_else(|| list.iter().position(has))
    }
}
