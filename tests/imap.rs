//! `outreach bounces` over IMAP, against a real Dovecot (Debian's `dovecot-imapd`, which
//! scripts/test installs): each test starts its own server on 127.0.0.1 with a throwaway
//! configuration, certificate and Maildir (the returned mail of `bounces_cmd.rs` written into
//! it before it starts), and checks the same effects as the Maildir test, then what became of
//! the messages on the server (flagged, moved, deleted only when asked), a rerun, a run killed
//! mid-way, and each way the connection can be refused. A missing Dovecot fails these tests; it
//! does not skip them.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::bounces_cmd::{self, SET_VERP, bounces, check_effects, check_unchanged, rows};
use crate::common::{self, Fixture};

const USER: &str = "clinic";
const PASSWORD: &str = "correct-horse-battery-staple";
const DOVECOT: &str = "/usr/sbin/dovecot";

/// A Dovecot serving one user's Maildir over imaps and IMAP with STARTTLS, killed when dropped.
struct Dovecot {
    _child: common::Killed,
    _log: common::ServerLog,
    /// The server's directory: configuration, certificates, the user's home.
    dir: tempfile::TempDir,
    /// Implicit TLS.
    imaps: u16,
    /// STARTTLS.
    imap: u16,
    /// The CA that signed the server's certificate.
    ca: PathBuf,
}

impl Dovecot {
    /// Starts a server whose INBOX holds `messages`, and an empty `Processed` folder; `conf`
    /// is added to its configuration.
    fn start(messages: &[String], conf: &str) -> Dovecot {
        assert!(
            Path::new(DOVECOT).exists(),
            "{DOVECOT} is missing: install dovecot-imapd (scripts/test does)"
        );
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        // Dovecot's login and mail processes run as other users when the test runs as root:
        // they must reach the directory.
        std::fs::set_permissions(root, std::fs::Permissions::from_mode(0o755)).unwrap();
        let (ca, cert, key) = crate::smtp::certificates(root);
        std::fs::write(root.join("passwd"), format!("{USER}:{{PLAIN}}{PASSWORD}\n")).unwrap();
        let maildir = root.join("home/Maildir");
        for folder in [maildir.clone(), maildir.join(".Processed")] {
            for sub in ["new", "cur", "tmp"] {
                std::fs::create_dir_all(folder.join(sub)).unwrap();
            }
        }
        for (i, m) in messages.iter().enumerate() {
            std::fs::write(maildir.join(format!("new/1796573642.M{i}P1.test")), m).unwrap();
        }
        let me = std::fs::metadata(root).unwrap();
        let users = if me.uid() == 0 {
            // Dovecot refuses to give mail to root: the Maildir is nobody's.
            chown_tree(&root.join("home"), "nobody:nogroup");
            "default_internal_user = dovecot\ndefault_login_user = dovenull\n\
             userdb {\n  driver = static\n  args = uid=nobody gid=nogroup home=HOME\n}\n"
                .to_string()
        } else {
            let (name, group) = (id("-un"), id("-gn"));
            format!(
                "default_internal_user = {name}\ndefault_internal_group = {group}\n\
                 default_login_user = {name}\n\
                 userdb {{\n  driver = static\n  args = uid={} gid={} home=HOME\n}}\n",
                me.uid(),
                me.gid()
            )
        };
        let (imaps, imap) = (common::free_port(), common::free_port());
        let conf = format!(
            "protocols = imap\n\
             listen = 127.0.0.1\n\
             base_dir = {root}/run\n\
             state_dir = {root}/state\n\
             log_path = /dev/stderr\n\
             ssl = required\n\
             ssl_cert = <{cert}\n\
             ssl_key = <{key}\n\
             auth_mechanisms = plain\n\
             mail_location = maildir:~/Maildir\n\
             passdb {{\n  driver = passwd-file\n  args = scheme=PLAIN username_format=%u {root}/passwd\n}}\n\
             {users}\
             service imap-login {{\n  chroot =\n  inet_listener imap {{\n    port = {imap}\n  }}\n  \
             inet_listener imaps {{\n    port = {imaps}\n    ssl = yes\n  }}\n}}\n\
             service anvil {{\n  chroot =\n}}\n{conf}",
            root = root.display(),
            cert = cert.display(),
            key = key.display(),
            users = users.replace("HOME", &root.join("home").display().to_string()),
        );
        std::fs::write(root.join("dovecot.conf"), conf).unwrap();
        let (log, stderr) = common::ServerLog::new(root, "dovecot");
        let child = Command::new(DOVECOT)
            .args(["-F", "-c"])
            .arg(root.join("dovecot.conf"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .expect("dovecot");
        let mut child = common::Killed(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", imaps)).is_err() {
            if let Some(status) = child.0.try_wait().unwrap() {
                panic!("dovecot exited ({status}) before it listened: see its log");
            }
            assert!(
                Instant::now() < deadline,
                "dovecot does not listen on {imaps}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Dovecot {
            _child: child,
            _log: log,
            dir,
            imaps,
            imap,
            ca,
        }
    }

    /// The flags of every message of `folder` ("" for INBOX), as Dovecot's Maildir keeps them
    /// in file names: `S` for `\Seen`, `T` for `\Deleted`, a lowercase letter for a keyword.
    fn flags(&self, folder: &str) -> Vec<String> {
        let dir = self.maildir(folder);
        let mut flags = Vec::new();
        for sub in ["new", "cur"] {
            for entry in std::fs::read_dir(dir.join(sub)).unwrap() {
                let name = entry.unwrap().file_name().to_string_lossy().into_owned();
                flags.push(name.split_once(":2,").map_or("", |(_, f)| f).to_string());
            }
        }
        flags
    }

    /// The letter Dovecot gives the processed keyword in file names.
    fn processed_letter(&self) -> char {
        let keywords = std::fs::read_to_string(self.maildir("").join("dovecot-keywords"))
            .expect("dovecot-keywords: no message was flagged with a keyword");
        let line = keywords
            .lines()
            .find(|l| l.ends_with(" $OutreachProcessed"))
            .unwrap_or_else(|| panic!("no $OutreachProcessed in {keywords}"));
        let n: u8 = line.split(' ').next().unwrap().parse().unwrap();
        (b'a' + n) as char
    }

    /// How many messages of INBOX carry the processed keyword and `\Seen`.
    fn processed(&self) -> usize {
        if !self.maildir("").join("dovecot-keywords").exists() {
            return 0;
        }
        let letter = self.processed_letter();
        self.flags("")
            .iter()
            .filter(|f| f.contains('S') && f.contains(letter))
            .count()
    }

    fn maildir(&self, folder: &str) -> PathBuf {
        self.dir.path().join("home/Maildir").join(folder)
    }
}

fn chown_tree(path: &Path, owner: &str) {
    let status = Command::new("chown")
        .args(["-R", owner])
        .arg(path)
        .status()
        .unwrap();
    assert!(status.success(), "chown -R {owner}");
}

/// `id FLAG`: the name of this process's user (`-un`) or group (`-gn`).
fn id(flag: &str) -> String {
    let out = Command::new("id").arg(flag).output().unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// The `[feedback]` line of a campaign reading `server` over implicit TLS, trusting its CA;
/// `extra` adds keys to the inline table.
fn imap_feedback(server: &Dovecot, extra: &str) -> String {
    format!(
        "imap = {{ host = \"127.0.0.1\", port = {}, user = \"{USER}\", \
         password_file = \"imap.secret\", ca_file = \"{}\", timeout = \"10s\"{extra} }}",
        server.imaps,
        server.ca.display()
    )
}

/// The bounce fixture of `bounces_cmd.rs` (its emails sent), and a server holding the mail
/// `mail` makes for them, which the fixture reads (`extra`: more `[feedback.imap]` keys).
fn with_mail(mail: impl FnOnce(&Fixture) -> Vec<String>, extra: &str) -> (Fixture, Dovecot) {
    with_mail_on("", mail, extra)
}

/// [`with_mail`] on a server with `conf` added to its configuration.
fn with_mail_on(
    conf: &str,
    mail: impl FnOnce(&Fixture) -> Vec<String>,
    extra: &str,
) -> (Fixture, Dovecot) {
    let f = bounces_cmd::fixture(UNSET);
    let server = Dovecot::start(&mail(&f), conf);
    let toml = f
        .read("campaign.toml")
        .replace(UNSET, &imap_feedback(&server, extra));
    f.write("campaign.toml", &toml);
    f.write("imap.secret", &format!("{PASSWORD}\n"));
    (f, server)
}

/// The `[feedback]` mailbox of a fixture before it is given a server.
const UNSET: &str = "maildir = \"unset\"";

#[test]
fn an_imap_folder_gives_the_maildir_result_and_flags_what_was_read() {
    let (f, server) = with_mail(bounces_cmd::corpus, "");
    check_effects(&f);
    let letter = server.processed_letter();
    let flags = server.flags("");
    assert_eq!(flags.len(), 8, "nothing is deleted or moved: {flags:?}");
    for fl in &flags {
        assert!(fl.contains('S') && fl.contains(letter), "{flags:?}");
        assert!(!fl.contains('T'), "flagged \\Deleted: {flags:?}");
    }
    // A rerun lists no flagged message, and changes nothing.
    let (code, v) = bounces(&f);
    assert_eq!(code, 0, "{v}");
    assert_eq!(
        (v["read"].as_u64(), v["already_read"].as_u64()),
        (Some(0), Some(0))
    );
    let name = v["mailbox"].as_str().unwrap();
    assert!(
        name.starts_with(&format!(
            "imap://clinic@127.0.0.1:{}/INBOX;UIDVALIDITY=",
            server.imaps
        )),
        "{name}"
    );
    check_unchanged(&f);
}

#[test]
fn move_to_moves_read_mail_over_starttls_and_deletes_nothing() {
    let (f, server) = with_mail(
        bounces_cmd::corpus,
        ", move_to = \"Processed\", tls = \"starttls\"",
    );
    let toml = f.read("campaign.toml").replace(
        &format!("port = {}", server.imaps),
        &format!("port = {}", server.imap),
    );
    f.write("campaign.toml", &toml);
    check_effects(&f);
    assert_eq!(server.flags(""), Vec::<String>::new(), "INBOX is emptied");
    let moved = server.flags(".Processed");
    assert_eq!(moved.len(), 8, "{moved:?}");
    assert!(moved.iter().all(|f| !f.contains('T')), "{moved:?}");
    let (code, v) = bounces(&f);
    assert_eq!(code, 0, "{v}");
    assert_eq!(
        (v["read"].as_u64(), v["already_read"].as_u64()),
        (Some(0), Some(0))
    );
    check_unchanged(&f);
}

#[test]
fn without_move_a_message_is_copied_then_expunged_by_its_uid_or_left_deleted() {
    // Dovecot announcing neither MOVE nor (the second time) UIDPLUS, which UID EXPUNGE needs:
    // without it the copied messages stay in INBOX flagged \Deleted, and are not copied again.
    for (capability, left) in [("IMAP4rev1 UIDPLUS", 0), ("IMAP4rev1", 8)] {
        let (f, server) = with_mail_on(
            &format!("imap_capability = {capability}\n"),
            bounces_cmd::corpus,
            ", move_to = \"Processed\"",
        );
        check_effects(&f);
        let inbox = server.flags("");
        assert_eq!(inbox.len(), left, "{capability}: {inbox:?}");
        assert!(inbox.iter().all(|f| f.contains('T')), "{inbox:?}");
        let (code, v) = bounces(&f);
        assert_eq!((code, v["read"].as_u64()), (0, Some(0)), "{v}");
        let copied = server.flags(".Processed");
        assert_eq!(copied.len(), 8, "{capability}: {copied:?}");
        assert!(copied.iter().all(|f| !f.contains('T')), "{copied:?}");
    }
}

#[test]
fn delete_true_deletes_what_was_recorded() {
    let (f, server) = with_mail(bounces_cmd::corpus, ", delete = true");
    check_effects(&f);
    assert_eq!(server.flags(""), Vec::<String>::new());
    assert_eq!(server.flags(".Processed"), Vec::<String>::new());
    let (code, v) = bounces(&f);
    assert_eq!((code, v["read"].as_u64()), (0, Some(0)), "{v}");
    check_unchanged(&f);
}

/// Microsoft 365 and Exchange keep no keywords of a client's own: their `PERMANENTFLAGS` list no
/// `\*`, and they refuse a `STORE` of one, and a `KEYWORD` search, outright, which would fail
/// every run. Dovecot with the ACL plugin and no `w` right plays such a folder
/// (`PERMANENTFLAGS (\Deleted \Seen)`; it drops a keyword silently instead of refusing it, so
/// its raw log of what the client said is what shows the client never asked for one).
#[test]
fn a_folder_that_keeps_no_keywords_of_ours_is_never_asked_for_one() {
    let conf = "mail_plugins = $mail_plugins acl\n\
                protocol imap {\n  mail_plugins = $mail_plugins imap_acl\n  rawlog_dir = %h/rawlog\n}\n\
                plugin {\n  acl = vfile\n}\n";
    let (f, server) = with_mail_on(conf, bounces_cmd::corpus, "");
    // The owner may read, mark seen, delete and expunge, but not write other flags.
    std::fs::write(server.maildir("").join("dovecot-acl"), "owner lrstiekxa\n").unwrap();
    let rawlog = server.dir.path().join("home/rawlog");
    std::fs::create_dir(&rawlog).unwrap();
    if std::fs::metadata(server.dir.path()).unwrap().uid() == 0 {
        chown_tree(&rawlog, "nobody:nogroup");
    }
    check_effects(&f);
    let flags = server.flags("");
    assert_eq!(flags.len(), 8, "nothing is deleted or moved: {flags:?}");
    for fl in &flags {
        assert_eq!(fl, "S", "\\Seen only: {flags:?}");
    }
    // A rerun lists every message again, and the ledger passes over all of them.
    let (code, v) = bounces(&f);
    assert_eq!(code, 0, "{v}");
    assert_eq!(
        (v["read"].as_u64(), v["already_read"].as_u64()),
        (Some(0), Some(8)),
        "{v}"
    );
    check_unchanged(&f);
    let mut said = String::new();
    for entry in std::fs::read_dir(&rawlog).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "in") {
            said.push_str(&std::fs::read_to_string(&path).unwrap());
        }
    }
    assert!(
        said.contains("UID STORE"),
        "the raw log holds no STORE: {said}"
    );
    assert!(
        !said.to_ascii_lowercase().contains("outreachprocessed"),
        "the keyword was asked for: {said}"
    );
}

/// Folders named in another script than ASCII (`Rückläufer`, a German clinic's returned mail)
/// are asked for as IMAP names them (modified UTF-7), the folder read and the one moved to;
/// Dovecot keeps them so on disk too (`.R&APw-ckl&AOQ-ufer`).
#[test]
fn folders_named_beyond_ascii_are_read_and_moved_to() {
    let (f, server) = with_mail(
        bounces_cmd::corpus,
        ", folder = \"Rückläufer\", move_to = \"Erledigte Rückläufer\"",
    );
    let (from, to) = (
        server.maildir(".R&APw-ckl&AOQ-ufer"),
        server.maildir(".Erledigte R&APw-ckl&AOQ-ufer"),
    );
    for folder in [&from, &to] {
        for sub in ["new", "cur", "tmp"] {
            std::fs::create_dir_all(folder.join(sub)).unwrap();
        }
    }
    // The mail the server was given, from INBOX to the folder read.
    for entry in std::fs::read_dir(server.maildir("new")).unwrap() {
        let path = entry.unwrap().path();
        std::fs::rename(&path, from.join("new").join(path.file_name().unwrap())).unwrap();
    }
    if std::fs::metadata(server.dir.path()).unwrap().uid() == 0 {
        chown_tree(&server.dir.path().join("home"), "nobody:nogroup");
    }
    check_effects(&f);
    assert_eq!(server.flags(".R&APw-ckl&AOQ-ufer"), Vec::<String>::new());
    assert_eq!(server.flags(".Erledigte R&APw-ckl&AOQ-ufer").len(), 8);
    assert_eq!(server.flags("").len(), 0, "nothing in INBOX");
    let (code, v) = bounces(&f);
    assert_eq!((code, v["read"].as_u64()), (0, Some(0)), "{v}");
    let name = v["mailbox"].as_str().unwrap();
    assert!(
        name.starts_with(&format!(
            "imap://clinic@127.0.0.1:{}/R%C3%BCckl%C3%A4ufer;UIDVALIDITY=",
            server.imaps
        )),
        "{name}"
    );
}

#[test]
fn an_imap_run_killed_mid_way_loses_and_doubles_nothing() {
    const N: u64 = 1000;
    let (f, server) = with_mail(
        |f| vec![bounces_cmd::corpus(f).swap_remove(2); N as usize],
        "",
    );
    let mut child = Command::new(assert_cmd::cargo::cargo_bin("outreach"))
        .current_dir(f.dir.path())
        .env("OUTREACH_NOW", common::MIDDAY)
        .env_remove("RUST_LOG")
        .args(["bounces", "campaign.toml", "-q", "--set", SET_VERP])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Killed once it has recorded some messages, long before it records them all.
    let deadline = Instant::now() + Duration::from_secs(30);
    while !f.path(".outreach/ledger.sqlite").exists()
        || rows(&f, "SELECT COUNT(*) FROM processed_mail") < 20
    {
        assert!(Instant::now() < deadline, "the run recorded nothing");
        std::thread::sleep(Duration::from_millis(10));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let part = rows(&f, "SELECT COUNT(*) FROM processed_mail");
    assert!(part < N, "the run finished before it was killed");
    assert_eq!(rows(&f, "SELECT COUNT(*) FROM bounces"), part);
    // Flagged only once recorded: at most the batch in hand (256 messages, one ledger
    // transaction) is recorded and not flagged yet.
    let flagged = server.processed() as u64;
    assert!(
        flagged <= part && part - flagged <= 256,
        "{flagged} flagged, {part} recorded"
    );
    let (code, v) = bounces(&f);
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["read"].as_u64().unwrap() + part, N, "{v}");
    assert_eq!(rows(&f, "SELECT COUNT(*) FROM processed_mail"), N);
    assert_eq!(rows(&f, "SELECT COUNT(*) FROM bounces"), N);
    assert_eq!(server.processed() as u64, N, "every message ends flagged");
    assert_eq!(bounces_cmd::suppressed(&f), ["c***@example.com"]);
}

/// `outreach bounces` with the fixture's campaign: (exit code, stderr).
fn refused(f: &Fixture) -> (i32, String) {
    let (code, out, err) = f.run(&["bounces", "campaign.toml", "--set", SET_VERP]);
    assert!(out.is_empty(), "{out}");
    (code, err)
}

#[test]
fn a_wrong_password_is_refused_without_showing_it() {
    let (f, server) = with_mail(|_| Vec::new(), "");
    f.write("imap.secret", "not-the-password-xyzzy\n");
    let (code, err) = refused(&f);
    assert_eq!(code, 2, "{err}");
    assert_eq!(
        err,
        format!(
            "error: IMAP server 127.0.0.1:{}: login as clinic refused: [AUTHENTICATIONFAILED] \
             Authentication failed.\n",
            server.imaps
        )
    );
    assert!(!err.contains("xyzzy") && !err.contains(PASSWORD), "{err}");
}

#[test]
fn an_untrusted_certificate_is_refused() {
    let (f, server) = with_mail(|_| Vec::new(), "");
    let toml = f
        .read("campaign.toml")
        .replace(&format!(", ca_file = \"{}\"", server.ca.display()), "");
    f.write("campaign.toml", &toml);
    let (code, err) = refused(&f);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("TLS failed") && err.contains("certificate") && err.contains("ca_file"),
        "{err}"
    );
}

#[test]
fn a_missing_folder_and_a_closed_port_are_one_line_each() {
    let (f, server) = with_mail(|_| Vec::new(), ", folder = \"Bounces\"");
    let (code, err) = refused(&f);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("folder \"Bounces\" cannot be read: Mailbox doesn't exist: Bounces"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");

    let closed = common::free_port();
    let toml = f.read("campaign.toml").replace(
        &format!("port = {}", server.imaps),
        &format!("port = {closed}"),
    );
    f.write("campaign.toml", &toml);
    let (code, err) = refused(&f);
    assert_eq!(code, 2, "{err}");
    assert_eq!(
        err,
        format!(
            "error: IMAP server 127.0.0.1:{closed}: cannot connect: Connection refused (os error \
             111)\n"
        )
    );
}

#[test]
fn imap_settings_are_checked_key_by_key() {
    let f = bounces_cmd::fixture(UNSET);
    let cases = [
        (
            "imap = { host = \"h\", user = \"u\" }",
            "`feedback.imap.password_env`: required key is missing (or feedback.imap.password_file)",
        ),
        (
            "imap = { host = \"h\", user = \"u\", password_env = \"P\", tls = \"none\" }",
            "`feedback.imap.tls`: unknown mode \"none\"",
        ),
        (
            "imap = { host = \"h\", user = \"u\", password_env = \"P\", move_to = \"A\", delete = true }",
            "`feedback.imap.delete`: give move_to or delete = true, not both",
        ),
        (
            "maildir = \"m\"\nimap = { host = \"h\", user = \"u\", password_env = \"P\" }",
            "`feedback.imap`: give one of maildir, mbox or [feedback.imap]",
        ),
    ];
    let campaign = f.read("campaign.toml");
    for (feedback, message) in cases {
        f.write("campaign.toml", &campaign.replace(UNSET, feedback));
        let (code, err) = refused(&f);
        assert_eq!(code, 2, "{feedback}: {err}");
        assert!(err.contains(message), "{feedback}: {err}");
    }
}
