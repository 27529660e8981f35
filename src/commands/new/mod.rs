//! `outreach new NAME`: a campaign to start from, in a directory of its own. The campaign file
//! has every key, set or shown commented with its default (`campaign.toml` here, with the id
//! and name filled in); the templates are a starting set built into the binary, so an
//! installed `outreach` needs no checkout: `plain`, whose campaign-specific words sit in
//! `subject.hbs`, `sms.txt.hbs` and `partials/message_{html,text}.hbs`, or the shipped `psoas`
//! campaign's; and three fictional contacts. Everything is on the file transports, so `check`,
//! `preview`, `approve` and `send` work at once and nothing leaves the machine. It never
//! overwrites: an existing directory is refused before anything is written. The directory and
//! its files are owner-only: the clinic's export goes there, and by default the ledger too.

use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::paths::show_path;

/// The template sets `new` starts from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Starter {
    /// A short message in a plain layout: the words to change are in four small files.
    Plain,
    /// The shipped psoas article campaign.
    Psoas,
}

/// What `new` is asked for.
pub struct Options {
    /// The campaign's id and, unless `dir` says otherwise, its directory.
    pub name: String,
    pub from: Starter,
    pub dir: Option<PathBuf>,
}

/// Why nothing was made (exit 2).
#[derive(Debug, thiserror::Error)]
pub enum NewError {
    #[error("{0:?} cannot be a campaign id: {rule}", rule = crate::config::ID_RULE)]
    Name(String),
    #[error("{}: already there; nothing written (new never overwrites)", show_path(.0))]
    Exists(PathBuf),
    #[error("{}: {source}", show_path(path))]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// A file of the scaffold: its path in the campaign directory and its bytes.
type File = (&'static str, &'static str);

const CAMPAIGN: &str = include_str!("campaign.toml");

const COMMON: &[File] = &[
    ("contacts.csv", include_str!("contacts.csv")),
    ("opt-outs.csv", include_str!("opt-outs.csv")),
];

macro_rules! templates {
    ($set:literal: $($file:literal),* $(,)?) => {
        &[$((
            concat!("templates/", $file),
            include_str!(concat!("../../../templates/", $set, "/", $file)),
        )),*]
    };
}

const PLAIN: &[File] = templates!("plain":
    "subject.hbs", "email.html.hbs", "email.txt.hbs", "sms.txt.hbs",
    "partials/message_html.hbs", "partials/message_text.hbs",
    "partials/footer_html.hbs", "partials/footer_text.hbs",
);

const PSOAS: &[File] = templates!("psoas":
    "subject.hbs", "email.html.hbs", "email.txt.hbs", "sms.txt.hbs",
    "partials/symptoms_html.hbs", "partials/symptoms_text.hbs",
    "partials/footer_html.hbs", "partials/footer_text.hbs",
    "es/subject.hbs", "es/email.html.hbs", "es/email.txt.hbs", "es/sms.txt.hbs",
    "es/partials/symptoms_html.hbs", "es/partials/symptoms_text.hbs",
    "es/partials/footer_html.hbs", "es/partials/footer_text.hbs",
);

/// What `new` made.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Created {
    pub campaign: String,
    pub from: Starter,
    pub dir: PathBuf,
    /// The campaign file, to give the next commands.
    pub file: PathBuf,
    /// Every file written, relative to `dir`.
    pub files: Vec<&'static str>,
}

/// Writes the campaign's directory, refusing one that exists.
pub fn run(options: &Options) -> Result<Created, NewError> {
    if !crate::config::is_campaign_id(&options.name) {
        return Err(NewError::Name(options.name.clone()));
    }
    let dir = options
        .dir
        .clone()
        .unwrap_or_else(|| PathBuf::from(&options.name));
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| NewError::Io { path, source }
    };
    if dir.exists() {
        return Err(NewError::Exists(dir));
    }
    if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(io(parent))?;
    }
    // Not recursive: a directory made meanwhile by someone else is refused too. Owner-only, as
    // it will hold the clinic's export, and by default the ledger and the outboxes.
    let mut builder = std::fs::DirBuilder::new();
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(&dir).map_err(|e| match e.kind() {
        std::io::ErrorKind::AlreadyExists => NewError::Exists(dir.clone()),
        _ => io(&dir)(e),
    })?;
    let campaign = CAMPAIGN
        .replace("__ID__", &options.name)
        .replace("__NAME__", &options.name)
        .replace("__DIR__", &show_path(&dir));
    let templates = match options.from {
        Starter::Plain => PLAIN,
        Starter::Psoas => PSOAS,
    };
    let mut files = vec!["campaign.toml"];
    write(&dir.join("campaign.toml"), &campaign).map_err(io(&dir.join("campaign.toml")))?;
    for (name, text) in COMMON.iter().chain(templates) {
        let path = dir.join(name);
        if let Some(parent) = path.parent() {
            crate::private::create_dir(parent).map_err(io(parent))?;
        }
        write(&path, text).map_err(io(&path))?;
        files.push(name);
    }
    Ok(Created {
        campaign: options.name.clone(),
        from: options.from,
        file: dir.join("campaign.toml"),
        dir,
        files,
    })
}

/// Writes a new, owner-only file (never over one).
fn write(path: &Path, text: &str) -> std::io::Result<()> {
    crate::private::open(path, crate::private::Open::CreateNew)?.write_all(text.as_bytes())
}

impl fmt::Display for Created {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let dir = show_path(&self.dir);
        let file = show_path(&self.file);
        writeln!(f, "Created campaign {} in {dir}/:", self.campaign)?;
        writeln!(
            f,
            "  campaign.toml   every key; set [clinic] and [email] first (file transports: \
             nothing leaves this machine until you change them)"
        )?;
        let words = match self.from {
            Starter::Plain => {
                "your words are in subject.hbs, sms.txt.hbs and partials/message_html.hbs \
                 and message_text.hbs"
            }
            Starter::Psoas => "the psoas article campaign's: change its words throughout",
        };
        writeln!(f, "  templates/      {words}")?;
        writeln!(
            f,
            "  contacts.csv    three fictional patients: put your export here"
        )?;
        writeln!(f, "  opt-outs.csv    addresses never to contact")?;
        writeln!(f, "Next:")?;
        writeln!(f, "  outreach check {file}")?;
        writeln!(f, "  outreach preview {file} --serve")?;
        writeln!(f, "  outreach approve {file}")?;
        write!(f, "  outreach send {file}")
    }
}
