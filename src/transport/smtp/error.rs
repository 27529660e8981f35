//! What can be wrong with the `[email.smtp]` settings before any session is opened: a secret or
//! a CA file that cannot be read, TLS that cannot be set up, a host name implicit TLS cannot
//! check a certificate against. Each is found before anything is claimed, so nothing is sent.

use std::io;
use std::path::PathBuf;

use lettre::transport::smtp::Error as LettreError;
use tokio_rustls::rustls;

/// Why the SMTP transport cannot be set up from the campaign's `[email.smtp]` settings.
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
