//! The password lifecycle and email verification: forgot, reset, change, verify, resend.
//!
//! Reset and verification links carry `<user id>.<256-bit secret>`: the id finds the one live
//! secret of that purpose, the secret is compared in constant time against its stored hash,
//! and spending it is a conditional delete in the same transaction as the account change.

use subtle::ConstantTimeEq;

use super::auth::{AuthError, AuthService, Origin, Principal, now};
use super::throttle::Subject;
use crate::crypto::secrets;
use crate::domain::{Email, Password, User, UserId};
use crate::mail::templates::{Mail, Notice};
use crate::repo::{OneTimeSecret, OneTimeSecretRepo, Purpose, RepoError, StoredUser};

const RESET_VALID_MINUTES: i64 = 30;
/// A code or link asked for again within this time is not sent again (the first one still
/// works), so the unauthenticated mail routes cannot be used to flood somebody's inbox.
const RESEND_AFTER_SECONDS: i64 = 60;
const VERIFICATION_VALID_HOURS: i64 = 24;

impl AuthService {
    /// Emails a reset link if the address belongs to an active account. Answers the same, in
    /// about the same time, either way.
    pub async fn forgot_password(&self, email: Email) -> Result<(), AuthError> {
        self.uniformly(async {
            let identifier = crate::domain::LoginIdentifier::Email(email);
            let Some(stored) = self.users.find_by_login(&identifier).await? else { return Ok(()) };
            // An account made by a provider sets its first password this way too.
            let Some(address) = stored.user.email.clone().filter(|_| stored.user.is_active()) else { return Ok(()) };
            let Some(token) = self.issue_link(&stored.user, Purpose::PasswordReset, RESET_VALID_MINUTES * 60).await?
            else {
                return Ok(());
            };
            let mail = Mail::PasswordReset { token: &token, valid_minutes: RESET_VALID_MINUTES };
            if let Err(error) = self.send(&address, mail).await {
                tracing::error!(user_id = %stored.user.id, %error, "the reset email could not be sent");
            }
            Ok(())
        })
        .await
    }

    /// Sets a new password with a reset link; ends every session of the account.
    pub async fn reset_password(&self, token: &str, new_password: Password, origin: &Origin) -> Result<(), AuthError> {
        let (mut stored, secret) = self.redeem(token, Purpose::PasswordReset, origin).await?;
        stored.password_hash = Some(self.hasher.hash(&new_password).await?);
        // Voids every session at once, including one a concurrent login is creating.
        stored.session_epoch += 1;
        // The link reached the inbox, which proves the address it was sent to.
        if stored.user.email.as_ref() == Some(&secret.email) {
            stored.user.is_email_verified = true;
        }
        self.save_redeemed(&stored, Purpose::PasswordReset, &secret).await?;
        // The new epoch already voided them; deleting them is housekeeping.
        match self.sessions.delete_all(stored.user.id, None).await {
            Ok(ended) => tracing::info!(user_id = %stored.user.id, sessions_ended = ended, "password reset"),
            Err(error) => tracing::warn!(user_id = %stored.user.id, %error, "password reset; old sessions not deleted"),
        }
        self.succeeded(&stored.user).await;
        self.notify(&stored.user, Notice::PasswordChanged).await;
        Ok(())
    }

    /// Changes the caller's password; ends every other session. Answers how many ended.
    pub async fn change_password(
        &self,
        principal: &Principal,
        current_password: String,
        new_password: Password,
        origin: &Origin,
    ) -> Result<usize, AuthError> {
        let mut stored =
            self.check_password(self.stored(principal).await?, current_password, "current_password", origin).await?;
        stored.password_hash = Some(self.hasher.hash(&new_password).await?);
        stored.session_epoch += 1;
        self.users.save(&stored, vec![]).await?;
        // Every other session is void from here on; the caller's moves into the new epoch.
        self.sessions.restamp(stored.user.id, principal.session_id, stored.session_epoch).await?;
        let ended = self.sessions.delete_all(stored.user.id, Some(principal.session_id)).await?;
        self.succeeded(&stored.user).await;
        self.notify(&stored.user, Notice::PasswordChanged).await;
        Ok(ended)
    }

    /// Marks the address verified with a verification link; answers the account as it is now.
    pub async fn verify_email(&self, token: &str, origin: &Origin) -> Result<User, AuthError> {
        let (mut stored, secret) = self.redeem(token, Purpose::EmailVerification, origin).await?;
        if stored.user.email.as_ref() != Some(&secret.email) {
            // The address changed after the link was sent; the link proves the old one only.
            return Err(AuthError::LinkNotFound);
        }
        stored.user.is_email_verified = true;
        self.save_redeemed(&stored, Purpose::EmailVerification, &secret).await?;
        Ok(stored.user)
    }

    /// Sends the caller a new verification link (the previous one stops working).
    pub async fn resend_verification(&self, principal: &Principal) -> Result<(), AuthError> {
        if principal.user.is_email_verified {
            return Err(AuthError::FailedPrecondition("the email address is already verified"));
        }
        self.send_verification(&principal.user).await
    }

    /// Sends a verification link, unless one was sent within the last minute.
    pub(super) async fn send_verification(&self, user: &User) -> Result<(), AuthError> {
        let Some(address) = &user.email else {
            return Err(AuthError::FailedPrecondition("the account has no email address"));
        };
        match self.issue_link(user, Purpose::EmailVerification, VERIFICATION_VALID_HOURS * 3600).await? {
            Some(token) => {
                let mail = Mail::VerifyEmail { token: &token, valid_hours: VERIFICATION_VALID_HOURS };
                self.send(address, mail).await
            }
            None => Ok(()),
        }
    }

    /// Stores a new secret of `purpose` for the user in place of the previous one, unless a
    /// still-valid one was sent to the same address within the last minute (or a concurrent
    /// request just issued one): `false` then, and nothing should be sent.
    pub(super) async fn issue_secret(
        &self,
        user: &User,
        purpose: Purpose,
        hash: String,
        valid_seconds: i64,
    ) -> Result<bool, AuthError> {
        let Some(email) = user.email.clone() else { return Ok(false) };
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
    async fn issue_link(&self, user: &User, purpose: Purpose, valid_seconds: i64) -> Result<Option<String>, AuthError> {
        let secret = secrets::generate();
        let issued = self.issue_secret(user, purpose, secrets::hash(&secret), valid_seconds).await?;
        Ok(issued.then(|| format!("{}.{secret}", user.id)))
    }

    /// The account and the live secret a link token names. Unknown, expired and spent tokens
    /// are all `LinkNotFound`, and count as failures of the client address.
    async fn redeem(
        &self,
        token: &str,
        purpose: Purpose,
        origin: &Origin,
    ) -> Result<(StoredUser, OneTimeSecret), AuthError> {
        if let Some(ip) = origin.ip {
            self.throttle.check(&Subject::Address(ip), now().unix_timestamp()).await?;
        }
        let parsed = token.trim().split_once('.').and_then(|(id, secret)| Some((UserId::parse(id)?, secret)));
        let Some((user_id, secret)) = parsed else {
            return Err(self.failed(origin, AuthError::LinkNotFound).await);
        };
        let (stored, record) = tokio::join!(self.users.find_by_id(user_id), self.secrets.get(user_id, purpose));
        let presented = secrets::hash(secret);
        match (stored?, record?) {
            (Some(stored), Some(record))
                if stored.user.is_active()
                    && record.expires_at > now().unix_timestamp()
                    && bool::from(presented.as_bytes().ct_eq(record.hash.as_bytes())) =>
            {
                Ok((stored, record))
            }
            _ => Err(self.failed(origin, AuthError::LinkNotFound).await),
        }
    }

    /// Saves the account change and spends the link secret in one transaction. If that fails,
    /// either the link was spent meanwhile (`LinkNotFound`) or the account changed (`Aborted`).
    async fn save_redeemed(
        &self,
        stored: &StoredUser,
        purpose: Purpose,
        secret: &OneTimeSecret,
    ) -> Result<(), AuthError> {
        let spend = OneTimeSecretRepo::consume(stored.user.id, purpose, &secret.hash);
        match self.users.save(stored, vec![spend]).await {
            Err(RepoError::Conflict) => match self.secrets.get(stored.user.id, purpose).await? {
                Some(current) if current.hash == secret.hash => Err(AuthError::Aborted),
                _ => Err(AuthError::LinkNotFound),
            },
            other => Ok(other?),
        }
    }
}
