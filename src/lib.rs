//! `outreach`: patient outreach campaigns for clinics. A contacts CSV merged with Handlebars
//! templates, checked and previewed locally, then sent by email and SMS.
//!
//! The pipeline: [`config`] loads the campaign, [`contacts`] the patients, [`templates`] the
//! messages; [`plan`] decides who gets what; [`check`] and [`preview`] show it. [`run`] is the
//! whole program behind `main`.

pub mod approval;
pub mod channel;
pub mod check;
pub mod cli;
pub mod config;
pub mod contacts;
pub mod dkim;
pub mod fold;
pub mod ledger;
pub mod load;
pub mod lock;
pub mod message;
pub mod plan;
pub mod preview;
pub mod private;
pub mod purge;
pub mod report;
pub mod send;
pub mod serve;
pub mod sms;
pub mod templates;
pub mod token;
pub mod unsubscribe;

use std::io::Write;

use cli::{Cli, Command, Format};
use load::{LoadError, Loaded};

/// The process exit codes (DESIGN.md "Sending").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Exit {
    /// Everything due went (check: the campaign can run).
    Ok = 0,
    /// Some messages failed permanently or became unknown.
    Failed = 1,
    /// The campaign cannot run; nothing was sent.
    Unusable = 2,
    /// Stopped early; a rerun resumes.
    Stopped = 3,
    /// Another run holds the lock.
    Locked = 4,
}

/// Any error that ends a command.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Load(#[from] LoadError),
    #[error(transparent)]
    Preview(#[from] preview::PreviewError),
    #[error("writing output: {0}")]
    Output(std::io::Error),
    #[error(transparent)]
    Send(#[from] send::SendError),
    #[error(transparent)]
    Ledger(#[from] ledger::LedgerError),
    #[error(transparent)]
    Report(#[from] report::ReportError),
    /// `send` refuses: the campaign is not approved as it is.
    #[error("{0}")]
    Approval(String),
    #[error(transparent)]
    Purge(#[from] purge::PurgeError),
    #[error(transparent)]
    Serve(#[from] serve::ServeError),
    #[error("{path}: {source}")]
    Write {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
}

impl Error {
    /// The exit code this error ends the process with.
    pub fn exit(&self) -> Exit {
        match self {
            Error::Send(send::SendError::Lock(lock::LockError::Held { .. })) => Exit::Locked,
            Error::Send(send::SendError::Unavailable { .. }) => Exit::Stopped,
            Error::Purge(purge::PurgeError::Lock(lock::LockError::Held { .. })) => Exit::Locked,
            Error::Purge(purge::PurgeError::OutboxInUse(_)) => Exit::Locked,
            Error::Load(_)
            | Error::Approval(_)
            | Error::Purge(_)
            | Error::Preview(_)
            | Error::Serve(_)
            | Error::Output(_)
            | Error::Send(_)
            | Error::Ledger(_)
            | Error::Report(_)
            | Error::Write { .. } => Exit::Unusable,
        }
    }
}

fn output(result: std::io::Result<()>) -> Result<(), Error> {
    match result {
        // A closed pipe (`outreach check … | head`) is the reader's choice, not a failure.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other.map_err(Error::Output),
    }
}

/// Prints a command's result: JSON always, text when `text` (not `-q`, or something to report).
fn print(
    format: Format,
    text: bool,
    value: &(impl serde::Serialize + std::fmt::Display),
) -> Result<(), Error> {
    let mut out = std::io::stdout().lock();
    match format {
        Format::Json => output(
            serde_json::to_writer_pretty(&mut out, value)
                .map_err(std::io::Error::from)
                .and_then(|_| writeln!(out)),
        ),
        Format::Text if text => output(writeln!(out, "{value}")),
        Format::Text => Ok(()),
    }
}

/// Runs a parsed command line.
pub fn run(cli: Cli) -> Result<Exit, Error> {
    let stdout = std::io::stdout();
    match cli.command {
        Command::Check(args) => {
            let loaded = Loaded::load(&args.campaign.campaign, &args.campaign.set)?;
            let mut report = check::run(&loaded);
            report.approval = Some(approval::status(&loaded)?).filter(|s| s.worth_showing());
            let failed = args.strict && !report.errors.is_empty();
            print(args.format, !cli.quiet || failed, &report)?;
            Ok(if failed { Exit::Unusable } else { Exit::Ok })
        }
        Command::Preview(args) if args.serve.is_some() => {
            let addr = args.serve.as_deref().unwrap_or_default();
            serve::run(&serve::Options {
                addr: addr.to_string(),
                allow_remote: args.allow_remote,
                campaign: args.campaign.campaign.clone(),
                overrides: args.campaign.set.clone(),
                only: args.channel,
                quiet: cli.quiet,
            })?;
            Ok(Exit::Ok)
        }
        Command::Preview(args) => {
            let loaded = Loaded::load(&args.campaign.campaign, &args.campaign.set)?;
            let approval = Some(approval::status(&loaded)?)
                .filter(|s| s.worth_showing())
                .map(|s| s.to_string());
            if let Some(key) = &args.contact {
                let mut out = stdout.lock();
                if let Some(a) = &approval {
                    output(writeln!(out, "Approval: {a}\n"))?;
                }
                match preview::contact_to(&loaded, key, args.channel, &mut out) {
                    Err(preview::PreviewError::Write { source, .. }) => output(Err(source))?,
                    other => other?,
                }
            }
            if let Some(dir) = &args.out {
                let index = preview::folder(&loaded, dir, args.channel, approval.as_deref())?;
                if !cli.quiet {
                    output(writeln!(
                        stdout.lock(),
                        "Preview of {} contacts written; open {}",
                        loaded.contacts.contacts.len(),
                        index.display()
                    ))?;
                    if let Some(a) = &approval {
                        output(writeln!(stdout.lock(), "Approval: {a}"))?;
                    }
                }
            }
            Ok(Exit::Ok)
        }
        Command::Send(args) => {
            let loaded = Loaded::load(&args.campaign.campaign, &args.campaign.set)?;
            if let Some(to) = &args.test_to {
                let result = send::test_to(&loaded, to, args.contact.as_deref())?;
                print(args.format, !cli.quiet || !result.delivered, &result)?;
                return Ok(if result.delivered {
                    Exit::Ok
                } else {
                    Exit::Failed
                });
            }
            // Outside the window a forgotten crontab line costs nothing and says why.
            if !args.dry_run
                && let Some(notice) = send::window_notice(&loaded, args.channel)
            {
                print(args.format, !cli.quiet, &notice)?;
                return Ok(Exit::Ok);
            }
            let status = approval::status(&loaded)?;
            if !args.dry_run && !status.allows_send() {
                return Err(Error::Approval(approval::refusal(&loaded, &status)));
            }
            let opts = send::SendOptions {
                dry_run: args.dry_run,
                limit: args.limit,
                channel: args.channel,
                resend_unknown: args.resend_unknown,
                retry_failed: args.retry_failed,
                progress: !cli.quiet && args.format == Format::Text,
            };
            let mut summary = send::run(loaded, &opts)?;
            if args.dry_run && status.worth_showing() {
                summary.approval = Some(status);
            }
            let exit = summary.exit();
            print(args.format, !cli.quiet || exit != Exit::Ok, &summary)?;
            Ok(exit)
        }
        Command::Unsubscribe(args) => {
            let mut tokens: Vec<String> = args
                .tokens
                .iter()
                .flat_map(|t| unsubscribe::tokens_in(t))
                .collect();
            let unreadable = args
                .tokens
                .iter()
                .any(|t| unsubscribe::tokens_in(t).is_empty());
            if let Some(file) = &args.from_file {
                let text = if file.as_os_str() == "-" {
                    std::io::read_to_string(std::io::stdin()).map_err(Error::Output)?
                } else {
                    std::fs::read_to_string(file).map_err(|source| Error::Write {
                        path: file.clone(),
                        source,
                    })?
                };
                tokens.extend(unsubscribe::tokens_in(&text));
            }
            let loaded = Loaded::load(&args.campaign.campaign, &args.campaign.set)?;
            let outcome = unsubscribe::run(&loaded, &tokens)?;
            let bad = unreadable || !outcome.unknown.is_empty();
            print(args.format, !cli.quiet || bad, &outcome)?;
            if unreadable {
                eprintln!(
                    "outreach: some arguments hold no token (a token is 26 characters of a-z and 2-7)"
                );
            }
            Ok(if bad { Exit::Failed } else { Exit::Ok })
        }
        Command::Approve(args) => approve(&args, cli.quiet),
        Command::Purge(args) => {
            let campaign = config::load(&args.campaign.campaign, &args.campaign.set)
                .map_err(LoadError::from)?;
            purge::run(&campaign, &args, cli.quiet)?;
            Ok(Exit::Ok)
        }
        Command::Status(args) => {
            let campaign = config::load(&args.campaign.campaign, &args.campaign.set)
                .map_err(LoadError::from)?;
            let status = report::status(&campaign)?;
            print(args.format, !cli.quiet, &status)?;
            Ok(Exit::Ok)
        }
        Command::Report(args) => {
            let loaded = Loaded::load(&args.campaign.campaign, &args.campaign.set)?;
            let state_dir = &loaded.campaign.sending.state_dir;
            let ledger = if state_dir.join(ledger::FILE).exists() {
                Some(ledger::Ledger::open(state_dir)?)
            } else {
                None
            };
            let path = args.out.clone().unwrap_or_else(|| {
                state_dir
                    .join("reports")
                    .join(format!("{}-report.csv", loaded.campaign.id))
            });
            if args.out.is_none() {
                private::create_dir(&state_dir.join("reports")).map_err(|source| Error::Write {
                    path: path.clone(),
                    source,
                })?;
            }
            let rows = report::write(&path, &loaded, ledger.as_ref())?;
            if !cli.quiet {
                output(writeln!(
                    stdout.lock(),
                    "Report of {} recipients written to {} (owner-only: it holds patient addresses)",
                    rows,
                    check::show_path(&path)
                ))?;
            }
            Ok(Exit::Ok)
        }
    }
}

/// `outreach approve`: check, then record the approval (or, with `--show`, print the latest).
fn approve(args: &cli::ApproveArgs, quiet: bool) -> Result<Exit, Error> {
    let loaded = Loaded::load(&args.campaign.campaign, &args.campaign.set)?;
    if args.show {
        let shown = approval::Shown::of(&loaded)?;
        let exit = if shown.record.is_some() {
            Exit::Ok
        } else {
            Exit::Unusable
        };
        print(args.format, true, &shown)?;
        return Ok(exit);
    }
    let report = check::run(&loaded);
    if args.strict && !report.errors.is_empty() {
        print(args.format, true, &report)?;
        return Err(Error::Approval(format!(
            "not approved: {} rows have problems (--strict)",
            report.rows_with_problems
        )));
    }
    let by = args
        .by
        .clone()
        .filter(|b| !b.trim().is_empty())
        .unwrap_or_else(approval::os_user);
    let fingerprint = approval::fingerprint(&loaded);
    let state_dir = &loaded.campaign.sending.state_dir;
    let mut ledger = ledger::Ledger::open(state_dir)?;
    ledger.approve(&loaded.campaign.id, by.trim(), loaded.now, &fingerprint)?;
    drop(ledger);
    let done = approval::Approved::new(&loaded, by.trim(), &report);
    print(args.format, !quiet, &done)?;
    Ok(Exit::Ok)
}
