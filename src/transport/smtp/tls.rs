//! How the relay is trusted: the campaign's `tls` mode turned, once, into what a session needs
//! to encrypt (lettre's STARTTLS parameters, or a rustls connector for implicit TLS), with the
//! system's roots and the optional `ca_file`; and how a handshake that failed on its own terms
//! (a certificate refused) is told from one the network broke.

use std::sync::Arc;

use lettre::transport::smtp::client::{Certificate, TlsParameters};
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::ServerName;

use super::error::SmtpError;
use crate::config::{SmtpSettings, TlsMode};

/// The encryption a session gets, as configured.
pub(super) enum Encryption {
    /// Clear text: `tls = "none"`.
    Clear,
    /// STARTTLS: lettre upgrades the session with these.
    StartTls(TlsParameters),
    /// Implicit TLS: the handshake is done here, before lettre reads the greeting.
    Implicit(TlsConnector, ServerName<'static>),
}

impl Encryption {
    /// Reads the extra CA file now (whatever the mode), so that a missing one stops the run
    /// before anything goes.
    pub(super) fn new(settings: &SmtpSettings) -> Result<Encryption, SmtpError> {
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
        Ok(match settings.tls {
            TlsMode::None => Encryption::Clear,
            TlsMode::StartTls => {
                let mut builder = TlsParameters::builder(settings.host.clone());
                if let Some(pem) = &extra {
                    let cert = Certificate::from_pem(pem).map_err(SmtpError::CaFileNotPem)?;
                    builder = builder.add_root_certificate(cert);
                }
                Encryption::StartTls(builder.build_rustls().map_err(SmtpError::StartTls)?)
            }
            TlsMode::Tls => {
                let config = client_config(extra.as_deref())?;
                let name = ServerName::try_from(settings.host.clone()).map_err(|source| {
                    SmtpError::HostName {
                        host: settings.host.clone(),
                        source,
                    }
                })?;
                Encryption::Implicit(TlsConnector::from(Arc::new(config)), name)
            }
        })
    }
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

/// Whether a TLS handshake failed on its own terms (a certificate refused, an alert from the
/// server, a protocol error), which rustls reports inside an I/O error of kind `InvalidData`,
/// rather than on the network (a reset, a connection closed mid-handshake).
pub(super) fn is_tls_refusal(e: &(dyn std::error::Error + 'static)) -> bool {
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
