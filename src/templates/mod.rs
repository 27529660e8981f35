//! A campaign's Handlebars templates: loaded once, CSS inlined once (`html.rs`), rendered per contact.
//!
//! Two registries keep escaping per channel: the HTML one escapes every value (so a contact named
//! `<b>Ann</b>` stays text), the text one (subject, text part, SMS) escapes nothing (O'Brien &
//! Sons stays as written). Both run in strict mode: a variable missing for a row is an error unless
//! the template gives a fallback with `default` (or `gsm7` in SMS). Contact values that are empty
//! are absent from the data, so "empty" and "missing" are the same thing to a template.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use handlebars::{
    Context, Handlebars, Helper, HelperDef, RenderContext, RenderErrorReason, ScopedJson,
};
use serde::Serialize;
use serde::ser::SerializeMap;
use sha2::{Digest, Sha256};

mod html;

use html::expand_partials;
pub use html::{PrepareError, inline_css};

use crate::config::Campaign;
use crate::contacts::Contact;
use crate::model::Channel;
use crate::reads::Reads;

/// The template files a campaign directory holds.
pub const SUBJECT: &str = "subject.hbs";
pub const EMAIL_HTML: &str = "email.html.hbs";
pub const EMAIL_TEXT: &str = "email.txt.hbs";
pub const SMS_TEXT: &str = "sms.txt.hbs";

/// A template set that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    #[error("{path}: template missing ({channel} is enabled): {source}")]
    Missing {
        path: PathBuf,
        channel: Channel,
        source: std::io::Error,
    },
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}:{line}:{column}: {message}")]
    Syntax {
        path: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },
    #[error("{path}: {message}")]
    Invalid { path: PathBuf, message: String },
}

/// A failure to render one message for one contact.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{template}{}: {message}", line.map(|l| format!(" line {l}")).unwrap_or_default())]
pub struct RenderError {
    pub template: String,
    pub line: Option<usize>,
    pub message: String,
}

/// One place a template names a contact column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnUse {
    pub template: String,
    pub line: usize,
    pub column: String,
    /// Inside `default`, `gsm7`, `#if`, `#unless` or `#with`: absent is allowed.
    pub guarded: bool,
}

/// The rendered parts of an email.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderedEmail {
    /// One line: CR, LF and other controls from any source are replaced by spaces.
    pub subject: String,
    pub html: String,
    pub text: String,
}

/// A campaign's templates, ready to render.
pub struct Templates {
    dir: PathBuf,
    html: Handlebars<'static>,
    text: Handlebars<'static>,
    /// SHA-256 over every template and partial: what changed since a campaign started.
    pub fingerprint: String,
    /// Each file read (`subject.hbs`, `partials/footer_html.hbs`) and the SHA-256 of its text,
    /// for approvals: a change can be named by file.
    pub files: BTreeMap<String, String>,
    /// Every `contact.*` the templates name.
    pub column_uses: Vec<ColumnUse>,
    /// The top-level templates registered in `text` and in `html`, and the partials' names.
    text_names: Vec<&'static str>,
    html_names: Vec<&'static str>,
    partial_names: BTreeSet<String>,
    /// Every partial this set renders with, by name: its own, and those it takes from the
    /// default set ([`Templates::load_set`]).
    partials: Partials,
    /// What an email's three templates, and an SMS's, can read: their contexts hold only that.
    /// Everything until the campaign's constants are folded in ([`Templates::fold_constants`]).
    email_reads: Reads,
    sms_reads: Reads,
    /// The characters that make every SMS of this set UCS-2 ([`Templates::sms_forced_ucs2`]).
    sms_forced: Vec<char>,
}

/// Partials by name: the file each came from and its source.
pub type Partials = BTreeMap<String, (PathBuf, String)>;

/// `{{default value "fallback"}}` and `{{gsm7 value "fallback"}}`: the value, or the fallback
/// when it is missing or empty (`gsm7`: also when it has a character outside the GSM-7 basic set,
/// so one accented name never turns an SMS into UCS-2). Written as `call_inner` so the HTML
/// registry escapes what they return, like any other value.
struct Fallback {
    gsm7_only: bool,
}

impl HelperDef for Fallback {
    fn call_inner<'reg: 'rc, 'rc>(
        &self,
        h: &Helper<'rc>,
        _: &'reg Handlebars<'reg>,
        _: &'rc Context,
        _: &mut RenderContext<'reg, 'rc>,
    ) -> Result<ScopedJson<'rc>, handlebars::RenderError> {
        let fallback = h
            .param(1)
            .map(|p| p.value().clone())
            .ok_or_else(|| RenderErrorReason::ParamNotFoundForIndex("default", 1))?;
        let value = h.param(0).map(|p| p.value().clone()).unwrap_or_default();
        let usable = match &value {
            serde_json::Value::Null => false,
            serde_json::Value::String(s) => {
                !s.trim().is_empty()
                    && (!self.gsm7_only
                        || s.chars().all(|c| crate::sms::gsm7_septets(c) == Some(1)))
            }
            _ => !self.gsm7_only,
        };
        Ok(ScopedJson::Derived(if usable { value } else { fallback }))
    }
}

/// Escapes the five characters that matter in HTML text and quoted attributes. (Handlebars'
/// default also escapes `=` and backticks, which turns every URL's `?t=` into `?t&#x3D;`: valid,
/// but it trips link scanners.)
pub fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn registry(escape: bool) -> Handlebars<'static> {
    let mut h = Handlebars::new();
    h.set_strict_mode(true);
    if escape {
        h.register_escape_fn(escape_html);
    } else {
        h.register_escape_fn(handlebars::no_escape);
    }
    h.register_helper("default", Box::new(Fallback { gsm7_only: false }));
    h.register_helper("gsm7", Box::new(Fallback { gsm7_only: true }));
    h
}

fn read(path: &Path) -> Result<String, TemplateError> {
    std::fs::read_to_string(path).map_err(|source| TemplateError::Read {
        path: path.to_path_buf(),
        source,
    })
}

fn syntax_error(path: &Path, e: handlebars::TemplateError) -> TemplateError {
    TemplateError::Syntax {
        path: path.to_path_buf(),
        line: e.pos().map(|p| p.0).unwrap_or(1),
        column: e.pos().map(|p| p.1).unwrap_or(1),
        message: e.reason().to_string(),
    }
}

impl Templates {
    /// Loads the templates the enabled `channels` need from `dir` (plus `dir/partials/*.hbs`,
    /// each registered under its file name without `.hbs`).
    pub fn load(dir: &Path, channels: &[Channel]) -> Result<Self, TemplateError> {
        Self::load_set(dir, channels, &Partials::new())
    }

    /// [`Templates::load`] for a language's set: a partial `dir/partials/` lacks is taken from
    /// `inherited` (the default set's), so a translation overrides only the partials it
    /// translates. The fingerprint, `files` and `column_uses` cover this set's own files only.
    pub fn load_set(
        dir: &Path,
        channels: &[Channel],
        inherited: &Partials,
    ) -> Result<Self, TemplateError> {
        let mut html = registry(true);
        let mut text = registry(false);
        let mut hasher = Sha256::new();
        let mut column_uses = Vec::new();
        let mut files = BTreeMap::new();
        let digest = |text: &str| data_encoding::HEXLOWER.encode(&Sha256::digest(text));

        let mut partials = Partials::new();
        let partial_dir = dir.join("partials");
        if partial_dir.is_dir() {
            let entries =
                std::fs::read_dir(&partial_dir).map_err(|source| TemplateError::Read {
                    path: partial_dir.clone(),
                    source,
                })?;
            for entry in entries {
                let path = entry
                    .map_err(|source| TemplateError::Read {
                        path: partial_dir.clone(),
                        source,
                    })?
                    .path();
                let Some(name) = path
                    .file_name()
                    .and_then(|n| n.to_str())
                    .and_then(|n| n.strip_suffix(".hbs"))
                else {
                    continue;
                };
                partials.insert(name.to_string(), (path.clone(), read(&path)?));
            }
        }
        for (name, (_, source)) in &partials {
            hasher.update(format!("partials/{name}\0{source}\0"));
            files.insert(format!("partials/{name}.hbs"), digest(source));
            column_uses.extend(column_uses_in(&format!("partials/{name}.hbs"), source));
        }
        for (name, own) in inherited {
            partials.entry(name.clone()).or_insert_with(|| own.clone());
        }
        for (name, (path, source)) in &partials {
            html.register_partial(name, source)
                .map_err(|e| syntax_error(path, e))?;
            text.register_partial(name, source)
                .map_err(|e| syntax_error(path, e))?;
        }

        let (mut text_names, mut html_names) = (Vec::new(), Vec::new());
        let mut wanted = Vec::new();
        if channels.contains(&Channel::Email) {
            wanted.extend([
                (SUBJECT, Channel::Email),
                (EMAIL_HTML, Channel::Email),
                (EMAIL_TEXT, Channel::Email),
            ]);
        }
        if channels.contains(&Channel::Sms) {
            wanted.push((SMS_TEXT, Channel::Sms));
        }
        for (file, channel) in wanted {
            let path = dir.join(file);
            let source =
                std::fs::read_to_string(&path).map_err(|source| TemplateError::Missing {
                    path: path.clone(),
                    channel,
                    source,
                })?;
            hasher.update(format!("{file}\0{source}\0"));
            files.insert(file.to_string(), digest(&source));
            column_uses.extend(column_uses_in(file, &source));
            if file == EMAIL_HTML {
                html_names.push(file);
                // Check the template as written first, so syntax errors point at its own lines.
                html.register_template_string(file, &source)
                    .map_err(|e| syntax_error(&path, e))?;
                let invalid = |e: PrepareError| TemplateError::Invalid {
                    path: path.clone(),
                    message: e.to_string(),
                };
                let expanded = expand_partials(&source, &partials, 0).map_err(invalid)?;
                let inlined = inline_css(&expanded).map_err(invalid)?;
                html.register_template_string(file, &inlined).map_err(|e| {
                    TemplateError::Invalid {
                        path: path.clone(),
                        message: format!("after CSS inlining the template no longer parses: {e}"),
                    }
                })?;
            } else {
                text_names.push(file);
                text.register_template_string(file, &source)
                    .map_err(|e| syntax_error(&path, e))?;
            }
        }

        Ok(Templates {
            dir: dir.to_path_buf(),
            html,
            text,
            fingerprint: data_encoding::HEXLOWER.encode(&hasher.finalize()),
            files,
            column_uses,
            text_names,
            html_names,
            partial_names: partials.keys().cloned().collect(),
            partials,
            email_reads: Reads::Everything,
            sms_reads: Reads::Everything,
            sms_forced: Vec::new(),
        })
    }

    /// What `channel`'s templates can read of a message's data.
    pub fn reads(&self, channel: Channel) -> &Reads {
        match channel {
            Channel::Email => &self.email_reads,
            Channel::Sms => &self.sms_reads,
        }
    }

    /// Folds what every message of `campaign` shares (`clinic.*`, `campaign.*`,
    /// `unsubscribe_mailto`) into the compiled templates, so that rendering a message evaluates
    /// only what is the patient's own. What they render is unchanged (see [`crate::fold`]).
    pub fn fold_constants(&mut self, campaign: &Campaign) {
        let constants =
            serde_json::to_value(Shared::of(campaign)).expect("template data always serialises");
        let partials = &self.partial_names;
        crate::fold::fold(
            &mut self.text,
            &self.text_names,
            partials,
            &constants,
            handlebars::no_escape,
        );
        crate::fold::fold(
            &mut self.html,
            &self.html_names,
            partials,
            &constants,
            escape_html,
        );
        // What is left to read per message, now that the constants are text.
        self.email_reads = crate::reads::reads(&self.text, &[SUBJECT, EMAIL_TEXT])
            .union(crate::reads::reads(&self.html, &[EMAIL_HTML]));
        self.sms_reads = crate::reads::reads(&self.text, &[SMS_TEXT]);
        // Known only now: the campaign's values are part of the text every SMS writes.
        let smart = campaign.sms.as_ref().is_some_and(|s| s.smart_encoding);
        self.sms_forced =
            crate::sms::forced_ucs2(&crate::fold::fixed_text(&self.text, SMS_TEXT), smart);
    }

    /// The characters outside GSM-7 that the SMS template writes for every contact (its own
    /// text outside any block, the campaign's values folded into it, as smart encoding leaves
    /// them), in order of first appearance: each makes every SMS of this set UCS-2, whoever it
    /// goes to. Empty until [`Templates::fold_constants`], and without an SMS template.
    pub fn sms_forced_ucs2(&self) -> &[char] {
        &self.sms_forced
    }

    /// How many expressions a template or partial still evaluates per message (the HTML
    /// template's partials are written into it).
    #[cfg(test)]
    pub fn evaluated(&self, name: &str) -> Option<usize> {
        let reg = if name == EMAIL_HTML {
            &self.html
        } else {
            &self.text
        };
        reg.get_template(name).map(crate::fold::evaluated)
    }

    /// Every partial this set renders with (its own and those it inherited).
    pub fn partials(&self) -> &Partials {
        &self.partials
    }

    /// The template directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Renders the three parts of an email.
    pub fn render_email(&self, data: &Context) -> Result<RenderedEmail, RenderError> {
        let subject = self.render(&self.text, SUBJECT, data)?;
        Ok(RenderedEmail {
            subject: one_line(&subject),
            html: self.render(&self.html, EMAIL_HTML, data)?,
            text: self.render(&self.text, EMAIL_TEXT, data)?,
        })
    }

    /// Renders the SMS body (surrounding whitespace trimmed).
    pub fn render_sms(&self, data: &Context) -> Result<String, RenderError> {
        Ok(self.render(&self.text, SMS_TEXT, data)?.trim().to_string())
    }

    fn render(&self, reg: &Handlebars, name: &str, data: &Context) -> Result<String, RenderError> {
        reg.render_with_context(name, data).map_err(|e| {
            let message = match e.reason() {
                RenderErrorReason::MissingVariable(Some(var)) => format!(
                    "`{var}` is empty or missing for this contact and the template gives no \
                     fallback (write {{{{default {var} \"…\"}}}})"
                ),
                other => other.to_string(),
            };
            RenderError {
                template: e.template_name.clone().unwrap_or_else(|| name.to_string()),
                line: e.line_no,
                message,
            }
        })
    }
}

/// Collapses a rendered header value to one line: no CR/LF can reach a header.
pub fn one_line(s: &str) -> String {
    s.split(|c: char| c.is_control() || c.is_whitespace())
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Finds `contact.NAME` inside the Handlebars tags of `source`.
fn column_uses_in(template: &str, source: &str) -> Vec<ColumnUse> {
    let mut uses = Vec::new();
    let mut offset = 0;
    while let Some(open) = source[offset..].find("{{") {
        let start = offset + open;
        let Some(len) = source[start..].find("}}") else {
            break;
        };
        let tag = &source[start + 2..start + len];
        offset = start + len + 2;
        let body = tag.trim_start_matches(['{', '~']).trim_start();
        if body.starts_with('!') {
            continue;
        }
        let head = body
            .trim_start_matches(['#', '^', '/'])
            .split_whitespace()
            .next()
            .unwrap_or("");
        let guarded = matches!(head, "default" | "gsm7" | "if" | "unless" | "with");
        let line = source[..start].matches('\n').count() + 1;
        let mut rest = tag;
        while let Some(i) = rest.find("contact.") {
            let boundary_ok = i == 0
                || !rest[..i]
                    .chars()
                    .next_back()
                    .is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '.');
            let name: String = rest[i + 8..]
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            if boundary_ok && !name.is_empty() {
                uses.push(ColumnUse {
                    template: template.to_string(),
                    line,
                    column: name.clone(),
                    guarded,
                });
            }
            rest = &rest[i + 8 + name.len()..];
        }
    }
    uses
}

/// The data every template of one contact sees.
pub struct MessageData<'a> {
    pub campaign: &'a Campaign,
    pub contact: &'a Contact,
    /// The per-recipient unsubscribe URL (email) or `None`.
    pub unsubscribe_url: Option<&'a str>,
}

/// A contact's fields as templates see them: those `reads` allows.
struct ContactFields<'a>(&'a Contact, &'a Reads);

impl Serialize for ContactFields<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(None)?;
        let mut result = Ok(());
        self.0.visit_fields(|k, v| {
            if result.is_ok() && self.1.contact_field(k) {
                result = map.serialize_entry(k, v);
            }
        });
        result?;
        map.end()
    }
}

#[derive(Serialize)]
struct ClinicData<'a> {
    name: &'a str,
    phone: &'a str,
    phone_e164: &'a str,
    address: &'a str,
    website: &'a str,
    booking_url: &'a str,
    timezone: &'a str,
    region: &'a str,
}

#[derive(Serialize)]
struct CampaignData<'a> {
    id: &'a str,
    name: &'a str,
}

/// What every message of a campaign sees alike: folded into the templates when they load
/// ([`Templates::fold_constants`]) and, for whatever folding leaves, in every context.
#[derive(Serialize)]
struct Shared<'a> {
    clinic: ClinicData<'a>,
    campaign: CampaignData<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    unsubscribe_mailto: Option<String>,
}

impl<'a> Shared<'a> {
    fn of(campaign: &'a Campaign) -> Self {
        let c = &campaign.clinic;
        Shared {
            clinic: ClinicData {
                name: &c.name,
                phone: &c.phone,
                phone_e164: &c.phone_e164,
                address: &c.address,
                website: &c.website,
                booking_url: &c.booking_url,
                timezone: c.timezone.name(),
                region: &c.region_code,
            },
            campaign: CampaignData {
                id: &campaign.id,
                name: &campaign.name,
            },
            unsubscribe_mailto: campaign
                .email
                .as_ref()
                .and_then(|e| e.unsubscribe_mailto.as_ref())
                .map(|a| a.to_string()),
        }
    }
}

/// A message's context: of the contact, the campaign's shared values and the unsubscribe
/// link, what the templates can read ([`Reads`]).
struct Data<'a> {
    campaign: &'a Campaign,
    contact: &'a Contact,
    unsubscribe_url: Option<&'a str>,
    reads: &'a Reads,
}

impl Serialize for Data<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let r = self.reads;
        let mut map = s.serialize_map(None)?;
        if r.key("contact") {
            map.serialize_entry("contact", &ContactFields(self.contact, r))?;
        }
        if ["clinic", "campaign", "unsubscribe_mailto"]
            .iter()
            .any(|k| r.key(k))
        {
            let shared = Shared::of(self.campaign);
            if r.key("clinic") {
                map.serialize_entry("clinic", &shared.clinic)?;
            }
            if r.key("campaign") {
                map.serialize_entry("campaign", &shared.campaign)?;
            }
            if let Some(m) = shared
                .unsubscribe_mailto
                .filter(|_| r.key("unsubscribe_mailto"))
            {
                map.serialize_entry("unsubscribe_mailto", &m)?;
            }
        }
        if let Some(u) = self.unsubscribe_url.filter(|_| r.key("unsubscribe_url")) {
            map.serialize_entry("unsubscribe_url", u)?;
        }
        map.end()
    }
}

impl MessageData<'_> {
    /// The Handlebars context, built once per contact and shared by its templates: what
    /// `reads` (the templates' [`Templates::reads`]) allows of it.
    pub fn context(&self, reads: &Reads) -> Context {
        let data = Data {
            campaign: self.campaign,
            contact: self.contact,
            unsubscribe_url: self.unsubscribe_url,
            reads,
        };
        Context::wraps(data).expect("template data always serialises")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strip_tags(html: &str) -> String {
        let html = match (html.find("<style"), html.find("</style>")) {
            (Some(a), Some(b)) => format!("{}{}", &html[..a], &html[b + 8..]),
            _ => html.to_string(),
        };
        let mut out = String::new();
        let mut in_tag = false;
        for c in html.chars() {
            match c {
                '<' => in_tag = true,
                '>' => {
                    in_tag = false;
                    out.push(' ');
                }
                c if !in_tag => out.push(c),
                _ => {}
            }
        }
        out.split_whitespace().collect::<Vec<_>>().join(" ")
    }

    #[test]
    fn inlining_keeps_every_handlebars_tag() {
        let t = "<html><head><title>{{clinic.name}}</title><style>p{color:red} .x{margin:0}</style></head>\
                 <body><table>{{#each rows}}<tr><td class=\"x\">{{this}}</td></tr>{{/each}}</table>\
                 <p><a href=\"{{url}}\">{{> footer}}</a>{{!-- note --}}</p></body></html>";
        let out = inline_css(t).unwrap();
        for tag in [
            "{{clinic.name}}",
            "{{#each rows}}",
            "{{/each}}",
            "{{this}}",
            "{{url}}",
            "{{> footer}}",
            "{{!-- note --}}",
        ] {
            assert!(out.contains(tag), "{tag} lost in {out}");
        }
        assert!(out.contains("style=\"margin: 0;\""), "{out}");
        assert!(!out.contains("<style"), "{out}");
        // The loop stays inside the table.
        assert!(out.find("<table").unwrap() < out.find("{{#each rows}}").unwrap());
    }

    #[test]
    fn inlined_template_renders_the_same_text() {
        let t = "<html><head><style>.a{font-weight:bold}</style></head><body><table><tr><td class=\"a\">\
                 Hi {{default name \"there\"}} &amp; {{#if x}}yes{{else}}no{{/if}}</td></tr></table></body></html>";
        let data = serde_json::json!({"name": "Ann & <Bob>"});
        let reg = registry(true);
        let before = reg.render_template(t, &data).unwrap();
        let after = reg.render_template(&inline_css(t).unwrap(), &data).unwrap();
        assert_eq!(strip_tags(&before), strip_tags(&after));
        assert!(after.contains("Hi Ann &amp; &lt;Bob&gt;"), "{after}");
    }

    #[test]
    fn default_and_gsm7_helpers() {
        let text = registry(false);
        let r = |t: &str, d: serde_json::Value| text.render_template(t, &d).unwrap();
        assert_eq!(
            r(
                "Hi {{default contact.first_name \"there\"}}",
                serde_json::json!({"contact": {}})
            ),
            "Hi there"
        );
        assert_eq!(
            r("Hi {{default n \"there\"}}", serde_json::json!({"n": "  "})),
            "Hi there"
        );
        assert_eq!(
            r(
                "Hi {{default n \"there\"}}",
                serde_json::json!({"n": "O'Brien & Sons"})
            ),
            "Hi O'Brien & Sons"
        );
        assert_eq!(
            r("Hi {{gsm7 n \"there\"}}", serde_json::json!({"n": "José"})),
            "Hi José"
        );
        assert_eq!(
            r("Hi {{gsm7 n \"there\"}}", serde_json::json!({"n": "María"})),
            "Hi there"
        );
        assert_eq!(
            r("Hi {{gsm7 n \"there\"}}", serde_json::json!({"n": "[Al]"})),
            "Hi there"
        );
        let err = text
            .render_template(
                "Hi {{contact.first_name}}",
                &serde_json::json!({"contact": {}}),
            )
            .unwrap_err();
        assert!(matches!(
            err.reason(),
            RenderErrorReason::MissingVariable(_)
        ));
        let html = registry(true);
        assert_eq!(
            html.render_template(
                "{{default n \"x\"}}",
                &serde_json::json!({"n": "<i>Ann</i> & Bob"})
            )
            .unwrap(),
            "&lt;i&gt;Ann&lt;/i&gt; &amp; Bob"
        );
    }

    #[test]
    fn header_values_stay_on_one_line() {
        assert_eq!(
            one_line("Hi Ann\r\nBcc: evil@example.com\t x"),
            "Hi Ann Bcc: evil@example.com x"
        );
    }

    #[test]
    fn finds_contact_columns() {
        let uses = column_uses_in(
            "t",
            "{{contact.first_name}}\n{{default contact.nick \"x\"}} {{#if contact.vip}}{{/if}} {{clinic.name}}",
        );
        let got: Vec<_> = uses
            .iter()
            .map(|u| (u.column.as_str(), u.line, u.guarded))
            .collect();
        assert_eq!(
            got,
            vec![
                ("first_name", 1, false),
                ("nick", 2, true),
                ("vip", 2, true)
            ]
        );
    }
}
