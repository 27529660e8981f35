//! What one contact gets on one channel: the planner's decision for it, and its message
//! rendered (email parts with the unsubscribe link; SMS with smart encoding and segment count),
//! its clinic links campaign-tagged when `[campaign.utm]` asks (`crate::utm`: here, after the
//! templates render, so every command sees the final links and the SMS is counted with them).
//! [`Loaded::outcome`] is the one function `check`, `preview`, `report` and `send` share, so all
//! of them show the same plan. Pure: it reads only what [`crate::load`] loaded.

use std::borrow::Cow;
use std::time::SystemTime;

use chrono::{DateTime, Utc};

use crate::load::Loaded;
use crate::message;
use crate::model::Channel;
use crate::plan::{self, Decision, Inputs};
use crate::sms::{self, Encoding, SmsCount};
use crate::templates::{MessageData, RenderError, RenderedEmail, SMS_TEXT};
use crate::utm::Tagger;

/// The unsubscribe token of test messages: it maps to no one.
pub const INERT_TOKEN: &str = "test-message-not-a-patient";

/// What one contact gets on one channel.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub channel: Channel,
    pub decision: Decision,
    /// Rendered when the message would go (due or deferred), or when asked to render anyway.
    pub message: Option<Rendered>,
    /// Things worth a look that do not stop the message (UCS-2, long SMS).
    pub warnings: Vec<String>,
}

/// A rendered message.
#[derive(Debug, Clone)]
pub enum Rendered {
    Email {
        parts: RenderedEmail,
        token: String,
        unsubscribe_url: String,
    },
    Sms {
        body: String,
        count: SmsCount,
        /// The body before smart encoding, when it changed anything.
        original: Option<String>,
    },
}

impl Loaded {
    /// What happens to contact `index` on `channel` at `now`, its message unrendered (so not
    /// held to `sms.max_segments`). `sent_today`: the day's count for the daily cap, known at
    /// dispatch only.
    pub fn decide(
        &self,
        index: usize,
        channel: Channel,
        now: DateTime<Utc>,
        sent_today: Option<u32>,
    ) -> Decision {
        let contact = &self.contacts.contacts[index];
        let address = contact.address(channel);
        let prior = address.and_then(|a| self.priors.get(channel, a));
        let inputs = Inputs {
            suppressions: &self.suppressions,
            prior,
            redo: self.redo,
            now,
            sent_today,
            segments: None,
            recent: address.map_or(&[], |a| self.recent.get(channel, a)),
        };
        plan::decide(&self.campaign, contact, channel, &inputs)
    }

    /// Decides and renders contact `index` on `channel` at the loaded instant. `render_skipped`
    /// renders a skipped contact's message too when it has an address (preview shows what it
    /// would have been).
    pub fn outcome(&self, index: usize, channel: Channel, render_skipped: bool) -> Outcome {
        let contact = &self.contacts.contacts[index];
        let mut decision = self.decide(index, channel, self.now, None);
        let mut warnings = Vec::new();
        let wanted = decision.will_go() || render_skipped;
        let message = match contact.address(channel) {
            Some(address) if wanted => match self.render(index, channel, address, false) {
                Ok(r) => {
                    if let Rendered::Sms { count, .. } = &r {
                        sms_warnings(count, &mut warnings);
                        decision = plan::size_rule(&self.campaign, decision, count.segments);
                    }
                    Some(r)
                }
                Err(e) => {
                    if decision.will_go() {
                        decision = Decision::Skipped(plan::Skip::Message(e.to_string()));
                    }
                    None
                }
            },
            _ => None,
        };
        Outcome {
            channel,
            decision,
            message,
            warnings,
        }
    }

    /// Renders contact `index`'s message on `channel`. `inert`: the unsubscribe token is a
    /// placeholder that unsubscribes nobody (`send --test-to`).
    pub fn render(
        &self,
        index: usize,
        channel: Channel,
        address: &str,
        inert: bool,
    ) -> Result<Rendered, RenderError> {
        let contact = &self.contacts.contacts[index];
        let (_, templates) = self.templates.pick(contact.language.as_ref());
        match channel {
            Channel::Email => {
                let settings = self.campaign.email.as_ref().expect("email is enabled");
                let token = if inert {
                    INERT_TOKEN.to_string()
                } else {
                    self.key.token(&self.campaign.id, channel, address)
                };
                let url = message::unsubscribe_url(settings, &token);
                let data = MessageData {
                    campaign: &self.campaign,
                    contact,
                    unsubscribe_url: Some(&url),
                };
                let mut parts =
                    templates.render_email(&data.context(templates.reads(Channel::Email)))?;
                if let Some(utm) = &self.campaign.utm {
                    let tagger = Tagger::new(utm, channel, Some(&url));
                    replace(&mut parts.html, Tagger::html, &tagger);
                    replace(&mut parts.text, Tagger::text, &tagger);
                }
                Ok(Rendered::Email {
                    parts,
                    token,
                    unsubscribe_url: url,
                })
            }
            Channel::Sms => {
                let settings = self.campaign.sms.as_ref().expect("sms is enabled");
                let data = MessageData {
                    campaign: &self.campaign,
                    contact,
                    unsubscribe_url: None,
                };
                let mut rendered =
                    templates.render_sms(&data.context(templates.reads(Channel::Sms)))?;
                if let Some(utm) = &self.campaign.utm {
                    replace(
                        &mut rendered,
                        Tagger::text,
                        &Tagger::new(utm, channel, None),
                    );
                }
                let (body, original) = if settings.smart_encoding {
                    match sms::smart_encode(&rendered) {
                        std::borrow::Cow::Borrowed(_) => (rendered, None),
                        std::borrow::Cow::Owned(s) => (s, Some(rendered)),
                    }
                } else {
                    (rendered, None)
                };
                if body.is_empty() {
                    return Err(RenderError {
                        template: SMS_TEXT.to_string(),
                        line: None,
                        message: "the SMS is empty".into(),
                    });
                }
                Ok(Rendered::Sms {
                    count: sms::count(&body),
                    body,
                    original,
                })
            }
        }
    }

    /// Builds the full MIME message of a rendered email, dated `date`.
    pub fn email_message(
        &self,
        index: usize,
        rendered: &Rendered,
        date: SystemTime,
    ) -> Option<Result<lettre::Message, message::BuildError>> {
        let Rendered::Email { parts, token, .. } = rendered else {
            return None;
        };
        let settings = self.campaign.email.as_ref()?;
        Some(message::build_email(
            &self.campaign,
            settings,
            &self.contacts.contacts[index],
            parts,
            token,
            date,
            None,
        ))
    }
}

/// `part` tagged by `tag`, left as it is when it has nothing to tag.
fn replace<'t>(
    part: &mut String,
    tag: impl for<'s> Fn(&Tagger<'t>, &'s str) -> Cow<'s, str>,
    tagger: &Tagger<'t>,
) {
    let tagged = match tag(tagger, part) {
        Cow::Owned(tagged) => tagged,
        Cow::Borrowed(_) => return,
    };
    *part = tagged;
}

/// Warnings a person should see about an SMS that will still go.
fn sms_warnings(count: &SmsCount, out: &mut Vec<String>) {
    if count.encoding == Encoding::Ucs2 {
        let chars: Vec<String> = count
            .non_gsm
            .iter()
            .map(|c| sms::describe_char(*c))
            .collect();
        out.push(format!(
            "SMS is UCS-2 ({} characters a segment) because of {}",
            if count.segments > 1 { 67 } else { 70 },
            chars.join(", ")
        ));
    }
    if count.segments > 2 {
        out.push(format!(
            "SMS is {} segments ({} {} units)",
            count.segments, count.units, count.encoding
        ));
    }
}
