//! `outreach listen` with its own certificate (`[listen] tls_cert_file`, `tls_key_file`), end to
//! end: the real binary on a free loopback port with a self-signed certificate that OpenSSL
//! makes for the test. Over HTTPS a client that trusts it gets the pages with their security
//! headers; plain HTTP and an untrusting client get no HTTP answer and stop nothing; SIGTERM
//! ends the process at once, exit 0, even with a connection idle and another stuck before its
//! handshake; a certificate or key that cannot be used is exit 2 naming the file, before the
//! address is bound.

use crate::common::{self, Fixture, HEADER};

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The `[listen]` table of every test: the certificate and key in the campaign's directory.
const LISTEN: &str = "[listen]\nbase_url = \"https://127.0.0.1\"\ntls_cert_file = \"cert.pem\"\n\
                      tls_key_file = \"key.pem\"\n";

/// A token of the right form that stands for no message.
const NOBODY: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaa";

/// An email-only campaign with no contacts, served with `[listen]` and its certificate.
fn fixture() -> Fixture {
    let f = Fixture::email_only(&format!("{HEADER}\n"));
    f.write(
        "campaign.toml",
        &common::campaign_toml_on(&["email"], LISTEN),
    );
    self_signed(f.dir.path(), "cert.pem", "key.pem");
    f
}

/// A self-signed certificate for 127.0.0.1 and localhost (P-256), written as `cert` and `key`
/// in `dir`. Not a CA: the client takes it as its one trust anchor and as the server's own.
fn self_signed(dir: &Path, cert: &str, key: &str) {
    let out = Command::new("openssl")
        .args(["req", "-x509", "-newkey", "ec", "-pkeyopt"])
        .args([
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=localhost",
        ])
        .args(["-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"])
        .args(["-addext", "basicConstraints=critical,CA:FALSE"])
        .args(["-addext", "extendedKeyUsage=serverAuth"])
        .args(["-keyout", key, "-out", cert])
        .current_dir(dir)
        .output()
        .expect("openssl (scripts/test installs it)");
    assert!(
        out.status.success(),
        "openssl: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A running `outreach listen campaign.toml --addr 127.0.0.1:0`.
struct Listen {
    child: common::Killed,
    _log: common::ServerLog,
    /// `127.0.0.1:PORT`, from its first line.
    addr: String,
}

impl Listen {
    fn start(f: &Fixture) -> Listen {
        let (log, stderr) = common::ServerLog::new(f.dir.path(), "listen");
        let mut child = Command::new(env!("CARGO_BIN_EXE_outreach"))
            .current_dir(f.dir.path())
            .env("OUTREACH_NOW", common::MIDDAY)
            .env("RUST_LOG", "outreach=debug")
            .args(["listen", "campaign.toml", "--addr", "127.0.0.1:0"])
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .unwrap();
        let mut first = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut first)
            .unwrap();
        let addr = first
            .strip_prefix("Listening on ")
            .and_then(|rest| rest.split_once(" for https://127.0.0.1 "))
            .unwrap_or_else(|| panic!("no address in {first:?}"))
            .0
            .to_string();
        Listen {
            child: common::Killed(child),
            _log: log,
            addr,
        }
    }

    /// `kill -TERM`, then its exit code; fails if it takes more than 5 s.
    fn terminate(&mut self) -> i32 {
        let pid = self.child.0.id().to_string();
        let killed = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        assert!(killed.success());
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.0.try_wait().unwrap() {
                return status.code().unwrap_or(-1);
            }
            assert!(
                start.elapsed() < Duration::from_secs(5),
                "still running 5 s after SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// An HTTPS client that trusts `cert` (and nothing else), and waits 5 s at most.
fn trusting(cert: &Path) -> reqwest::Client {
    let pem = std::fs::read(cert).unwrap();
    reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(&pem).unwrap()])
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap()
}

/// What a plain-HTTP request to `addr` gets back before the server closes or 2 s pass.
fn plain_http(addr: &str) -> Vec<u8> {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    s.write_all(b"GET /unsubscribe/aaaaaaaaaaaaaaaaaaaaaaaaaa HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .unwrap();
    let mut answer = Vec::new();
    let _ = s.read_to_end(&mut answer);
    answer
}

#[tokio::test]
async fn serves_https_with_its_own_certificate_and_stops_on_sigterm() {
    let f = fixture();
    let mut server = Listen::start(&f);
    let url = format!("https://{}/unsubscribe/{NOBODY}", server.addr);
    let client = trusting(&f.path("cert.pem"));
    // A connection that never says hello: it must hold up no one else, nor the shutdown.
    let _silent = TcpStream::connect(&server.addr).unwrap();

    let r = client.get(&url).send().await.unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(r.version(), reqwest::Version::HTTP_11);
    let h = r.headers();
    assert!(
        h["content-security-policy"]
            .to_str()
            .unwrap()
            .starts_with("default-src 'none';"),
        "{h:?}"
    );
    assert_eq!(h["x-content-type-options"], "nosniff");
    assert_eq!(h["referrer-policy"], "no-referrer");
    assert_eq!(h["cache-control"], "no-store");
    assert!(r.text().await.unwrap().contains("This link is not valid"));

    // Plain HTTP to the TLS port gets no HTTP answer, and a client that does not trust the
    // certificate gets no page; neither stops the server.
    let answer = plain_http(&server.addr);
    assert!(
        !answer.starts_with(b"HTTP/"),
        "{}",
        String::from_utf8_lossy(&answer)
    );
    assert!(reqwest::Client::new().get(&url).send().await.is_err());
    assert_eq!(client.get(&url).send().await.unwrap().status(), 404);

    // SIGTERM with the client's connection kept alive and the silent one still open.
    assert_eq!(server.terminate(), 0);
}

#[test]
fn a_certificate_or_key_it_cannot_use_is_exit_2_naming_the_file() {
    type Break = fn(&Fixture);
    let cases: [(&str, Break, &str); 7] = [
        (
            "missing key",
            |f| std::fs::remove_file(f.path("key.pem")).unwrap(),
            "key.pem: cannot read the private key: No such file or directory (os error 2)",
        ),
        (
            "a certificate as the key",
            |f| f.write("key.pem", &f.read("cert.pem")),
            "key.pem: holds no unencrypted private key (PEM, -----BEGIN PRIVATE KEY-----, or \
             RSA or EC PRIVATE KEY)",
        ),
        (
            "a damaged key",
            |f| {
                let key = f.read("key.pem");
                let body = key.lines().nth(1).unwrap();
                f.write("key.pem", &key.replacen(body, &format!("{body}!"), 1));
            },
            "key.pem: is not a readable PEM private key",
        ),
        (
            "a key that is not one",
            |f| {
                f.write(
                    "key.pem",
                    "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
                )
            },
            "key.pem: is not a private key that can sign (RSA, ECDSA or Ed25519)",
        ),
        (
            "another certificate's key",
            |f| self_signed(f.dir.path(), "other.pem", "key.pem"),
            "key.pem: this key does not belong to the certificate in cert.pem",
        ),
        (
            "an empty certificate file",
            |f| f.write("cert.pem", ""),
            "cert.pem: holds no certificate (PEM, -----BEGIN CERTIFICATE-----)",
        ),
        (
            "a certificate that is not one",
            |f| {
                f.write(
                    "cert.pem",
                    "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
                )
            },
            "cert.pem: its first certificate cannot be used (BadEncoding)",
        ),
    ];
    // Taken: the error must be the file's, found before binding.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    for (what, break_it, expected) in cases {
        let f = fixture();
        break_it(&f);
        let (code, out, err) = f.run(&["listen", "campaign.toml", "--addr", &addr]);
        assert_eq!((code, out.as_str()), (2, ""), "{what}: {err}");
        assert_eq!(err, format!("error: {expected}\n"), "{what}");
    }
}
