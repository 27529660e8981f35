//! The `smtp` transport against real servers on 127.0.0.1: aiosmtpd (content, TLS, AUTH), storing
//! every message exactly as received, and Postfix's `smtp-sink` with its fault injection. Every
//! message received is parsed back by Python's `email` package; DKIM signatures are verified by
//! dkimpy. `scripts/test` installs all of it; a missing server fails these tests.

use crate::common;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::{Fixture, HEADER, ServerLog, python, python_json, repo, run};

/// Contacts with names that need encoding and escaping.
fn contacts() -> String {
    format!(
        "{HEADER}\n\
         P1,María,González,maria@example.com,,email,yes,,\n\
         P2,Tom,\"O'Neil <b>&</b>\",tom@example.com,,email,yes,,\n\
         P3,Ann,Lee,ann@example.com,,email,yes,,\n\
         P4,Bo,Chen,bo@example.com,,email,yes,,\n\
         P5,Cy,Diaz,cy@example.com,,email,no,,\n"
    )
}

fn wait_for_port(port: u16, child: &mut Child) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        if let Some(status) = child.try_wait().unwrap() {
            panic!("the server exited early: {status}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("nothing listens on 127.0.0.1:{port}");
}

/// A server process, killed when dropped.
pub(crate) struct Server {
    child: Child,
    pub(crate) port: u16,
    /// Where it stores what it receives.
    store: PathBuf,
    /// Its stderr, shown if the test fails.
    _log: ServerLog,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    /// aiosmtpd with `args` (see tests/servers/smtpd.py).
    pub(crate) fn smtpd(f: &Fixture, args: &[&str]) -> Server {
        let port = common::free_port();
        let store = f.path("maildir");
        let (log, stderr) = ServerLog::new(&f.path(""), "aiosmtpd");
        let mut child = Command::new(python())
            .arg(repo().join("tests/servers/smtpd.py"))
            .args(["--port", &port.to_string(), "--maildir"])
            .arg(&store)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("starting aiosmtpd");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(line.trim(), "ready", "aiosmtpd did not start");
        wait_for_port(port, &mut child);
        Server {
            child,
            port,
            store,
            _log: log,
        }
    }

    /// Postfix's smtp-sink with fault options (`-r rcpt`, `-f data`, `-q .`, …), counting what
    /// it receives.
    fn sink(f: &Fixture, faults: &[&str]) -> Server {
        let bin = ["/usr/sbin/smtp-sink", "/usr/bin/smtp-sink"]
            .into_iter()
            .find(|p| Path::new(p).exists())
            .expect("smtp-sink is missing: run scripts/test, which installs Debian's postfix");
        let port = common::free_port();
        let store = f.path("sink");
        std::fs::create_dir_all(&store).unwrap();
        let mut cmd = Command::new(bin);
        if nix_is_root() {
            cmd.args(["-u", "postfix"]);
        }
        // -c: running counters on stdout, "mesg=N" counting each final dot received.
        let counters = std::fs::File::create(store.join("counters")).unwrap();
        let (log, stderr) = ServerLog::new(&store, "smtp-sink");
        let mut child = cmd
            .arg("-c")
            .args(faults)
            .arg(format!("127.0.0.1:{port}"))
            .arg("64")
            .stdout(counters)
            .stderr(stderr)
            .spawn()
            .expect("starting smtp-sink");
        wait_for_port(port, &mut child);
        Server {
            child,
            port,
            store,
            _log: log,
        }
    }

    /// How many messages smtp-sink received up to the final dot.
    fn received(&self) -> usize {
        std::fs::read_to_string(self.store.join("counters"))
            .unwrap()
            .rsplit("mesg=")
            .next()
            .and_then(|n| n.split(|c: char| !c.is_ascii_digit()).next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    }

    /// The messages aiosmtpd stored so far.
    pub(crate) fn messages(&self) -> Vec<PathBuf> {
        let dir = if self.store.join("new").exists() {
            self.store.join("new")
        } else {
            self.store.clone()
        };
        let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
            .map(|d| d.map(|e| e.unwrap().path()).collect())
            .unwrap_or_default();
        v.sort();
        v
    }

    /// aiosmtpd's envelope log: one JSON object per message.
    fn envelopes(&self) -> Vec<serde_json::Value> {
        std::fs::read_to_string(self.store.join("envelopes.jsonl"))
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }
}

fn nix_is_root() -> bool {
    std::env::var("USER").is_ok_and(|u| u == "root")
        || std::fs::read_to_string("/proc/self/status").is_ok_and(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .is_some_and(|l| l.split_whitespace().nth(1) == Some("0"))
        })
}

/// A campaign over SMTP to an aiosmtpd started with `args`.
fn with_smtpd(smtp: &str, sending: &str, args: &[&str]) -> (Fixture, Server) {
    let f = smtp_fixture(smtp, sending);
    let server = Server::smtpd(&f, args);
    let toml = f
        .read("campaign.toml")
        .replace("PORT", &server.port.to_string());
    f.write("campaign.toml", &toml);
    (f, server)
}

/// A campaign sending email only, over SMTP to 127.0.0.1:`port`, with fast retries.
fn smtp_fixture(smtp: &str, sending: &str) -> Fixture {
    let f = Fixture::new(&contacts());
    f.write(
        "campaign.toml",
        &common::campaign_toml_on(
            &["email"],
            &format!(
                "[email.smtp]\nhost = \"127.0.0.1\"\n{smtp}\n\
             [sending]\nemail_rate = \"0\"\nretry_delay = \"10ms\"\nmax_attempts = 2\n{sending}\n"
            ),
        ),
    );
    f
}

/// The argument list of `send` over SMTP, email only.
const SEND: [&str; 6] = [
    "send",
    "campaign.toml",
    "--channel",
    "email",
    "--set",
    "email.transport=smtp",
];

fn send(f: &Fixture, extra: &[&str]) -> (i32, String, String) {
    f.run(&[&SEND[..], extra].concat())
}

/// `send` with the SMTP password in the environment.
fn send_with_password(f: &Fixture, password: &str) -> (i32, String, String) {
    let mut c = f.cmd(&SEND);
    c.env("OUTREACH_TEST_SMTP_PASSWORD", password);
    run(c)
}

/// Ledger rows: address → (state, attempts, provider id, last error).
fn ledger(f: &Fixture) -> BTreeMap<String, (String, i64, Option<String>, Option<String>)> {
    let conn = rusqlite::Connection::open(f.path(".outreach/ledger.sqlite")).unwrap();
    let mut stmt = conn
        .prepare("SELECT address, state, attempts, provider_id, last_error FROM messages WHERE channel = 'email'")
        .unwrap();
    stmt.query_map([], |r| {
        Ok((
            r.get::<_, String>(0)?,
            (r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?),
        ))
    })
    .unwrap()
    .map(Result::unwrap)
    .collect()
}

/// Parses each file with Python's `email` package and returns, per message, the decoded
/// headers and parts the tests look at.
fn parse(files: &[PathBuf]) -> Vec<serde_json::Value> {
    let script = r#"
import email, email.policy, json, sys
out = []
for path in sys.argv[1:]:
    raw = open(path, 'rb').read()
    m = email.message_from_bytes(raw, policy=email.policy.default)
    parts = {p.get_content_type(): p.get_content() for p in m.walk() if not p.is_multipart()}
    out.append({
        'raw_lines_ok': all(len(l) <= 998 for l in raw.split(b'\r\n')),
        'crlf_only': b'\n' not in raw.replace(b'\r\n', b''),
        'content_type': m.get_content_type(),
        'from': str(m['From']), 'to': str(m['To']), 'reply_to': str(m['Reply-To']),
        'subject': str(m['Subject']), 'message_id': str(m['Message-ID']), 'date': str(m['Date']),
        'list_unsubscribe': str(m['List-Unsubscribe']),
        'list_unsubscribe_post': str(m['List-Unsubscribe-Post']),
        'dkim': str(m['DKIM-Signature']) if m['DKIM-Signature'] else None,
        'text': parts.get('text/plain', ''), 'html': parts.get('text/html', ''),
    })
print(json.dumps(out))
"#;
    serde_json::from_value(python_json(script, files)).unwrap()
}

/// A throwaway CA and a certificate for 127.0.0.1/localhost signed by it: (ca, cert, key).
pub(crate) fn certificates(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let sh = |args: &str| {
        let out = Command::new("sh")
            .arg("-c")
            .arg(args)
            .current_dir(dir)
            .output()
            .expect("openssl");
        assert!(
            out.status.success(),
            "openssl: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    sh(
        "openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 2 \
        -subj '/CN=outreach test CA' -addext basicConstraints=critical,CA:TRUE \
        -addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null",
    );
    sh(
        "openssl req -newkey rsa:2048 -nodes -keyout server.key -out server.csr \
        -subj '/CN=localhost' 2>/dev/null",
    );
    std::fs::write(
        dir.join("ext.cnf"),
        "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n\
         extendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    sh(
        "openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial \
        -out server.pem -days 2 -extfile ext.cnf 2>/dev/null",
    );
    (
        dir.join("ca.pem"),
        dir.join("server.pem"),
        dir.join("server.key"),
    )
}

#[test]
fn every_consenting_patient_gets_exactly_one_correct_message() {
    let (f, server) = with_smtpd("tls = \"none\"\nport = PORT", "", &[]);

    let (code, out, err) = send(&f, &[]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>()
                == ["email", "4", "0", "1", "0", "0", "0"]),
        "{out}"
    );

    // Each recipient exactly once, on the envelope and in the headers.
    let envelopes = server.envelopes();
    let mut rcpts: Vec<String> = envelopes
        .iter()
        .flat_map(|e| e["rcpt_tos"].as_array().unwrap().clone())
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    rcpts.sort();
    assert_eq!(
        rcpts,
        [
            "ann@example.com",
            "bo@example.com",
            "maria@example.com",
            "tom@example.com"
        ]
    );
    assert!(
        envelopes
            .iter()
            .all(|e| e["mail_from"] == "care@riverside.example")
    );

    let files = server.messages();
    let parsed = parse(&files);
    assert_eq!(parsed.len(), 4);
    for m in &parsed {
        assert_eq!(m["raw_lines_ok"], true);
        assert_eq!(m["crlf_only"], true);
        assert_eq!(m["content_type"], "multipart/alternative");
        assert_eq!(m["from"], "Riverside Physio <care@riverside.example>");
        assert_eq!(m["reply_to"], "frontdesk@riverside.example");
        let id = m["message_id"].as_str().unwrap();
        assert!(
            id.starts_with("<test-campaign.") && id.ends_with("@riverside.example>"),
            "{id}"
        );
        assert!(m["date"].as_str().unwrap().contains("25 Nov 2026"), "{m}");
        let lu = m["list_unsubscribe"].as_str().unwrap();
        assert!(
            lu.starts_with("<https://riverside.example/unsubscribe?t=")
                && lu.contains(", <mailto:unsubscribe@riverside.example?subject=unsubscribe%20"),
            "{lu}"
        );
        assert_eq!(m["list_unsubscribe_post"], "List-Unsubscribe=One-Click");
        assert!(m["text"].as_str().unwrap().contains("psoas"), "{m}");
        assert!(m["html"].as_str().unwrap().contains("<html"), "{m}");
    }
    let by_to: BTreeMap<&str, &serde_json::Value> = parsed
        .iter()
        .map(|m| (m["to"].as_str().unwrap(), m))
        .collect();
    // UTF-8 names through encoded words; HTML-looking names escaped in the HTML part only.
    assert!(
        by_to.contains_key("María González <maria@example.com>"),
        "{:?}",
        by_to.keys()
    );
    let tom = by_to
        .iter()
        .find(|(k, _)| k.ends_with("<tom@example.com>"))
        .expect("Tom's message")
        .1;
    let html = tom["html"].as_str().unwrap();
    assert!(html.contains("Tom"), "{html}");
    assert!(!html.contains("<b>&</b>"), "unescaped name in HTML");

    // The provider id is the server's 250 reply to the message.
    let rows = ledger(&f);
    assert_eq!(rows.len(), 4);
    for (address, (state, attempts, provider, _)) in &rows {
        assert_eq!(state, "sent", "{address}");
        assert_eq!(*attempts, 1);
        let provider = provider.as_deref().unwrap();
        assert!(
            provider.starts_with("250 2.0.0 Ok: queued as "),
            "{provider}"
        );
        let queued = provider.rsplit(' ').next().unwrap();
        assert!(files.iter().any(|p| p.ends_with(queued)), "{queued}");
    }

    // A rerun sends nothing.
    let (code, out, _) = send(&f, &[]);
    assert_eq!(code, 0);
    assert!(out.contains("already done"), "{out}");
    assert_eq!(server.messages().len(), 4);
}

/// The unsubscribe token of a message (its `List-Unsubscribe` link comes first).
fn token_in(message: &str) -> String {
    let at = message.find("unsubscribe?t=").expect("an unsubscribe link") + "unsubscribe?t=".len();
    message[at..at + 26].to_string()
}

#[test]
fn the_bounce_address_is_each_messages_envelope_sender_with_its_own_token() {
    let (f, server) = with_smtpd("tls = \"none\"\nport = PORT", "", &[]);
    let bounce = [
        "--set",
        "email.bounce_address=bounces+{{token}}@riverside.example",
    ];
    let (code, out, err) = send(&f, &bounce);
    assert_eq!(code, 0, "{out}{err}");
    let envelopes = server.envelopes();
    assert_eq!(envelopes.len(), 4);
    let mut tokens = std::collections::BTreeSet::new();
    let mut carried = Vec::new();
    for e in &envelopes {
        let message =
            std::fs::read_to_string(server.store.join("new").join(e["file"].as_str().unwrap()))
                .unwrap();
        let token = token_in(&message);
        assert_eq!(
            e["mail_from"],
            format!("bounces+{token}@riverside.example"),
            "{message}"
        );
        // Return-Path is the final mailbox's to add, from the envelope; a sender sets none.
        assert!(!message.contains("Return-Path"), "{message}");
        // The From address stays the clinic's.
        assert!(
            message
                .lines()
                .any(|l| l == "From: \"Riverside Physio\" <care@riverside.example>"),
            "{message}"
        );
        tokens.insert(token);
        carried.push(format!(
            "Return-Path: <{}>\r\n{message}",
            e["mail_from"].as_str().unwrap()
        ));
    }
    assert_eq!(tokens.len(), 4, "one token per message: {tokens:?}");

    // The file transport, with the same unsubscribe key: each `.eml` is what SMTP carried,
    // after the `Return-Path:` line a mailbox would add from that envelope.
    std::fs::create_dir_all(f.path("state2")).unwrap();
    std::fs::copy(
        f.path(".outreach/unsubscribe.key"),
        f.path("state2/unsubscribe.key"),
    )
    .unwrap();
    let (code, out, err) = f.run(
        &[
            &[
                "send",
                "campaign.toml",
                "--channel",
                "email",
                "--new-ledger",
            ][..],
            &["--set", "sending.state_dir=state2"],
            &bounce,
        ]
        .concat(),
    );
    assert_eq!(code, 0, "{out}{err}");
    let mut written: Vec<String> = std::fs::read_dir(f.path("outbox/email"))
        .unwrap()
        .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
        .collect();
    written.sort();
    carried.sort();
    assert_eq!(written, carried);
}

#[test]
fn the_file_transport_writes_exactly_the_bytes_smtp_carries() {
    let (f, server) = with_smtpd("tls = \"none\"\nport = PORT", "", &[]);
    let (code, out, err) = send(&f, &[]);
    assert_eq!(code, 0, "{out}{err}");

    // The same campaign to the file transport, in a fresh state directory with the same
    // unsubscribe key (the tokens in the links come from it).
    std::fs::create_dir_all(f.path("state2")).unwrap();
    std::fs::copy(
        f.path(".outreach/unsubscribe.key"),
        f.path("state2/unsubscribe.key"),
    )
    .unwrap();
    let (code, out, err) = f.run(&[
        "send",
        "campaign.toml",
        "--channel",
        "email",
        "--set",
        "sending.state_dir=state2",
        "--new-ledger",
    ]);
    assert_eq!(code, 0, "{out}{err}");
    let mut received: Vec<Vec<u8>> = server
        .messages()
        .iter()
        .map(|p| std::fs::read(p).unwrap())
        .collect();
    let mut written: Vec<Vec<u8>> = std::fs::read_dir(f.path("outbox/email"))
        .unwrap()
        .map(|e| std::fs::read(e.unwrap().path()).unwrap())
        .collect();
    received.sort();
    written.sort();
    assert_eq!(written.len(), 4);
    for (w, r) in written.iter().zip(&received) {
        let (w, r) = (String::from_utf8_lossy(w), String::from_utf8_lossy(r));
        let diff = w.lines().zip(r.lines()).find(|(a, b)| a != b);
        assert!(
            w == r,
            "the .eml differs from what SMTP carried: {diff:?} ({} vs {} bytes)",
            w.len(),
            r.len()
        );
    }
}

#[test]
fn starttls_and_implicit_tls_with_a_private_ca_and_auth() {
    for mode in ["starttls", "tls"] {
        let f = smtp_fixture(
            "tls = \"MODE\"\nport = PORT\nca_file = \"ca.pem\"\nusername = \"clinic\"\npassword_file = \"smtp.secret\"",
            "concurrency = 2",
        );
        let (ca, cert, key) = certificates(f.dir.path());
        assert!(ca.exists());
        f.write("smtp.secret", "s3cret-pass\n");
        let server = Server::smtpd(
            &f,
            &[
                "--mode",
                mode,
                "--cert",
                cert.to_str().unwrap(),
                "--key",
                key.to_str().unwrap(),
                "--auth",
                "clinic:s3cret-pass",
            ],
        );
        let toml = f
            .read("campaign.toml")
            .replace("PORT", &server.port.to_string())
            .replace("MODE", mode);
        f.write("campaign.toml", &toml);
        let (code, out, err) = send(&f, &[]);
        assert_eq!(code, 0, "{mode}: {out}{err}");
        let envelopes = server.envelopes();
        assert_eq!(envelopes.len(), 4, "{mode}");
        assert!(
            envelopes
                .iter()
                .all(|e| e["tls"] == true && e["auth"] == true),
            "{mode}: {envelopes:?}"
        );
        // The password is nowhere in what the run printed or wrote.
        assert!(!out.contains("s3cret") && !err.contains("s3cret"));
        for entry in walk(&f.path(".outreach")) {
            let bytes = std::fs::read(&entry).unwrap();
            assert!(
                !bytes.windows(6).any(|w| w == b"s3cret"),
                "{}",
                entry.display()
            );
        }
    }
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[test]
fn an_untrusted_certificate_is_refused_before_anything_is_sent() {
    for mode in ["starttls", "tls"] {
        let f = smtp_fixture("tls = \"MODE\"\nport = PORT", "");
        let (_, cert, key) = certificates(f.dir.path());
        let server = Server::smtpd(
            &f,
            &[
                "--mode",
                mode,
                "--cert",
                cert.to_str().unwrap(),
                "--key",
                key.to_str().unwrap(),
            ],
        );
        let toml = f
            .read("campaign.toml")
            .replace("PORT", &server.port.to_string())
            .replace("MODE", mode);
        f.write("campaign.toml", &toml);
        let (code, out, err) = send(&f, &[]);
        assert_eq!(code, 2, "{mode}: {out}{err}");
        assert!(
            err.contains("TLS failed") && err.contains("ca_file"),
            "{mode}: {err}"
        );
        assert!(err.to_lowercase().contains("certificate"), "{mode}: {err}");
        assert!(server.messages().is_empty());
        assert!(ledger_rows_if_any(&f).is_empty(), "{mode}");
    }
}

#[test]
fn a_session_the_server_closed_while_idle_costs_no_attempt() {
    // At one message a second over one session, each waits longer than the server keeps an
    // idle session (0.4 s): its 421 on closing is the answer the next MAIL FROM reads. That is
    // a stale session to replace, not a refusal of the message.
    let (f, server) = with_smtpd(
        "tls = \"none\"\nport = PORT",
        "concurrency = 1",
        &["--idle-timeout", "0.4"],
    );
    let (code, out, err) = send(&f, &["--set", "sending.email_rate=2/s"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(!err.contains("transient"), "{err}");
    let rows = ledger(&f);
    assert_eq!(rows.len(), 4);
    for (address, (state, attempts, ..)) in &rows {
        assert_eq!((state.as_str(), *attempts), ("sent", 1), "{address}");
    }
    assert_eq!(server.messages().len(), 4);
}

#[test]
fn a_tls_handshake_the_network_breaks_is_not_a_certificate_problem() {
    // The relay takes the connection and closes it before any TLS: an outage (exit 3, cron's
    // next run tries again), not a configuration to fix (exit 2, "is the certificate
    // trusted?").
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            drop(conn);
        }
    });
    let f = smtp_fixture(&format!("tls = \"tls\"\nport = {port}"), "");
    let (code, out, err) = send(&f, &[]);
    assert_eq!(code, 3, "{out}{err}");
    assert!(err.contains("TLS handshake"), "{err}");
    assert!(!err.contains("certificate"), "{err}");
    assert!(ledger_rows_if_any(&f).is_empty());
}

fn ledger_rows_if_any(
    f: &Fixture,
) -> BTreeMap<String, (String, i64, Option<String>, Option<String>)> {
    if f.path(".outreach/ledger.sqlite").exists() {
        ledger(f)
    } else {
        BTreeMap::new()
    }
}

#[test]
fn starttls_is_required_when_asked_for() {
    // A server that offers no STARTTLS: nothing goes in clear text.
    let (f, server) = with_smtpd("tls = \"starttls\"\nport = PORT", "", &[]);
    let (code, _, err) = send(&f, &[]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("does not offer STARTTLS"), "{err}");
    assert!(server.messages().is_empty());
}

#[test]
fn rejected_credentials_stop_before_the_first_message() {
    let (f, server) = with_smtpd(
        "tls = \"none\"\nport = PORT\nusername = \"clinic\"\npassword_env = \"OUTREACH_TEST_SMTP_PASSWORD\"",
        "",
        &["--auth", "clinic:right"],
    );

    // No password in the environment: exit 2, naming the variable.
    let (code, _, err) = send(&f, &[]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("OUTREACH_TEST_SMTP_PASSWORD is not set"),
        "{err}"
    );

    let (code, out, err) = send_with_password(&f, "wrong");
    assert_eq!(code, 2, "{out}{err}");
    assert!(err.contains("authentication failed: 535"), "{err}");
    assert!(!err.contains("wrong"), "the password leaked: {err}");
    assert!(server.messages().is_empty());
    assert!(ledger_rows_if_any(&f).is_empty());

    let (code, out, err) = send_with_password(&f, "right");
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(server.messages().len(), 4);
}

#[test]
fn credentials_revoked_mid_run_stop_the_run_without_failing_patients() {
    // The first AUTH works (the check's session); the second session's AUTH is refused.
    let (f, server) = with_smtpd(
        "tls = \"none\"\nport = PORT\nusername = \"clinic\"\npassword_env = \"OUTREACH_TEST_SMTP_PASSWORD\"",
        "concurrency = 2",
        &["--auth", "clinic:right", "--auth-ok", "1"],
    );
    let (code, out, err) = send_with_password(&f, "right");
    assert_eq!(code, 3, "{out}{err}");
    assert!(out.contains("authentication failed"), "{out}");
    let rows = ledger(&f);
    // Nobody is failed for good: every row is sent or stays retryable.
    for (address, (state, ..)) in &rows {
        assert!(state == "sent" || state == "failed", "{address}: {state}");
    }
    assert_eq!(permanent_failures(&f), 0);
    let sent = rows.values().filter(|r| r.0 == "sent").count();
    assert_eq!(server.messages().len(), sent);
    assert!(sent < 4);
}

#[test]
fn a_relay_refusing_this_host_fails_no_patient_and_a_refused_mailbox_fails_only_its_own() {
    // Postfix reports "Relay access denied" (and its sender and HELO restrictions) at RCPT: it
    // is the relay's set-up, not the patients'.
    let (f, server) = with_smtpd(
        "tls = \"none\"\nport = PORT",
        "concurrency = 1",
        &[
            "--rcpt-reply",
            "*=554 5.7.1 <x@example.com>: Relay access denied",
        ],
    );
    let (code, out, err) = send(&f, &[]);
    assert_eq!(code, 3, "{out}{err}");
    assert!(
        out.contains(
            "Stopped early: email: the server refused: 554 5.7.1 <x@example.com>: Relay access \
             denied (a refusal of the relay, the sender or the message, not of the patient's \
             address)"
        ),
        "{out}"
    );
    assert_eq!(permanent_failures(&f), 0);
    assert!(ledger(&f).values().all(|r| r.0 == "failed"));
    assert_eq!(server.messages().len(), 0);
    drop(server);

    // The relay set up: the run resumes; one mailbox that does not exist fails that patient.
    let server = Server::smtpd(
        &f,
        &[
            "--rcpt-reply",
            "ann@example.com=550 5.1.1 <ann@example.com>: User unknown",
        ],
    );
    let toml = f.read("campaign.toml");
    let port = toml
        .lines()
        .find_map(|l| l.strip_prefix("port = "))
        .unwrap()
        .to_string();
    f.write(
        "campaign.toml",
        &toml.replace(
            &format!("port = {port}"),
            &format!("port = {}", server.port),
        ),
    );
    let (code, out, err) = send(&f, &[]);
    assert_eq!(code, 1, "{out}{err}");
    let rows = ledger(&f);
    let ann = &rows["ann@example.com"];
    assert_eq!(
        (ann.0.as_str(), ann.3.as_deref()),
        ("failed", Some("550 5.1.1 <a***@example.com>: User unknown")),
        "{rows:?}"
    );
    assert_eq!(rows.values().filter(|r| r.0 == "sent").count(), 3);
    assert_eq!(server.messages().len(), 3);
}

#[test]
fn a_policy_refusal_of_one_recipient_once_others_went_fails_only_that_one() {
    // Postfix's check_recipient_access answers 5.7.1 for one address. Once the relay has taken
    // recipients this run, that is the recipient's: stopping there would stop every later run
    // at the same patient. (The 20th message cannot start before most others went: a message
    // task takes its next only when its last is done.)
    let mut csv = format!("{HEADER}\n");
    for i in 1..=20 {
        csv.push_str(&format!("P{i},Pat,Lee,p{i}@example.com,,email,yes,,\n"));
    }
    let (f, server) = with_smtpd(
        "tls = \"none\"\nport = PORT",
        "concurrency = 1",
        &[
            "--rcpt-reply",
            "p20@example.com=554 5.7.1 <p20@example.com>: Recipient address rejected: Access denied",
        ],
    );
    f.write("contacts.csv", &csv);
    let (code, out, err) = send(&f, &[]);
    assert_eq!(code, 1, "{out}{err}");
    let rows = ledger(&f);
    assert_eq!(rows.values().filter(|r| r.0 == "sent").count(), 19);
    assert_eq!(rows["p20@example.com"].0, "failed");
    assert_eq!(permanent_failures(&f), 1);
    assert_eq!(server.messages().len(), 19);
}

/// How many of the ledger's messages failed for good.
fn permanent_failures(f: &Fixture) -> i64 {
    rusqlite::Connection::open(f.path(".outreach/ledger.sqlite"))
        .unwrap()
        .query_row(
            "SELECT count(*) FROM messages WHERE permanent = 1",
            [],
            |r| r.get(0),
        )
        .unwrap()
}

/// Runs the campaign against smtp-sink with `faults`; returns (exit, stdout, ledger).
#[allow(clippy::type_complexity)]
fn against_sink(
    faults: &[&str],
    sending: &str,
) -> (
    i32,
    String,
    BTreeMap<String, (String, i64, Option<String>, Option<String>)>,
    Server,
    Fixture,
) {
    let f = smtp_fixture(
        "tls = \"none\"\nport = PORT\ntimeout = \"1s\"\nfinal_timeout = \"1s\"",
        sending,
    );
    let server = Server::sink(&f, faults);
    let toml = f
        .read("campaign.toml")
        .replace("PORT", &server.port.to_string());
    f.write("campaign.toml", &toml);
    let (code, out, err) = send(&f, &[]);
    let rows = ledger_rows_if_any(&f);
    (code, format!("{out}{err}"), rows, server, f)
}

#[test]
fn smtp_sink_accepts_everything_and_gives_queue_ids() {
    let (code, out, rows, server, _f) = against_sink(&[], "");
    assert_eq!(code, 0, "{out}");
    assert_eq!(rows.len(), 4);
    assert!(rows.values().all(|r| r.0 == "sent" && r.1 == 1));
    assert_eq!(server.received(), 4);
}

#[test]
fn soft_rejects_are_retried_and_stay_retryable() {
    // With PIPELINING (smtp-sink's default) and without (-p): replies read one by one.
    for (cmd, p) in cases(&["rcpt", "data", "."]) {
        let (code, out, rows, server, f) =
            against_sink(&[&["-r", cmd][..], p.as_slice()].concat(), "");
        // Every attempt refused with 4xx: stopped early, nothing delivered, nothing lost.
        assert_eq!(code, 3, "{cmd}: {out}");
        // smtp-sink counts a message when its final dot arrives, even to refuse it.
        let received = if cmd == "." { 8 } else { 0 };
        assert_eq!(server.received(), received, "{cmd}: two attempts each");
        assert_eq!(rows.len(), 4, "{cmd}");
        for (address, (state, attempts, _, error)) in &rows {
            assert_eq!(state, "failed", "{cmd} {address}");
            assert_eq!(*attempts, 2, "{cmd} {address}: max_attempts = 2");
            assert!(error.as_deref().unwrap().starts_with("450"), "{error:?}");
        }
        assert_eq!(permanent_failures(&f), 0, "{cmd}");
        drop(server);

        // The server recovers: a rerun delivers each message once.
        let good = Server::sink(&f, &[]);
        let toml = f.read("campaign.toml");
        let toml = toml.replace(
            &format!("port = {}", toml_port(&toml)),
            &format!("port = {}", good.port),
        );
        f.write("campaign.toml", &toml);
        let (code, out, err) = send(&f, &[]);
        assert_eq!(code, 0, "{cmd}: {out}{err}");
        assert_eq!(good.received(), 4, "{cmd}");
    }
}

/// Each command with smtp-sink offering PIPELINING (its default) and not (`-p`).
fn cases<'a>(commands: &[&'a str]) -> Vec<(&'a str, Option<&'static str>)> {
    commands
        .iter()
        .flat_map(|&c| [(c, None), (c, Some("-p"))])
        .collect()
}

fn toml_port(toml: &str) -> String {
    toml.lines()
        .find_map(|l| l.strip_prefix("port = "))
        .unwrap()
        .to_string()
}

#[test]
fn hard_rejects_fail_that_recipient_for_good() {
    for (cmd, p) in cases(&["rcpt", "data", "."]) {
        let (code, out, rows, server, f) =
            against_sink(&[&["-f", cmd][..], p.as_slice()].concat(), "");
        assert_eq!(code, 1, "{cmd}: {out}");
        // smtp-sink counts a message when its final dot arrives, even to refuse it.
        let received = if cmd == "." { 4 } else { 0 };
        assert_eq!(server.received(), received, "{cmd}");
        for (address, (state, attempts, _, error)) in &rows {
            assert_eq!(state, "failed", "{cmd} {address}");
            assert_eq!(*attempts, 1, "{cmd}: a 5xx is not retried");
            assert!(error.as_deref().unwrap().starts_with("500"), "{error:?}");
        }
        // A rerun does not try them again.
        let (code, out, _) = send(&f, &[]);
        assert_eq!(code, 0, "{cmd}: {out}");
        assert_eq!(server.received(), received, "{cmd}");
    }
}

#[test]
fn a_connection_lost_before_the_message_is_complete_is_retried() {
    for (cmd, p) in cases(&["mail", "rcpt", "data"]) {
        let (code, out, rows, server, _f) =
            against_sink(&[&["-q", cmd][..], p.as_slice()].concat(), "");
        assert_eq!(code, 3, "{cmd}: {out}");
        assert!(server.received() == 0);
        for (address, (state, attempts, ..)) in &rows {
            assert_eq!(state, "failed", "{cmd} {address}");
            assert_eq!(*attempts, 2, "{cmd}: retried up to max_attempts");
        }
    }
}

#[test]
fn a_connection_lost_after_the_message_is_unknown_and_not_resent() {
    let (code, out, rows, server, f) = against_sink(&["-q", "."], "");
    assert_eq!(code, 1, "{out}");
    assert_eq!(rows.len(), 4);
    for (address, (state, attempts, _, error)) in &rows {
        assert_eq!(state, "unknown", "{address}");
        assert_eq!(*attempts, 1, "never retried");
        assert!(
            error
                .as_deref()
                .unwrap()
                .contains("after the whole message"),
            "{error:?}"
        );
    }
    // smtp-sink took each message once before hanging up.
    let before = server.received();
    let (code, out, _) = send(&f, &[]);
    assert_eq!(code, 0, "{out}");
    assert_eq!(server.received(), before, "a rerun resent an unknown");
}

#[test]
fn the_answer_to_a_message_may_take_longer_than_a_command() {
    // A relay that scans each message answers its end after 2 s: within final_timeout (5 s),
    // though past the 1 s every other step gets.
    let f = smtp_fixture(
        "tls = \"none\"\nport = PORT\ntimeout = \"1s\"\nfinal_timeout = \"5s\"",
        "concurrency = 4",
    );
    let server = Server::sink(&f, &["-W", ".:2"]);
    f.write(
        "campaign.toml",
        &f.read("campaign.toml")
            .replace("PORT", &server.port.to_string()),
    );
    let (code, out, err) = send(&f, &[]);
    assert_eq!(code, 0, "{out}{err}");
    let rows = ledger(&f);
    assert_eq!(rows.len(), 4);
    assert!(rows.values().all(|r| r.0 == "sent" && r.1 == 1), "{rows:?}");
    assert_eq!(server.received(), 4);
}

#[test]
fn no_reply_after_the_message_within_the_timeout_is_unknown() {
    // smtp-sink waits 3 s before answering the final dot; the timeout is 1 s.
    let (code, out, rows, _server, _f) = against_sink(&["-W", ".:3"], "");
    assert_eq!(code, 1, "{out}");
    for (address, (state, attempts, _, error)) in &rows {
        assert_eq!(state, "unknown", "{address}");
        assert_eq!(*attempts, 1);
        assert!(error.as_deref().unwrap().contains("no reply"), "{error:?}");
    }
}

#[test]
fn a_server_refusing_everything_stops_the_run() {
    let (code, out, rows, server, _f) = against_sink(
        &["-r", "rcpt"],
        "max_consecutive_failures = 3\nconcurrency = 1",
    );
    assert_eq!(code, 3, "{out}");
    assert!(out.contains("in a row failed or went unanswered"), "{out}");
    assert!(server.received() == 0);
    // Stopped after three refusals: the messages queued behind them were released unsent.
    let refused = rows
        .values()
        .filter(|r| r.3.as_deref().is_some_and(|e| e.starts_with("450")))
        .count();
    assert_eq!(refused, 3, "{rows:?}");
    assert!(
        rows.values().all(|r| r.0 == "failed"),
        "every one stays retryable: {rows:?}"
    );
}

#[test]
fn a_server_that_is_down_sends_nothing() {
    let f = smtp_fixture(
        &format!("tls = \"none\"\nport = {}", common::free_port()),
        "",
    );
    let (code, _, err) = send(&f, &[]);
    // An outage, not a configuration error: exit 3, and cron's next run tries again.
    assert_eq!(code, 3, "{err}");
    assert!(
        err.contains("connecting") && err.contains("nothing was sent"),
        "{err}"
    );
    assert!(ledger_rows_if_any(&f).is_empty());
}

/// DKIM keys: (algorithm, key file contents, public key for the verifier).
fn dkim_keys(dir: &Path) -> Vec<(&'static str, String, String)> {
    let out = Command::new("sh")
        .arg("-c")
        .arg(
            "openssl genrsa -traditional -out rsa.pem 2048 2>/dev/null && \
             openssl rsa -in rsa.pem -pubout -outform DER 2>/dev/null | base64 -w0",
        )
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(out.status.success());
    let rsa_public = String::from_utf8(out.stdout).unwrap();
    let rsa = std::fs::read_to_string(dir.join("rsa.pem")).unwrap();
    let seed: [u8; 32] = std::array::from_fn(|i| (i as u8).wrapping_mul(37).wrapping_add(11));
    let ed = data_encoding_base64(&seed);
    vec![("rsa", rsa, rsa_public), ("ed25519", ed.clone(), ed)]
}

fn data_encoding_base64(bytes: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut s = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                s.push(T[(n >> (18 - 6 * i)) as usize & 63] as char);
            } else {
                s.push('=');
            }
        }
    }
    s
}

#[test]
fn dkim_signatures_verify_with_an_independent_verifier() {
    let scratch = tempfile::tempdir().unwrap();
    for (algorithm, key, public) in dkim_keys(scratch.path()) {
        let f = smtp_fixture("tls = \"none\"\nport = PORT", "");
        f.write("dkim.key", &key);
        let server = Server::smtpd(&f, &[]);
        let toml = f
            .read("campaign.toml")
            .replace("PORT", &server.port.to_string())
            + "\n[email.dkim]\nselector = \"s2026\"\nkey_file = \"dkim.key\"\n";
        // [email.dkim] after [sending] is still the email table's child.
        f.write("campaign.toml", &toml);
        // A date in the past: verifiers refuse a signature time (t=, the Date) in the future.
        let mut c = f.cmd(&SEND);
        c.env("OUTREACH_NOW", "2026-01-15T18:00:00Z");
        let (code, out, err) = run(c);
        assert_eq!(code, 0, "{algorithm}: {out}{err}");
        let files = server.messages();
        assert_eq!(files.len(), 4);
        for m in parse(&files) {
            let sig = m["dkim"].as_str().expect("a DKIM-Signature");
            assert!(sig.contains("d=riverside.example"), "{sig}");
            assert!(sig.contains("s=s2026"), "{sig}");
            assert!(sig.contains("c=relaxed/relaxed"), "{sig}");
            for h in [
                "from",
                "to",
                "subject",
                "date",
                "message-id",
                "list-unsubscribe",
            ] {
                assert!(
                    sig.to_lowercase().contains(h),
                    "{algorithm}: {h} not signed: {sig}"
                );
            }
        }
        let verify = Command::new(python())
            .arg(repo().join("tests/servers/dkimverify.py"))
            .arg(algorithm)
            .arg(&public)
            .args(&files)
            .output()
            .unwrap();
        let report = String::from_utf8_lossy(&verify.stdout);
        assert!(
            verify.status.success(),
            "{algorithm}: {report}{}",
            String::from_utf8_lossy(&verify.stderr)
        );
        assert_eq!(report.lines().filter(|l| l.starts_with("pass ")).count(), 4);

        // A tampered message fails the same verifier: the check can fail.
        let tampered = f.path("tampered.eml");
        let bytes = std::fs::read(&files[0]).unwrap();
        let text = String::from_utf8(bytes)
            .unwrap()
            .replacen("Subject: ", "Subject: Re: ", 1);
        std::fs::write(&tampered, text).unwrap();
        assert!(
            !dkim_verifies(algorithm, &public, &tampered),
            "{algorithm}: tampering went unnoticed"
        );

        // So does a header added on the way: a second Subject above the signed one (which many
        // mail readers show), or a Reply-To the message did not have.
        let original = std::fs::read(&files[0]).unwrap();
        for added in [
            "Subject: Re: your account\r\n",
            "Reply-To: x@attacker.example\r\n",
        ] {
            let added_to = f.path("added.eml");
            std::fs::write(&added_to, [added.as_bytes(), &original].concat()).unwrap();
            assert!(
                !dkim_verifies(algorithm, &public, &added_to),
                "{algorithm}: an added {added:?} went unnoticed"
            );
        }
    }
}

/// Whether dkimpy verifies the signature of the message in `file`.
fn dkim_verifies(algorithm: &str, public: &str, file: &Path) -> bool {
    Command::new(python())
        .arg(repo().join("tests/servers/dkimverify.py"))
        .arg(algorithm)
        .arg(public)
        .arg(file)
        .output()
        .unwrap()
        .status
        .success()
}

#[test]
fn a_bad_dkim_key_is_reported_with_its_key_and_line() {
    let f = smtp_fixture("tls = \"none\"\nport = 2525", "");
    f.write(
        "dkim.key",
        "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
    );
    let toml =
        f.read("campaign.toml") + "\n[email.dkim]\nselector = \"s1\"\nkey_file = \"dkim.key\"\n";
    f.write("campaign.toml", &toml);
    let (code, _, err) = f.run(&["check", "campaign.toml"]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("campaign.toml:") && err.contains("email.dkim.key_file"),
        "{err}"
    );
    assert!(
        err.contains("neither a usable RSA nor Ed25519 key"),
        "{err}"
    );
}

#[test]
fn unsubscribe_tokens_map_back_to_suppressions() {
    // The file transport: the links are the same whatever carries them.
    let f = Fixture::new(&contacts());
    f.write(
        "campaign.toml",
        &common::campaign_toml_on(&["email"], "[sending]\nemail_rate = \"0\"\n"),
    );
    let (code, out, err) = f.run(&["send", "campaign.toml", "--channel", "email"]);
    assert_eq!(code, 0, "{out}{err}");
    let mut links = BTreeMap::new();
    for e in std::fs::read_dir(f.path("outbox/email")).unwrap() {
        let text = std::fs::read_to_string(e.unwrap().path()).unwrap();
        let to = text
            .lines()
            .find(|l| l.starts_with("To: "))
            .unwrap()
            .to_string();
        let lu = text
            .lines()
            .find_map(|l| l.strip_prefix("List-Unsubscribe: <"))
            .unwrap();
        let url = lu.split('>').next().unwrap().to_string();
        links.insert(to, url);
    }
    let ann = links
        .iter()
        .find(|(k, _)| k.contains("ann@"))
        .unwrap()
        .1
        .clone();
    let bo_url = links
        .iter()
        .find(|(k, _)| k.contains("bo@"))
        .unwrap()
        .1
        .clone();
    let bo_token = bo_url.rsplit('=').next().unwrap().to_string();
    assert_eq!(bo_token.len(), 26);
    f.write(
        "unsubscribes.log",
        &format!("127.0.0.1 - - \"POST /unsubscribe?t={bo_token} HTTP/1.1\" 200\n"),
    );

    let (code, out, err) = f.run(&[
        "unsubscribe",
        "campaign.toml",
        &ann,
        "--from-file",
        "unsubscribes.log",
    ]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.starts_with("2 tokens: 2 unsubscribed, 0 already suppressed, 0 unknown"),
        "{out}"
    );
    // Masked in the output: this may run from a web hook's log.
    assert!(
        out.contains("a***@example.com") && !out.contains("ann@example.com"),
        "{out}"
    );

    // Again: already suppressed; and an unknown token exits 1.
    let (code, out, _) = f.run(&[
        "unsubscribe",
        "campaign.toml",
        &bo_token,
        "aaaaaaaaaaaaaaaaaaaaaaaaaa",
    ]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.starts_with("2 tokens: 0 unsubscribed, 1 already suppressed, 1 unknown"),
        "{out}"
    );

    // The suppression holds for this and any later campaign of the state directory.
    let (_, out, _) = f.run(&["check", "campaign.toml", "--format", "json"]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let text = v.to_string();
    assert!(text.contains("suppressed"), "{text}");
    let f2_toml = f
        .read("campaign.toml")
        .replace("test-campaign", "next-campaign");
    f.write("next.toml", &f2_toml);
    let (code, out, err) = f.run(&["send", "next.toml", "--channel", "email", "--dry-run"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("suppressed 2"), "{out}");
}

#[test]
fn tls_none_is_refused_off_loopback() {
    let f = smtp_fixture("tls = \"none\"\nport = 25", "");
    let toml = f
        .read("campaign.toml")
        .replace("127.0.0.1", "smtp.example.net");
    f.write("campaign.toml", &toml);
    let (code, _, err) = run(f.cmd(&["check", "campaign.toml", "--set", "email.transport=smtp"]));
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("email.smtp.tls") && err.contains("loopback"),
        "{err}"
    );
}
