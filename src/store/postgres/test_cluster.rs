//! A throwaway PostgreSQL 15 cluster for `postgres.rs`'s tests ([`Cluster`]): its own
//! directory, a free port on 127.0.0.1, TLS or a password when asked, stopped and removed when
//! dropped or when the test process dies.

use std::path::Path;
use std::process::Command;

use super::*;

const BIN: &str = "/usr/lib/postgresql/15/bin";

#[derive(Default)]
pub(super) struct Options {
    pub(super) tls: bool,
    pub(super) password: Option<&'static str>,
}

/// A PostgreSQL cluster of its own in a temporary directory, listening on 127.0.0.1 and a
/// socket in that directory, stopped (immediately) when dropped. As root, it runs as
/// `nobody` (initdb refuses root).
pub(super) struct Cluster {
    pub(super) dir: tempfile::TempDir,
    pub(super) port: u16,
    as_nobody: bool,
    /// A shell waiting on its standard input, which stops the server and removes the
    /// directory once the input closes: when the cluster is dropped, and also when the test
    /// process is killed and no `Drop` runs.
    watchdog: Option<std::process::Child>,
}

/// The watchdog's script: `$1` the binaries, `$2` the cluster's directory.
const WATCHDOG: &str =
    r#"read _; "$1/pg_ctl" -D "$2/data" -m immediate -w stop >/dev/null 2>&1; rm -rf "$2""#;

pub(super) fn free_port() -> u16 {
    let socket = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    socket.local_addr().unwrap().port()
}

fn run(command: &mut Command, what: &str) {
    let out = command
        .output()
        .unwrap_or_else(|e| panic!("{what}: cannot start {command:?}: {e}"));
    assert!(
        out.status.success(),
        "{what} failed ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn id_of(flag: &str) -> u32 {
    let out = Command::new("id").args([flag, "nobody"]).output().unwrap();
    String::from_utf8(out.stdout)
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

impl Cluster {
    pub(super) fn start(options: &Options) -> Cluster {
        assert!(
            Path::new(BIN).join("initdb").exists(),
            "PostgreSQL 15 is not installed ({BIN}/initdb): apt-get install postgresql-15"
        );
        let dir = tempfile::Builder::new()
            .prefix("outreach-pg-")
            .tempdir()
            .unwrap();
        use std::os::unix::fs::MetadataExt;
        let as_nobody = std::fs::metadata(dir.path()).unwrap().uid() == 0;
        let mut cluster = Cluster {
            dir,
            port: 0,
            as_nobody,
            watchdog: None,
        };
        let root = cluster.dir.path().to_owned();
        let mut initdb = cluster.command("initdb");
        initdb.arg("-D").arg(root.join("data"));
        initdb.args(["-U", "postgres", "-E", "UTF8", "--locale=C", "--no-sync"]);
        initdb.arg("--auth-local=trust");
        match options.password {
            Some(password) => {
                std::fs::write(root.join("pw"), password).unwrap();
                initdb.arg("--auth-host=scram-sha-256");
                initdb.arg(format!("--pwfile={}", root.join("pw").display()));
            }
            None => {
                initdb.arg("--auth-host=trust");
            }
        }
        if options.tls {
            make_certificates(&root.join("tls"));
        }
        cluster.give_to_nobody(&root);
        let watchdog = cluster
            .command("sh")
            .args(["-c", WATCHDOG, "watchdog", BIN])
            .arg(&root)
            .stdin(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        cluster.watchdog = Some(watchdog);
        run(&mut initdb, "initdb");
        let mut server_options = format!(
            "-k {} -c listen_addresses=127.0.0.1 -c fsync=off",
            root.display()
        );
        if options.tls {
            let tls = root.join("tls");
            server_options.push_str(&format!(
                " -c ssl=on -c ssl_cert_file={} -c ssl_key_file={}",
                tls.join("server.crt").display(),
                tls.join("server.key").display()
            ));
        }
        // Another test may take the free port between our look and the server's bind.
        for attempt in 1.. {
            cluster.port = free_port();
            let out = cluster
                .command("pg_ctl")
                .arg("-D")
                .arg(root.join("data"))
                .arg("-l")
                .arg(root.join("log"))
                .args(["-w", "-o"])
                .arg(format!("{server_options} -p {}", cluster.port))
                .arg("start")
                .output()
                .unwrap();
            if out.status.success() {
                break;
            }
            let log = std::fs::read_to_string(root.join("log")).unwrap_or_default();
            assert!(attempt < 3, "pg_ctl start failed:\n{log}");
        }
        cluster
    }

    /// `program` (PostgreSQL's, or `sh`) as the server's user.
    fn command(&self, program: &str) -> Command {
        let program = match program {
            "sh" => Path::new("/bin/sh").to_owned(),
            _ => Path::new(BIN).join(program),
        };
        if self.as_nobody {
            let mut c = Command::new("runuser");
            c.args(["-u", "nobody", "--"]).arg(program);
            c
        } else {
            Command::new(program)
        }
    }

    fn give_to_nobody(&self, path: &Path) {
        fn chown_tree(path: &Path, uid: u32, gid: u32) {
            std::os::unix::fs::chown(path, Some(uid), Some(gid)).unwrap();
            if path.is_dir() {
                for entry in std::fs::read_dir(path).unwrap() {
                    chown_tree(&entry.unwrap().path(), uid, gid);
                }
            }
        }
        if self.as_nobody {
            chown_tree(path, id_of("-u"), id_of("-g"));
        }
    }

    /// `postgres://postgres@HOST:PORT/postgres` with `query` appended.
    pub(super) fn url(&self, host: &str, query: &str) -> String {
        format!("postgres://postgres@{host}:{}/postgres?{query}", self.port)
    }

    pub(super) fn connect(&self, query: &str) -> Pg {
        let target = parsed(&self.url("127.0.0.1", query));
        Pg::connect(&target, None).unwrap_or_else(|e| panic!("{e}"))
    }

    pub(super) fn tls_file(&self, name: &str) -> String {
        self.dir.path().join("tls").join(name).display().to_string()
    }

    pub(super) fn stop(&self) {
        let _ = self
            .command("pg_ctl")
            .arg("-D")
            .arg(self.dir.path().join("data"))
            .args(["-m", "immediate", "-w", "stop"])
            .output();
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.stop();
        if let Some(mut watchdog) = self.watchdog.take() {
            drop(watchdog.stdin.take());
            let _ = watchdog.wait();
        }
    }
}

/// A CA and a server certificate it signed for 127.0.0.1 only (so `localhost` is a wrong
/// name for it), and another CA that signed nothing, made with the openssl CLI.
fn make_certificates(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    let openssl = |args: &str| {
        let mut c = Command::new("openssl");
        c.current_dir(dir).args(args.split_whitespace());
        run(&mut c, "openssl");
    };
    let new_key = "-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes";
    for ca in ["ca", "other-ca"] {
        openssl(&format!(
            "req -x509 {new_key} -keyout {ca}.key -out {ca}.crt -days 2 \
             -subj /CN=outreach-test-{ca} -addext basicConstraints=critical,CA:TRUE \
             -addext keyUsage=critical,keyCertSign,cRLSign"
        ));
    }
    openssl(&format!(
        "req {new_key} -keyout server.key -out server.csr -subj /CN=127.0.0.1"
    ));
    std::fs::write(
        dir.join("server.ext"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n\
         keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    openssl(
        "x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 \
         -extfile server.ext -out server.crt",
    );
    use std::os::unix::fs::PermissionsExt;
    let key = dir.join("server.key");
    std::fs::set_permissions(key, std::fs::Permissions::from_mode(0o600)).unwrap();
}

pub(super) fn one_int(pg: &Pg, sql: &str, args: &[Arg<'_>]) -> Result<Option<i64>, String> {
    let row = pg
        .query_opt(sql, args)
        .map_err(|e| e.to_string())?
        .expect("a row");
    int(&row, 0)
}

/// A `state_url` as a campaign would give it.
pub(super) fn parsed(url: &str) -> Target {
    StateUrl::parse(url, None, std::path::Path::new(".")).unwrap_or_else(|e| panic!("{url}: {e}"))
}
