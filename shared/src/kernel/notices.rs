//! Sending mail: rendered messages, and security notices to an account's addresses.

use std::sync::Arc;

use super::failure::Failure;
use super::now;
use crate::domain::Email;
use crate::mail::Mailer;
use crate::mail::templates::{Mail, Notice, Templates};
use crate::repo::StoredUser;

pub struct Notices {
    mailer: Arc<dyn Mailer>,
    templates: Templates,
}

impl Notices {
    pub fn new(mailer: Arc<dyn Mailer>, templates: Templates) -> Self {
        Self { mailer, templates }
    }

    /// Renders and sends one message.
    pub async fn send(&self, to: &Email, mail: Mail<'_>) -> Result<(), Failure> {
        let message = self.templates.render(to, mail);
        self.mailer.send(message).await.map_err(|error| Failure::Unavailable(error.to_string()))
    }

    /// Sends a security notice to the account's address, if it has one, and to the addresses
    /// it had within the last `PREVIOUS_ADDRESS_DAYS`. The change it reports already happened,
    /// so a mail failure is logged rather than turned into an error.
    pub async fn notify(&self, stored: &StoredUser, notice: Notice) {
        let now = now().unix_timestamp();
        let recent = stored.previous_emails.iter().filter(|previous| previous.until > now).map(|p| &p.email);
        let mut addresses: Vec<&Email> = stored.user.email.iter().chain(recent).collect();
        addresses.dedup();
        for to in addresses {
            if let Err(error) = self.send(to, Mail::Notice(notice)).await {
                tracing::error!(?notice, %error, "a security notice could not be sent");
            }
        }
    }
}
