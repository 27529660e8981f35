//! A campaign in a temporary directory, and the real `outreach` binary run against it with a
//! fixed clock. Tests write the files they need (campaign, contacts, templates) and compare what
//! a user sees: exit code, stdout, stderr, files.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

use assert_cmd::Command;

/// Midday in Chicago: no SMS is in quiet hours anywhere in the US.
pub const MIDDAY: &str = "2026-11-25T18:00:00Z";
/// 03:00 in Chicago: every US patient is in quiet hours (Honolulu: 23:00 the day before).
pub const NIGHT: &str = "2026-11-25T09:00:00Z";

/// The repository root (for the shipped campaign, templates and sample contacts).
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A campaign file for a fixture: the shipped psoas settings with paths inside the fixture.
pub fn campaign_toml(extra: &str) -> String {
    campaign_toml_on(&["email", "sms"], extra)
}

/// [`campaign_toml`] with only `channels` enabled (`check` refuses an enabled channel whose
/// address column is empty, so a fixture with one channel's addresses enables that one).
pub fn campaign_toml_on(channels: &[&str], extra: &str) -> String {
    format!(
        r#"[campaign]
id = "test-campaign"
name = "Test campaign"
channels = {channels:?}

[clinic]
name = "Riverside Physio"
phone = "+1 312 555 0100"
address = "12 Example St, Springfield, IL 62701"
website = "https://riverside.example"
booking_url = "https://riverside.example/book"
timezone = "America/Chicago"
region = "US"

[contacts]
path = "contacts.csv"
suppress = ["opt-outs.csv"]

[templates]
dir = "templates"

[email]
from = "Riverside Physio <care@riverside.example>"
reply_to = "frontdesk@riverside.example"
outbox = "outbox/email"
unsubscribe_url = "https://riverside.example/unsubscribe?t={{{{token}}}}"
unsubscribe_mailto = "unsubscribe@riverside.example"

[sms]
from = "+13125550100"
outbox = "outbox/sms.jsonl"
{extra}
"#
    )
}

/// A temporary campaign directory.
pub struct Fixture {
    pub dir: tempfile::TempDir,
    /// On PostgreSQL ([`store`]), the fixture's own database: every campaign file written with
    /// [`Fixture::write`] keeps its ledger there (`[sending] state_url`).
    state_url: Option<String>,
}

impl Fixture {
    /// The shipped psoas templates (the default set: English), an empty opt-out list, the given
    /// contacts.
    pub fn new(contacts: &str) -> Self {
        let f = Fixture {
            dir: tempfile::tempdir().unwrap(),
            state_url: match store() {
                Store::Sqlite => None,
                Store::Postgres => Some(postgres_url()),
            },
        };
        let psoas = repo().join("templates/psoas");
        for file in [
            "subject.hbs",
            "email.html.hbs",
            "email.txt.hbs",
            "sms.txt.hbs",
        ] {
            f.write_bytes(
                &format!("templates/{file}"),
                &std::fs::read(psoas.join(file)).unwrap(),
            );
        }
        f.copy_dir(&psoas.join("partials"), "templates/partials");
        f.write("campaign.toml", &campaign_toml(""));
        f.write("contacts.csv", contacts);
        f.write("opt-outs.csv", "address,reason\n");
        f
    }

    /// [`Fixture::new`] with email only enabled: for contacts with no phone numbers.
    pub fn email_only(contacts: &str) -> Self {
        let f = Fixture::new(contacts);
        f.write("campaign.toml", &campaign_toml_on(&["email"], ""));
        f
    }

    /// [`Fixture::new`] with SMS only enabled: for contacts with no email addresses.
    pub fn sms_only(contacts: &str) -> Self {
        let f = Fixture::new(contacts);
        f.write("campaign.toml", &campaign_toml_on(&["sms"], ""));
        f
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// Writes `contents` to `rel`. On PostgreSQL, a campaign file (a `.toml` file with a
    /// `[campaign]` table) gets the fixture's database as its `[sending] state_url` (see
    /// [`with_state_url`]); on SQLite it is written as given.
    pub fn write(&self, rel: &str, contents: &str) {
        match &self.state_url {
            Some(url) if is_campaign_file(rel, contents) => {
                self.write_bytes(rel, with_state_url(contents, url).as_bytes())
            }
            _ => self.write_bytes(rel, contents.as_bytes()),
        }
    }

    pub fn write_bytes(&self, rel: &str, contents: &[u8]) {
        let p = self.path(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, contents).unwrap();
    }

    pub fn read(&self, rel: &str) -> String {
        std::fs::read_to_string(self.path(rel)).unwrap()
    }

    /// Adds the shipped psoas templates' `language` set (`es`) as `templates/LANGUAGE/`.
    pub fn with_language(self, language: &str) -> Self {
        self.copy_dir(
            &repo().join("templates/psoas").join(language),
            &format!("templates/{language}"),
        );
        self
    }

    fn copy_dir(&self, from: &Path, to: &str) {
        for entry in std::fs::read_dir(from).unwrap() {
            let entry = entry.unwrap();
            let name = entry.file_name().to_string_lossy().to_string();
            let rel = format!("{to}/{name}");
            if entry.file_type().unwrap().is_dir() {
                self.copy_dir(&entry.path(), &rel);
            } else {
                std::fs::create_dir_all(self.path(to)).unwrap();
                std::fs::copy(entry.path(), self.path(&rel)).unwrap();
            }
        }
    }

    /// The ledger of the fixture's campaigns: `.outreach/ledger.sqlite`, or on PostgreSQL the
    /// fixture's database.
    pub fn ledger(&self) -> Ledger {
        match &self.state_url {
            None => Ledger::Sqlite(self.path(".outreach/ledger.sqlite")),
            Some(url) => Ledger::Postgres(url.clone()),
        }
    }

    /// The ledger as `outreach` names it in what it prints, run from the fixture directory:
    /// `.outreach/ledger.sqlite`, or the database's URL (which holds no password).
    pub fn ledger_name(&self) -> String {
        match &self.state_url {
            None => ".outreach/ledger.sqlite".to_string(),
            Some(url) => url.clone(),
        }
    }

    /// `outreach ARGS` in the fixture directory at midday.
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = outreach();
        c.current_dir(self.dir.path())
            .env("OUTREACH_NOW", MIDDAY)
            .args(args);
        c
    }

    /// Runs and returns (exit code, stdout, stderr).
    pub fn run(&self, args: &[&str]) -> (i32, String, String) {
        run(self.cmd(args))
    }

    /// What `status --format json` of campaign `file` counts after sending on `channel`
    /// (`delivered`, `bounced`, `opted out`, …): `"2 delivered, 1 undelivered"` for the words
    /// `of`.
    pub fn after_sending(&self, file: &str, channel: &str, of: &[&str]) -> String {
        let (code, out, err) = self.run(&["status", file, "--format", "json"]);
        assert_eq!(code, 0, "{out}{err}");
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        of.iter()
            .map(|w| {
                let n = v["after_sending"][channel][w].as_u64();
                format!(
                    "{} {w}",
                    n.unwrap_or_else(|| panic!("no {channel} {w} in {v}"))
                )
            })
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// The binary under test, with a clean environment for what it reads.
pub fn outreach() -> Command {
    let mut c = Command::cargo_bin("outreach").unwrap();
    c.env_remove("RUST_LOG").env_remove("OUTREACH_NOW");
    c
}

/// Runs a command and returns (exit code, stdout, stderr).
pub fn run(mut c: Command) -> (i32, String, String) {
    let out = c.output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The Python of the test tools' virtual environment.
pub fn python() -> PathBuf {
    let p = repo().join(".tools/venv/bin/python");
    assert!(
        p.exists(),
        "{} is missing: run scripts/test, which installs aiosmtpd and dkimpy",
        p.display()
    );
    p
}

/// What the Python `script` prints as JSON when run with `args` (files it reads back with an
/// independent parser, such as the `email` package).
pub fn python_json(script: &str, args: &[impl AsRef<std::ffi::OsStr>]) -> serde_json::Value {
    let out = std::process::Command::new(python())
        .arg("-c")
        .arg(script)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The header of the standard contacts CSV.
pub const HEADER: &str =
    "id,first_name,last_name,email,phone,channel,email_consent,sms_consent,timezone";

/// A child process (a server under test, a browser driver), killed and reaped when dropped.
pub struct Killed(pub std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A port nothing listens on now, for a server a test starts on it, and that nothing else in
/// this test run will be handed.
///
/// Not the kernel's pick (`bind` to port 0): that comes from the ephemeral range, which the
/// kernel also hands to every outgoing connection (a test's HTTP client, `outreach` talking to
/// a gateway), so between this call and the server's own `bind` another test could take it,
/// and the server fails with "address already in use". Ports below the ephemeral range are
/// never handed out by the kernel; a counter keeps two tests of this process from getting the
/// same one, and the process id spreads concurrent test binaries apart.
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let below = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|r| r.split_whitespace().next()?.parse::<u32>().ok())
        .unwrap_or(32768)
        .clamp(2048, 65535);
    let (first, span) = (1024, below - 1024);
    let start = std::process::id() * 7919 % span;
    for _ in 0..span {
        let port = (first + (start + NEXT.fetch_add(1, Ordering::Relaxed)) % span) as u16;
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port below {below} on 127.0.0.1");
}

/// A test server's log (its stderr), kept in a file: printed when the test fails, silent when
/// it passes, so a green run shows nothing but the tests' own lines.
pub struct ServerLog {
    name: String,
    path: PathBuf,
}

impl ServerLog {
    /// A log named `name` in `dir`, and the file a server's stderr goes to.
    pub fn new(dir: &Path, name: &str) -> (ServerLog, std::process::Stdio) {
        let path = dir.join(format!("{name}.log"));
        let file = std::fs::File::create(&path).expect("a server log");
        let log = ServerLog {
            name: name.to_string(),
            path,
        };
        (log, file.into())
    }
}

impl Drop for ServerLog {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let text = std::fs::read_to_string(&self.path).unwrap_or_default();
            eprintln!(
                "--- {} log ({}) ---\n{text}",
                self.name,
                self.path.display()
            );
        }
    }
}

// --- The ledger's store: SQLite, or PostgreSQL for the PostgreSQL pass ------------------------

pub use crate::postgres::postgres_url;

/// Where the suite keeps the ledger: SQLite (`STATE_DIR/ledger.sqlite`, the default) or
/// PostgreSQL (`[sending] state_url`, a database of the throwaway cluster per [`Fixture`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Store {
    Sqlite,
    Postgres,
}

/// The store of this test process: `OUTREACH_TEST_STORE=postgres` runs the suite's parameterised
/// tests (scripts/test names them) on PostgreSQL; unset, empty or `sqlite`, on SQLite.
pub fn store() -> Store {
    static STORE: std::sync::OnceLock<Store> = std::sync::OnceLock::new();
    *STORE.get_or_init(|| match std::env::var("OUTREACH_TEST_STORE").as_deref() {
        Err(std::env::VarError::NotPresent) | Ok("" | "sqlite") => Store::Sqlite,
        Ok("postgres") => Store::Postgres,
        Ok(other) => panic!("OUTREACH_TEST_STORE={other}: sqlite (the default) or postgres"),
        Err(e) => panic!("OUTREACH_TEST_STORE: {e}"),
    })
}

/// Marks a test of what only the SQLite store does (`why`): on PostgreSQL it fails here, at once
/// and saying so. scripts/test's PostgreSQL pass skips each such test by name (`--skip`).
pub fn sqlite_only(why: &str) {
    assert_eq!(
        store(),
        Store::Sqlite,
        "a SQLite-only test ({why}): the PostgreSQL pass of scripts/test skips it"
    );
}

/// `--set sending.state_url=URL` for a campaign that is not a [`Fixture`]'s (the shipped one),
/// with a new database, on PostgreSQL; nothing on SQLite. Call it once per test and pass the
/// same arguments to every run that must share the ledger.
pub fn state_args() -> Vec<String> {
    match store() {
        Store::Sqlite => Vec::new(),
        Store::Postgres => vec![
            "--set".to_string(),
            format!("sending.state_url={}", postgres_url()),
        ],
    }
}

/// Whether `rel` with `contents` is a campaign file: a `.toml` file with a `[campaign]` table.
fn is_campaign_file(rel: &str, contents: &str) -> bool {
    rel.ends_with(".toml") && contents.lines().any(|l| l.trim() == "[campaign]")
}

/// The campaign file `toml` with `state_url = "URL"` as the first key of its `[sending]` table
/// (a table added at the end when it has none). A file that already sets `state_url` (one read
/// back and written again) is left as it is. Only the lines after `[sending]` move down one.
pub fn with_state_url(toml: &str, url: &str) -> String {
    if toml
        .lines()
        .any(|l| l.trim_start().starts_with("state_url"))
    {
        return toml.to_string();
    }
    let key = format!("state_url = \"{url}\"\n");
    let mut at = 0;
    for line in toml.split_inclusive('\n') {
        at += line.len();
        if line.trim() == "[sending]" {
            let sep = if line.ends_with('\n') { "" } else { "\n" };
            return format!("{}{sep}{key}{}", &toml[..at], &toml[at..]);
        }
    }
    let sep = if toml.is_empty() || toml.ends_with('\n') {
        ""
    } else {
        "\n"
    };
    format!("{toml}{sep}\n[sending]\n{key}")
}

/// A ledger read (and rarely written) behind `outreach`'s back, with the same SQL on both
/// stores: what the tests ask is plain SQL (`SELECT`, `COUNT(*)`, `||`) over the tables both
/// stores share.
#[derive(Clone, Debug)]
pub enum Ledger {
    /// The SQLite file.
    Sqlite(PathBuf),
    /// The database's URL.
    Postgres(String),
}

impl Ledger {
    pub fn is_sqlite(&self) -> bool {
        matches!(self, Ledger::Sqlite(_))
    }

    /// Whether `outreach` has made the ledger: the SQLite file exists, or the database holds a
    /// table (the database itself is the test's).
    pub fn exists(&self) -> bool {
        match self {
            Ledger::Sqlite(path) => path.exists(),
            Ledger::Postgres(url) => {
                crate::postgres::cluster()
                    .psql(
                        url,
                        "SELECT count(*) FROM pg_catalog.pg_tables \
                         WHERE schemaname NOT IN ('pg_catalog', 'information_schema')",
                    )
                    .trim()
                    != "0"
            }
        }
    }

    /// The rows `sql` returns, each column as text (an integer in decimal, as both stores print
    /// it), `None` for NULL.
    pub fn query(&self, sql: &str) -> Vec<Vec<Option<String>>> {
        match self {
            Ledger::Sqlite(path) => {
                let conn = rusqlite::Connection::open(path).unwrap();
                conn.busy_timeout(std::time::Duration::from_secs(10))
                    .unwrap();
                let mut stmt = conn.prepare(sql).unwrap_or_else(|e| panic!("{sql}: {e}"));
                let n = stmt.column_count();
                stmt.query_map([], |r| {
                    (0..n)
                        .map(|i| {
                            use rusqlite::types::ValueRef;
                            Ok(match r.get_ref(i)? {
                                ValueRef::Null => None,
                                ValueRef::Integer(v) => Some(v.to_string()),
                                ValueRef::Real(v) => Some(v.to_string()),
                                ValueRef::Text(t) => Some(String::from_utf8_lossy(t).into_owned()),
                                ValueRef::Blob(b) => Some(format!(
                                    "\\x{}",
                                    b.iter().map(|x| format!("{x:02x}")).collect::<String>()
                                )),
                            })
                        })
                        .collect::<rusqlite::Result<Vec<_>>>()
                })
                .unwrap_or_else(|e| panic!("{sql}: {e}"))
                .map(|r| r.unwrap_or_else(|e| panic!("{sql}: {e}")))
                .collect()
            }
            Ledger::Postgres(url) => {
                // COPY's text format: a line a row, tab-separated, \N for NULL, the rest escaped.
                let out = crate::postgres::cluster().psql(url, &format!("COPY ({sql}) TO STDOUT"));
                out.lines()
                    .map(|line| line.split('\t').map(copy_field).collect())
                    .collect()
            }
        }
    }

    /// The rows `sql` returns, each column as text; a NULL fails the test.
    pub fn rows(&self, sql: &str) -> Vec<Vec<String>> {
        self.query(sql)
            .into_iter()
            .map(|row| {
                row.into_iter()
                    .map(|v| v.unwrap_or_else(|| panic!("{sql}: a NULL")))
                    .collect()
            })
            .collect()
    }

    /// The first column of the first row `sql` returns (not NULL).
    pub fn value(&self, sql: &str) -> String {
        let rows = self.rows(sql);
        let row = rows
            .into_iter()
            .next()
            .unwrap_or_else(|| panic!("{sql}: no row"));
        row.into_iter()
            .next()
            .unwrap_or_else(|| panic!("{sql}: no column"))
    }

    /// The integer `sql` returns (`SELECT COUNT(*) …`).
    pub fn count(&self, sql: &str) -> i64 {
        let v = self.value(sql);
        v.parse()
            .unwrap_or_else(|e| panic!("{sql}: {v:?} is not an integer: {e}"))
    }

    /// Runs `sql` (an `INSERT` another process makes), waiting out a SQLite writer.
    pub fn execute(&self, sql: &str) {
        match self {
            Ledger::Sqlite(path) => {
                let conn = rusqlite::Connection::open(path).unwrap();
                conn.busy_timeout(std::time::Duration::from_secs(10))
                    .unwrap();
                conn.execute_batch(sql)
                    .unwrap_or_else(|e| panic!("{sql}: {e}"));
            }
            Ledger::Postgres(url) => {
                crate::postgres::cluster().psql(url, sql);
            }
        }
    }

    /// Deletes the ledger, as if no run had been: the SQLite file (and its `-wal` and `-shm`),
    /// or the database's every table (the database is dropped and made again, empty, under the
    /// same name).
    pub fn remove(&self) {
        match self {
            Ledger::Sqlite(path) => {
                std::fs::remove_file(path).unwrap();
                for ext in ["sqlite-wal", "sqlite-shm"] {
                    let _ = std::fs::remove_file(path.with_extension(ext));
                }
            }
            Ledger::Postgres(url) => {
                let db = url
                    .rsplit('/')
                    .next()
                    .and_then(|d| d.split('?').next())
                    .unwrap();
                let c = crate::postgres::cluster();
                c.psql("postgres", &format!("DROP DATABASE {db} WITH (FORCE)"));
                c.psql("postgres", &format!("CREATE DATABASE {db}"));
            }
        }
    }
}

/// One field of COPY's text format: `\N` is NULL; `\t`, `\n`, `\\`… are unescaped.
fn copy_field(field: &str) -> Option<String> {
    if field == "\\N" {
        return None;
    }
    let mut out = String::with_capacity(field.len());
    let mut chars = field.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('t') => out.push('\t'),
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some('b') => out.push('\u{8}'),
            Some('f') => out.push('\u{c}'),
            Some('v') => out.push('\u{b}'),
            Some(other) => out.push(other),
            None => out.push('\\'),
        }
    }
    Some(out)
}
