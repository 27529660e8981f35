//! `[email]`: the sender, the unsubscribe link every message carries, the envelope sender
//! bounces go to, how email leaves (the `.eml` outbox or an SMTP relay, clear text refused off
//! loopback) and the DKIM key that signs every message. The key is read and checked here, once,
//! so a bad key stops `check`.

use std::path::{Path, PathBuf};

use lettre::message::Mailbox;

use super::error::{ConfigError, Locator};
use super::listen::ListenSettings;
use super::raw::{RawDkim, RawEmail, RawSmtp};
use super::secrets::{SecretSource, secret_source};
use super::values::{check_url, is_loopback, parse_duration};

/// The `.eml` outbox, relative to the campaign file.
pub const DEFAULT_EMAIL_OUTBOX: &str = "outbox/email";

/// Email settings.
#[derive(Debug, Clone)]
pub struct EmailSettings {
    pub from: Mailbox,
    pub reply_to: Option<Mailbox>,
    pub transport: EmailTransport,
    /// An `https://` or `http://` URL containing `{{token}}`.
    pub unsubscribe_url: String,
    pub unsubscribe_mailto: Option<lettre::Address>,
    /// The envelope sender (`MAIL FROM`), where bounces go: `email.bounce_address`, else the
    /// `From` address.
    pub bounce_address: Option<BounceAddress>,
    /// Signs every message (`[email.dkim]`), whatever the transport.
    pub dkim: Option<DkimSigner>,
}

impl EmailSettings {
    /// The envelope sender of the message whose unsubscribe token is `token`: the bounce
    /// address filled with it, else the `From` address.
    pub fn envelope_from(&self, token: &str) -> lettre::Address {
        match &self.bounce_address {
            Some(b) => b.fill(token),
            None => self.from.email.clone(),
        }
    }
}

/// `email.bounce_address`: an address whose local part may hold `{{token}}`, filled with each
/// message's unsubscribe token (VERP), so that a bounce names the message it answers in the
/// address it is sent to, whatever its text says. Checked when the campaign loads: a dot-atom
/// local part (no quotes) that stays a valid address of at most 64 octets when filled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BounceAddress {
    pattern: String,
}

/// The placeholder of [`BounceAddress`].
const TOKEN: &str = "{{token}}";

impl BounceAddress {
    /// The pattern as written (`bounces+{{token}}@riverside.example`).
    pub fn pattern(&self) -> &str {
        &self.pattern
    }

    /// The address for the message whose token is `token` (a token is letters, digits and
    /// `-`: see `token.rs` and `render::INERT_TOKEN`, each valid in a dot-atom).
    pub fn fill(&self, token: &str) -> lettre::Address {
        self.pattern
            .replace(TOKEN, token)
            .parse()
            .expect("a bounce address filled with a token is valid: checked at load")
    }

    /// Checks a pattern: see the type.
    fn parse(value: &str) -> Result<Self, String> {
        let value = value.trim();
        if value.contains(|c: char| c.is_whitespace() || c == '<' || c == '>' || c == '"') {
            return Err(format!(
                "{value:?} is not a bare address like \"bounces+{TOKEN}@clinic.example\" (no \
                 name, angle brackets, quotes or spaces)"
            ));
        }
        let Some((local, domain)) = value.rsplit_once('@') else {
            return Err(format!("{value:?} is not an address: it has no @"));
        };
        if domain.contains(['{', '}']) {
            return Err(format!("{TOKEN} may only be in the part before the @"));
        }
        if local.matches(TOKEN).count() > 1 {
            return Err(format!("{TOKEN} may appear once"));
        }
        if local.replacen(TOKEN, "", 1).contains(['{', '}']) {
            return Err(format!(
                "{value:?}: the only placeholder is {TOKEN}, the message's unsubscribe token"
            ));
        }
        // A token as `token.rs` makes them: 26 characters of a-z and 2-7.
        let sample = "abcdefghijklmnopqrstuvwxyz";
        let filled = local.replace(TOKEN, sample);
        if filled.starts_with('.') || filled.ends_with('.') || filled.contains("..") {
            return Err(format!(
                "{value:?}: the part before the @ may not start or end with a dot, or hold two \
                 in a row"
            ));
        }
        if filled.len() > 64 {
            return Err(format!(
                "{value:?}: the part before the @ would be {} characters with the 26 of a \
                 token; an address allows 64",
                filled.len()
            ));
        }
        format!("{filled}@{domain}")
            .parse::<lettre::Address>()
            .map_err(|e| format!("{value:?} is not a valid address once filled: {e}"))?;
        Ok(BounceAddress {
            pattern: value.to_string(),
        })
    }
}

/// A DKIM signing configuration, loaded once: relaxed/relaxed canonicalisation (the default
/// simple header canonicalisation of lettre does not verify, see notes/lettre.md), covering the
/// headers a receiver and a reader rely on. Its `Debug` never shows the key.
#[derive(Clone)]
pub struct DkimSigner {
    pub selector: String,
    pub domain: String,
    pub algorithm: &'static str,
    key: std::sync::Arc<crate::dkim::Key>,
}

impl std::fmt::Debug for DkimSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "DkimSigner({} s={} d={})",
            self.algorithm, self.selector, self.domain
        )
    }
}

impl DkimSigner {
    /// The headers every signature covers (those present in the message).
    pub const HEADERS: [&'static str; 10] = [
        "From",
        "Reply-To",
        "To",
        "Subject",
        "Date",
        "Message-ID",
        "MIME-Version",
        "Content-Type",
        "List-Unsubscribe",
        "List-Unsubscribe-Post",
    ];

    /// `message` with a `DKIM-Signature` header first.
    pub fn sign(&self, message: &[u8], date: std::time::SystemTime) -> Vec<u8> {
        let t = date
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        crate::dkim::sign(
            message,
            &self.key,
            &self.domain,
            &self.selector,
            &Self::HEADERS,
            t,
        )
    }
}

/// How email leaves.
#[derive(Debug, Clone)]
pub enum EmailTransport {
    /// `.eml` files in this directory: exactly the bytes SMTP would carry.
    File { outbox: PathBuf },
    /// An SMTP relay.
    Smtp(SmtpSettings),
}

/// TLS mode for SMTP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsMode {
    StartTls,
    Tls,
    None,
}

/// SMTP relay settings. The password itself is never held here: only where to find it.
#[derive(Debug, Clone)]
pub struct SmtpSettings {
    pub host: String,
    pub port: u16,
    pub tls: TlsMode,
    pub username: Option<String>,
    pub password: Option<SecretSource>,
    pub allow_insecure: bool,
    pub ca_file: Option<PathBuf>,
    pub timeout: std::time::Duration,
    /// How long the answer to a message may take once the whole message went out (at least
    /// `timeout`): past it the message is `unknown`.
    pub final_timeout: std::time::Duration,
    /// The name given in EHLO: `helo`, else this machine's host name.
    pub helo: String,
    /// The outbox is still known so a switch back to `file` needs nothing else.
    pub outbox: PathBuf,
}

/// An address with an optional display name, on one line.
fn parse_mailbox(value: &str, loc: &Locator, key: &str) -> Result<Mailbox, ConfigError> {
    if value.contains(['\r', '\n']) {
        return Err(loc.invalid(key, "must not contain line breaks"));
    }
    value.trim().parse::<Mailbox>().map_err(|e| {
        loc.invalid(
            key,
            format!("{value:?} is not an address like \"Clinic <care@clinic.example>\": {e}"),
        )
    })
}

/// Checks `[email]` and the tables under it.
pub(super) fn validate_email(
    re: RawEmail,
    loc: &Locator,
    dir: &Path,
    listen: Option<&ListenSettings>,
) -> Result<EmailSettings, ConfigError> {
    let from = parse_mailbox(&loc.non_empty(re.from, "email.from")?, loc, "email.from")?;
    let reply_to = re
        .reply_to
        .filter(|s| !s.trim().is_empty())
        .map(|r| parse_mailbox(&r, loc, "email.reply_to"))
        .transpose()?;
    let outbox = loc.resolve(
        "email.outbox",
        re.outbox.as_deref().unwrap_or(DEFAULT_EMAIL_OUTBOX),
        dir,
    );
    let transport = match re.transport.as_deref().unwrap_or("file") {
        "file" => EmailTransport::File { outbox },
        "smtp" => EmailTransport::Smtp(validate_smtp(
            loc.required(re.smtp, "email.smtp")?,
            loc,
            dir,
            outbox,
        )?),
        other => {
            return Err(loc.invalid(
                "email.transport",
                format!("unknown transport {other:?}: use \"file\" or \"smtp\""),
            ));
        }
    };
    // With `outreach listen` configured, its unsubscribe page is the default.
    let unsubscribe_url = match (re.unsubscribe_url, listen) {
        (None, Some(l)) => l.unsubscribe_url(),
        (url, _) => loc.non_empty(url, "email.unsubscribe_url")?,
    };
    loc.at("email.unsubscribe_url", check_url(&unsubscribe_url))?;
    if !unsubscribe_url.contains("{{token}}") {
        return Err(loc.invalid(
            "email.unsubscribe_url",
            "must contain {{token}}, the opaque per-recipient token (e.g. https://clinic.example/unsubscribe?t={{token}})",
        ));
    }
    let unsubscribe_mailto = re
        .unsubscribe_mailto
        .filter(|s| !s.trim().is_empty())
        .map(|m| {
            let m = m.trim().trim_start_matches("mailto:");
            m.parse::<lettre::Address>().map_err(|e| {
                loc.invalid(
                    "email.unsubscribe_mailto",
                    format!("{m:?} is not an email address: {e}"),
                )
            })
        })
        .transpose()?;
    let bounce_address = re
        .bounce_address
        .filter(|s| !s.trim().is_empty())
        .map(|b| loc.at("email.bounce_address", BounceAddress::parse(&b)))
        .transpose()?;
    let dkim = re
        .dkim
        .map(|d| validate_dkim(d, loc, dir, &from))
        .transpose()?;
    Ok(EmailSettings {
        from,
        reply_to,
        transport,
        unsubscribe_url,
        unsubscribe_mailto,
        bounce_address,
        dkim,
    })
}

/// Checks `[email.smtp]`; the outbox stays known for a switch back to `file`.
fn validate_smtp(
    rs: RawSmtp,
    loc: &Locator,
    dir: &Path,
    outbox: PathBuf,
) -> Result<SmtpSettings, ConfigError> {
    let host = loc.non_empty(rs.host, "email.smtp.host")?;
    let tls = match rs.tls.as_deref().unwrap_or("starttls") {
        "starttls" => TlsMode::StartTls,
        "tls" => TlsMode::Tls,
        "none" => TlsMode::None,
        other => {
            return Err(loc.invalid(
                "email.smtp.tls",
                format!("unknown mode {other:?}: use \"starttls\", \"tls\" or \"none\""),
            ));
        }
    };
    let allow_insecure = rs.allow_insecure.unwrap_or(false);
    let loopback = is_loopback(&host);
    if tls == TlsMode::None && !loopback && !allow_insecure {
        return Err(loc.invalid(
            "email.smtp.tls",
            format!(
                "\"none\" sends patient data in clear text to {host}; it is allowed only to \
                 loopback, or with allow_insecure = true"
            ),
        ));
    }
    let port = rs.port.unwrap_or(match tls {
        TlsMode::Tls => 465,
        TlsMode::StartTls => 587,
        TlsMode::None => 25,
    });
    let password = secret_source(
        rs.password_env.as_deref(),
        rs.password_file.as_deref(),
        loc,
        "email.smtp.password",
        dir,
    )?;
    if password.is_some() && rs.username.is_none() {
        return Err(loc.invalid("email.smtp.username", "a password is set but no username"));
    }
    Ok(SmtpSettings {
        host,
        port,
        tls,
        username: rs.username,
        password,
        allow_insecure,
        ca_file: rs
            .ca_file
            .map(|f| loc.resolve("email.smtp.ca_file", &f, dir)),
        timeout: loc.at(
            "email.smtp.timeout",
            parse_duration(rs.timeout.as_deref().unwrap_or("30s")),
        )?,
        // RFC 5321 4.5.3.2.6: ten minutes for the answer to the message, which a relay may
        // give only once it has scanned or queued it.
        final_timeout: loc.at(
            "email.smtp.final_timeout",
            parse_duration(rs.final_timeout.as_deref().unwrap_or("600s")),
        )?,
        helo: match rs.helo {
            Some(h) if !h.trim().is_empty() => h.trim().to_string(),
            Some(_) => return Err(loc.invalid("email.smtp.helo", "must not be empty")),
            None => local_hostname(),
        },
        outbox,
    })
}

/// The name this machine gives itself, for EHLO; `localhost` when it has none.
fn local_hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| {
            !h.is_empty()
                && h.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-.".contains(c))
        })
        .unwrap_or_else(|| "localhost".to_string())
}

/// Checks `[email.dkim]` and loads its key; the domain defaults to that of `from`.
fn validate_dkim(
    rd: RawDkim,
    loc: &Locator,
    dir: &Path,
    from: &Mailbox,
) -> Result<DkimSigner, ConfigError> {
    let selector = loc.non_empty(rd.selector, "email.dkim.selector")?;
    let domain = match rd.domain {
        Some(d) if !d.trim().is_empty() => d.trim().to_ascii_lowercase(),
        Some(_) => return Err(loc.invalid("email.dkim.domain", "must not be empty")),
        // Aligned with the From domain, which is what DMARC checks.
        None => from.email.domain().to_ascii_lowercase(),
    };
    let key_path = loc.resolve(
        "email.dkim.key_file",
        &loc.non_empty(rd.key_file, "email.dkim.key_file")?,
        dir,
    );
    let text = std::fs::read_to_string(&key_path).map_err(|e| {
        loc.invalid(
            "email.dkim.key_file",
            format!("cannot read {}: {e}", key_path.display()),
        )
    })?;
    let algorithm = match rd.algorithm.as_deref() {
        None => None,
        Some(a @ ("rsa" | "ed25519")) => Some(a),
        Some(other) => {
            return Err(loc.invalid(
                "email.dkim.algorithm",
                format!("unknown algorithm {other:?}: use \"rsa\" or \"ed25519\""),
            ));
        }
    };
    let key = crate::dkim::Key::parse(&text, algorithm).map_err(|e| {
        loc.invalid(
            "email.dkim.key_file",
            format!(
                "{}: {e}; an RSA key is a PEM file (`openssl genrsa -out dkim.pem 2048`), an \
                 Ed25519 key a PEM file (`openssl genpkey -algorithm ed25519`) or the base64 of \
                 its 32-byte seed",
                key_path.display()
            ),
        )
    })?;
    if let Some(a) = algorithm
        && a != key.algorithm()
    {
        return Err(loc.invalid(
            "email.dkim.algorithm",
            format!(
                "is {a:?} but {} holds an {} key",
                key_path.display(),
                key.algorithm()
            ),
        ));
    }
    Ok(DkimSigner {
        selector,
        domain,
        algorithm: key.algorithm(),
        key: std::sync::Arc::new(key),
    })
}

#[cfg(test)]
mod tests {
    use crate::config::testing::assert_errors;

    /// `[email]` outside SMTP and DKIM. Exact messages.
    #[test]
    fn email_errors() {
        let sets: &[(&[&str], &str)] = &[
            (
                &["email.transport=pigeon"],
                "--set email.transport=pigeon: `email.transport`: unknown transport \"pigeon\": use \"file\" or \"smtp\"",
            ),
            (
                &["email.from=\"care@\""],
                "--set email.from=\"care@\": `email.from`: \"care@\" is not an address like \"Clinic <care@clinic.example>\": Invalid input",
            ),
            (
                &["email.from=\"a\nb <care@riverside.example>\""],
                "--set email.from=\"a\nb <care@riverside.example>\": `email.from`: must not contain line breaks",
            ),
            (
                &["email.reply_to=\"nope\""],
                "--set email.reply_to=\"nope\": `email.reply_to`: \"nope\" is not an address like \"Clinic <care@clinic.example>\": Invalid input",
            ),
            (
                &["email.unsubscribe_url=\"https://riverside.example/u\""],
                "--set email.unsubscribe_url=\"https://riverside.example/u\": `email.unsubscribe_url`: must contain {{token}}, the opaque per-recipient token (e.g. https://clinic.example/unsubscribe?t={{token}})",
            ),
            (
                &["email.unsubscribe_url=\"ftp://riverside.example/{{token}}\""],
                "--set email.unsubscribe_url=\"ftp://riverside.example/{{token}}\": `email.unsubscribe_url`: \"ftp://riverside.example/{{token}}\" is not an http(s) URL (e.g. https://riverside.example/book)",
            ),
            (
                &["email.unsubscribe_mailto=\"mailto:nobody\""],
                "--set email.unsubscribe_mailto=\"mailto:nobody\": `email.unsubscribe_mailto`: \"nobody\" is not an email address: Missing domain or user",
            ),
            (
                &["email.bounce_address=\"Bounces <b+{{token}}@riverside.example>\""],
                "--set email.bounce_address=\"Bounces <b+{{token}}@riverside.example>\": `email.bounce_address`: \"Bounces <b+{{token}}@riverside.example>\" is not a bare address like \"bounces+{{token}}@clinic.example\" (no name, angle brackets, quotes or spaces)",
            ),
            (
                &["email.bounce_address=bounces"],
                "--set email.bounce_address=bounces: `email.bounce_address`: \"bounces\" is not an address: it has no @",
            ),
            (
                &["email.bounce_address=\"b@{{token}}.riverside.example\""],
                "--set email.bounce_address=\"b@{{token}}.riverside.example\": `email.bounce_address`: {{token}} may only be in the part before the @",
            ),
            (
                &["email.bounce_address=\"b+{{token}}.{{token}}@riverside.example\""],
                "--set email.bounce_address=\"b+{{token}}.{{token}}@riverside.example\": `email.bounce_address`: {{token}} may appear once",
            ),
            (
                &["email.bounce_address=\"b+{{contact}}@riverside.example\""],
                "--set email.bounce_address=\"b+{{contact}}@riverside.example\": `email.bounce_address`: \"b+{{contact}}@riverside.example\": the only placeholder is {{token}}, the message's unsubscribe token",
            ),
            (
                &["email.bounce_address=\"{{token}}.@riverside.example\""],
                "--set email.bounce_address=\"{{token}}.@riverside.example\": `email.bounce_address`: \"{{token}}.@riverside.example\": the part before the @ may not start or end with a dot, or hold two in a row",
            ),
            (
                &[
                    "email.bounce_address=\"bounces-from-the-riverside-clinic-2026+{{token}}@riverside.example\"",
                ],
                "--set email.bounce_address=\"bounces-from-the-riverside-clinic-2026+{{token}}@riverside.example\": `email.bounce_address`: \"bounces-from-the-riverside-clinic-2026+{{token}}@riverside.example\": the part before the @ would be 65 characters with the 26 of a token; an address allows 64",
            ),
            (
                &["email.bounce_address=\"bounces+{{token}}@\""],
                "--set email.bounce_address=\"bounces+{{token}}@\": `email.bounce_address`: \"bounces+{{token}}@\" is not a valid address once filled: Invalid email domain",
            ),
        ];
        assert_errors(sets, &[]);
    }

    /// `email.bounce_address`: filled with each message's token, or fixed; the From address
    /// without it.
    #[test]
    fn bounce_address_fills_the_envelope_sender() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("campaign.toml");
        std::fs::write(&path, crate::config::testing::BASE).unwrap();
        let campaign = |sets: &[&str]| {
            let sets: Vec<String> = sets.iter().map(|s| s.to_string()).collect();
            crate::config::load(&path, &sets).unwrap()
        };
        let token = "2kgoys52vqzfb7tbmhfkyhg4za";
        let c = campaign(&["email.bounce_address=\"bounces+{{token}}@riverside.example\""]);
        let email = c.email.unwrap();
        assert_eq!(
            email.envelope_from(token).to_string(),
            format!("bounces+{token}@riverside.example")
        );
        assert_eq!(
            email.envelope_from(crate::render::INERT_TOKEN).to_string(),
            "bounces+test-message-not-a-patient@riverside.example"
        );
        let c = campaign(&["email.bounce_address=\" bounces@riverside.example \""]);
        assert_eq!(
            c.email.unwrap().envelope_from(token).to_string(),
            "bounces@riverside.example"
        );
        let c = campaign(&[]);
        assert_eq!(
            c.email.unwrap().envelope_from(token).to_string(),
            "care@riverside.example"
        );
    }

    /// `[email.smtp]`, its password source included. Exact messages.
    #[test]
    fn smtp_errors() {
        let sets: &[(&[&str], &str)] = &[
            (
                &["email.transport=smtp"],
                "campaign.toml:20: `email.smtp`: required key is missing",
            ),
            (
                &["email.transport=smtp", "email.smtp.port=25"],
                "campaign.toml:20: `email.smtp.host`: required key is missing",
            ),
            (
                &[
                    "email.transport=smtp",
                    "email.smtp.host=smtp.example",
                    "email.smtp.tls=ssl",
                ],
                "--set email.smtp.tls=ssl: `email.smtp.tls`: unknown mode \"ssl\": use \"starttls\", \"tls\" or \"none\"",
            ),
            (
                &[
                    "email.transport=smtp",
                    "email.smtp.host=smtp.example",
                    "email.smtp.tls=none",
                ],
                "--set email.smtp.tls=none: `email.smtp.tls`: \"none\" sends patient data in clear text to smtp.example; it is allowed only to loopback, or with allow_insecure = true",
            ),
            (
                &[
                    "email.transport=smtp",
                    "email.smtp.host=smtp.example",
                    "email.smtp.password_env=P",
                    "email.smtp.password_file=p",
                ],
                "--set email.smtp.password_file=p: `email.smtp.password_file`: give either email.smtp.password_env or email.smtp.password_file, not both",
            ),
            (
                &[
                    "email.transport=smtp",
                    "email.smtp.host=smtp.example",
                    "email.smtp.password_env=\" \"",
                ],
                "--set email.smtp.password_env=\" \": `email.smtp.password_env`: must name an environment variable",
            ),
            (
                &[
                    "email.transport=smtp",
                    "email.smtp.host=smtp.example",
                    "email.smtp.password_env=P",
                ],
                "campaign.toml:20: `email.smtp.username`: a password is set but no username",
            ),
            (
                &[
                    "email.transport=smtp",
                    "email.smtp.host=smtp.example",
                    "email.smtp.timeout=\"0s\"",
                ],
                "--set email.smtp.timeout=\"0s\": `email.smtp.timeout`: \"0s\" must be positive",
            ),
            (
                &[
                    "email.transport=smtp",
                    "email.smtp.host=smtp.example",
                    "email.smtp.final_timeout=soon",
                ],
                "--set email.smtp.final_timeout=soon: `email.smtp.final_timeout`: \"soon\" is not a duration: write e.g. \"30s\" or \"500ms\"",
            ),
            (
                &[
                    "email.transport=smtp",
                    "email.smtp.host=smtp.example",
                    "email.smtp.helo=\"\"",
                ],
                "--set email.smtp.helo=\"\": `email.smtp.helo`: must not be empty",
            ),
        ];
        assert_errors(sets, &[]);
    }

    /// `[email.dkim]`: the key file read and matched to its algorithm. Exact messages.
    #[test]
    fn dkim_errors() {
        let edits: &[(&str, &str, &str)] = &[
            (
                "[sms]",
                "[email.dkim]\nselector = \"s1\"\n\n[sms]",
                "campaign.toml:24: `email.dkim.key_file`: required key is missing",
            ),
            (
                "[sms]",
                "[email.dkim]\nkey_file = \"ed25519.key\"\n\n[sms]",
                "campaign.toml:24: `email.dkim.selector`: required key is missing",
            ),
            (
                "[sms]",
                "[email.dkim]\nselector = \"s1\"\ndomain = \" \"\nkey_file = \"ed25519.key\"\n\n[sms]",
                "campaign.toml:26: `email.dkim.domain`: must not be empty",
            ),
            (
                "[sms]",
                "[email.dkim]\nselector = \"s1\"\nkey_file = \"missing.key\"\n\n[sms]",
                "campaign.toml:26: `email.dkim.key_file`: cannot read missing.key: No such file or directory (os error 2)",
            ),
            (
                "[sms]",
                "[email.dkim]\nselector = \"s1\"\nkey_file = \"empty\"\n\n[sms]",
                "campaign.toml:26: `email.dkim.key_file`: empty: an Ed25519 seed is 32 bytes, this one is 0 bytes; an RSA key is a PEM file (`openssl genrsa -out dkim.pem 2048`), an Ed25519 key a PEM file (`openssl genpkey -algorithm ed25519`) or the base64 of its 32-byte seed",
            ),
            (
                "[sms]",
                "[email.dkim]\nselector = \"s1\"\nkey_file = \"ed25519.key\"\nalgorithm = \"dsa\"\n\n[sms]",
                "campaign.toml:27: `email.dkim.algorithm`: unknown algorithm \"dsa\": use \"rsa\" or \"ed25519\"",
            ),
            (
                "[sms]",
                "[email.dkim]\nselector = \"s1\"\nkey_file = \"ed25519.key\"\nalgorithm = \"rsa\"\n\n[sms]",
                "campaign.toml:27: `email.dkim.algorithm`: is \"rsa\" but ed25519.key holds an ed25519 key",
            ),
        ];
        assert_errors(&[], edits);
    }
}
