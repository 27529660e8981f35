//! `send --test-to ADDR`: one patient's message sent to a staff address or number, whatever the
//! hour, cap, consent, suppression or ledger say. Nothing is recorded against the patient, and
//! the unsubscribe link is inert (it maps to no one).

use std::sync::Arc;
use std::time::SystemTime;

use super::error::{SendError, TestToError};
use super::lane::{check_failed, email_transport, sms_transport};
use crate::address::{E164Phone, EmailAddress};
use crate::load::Loaded;
use crate::model::Channel;
use crate::plan::Decision;
use crate::render::Rendered;
use crate::transport::{Delivery, EmailOut, SmsOut, Transport};

/// What `send --test-to` did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct TestSend {
    pub channel: Channel,
    pub to: String,
    pub contact: String,
    pub delivered: bool,
    pub detail: String,
}

impl std::fmt::Display for TestSend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Test {} of contact {} to {}: {}",
            self.channel, self.contact, self.to, self.detail
        )
    }
}

/// The staff address a test goes to.
enum Staff {
    Email(EmailAddress),
    Phone(E164Phone),
}

/// Sends the message of `--contact KEY` (else the first contact due on the channel of `to`) to
/// `to`, and says what the transport answered.
pub fn test_to(
    loaded: &Loaded,
    to: &str,
    contact_key: Option<&str>,
) -> Result<TestSend, SendError> {
    let staff = if to.contains('@') {
        Staff::Email(EmailAddress::parse(to).map_err(TestToError::Address)?)
    } else {
        Staff::Phone(
            E164Phone::parse(to, loaded.campaign.clinic.region).map_err(TestToError::Address)?,
        )
    };
    let channel = match staff {
        Staff::Email(_) => Channel::Email,
        Staff::Phone(_) => Channel::Sms,
    };
    if !loaded.campaign.channels.contains(&channel) {
        return Err(TestToError::NotEnabled {
            to: to.to_string(),
            channel,
        }
        .into());
    }
    let index = test_contact(loaded, channel, contact_key)?;
    let contact = &loaded.contacts.contacts[index];
    let patient_address = contact
        .address(channel)
        .ok_or_else(|| TestToError::NoAddress {
            contact: contact.id.clone(),
            channel,
        })?;
    let rendered = loaded
        .render(index, channel, patient_address, true)
        .map_err(|source| TestToError::Render {
            contact: contact.id.clone(),
            source,
        })?;
    let now = SystemTime::from(loaded.clock.now());
    let contact_id = format!("test-{}", contact.id);
    let (to, delivery) = match (staff, rendered) {
        (Staff::Email(staff), Rendered::Email { parts, token, .. }) => {
            let settings = loaded.campaign.email.as_ref().expect("enabled");
            let m = crate::message::build_email(
                &loaded.campaign,
                settings,
                contact,
                &parts,
                &token,
                now,
                Some(staff.lettre()),
            )
            .map_err(TestToError::Build)?;
            let message = EmailOut {
                // Its token is inert: a bounce of it maps to no patient either.
                from: settings.envelope_from(&token),
                to: staff.clone(),
                bytes: crate::message::wire(settings, &m, now),
                campaign: loaded.campaign.id.clone(),
                contact_id,
            };
            (
                staff.to_string(),
                once(channel, email_transport(loaded)?, message)?,
            )
        }
        (Staff::Phone(staff), Rendered::Sms { body, count, .. }) => {
            let message = SmsOut {
                to: staff.clone(),
                from: loaded.campaign.sms.as_ref().expect("enabled").from.clone(),
                body,
                encoding: count.encoding,
                segments: count.segments,
                campaign: loaded.campaign.id.clone(),
                contact: contact_id,
            };
            (
                staff.to_string(),
                once(channel, sms_transport(loaded)?, message)?,
            )
        }
        _ => unreachable!("a channel renders its own kind of message"),
    };
    let (delivered, detail) = match delivery {
        Delivery::Sent { provider_id } => (true, format!("sent ({provider_id})")),
        Delivery::Transient { error, .. }
        | Delivery::Permanent { error }
        | Delivery::OptedOut { error }
        | Delivery::Unknown { error }
        | Delivery::Fatal { error } => (false, format!("not sent: {error}")),
    };
    Ok(TestSend {
        channel,
        to,
        contact: contact.id.clone(),
        delivered,
        detail,
    })
}

/// The contact whose message the test sends.
fn test_contact(
    loaded: &Loaded,
    channel: Channel,
    contact_key: Option<&str>,
) -> Result<usize, TestToError> {
    match contact_key {
        Some(key) => loaded
            .find_contact(key)
            .ok_or_else(|| TestToError::NoSuchContact(key.to_string())),
        None => (0..loaded.contacts.contacts.len())
            .find(|&i| loaded.outcome(i, channel, false).decision == Decision::Due)
            .ok_or(TestToError::NoneDue(channel)),
    }
}

/// Checks `transport`, sends `message` on it, closes it.
fn once<M: Send + Sync>(
    channel: Channel,
    transport: Arc<dyn Transport<M>>,
    message: M,
) -> Result<Delivery, SendError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(SendError::Runtime)?;
    runtime.block_on(async {
        transport
            .check()
            .await
            .map_err(|e| check_failed(channel, e))?;
        let delivery = transport.send(&message).await;
        transport.close().await;
        Ok(delivery)
    })
}
