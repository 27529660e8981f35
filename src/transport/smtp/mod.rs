//! The `smtp` email transport: lettre's async SMTP client over connections this module opens
//! itself, so that every socket has `TCP_NODELAY` (the released lettre stalls 40 ms per message
//! without it, see notes/lettre.md) and so that a failure can be placed exactly: before the
//! message was complete (retry) or after (outcome unknown, never retried).
//!
//! One session per worker: a session is taken from the idle stack or opened (TCP, then implicit
//! TLS or STARTTLS, then AUTH), carries one message, and goes back when the server's last reply
//! left it usable. At most `concurrency` sessions exist, because the send loop keeps at most that
//! many messages at once (`Transport::sessions`).
//!
//! Opening and keeping sessions is `session`'s (with `tls` for the trust it needs), one
//! message's MAIL, RCPT and DATA is `transaction`'s, what a reply means is `reply`'s, and what
//! can be wrong with the settings is `error`'s.

mod error;
mod reply;
mod session;
mod tls;
mod transaction;

use std::sync::Mutex;

use futures::future::BoxFuture;
use lettre::Address;

pub use error::SmtpError;

use super::{CheckError, Delivery, EmailOut, Transport};
use crate::config::{SmtpSettings, TlsMode};
use reply::masked;
use session::{Idle, OpenError, Relay};
use transaction::{Step, Transactions};

/// An SMTP relay and the sessions open to it.
pub struct Smtp {
    relay: Relay,
    mode: TlsMode,
    transactions: Transactions,
    idle: Idle,
    /// Set by the first fatal answer (credentials revoked, sender refused): the messages already
    /// claimed behind it are not sent to a server that will refuse them too.
    fatal: Mutex<Option<String>>,
}

impl Smtp {
    /// Prepares the transport; reads the password and the extra CA file now, so a missing secret
    /// stops the run before anything goes.
    pub fn new(settings: &SmtpSettings) -> Result<Self, SmtpError> {
        Ok(Smtp {
            relay: Relay::new(settings)?,
            mode: settings.tls,
            transactions: Transactions::new(settings.timeout, settings.final_timeout),
            idle: Idle::default(),
            fatal: Mutex::new(None),
        })
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
            let (mut session, reused) = match self.idle.take() {
                Some(s) => (s, true),
                None => match self.relay.open().await {
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
                .transactions
                .run(&mut session, &from, &to, &email.bytes)
                .await
            {
                Step::Done { delivery, keep } => {
                    if keep {
                        self.idle.put(session);
                    } else {
                        session.abort().await;
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
                    session.abort().await;
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
}

impl Transport<EmailOut> for Smtp {
    fn name(&self) -> &str {
        "smtp"
    }

    /// Opens the first session (TLS, AUTH) before anything is sent, and keeps it for the run.
    fn check(&self) -> BoxFuture<'_, Result<(), CheckError>> {
        Box::pin(async move {
            match self.relay.open().await {
                Ok(session) => {
                    tracing::debug!(
                        server = %self.relay.server(),
                        mode = ?self.mode,
                        encrypted = session.conn.is_encrypted(),
                        "smtp session open"
                    );
                    self.idle.put(session);
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
        Box::pin(self.idle.quit_all())
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::Smtp;
    use crate::config::{SecretSource, SmtpSettings, TlsMode};

    fn settings(tls: TlsMode) -> SmtpSettings {
        SmtpSettings {
            host: "relay.example".into(),
            port: 587,
            tls,
            username: None,
            password: None,
            allow_insecure: false,
            ca_file: None,
            timeout: Duration::from_secs(5),
            final_timeout: Duration::from_secs(5),
            helo: "clinic.example".into(),
            outbox: "outbox".into(),
        }
    }

    /// Word for word what these settings were refused with when the errors were strings.
    #[test]
    fn settings_that_cannot_work_are_refused_before_any_session() {
        let refused = |s: SmtpSettings| Smtp::new(&s).err().expect("refused").to_string();
        let mut s = settings(TlsMode::StartTls);
        s.username = Some("clinic".into());
        assert_eq!(
            refused(s.clone()),
            "email.smtp.username is set but no password_env or password_file"
        );
        s.password = Some(SecretSource::Env("OUTREACH_TEST_NEVER_SET".into()));
        assert_eq!(
            refused(s),
            "email.smtp.password: the environment variable OUTREACH_TEST_NEVER_SET is not set"
        );
        let mut s = settings(TlsMode::StartTls);
        s.ca_file = Some("/nonexistent/ca.pem".into());
        assert_eq!(
            refused(s),
            "email.smtp.ca_file /nonexistent/ca.pem: No such file or directory (os error 2)"
        );
        let mut s = settings(TlsMode::Tls);
        s.host = "relay example".into();
        assert_eq!(
            refused(s),
            "email.smtp.host \"relay example\": invalid dns name"
        );
    }
}
