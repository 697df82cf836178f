//! Outgoing email: one port, two adapters. On Lambda mail goes out through SES (v2); the
//! local server writes each message as an RFC 5322 `.eml` file into an outbox directory.

pub mod outbox;
#[cfg(feature = "aws")]
pub mod ses;
pub mod templates;

use async_trait::async_trait;

use crate::domain::Email;

/// A rendered message: every message has a plain-text and an HTML part.
#[derive(Debug, Clone, PartialEq)]
pub struct OutgoingMail {
    pub to: Email,
    pub subject: String,
    pub text: String,
    pub html: String,
}

/// Who mail comes from: `"<display name>" <address>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sender {
    pub name: String,
    pub address: String,
}

impl std::fmt::Display for Sender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let name = self.name.replace(['"', '\\'], "");
        write!(f, "\"{name}\" <{}>", self.address)
    }
}

#[derive(Debug, thiserror::Error)]
#[error("mail could not be sent: {0}")]
pub struct MailError(pub String);

#[async_trait]
pub trait Mailer: Send + Sync + 'static {
    async fn send(&self, mail: OutgoingMail) -> Result<(), MailError>;
}

/// The mail port of a function that sends no mail (it is given no SES client): a call would be
/// a bug, and is refused rather than dropped silently.
pub struct NoMail;

#[async_trait]
impl Mailer for NoMail {
    async fn send(&self, _mail: OutgoingMail) -> Result<(), MailError> {
        Err(MailError("this function is not configured to send mail".into()))
    }
}
