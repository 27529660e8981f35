//! One message's transaction on an open session: MAIL, RCPT and DATA (pipelined when the
//! server offers it), then the message, dot-stuffed, in one write; each reply classified where
//! it stands. A failure is placed exactly: before the message was complete (nothing went, worth
//! another try) or after (the outcome is unknown, never retried), and it says whether the
//! session may carry the next message.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use lettre::Address;
use lettre::transport::smtp::Error as LettreError;
use lettre::transport::smtp::client::AsyncSmtpConnection;
use lettre::transport::smtp::commands::{Data, Mail, Rcpt, Rset};
use lettre::transport::smtp::extension::{Extension, MailBodyParameter, MailParameter};
use lettre::transport::smtp::response::Response;

use super::reply::{
    first_digit, is_closing, is_transient, lost, refusal, reply_text, response_text, transient,
};
use super::session::Session;
use crate::transport::Delivery;

/// How messages are handed over, and what the relay has shown of itself this run.
pub(super) struct Transactions {
    timeout: Duration,
    /// For the answer to a message once it all went out (at least `timeout`).
    final_timeout: Duration,
    /// The server has taken a recipient this run: the relay lets us through, so a policy
    /// refusal from now on is about that recipient (see [`refusal`]).
    relaying: AtomicBool,
}

/// How a transaction ended, and what becomes of its session.
pub(super) enum Step {
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

impl Transactions {
    /// `final_timeout` is taken as at least `timeout`.
    pub(super) fn new(timeout: Duration, final_timeout: Duration) -> Self {
        Transactions {
            timeout,
            final_timeout: final_timeout.max(timeout),
            relaying: AtomicBool::new(false),
        }
    }

    /// MAIL, RCPT, DATA and the message, each reply classified where it stands.
    pub(super) async fn run(
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

    /// What an error reply to RCPT, DATA or the message means (see [`refusal`]).
    fn refusal(&self, e: &LettreError) -> Delivery {
        refusal(e, self.relaying.load(Ordering::Relaxed))
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

#[cfg(test)]
mod tests {
    use super::stuffed;

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
