//! What a returned message is found to be: the values `classify` returns and the context it
//! is given. Plain data, shared by the readers beside this file.

/// What the caller knows that the message cannot say: where bounces and opt-outs are sent.
#[derive(Debug, Clone, Copy, Default)]
pub struct Context<'a> {
    /// The campaign's `email.bounce_address`, a VERP pattern such as
    /// `bounces+{{token}}@riverside.example`: the envelope sender each message went out with.
    pub bounce_pattern: Option<&'a str>,
    /// The addresses of `email.unsubscribe_mailto` (bare addresses, no `mailto:`).
    pub unsubscribe_mailto: &'a [String],
}

/// One message from the feedback mailbox, read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Classification {
    /// A delivery failure or delay report, with one entry per recipient it names.
    Bounce(Bounce),
    /// A feedback-loop complaint (ARF, RFC 5965): the recipient marked the message as spam.
    Complaint(Complaint),
    /// A message to the unsubscribe mailto: an opt-out.
    Unsubscribe {
        /// The unsubscribe token (26 characters of `[a-z2-7]`) found in the subject or body.
        token: Option<String>,
        /// The sender, lowercased.
        from: Option<String>,
    },
    /// An out-of-office or vacation reply: neither a bounce nor an opt-out.
    AutoReply {
        /// The sender, lowercased.
        from: Option<String>,
    },
    /// Counted, not guessed at: what the message looked like and why it was not read.
    Unrecognised {
        /// Why, in words for a person.
        why: String,
    },
}

/// A bounce: the recipients it reports and what ties it to the message that bounced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bounce {
    /// The failed or delayed recipients, in the order the report gives them.
    pub recipients: Vec<Recipient>,
    /// The token of the envelope sender (`Context::bounce_pattern`), when the bounce came back
    /// to a VERP address: the message it belongs to, without trusting the report's text.
    pub verp_token: Option<String>,
    /// The returned message's `Message-ID`, with its angle brackets.
    pub original_message_id: Option<String>,
    /// The server that wrote the report (`Reporting-MTA`, or the host a text report names).
    pub reporting_mta: Option<String>,
    /// How the recipients were read.
    pub format: Format,
}

/// How a bounce's recipients were read: a standard report, or the text of a known MTA.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// RFC 3464: the `message/delivery-status` part (Postfix, Exim with DSN, Exchange and
    /// Office 365, Gmail and Yahoo all send one today).
    Dsn,
    /// Postfix's text without the report part ("This is the mail system at host …").
    PostfixPlain,
    /// Exim's text ("This message was created automatically by mail delivery software") or its
    /// `X-Failed-Recipients` header.
    Exim,
    /// Exchange's text ("did not reach the following recipient(s)", "Delivery has failed to
    /// these recipients or groups").
    Exchange,
    /// Gmail's text ("Delivery to the following recipient failed permanently").
    Gmail,
    /// Yahoo's text ("Sorry, we were unable to deliver your message to the following address").
    Yahoo,
    /// qmail's QSBMF ("Hi. This is the qmail-send program").
    Qmail,
    /// Another MTA's text: addresses near the usual failure wordings in a message that is
    /// plainly a bounce (from `MAILER-DAEMON`, a bounce subject).
    Generic,
}

impl Format {
    /// The name used in the corpus table and in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Dsn => "dsn",
            Format::PostfixPlain => "postfix-plain",
            Format::Exim => "exim",
            Format::Exchange => "exchange",
            Format::Gmail => "gmail",
            Format::Yahoo => "yahoo",
            Format::Qmail => "qmail",
            Format::Generic => "generic",
        }
    }
}

/// One recipient of a bounce.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recipient {
    /// The address the message was sent to (the DSN's `Original-Recipient` when it has one,
    /// else its `Final-Recipient`), lowercased.
    pub address: String,
    /// The enhanced status code (RFC 3463), such as `5.1.1`, when the report gives one.
    pub status: Option<String>,
    /// Whether delivery failed or is only delayed.
    pub action: Action,
    /// The remote server's words (`Diagnostic-Code`, or the text report's line), one line.
    pub diagnostic: Option<String>,
    /// What the failure says about the address.
    pub severity: Severity,
}

/// A DSN's `Action` for a recipient that did not get the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Given up: the message will not be delivered.
    Failed,
    /// Still being retried.
    Delayed,
}

/// What a failure says about the address (issue 19's rules).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    /// The address itself is bad (`5.1.x`, `5.2.1`, `5.4.4`, or a failure whose diagnostic says
    /// the mailbox does not exist): the address is suppressed.
    Hard,
    /// Temporary (`4.x.x`, or delayed): counted per address, never suppressing.
    Soft,
    /// Refused by policy (`5.7.x`: DMARC, spam filtering, blocks): usually the clinic's own
    /// sending problem, counted per receiving domain, never suppressing.
    Policy,
    /// Any other permanent failure (`5.x.x`, or a failure with no code and no telling words):
    /// counted, never suppressing.
    OtherPermanent,
}

impl Severity {
    /// The name used in the corpus table and in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Hard => "hard",
            Severity::Soft => "soft",
            Severity::Policy => "policy",
            Severity::OtherPermanent => "other-permanent",
        }
    }

    /// Whether this failure suppresses the address.
    pub fn suppresses(self) -> bool {
        self == Severity::Hard
    }
}

/// A feedback-loop complaint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Complaint {
    /// Who complained: the report's `Original-Rcpt-To`, else the returned message's `To`,
    /// lowercased. Providers often redact it; the VERP token or Message-ID then says who.
    pub recipient: Option<String>,
    /// `Feedback-Type` (`abuse`, `fraud`, `not-spam`, …), lowercased.
    pub feedback_type: String,
    /// The returned message's `Message-ID`, with its angle brackets.
    pub original_message_id: Option<String>,
    /// The token of the returned message's envelope sender (`Return-Path`).
    pub verp_token: Option<String>,
    /// Who sent the report: `Reporting-MTA`, else `User-Agent`, else the report's sender.
    pub source: Option<String>,
}
