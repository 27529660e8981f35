//! The `smtp` email transport: lettre's async SMTP client over connections this module opens
//! itself, so that every socket has `TCP_NODELAY` (the released lettre stalls 40 ms per message
//! without it, see notes/lettre.md) and so that a failure can be placed exactly: before the
//! message was complete (retry) or after (outcome unknown, never retried).
//!
//! One session per worker: a session is taken from the idle stack or opened (TCP, then implicit
//! TLS or STARTTLS, then AUTH), carries one message, and goes back when the server's last reply
//! left it usable. At most `concurrency` sessions exist, because the send loop keeps at most that
//! many messages at once (`Transport::sessions`).

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use futures::future::BoxFuture;
use lettre::Address;
use lettre::transport::smtp::Error as LettreError;
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{
    AsyncSmtpConnection, AsyncTokioStream, Certificate, TlsParameters,
};
use lettre::transport::smtp::commands::{Data, Ehlo, Mail, Quit, Rcpt, Rset};
use lettre::transport::smtp::extension::{ClientId, Extension, MailBodyParameter, MailParameter};
use lettre::transport::smtp::response::Response;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls;

use super::{CheckError, Delivery, EmailOut, Transport};
use crate::config::{SmtpSettings, TlsMode};

/// An SMTP relay and the sessions open to it.
pub struct Smtp {
    host: String,
    port: u16,
    mode: TlsMode,
    hello: ClientId,
    timeout: Duration,
    /// For the answer to a message once it all went out (at least `timeout`).
    final_timeout: Duration,
    credentials: Option<Credentials>,
    /// STARTTLS: lettre upgrades the session with these.
    starttls: Option<TlsParameters>,
    /// Implicit TLS: the handshake is done here, before lettre reads the greeting.
    implicit: Option<(TlsConnector, rustls::pki_types::ServerName<'static>)>,
    /// Clear text was allowed because the host is this machine (not by `allow_insecure`): the
    /// address the name resolves to must then be a loopback one.
    loopback_only: bool,
    idle: Mutex<Vec<Session>>,
    /// Set by the first fatal answer (credentials revoked, sender refused): the messages already
    /// claimed behind it are not sent to a server that will refuse them too.
    fatal: Mutex<Option<String>>,
    /// The server has taken a recipient this run: the relay lets us through, so a policy
    /// refusal from now on is about that recipient (see [`refusal`]).
    relaying: AtomicBool,
}

/// One open, greeted, authenticated session.
struct Session {
    conn: AsyncSmtpConnection,
    /// Set whenever the connection is read from; cleared just before the message is written.
    /// Set after a failed write of the message means the whole message went out (lettre reads
    /// the reply only after writing and flushing the final dot).
    read: Arc<AtomicBool>,
    /// The server offers PIPELINING (RFC 2920): MAIL, RCPT and DATA go in one write.
    pipelining: bool,
}

/// Why the SMTP transport cannot be set up from the campaign's `[email.smtp]` settings: found
/// before anything is claimed, so nothing is sent.
#[derive(Debug, thiserror::Error)]
pub enum SmtpError {
    /// The password's environment variable or file cannot be read (the reason as the campaign
    /// loader words it).
    #[error("email.smtp.password: {0}")]
    Password(String),
    #[error("email.smtp.username is set but no password_env or password_file")]
    NoPassword,
    #[error("email.smtp.ca_file {}: {source}", path.display())]
    CaFileUnreadable { path: PathBuf, source: io::Error },
    /// The CA file, for STARTTLS (lettre reads it).
    #[error("email.smtp.ca_file: not a PEM certificate: {0}")]
    CaFileNotPem(#[source] LettreError),
    /// The CA file, for implicit TLS (rustls reads it): a PEM section that does not parse.
    #[error("email.smtp.ca_file: {0}")]
    CaFilePem(#[source] rustls::pki_types::pem::Error),
    /// The CA file, for implicit TLS: a certificate rustls does not take as a root.
    #[error("email.smtp.ca_file: {0}")]
    CaFileCertificate(#[source] rustls::Error),
    #[error("email.smtp.ca_file: no PEM certificate in the file")]
    CaFileEmpty,
    /// lettre's STARTTLS parameters cannot be built.
    #[error("TLS settings: {0}")]
    StartTls(#[source] LettreError),
    /// rustls's client configuration for implicit TLS cannot be built.
    #[error("TLS settings: {0}")]
    ImplicitTls(#[source] rustls::Error),
    /// Implicit TLS checks the certificate against the host's name, which must be one.
    #[error("email.smtp.host {host:?}: {source}")]
    HostName {
        host: String,
        source: rustls::pki_types::InvalidDnsNameError,
    },
}

/// Why a session could not be opened.
enum OpenError {
    /// Nothing reached the server, or it is busy: worth another try later.
    Transient(String),
    /// Wrong credentials, an untrusted certificate, a server without STARTTLS: no point going on.
    Fatal(String),
}

impl Smtp {
    /// Prepares the transport; reads the password and the extra CA file now, so a missing secret
    /// stops the run before anything goes.
    pub fn new(settings: &SmtpSettings) -> Result<Self, SmtpError> {
        let credentials = match (&settings.username, &settings.password) {
            (Some(user), Some(source)) => Some(Credentials::new(
                user.clone(),
                source
                    .read()
                    .map_err(|e| SmtpError::Password(e.to_string()))?,
            )),
            (Some(_), None) => return Err(SmtpError::NoPassword),
            _ => None,
        };
        let extra = match &settings.ca_file {
            Some(path) => {
                let pem = std::fs::read(path).map_err(|source| SmtpError::CaFileUnreadable {
                    path: path.clone(),
                    source,
                })?;
                Some(pem)
            }
            None => None,
        };
        let (starttls, implicit) = match settings.tls {
            TlsMode::None => (None, None),
            TlsMode::StartTls => {
                let mut builder = TlsParameters::builder(settings.host.clone());
                if let Some(pem) = &extra {
                    let cert = Certificate::from_pem(pem).map_err(SmtpError::CaFileNotPem)?;
                    builder = builder.add_root_certificate(cert);
                }
                let params = builder.build_rustls().map_err(SmtpError::StartTls)?;
                (Some(params), None)
            }
            TlsMode::Tls => {
                let config = client_config(extra.as_deref())?;
                let name = rustls::pki_types::ServerName::try_from(settings.host.clone()).map_err(
                    |source| SmtpError::HostName {
                        host: settings.host.clone(),
                        source,
                    },
                )?;
                (None, Some((TlsConnector::from(Arc::new(config)), name)))
            }
        };
        Ok(Smtp {
            host: settings.host.clone(),
            port: settings.port,
            mode: settings.tls,
            hello: ClientId::Domain(settings.helo.clone()),
            timeout: settings.timeout,
            final_timeout: settings.final_timeout.max(settings.timeout),
            credentials,
            starttls,
            implicit,
            loopback_only: settings.tls == TlsMode::None && !settings.allow_insecure,
            idle: Mutex::new(Vec::new()),
            fatal: Mutex::new(None),
            relaying: AtomicBool::new(false),
        })
    }

    fn server(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }

    /// Opens a session: TCP with `TCP_NODELAY`, TLS as configured, EHLO, AUTH.
    async fn open(&self) -> Result<Session, OpenError> {
        let (tcp, peer) = self.connect().await?;
        let read = Arc::new(AtomicBool::new(false));
        let stream = self.handshake(tcp, peer, &read).await?;
        let mut conn = self.greet(stream).await?;
        if let Some(params) = &self.starttls {
            self.upgrade(&mut conn, params).await?;
        }
        let pipelining = self.offers_pipelining(&mut conn).await?;
        if let Some(credentials) = &self.credentials {
            self.authenticate(&mut conn, credentials).await?;
        }
        Ok(Session {
            conn,
            read,
            pipelining,
        })
    }

    /// A failure to open that a later try may not meet: `{server}: {what}: {e}`.
    fn transient(&self, what: &str, e: &dyn fmt::Display) -> OpenError {
        OpenError::Transient(format!("{}: {what}: {e}", self.server()))
    }

    /// TCP with `TCP_NODELAY`, to a loopback address only when clear text was allowed for that.
    async fn connect(&self) -> Result<(TcpStream, SocketAddr), OpenError> {
        let tcp = tokio::time::timeout(
            self.timeout,
            TcpStream::connect((self.host.as_str(), self.port)),
        )
        .await
        .map_err(|_| self.transient("connecting", &"timed out"))?
        .map_err(|e| self.transient("connecting", &e))?;
        tcp.set_nodelay(true)
            .map_err(|e| self.transient("setting TCP_NODELAY", &e))?;
        let peer = tcp
            .peer_addr()
            .map_err(|e| self.transient("connecting", &e))?;
        if self.loopback_only && !peer.ip().is_loopback() {
            return Err(OpenError::Fatal(format!(
                "{}: tls = \"none\" is allowed only to this machine, and {} resolved to \
                 {}; refusing to send patient data in clear text",
                self.server(),
                self.host,
                peer.ip()
            )));
        }
        Ok((tcp, peer))
    }

    /// The stream lettre talks over, noting each read in `read`: implicit TLS's handshake done
    /// first, or the TCP connection as it is.
    async fn handshake(
        &self,
        tcp: TcpStream,
        peer: SocketAddr,
        read: &Arc<AtomicBool>,
    ) -> Result<Box<dyn AsyncTokioStream>, OpenError> {
        let read = Arc::clone(read);
        let Some((connector, name)) = &self.implicit else {
            return Ok(Box::new(Wire {
                inner: tcp,
                read,
                peer,
            }));
        };
        let tls = tokio::time::timeout(self.timeout, connector.connect(name.clone(), tcp))
            .await
            .map_err(|_| self.transient("TLS handshake", &"timed out"))?
            .map_err(|e| {
                if is_tls_refusal(&e) {
                    tls_error(&self.server(), &e)
                } else {
                    self.transient("TLS handshake", &e)
                }
            })?;
        Ok(Box::new(Wire {
            inner: tls,
            read,
            peer,
        }))
    }

    /// The server's greeting, and lettre's EHLO.
    async fn greet(
        &self,
        stream: Box<dyn AsyncTokioStream>,
    ) -> Result<AsyncSmtpConnection, OpenError> {
        tokio::time::timeout(
            self.timeout,
            AsyncSmtpConnection::connect_with_transport(stream, &self.hello),
        )
        .await
        .map_err(|_| self.transient("waiting for the greeting", &"timed out"))?
        .map_err(|e| match e.status() {
            Some(_) if is_transient(&e) => self.transient("greeting", &e),
            Some(_) => OpenError::Fatal(format!(
                "{}: the server refused the session: {e}",
                self.server()
            )),
            None => self.transient("greeting", &e),
        })
    }

    /// STARTTLS, required: a server that does not offer it gets no message.
    async fn upgrade(
        &self,
        conn: &mut AsyncSmtpConnection,
        params: &TlsParameters,
    ) -> Result<(), OpenError> {
        let server = self.server();
        if !conn.can_starttls() {
            conn.abort().await;
            return Err(OpenError::Fatal(format!(
                "{server} does not offer STARTTLS; refusing to send patient data in clear \
                 text (use tls = \"tls\" for implicit TLS, usually port 465)"
            )));
        }
        tokio::time::timeout(self.timeout, conn.starttls(params.clone(), &self.hello))
            .await
            .map_err(|_| self.transient("STARTTLS", &"timed out"))?
            .map_err(|e| {
                // A 454 (TLS not available for now) may pass; a 5xx will not, and without
                // TLS nothing is sent. A handshake that fails on its own terms (a
                // certificate refused, an alert) is the configuration's; one the network
                // broke (a reset, a closed connection) may work next time.
                if e.status().is_some() && is_transient(&e) {
                    self.transient("STARTTLS", &e)
                } else if e.status().is_some() {
                    OpenError::Fatal(format!(
                        "{server}: the server refused STARTTLS: {}; refusing to send patient \
                         data in clear text",
                        reply_text(&e)
                    ))
                } else if is_tls_refusal(&e) {
                    tls_error(&server, &e)
                } else {
                    self.transient("STARTTLS", &e)
                }
            })
    }

    /// Whether the server offers PIPELINING: lettre keeps only the extensions it uses, so the
    /// EHLO is said again to learn it.
    async fn offers_pipelining(&self, conn: &mut AsyncSmtpConnection) -> Result<bool, OpenError> {
        match tokio::time::timeout(self.timeout, conn.command(Ehlo::new(self.hello.clone()))).await
        {
            Ok(Ok(r)) => Ok(r
                .message()
                .any(|l| l.trim().eq_ignore_ascii_case("PIPELINING"))),
            Ok(Err(e)) => Err(self.transient("EHLO", &e)),
            Err(_) => Err(self.transient("EHLO", &"timed out")),
        }
    }

    /// AUTH PLAIN or LOGIN. Rejected credentials are fatal: every message would meet them.
    async fn authenticate(
        &self,
        conn: &mut AsyncSmtpConnection,
        credentials: &Credentials,
    ) -> Result<(), OpenError> {
        let auth = tokio::time::timeout(
            self.timeout,
            conn.auth(&[Mechanism::Plain, Mechanism::Login], credentials),
        )
        .await
        .map_err(|_| self.transient("AUTH", &"timed out"))?;
        let Err(e) = auth else {
            return Ok(());
        };
        let error = match e.status() {
            Some(_) if is_transient(&e) => self.transient("AUTH", &e),
            Some(_) => OpenError::Fatal(format!(
                "{}: authentication failed: {}",
                self.server(),
                reply_text(&e)
            )),
            None if e.is_client() => OpenError::Fatal(format!(
                "{}: cannot authenticate: {e} (the server offers no AUTH PLAIN or LOGIN{})",
                self.server(),
                if conn.is_encrypted() {
                    ""
                } else {
                    "; many servers offer AUTH only over TLS"
                }
            )),
            None => self.transient("AUTH", &e),
        };
        conn.abort().await;
        Err(error)
    }

    fn take_idle(&self) -> Option<Session> {
        self.idle.lock().expect("idle sessions").pop()
    }

    fn put_idle(&self, session: Session) {
        self.idle.lock().expect("idle sessions").push(session);
    }

    async fn deliver(&self, email: &EmailOut) -> Delivery {
        if let Some(error) = self.fatal.lock().expect("fatal").clone() {
            return Delivery::Fatal { error };
        }
        // Servers quote the recipient in their replies; logs and the ledger's last error get it
        // masked (the report has the address in its own column).
        let delivery = masked(self.deliver_on_a_session(email).await, email.to.written());
        if let Delivery::Fatal { error } = &delivery {
            self.fatal
                .lock()
                .expect("fatal")
                .get_or_insert_with(|| error.clone());
        }
        delivery
    }

    async fn deliver_on_a_session(&self, email: &EmailOut) -> Delivery {
        let from: Address = email.from.clone();
        let to: Address = email.to.lettre().clone();
        loop {
            let (mut session, reused) = match self.take_idle() {
                Some(s) => (s, true),
                None => match self.open().await {
                    Ok(s) => (s, false),
                    Err(OpenError::Transient(error)) => {
                        return Delivery::Transient {
                            error,
                            retry_after: None,
                        };
                    }
                    Err(OpenError::Fatal(error)) => return Delivery::Fatal { error },
                },
            };
            match self
                .transaction(&mut session, &from, &to, &email.bytes)
                .await
            {
                Step::Done { delivery, keep } => {
                    if keep {
                        self.put_idle(session);
                    } else {
                        abort(session).await;
                    }
                    return delivery;
                }
                Step::Cut(delivery) => {
                    drop(session);
                    return delivery;
                }
                // A reused session the server had closed while idle: nothing went; open a new
                // one at once rather than count a failure.
                Step::Stale(error) => {
                    abort(session).await;
                    if !reused {
                        return Delivery::Transient {
                            error,
                            retry_after: None,
                        };
                    }
                }
            }
        }
    }

    /// MAIL, RCPT, DATA and the message, each reply classified where it stands.
    async fn transaction(
        &self,
        session: &mut Session,
        from: &Address,
        to: &Address,
        bytes: &[u8],
    ) -> Step {
        let conn = &mut session.conn;
        let mut params = Vec::new();
        if !bytes.is_ascii() {
            if !conn.server_info().supports_feature(Extension::EightBitMime) {
                return Step::done(
                    Delivery::Permanent {
                        error: "the message has 8-bit content and the server lacks 8BITMIME".into(),
                    },
                    true,
                );
            }
            params.push(MailParameter::Body(MailBodyParameter::EightBitMime));
        }
        if !AsRef::<str>::as_ref(from).is_ascii() || !AsRef::<str>::as_ref(to).is_ascii() {
            if !conn.server_info().supports_feature(Extension::SmtpUtfEight) {
                return Step::done(
                    Delivery::Permanent {
                        error: "the address is not ASCII and the server lacks SMTPUTF8".into(),
                    },
                    true,
                );
            }
            params.push(MailParameter::SmtpUtfEight);
        }

        let mail = Mail::new(Some(from.clone()), params);
        if session.pipelining {
            if let Some(step) = self.pipelined(conn, mail, to).await {
                return step;
            }
        } else if let Some(step) = self.one_by_one(conn, mail, to).await {
            return step;
        }
        session.read.store(false, Ordering::SeqCst);
        // The data, dot-stuffed and ended by CRLF.CRLF whose first CRLF ends the message's last
        // line, goes in one write (lettre's own codec stuffs byte by byte, a tenth of the CPU).
        let body = bytes.strip_suffix(b"\r\n").unwrap_or(bytes);
        let started = tokio::time::Instant::now();
        let read = Arc::clone(&session.read);
        let writing = async {
            match stuffed(body) {
                Some(data) => conn.command(data).await,
                None => conn.message(body).await,
            }
        };
        tokio::pin!(writing);
        // `timeout` for writing the message; once it all went out (the reply is being read),
        // `final_timeout` more for the answer (counted from when writing's time ran out, so
        // never less than `final_timeout` after the message was out).
        let answer = self.timeout + self.final_timeout;
        let reply = loop {
            let limit = if read.load(Ordering::SeqCst) {
                answer
            } else {
                self.timeout
            };
            match tokio::time::timeout_at(started + limit, &mut writing).await {
                Ok(r) => break Ok(r),
                Err(_) if limit < answer && read.load(Ordering::SeqCst) => continue,
                Err(e) => break Err(e),
            }
        };
        let went_out = session.read.load(Ordering::SeqCst);
        match reply {
            Ok(Ok(response)) if response.is_positive() && first_digit(&response) == 2 => {
                Step::done(
                    Delivery::Sent {
                        provider_id: response_text(&response),
                    },
                    true,
                )
            }
            Ok(Ok(response)) => Step::done(
                Delivery::Unknown {
                    error: format!(
                        "unexpected reply to the end of the message: {}",
                        response_text(&response)
                    ),
                },
                false,
            ),
            // The server answered the message: the transaction is over, the session usable.
            Ok(Err(e)) if e.status().is_some() => Step::done(self.refusal(&e), true),
            Ok(Err(e)) if went_out => Step::done(
                Delivery::Unknown {
                    error: format!(
                        "the connection failed after the whole message was sent, before the \
                         server's reply: {e}"
                    ),
                },
                false,
            ),
            Ok(Err(e)) => Step::Cut(lost(format!("writing the message: {e}"))),
            Err(_) if went_out => Step::done(
                Delivery::Unknown {
                    error: format!(
                        "no reply within {:?} after the whole message was sent \
                         (email.smtp.final_timeout)",
                        self.final_timeout
                    ),
                },
                false,
            ),
            Err(_) => Step::Cut(lost(format!(
                "timed out after {:?} writing the message",
                self.timeout
            ))),
        }
    }

    /// An error reply to RCPT, DATA or the message: 4xx is worth another try; 5xx is this
    /// recipient's permanent failure. Except, before the server has taken any recipient this
    /// run, when its enhanced status code (RFC 3463) says the relay's policy, the protocol or the
    /// sender (relay access denied, a sender or HELO the relay refuses): every message would
    /// meet that, so the run stops, nobody marked failed. (Postfix reports its client, HELO and
    /// sender restrictions at RCPT, so a relay not set up for this host looks like a refused
    /// recipient unless the code is read.) Once a recipient went through, the same codes are
    /// one recipient's (`check_recipient_access`, a content filter): stopping there would stop
    /// every later run at that patient.
    fn refusal(&self, e: &LettreError) -> Delivery {
        if is_auth_reply(e) {
            Delivery::Fatal {
                error: format!("the server wants authentication: {}", reply_text(e)),
            }
        } else if is_transient(e) {
            transient(e)
        } else if !self.relaying.load(Ordering::Relaxed)
            && enhanced_code(&reply_text(e)).is_some_and(not_the_recipients)
        {
            Delivery::Fatal {
                error: format!(
                    "the server refused: {} (a refusal of the relay, the sender or the message, \
                     not of the patient's address)",
                    reply_text(e)
                ),
            }
        } else {
            Delivery::Permanent {
                error: reply_text(e),
            }
        }
    }

    /// MAIL, RCPT and DATA one round trip each. `None` when the server is ready for the data.
    async fn one_by_one(
        &self,
        conn: &mut AsyncSmtpConnection,
        mail: Mail,
        to: &Address,
    ) -> Option<Step> {
        // MAIL FROM: a refusal concerns our sender, never the patient.
        match self.command(conn, mail).await {
            Ok(_) => {}
            Err(Failure::Reply(e)) if is_closing(&e) => {
                return Some(Step::Stale(format!("MAIL FROM: {}", reply_text(&e))));
            }
            Err(Failure::Reply(e)) if is_transient(&e) => {
                return Some(self.after_refusal(conn, transient(&e)).await);
            }
            Err(Failure::Reply(e)) => {
                return Some(Step::done(
                    Delivery::Fatal {
                        error: format!("the server refuses the sender: {}", reply_text(&e)),
                    },
                    false,
                ));
            }
            Err(Failure::Lost(error)) => return Some(Step::Stale(format!("MAIL FROM: {error}"))),
        }
        // RCPT TO: a refusal concerns this recipient alone.
        match self.command(conn, Rcpt::new(to.clone(), Vec::new())).await {
            Ok(_) => self.relaying.store(true, Ordering::Relaxed),
            Err(Failure::Reply(e)) => {
                return Some(self.after_refusal(conn, self.refusal(&e)).await);
            }
            Err(Failure::Lost(error)) => {
                return Some(Step::done(lost(format!("RCPT TO: {error}")), false));
            }
        }
        match self.command(conn, Data).await {
            Ok(_) => {}
            Err(Failure::Reply(e)) => {
                return Some(self.after_refusal(conn, self.refusal(&e)).await);
            }
            Err(Failure::Lost(error)) => {
                return Some(Step::done(lost(format!("DATA: {error}")), false));
            }
        }
        None
    }

    /// MAIL, RCPT and DATA in one write (PIPELINING), their three replies read in order and each
    /// classified as in [`Self::one_by_one`]. `None` when the server is ready for the data.
    async fn pipelined(
        &self,
        conn: &mut AsyncSmtpConnection,
        mail: Mail,
        to: &Address,
    ) -> Option<Step> {
        let batch = format!("{mail}{}{Data}", Rcpt::new(to.clone(), Vec::new()));
        let replies = tokio::time::timeout(self.timeout, async {
            let mail = conn.command(batch).await;
            if mail.as_ref().is_err_and(|e| e.status().is_none()) {
                return (mail, None, None);
            }
            let rcpt = conn.read_response().await;
            if rcpt.as_ref().is_err_and(|e| e.status().is_none()) {
                return (mail, Some(rcpt), None);
            }
            let data = conn.read_response().await;
            (mail, Some(rcpt), Some(data))
        })
        .await;
        let Ok((mail, rcpt, data)) = replies else {
            return Some(Step::done(
                lost(format!(
                    "no reply to MAIL/RCPT/DATA within {:?}",
                    self.timeout
                )),
                false,
            ));
        };
        let lost_at =
            |what: &str, e: &LettreError| Some(Step::done(lost(format!("{what}: {e}")), false));
        // Whatever the first refusal, the server must not be left waiting for data.
        let data_open = matches!(&data, Some(Ok(_)));
        let outcome = match mail {
            Err(e) if e.status().is_none() => return Some(Step::Stale(format!("MAIL FROM: {e}"))),
            Err(e) if is_closing(&e) => {
                return Some(Step::Stale(format!("MAIL FROM: {}", reply_text(&e))));
            }
            Err(e) if is_transient(&e) => Some(transient(&e)),
            Err(e) => {
                return Some(Step::done(
                    Delivery::Fatal {
                        error: format!("the server refuses the sender: {}", reply_text(&e)),
                    },
                    false,
                ));
            }
            Ok(_) => None,
        };
        let outcome = match (outcome, rcpt.expect("read after a reply to MAIL")) {
            (_, Err(e)) if e.status().is_none() => return lost_at("RCPT TO", &e),
            (Some(o), _) => Some(o),
            (None, Err(e)) => Some(self.refusal(&e)),
            (None, Ok(_)) => {
                self.relaying.store(true, Ordering::Relaxed);
                None
            }
        };
        let outcome = match (outcome, data.expect("read after a reply to RCPT")) {
            (_, Err(e)) if e.status().is_none() => return lost_at("DATA", &e),
            (Some(o), _) => Some(o),
            (None, Err(e)) => Some(self.refusal(&e)),
            (None, Ok(_)) => None,
        };
        match outcome {
            None => None,
            // The server said 354 after refusing MAIL or RCPT: leave without sending the dot.
            Some(o) if data_open => Some(Step::done(o, false)),
            Some(o) => Some(self.after_refusal(conn, o).await),
        }
    }

    /// Sends one command and reads its reply, within the timeout.
    async fn command(
        &self,
        conn: &mut AsyncSmtpConnection,
        command: impl fmt::Display,
    ) -> Result<Response, Failure> {
        match tokio::time::timeout(self.timeout, conn.command(command)).await {
            Ok(Ok(r)) => Ok(r),
            Ok(Err(e)) if e.status().is_some() => Err(Failure::Reply(e)),
            Ok(Err(e)) => Err(Failure::Lost(e.to_string())),
            Err(_) => Err(Failure::Lost(format!("no reply within {:?}", self.timeout))),
        }
    }

    /// After a refused command the transaction is reset; the session is kept if RSET works.
    async fn after_refusal(&self, conn: &mut AsyncSmtpConnection, delivery: Delivery) -> Step {
        let keep = self.command(conn, Rset).await.is_ok();
        Step::done(delivery, keep)
    }
}

enum Step {
    Done {
        delivery: Delivery,
        keep: bool,
    },
    /// The session was dead before anything was sent.
    Stale(String),
    /// The message was being written and did not all go out: the connection is dropped without
    /// another word. A QUIT would first flush what TLS still holds of the message, its end
    /// included, and a server that had only stalled would take it: the retry would then deliver
    /// it a second time.
    Cut(Delivery),
}

impl Step {
    fn done(delivery: Delivery, keep: bool) -> Step {
        Step::Done { delivery, keep }
    }
}

enum Failure {
    /// The server answered with an error reply.
    Reply(LettreError),
    /// No usable reply: the connection failed or timed out.
    Lost(String),
}

impl Transport<EmailOut> for Smtp {
    fn name(&self) -> &str {
        "smtp"
    }

    /// Opens the first session (TLS, AUTH) before anything is sent, and keeps it for the run.
    fn check(&self) -> BoxFuture<'_, Result<(), CheckError>> {
        Box::pin(async move {
            match self.open().await {
                Ok(session) => {
                    tracing::debug!(
                        server = %self.server(),
                        mode = ?self.mode,
                        encrypted = session.conn.is_encrypted(),
                        "smtp session open"
                    );
                    self.put_idle(session);
                    Ok(())
                }
                Err(OpenError::Transient(e)) => Err(CheckError::Unavailable(e)),
                Err(OpenError::Fatal(e)) => Err(CheckError::Unusable(e)),
            }
        })
    }

    fn send<'a>(&'a self, message: &'a EmailOut) -> BoxFuture<'a, Delivery> {
        Box::pin(self.deliver(message))
    }

    /// Says QUIT on every idle session.
    fn close(&self) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            let sessions: Vec<Session> = std::mem::take(&mut *self.idle.lock().expect("idle"));
            let quits = sessions.into_iter().map(|mut s| async move {
                let _ = tokio::time::timeout(Duration::from_secs(2), s.conn.command(Quit)).await;
            });
            futures::future::join_all(quits).await;
        })
    }
}

/// The DATA payload of `body` (CRLF line ends, not ending in CRLF): a `.` starting a line is
/// doubled, and `CRLF.CRLF` ends it. `None` for a body that is not UTF-8 (lettre then writes it).
fn stuffed(body: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(body).ok()?;
    let mut out = String::with_capacity(body.len() + 16);
    if text.starts_with('.') {
        out.push('.');
    }
    let mut start = 0;
    for i in memchr::memmem::find_iter(body, b"\r\n.") {
        out.push_str(&text[start..i + 2]);
        out.push('.');
        start = i + 2;
    }
    out.push_str(&text[start..]);
    out.push_str("\r\n.\r\n");
    Some(out)
}

async fn abort(mut session: Session) {
    let _ = tokio::time::timeout(Duration::from_secs(1), session.conn.abort()).await;
}

/// `delivery` with every mention of `address` (any case) masked.
fn masked(delivery: Delivery, address: &str) -> Delivery {
    let hide = |error: String| {
        let lower = error.to_lowercase();
        let needle = address.to_lowercase();
        if needle.is_empty() || !lower.contains(&needle) {
            return error;
        }
        let mask = crate::model::mask(crate::model::Channel::Email, address);
        let mut out = String::with_capacity(error.len());
        let mut rest = 0;
        // Lowercasing ASCII keeps byte offsets; a non-ASCII reply is masked as a whole.
        if lower.len() != error.len() {
            return lower.replace(&needle, &mask);
        }
        for (i, _) in lower.match_indices(&needle) {
            out.push_str(&error[rest..i]);
            out.push_str(&mask);
            rest = i + needle.len();
        }
        out.push_str(&error[rest..]);
        out
    };
    delivery.map_error(hide)
}

/// A connection lost or timed out before the message was complete: nothing was delivered.
fn lost(error: String) -> Delivery {
    Delivery::Transient {
        error,
        retry_after: None,
    }
}

fn transient(e: &LettreError) -> Delivery {
    Delivery::Transient {
        error: reply_text(e),
        retry_after: None,
    }
}

/// The enhanced status code after a reply's code (`550 5.1.1 …` → `(5, 1, 1)`), if it has one.
fn enhanced_code(reply: &str) -> Option<(u16, u16, u16)> {
    let token = reply.split_whitespace().nth(1)?;
    let mut parts = token.split('.').map(|p| p.parse::<u16>().ok());
    let code = (parts.next()??, parts.next()??, parts.next()??);
    (parts.next().is_none() && matches!(code.0, 2 | 4 | 5)).then_some(code)
}

/// Whether an enhanced status code says the refusal is not about the recipient (RFC 3463):
/// security or policy (X.7.x: relay access denied, sender not allowed, authentication), the
/// protocol (X.5.x: a HELO refused) or the sender's address (X.1.7, X.1.8). The others (the
/// recipient's address or mailbox, X.1.x and X.2.x; the mail system, X.3.x; routing, X.4.x;
/// content, X.6.x; undefined, X.0.0) stay the recipient's.
fn not_the_recipients((_, subject, detail): (u16, u16, u16)) -> bool {
    matches!((subject, detail), (7, _) | (5, _) | (1, 7 | 8))
}

/// 421: the server is closing the session, as Postfix does once a session sat idle past its
/// timeout. To the first command on a reused session, it means the session was stale, not that
/// the message was refused.
fn is_closing(e: &LettreError) -> bool {
    e.status().is_some_and(|c| c.to_string() == "421")
}

fn is_transient(e: &LettreError) -> bool {
    e.is_transient()
}

/// 530 (authentication required), 534, 535 (credentials rejected), 538.
fn is_auth_reply(e: &LettreError) -> bool {
    e.status()
        .is_some_and(|c| matches!(c.to_string().as_str(), "530" | "534" | "535" | "538"))
}

/// `550 5.1.1 <…>: Recipient address rejected` from lettre's error text.
fn reply_text(e: &LettreError) -> String {
    let text = e.to_string();
    // lettre writes "permanent error (550): …"; keep the server's words with the code first.
    match (e.status(), text.split_once("): ")) {
        (Some(code), Some((_, rest))) => format!("{code} {}", rest.trim()),
        (Some(code), None) => format!("{code} {text}"),
        (None, _) => text,
    }
}

fn first_digit(r: &Response) -> u8 {
    r.code().to_string().as_bytes()[0] - b'0'
}

/// `250 2.0.0 Ok: queued as 4XyZ`: the reply that proves the message was taken.
fn response_text(r: &Response) -> String {
    let lines: Vec<&str> = r.message().collect();
    format!("{} {}", r.code(), lines.join(" "))
        .trim()
        .to_string()
}

/// Whether a TLS handshake failed on its own terms (a certificate refused, an alert from the
/// server, a protocol error), which rustls reports inside an I/O error of kind `InvalidData`,
/// rather than on the network (a reset, a connection closed mid-handshake).
fn is_tls_refusal(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cause = Some(e);
    while let Some(c) = cause {
        if c.is::<rustls::Error>() {
            return true;
        }
        if let Some(io) = c.downcast_ref::<std::io::Error>()
            && (io.kind() == std::io::ErrorKind::InvalidData
                || io.get_ref().is_some_and(|i| i.is::<rustls::Error>()))
        {
            return true;
        }
        cause = c.source();
    }
    false
}

fn tls_error(server: &str, e: &dyn fmt::Display) -> OpenError {
    OpenError::Fatal(format!(
        "{server}: TLS failed: {e} (is the certificate trusted? a private relay's CA goes in \
         email.smtp.ca_file)"
    ))
}

/// A rustls client configuration with the system's roots and the optional extra CA file, for
/// implicit TLS. (STARTTLS gets the same trust through lettre's own builder.)
fn client_config(extra_pem: Option<&[u8]>) -> Result<rustls::ClientConfig, SmtpError> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;

    let mut roots = rustls::RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    roots.add_parsable_certificates(native.certs);
    if let Some(pem) = extra_pem {
        let mut added = 0;
        for cert in CertificateDer::pem_slice_iter(pem) {
            let cert = cert.map_err(SmtpError::CaFilePem)?;
            roots.add(cert).map_err(SmtpError::CaFileCertificate)?;
            added += 1;
        }
        if added == 0 {
            return Err(SmtpError::CaFileEmpty);
        }
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(SmtpError::ImplicitTls)?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

/// A stream that notes when it is read from (see [`Session::read`]).
#[cfg(test)]
mod tests {
    use super::{enhanced_code, not_the_recipients, stuffed};

    #[test]
    fn enhanced_codes_tell_the_recipients_refusals_from_the_relays() {
        let relays = |reply: &str| enhanced_code(reply).map(not_the_recipients);
        for reply in [
            "550 5.1.1 <a@b>: Recipient address rejected",
            "552 5.2.2 Mailbox full",
            "550 5.1.10 RESOLVER.ADR.RecipientNotFound",
            "554 5.4.4 Unable to route",
            "500 5.3.0 Error: command failed",
        ] {
            assert_eq!(relays(reply), Some(false), "{reply}");
        }
        for reply in [
            "554 5.7.1 <a@b>: Relay access denied",
            "553 5.7.1 <s@c>: Sender address rejected",
            "504 5.5.2 <vm>: Helo command rejected",
            "550 5.1.8 Bad sender's system address",
        ] {
            assert_eq!(relays(reply), Some(true), "{reply}");
        }
        assert_eq!(relays("500 Error: command failed"), None);
        assert_eq!(relays("550 5.1 odd"), None);
    }

    #[test]
    fn replies_quoting_the_recipient_are_masked() {
        use super::{Delivery, masked};
        let d = masked(
            Delivery::Permanent {
                error: "550 5.1.1 <Ann.Lee@Example.com>: Recipient address rejected".into(),
            },
            "ann.lee@example.com",
        );
        assert_eq!(
            d,
            Delivery::Permanent {
                error: "550 5.1.1 <a***@example.com>: Recipient address rejected".into()
            }
        );
    }

    #[test]
    fn dot_stuffing_doubles_leading_dots_and_ends_the_data() {
        assert_eq!(stuffed(b"a\r\nb").unwrap(), "a\r\nb\r\n.\r\n");
        assert_eq!(
            stuffed(b".a\r\n.\r\n..b\r\nc.d").unwrap(),
            "..a\r\n..\r\n...b\r\nc.d\r\n.\r\n"
        );
        assert_eq!(stuffed(b"").unwrap(), "\r\n.\r\n");
        assert!(stuffed(b"\xff").is_none());
    }
}

#[derive(Debug)]
struct Wire<S> {
    inner: S,
    read: Arc<AtomicBool>,
    peer: SocketAddr,
}

impl<S: AsyncRead + Unpin> AsyncRead for Wire<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        self.read.store(true, Ordering::SeqCst);
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Wire<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

impl<S> AsyncTokioStream for Wire<S>
where
    S: AsyncRead + AsyncWrite + Send + Sync + Unpin + fmt::Debug,
{
    fn peer_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.peer)
    }
}
