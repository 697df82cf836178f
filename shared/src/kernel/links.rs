//! Single-use secrets mailed to an address: links that prove it (verification, the
//! confirmation of a new address, a password reset) and sign-in codes. Stored hashed, one per
//! purpose, and not sent again within a minute.

use std::sync::Arc;

use super::failure::Failure;
use super::notices::Notices;
use super::now;
use crate::crypto::secrets;
use crate::domain::{Email, User};
use crate::mail::templates::Mail;
use crate::repo::{OneTimeSecret, OneTimeSecretRepo, Purpose};
use crate::store::ItemStore;

/// A code or link asked for again within this time is not sent again (the first one still
/// works), so the unauthenticated mail routes cannot be used to flood somebody's inbox.
pub const RESEND_AFTER_SECONDS: i64 = 60;
const ADDRESS_LINK_VALID_HOURS: i64 = 24;

pub struct Links {
    secrets: OneTimeSecretRepo,
    notices: Arc<Notices>,
}

impl Links {
    pub fn new(store: &Arc<dyn ItemStore>, notices: &Arc<Notices>) -> Self {
        Self { secrets: OneTimeSecretRepo::new(Arc::clone(store)), notices: Arc::clone(notices) }
    }

    /// The secret records, for the flows that redeem them.
    pub fn secrets(&self) -> &OneTimeSecretRepo {
        &self.secrets
    }

    /// Mails a verification link for the account's `address`, unless one was sent within the
    /// last minute.
    pub async fn send_verification(&self, user: &User, address: &Email) -> Result<(), Failure> {
        self.send_address_link(user, address, Purpose::EmailVerification).await
    }

    /// Mails the link that confirms `address` as the account's new one.
    pub async fn send_email_change_link(&self, user: &User, address: &Email) -> Result<(), Failure> {
        self.send_address_link(user, address, Purpose::EmailChange).await
    }

    async fn send_address_link(&self, user: &User, address: &Email, purpose: Purpose) -> Result<(), Failure> {
        let valid_hours = ADDRESS_LINK_VALID_HOURS;
        let Some(token) = self.issue_link(user, address, purpose, valid_hours * 3600).await? else { return Ok(()) };
        let mail = match purpose {
            Purpose::EmailChange => Mail::ConfirmEmailChange { token: &token, valid_hours },
            _ => Mail::VerifyEmail { token: &token, valid_hours },
        };
        self.notices.send(address, mail).await
    }

    /// Stores a new secret of `purpose` for the user in place of the previous one, unless a
    /// still-valid one was sent to the same address within the last minute (or a concurrent
    /// request just issued one): `false` then, and nothing should be sent.
    pub async fn issue_secret(
        &self,
        user: &User,
        email: &Email,
        purpose: Purpose,
        hash: String,
        valid_seconds: i64,
    ) -> Result<bool, Failure> {
        let email = email.clone();
        let now = now().unix_timestamp();
        let previous = self.secrets.get(user.id, purpose).await?;
        let recent =
            |p: &OneTimeSecret| p.email == email && p.expires_at > now && now - p.issued_at < RESEND_AFTER_SECONDS;
        if previous.as_ref().is_some_and(recent) {
            return Ok(false);
        }
        let secret = OneTimeSecret {
            hash,
            email,
            attempts: 0,
            issued_at: now,
            expires_at: now + valid_seconds,
            ttl: now + valid_seconds,
        };
        Ok(self.secrets.replace(user.id, purpose, &secret, previous.as_ref()).await?)
    }

    /// Issues a link secret for `purpose` and returns the token to put in the link; `None`
    /// when `issue_secret` declined.
    pub async fn issue_link(
        &self,
        user: &User,
        email: &Email,
        purpose: Purpose,
        valid_seconds: i64,
    ) -> Result<Option<String>, Failure> {
        let secret = secrets::generate();
        let issued = self.issue_secret(user, email, purpose, secrets::hash(&secret), valid_seconds).await?;
        Ok(issued.then(|| format!("{}.{secret}", user.id)))
    }
}
