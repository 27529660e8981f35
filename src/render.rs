//! What one contact gets on one channel: the planner's decision for it, and its message
//! rendered (email parts with the unsubscribe link; SMS with smart encoding and segment count),
//! its clinic links campaign-tagged when `[campaign.utm]` asks (`crate::utm`: here, after the
//! templates render, so every command sees the final links and the SMS is counted with them).
//! [`Loaded::outcome`] is the one function `check`, `preview`, `report` and `send` share, so all
//! of them show the same plan. Pure: it reads only what [`crate::load`] loaded.

use std::borrow::Cow;
use std::fmt;
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
    /// Things worth a look that do not stop the message (UCS-2, long SMS), each the whole
    /// story of this one message.
    pub warnings: Vec<Warning>,
}

/// Something worth a look about a message that still goes; its `Display` is what a person
/// reads.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Warning {
    /// The SMS is UCS-2 because of `chars` (distinct, in order of first appearance); `split`:
    /// it takes more than one segment.
    Ucs2 { chars: Vec<char>, split: bool },
    /// The SMS takes more than two segments.
    Segments {
        segments: usize,
        units: usize,
        encoding: Encoding,
    },
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
fn sms_warnings(count: &SmsCount, out: &mut Vec<Warning>) {
    if count.encoding == Encoding::Ucs2 {
        out.push(Warning::Ucs2 {
            chars: count.non_gsm.clone(),
            split: count.segments > 1,
        });
    }
    if count.segments > 2 {
        out.push(Warning::Segments {
            segments: count.segments,
            units: count.units,
            encoding: count.encoding,
        });
    }
}

impl Warning {
    /// The warning as a check of every row gives it, for a message from templates whose SMS
    /// always has `forced` ([`crate::templates::Templates::sms_forced_ucs2`]): UCS-2 only for
    /// the characters the contact's own values bring, and not at all when they bring none (the
    /// template's are said once, when the campaign loads).
    #[must_use]
    pub fn beyond_template(self, forced: &[char]) -> Option<Warning> {
        match self {
            Warning::Ucs2 { mut chars, split } if !forced.is_empty() => {
                chars.retain(|c| !forced.contains(c));
                (!chars.is_empty()).then_some(Warning::Ucs2 { chars, split })
            }
            other => Some(other),
        }
    }
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Warning::Ucs2 { chars, split } => {
                let per = if *split {
                    Encoding::Ucs2.multipart_segment_units()
                } else {
                    Encoding::Ucs2.single_segment_units()
                };
                write!(f, "SMS is UCS-2 ({per} characters a segment) because of ")?;
                for (i, c) in chars.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    f.write_str(&sms::describe_char(*c))?;
                }
                Ok(())
            }
            Warning::Segments {
                segments,
                units,
                encoding,
            } => write!(f, "SMS is {segments} segments ({units} {encoding} units)"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn beyond_template_names_only_the_rows_own_characters() {
        let ucs2 = Warning::Ucs2 {
            chars: vec!['ó', 'í', '😀'],
            split: true,
        };
        assert_eq!(
            ucs2.to_string(),
            "SMS is UCS-2 (67 characters a segment) because of ó (U+00F3 LATIN SMALL LETTER O \
             WITH ACUTE), í (U+00ED LATIN SMALL LETTER I WITH ACUTE), 😀 (U+1F600)"
        );
        assert_eq!(
            ucs2.clone().beyond_template(&['ó']).unwrap().to_string(),
            "SMS is UCS-2 (67 characters a segment) because of í (U+00ED LATIN SMALL LETTER I \
             WITH ACUTE), 😀 (U+1F600)"
        );
        assert_eq!(ucs2.clone().beyond_template(&[]), Some(ucs2.clone()));
        assert_eq!(ucs2.beyond_template(&['😀', 'í', 'ó']), None);
        let long = Warning::Segments {
            segments: 3,
            units: 197,
            encoding: Encoding::Ucs2,
        };
        assert_eq!(long.clone().beyond_template(&['ó']), Some(long.clone()));
        assert_eq!(long.to_string(), "SMS is 3 segments (197 UCS-2 units)");
    }
}
