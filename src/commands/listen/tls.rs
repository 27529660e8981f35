//! HTTPS without a reverse proxy: `[listen] tls_cert_file` and `tls_key_file`, read and checked
//! before the server binds (a bad file stops the start, naming it), then a listener that hands
//! axum only connections whose TLS handshake finished. Handshakes run in tasks of their own, so
//! a client that stalls or fails one delays nobody and stops nothing; graceful shutdown is
//! axum's, as over plain HTTP. The key's bytes are never logged or put in an error: a PEM
//! parser's message can quote the file, so errors about the key are this file's own words.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::pem::{self, PemObject};
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::server::TlsStream;

use super::setup::ListenError;
use crate::config::TlsFiles;
use crate::paths::show_path;

/// A client gets this long to finish its handshake; then its connection is closed.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The acceptor for `files`: the certificate chain and key read, parsed and matched.
pub fn acceptor(files: &TlsFiles) -> Result<TlsAcceptor, ListenError> {
    let certs = certificates(&files.cert)?;
    let key = private_key(&files.key)?;
    let refused = |path: &Path, message: String| ListenError::Tls {
        path: path.to_path_buf(),
        message,
    };
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| refused(&files.cert, e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| match e {
            rustls::Error::InconsistentKeys(_) => refused(
                &files.key,
                format!(
                    "this key does not belong to the certificate in {}",
                    show_path(&files.cert)
                ),
            ),
            // rustls words it for a peer's certificate: name the reason only.
            rustls::Error::InvalidCertificate(why) => refused(
                &files.cert,
                format!("its first certificate cannot be used ({why:?})"),
            ),
            _ => refused(
                &files.key,
                "is not a private key that can sign (RSA, ECDSA or Ed25519)".to_string(),
            ),
        })?;
    // The router speaks HTTP/1.1 only: say so, rather than let a client guess.
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// The certificates of a PEM file, the server's first.
fn certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, ListenError> {
    let refused = |message: String| ListenError::Tls {
        path: path.to_path_buf(),
        message,
    };
    let pem =
        std::fs::read(path).map_err(|e| refused(format!("cannot read the certificate: {e}")))?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, pem::Error>>()
        .map_err(|e| refused(format!("not a PEM certificate file: {e}")))?;
    if certs.is_empty() {
        return Err(refused(
            "holds no certificate (PEM, -----BEGIN CERTIFICATE-----)".to_string(),
        ));
    }
    Ok(certs)
}

/// The first private key of a PEM file (PKCS#8, PKCS#1 RSA or SEC1 EC), unencrypted.
fn private_key(path: &Path) -> Result<PrivateKeyDer<'static>, ListenError> {
    let refused = |message: &str| ListenError::Tls {
        path: path.to_path_buf(),
        message: message.to_string(),
    };
    let pem = std::fs::read(path).map_err(|e| ListenError::Tls {
        path: path.to_path_buf(),
        message: format!("cannot read the private key: {e}"),
    })?;
    match PrivateKeyDer::from_pem_slice(&pem) {
        Ok(key) => Ok(key),
        Err(pem::Error::NoItemsFound) => Err(refused(
            "holds no unencrypted private key (PEM, -----BEGIN PRIVATE KEY-----, or RSA or EC \
             PRIVATE KEY)",
        )),
        // Not the parser's message: it may quote a line of the key.
        Err(_) => Err(refused("is not a readable PEM private key")),
    }
}

/// A TCP listener that yields connections once their TLS handshake is done.
pub struct Listener {
    tcp: TcpListener,
    acceptor: TlsAcceptor,
    /// Handshakes under way; dropped with the listener, which aborts them.
    handshakes: JoinSet<Option<(TlsStream<TcpStream>, SocketAddr)>>,
}

impl Listener {
    pub fn new(tcp: TcpListener, acceptor: TlsAcceptor) -> Self {
        Listener {
            tcp,
            acceptor,
            handshakes: JoinSet::new(),
        }
    }
}

impl axum::serve::Listener for Listener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    /// Cancel-safe, as axum needs: a handshake that finishes while nobody waits stays in the
    /// set for the next call.
    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            tokio::select! {
                accepted = self.tcp.accept() => match accepted {
                    Ok((stream, peer)) => {
                        self.handshakes.spawn(handshake(self.acceptor.clone(), stream, peer));
                    }
                    Err(e) => accept_failed(e).await,
                },
                Some(done) = self.handshakes.join_next() => {
                    if let Ok(Some(conn)) = done {
                        return conn;
                    }
                }
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.tcp.local_addr()
    }
}

/// One client's handshake; `None` (logged at debug) when it fails or takes too long.
async fn handshake(
    acceptor: TlsAcceptor,
    stream: TcpStream,
    peer: SocketAddr,
) -> Option<(TlsStream<TcpStream>, SocketAddr)> {
    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
        Ok(Ok(tls)) => Some((tls, peer)),
        Ok(Err(e)) => {
            tracing::debug!("TLS handshake with {peer} failed: {e}");
            None
        }
        Err(_) => {
            tracing::debug!("TLS handshake with {peer} timed out");
            None
        }
    }
}

/// What axum's own TCP listener does when `accept` fails: a connection reset before it was
/// taken is nothing; anything else (out of file descriptors) is logged and waited out.
async fn accept_failed(e: std::io::Error) {
    use std::io::ErrorKind;
    if matches!(
        e.kind(),
        ErrorKind::ConnectionRefused | ErrorKind::ConnectionAborted | ErrorKind::ConnectionReset
    ) {
        return;
    }
    tracing::error!("accepting a connection: {e}");
    tokio::time::sleep(Duration::from_secs(1)).await;
}

/// Serves `router` on `tcp`, over TLS when there is an acceptor, until `shutdown` resolves;
/// requests in flight finish first.
pub async fn serve(
    tcp: TcpListener,
    tls: Option<TlsAcceptor>,
    router: axum::Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    match tls {
        None => {
            axum::serve(tcp, router)
                .with_graceful_shutdown(shutdown)
                .await
        }
        Some(acceptor) => {
            axum::serve(Listener::new(tcp, acceptor), router)
                .with_graceful_shutdown(shutdown)
                .await
        }
    }
}
