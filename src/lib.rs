//! `outreach`: patient outreach campaigns for clinics. A contacts CSV merged with Handlebars
//! templates, checked and previewed locally, then sent by email and SMS.
//!
//! The layers, bottom up (ARCHITECTURE.md draws them): values ([`model`], [`address`],
//! [`paths`], [`private`]); the campaign's inputs ([`config`], [`contacts`], [`templates`],
//! [`sms`], …); the planner ([`plan`]); the [`store`] and the [`transport`]s; the loaded campaign
//! ([`load`], [`render`], [`approval`], [`recipients`]); the [`send`] run; the [`commands`]; and on top the
//! command line ([`cli`]) and [`run`], the whole program behind `main`: it turns each command's
//! arguments into that command's options, runs it, prints its result and picks the exit code.

// No function over 120 lines (the threshold is in clippy.toml): split it into named steps.
#![warn(clippy::too_many_lines)]

pub mod address;
pub mod approval;
pub mod audience;
pub mod bounce;
pub mod chart;
pub mod cli;
pub mod commands;
pub mod config;
pub mod contacts;
pub mod dkim;
pub mod fold;
pub mod language;
pub mod load;
pub mod mailbox;
pub mod manual;
pub mod message;
pub mod model;
pub mod paths;
pub mod plan;
pub mod private;
pub mod reads;
pub mod recipients;
pub mod render;
pub mod send;
pub mod sms;
pub mod store;
pub mod template_sets;
pub mod templates;
pub mod terminal;
pub mod token;
pub mod transport;
pub mod utm;
pub mod webhook;

use std::io::Write;

use cli::{Cli, Command, Format};
use commands::{
    approve, bounces, check, inbox, listen, new, preview, purge, report, serve, state, status,
    suppressions, sync, unsubscribe,
};
use load::{LoadError, Loaded};
pub use model::Exit;
use store::lock::LockError;

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
    Ledger(#[from] store::ledger::LedgerError),
    #[error(transparent)]
    Report(#[from] recipients::ReportError),
    /// `send` refuses: the campaign is not approved as it is.
    #[error(transparent)]
    NotApproved(#[from] approval::Refusal),
    /// `approve --strict` refuses: rows have problems.
    #[error("not approved: {rows} rows have problems (--strict)")]
    Unapprovable { rows: usize },
    #[error(transparent)]
    Purge(#[from] purge::PurgeError),
    #[error(transparent)]
    Serve(#[from] serve::ServeError),
    #[error(transparent)]
    Unsubscribe(#[from] unsubscribe::UnsubscribeError),
    #[error(transparent)]
    Listen(#[from] listen::ListenError),
    #[error(transparent)]
    Suppressions(#[from] suppressions::SuppressionsError),
    #[error(transparent)]
    Sync(#[from] sync::SyncError),
    #[error(transparent)]
    Bounces(#[from] bounces::BouncesError),
    #[error(transparent)]
    State(#[from] state::StateError),
    #[error(transparent)]
    New(#[from] new::NewError),
    #[error(transparent)]
    Manual(#[from] manual::ManError),
    /// `send` into a state directory `--set` chose whose ledger has never seen the campaign.
    #[error(
        "--set {arg}: the ledger in {} has never seen campaign {id}; nothing sent. Sending there \
         would message everyone again, and its new token key would break every unsubscribe link \
         already sent (the campaign's own state directory is {}). Drop the --set, or add \
         --new-ledger if a fresh ledger is really meant",
        paths::show_path(new),
        own.as_deref().map_or_else(|| "unknown".to_string(), paths::show_path)
    )]
    NewLedger {
        arg: String,
        id: String,
        new: std::path::PathBuf,
        own: Option<std::path::PathBuf>,
    },
}

impl Error {
    /// The exit code this error ends the process with.
    pub fn exit(&self) -> Exit {
        match self {
            Error::Send(send::SendError::Lock(LockError::Held { .. })) => Exit::Locked,
            Error::Send(send::SendError::Unavailable { .. }) => Exit::Stopped,
            // The ledger's database out of reach: nothing is lost (what went was claimed
            // first, and is reported unknown), and a later run resumes once it is back.
            Error::Send(send::SendError::Ledger(e))
            | Error::Ledger(e)
            | Error::Sync(sync::SyncError::Ledger(e))
                if e.is_unreachable() =>
            {
                Exit::Stopped
            }
            Error::Purge(purge::PurgeError::Lock(LockError::Held { .. })) => Exit::Locked,
            Error::Purge(purge::PurgeError::OutboxInUse(_)) => Exit::Locked,
            Error::Sync(sync::SyncError::Lock(LockError::Held { .. })) => Exit::Locked,
            Error::State(e) if e.is_unreachable() => Exit::Stopped,
            Error::Load(_)
            | Error::NotApproved(_)
            | Error::Unapprovable { .. }
            | Error::Purge(_)
            | Error::Preview(_)
            | Error::Serve(_)
            | Error::Output(_)
            | Error::Send(_)
            | Error::Ledger(_)
            | Error::Report(_)
            | Error::Unsubscribe(_)
            | Error::Listen(_)
            | Error::Suppressions(_)
            | Error::Sync(_)
            | Error::Bounces(_)
            | Error::State(_)
            | Error::New(_)
            | Error::Manual(_)
            | Error::NewLedger { .. } => Exit::Unusable,
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
    let mut out = crate::terminal::stdout();
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

/// Prints a line of text unless `-q`.
fn say(quiet: bool, text: std::fmt::Arguments<'_>) -> Result<(), Error> {
    if quiet {
        return Ok(());
    }
    output(writeln!(crate::terminal::stdout(), "{text}"))
}

fn load(args: &cli::CampaignArgs) -> Result<Loaded, Error> {
    Ok(Loaded::load(&args.campaign, &args.set)?)
}

/// Runs a parsed command line.
pub fn run(cli: Cli) -> Result<Exit, Error> {
    let quiet = cli.quiet;
    let Some(command) = cli.command else {
        // No command: someone finding their way, not a script. A guide, and success.
        output(writeln!(crate::terminal::stdout(), "{}", cli::GUIDE))?;
        return Ok(Exit::Ok);
    };
    match command {
        Command::Completions(args) => {
            let mut script = Vec::new();
            manual::completions(args.shell, &mut script);
            output(crate::terminal::stdout().write_all(&script))?;
            Ok(Exit::Ok)
        }
        Command::Man(args) => {
            for page in manual::write_man_pages(&args.dir)? {
                say(quiet, format_args!("{}", paths::show_path(&page)))?;
            }
            Ok(Exit::Ok)
        }
        Command::Check(args) => run_check(&args, quiet),
        Command::Preview(args) if args.serve.is_some() => {
            serve::run(&serve::Options {
                addr: args.serve.clone().unwrap_or_default(),
                allow_remote: args.allow_remote,
                campaign: args.campaign.campaign.clone(),
                overrides: args.campaign.set.clone(),
                only: args.channel,
                quiet,
            })?;
            Ok(Exit::Ok)
        }
        Command::Preview(args) => run_preview(&args, quiet),
        Command::Send(args) => run_send(&args, quiet),
        Command::Unsubscribe(args) => run_unsubscribe(&args, quiet),
        Command::Listen(args) => {
            listen::run(&listen::Options {
                campaigns: args.campaigns,
                overrides: args.set,
                addr: args.addr,
                quiet,
            })?;
            Ok(Exit::Ok)
        }
        Command::New(args) => {
            let from = match args.from {
                cli::StarterArg::Plain => new::Starter::Plain,
                cli::StarterArg::Psoas => new::Starter::Psoas,
            };
            let created = new::run(&new::Options {
                name: args.name,
                from,
                dir: args.dir,
            })?;
            print(args.format, !quiet, &created)?;
            Ok(Exit::Ok)
        }
        Command::Inbox(args) => {
            let campaign = config::load(&args.campaign.campaign, &args.campaign.set)
                .map_err(LoadError::from)?;
            let request = inbox::Request {
                all: args.all,
                read: args.read,
                opt_out: args.opt_out,
            };
            print(args.format, !quiet, &inbox::run(&campaign, &request)?)?;
            Ok(Exit::Ok)
        }
        Command::Bounces(args) => {
            let summary = bounces::run(&bounces::Options {
                campaigns: args.campaigns,
                overrides: args.set,
            })?;
            let exit = if summary.all_read() {
                Exit::Ok
            } else {
                Exit::Failed
            };
            print(args.format, !quiet || exit != Exit::Ok, &summary)?;
            Ok(exit)
        }
        Command::Suppressions(args) => run_suppressions(args.command, quiet),
        Command::State(args) => match args.command {
            cli::StateCommand::Migrate(args) => {
                let password = match (args.password_env, args.password_file) {
                    (Some(name), _) => Some(config::SecretSource::Env(name)),
                    (None, Some(file)) => Some(config::SecretSource::File(file)),
                    (None, None) => None,
                };
                let migrated = state::migrate(&state::Options {
                    from: &args.from,
                    to: &args.to,
                    password,
                })?;
                print(args.format, !quiet, &migrated)?;
                Ok(Exit::Ok)
            }
        },
        Command::Sync(args) => {
            let loaded = load(&args.campaign)?;
            let options = sync::Options {
                limit: args.limit,
                max_time: args.max_time,
                settle_after: args.settle_after,
            };
            let synced = sync::run(&loaded, &options)?;
            print(args.format, !quiet, &synced)?;
            Ok(synced.exit())
        }
        Command::Approve(args) => run_approve(&args, quiet),
        Command::Purge(args) => run_purge(&args, quiet),
        Command::Status(args) => {
            let campaign = config::load(&args.campaign.campaign, &args.campaign.set)
                .map_err(LoadError::from)?;
            print(args.format, !quiet, &status::status(&campaign)?)?;
            Ok(Exit::Ok)
        }
        Command::Report(args) => run_report(&args, quiet),
    }
}

fn run_report(args: &cli::ReportArgs, quiet: bool) -> Result<Exit, Error> {
    let kind = if args.html {
        report::Kind::Html
    } else {
        report::Kind::Csv
    };
    if let Some(state_dir) = &args.all {
        let now = model::Clock::from_env().map_err(LoadError::from)?.now();
        let written = report::run_all(state_dir, kind, args.out.as_deref(), now)?;
        say(
            quiet,
            format_args!(
                "Report of {} campaigns written to {} (aggregate counts only)",
                written.rows,
                paths::show_path(&written.path)
            ),
        )?;
        return Ok(Exit::Ok);
    }
    let campaign = args
        .campaign
        .clone()
        .expect("clap requires it without --all");
    let loaded = Loaded::load(&campaign, &args.set)?;
    let written = report::run(&loaded, kind, args.out.as_deref())?;
    let what = match kind {
        report::Kind::Csv => format!(
            "Report of {} recipients written to {} (owner-only: it holds patient addresses)",
            written.rows,
            paths::show_path(&written.path)
        ),
        report::Kind::Html => format!(
            "HTML report of {} contacts written to {} (aggregate counts only: safe to share)",
            written.rows,
            paths::show_path(&written.path)
        ),
    };
    say(quiet, format_args!("{what}"))?;
    Ok(Exit::Ok)
}

fn run_check(args: &cli::CheckArgs, quiet: bool) -> Result<Exit, Error> {
    let loaded = load(&args.campaign)?;
    loaded.check_reach(None)?;
    let mut report = check::run(&loaded);
    report.approval = Some(approval::status(&loaded)?).filter(|s| s.worth_showing());
    let failed = args.strict && !report.errors.is_empty();
    print(args.format, !quiet || failed, &report)?;
    Ok(if failed { Exit::Unusable } else { Exit::Ok })
}

fn run_preview(args: &cli::PreviewArgs, quiet: bool) -> Result<Exit, Error> {
    let loaded = load(&args.campaign)?;
    loaded.check_reach(args.channel)?;
    let approval = Some(approval::status(&loaded)?)
        .filter(|s| s.worth_showing())
        .map(|s| s.to_string());
    if let Some(key) = &args.contact {
        let mut out = crate::terminal::stdout();
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
        say(
            quiet,
            format_args!(
                "Preview of {} contacts written; open {}",
                loaded.contacts.contacts.len(),
                index.display()
            ),
        )?;
        if let Some(a) = &approval {
            say(quiet, format_args!("Approval: {a}"))?;
        }
    }
    Ok(Exit::Ok)
}

fn run_send(args: &cli::SendArgs, quiet: bool) -> Result<Exit, Error> {
    // Before anything is loaded: a refused state directory is left as it was.
    if !args.dry_run && !args.new_ledger && args.test_to.is_none() {
        let campaign =
            config::load(&args.campaign.campaign, &args.campaign.set).map_err(LoadError::from)?;
        refuse_a_new_ledger(&campaign, &args.campaign)?;
    }
    let loaded = load(&args.campaign)?;
    if let Some(to) = &args.test_to {
        let result = send::test_to(&loaded, to, args.contact.as_deref())?;
        print(args.format, !quiet || !result.delivered, &result)?;
        return Ok(if result.delivered {
            Exit::Ok
        } else {
            Exit::Failed
        });
    }
    loaded.check_reach(args.channel)?;
    // Outside the window a forgotten crontab line costs nothing and says why.
    if !args.dry_run
        && let Some(notice) = send::window_notice(&loaded, args.channel)
    {
        print(args.format, !quiet, &notice)?;
        return Ok(Exit::Ok);
    }
    let status = approval::status(&loaded)?;
    if !args.dry_run && !status.allows_send() {
        return Err(approval::refusal(&loaded, &status).into());
    }
    let opts = send::SendOptions {
        dry_run: args.dry_run,
        limit: args.limit,
        channel: args.channel,
        resend_unknown: args.resend_unknown,
        retry_failed: args.retry_failed,
        progress: !quiet && args.format == Format::Text,
    };
    let mut summary = send::run(loaded, &opts)?;
    if args.dry_run && status.worth_showing() {
        summary.approval = Some(status);
    }
    let exit = summary.exit();
    print(args.format, !quiet || exit != Exit::Ok, &summary)?;
    Ok(exit)
}

/// Refuses a `send` into a state directory that `--set` chose and whose ledger has never seen
/// the campaign (no message, run or approval of it): most likely a typo, or the wrong machine.
fn refuse_a_new_ledger(campaign: &config::Campaign, args: &cli::CampaignArgs) -> Result<(), Error> {
    let sending = &campaign.sending;
    let Some(arg) = &sending.state_dir_override else {
        return Ok(());
    };
    let id = &campaign.id;
    let store = sending.store();
    if let Some(l) = store::ledger::Ledger::open_existing(&store)?
        && l.campaign_rows(id)?.total() > 0
    {
        return Ok(());
    }
    // The campaign's own state directory: the same campaign without that override.
    let others: Vec<String> = args
        .set
        .iter()
        .filter(|s| !s.trim_start().starts_with("sending.state_dir"))
        .cloned()
        .collect();
    let own = config::load(&args.campaign, &others)
        .ok()
        .map(|c| c.sending.state_dir);
    Err(Error::NewLedger {
        arg: arg.clone(),
        id: id.clone(),
        new: sending.state_dir.clone(),
        own,
    })
}

fn run_unsubscribe(args: &cli::UnsubscribeArgs, quiet: bool) -> Result<Exit, Error> {
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
        tokens.extend(unsubscribe::tokens_in(&unsubscribe::read_tokens_file(
            file,
        )?));
    }
    let loaded = load(&args.campaign)?;
    let outcome = unsubscribe::run(&loaded, &tokens)?;
    let bad = unreadable || !outcome.unknown.is_empty();
    print(args.format, !quiet || bad, &outcome)?;
    if unreadable {
        eprintln!(
            "outreach: some arguments hold no token (a token is 26 characters of a-z and 2-7)"
        );
    }
    Ok(if bad { Exit::Failed } else { Exit::Ok })
}

/// `outreach suppressions list|remove`: reads the campaign file only (its state directory, region
/// and suppression files), not its contacts or templates.
fn run_suppressions(command: cli::SuppressionsCommand, quiet: bool) -> Result<Exit, Error> {
    let campaign_of =
        |args: &cli::CampaignArgs| config::load(&args.campaign, &args.set).map_err(LoadError::from);
    match command {
        cli::SuppressionsCommand::List(args) => {
            let campaign = campaign_of(&args.campaign)?;
            let listing = suppressions::list(&campaign, args.address.as_deref())?;
            print(args.format, !quiet, &listing)?;
        }
        cli::SuppressionsCommand::Remove(args) => {
            let campaign = campaign_of(&args.campaign)?;
            let by = args
                .by
                .filter(|b| !b.trim().is_empty())
                .unwrap_or_else(approve::os_user);
            let now = model::Clock::from_env()
                .map(|c| c.now())
                .unwrap_or_else(|_| chrono::Utc::now());
            let removed =
                suppressions::remove(&campaign, &args.address, &args.reason, by.trim(), now)?;
            print(args.format, !quiet, &removed)?;
        }
    }
    Ok(Exit::Ok)
}

/// `outreach approve`: check, then record the approval (or, with `--show`, print the latest).
fn run_approve(args: &cli::ApproveArgs, quiet: bool) -> Result<Exit, Error> {
    let loaded = load(&args.campaign)?;
    if args.show {
        let shown = approve::Shown::of(&loaded)?;
        let exit = if shown.record.is_some() {
            Exit::Ok
        } else {
            Exit::Unusable
        };
        print(args.format, true, &shown)?;
        return Ok(exit);
    }
    loaded.check_reach(None)?;
    let options = approve::Options {
        by: args.by.clone(),
        strict: args.strict,
    };
    match approve::record(&loaded, &options)? {
        approve::Outcome::Approved(done) => {
            print(args.format, !quiet, &done)?;
            Ok(Exit::Ok)
        }
        approve::Outcome::Refused(report) => {
            print(args.format, true, &report)?;
            Err(Error::Unapprovable {
                rows: report.rows_with_problems,
            })
        }
    }
}

/// `outreach purge`: lists what it will delete, asks (or needs `--yes`), deletes.
fn run_purge(args: &cli::PurgeArgs, quiet: bool) -> Result<Exit, Error> {
    use std::io::{BufRead, IsTerminal};
    let campaign =
        config::load(&args.campaign.campaign, &args.campaign.set).map_err(LoadError::from)?;
    let options = purge::Options {
        outbox: args.outbox || args.all,
        reports: args.reports || args.all,
        ledger: args.ledger || args.all,
        preview: args.preview.clone(),
    };
    let id = &campaign.id;
    let confirm = |targets: &[purge::Target]| -> Result<bool, purge::PurgeError> {
        let mut out = crate::terminal::stdout();
        let _ = writeln!(out, "Campaign {id}: purge will delete");
        for t in targets {
            let _ = writeln!(out, "  {t}");
        }
        if args.yes {
            return Ok(true);
        }
        if !std::io::stdin().is_terminal() {
            return Err(purge::PurgeError::NeedsYes);
        }
        let _ = write!(out, "Delete these? [y/N] ");
        let _ = out.flush();
        let mut answer = String::new();
        let _ = std::io::stdin().lock().read_line(&mut answer);
        let yes = matches!(answer.trim(), "y" | "Y" | "yes" | "YES" | "Yes");
        if !yes {
            let _ = writeln!(out, "Nothing deleted");
        }
        Ok(yes)
    };
    match purge::run(&campaign, &options, confirm)? {
        purge::Purged::Nothing => say(quiet, format_args!("Campaign {id}: nothing to purge"))?,
        purge::Purged::Deleted => say(quiet, format_args!("Deleted"))?,
        purge::Purged::Declined => {}
    }
    Ok(Exit::Ok)
}
