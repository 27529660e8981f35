//! What `outreach listen` serves, checked before it binds: the campaigns of one state
//! directory, their one `[listen]` table, and for each campaign with an SMS gateway, how that
//! gateway's webhooks are checked, with the secret read once (a missing one stops the start,
//! not a patient's STOP at 3 a.m.).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::config::{
    self, Campaign, ConfigError, GatewayPreset, ListenSettings, SecretError, SmsTransport,
    WebhookCheck, WebhookSettings,
};
use crate::language::Language;
use crate::paths::show_path;
use crate::template_sets::languages_in;

/// Why `listen` cannot start (exit 2).
#[derive(Debug, thiserror::Error)]
pub enum ListenError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(
        "{} has no [listen] table: listen needs at least base_url, the public address providers \
         and patients reach (e.g. base_url = \"https://outreach.riverside.example\")",
        show_path(.0)
    )]
    NotConfigured(PathBuf),
    #[error(
        "{} and {} keep their ledgers in different state directories ({} and {}): run one \
         listen per state directory",
        show_path(.first), show_path(.other), show_path(.first_dir), show_path(.other_dir)
    )]
    StateDirs {
        first: PathBuf,
        other: PathBuf,
        first_dir: PathBuf,
        other_dir: PathBuf,
    },
    #[error(
        "{} and {} keep their ledgers in different databases ({} and {}): run one listen per \
         ledger",
        show_path(.first), show_path(.other), .first_ledger, .other_ledger
    )]
    Ledgers {
        first: PathBuf,
        other: PathBuf,
        first_ledger: String,
        other_ledger: String,
    },
    #[error("{} and {} give different [listen] tables: give them the same one", show_path(.0), show_path(.1))]
    Differ(PathBuf, PathBuf),
    #[error("{} and {} are both campaign {id}", show_path(.first), show_path(.other))]
    SameCampaign {
        first: PathBuf,
        other: PathBuf,
        id: String,
    },
    #[error("campaign {campaign}: the webhook secret: {source}")]
    Secret {
        campaign: String,
        source: SecretError,
    },
    #[error("state directory {}: {source}", show_path(.path))]
    State {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Ledger(#[from] crate::store::ledger::LedgerError),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: String,
        source: std::io::Error,
    },
    #[error("{}: {message}", show_path(.path))]
    Tls { path: PathBuf, message: String },
}

/// How one campaign's gateway webhooks are checked: the settings and the secret's bytes.
#[derive(Clone)]
pub struct Gateway {
    pub preset: GatewayPreset,
    pub settings: WebhookSettings,
    pub key: Vec<u8>,
    /// The error codes that suppress a number (the table `sync` reads too).
    pub codes: crate::webhook::ErrorCodes,
}

impl std::fmt::Debug for Gateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gateway")
            .field("preset", &self.preset)
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

/// One campaign as `listen` serves it.
#[derive(Debug)]
pub struct Served {
    pub campaign: Campaign,
    /// `None`: its SMS go nowhere `listen` can hear from (no SMS, the file transport, or a
    /// gateway whose webhooks are not configured).
    pub gateway: Option<Gateway>,
    /// The languages the campaign has templates in, its default first: its unsubscribe page
    /// answers in the one the browser prefers ([`crate::language::negotiate`]).
    pub languages: Vec<Language>,
}

/// Everything `listen` serves.
#[derive(Debug)]
pub struct Site {
    pub listen: ListenSettings,
    pub state_dir: PathBuf,
    /// Where the ledger is (the campaigns share it).
    pub store: config::Store,
    /// By campaign id.
    pub campaigns: BTreeMap<String, Served>,
    /// Campaigns whose SMS webhooks are not taken, and why: said at start.
    pub deaf: Vec<String>,
}

/// Loads and checks the campaigns `files` (with `--set` overrides) for one `listen`.
pub fn site(files: &[PathBuf], overrides: &[String]) -> Result<Site, ListenError> {
    let mut campaigns: BTreeMap<String, Served> = BTreeMap::new();
    let mut listen: Option<(PathBuf, ListenSettings)> = None;
    let mut state: Option<(PathBuf, PathBuf, config::Store)> = None;
    let mut deaf = Vec::new();
    for file in files {
        let campaign = config::load(file, overrides)?;
        let dir = canonical(&campaign.sending.state_dir);
        let store = campaign.sending.store();
        match &state {
            Some((first, first_dir, first_store)) if *first_dir != dir => {
                return Err(ListenError::StateDirs {
                    first: first.clone(),
                    other: file.clone(),
                    first_dir: first_dir.clone(),
                    other_dir: dir,
                });
            }
            // One state directory, but `state_url` differs (or one has it and the other not).
            Some((first, _, first_store)) if !first_store.same_ledger(&store) => {
                let place = |s: &config::Store| match &s.url {
                    Some(url) => url.display(),
                    None => show_path(&s.dir.join("ledger.sqlite")).to_string(),
                };
                return Err(ListenError::Ledgers {
                    first: first.clone(),
                    other: file.clone(),
                    first_ledger: place(first_store),
                    other_ledger: place(&store),
                });
            }
            Some(_) => {}
            None => state = Some((file.clone(), dir, store)),
        }
        match (&listen, &campaign.listen) {
            (Some((first, l)), Some(this)) if l != this => {
                return Err(ListenError::Differ(first.clone(), file.clone()));
            }
            (None, Some(this)) => listen = Some((file.clone(), this.clone())),
            _ => {}
        }
        let gateway = gateway(&campaign, &mut deaf)?;
        if let Some(other) = campaigns.get(&campaign.id) {
            return Err(ListenError::SameCampaign {
                first: other.campaign.file.clone(),
                other: file.clone(),
                id: campaign.id.clone(),
            });
        }
        let languages = languages_in(&campaign.templates_dir, &campaign.language);
        campaigns.insert(
            campaign.id.clone(),
            Served {
                campaign,
                gateway,
                languages,
            },
        );
    }
    let Some((_, listen)) = listen else {
        return Err(ListenError::NotConfigured(
            files.first().cloned().unwrap_or_default(),
        ));
    };
    let (_, state_dir, store) = state.expect("at least one campaign");
    Ok(Site {
        listen,
        state_dir,
        store,
        campaigns,
        deaf,
    })
}

/// The state directory as a path that compares equal however it was written.
fn canonical(dir: &Path) -> PathBuf {
    std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf())
}

/// How `campaign`'s gateway webhooks are checked, its secret read; `None` (and a line in
/// `deaf`) when they are not taken.
fn gateway(campaign: &Campaign, deaf: &mut Vec<String>) -> Result<Option<Gateway>, ListenError> {
    let Some(SmsTransport::Http(g)) = campaign.sms.as_ref().map(|s| &s.transport) else {
        return Ok(None);
    };
    let Some(settings) = g.webhook.as_deref().cloned() else {
        deaf.push(format!(
            "campaign {}: its {} gateway's receipts and replies are not taken: give \
             [sms.gateway.webhook] the secret they are signed with",
            campaign.id,
            match g.preset {
                GatewayPreset::Twilio => "Twilio",
                GatewayPreset::Vonage => "Vonage",
                GatewayPreset::Generic => "generic",
            }
        ));
        return Ok(None);
    };
    // Twilio signs with the auth token unless a Webhook Setting's key is named.
    let source = match (&settings.key, &settings.check) {
        (Some(k), _) => k.clone(),
        (None, WebhookCheck::Twilio(_)) => g.token.clone().expect("the twilio preset has a token"),
        (None, _) => unreachable!("validated: every other check names its key"),
    };
    let key = source.read().map_err(|source| ListenError::Secret {
        campaign: campaign.id.clone(),
        source,
    })?;
    Ok(Some(Gateway {
        preset: g.preset,
        settings,
        key: key.into_bytes(),
        codes: g.error_codes(),
    }))
}
