//! `outreach purge`: deletes what a campaign left on disk that holds patient data, and only
//! that: its `.eml` files in the email outbox, its lines of the SMS outbox, its reports, a preview
//! folder it wrote, its ledger rows. It says what it will delete and how much first, asks on a
//! terminal, and needs `--yes` anywhere else (cron never waits for an answer). It holds the
//! campaign's run lock throughout, so it cannot race a `send`.

use std::fmt;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use crate::config::{Campaign, EmailTransport, SmsTransport};
use crate::store::ledger::{CampaignRows, Ledger, LedgerError};

/// Why nothing (or not everything) was purged.
#[derive(Debug, thiserror::Error)]
pub enum PurgeError {
    #[error(
        "say what to purge: --outbox, --reports, --ledger, --preview DIR, or --all (nothing deleted)"
    )]
    NothingNamed,
    #[error(
        "not deleting: stdin is not a terminal, so there is no one to ask; run again with --yes \
         to delete what is listed above"
    )]
    NeedsYes,
    #[error("--preview {0}: not a preview folder of campaign {1} (no {marker} naming it); nothing deleted", marker = crate::commands::preview::MARKER)]
    NotAPreview(PathBuf, String),
    #[error(transparent)]
    Lock(#[from] crate::store::lock::LockError),
    #[error(
        "{0}: a send of another campaign is writing to this SMS outbox; purge it when that run \
         is over (nothing deleted)"
    )]
    OutboxInUse(PathBuf),
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> PurgeError + '_ {
    move |source| PurgeError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// One thing to delete.
#[derive(Debug)]
pub enum Target {
    /// Whole files.
    Files {
        label: &'static str,
        dir: PathBuf,
        files: Vec<PathBuf>,
        bytes: u64,
    },
    /// This campaign's lines of a shared JSON-lines file.
    Lines {
        path: PathBuf,
        lines: usize,
        bytes: u64,
    },
    /// A preview folder, whole.
    Folder {
        dir: PathBuf,
        files: usize,
        bytes: u64,
    },
    Ledger {
        /// The file, or the database, as shown.
        name: String,
        store: Box<crate::config::Store>,
        rows: CampaignRows,
    },
}

fn plural(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let show = crate::paths::show_path;
        match self {
            Target::Files {
                label,
                dir,
                files,
                bytes,
            } => write!(
                f,
                "{label} {}: {}, {}",
                show(dir),
                plural(files.len() as u64, "file", "files"),
                plural(*bytes, "byte", "bytes")
            ),
            Target::Lines { path, lines, bytes } => write!(
                f,
                "SMS outbox {}: {} of this campaign, {} (other campaigns' lines stay)",
                show(path),
                plural(*lines as u64, "line", "lines"),
                plural(*bytes, "byte", "bytes")
            ),
            Target::Folder { dir, files, bytes } => write!(
                f,
                "preview {}: {}, {} (the whole folder)",
                show(dir),
                plural(*files as u64, "file", "files"),
                plural(*bytes, "byte", "bytes")
            ),
            Target::Ledger { name, store, rows } => write!(
                f,
                "ledger {}: {}, {}, {}{} of this campaign (shared suppressions and other \
                 campaigns stay; a later send would message everyone again{})",
                name,
                plural(rows.messages, "message row", "message rows"),
                plural(rows.runs, "run", "runs"),
                plural(rows.approvals, "approval", "approvals"),
                if rows.feedback > 0 {
                    format!(
                        ", {} of unsubscribe tokens, SMS ids, receipts, unsubscribes, bounces and replies",
                        plural(rows.feedback, "row", "rows")
                    )
                } else {
                    String::new()
                },
                if store.url.is_some() {
                    "; PostgreSQL may keep old versions of the rows in its write-ahead log and \
                     backups until it recycles them"
                } else {
                    ""
                }
            ),
        }
    }
}

impl Target {
    fn is_empty(&self) -> bool {
        match self {
            Target::Files { files, .. } => files.is_empty(),
            Target::Lines { lines, .. } => *lines == 0,
            Target::Folder { .. } => false,
            Target::Ledger { rows, .. } => rows.total() == 0,
        }
    }
}

/// The campaign's `.eml` files: named `CAMPAIGN+…` by the file transport (`+` is never part of
/// an id, so `psoas` never matches `psoas-2`'s files).
fn email_files(dir: &Path, campaign: &str) -> Result<Target, PurgeError> {
    let mut files = Vec::new();
    let mut bytes = 0;
    let prefix = format!("{campaign}+");
    let hidden = format!(".{campaign}+");
    if dir.is_dir() {
        for entry in std::fs::read_dir(dir).map_err(io(dir))? {
            let entry = entry.map_err(io(dir))?;
            let name = entry.file_name().to_string_lossy().to_string();
            if name.starts_with(&prefix) || name.starts_with(&hidden) {
                bytes += entry.metadata().map_err(io(&entry.path()))?.len();
                files.push(entry.path());
            }
        }
    }
    files.sort();
    Ok(Target::Files {
        label: "email outbox",
        dir: dir.to_path_buf(),
        files,
        bytes,
    })
}

fn is_campaign_line(line: &str, campaign: &str) -> bool {
    serde_json::from_str::<serde_json::Value>(line)
        .ok()
        .and_then(|v| {
            v.get("campaign")
                .and_then(|c| c.as_str())
                .map(|c| c == campaign)
        })
        .unwrap_or(false)
}

fn sms_lines(path: &Path, campaign: &str) -> Result<Target, PurgeError> {
    let (mut lines, mut bytes) = (0, 0);
    if path.is_file() {
        let text = std::fs::read_to_string(path).map_err(io(path))?;
        for l in text.split_inclusive('\n') {
            if is_campaign_line(l, campaign) {
                lines += 1;
                bytes += l.len() as u64;
            }
        }
    }
    Ok(Target::Lines {
        path: path.to_path_buf(),
        lines,
        bytes,
    })
}

/// Reports `outreach` writes for the campaign: `CAMPAIGN-report.csv`, `CAMPAIGN-runN.csv`.
fn report_files(dir: &Path, campaign: &str) -> Result<Target, PurgeError> {
    let mut files = Vec::new();
    let mut bytes = 0;
    if dir.is_dir() {
        for entry in std::fs::read_dir(dir).map_err(io(dir))? {
            let entry = entry.map_err(io(dir))?;
            let name = entry.file_name().to_string_lossy().to_string();
            let ours = name == format!("{campaign}-report.csv")
                || name
                    .strip_prefix(&format!("{campaign}-run"))
                    .and_then(|r| r.strip_suffix(".csv"))
                    .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
            if ours {
                bytes += entry.metadata().map_err(io(&entry.path()))?.len();
                files.push(entry.path());
            }
        }
    }
    files.sort();
    Ok(Target::Files {
        label: "reports",
        dir: dir.to_path_buf(),
        files,
        bytes,
    })
}

fn folder_size(dir: &Path) -> Result<(usize, u64), PurgeError> {
    let (mut files, mut bytes) = (0, 0);
    for entry in std::fs::read_dir(dir).map_err(io(dir))? {
        let entry = entry.map_err(io(dir))?;
        let kind = entry.file_type().map_err(io(&entry.path()))?;
        if kind.is_dir() {
            let (f, b) = folder_size(&entry.path())?;
            files += f;
            bytes += b;
        } else {
            files += 1;
            bytes += entry.metadata().map_err(io(&entry.path()))?.len();
        }
    }
    Ok((files, bytes))
}

fn preview_folder(dir: &Path, campaign: &str) -> Result<Target, PurgeError> {
    let marker =
        std::fs::read_to_string(dir.join(crate::commands::preview::MARKER)).unwrap_or_default();
    if marker.trim() != campaign {
        return Err(PurgeError::NotAPreview(
            dir.to_path_buf(),
            campaign.to_string(),
        ));
    }
    let (files, bytes) = folder_size(dir)?;
    Ok(Target::Folder {
        dir: dir.to_path_buf(),
        files,
        bytes,
    })
}

fn delete(target: &Target, campaign: &str) -> Result<(), PurgeError> {
    match target {
        Target::Files { files, .. } => {
            for f in files {
                std::fs::remove_file(f).map_err(io(f))?;
            }
        }
        Target::Lines { path, .. } => {
            // A running send holds a shared lock on the outbox for as long as it appends.
            let mut held = std::fs::File::open(path).map_err(io(path))?;
            match held.try_lock() {
                Ok(()) => {}
                Err(std::fs::TryLockError::WouldBlock) => {
                    return Err(PurgeError::OutboxInUse(path.clone()));
                }
                Err(std::fs::TryLockError::Error(e)) => return Err(io(path)(e)),
            }
            let mut text = String::new();
            held.read_to_string(&mut text).map_err(io(path))?;
            let kept: String = text
                .split_inclusive('\n')
                .filter(|l| !is_campaign_line(l, campaign))
                .collect();
            if kept.is_empty() {
                std::fs::remove_file(path).map_err(io(path))?;
            } else {
                // Written aside and renamed: the file is never half rewritten.
                let tmp = path.with_extension("jsonl.purge-tmp");
                let mut f =
                    crate::private::open(&tmp, crate::private::Open::Truncate).map_err(io(&tmp))?;
                f.write_all(kept.as_bytes()).map_err(io(&tmp))?;
                f.sync_all().map_err(io(&tmp))?;
                std::fs::rename(&tmp, path).map_err(io(path))?;
            }
        }
        Target::Folder { dir, .. } => std::fs::remove_dir_all(dir).map_err(io(dir))?,
        Target::Ledger { store, .. } => {
            Ledger::open_store(store)?.purge(campaign)?;
        }
    }
    Ok(())
}

/// What to purge, each flag resolved (`--all` is all three).
#[derive(Debug, Clone, Default)]
pub struct Options {
    pub outbox: bool,
    pub reports: bool,
    pub ledger: bool,
    /// A folder `preview --out` wrote for this campaign.
    pub preview: Option<PathBuf>,
}

/// What a purge did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purged {
    /// There was nothing of the campaign to delete.
    Nothing,
    /// The person asked said no: nothing deleted.
    Declined,
    Deleted,
}

/// Runs `purge` for `campaign` as `options` ask. `confirm` is shown what will be deleted and
/// says whether to go on (the command line asks on a terminal, or needs `--yes`); it is called
/// with the campaign's lock held, so nothing changes between the listing and the deletion.
pub fn run(
    campaign: &Campaign,
    options: &Options,
    confirm: impl FnOnce(&[Target]) -> Result<bool, PurgeError>,
) -> Result<Purged, PurgeError> {
    if !(options.outbox || options.reports || options.ledger || options.preview.is_some()) {
        return Err(PurgeError::NothingNamed);
    }
    let id = &campaign.id;
    let state_dir = &campaign.sending.state_dir;
    // Held until everything is deleted: no send of this campaign can start meanwhile.
    let _lock = crate::store::lock::acquire(state_dir, id)?;
    // A PostgreSQL store's runs may be on other hosts: its own lock keeps them out too.
    let store = campaign.sending.store();
    let _held = match store.url.is_some() {
        true => Ledger::open_existing(&store)?,
        false => None,
    };
    if let Some(l) = &_held
        && !l.hold_run_lock(id)?
    {
        let name = Ledger::name_of(&store);
        return Err(crate::store::lock::LockError::held_in_store(id, &name).into());
    }
    // A run that died still owns its messages in flight until its lease expires (and another
    // run, or the next, reports them unknown): not purged under it.
    if let Some(l) = &_held
        && l.live_runs(id)? > 0
    {
        let name = Ledger::name_of(&store);
        return Err(crate::store::lock::LockError::leased_in_store(id, &name).into());
    }
    let targets = targets(campaign, options)?;
    if targets.is_empty() {
        return Ok(Purged::Nothing);
    }
    if !confirm(&targets)? {
        return Ok(Purged::Declined);
    }
    // The shared SMS outbox first: when another campaign's run is writing to it, the purge
    // refuses before anything else is gone.
    let (outbox, rest): (Vec<&Target>, Vec<&Target>) = targets
        .iter()
        .partition(|t| matches!(t, Target::Lines { .. }));
    for t in outbox.into_iter().chain(rest) {
        delete(t, id)?;
    }
    Ok(Purged::Deleted)
}

/// Everything of the campaign that `options` name and that is there to delete.
fn targets(campaign: &Campaign, options: &Options) -> Result<Vec<Target>, PurgeError> {
    let id = &campaign.id;
    let state_dir = &campaign.sending.state_dir;
    let mut targets = Vec::new();
    if options.outbox {
        if let Some(e) = &campaign.email {
            let dir = match &e.transport {
                EmailTransport::File { outbox } => outbox,
                EmailTransport::Smtp(s) => &s.outbox,
            };
            targets.push(email_files(dir, id)?);
        }
        if let Some(s) = &campaign.sms {
            let path = match &s.transport {
                SmsTransport::File { outbox } => outbox,
                SmsTransport::Http(g) => &g.outbox,
            };
            targets.push(sms_lines(path, id)?);
        }
    }
    if options.reports {
        targets.push(report_files(&state_dir.join("reports"), id)?);
    }
    if let Some(dir) = &options.preview {
        targets.push(preview_folder(dir, id)?);
    }
    let store = campaign.sending.store();
    if options.ledger
        && let Some(l) = Ledger::open_existing(&store)?
    {
        targets.push(Target::Ledger {
            name: Ledger::name_of(&store),
            store: Box::new(store),
            rows: l.campaign_rows(id)?,
        });
    }
    targets.retain(|t| !t.is_empty());
    Ok(targets)
}
