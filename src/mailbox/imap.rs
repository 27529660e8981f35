//! A folder on an IMAP server (`[feedback.imap]`), always over TLS: implicit TLS (imaps) or
//! STARTTLS before anything else is said; a server that offers neither is not read. A
//! message's id is its UID, and the ledger names the mailbox
//! `imap://user@host:port/folder;UIDVALIDITY=n` (RFC 5092), so a folder that was recreated
//! (a new UIDVALIDITY) is a new mailbox whose UIDs cannot be confused with the old ones.
//! Folder names are sent as IMAP4rev1 writes them ([`mailbox_name`], modified UTF-7).
//!
//! Messages are read with `BODY.PEEK[]`, which leaves `\Seen` alone; only `done`, called once
//! the ledger has committed what the message did, changes the server: it flags the message
//! `$OutreachProcessed` and `\Seen`, or moves it to `move_to` (MOVE, or where the server lacks
//! it COPY, `\Deleted` and `UID EXPUNGE` of that UID alone), or with `delete = true` deletes it.
//! Listing skips messages flagged done (`$OutreachProcessed`, or `\Deleted` when processed mail
//! is moved or deleted); the ledger still guards against a message read twice, as it must when
//! a run dies between its commit and the flag, and such a message is handed back again.
//!
//! A folder whose server keeps no keywords of a client's own (its `PERMANENTFLAGS` lists
//! neither `\*` nor ours: Microsoft 365 and Exchange, whose `STORE` of one, and whose `KEYWORD`
//! search, are refused outright) is never asked for one: processed mail is marked `\Seen`
//! only, and every message not deleted is listed, the ledger passing over those it read before
//! (`move_to` keeps that list short).
//!
//! The client is `async-imap` (0.12, kept by the Delta Chat developers, MSRV 1.88) over
//! `tokio-rustls`, with the system's roots and the optional `ca_file`, as the SMTP transport
//! trusts a relay (the `imap` crate's next major version, 3.0, is still an alpha). The
//! [`Mailbox`] trait is synchronous because `bounces` reads one message at a time between
//! SQLite commits, so this type owns a current-thread runtime and blocks on it for each
//! command, each bounded by `feedback.imap.timeout`: the command stays simple and cron never
//! waits forever. (It must therefore not be opened from inside another runtime.)

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use async_imap::error::Error as ImapError;
use async_imap::types::Flag;
use futures::TryStreamExt;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::ServerName;

use super::source::{Mailbox, MailboxError};
use crate::config::{ImapSettings, ImapTls, Processed};

/// The keyword a processed message is flagged with (when it is neither moved nor deleted).
pub const PROCESSED_KEYWORD: &str = "$OutreachProcessed";

type Session = async_imap::Session<TlsStream<TcpStream>>;

/// A selected folder on an IMAP server, logged in.
pub struct Imap {
    runtime: tokio::runtime::Runtime,
    session: Session,
    /// `host:port`, for messages.
    server: String,
    name: String,
    timeout: Duration,
    processed: Processed,
    /// The server has MOVE (RFC 6851) / UIDPLUS (RFC 4315, for `UID EXPUNGE`).
    can_move: bool,
    can_uid_expunge: bool,
    /// The folder keeps [`PROCESSED_KEYWORD`] (`PERMANENTFLAGS` has `\*` or the keyword, or
    /// says nothing, which RFC 3501 reads as every flag kept).
    keeps_keyword: bool,
    /// Why the session broke, once it has: later calls fail at once with it.
    lost: Option<String>,
}

impl Imap {
    /// Connects, logs in and selects the folder. Each failure is its own [`MailboxError`]:
    /// no connection, a certificate not trusted, a login refused, a folder missing.
    pub fn open(settings: &ImapSettings) -> Result<Self, MailboxError> {
        let password = settings
            .password
            .read()
            .map_err(MailboxError::ImapPassword)?;
        let tls = connector(settings)?;
        let server = format!("{}:{}", settings.host, settings.port);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| MailboxError::ImapConnect {
                server: server.clone(),
                why: format!("cannot start the I/O runtime: {e}"),
            })?;
        let mut session = runtime.block_on(login(settings, &password, tls, &server))?;
        let limit = settings.timeout;
        let capabilities = runtime
            .block_on(within(limit, session.capabilities()))
            .map_err(|e| lost(&server, "CAPABILITY", e))?;
        let selected = runtime
            .block_on(within(
                limit,
                session.select(mailbox_name(&settings.folder)),
            ))
            .map_err(|e| match e {
                Failure::Imap(ImapError::No(r) | ImapError::Bad(r)) => MailboxError::ImapFolder {
                    server: server.clone(),
                    folder: settings.folder.clone(),
                    reply: server_text(&r),
                },
                other => lost(&server, "SELECT", other),
            })?;
        let name = format!(
            "imap://{}@{server}/{};UIDVALIDITY={}",
            url_escape(&settings.user),
            url_escape(&settings.folder),
            selected.uid_validity.unwrap_or(0)
        );
        let keeps_keyword = keeps_keyword(&selected.permanent_flags);
        // At info, not as a warning: it holds on every run from cron, and there is nothing to
        // fix on the server.
        if !keeps_keyword && settings.processed == Processed::Flag {
            tracing::info!(
                "{server} keeps no flags of a client's own in {:?} (its PERMANENTFLAGS: {}): \
                 processed mail is marked \\Seen only, and each run lists every message there, \
                 passing over those the ledger holds; set `move_to` in [feedback.imap] to keep \
                 the folder short",
                settings.folder,
                permanent_flags(&selected.permanent_flags)
            );
        }
        Ok(Imap {
            runtime,
            session,
            server,
            name,
            timeout: limit,
            processed: settings.processed.clone(),
            can_move: capabilities.has_str("MOVE"),
            can_uid_expunge: capabilities.has_str("UIDPLUS"),
            keeps_keyword,
            lost: None,
        })
    }

    /// Runs one command on the session, bounded by the timeout. A broken session is
    /// remembered; NO and BAD are the command's, not the session's.
    fn command<'s, T, F>(
        &'s mut self,
        doing: &str,
        command: impl FnOnce(&'s mut Session) -> F,
    ) -> Result<T, MailboxError>
    where
        F: Future<Output = Result<T, ImapError>> + 's,
    {
        let Imap {
            runtime,
            session,
            server,
            timeout,
            lost: broken,
            ..
        } = self;
        if let Some(why) = broken {
            return Err(MailboxError::ImapLost {
                server: server.clone(),
                doing: doing.to_string(),
                why: why.clone(),
            });
        }
        runtime
            .block_on(within(*timeout, command(session)))
            .map_err(|e| match e {
                Failure::Imap(ImapError::No(r) | ImapError::Bad(r)) => MailboxError::ImapRefused {
                    server: server.clone(),
                    doing: doing.to_string(),
                    reply: server_text(&r),
                },
                other => {
                    let e = lost(server, doing, other);
                    if let MailboxError::ImapLost { why, .. } = &e {
                        *broken = Some(why.clone());
                    }
                    e
                }
            })
    }

    /// A UID, as the trait's id.
    fn uid(&self, id: &str) -> Result<u32, MailboxError> {
        id.parse().map_err(|_| MailboxError::ImapRefused {
            server: self.server.clone(),
            doing: format!("message {id:?}"),
            reply: "not an IMAP UID".to_string(),
        })
    }

    /// Flags `\Deleted` on `uid` and expunges that UID alone. Without UIDPLUS the message stays
    /// flagged for a mail client to expunge: a plain EXPUNGE would also remove every other
    /// message someone flagged `\Deleted`.
    fn delete(&mut self, uid: u32) -> Result<(), MailboxError> {
        self.store(uid, "\\Deleted")?;
        if self.can_uid_expunge {
            self.command("UID EXPUNGE", |s| async move {
                s.uid_expunge(uid.to_string())
                    .await?
                    .try_collect::<Vec<_>>()
                    .await
            })?;
        }
        Ok(())
    }

    fn store(&mut self, uid: u32, flags: &str) -> Result<(), MailboxError> {
        let query = format!("+FLAGS.SILENT ({flags})");
        self.command("UID STORE", |s| async move {
            s.uid_store(uid.to_string(), query)
                .await?
                .try_collect::<Vec<_>>()
                .await
        })?;
        Ok(())
    }
}

impl Mailbox for Imap {
    fn name(&self) -> String {
        self.name.clone()
    }

    fn list(&mut self) -> Result<Vec<String>, MailboxError> {
        let query = match self.processed {
            Processed::Flag if self.keeps_keyword => format!("NOT KEYWORD {PROCESSED_KEYWORD}"),
            // The ledger passes over what it read before.
            Processed::Flag => "UNDELETED".to_string(),
            // `\Deleted` is how the COPY fallback marks a message done where the server
            // cannot expunge it alone: copying it again would duplicate it.
            Processed::MoveTo(_) | Processed::Delete => "UNDELETED".to_string(),
        };
        let uids = self.command("UID SEARCH", |s| s.uid_search(query))?;
        let mut uids: Vec<u32> = uids.into_iter().collect();
        uids.sort_unstable();
        Ok(uids.into_iter().map(|u| u.to_string()).collect())
    }

    fn fetch(&mut self, id: &str) -> Result<Vec<u8>, MailboxError> {
        let uid = self.uid(id)?;
        let fetches = self.command("UID FETCH", |s| async move {
            s.uid_fetch(uid.to_string(), "BODY.PEEK[]")
                .await?
                .try_collect::<Vec<_>>()
                .await
        })?;
        fetches
            .iter()
            .find(|f| f.uid == Some(uid))
            .and_then(|f| f.body())
            .map(<[u8]>::to_vec)
            .ok_or_else(|| MailboxError::ImapRefused {
                server: self.server.clone(),
                doing: format!("UID FETCH {uid}"),
                reply: "no such message (expunged by another client?)".to_string(),
            })
    }

    fn done(&mut self, id: &str) -> Result<(), MailboxError> {
        let uid = self.uid(id)?;
        match self.processed.clone() {
            Processed::Flag if self.keeps_keyword => {
                self.store(uid, &format!("{PROCESSED_KEYWORD} \\Seen"))
            }
            Processed::Flag => self.store(uid, "\\Seen"),
            Processed::MoveTo(folder) if self.can_move => {
                let to = mailbox_name(&folder);
                self.command("UID MOVE", |s| s.uid_mv(uid.to_string(), to))
            }
            Processed::MoveTo(folder) => {
                let to = mailbox_name(&folder);
                self.command("UID COPY", |s| s.uid_copy(uid.to_string(), to))?;
                self.delete(uid)
            }
            Processed::Delete => self.delete(uid),
        }
    }
}

impl Drop for Imap {
    /// Says LOGOUT, briefly: the server would otherwise log a dropped connection.
    fn drop(&mut self) {
        if self.lost.is_none() {
            let limit = self.timeout.min(Duration::from_secs(2));
            let _ = self.runtime.block_on(within(limit, self.session.logout()));
        }
    }
}

/// The server's own words in a NO or BAD reply. async-imap 0.12 gives them as the `Debug` of
/// the reply's parts (`code: None, info: Some("[AUTHENTICATIONFAILED] Authentication
/// failed.")`, or `outcome: Outcome { .., information: Some("…") }`): the quoted text is what a
/// person should read.
/// Whether a folder with these `PERMANENTFLAGS` keeps [`PROCESSED_KEYWORD`]: it lists `\*` (a
/// client may make keywords) or the keyword itself; or it listed nothing, which RFC 3501 says
/// to read as every flag kept.
fn keeps_keyword(permanent: &[Flag<'_>]) -> bool {
    permanent.is_empty()
        || permanent.iter().any(|f| match f {
            Flag::MayCreate => true,
            Flag::Custom(k) => k.eq_ignore_ascii_case(PROCESSED_KEYWORD),
            _ => false,
        })
}

/// `PERMANENTFLAGS` as the server wrote them, for a message.
fn permanent_flags(permanent: &[Flag<'_>]) -> String {
    let names: Vec<&str> = permanent
        .iter()
        .map(|f| match f {
            Flag::Seen => "\\Seen",
            Flag::Answered => "\\Answered",
            Flag::Flagged => "\\Flagged",
            Flag::Deleted => "\\Deleted",
            Flag::Draft => "\\Draft",
            Flag::Recent => "\\Recent",
            Flag::MayCreate => "\\*",
            Flag::Custom(k) => k,
        })
        .collect();
    format!("({})", names.join(" "))
}

fn server_text(reply: &str) -> String {
    let quoted = ["information: Some(\"", "info: Some(\""]
        .iter()
        .find_map(|start| Some(&reply[reply.find(start)? + start.len()..]))
        .and_then(|rest| rest.rfind("\")").map(|end| &rest[..end]));
    match quoted {
        Some(text) => text.replace("\\\"", "\"").replace("\\\\", "\\"),
        None => reply.to_string(),
    }
}

/// Why a command did not finish.
enum Failure {
    Imap(ImapError),
    Timeout(Duration),
}

async fn within<T>(
    limit: Duration,
    fut: impl Future<Output = Result<T, ImapError>>,
) -> Result<T, Failure> {
    match tokio::time::timeout(limit, fut).await {
        Ok(r) => r.map_err(Failure::Imap),
        Err(_) => Err(Failure::Timeout(limit)),
    }
}

fn lost(server: &str, doing: &str, failure: Failure) -> MailboxError {
    let why = match failure {
        Failure::Imap(e) => e.to_string(),
        Failure::Timeout(limit) => format!("no answer within {}", seconds(limit)),
    };
    MailboxError::ImapLost {
        server: server.to_string(),
        doing: doing.to_string(),
        why,
    }
}

fn seconds(d: Duration) -> String {
    format!("{} s (feedback.imap.timeout)", d.as_secs_f64())
}

/// Connects (TCP, then TLS: at once, or after STARTTLS) and logs in; `server` is `host:port`,
/// for messages.
async fn login(
    settings: &ImapSettings,
    password: &str,
    tls: (TlsConnector, ServerName<'static>),
    server: &str,
) -> Result<Session, MailboxError> {
    let limit = settings.timeout;
    let connect_error = |why: String| MailboxError::ImapConnect {
        server: server.to_string(),
        why,
    };
    let tcp = match tokio::time::timeout(
        limit,
        TcpStream::connect((settings.host.as_str(), settings.port)),
    )
    .await
    {
        Ok(Ok(tcp)) => tcp,
        Ok(Err(e)) => return Err(connect_error(e.to_string())),
        Err(_) => {
            return Err(connect_error(format!(
                "no answer within {}",
                seconds(limit)
            )));
        }
    };
    let tcp = match settings.tls {
        ImapTls::Implicit => tcp,
        ImapTls::StartTls => {
            let mut clear = async_imap::Client::new(tcp);
            let said = within(limit, async {
                greeting(&mut clear).await?;
                clear.run_command_and_check_ok("STARTTLS", None).await
            })
            .await;
            match said {
                Ok(()) => clear.into_inner(),
                Err(Failure::Imap(ImapError::No(r) | ImapError::Bad(r))) => {
                    return Err(MailboxError::ImapTls {
                        server: server.to_string(),
                        why: format!("the server refused STARTTLS: {}", server_text(&r)),
                    });
                }
                Err(other) => return Err(lost(server, "STARTTLS", other)),
            }
        }
    };
    let (connector, name) = tls;
    let stream = match tokio::time::timeout(limit, connector.connect(name, tcp)).await {
        Ok(Ok(stream)) => stream,
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::InvalidData => {
            return Err(MailboxError::ImapTls {
                server: server.to_string(),
                why: e.to_string(),
            });
        }
        Ok(Err(e)) => return Err(lost(server, "TLS handshake", Failure::Imap(e.into()))),
        Err(_) => return Err(lost(server, "TLS handshake", Failure::Timeout(limit))),
    };
    let mut client = async_imap::Client::new(stream);
    if settings.tls == ImapTls::Implicit {
        within(limit, greeting(&mut client))
            .await
            .map_err(|e| lost(server, "greeting", e))?;
    }
    match within(limit, async {
        client
            .login(&settings.user, password)
            .await
            .map_err(|(e, _)| e)
    })
    .await
    {
        Ok(session) => Ok(session),
        Err(Failure::Imap(ImapError::No(r) | ImapError::Bad(r))) => Err(MailboxError::ImapLogin {
            server: server.to_string(),
            user: settings.user.clone(),
            reply: server_text(&r),
        }),
        Err(other) => Err(lost(server, "LOGIN", other)),
    }
}

/// Reads the server's greeting, which comes before any command.
async fn greeting<T>(client: &mut async_imap::Client<T>) -> Result<(), ImapError>
where
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + std::fmt::Debug + Send,
{
    match client.read_response().await? {
        Some(_) => Ok(()),
        None => Err(ImapError::ConnectionLost),
    }
}

/// The TLS client: the system's roots and the optional `ca_file`, checked against `host`. The
/// CA file is read now, so a missing one is reported before any connection.
fn connector(settings: &ImapSettings) -> Result<(TlsConnector, ServerName<'static>), MailboxError> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;

    let mut roots = rustls::RootCertStore::empty();
    roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
    if let Some(path) = &settings.ca_file {
        let ca_error = |why: String| MailboxError::ImapCaFile {
            path: path.clone(),
            why,
        };
        let pem = std::fs::read(path).map_err(|e| ca_error(e.to_string()))?;
        let mut added = 0;
        for cert in CertificateDer::pem_slice_iter(&pem) {
            let cert = cert.map_err(|e| ca_error(e.to_string()))?;
            roots.add(cert).map_err(|e| ca_error(e.to_string()))?;
            added += 1;
        }
        if added == 0 {
            return Err(ca_error("no PEM certificate in the file".to_string()));
        }
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| MailboxError::ImapTls {
            server: settings.host.clone(),
            why: e.to_string(),
        })?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let name =
        ServerName::try_from(settings.host.clone()).map_err(|e| MailboxError::ImapConnect {
            server: settings.host.clone(),
            why: format!("not a host name a certificate can be checked against: {e}"),
        })?;
    Ok((TlsConnector::from(Arc::new(config)), name))
}

/// A folder's name as IMAP4rev1 writes it (RFC 3501, 5.1.3, "modified UTF-7"): printable ASCII as
/// itself but `&` as `&-`, and each run of anything else as its UTF-16 (big-endian) in base64
/// with `,` for `/` and no padding, between `&` and `-`: `Rückläufer` is `R&APw-ckl&AOQ-ufer`.
/// Servers keep non-ASCII folder names so (Dovecot, Exchange, Gmail), and take no other form
/// from a client that has not enabled UTF-8.
fn mailbox_name(name: &str) -> String {
    static BASE64: std::sync::LazyLock<data_encoding::Encoding> = std::sync::LazyLock::new(|| {
        let mut spec = data_encoding::Specification::new();
        spec.symbols
            .push_str("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,");
        spec.encoding().expect("a valid base64 alphabet")
    });
    let mut out = String::with_capacity(name.len());
    let mut run: Vec<u8> = Vec::new();
    let flush = |out: &mut String, run: &mut Vec<u8>| {
        if !run.is_empty() {
            out.push('&');
            out.push_str(&BASE64.encode(run));
            out.push('-');
            run.clear();
        }
    };
    for c in name.chars() {
        if (' '..='~').contains(&c) {
            flush(&mut out, &mut run);
            match c {
                '&' => out.push_str("&-"),
                c => out.push(c),
            }
        } else {
            for unit in c.encode_utf16(&mut [0; 2]) {
                run.extend_from_slice(&unit.to_be_bytes());
            }
        }
    }
    flush(&mut out, &mut run);
    out
}

/// `user` or `folder` as a URL part: what is not unreserved (RFC 3986) is %-escaped, so
/// `bounces@clinic.example` reads `bounces%40clinic.example`.
fn url_escape(part: &str) -> String {
    let mut out = String::with_capacity(part.len());
    for b in part.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_folder_keeps_the_keyword_when_its_permanent_flags_say_so() {
        use Flag::{Answered, Deleted, Draft, Flagged, MayCreate, Seen};
        assert!(
            keeps_keyword(&[]),
            "nothing said: every flag is kept (RFC 3501)"
        );
        assert!(keeps_keyword(&[Seen, Deleted, MayCreate]));
        assert!(keeps_keyword(&[
            Seen,
            Flag::Custom("$outreachprocessed".into())
        ]));
        assert!(
            !keeps_keyword(&[Deleted, Seen]),
            "Dovecot without the ACL right w"
        );
        // Exchange Online's.
        let exchange = [
            Seen,
            Answered,
            Flagged,
            Deleted,
            Draft,
            Flag::Custom("$MDNSent".into()),
        ];
        assert!(!keeps_keyword(&exchange));
        assert_eq!(
            permanent_flags(&exchange),
            "(\\Seen \\Answered \\Flagged \\Deleted \\Draft $MDNSent)"
        );
    }

    #[test]
    fn folder_names_are_written_in_modified_utf_7() {
        // RFC 3501's own example, and those of other clients' tests.
        assert_eq!(
            mailbox_name("~peter/mail/台北/日本語"),
            "~peter/mail/&U,BTFw-/&ZeVnLIqe-"
        );
        assert_eq!(mailbox_name("Entwürfe"), "Entw&APw-rfe");
        assert_eq!(mailbox_name("Rückläufer"), "R&APw-ckl&AOQ-ufer");
        assert_eq!(
            mailbox_name("Отправленные"),
            "&BB4EQgQ,BEAEMAQyBDsENQQ9BD0ESwQ1-"
        );
        assert_eq!(mailbox_name("École"), "&AMk-cole");
        assert_eq!(mailbox_name("Q&A"), "Q&-A");
        assert_eq!(mailbox_name("INBOX"), "INBOX");
        // Outside the basic plane: a surrogate pair, in one run with its neighbours.
        assert_eq!(mailbox_name("a😀é"), "a&2D3eAADp-");
    }

    #[test]
    fn user_and_folder_are_escaped_in_the_mailbox_name() {
        assert_eq!(
            url_escape("bounces@clinic.example"),
            "bounces%40clinic.example"
        );
        assert_eq!(url_escape("Returned mail/2026"), "Returned%20mail%2F2026");
        assert_eq!(url_escape("INBOX"), "INBOX");
    }

    #[test]
    fn a_refusal_reads_as_the_server_wrote_it() {
        assert_eq!(
            server_text(
                r#"code: None, info: Some("[AUTHENTICATIONFAILED] Authentication failed.")"#
            ),
            "[AUTHENTICATIONFAILED] Authentication failed."
        );
        assert_eq!(
            server_text(
                r#"outcome: Outcome { code: None, information: Some("No \"Bounces\" here") }"#
            ),
            "No \"Bounces\" here"
        );
        assert_eq!(
            server_text("code: None, info: None"),
            "code: None, info: None"
        );
    }
}
