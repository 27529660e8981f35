//! Sessions with the relay: opening one (TCP with `TCP_NODELAY`, then implicit TLS or
//! STARTTLS, the greeting, EHLO, AUTH), each failure placed as worth another try or fatal to
//! the run; the stack of idle sessions a message takes one from; and the stream lettre talks
//! over, which notes when it is read from so that a failed write can be placed before or after
//! the whole message went out.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{AsyncSmtpConnection, AsyncTokioStream, TlsParameters};
use lettre::transport::smtp::commands::{Ehlo, Quit};
use lettre::transport::smtp::extension::ClientId;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

use super::error::SmtpError;
use super::reply::{is_transient, reply_text};
use super::tls::{Encryption, is_tls_refusal};
use crate::config::{SmtpSettings, TlsMode};

/// The relay as configured, and how to open a session with it.
pub(super) struct Relay {
    host: String,
    port: u16,
    hello: ClientId,
    timeout: Duration,
    credentials: Option<Credentials>,
    tls: Encryption,
    /// Clear text was allowed because the host is this machine (not by `allow_insecure`): the
    /// address the name resolves to must then be a loopback one.
    loopback_only: bool,
}

/// One open, greeted, authenticated session.
pub(super) struct Session {
    pub(super) conn: AsyncSmtpConnection,
    /// Set whenever the connection is read from; cleared just before the message is written.
    /// Set after a failed write of the message means the whole message went out (lettre reads
    /// the reply only after writing and flushing the final dot).
    pub(super) read: Arc<AtomicBool>,
    /// The server offers PIPELINING (RFC 2920): MAIL, RCPT and DATA go in one write.
    pub(super) pipelining: bool,
}

/// Why a session could not be opened.
pub(super) enum OpenError {
    /// Nothing reached the server, or it is busy: worth another try later.
    Transient(String),
    /// Wrong credentials, an untrusted certificate, a server without STARTTLS: no point going on.
    Fatal(String),
}

impl Relay {
    /// Reads the password and the extra CA file now, so a missing secret stops the run before
    /// anything goes.
    pub(super) fn new(settings: &SmtpSettings) -> Result<Self, SmtpError> {
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
        Ok(Relay {
            host: settings.host.clone(),
            port: settings.port,
            hello: ClientId::Domain(settings.helo.clone()),
            timeout: settings.timeout,
            credentials,
            tls: Encryption::new(settings)?,
            loopback_only: settings.tls == TlsMode::None && !settings.allow_insecure,
        })
    }

    /// `host:port`, as errors name the server.
    pub(super) fn server(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }

    /// Opens a session: TCP with `TCP_NODELAY`, TLS as configured, EHLO, AUTH.
    pub(super) async fn open(&self) -> Result<Session, OpenError> {
        let (tcp, peer) = self.connect().await?;
        let read = Arc::new(AtomicBool::new(false));
        let stream = self.handshake(tcp, peer, &read).await?;
        let mut conn = self.greet(stream).await?;
        if let Encryption::StartTls(params) = &self.tls {
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
        let Encryption::Implicit(connector, name) = &self.tls else {
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
}

impl Session {
    /// Drops the session without waiting long for the server.
    pub(super) async fn abort(mut self) {
        let _ = tokio::time::timeout(Duration::from_secs(1), self.conn.abort()).await;
    }
}

/// Sessions open and unused between messages; the last one put back is taken first.
#[derive(Default)]
pub(super) struct Idle(Mutex<Vec<Session>>);

impl Idle {
    pub(super) fn take(&self) -> Option<Session> {
        self.0.lock().expect("idle sessions").pop()
    }

    pub(super) fn put(&self, session: Session) {
        self.0.lock().expect("idle sessions").push(session);
    }

    /// Says QUIT on every idle session.
    pub(super) async fn quit_all(&self) {
        let sessions: Vec<Session> = std::mem::take(&mut *self.0.lock().expect("idle sessions"));
        let quits = sessions.into_iter().map(|mut s| async move {
            let _ = tokio::time::timeout(Duration::from_secs(2), s.conn.command(Quit)).await;
        });
        futures::future::join_all(quits).await;
    }
}

fn tls_error(server: &str, e: &dyn fmt::Display) -> OpenError {
    OpenError::Fatal(format!(
        "{server}: TLS failed: {e} (is the certificate trusted? a private relay's CA goes in \
         email.smtp.ca_file)"
    ))
}

/// A stream that notes when it is read from (see [`Session::read`]).
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
