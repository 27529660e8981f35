//! The command line, as clap parses it. Nothing here is validated beyond its shape: the campaign
//! file and `--set` values are checked by [`crate::config`].

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::model::Channel;

const EXIT_CODES: &str = "\
Exit codes:
  0  all due messages sent (check: the campaign can run)
  1  some messages failed permanently or their outcome is unknown
  2  the campaign cannot run: config, templates or contacts file unusable, bad credentials
     (check --strict: also any row with a problem); nothing was sent
  3  stopped early (transient outage, interrupt); a rerun resumes
  4  another run of this campaign holds the lock";

/// What `--version` prints after the name: the crate's version and the commit it was built from
/// (`build.rs`: the git checkout, `OUTREACH_COMMIT` for a build from a source tarball, else
/// `unknown`).
pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("OUTREACH_COMMIT"),
    ")"
);

/// What `outreach` with no command prints: what it is and the first commands, for someone who
/// has just installed it. Clap's usage alone lists fifteen commands and says nothing of where
/// to start.
pub const GUIDE: &str = "\
outreach: patient outreach campaigns for clinics. A contacts CSV merged with Handlebars
templates, checked and previewed on your machine, then sent by email and SMS, never twice.

Start with a campaign of your own (or --from psoas for the sample psoas article campaign):
  outreach new my-campaign                         its file, templates and 3 fictional contacts
  outreach check my-campaign/campaign.toml         validate; render every message; sends nothing
  outreach preview my-campaign/campaign.toml --serve     every patient's messages, in the browser
  outreach approve my-campaign/campaign.toml       record that you reviewed it
  outreach send my-campaign/campaign.toml          send what is due; rerun at will (cron, timer)

Nothing leaves the machine until the campaign file says smtp or http: new campaigns write
email and SMS to files in my-campaign/outbox/.

More: outreach help COMMAND, outreach COMMAND --help, man outreach, man outreach-send.";

/// Patient outreach campaigns for clinics: a contacts CSV merged with Handlebars templates, sent
/// by email and SMS, never twice.
#[derive(Debug, Parser)]
#[command(name = "outreach", version = VERSION, about, after_help = EXIT_CODES)]
pub struct Cli {
    /// The command; none prints [`GUIDE`].
    #[command(subcommand)]
    pub command: Option<Command>,
    /// More log output from outreach (-v info, -vv debug); RUST_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Print nothing on success.
    #[arg(short, long, global = true)]
    pub quiet: bool,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Start a campaign: a directory NAME/ with its campaign file (every key), templates to edit
    /// (a plain starting set, or the psoas campaign's), three sample contacts and an opt-out
    /// list, all on the file transports. Never overwrites.
    #[command(after_help = EXIT_CODES)]
    New(NewArgs),
    /// Validate the campaign, its templates and every contact; render every message in memory;
    /// report. Sends nothing.
    #[command(after_help = EXIT_CODES)]
    Check(CheckArgs),
    /// Render messages locally: one contact to stdout (--contact), or a browsable folder (--out).
    #[command(after_help = EXIT_CODES)]
    Preview(PreviewArgs),
    /// Send what is due and not yet sent, recording every outcome in the ledger. Safe to run again
    /// at any time: nobody is messaged twice for one campaign and channel.
    #[command(after_help = EXIT_CODES)]
    Send(SendArgs),
    /// Record that you reviewed this campaign as it is now (after check and preview): who, when,
    /// and a fingerprint of its templates, contacts, opt-outs and message settings. With
    /// campaign.require_approval = true, send refuses anything that differs from it.
    #[command(after_help = EXIT_CODES)]
    Approve(ApproveArgs),
    /// Delete what a campaign left on disk that holds patient data: outboxes, run reports, a
    /// preview folder, its ledger rows. Says what and how much first; needs --yes off a terminal.
    #[command(after_help = EXIT_CODES)]
    Purge(PurgeArgs),
    /// Counts by state and channel from the ledger, and the last run.
    #[command(after_help = EXIT_CODES)]
    Status(StatusArgs),
    /// Write a CSV with one row per recipient: state, reason, attempts, provider id, error.
    #[command(after_help = EXIT_CODES)]
    Report(ReportArgs),
    /// Suppress the recipients behind unsubscribe tokens (from links or mailto subjects) in
    /// every campaign of this state directory. Exit 1 when a token maps to no recipient.
    #[command(after_help = EXIT_CODES)]
    Unsubscribe(UnsubscribeArgs),
    /// Serve one-click unsubscribes and the unsubscribe page, SMS delivery receipts and
    /// patients' replies (STOP, START, HELP; the rest kept for `inbox`) for the campaigns of one
    /// state directory, until SIGTERM. Configured by each campaign's [listen] table.
    #[command(after_help = EXIT_CODES)]
    Listen(ListenArgs),
    /// Patients' SMS replies kept for staff (masked numbers): list the unread ones, mark them
    /// read, or record one as an opt-out.
    #[command(after_help = EXIT_CODES)]
    Inbox(InboxArgs),
    /// Ask the SMS gateway (Twilio) what became of sent SMS with no final delivery state yet,
    /// and settle SMS left unknown: found sent, or retryable once the gateway lists none.
    /// Exit 1 when some lookups failed, 3 when stopped early (rejected credentials,
    /// throttled, the time bound); a rerun resumes.
    #[command(after_help = EXIT_CODES)]
    Sync(SyncArgs),
    /// Read the bounce mailbox of one state directory ([feedback] maildir, mbox or imap): hard
    /// bounces and complaints suppress the address for email in every campaign, soft bounces
    /// after a limit; policy failures are counted per domain. Safe to rerun. Exit 1 when a
    /// message could not be read.
    #[command(after_help = EXIT_CODES)]
    Bounces(BouncesArgs),
    /// Why addresses are suppressed (the ledger's suppressions, shared by every campaign of the
    /// state directory, and the clinic's suppression files), and lifting a ledger suppression.
    Suppressions(SuppressionsArgs),
    /// Where the ledger is kept: `state migrate` copies a state directory's SQLite ledger into
    /// PostgreSQL.
    State(StateArgs),
    /// Print the shell completion script for bash, zsh or fish. The packages install them; from
    /// source: `outreach completions bash > ~/.local/share/bash-completion/completions/outreach`
    /// (zsh: a file `_outreach` in a directory of $fpath; fish:
    /// ~/.config/fish/completions/outreach.fish).
    Completions(CompletionsArgs),
    /// Write the manual pages (outreach.1 and one per command) into DIR. The packages are built
    /// with it (scripts/package): the pages come from the same definitions as --help.
    #[command(hide = true)]
    Man(ManArgs),
}

/// `outreach completions`.
#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell.
    #[arg(value_enum)]
    pub shell: Shell,
}

/// The shells `completions` writes for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Shell {
    Bash,
    Zsh,
    Fish,
}

/// `outreach man`.
#[derive(Debug, Args)]
pub struct ManArgs {
    /// The directory to write the pages into (made if missing).
    #[arg(long, value_name = "DIR")]
    pub dir: PathBuf,
}

/// `outreach state`.
#[derive(Debug, Args)]
pub struct StateArgs {
    #[command(subcommand)]
    pub command: StateCommand,
}

/// `outreach state migrate`.
#[derive(Debug, Subcommand)]
pub enum StateCommand {
    /// Copy a state directory's SQLite ledger (messages, runs, suppressions and their lifts,
    /// approvals, receipts, replies, bounces, the unsubscribe token index) into a PostgreSQL
    /// database, in one transaction, each table checked before it commits. Safe to run again:
    /// rows already there are compared, not copied twice; a database holding another ledger's
    /// rows is refused. Then set `sending.state_url` in the campaign files, and copy the token key
    /// to every sending host: the summary says where.
    #[command(after_help = EXIT_CODES)]
    Migrate(StateMigrateArgs),
}

/// `outreach state migrate`.
#[derive(Debug, Args)]
pub struct StateMigrateArgs {
    /// The state directory whose ledger.sqlite to copy.
    #[arg(long, value_name = "STATE_DIR")]
    pub from: PathBuf,
    /// The database: postgres://ROLE@HOST[:PORT]/DB[?sslmode=...], as `sending.state_url`.
    #[arg(long, value_name = "URL")]
    pub to: String,
    /// The environment variable holding the role's password.
    #[arg(long, value_name = "NAME", conflicts_with = "password_file")]
    pub password_env: Option<String>,
    /// The file holding the role's password.
    #[arg(long, value_name = "FILE")]
    pub password_file: Option<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

/// `outreach suppressions`.
#[derive(Debug, Args)]
pub struct SuppressionsArgs {
    #[command(subcommand)]
    pub command: SuppressionsCommand,
}

/// `outreach suppressions list|remove`.
#[derive(Debug, Subcommand)]
pub enum SuppressionsCommand {
    /// Every suppression of the state directory (masked address, source, reason, date), the
    /// ones lifted, and the entries of the clinic's suppression files (file:line).
    #[command(after_help = EXIT_CODES)]
    List(SuppressionsListArgs),
    /// Lift a ledger suppression (a bounce from a mailbox full last year, a mistaken
    /// complaint): the lift is kept with its reason, who and when. The clinic's suppression
    /// files are not edited: an address only they hold is refused, naming the file and line.
    #[command(after_help = EXIT_CODES)]
    Remove(SuppressionsRemoveArgs),
}

/// `outreach suppressions list`.
#[derive(Debug, Args)]
pub struct SuppressionsListArgs {
    #[command(flatten)]
    pub campaign: CampaignArgs,
    /// Only this address's entries, in full: an email (any case) or a phone number (any
    /// written form).
    #[arg(long, value_name = "ADDR")]
    pub address: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

/// `outreach suppressions remove`.
#[derive(Debug, Args)]
pub struct SuppressionsRemoveArgs {
    #[command(flatten)]
    pub campaign: CampaignArgs,
    /// The address to lift: an email (any case) or a phone number (any written form).
    #[arg(value_name = "ADDRESS")]
    pub address: String,
    /// Why it is lifted; kept with the lift.
    #[arg(long, value_name = "TEXT", required = true)]
    pub reason: String,
    /// Who lifts it (default: the OS user).
    #[arg(long, value_name = "NAME")]
    pub by: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

/// `outreach listen`.
#[derive(Debug, Args)]
pub struct ListenArgs {
    /// The campaign TOML files, all of one state directory.
    #[arg(value_name = "CAMPAIGN", required = true)]
    pub campaigns: Vec<PathBuf>,
    /// Listen on ADDR instead of [listen] addr (default 127.0.0.1:8026).
    #[arg(long, value_name = "ADDR")]
    pub addr: Option<String>,
    /// Override a campaign key of every campaign given (see `check --help`).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
}

/// `outreach sync`.
#[derive(Debug, Args)]
pub struct SyncArgs {
    #[command(flatten)]
    pub campaign: CampaignArgs,
    /// Ask the gateway at most N times in this run.
    #[arg(long, value_name = "N")]
    pub limit: Option<usize>,
    /// Stop asking after this long (500ms, 30s, 10min); a rerun resumes.
    #[arg(long, value_name = "DURATION", default_value = "10min", value_parser = parse_duration)]
    pub max_time: std::time::Duration,
    /// An unknown SMS the gateway does not list becomes retryable this long after its claim.
    #[arg(long, value_name = "DURATION", default_value = "10min", value_parser = parse_duration)]
    pub settle_after: std::time::Duration,
    /// Report format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

/// `outreach new`.
#[derive(Debug, Args)]
pub struct NewArgs {
    /// The campaign's id (letters, digits, `-`, `_`, `.`), and the directory made for it.
    #[arg(value_name = "NAME")]
    pub name: String,
    /// The templates to start from.
    #[arg(long, value_enum, default_value_t = StarterArg::Plain)]
    pub from: StarterArg,
    /// Make the campaign in DIR instead of ./NAME.
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

/// The template sets `new` starts from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum StarterArg {
    /// A short message in a plain layout: your words go in four small files.
    Plain,
    /// The shipped psoas article campaign.
    Psoas,
}

/// `outreach bounces`.
#[derive(Debug, Args)]
pub struct BouncesArgs {
    /// Campaign TOML files, or their state directory (every campaign it has seen approved or
    /// sent): all of one state directory, sharing one [feedback] table.
    #[arg(value_name = "CAMPAIGN|STATE_DIR", required = true)]
    pub campaigns: Vec<PathBuf>,
    /// Override a campaign key of every campaign given (see `check --help`).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

fn parse_duration(value: &str) -> Result<std::time::Duration, String> {
    crate::config::parse_duration(value).map_err(|e| e.to_string())
}

/// `outreach inbox`.
#[derive(Debug, Args)]
pub struct InboxArgs {
    #[command(flatten)]
    pub campaign: CampaignArgs,
    /// Every reply kept, read or not, and the opt-outs and opt-ins too.
    #[arg(long)]
    pub all: bool,
    /// Mark these replies (by the number `inbox` shows) read.
    #[arg(long, value_name = "N", num_args = 1.., conflicts_with = "opt_out")]
    pub read: Vec<i64>,
    /// Record these replies as opt-outs: the sender is suppressed for SMS in every campaign of
    /// the state directory (a staff decision no START lifts), and the reply marked read.
    #[arg(long, value_name = "N", num_args = 1..)]
    pub opt_out: Vec<i64>,
    /// Report format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

/// `outreach unsubscribe`.
#[derive(Debug, Args)]
pub struct UnsubscribeArgs {
    #[command(flatten)]
    pub campaign: CampaignArgs,
    /// Tokens, or whole unsubscribe links holding them.
    #[arg(value_name = "TOKEN", required_unless_present = "from_file")]
    pub tokens: Vec<String>,
    /// Also read tokens from FILE ("-": standard input): any text, e.g. the unsubscribe page's
    /// log; every token in it counts.
    #[arg(long, value_name = "FILE")]
    pub from_file: Option<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

/// `outreach send`.
#[derive(Debug, Args)]
pub struct SendArgs {
    #[command(flatten)]
    pub campaign: CampaignArgs,
    /// Plan and render everything; send and record nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Send at most N messages in this run (all channels together).
    #[arg(long, value_name = "N")]
    pub limit: Option<usize>,
    /// Only this channel.
    #[arg(long, value_parser = parse_channel)]
    pub channel: Option<Channel>,
    /// Send one contact's message to a staff email or phone instead (the channel follows ADDR),
    /// whatever the hour, consent or ledger say; nothing is recorded and its unsubscribe link is
    /// inert. The contact is --contact KEY, else the first one due.
    #[arg(long, value_name = "ADDR")]
    pub test_to: Option<String>,
    /// With --test-to: whose message to send (id, email or phone).
    #[arg(long, value_name = "KEY", requires = "test_to")]
    pub contact: Option<String>,
    /// Also resend messages whose outcome is unknown (an earlier run died mid-send). Check the
    /// report first: some of those patients may already have the message.
    #[arg(long)]
    pub resend_unknown: bool,
    /// Also retry messages that failed permanently (after fixing the cause).
    #[arg(long)]
    pub retry_failed: bool,
    /// Send with a ledger that has never seen this campaign although `--set sending.state_dir`
    /// chose it: everyone is messaged again, and its new token key breaks the unsubscribe links
    /// already sent. Without it, such a send is refused.
    #[arg(long)]
    pub new_ledger: bool,
    /// Summary format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

/// `outreach approve`.
#[derive(Debug, Args)]
pub struct ApproveArgs {
    #[command(flatten)]
    pub campaign: CampaignArgs,
    /// Who approves (default: the OS user).
    #[arg(long, value_name = "NAME")]
    pub by: Option<String>,
    /// Print the latest approval and whether the campaign still matches it; approve nothing.
    #[arg(long)]
    pub show: bool,
    /// Refuse to approve when any contact row has a problem (as check --strict).
    #[arg(long)]
    pub strict: bool,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

/// `outreach purge`.
#[derive(Debug, Args)]
pub struct PurgeArgs {
    #[command(flatten)]
    pub campaign: CampaignArgs,
    /// The campaign's file-transport outboxes: its .eml files and its lines of the SMS file.
    #[arg(long)]
    pub outbox: bool,
    /// The campaign's reports in STATE_DIR/reports (run reports and `outreach report`'s CSV).
    #[arg(long)]
    pub reports: bool,
    /// The campaign's ledger rows: messages, runs, approvals. Shared suppressions (and their
    /// lifts) and other campaigns stay. Every later send would message everyone again.
    #[arg(long)]
    pub ledger: bool,
    /// A preview folder written by `preview --out DIR` for this campaign.
    #[arg(long, value_name = "DIR")]
    pub preview: Option<PathBuf>,
    /// --outbox, --reports and --ledger together (add --preview DIR for a preview folder).
    #[arg(long)]
    pub all: bool,
    /// Delete without asking (required when stdin is not a terminal, e.g. under cron).
    #[arg(long)]
    pub yes: bool,
}

/// `outreach status`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    #[command(flatten)]
    pub campaign: CampaignArgs,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

/// `outreach report`.
#[derive(Debug, Args)]
pub struct ReportArgs {
    /// The campaign TOML file (not with --all).
    #[arg(required_unless_present = "all", conflicts_with = "all")]
    pub campaign: Option<PathBuf>,
    /// Override a campaign key for this run (see `check --help`).
    #[arg(long = "set", value_name = "KEY=VALUE", conflicts_with = "all")]
    pub set: Vec<String>,
    /// Write the aggregate HTML report instead of the per-recipient CSV: funnel, charts over
    /// time, failures by code and domain, SMS cost, runs. No patient data; one file, no script,
    /// no request (default: STATE_DIR/reports/CAMPAIGN-report.html).
    #[arg(long)]
    pub html: bool,
    /// Every campaign of STATE_DIR's ledger, one line each, oldest first: a CSV of its figures
    /// (default STATE_DIR/reports/all-campaigns.csv), or with --html a page with a sparkline
    /// each (all-campaigns.html). Reads the ledger only.
    #[arg(long, value_name = "STATE_DIR")]
    pub all: Option<PathBuf>,
    /// Where to write it (default: STATE_DIR/reports/CAMPAIGN-report.csv, or .html with
    /// --html). Written 0600.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
}

/// The campaign file and its one-run overrides.
#[derive(Debug, Args)]
pub struct CampaignArgs {
    /// The campaign TOML file.
    pub campaign: PathBuf,
    /// Override a campaign key for this run: a dotted KEY and a TOML VALUE (plain text is taken
    /// as a string), e.g. --set email.smtp.port=2525 --set sms.quiet_hours="". Repeatable. Paths
    /// given this way are relative to the current directory.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
}

/// Output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Text,
    Json,
}

/// `outreach check`.
#[derive(Debug, Args)]
pub struct CheckArgs {
    #[command(flatten)]
    pub campaign: CampaignArgs,
    /// Fail (exit 2) when any row has a problem, not only when the campaign cannot run.
    #[arg(long)]
    pub strict: bool,
    /// Report format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

/// `outreach preview`.
#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("mode").required(true).multiple(true).args(["contact", "out", "serve"])))]
pub struct PreviewArgs {
    #[command(flatten)]
    pub campaign: CampaignArgs,
    /// Print this contact's messages (KEY: its id, email or phone).
    #[arg(long, value_name = "KEY")]
    pub contact: Option<String>,
    /// Write a browsable preview of every contact into DIR (open DIR/index.html).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Only this channel.
    #[arg(long, value_parser = parse_channel)]
    pub channel: Option<Channel>,
    /// Serve the preview in the browser at ADDR (default 127.0.0.1:8025), re-rendered on every
    /// edit of the campaign, templates or contacts; the open page follows. Sends nothing.
    #[arg(
        long,
        value_name = "ADDR",
        num_args = 0..=1,
        default_missing_value = "127.0.0.1:8025",
        conflicts_with_all = ["contact", "out"]
    )]
    pub serve: Option<String>,
    /// With --serve: listen on an address other machines can reach. Every request then needs
    /// the random token printed at start (the pages hold patient data).
    #[arg(long, requires = "serve")]
    pub allow_remote: bool,
}

fn parse_channel(s: &str) -> Result<Channel, crate::model::UnknownChannel> {
    s.parse()
}
