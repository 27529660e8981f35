//! `outreach`: patient outreach campaigns for clinics. A contacts CSV merged with Handlebars
//! templates, checked and previewed locally, then sent by email and SMS.
//!
//! The pipeline: [`config`] loads the campaign, [`contacts`] the patients, [`templates`] the
//! messages; [`plan`] decides who gets what; [`check`] and [`preview`] show it. [`run`] is the
//! whole program behind `main`.

pub mod channel;
pub mod check;
pub mod cli;
pub mod config;
pub mod contacts;
pub mod load;
pub mod message;
pub mod plan;
pub mod preview;
pub mod sms;
pub mod templates;
pub mod token;

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
}

impl Error {
    /// The exit code this error ends the process with.
    pub fn exit(&self) -> Exit {
        match self {
            Error::Load(_) | Error::Preview(_) | Error::Output(_) => Exit::Unusable,
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

/// Runs a parsed command line.
pub fn run(cli: Cli) -> Result<Exit, Error> {
    let stdout = std::io::stdout();
    match cli.command {
        Command::Check(args) => {
            let loaded = Loaded::load(&args.campaign.campaign, &args.campaign.set)?;
            let report = check::run(&loaded);
            let failed = args.strict && !report.errors.is_empty();
            let mut out = stdout.lock();
            match args.format {
                Format::Json => output(
                    serde_json::to_writer_pretty(&mut out, &report)
                        .map_err(std::io::Error::from)
                        .and_then(|_| writeln!(out)),
                )?,
                Format::Text if !cli.quiet || failed => {
                    output(writeln!(out, "{report}"))?;
                }
                Format::Text => {}
            }
            Ok(if failed { Exit::Unusable } else { Exit::Ok })
        }
        Command::Preview(args) => {
            let loaded = Loaded::load(&args.campaign.campaign, &args.campaign.set)?;
            if let Some(key) = &args.contact {
                let mut out = stdout.lock();
                match preview::contact_to(&loaded, key, args.channel, &mut out) {
                    Err(preview::PreviewError::Write { source, .. }) => output(Err(source))?,
                    other => other?,
                }
            }
            if let Some(dir) = &args.out {
                let index = preview::folder(&loaded, dir, args.channel)?;
                if !cli.quiet {
                    output(writeln!(
                        stdout.lock(),
                        "Preview of {} contacts written; open {}",
                        loaded.contacts.contacts.len(),
                        index.display()
                    ))?;
                }
            }
            Ok(Exit::Ok)
        }
    }
}
