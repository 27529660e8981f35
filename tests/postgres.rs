//! A throwaway PostgreSQL cluster for the tests: one per test process, started on first use,
//! stopped and deleted when the process ends (normally, by a panic, or killed), and a fresh empty
//! database from it for each caller of [`postgres_url`].
//!
//! The cluster is Debian's PostgreSQL 15 (`/usr/lib/postgresql/15/bin`), initialised in a
//! temporary directory of its own as an unprivileged user (`nobody` when the tests run as root:
//! `initdb` and `pg_ctl` refuse root; the current user otherwise), with trust authentication on
//! 127.0.0.1 only, a Unix socket in that directory and a port from [`free_port`]. It runs with
//! `fsync=off`: nothing in a test needs the server to survive a crash of the machine (a test kills
//! `outreach`, never the server), and speed does. Benchmarks use a cluster of their own.
//!
//! Rust never drops statics, so the cluster is not stopped by a destructor: a watchdog started
//! before the cluster (`sh`, as the cluster's user) holds the read end of a pipe whose write end
//! only this process has. When the process ends, however it ends, the pipe closes, and the
//! watchdog stops the server (`pg_ctl stop -m immediate`) and deletes the directory. It sits in
//! a process group of its own, so a Ctrl-C to the test run does not stop it before it cleans up.
//!
//! Missing binaries fail the test that asked for a database (never a skip), naming the package.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};

use crate::common::free_port;

/// The PostgreSQL major version the tests are written for (Debian 12's).
const VERSION: &str = "15";

/// The one role of the cluster: its superuser, which the tests connect as (trust, no password).
pub const USER: &str = "outreach";

/// A running cluster.
pub struct Cluster {
    /// Where `initdb`, `pg_ctl` and `psql` are.
    bin: PathBuf,
    /// The temporary directory: `data/`, the socket, `server.log`.
    dir: PathBuf,
    /// The TCP port on 127.0.0.1.
    pub port: u16,
    /// The user it runs as (`None`: ourselves), and the server's options: to start it again.
    user: Option<(u32, u32)>,
    options: String,
    /// The watchdog, kept (never written to) so that its stdin closes only when we exit.
    _watchdog: Child,
}

/// The cluster of this test process, started on the first call.
pub fn cluster() -> &'static Cluster {
    static CLUSTER: OnceLock<Result<Cluster, String>> = OnceLock::new();
    match CLUSTER.get_or_init(start) {
        Ok(c) => c,
        Err(e) => panic!("the test PostgreSQL cluster: {e}"),
    }
}

/// A URL for a new, empty database of this process's cluster, its own for each call:
/// `postgres://outreach@127.0.0.1:PORT/t_N?sslmode=disable` (trust authentication: no
/// password; `sslmode=disable` is what a loopback address defaults to anyway, written out so that
/// the URL is exactly how `outreach` names the database).
pub fn postgres_url() -> String {
    static NEXT: AtomicU32 = AtomicU32::new(1);
    let c = cluster();
    let name = format!("t_{}", NEXT.fetch_add(1, Ordering::Relaxed));
    c.psql("postgres", &format!("CREATE DATABASE {name}"));
    c.url(&name)
}

/// A cluster of the calling test's own, which it may stop and start again (the shared one of
/// [`cluster`] serves every other test at once). Gone when the process ends, like the other.
pub fn private_cluster() -> Cluster {
    start().unwrap_or_else(|e| panic!("a test PostgreSQL cluster: {e}"))
}

impl Cluster {
    fn pg_ctl_start(&self) -> Command {
        let mut pg_ctl = as_cluster_user(&self.bin.join("pg_ctl"), self.user, &self.dir);
        pg_ctl
            .arg("-D")
            .arg(self.dir.join("data"))
            .arg("-l")
            .arg(self.dir.join("server.log"))
            .args(["-w", "-t", "60", "-o", &self.options, "start"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        pg_ctl
    }

    /// Stops the server at once, as a crash or a lost network would (`-m immediate`).
    pub fn stop(&self) {
        let out = as_cluster_user(&self.bin.join("pg_ctl"), self.user, &self.dir)
            .arg("-D")
            .arg(self.dir.join("data"))
            .args(["-m", "immediate", "-w", "stop"])
            .output()
            .unwrap();
        assert!(out.status.success(), "pg_ctl stop: {out:?}");
    }

    /// Starts it again after [`Cluster::stop`], on the same port.
    pub fn start_again(&self) {
        let out = self.pg_ctl_start().output().unwrap();
        assert!(
            out.status.success(),
            "pg_ctl start: {out:?}{}",
            self.log_tail()
        );
    }

    /// A new empty database of this cluster, and its URL.
    pub fn new_database(&self, name: &str) -> String {
        self.psql("postgres", &format!("CREATE DATABASE {name}"));
        self.url(name)
    }

    /// The URL of database `db`.
    pub fn url(&self, db: &str) -> String {
        format!(
            "postgres://{USER}@127.0.0.1:{}/{db}?sslmode=disable",
            self.port
        )
    }

    /// `psql` on database `db` (a name or a URL): runs `sql` and returns what it prints
    /// (unaligned, no headers: `-At`); panics with psql's error and the server's log on failure.
    pub fn psql(&self, db: &str, sql: &str) -> String {
        let url = if db.contains("://") {
            db.to_string()
        } else {
            self.url(db)
        };
        let out = Command::new(self.bin.join("psql"))
            .args(["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d", &url])
            .args(["-c", sql])
            .env_remove("PGPASSWORD")
            .env_remove("PGSERVICE")
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("running {}/psql: {e}", self.bin.display()));
        assert!(
            out.status.success(),
            "psql -d {url} -c {sql:?}: {}{}",
            String::from_utf8_lossy(&out.stderr),
            self.log_tail()
        );
        String::from_utf8(out.stdout).expect("psql prints UTF-8")
    }

    /// The end of the server's log, for a failure message.
    fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(20).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        format!(
            "\n--- the server's log ({}) ---\n{}",
            self.dir.join("server.log").display(),
            tail.join("\n")
        )
    }
}

/// The directory of PostgreSQL's server binaries: `OUTREACH_TEST_PG_BIN` when set, else
/// Debian's `/usr/lib/postgresql/15/bin`, else the newest other `/usr/lib/postgresql/N/bin`.
fn bin_dir() -> Result<PathBuf, String> {
    let has_tools = |d: &Path| {
        ["initdb", "pg_ctl", "psql"]
            .iter()
            .all(|t| d.join(t).is_file())
    };
    let dir = match std::env::var_os("OUTREACH_TEST_PG_BIN") {
        Some(d) => PathBuf::from(d),
        None => {
            let debian = PathBuf::from(format!("/usr/lib/postgresql/{VERSION}/bin"));
            let mut others: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
                .into_iter()
                .flatten()
                .filter_map(|e| {
                    let e = e.ok()?;
                    let v = e.file_name().to_str()?.parse::<u32>().ok()?;
                    Some((v, e.path().join("bin")))
                })
                .filter(|(_, d)| has_tools(d))
                .collect();
            others.sort();
            match others.pop() {
                Some((_, newest)) if !has_tools(&debian) => newest,
                _ => debian,
            }
        }
    };
    if has_tools(&dir) {
        Ok(dir)
    } else {
        Err(format!(
            "{} has no initdb, pg_ctl and psql: the tests need PostgreSQL {VERSION}'s server \
             binaries. Install Debian's postgresql-{VERSION} (apt-get install \
             postgresql-{VERSION}; scripts/test does it when run as root), or set \
             OUTREACH_TEST_PG_BIN to a directory holding initdb, pg_ctl and psql",
            dir.display()
        ))
    }
}

/// The unprivileged user the cluster runs as: `nobody` when we are root, else ourselves.
fn cluster_user() -> Result<Option<(u32, u32)>, String> {
    use std::os::unix::fs::MetadataExt;
    // /proc/self belongs to our effective user.
    let root = std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0);
    if root {
        let passwd = std::fs::read_to_string("/etc/passwd")
            .map_err(|e| format!("reading /etc/passwd: {e}"))?;
        let nobody = passwd
            .lines()
            .map(|l| l.split(':').collect::<Vec<_>>())
            .find(|f| f.len() > 3 && f[0] == "nobody")
            .ok_or("the tests run as root and there is no user nobody to run initdb as")?;
        let id = |s: &str| {
            s.parse::<u32>()
                .map_err(|e| format!("nobody's id {s}: {e}"))
        };
        Ok(Some((id(nobody[2])?, id(nobody[3])?)))
    } else {
        Ok(None)
    }
}

/// A command run as the cluster's user, in `dir`, with nothing of ours on its stdio.
fn as_cluster_user(program: &Path, user: Option<(u32, u32)>, dir: &Path) -> Command {
    use std::os::unix::process::CommandExt;
    let mut c = Command::new(program);
    if let Some((uid, gid)) = user {
        // As root, std also drops the supplementary groups.
        c.uid(uid).gid(gid);
    }
    c.current_dir(dir)
        .env_remove("PGDATA")
        .env_remove("PGPORT")
        .env_remove("PGHOST")
        .stdin(Stdio::null());
    c
}

fn start() -> Result<Cluster, String> {
    let bin = bin_dir()?;
    let user = cluster_user()?;
    // In /tmp: short enough for the socket's path, and reachable by nobody.
    let dir = tempfile::Builder::new()
        .prefix("outreach-pg-")
        .tempdir_in("/tmp")
        .map_err(|e| format!("a temporary directory in /tmp: {e}"))?
        .keep();
    if let Some((uid, gid)) = user {
        std::os::unix::fs::chown(&dir, Some(uid), Some(gid))
            .map_err(|e| format!("chown {}: {e}", dir.display()))?;
    }

    // The watchdog first: whatever happens from here on, the directory goes when we do.
    let mut watchdog = as_cluster_user(Path::new("/bin/sh"), user, &dir);
    watchdog
        .arg("-c")
        .arg(
            "read _ignored; \"$1/pg_ctl\" -D \"$2/data\" -m immediate -w stop >/dev/null 2>&1; \
             rm -rf \"$2\"",
        )
        .arg("outreach-test-postgres-watchdog")
        .arg(&bin)
        .arg(&dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    {
        use std::os::unix::process::CommandExt;
        watchdog.process_group(0);
    }
    let watchdog = watchdog
        .spawn()
        .map_err(|e| format!("starting the watchdog (/bin/sh): {e}"))?;

    let run = |mut c: Command, what: &str| -> Result<(), String> {
        let out = c.output().map_err(|e| format!("running {what}: {e}"))?;
        if out.status.success() {
            Ok(())
        } else {
            let log = std::fs::read_to_string(dir.join("server.log")).unwrap_or_default();
            Err(format!(
                "{what} failed ({}):\n{}{}\n{log}",
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ))
        }
    };

    let data = dir.join("data");
    let mut initdb = as_cluster_user(&bin.join("initdb"), user, &dir);
    initdb
        .arg("-D")
        .arg(&data)
        .args(["-U", USER, "--auth=trust", "-E", "UTF8", "--locale=C.UTF-8"])
        // No fsync of the new files: the cluster lives as long as this process.
        .arg("--no-sync");
    run(initdb, "initdb")?;
    // Trust, on the socket (owner-only directory) and 127.0.0.1: not ::1, not any other address.
    std::fs::write(
        data.join("pg_hba.conf"),
        "local all all trust\nhost all all 127.0.0.1/32 trust\n",
    )
    .map_err(|e| format!("writing pg_hba.conf: {e}"))?;

    let port = free_port();
    let options = format!(
        "-p {port} -k {} -c listen_addresses=127.0.0.1 -c fsync=off \
         -c synchronous_commit=off -c full_page_writes=off -c max_connections=200",
        dir.display()
    );
    let cluster = Cluster {
        bin,
        dir: dir.clone(),
        port,
        user,
        options,
        _watchdog: watchdog,
    };
    run(cluster.pg_ctl_start(), "pg_ctl start")?;
    // Ready means a query goes through, over TCP as the tests connect.
    let one = cluster.psql("postgres", "SELECT 1");
    if one.trim() != "1" {
        return Err(format!("SELECT 1 returned {one:?}"));
    }
    Ok(cluster)
}

#[test]
fn each_url_is_a_new_empty_database_of_one_cluster() {
    let (a, b) = (postgres_url(), postgres_url());
    assert_ne!(a, b);
    let c = cluster();
    let prefix = format!("postgres://{USER}@127.0.0.1:{}/t_", c.port);
    assert!(a.starts_with(&prefix) && b.starts_with(&prefix), "{a} {b}");
    // Each is its own database, with no table of anyone's.
    let tables = "SELECT count(*) FROM pg_catalog.pg_tables \
                  WHERE schemaname NOT IN ('pg_catalog', 'information_schema')";
    for url in [&a, &b] {
        assert_eq!(c.psql(url, tables).trim(), "0", "{url}");
    }
    let name = |url: &str| c.psql(url, "SELECT current_database()").trim().to_string();
    assert_ne!(name(&a), name(&b));
    // What one holds, the other does not.
    c.psql(&a, "CREATE TABLE t (x int); INSERT INTO t VALUES (1)");
    assert_eq!(c.psql(&a, "SELECT x FROM t").trim(), "1");
    assert_eq!(c.psql(&b, tables).trim(), "0");
    // Trust on 127.0.0.1 with no password, and nothing but loopback listens.
    assert_eq!(
        c.psql(&a, "SHOW listen_addresses").trim(),
        "127.0.0.1",
        "listen_addresses"
    );
    assert_eq!(c.psql(&a, "SHOW fsync").trim(), "off");
}

#[test]
fn a_campaign_file_gets_the_state_url_in_its_sending_table_once() {
    use crate::common::{campaign_toml, with_state_url};
    let url = "postgres://outreach@127.0.0.1:5999/t_1?sslmode=disable";
    for extra in [
        "",
        "[sending]\nemail_rate = \"0\"\n",
        "[sending]\nemail_rate = \"0\"\n\n[listen]\nbase_url = \"https://x.example\"\n",
        "[listen]\nbase_url = \"https://x.example\"",
    ] {
        let toml = campaign_toml(extra);
        let with = with_state_url(&toml, url);
        let t: toml::Table = with.parse().unwrap_or_else(|e| panic!("{e}\n{with}"));
        assert_eq!(t["sending"]["state_url"].as_str(), Some(url), "{with}");
        if extra.contains("email_rate") {
            assert_eq!(t["sending"]["email_rate"].as_str(), Some("0"), "{with}");
        }
        // Read back and written again: unchanged.
        assert_eq!(with_state_url(&with, url), with);
        // Only the lines after [sending] move.
        let at = toml.find("[sending]").unwrap_or(toml.len());
        assert_eq!(&with[..at], &toml[..at]);
    }
}

#[test]
fn a_ledger_reads_the_same_from_sqlite_and_postgresql() {
    use crate::common::Ledger;
    let dir = tempfile::tempdir().unwrap();
    let url = postgres_url();
    let ledgers = [
        Ledger::Sqlite(dir.path().join("ledger.sqlite")),
        Ledger::Postgres(url),
    ];
    let mut seen = Vec::new();
    for db in &ledgers {
        // Not made yet: no file, or a database without a table.
        assert!(!db.exists());
        db.execute(
            "CREATE TABLE messages (campaign TEXT NOT NULL, address TEXT NOT NULL, \
             attempts INTEGER NOT NULL, last_error TEXT)",
        );
        assert!(db.exists());
        db.execute(
            "INSERT INTO messages VALUES ('c', 'ann@example.com', 3, NULL), \
             ('c', 'bo@example.com', 1, 'tab\there, a newline\nand a \\ backslash')",
        );
        let rows = db.query("SELECT * FROM messages ORDER BY address");
        assert_eq!(db.count("SELECT COUNT(*) FROM messages"), 2);
        assert_eq!(
            db.value("SELECT campaign || address FROM messages ORDER BY address"),
            "cann@example.com"
        );
        assert_eq!(
            db.rows("SELECT address, attempts FROM messages ORDER BY address"),
            [["ann@example.com", "3"], ["bo@example.com", "1"]]
        );
        seen.push(rows);
        db.remove();
        assert!(!db.exists());
    }
    assert_eq!(seen[0], seen[1]);
    assert_eq!(
        seen[0][1][3].as_deref(),
        Some("tab\there, a newline\nand a \\ backslash")
    );
    assert_eq!(seen[0][0][3], None);
}
