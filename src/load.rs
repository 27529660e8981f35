//! Everything a command needs, loaded and validated once: the campaign, its contacts and
//! suppression lists, its templates, the token key; and the one function that turns a contact and
//! a channel into its decision and rendered message ([`Loaded::outcome`]), used by `check`,
//! `preview` and `send` alike.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use chrono::{DateTime, Utc};

use crate::config::{self, Campaign, ConfigError};
use crate::contacts::{self, ContactList, ContactsError, FileWarning, Suppressions};
use crate::message;
use crate::model::Channel;
use crate::plan::Priors;
use crate::plan::{self, Decision, Redo, Skip};
use crate::sms::{self, Encoding, SmsCount};
use crate::store::ledger::{self, Ledger};
use crate::templates::{MessageData, RenderedEmail, TemplateError, Templates};
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
    #[error("state directory {path}: {source}")]
    State {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0}")]
    Clock(String),
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

/// A campaign with everything it needs.
pub struct Loaded {
    pub campaign: Campaign,
    pub contacts: ContactList,
    pub suppressions: Suppressions,
    pub templates: Templates,
    pub key: TokenKey,
    /// The instant decisions are made for.
    pub now: DateTime<Utc>,
    /// Warnings about the files (encoding guesses, unknown suppression entries, guarded columns
    /// the file lacks, duplicate ids).
    pub warnings: Vec<FileWarning>,
    /// What the ledger recorded of this campaign, by channel and address (empty before the first
    /// `send`), so `check`, `preview` and `send` make the same plan.
    pub priors: Priors,
    /// Which settled messages are taken up again (`send --resend-unknown`, `--retry-failed`).
    pub redo: Redo,
}

/// The unsubscribe token of test messages: it maps to no one.
pub const INERT_TOKEN: &str = "test-message-not-a-patient";

/// What one contact gets on one channel.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub channel: Channel,
    pub decision: Decision,
    /// Rendered when the message would go (due or deferred), or when asked to render anyway.
    pub message: Option<Rendered>,
    /// Things worth a look that do not stop the message (UCS-2, long SMS).
    pub warnings: Vec<String>,
}

/// A rendered message.
#[derive(Debug, Clone)]
pub enum Rendered {
    Email {
        parts: RenderedEmail,
        token: String,
        unsubscribe_url: String,
    },
    Sms {
        body: String,
        count: SmsCount,
        /// The body before smart encoding, when it changed anything.
        original: Option<String>,
    },
}

impl Loaded {
    /// Loads the campaign at `path` with `--set` overrides.
    pub fn load(path: &Path, overrides: &[String]) -> Result<Self, LoadError> {
        let campaign = config::load(path, overrides)?;
        let now = plan::now().map_err(LoadError::Clock)?;
        let mut templates = Templates::load(&campaign.templates_dir, &campaign.channels)?;
        templates.fold_constants(&campaign);
        let contacts = contacts::load(
            &campaign.contacts,
            campaign.clinic.region,
            campaign.clinic.timezone,
        )?;
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
        available.extend(campaign.contacts.columns.keys().cloned());
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
        let mut loaded = Loaded {
            campaign,
            contacts,
            suppressions,
            templates,
            key,
            now,
            warnings,
            priors: Priors::default(),
            redo: Redo::default(),
        };
        loaded.read_ledger()?;
        Ok(loaded)
    }

    /// Reads what the ledger knows (if the campaign ever sent): the messages' states, and the
    /// suppressions learnt while sending (opt-out replies, `unsubscribe`).
    pub fn read_ledger(&mut self) -> Result<(), LoadError> {
        let state_dir = &self.campaign.sending.state_dir;
        if !state_dir.join(ledger::FILE).exists() {
            return Ok(());
        }
        let l = Ledger::open(state_dir)?;
        self.priors = l.priors(&self.campaign.id)?;
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

    /// What happens to contact `index` on `channel` at `now`: the one decision `check`,
    /// `preview`, `send` and `report` share.
    pub fn decide(&self, index: usize, channel: Channel, now: DateTime<Utc>) -> Decision {
        let contact = &self.contacts.contacts[index];
        let prior = contact
            .address(channel)
            .and_then(|a| self.priors.get(channel, a));
        plan::decide(
            &self.campaign,
            contact,
            channel,
            &self.suppressions,
            (prior, self.redo),
            now,
        )
    }

    /// Decides and renders contact `index` on `channel`. `render_skipped` renders a skipped
    /// contact's message too when it has an address (preview shows what it would have been).
    pub fn outcome(&self, index: usize, channel: Channel, render_skipped: bool) -> Outcome {
        let contact = &self.contacts.contacts[index];
        let mut decision = self.decide(index, channel, self.now);
        let mut warnings = Vec::new();
        let wanted = decision.will_go() || render_skipped;
        let message = match contact.address(channel) {
            Some(address) if wanted => match self.render(index, channel, address, false) {
                Ok(r) => {
                    if let Rendered::Sms { count, .. } = &r {
                        let limit = self
                            .campaign
                            .sms
                            .as_ref()
                            .map(|s| s.max_segments)
                            .unwrap_or(config::DEFAULT_MAX_SEGMENTS);
                        sms_warnings(count, &mut warnings);
                        if count.segments > limit && decision.will_go() {
                            decision = Decision::Skipped(Skip::Message(format!(
                                "SMS is {} segments, over sms.max_segments = {limit}",
                                count.segments
                            )));
                        }
                    }
                    Some(r)
                }
                Err(e) => {
                    if decision.will_go() {
                        decision = Decision::Skipped(Skip::Message(e));
                    }
                    None
                }
            },
            _ => None,
        };
        Outcome {
            channel,
            decision,
            message,
            warnings,
        }
    }

    /// Renders contact `index`'s message on `channel`. `inert`: the unsubscribe token is a
    /// placeholder that unsubscribes nobody (`send --test-to`).
    pub fn render(
        &self,
        index: usize,
        channel: Channel,
        address: &str,
        inert: bool,
    ) -> Result<Rendered, String> {
        let contact = &self.contacts.contacts[index];
        match channel {
            Channel::Email => {
                let settings = self.campaign.email.as_ref().expect("email is enabled");
                let token = if inert {
                    INERT_TOKEN.to_string()
                } else {
                    self.key.token(&self.campaign.id, channel, address)
                };
                let url = message::unsubscribe_url(settings, &token);
                let data = MessageData {
                    campaign: &self.campaign,
                    contact,
                    unsubscribe_url: Some(&url),
                };
                let parts = self
                    .templates
                    .render_email(&data.context(self.templates.reads(Channel::Email)))
                    .map_err(|e| e.to_string())?;
                Ok(Rendered::Email {
                    parts,
                    token,
                    unsubscribe_url: url,
                })
            }
            Channel::Sms => {
                let settings = self.campaign.sms.as_ref().expect("sms is enabled");
                let data = MessageData {
                    campaign: &self.campaign,
                    contact,
                    unsubscribe_url: None,
                };
                let rendered = self
                    .templates
                    .render_sms(&data.context(self.templates.reads(Channel::Sms)))
                    .map_err(|e| e.to_string())?;
                let (body, original) = if settings.smart_encoding {
                    match sms::smart_encode(&rendered) {
                        std::borrow::Cow::Borrowed(_) => (rendered, None),
                        std::borrow::Cow::Owned(s) => (s, Some(rendered)),
                    }
                } else {
                    (rendered, None)
                };
                if body.is_empty() {
                    return Err(format!("{}: the SMS is empty", crate::templates::SMS_TEXT));
                }
                Ok(Rendered::Sms {
                    count: sms::count(&body),
                    body,
                    original,
                })
            }
        }
    }

    /// Builds the full MIME message of a rendered email, dated `date`.
    pub fn email_message(
        &self,
        index: usize,
        rendered: &Rendered,
        date: SystemTime,
    ) -> Option<Result<lettre::Message, message::BuildError>> {
        let Rendered::Email { parts, token, .. } = rendered else {
            return None;
        };
        let settings = self.campaign.email.as_ref()?;
        Some(message::build_email(
            &self.campaign,
            settings,
            &self.contacts.contacts[index],
            parts,
            token,
            date,
            None,
        ))
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
            let phone = crate::address::normalise_phone(key, self.campaign.clinic.region).ok()?;
            (Channel::Sms, phone)
        };
        let has = |c: &contacts::Contact| c.address(channel) == Some(address.as_str());
        list.iter()
            .position(|c| has(c) && c.duplicate_of[channel as usize].is_none())
            .or_else(|| list.iter().position(has))
    }
}

/// Warnings a person should see about an SMS that will still go.
fn sms_warnings(count: &SmsCount, out: &mut Vec<String>) {
    if count.encoding == Encoding::Ucs2 {
        let chars: Vec<String> = count
            .non_gsm
            .iter()
            .map(|c| sms::describe_char(*c))
            .collect();
        out.push(format!(
            "SMS is UCS-2 ({} characters a segment) because of {}",
            if count.segments > 1 { 67 } else { 70 },
            chars.join(", ")
        ));
    }
    if count.segments > 2 {
        out.push(format!(
            "SMS is {} segments ({} {} units)",
            count.segments, count.units, count.encoding
        ));
    }
}
