//! The password lifecycle and email verification: forgot, reset, change, verify, resend.
//!
//! Reset and verification links carry `<user id>.<256-bit secret>`: the id finds the one live
//! secret of that purpose, the secret is compared in constant time against its stored hash,
//! and spending it is a conditional delete in the same transaction as the account change.

use subtle::ConstantTimeEq;

use super::auth::{AuthError, AuthService, Origin, Principal, now};
use crate::crypto::secrets;
use crate::domain::{Email, Password, User, UserId};
use crate::mail::templates::{Mail, Notice};
use crate::repo::{OneTimeSecret, OneTimeSecretRepo, PreviousEmail, Purpose, RepoError, StoredUser};
use crate::store::Write;

const RESET_VALID_MINUTES: i64 = 30;
/// A code or link asked for again within this time is not sent again (the first one still
/// works), so the unauthenticated mail routes cannot be used to flood somebody's inbox.
pub(super) const RESEND_AFTER_SECONDS: i64 = 60;
const VERIFICATION_VALID_HOURS: i64 = 24;
/// How long an address the account moved away from still receives its security notices.
pub(super) const PREVIOUS_ADDRESS_DAYS: i64 = 30;
/// The most previous addresses kept (the latest ones).
const MAX_PREVIOUS_ADDRESSES: usize = 5;

impl AuthService {
    /// Emails a reset link if the address belongs to an active account. Answers the same, in
    /// about the same time, either way.
    pub async fn forgot_password(&self, email: Email) -> Result<(), AuthError> {
        self.uniformly(async {
            let identifier = crate::domain::LoginIdentifier::Email(email);
            let Some(stored) = self.users.find_by_login(&identifier).await? else { return Ok(()) };
            // An account made by a provider sets its first password this way too.
            let Some(address) = stored.user.email.clone().filter(|_| stored.user.is_active()) else { return Ok(()) };
            let purpose = Purpose::PasswordReset;
            let Some(token) = self.issue_link(&stored.user, &address, purpose, RESET_VALID_MINUTES * 60).await? else {
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
        // A link proves the address it was sent to, and only while it is the account's.
        if stored.user.email.as_ref() != Some(&secret.email) {
            return Err(self.failed(origin, AuthError::LinkNotFound).await);
        }
        let before = stored.clone();
        let had_password = stored.password_hash.is_some();
        stored.password_hash = Some(self.hasher.hash(&new_password).await?);
        // Voids every session at once, including one a concurrent login is creating.
        stored.session_epoch += 1;
        let removed = reclaim(&mut stored, had_password);
        let mut writes = vec![OneTimeSecretRepo::discard(stored.user.id, Purpose::EmailChange)];
        if removed.totp {
            writes.extend(self.recovery_codes.replace_all(stored.user.id, &[]).await?);
        }
        self.save_redeemed(&before, &stored, Purpose::PasswordReset, &secret, writes).await?;
        // The new epoch already voided them; deleting them is housekeeping.
        match self.sessions.delete_all(stored.user.id, None).await {
            Ok(ended) => tracing::info!(user_id = %stored.user.id, sessions_ended = ended, "password reset"),
            Err(error) => tracing::warn!(user_id = %stored.user.id, %error, "password reset; old sessions not deleted"),
        }
        self.succeeded(&stored.user).await;
        self.notify(&stored, Notice::PasswordChanged).await;
        if removed.identities {
            self.notify(&stored, Notice::IdentityUnlinked).await;
        }
        if removed.totp {
            self.notify(&stored, Notice::TotpDisabled).await;
        }
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
        self.notify(&stored, Notice::PasswordChanged).await;
        Ok(ended)
    }

    /// Marks the address verified with a verification link; answers the account as it is now.
    pub async fn verify_email(&self, token: &str, origin: &Origin) -> Result<User, AuthError> {
        let (mut stored, secret) = self.redeem(token, Purpose::EmailVerification, origin).await?;
        if stored.user.email.as_ref() != Some(&secret.email) {
            // The address changed after the link was sent; the link proves the old one only.
            return Err(AuthError::LinkNotFound);
        }
        let before = stored.clone();
        stored.user.is_email_verified = true;
        self.save_redeemed(&before, &stored, Purpose::EmailVerification, &secret, vec![]).await?;
        Ok(stored.user)
    }

    /// `POST /v1/users/me/email/confirm`: makes the pending address the account's, with the
    /// link sent to it, by the signed-in owner (a link alone would let whoever receives it
    /// attach their address to an account someone else controls). The old address keeps
    /// receiving security notices for `PREVIOUS_ADDRESS_DAYS`.
    pub async fn confirm_email_change(
        &self,
        principal: &Principal,
        token: &str,
        origin: &Origin,
    ) -> Result<User, AuthError> {
        let (before, secret) = self.redeem(token, Purpose::EmailChange, origin).await?;
        if before.user.id != principal.user.id || before.user.pending_email.as_ref() != Some(&secret.email) {
            return Err(self.failed(origin, AuthError::LinkNotFound).await);
        }
        let mut after = before.clone();
        let now = now().unix_timestamp();
        after.previous_emails.retain(|previous| previous.until > now && previous.email != secret.email);
        if let Some(old) = after.user.email.replace(secret.email.clone()) {
            after.previous_emails.push(PreviousEmail { email: old, until: now + PREVIOUS_ADDRESS_DAYS * 86_400 });
        }
        // Bounded: a run of changes must not grow the record, or every notice, without end.
        let excess = after.previous_emails.len().saturating_sub(MAX_PREVIOUS_ADDRESSES);
        after.previous_emails.drain(..excess);
        after.user.pending_email = None;
        after.user.is_email_verified = true;
        // Codes and links sent to the old address stop working with it.
        let writes = vec![
            OneTimeSecretRepo::discard(before.user.id, Purpose::PasswordReset),
            OneTimeSecretRepo::discard(before.user.id, Purpose::EmailCode),
            OneTimeSecretRepo::discard(before.user.id, Purpose::EmailVerification),
        ];
        self.save_redeemed(&before, &after, Purpose::EmailChange, &secret, writes).await?;
        self.notify(&after, Notice::EmailChanged).await;
        Ok(after.user)
    }

    /// Mails the link that confirms `address` as the account's new one.
    pub(super) async fn send_email_change_link(&self, user: &User, address: &Email) -> Result<(), AuthError> {
        self.send_address_link(user, address, Purpose::EmailChange).await
    }

    /// Sends the caller a new verification link (the previous one stops working).
    pub async fn resend_verification(&self, principal: &Principal) -> Result<(), AuthError> {
        if principal.user.is_email_verified {
            return Err(AuthError::EmailAlreadyVerified);
        }
        self.send_verification(&principal.user).await
    }

    /// Sends a verification link, unless one was sent within the last minute.
    pub(super) async fn send_verification(&self, user: &User) -> Result<(), AuthError> {
        let Some(address) = &user.email else { return Err(AuthError::NoEmailAddress) };
        self.send_address_link(user, address, Purpose::EmailVerification).await
    }

    /// Mails `address` a link that proves it (a verification, or the confirmation of a new
    /// address), unless one was sent to it within the last minute.
    async fn send_address_link(&self, user: &User, address: &Email, purpose: Purpose) -> Result<(), AuthError> {
        let valid_hours = VERIFICATION_VALID_HOURS;
        let Some(token) = self.issue_link(user, address, purpose, valid_hours * 3600).await? else { return Ok(()) };
        let mail = match purpose {
            Purpose::EmailChange => Mail::ConfirmEmailChange { token: &token, valid_hours },
            _ => Mail::VerifyEmail { token: &token, valid_hours },
        };
        self.send(address, mail).await
    }

    /// Stores a new secret of `purpose` for the user in place of the previous one, unless a
    /// still-valid one was sent to the same address within the last minute (or a concurrent
    /// request just issued one): `false` then, and nothing should be sent.
    pub(super) async fn issue_secret(
        &self,
        user: &User,
        email: &Email,
        purpose: Purpose,
        hash: String,
        valid_seconds: i64,
    ) -> Result<bool, AuthError> {
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
    async fn issue_link(
        &self,
        user: &User,
        email: &Email,
        purpose: Purpose,
        valid_seconds: i64,
    ) -> Result<Option<String>, AuthError> {
        let secret = secrets::generate();
        let issued = self.issue_secret(user, email, purpose, secrets::hash(&secret), valid_seconds).await?;
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
        self.check_address(origin).await?;
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

    /// Saves the account change (from `before` to `after`) and spends the link secret in one
    /// transaction, with `also`. If that fails, either the link was spent meanwhile
    /// (`LinkNotFound`), the account changed (`Aborted`), or a new address is taken.
    async fn save_redeemed(
        &self,
        before: &StoredUser,
        after: &StoredUser,
        purpose: Purpose,
        secret: &OneTimeSecret,
        also: Vec<Write>,
    ) -> Result<(), AuthError> {
        let mut writes = vec![OneTimeSecretRepo::consume(after.user.id, purpose, &secret.hash)];
        writes.extend(also);
        match self.users.save_profile(&before.user, after, writes).await {
            Err(RepoError::Conflict) => match self.secrets.get(after.user.id, purpose).await? {
                Some(current) if current.hash == secret.hash => Err(AuthError::Aborted),
                _ => Err(AuthError::LinkNotFound),
            },
            other => Ok(other?),
        }
    }
}

/// What a password reset took away.
struct Reclaimed {
    identities: bool,
    totp: bool,
}

/// A reset proves the address and takes the account back from whoever held the password. It
/// keeps the provider identities that vouch for that same address, and drops the others (an
/// account that had no password had no password holder: its identities are how its owner
/// signs in, and all stay), as well as a pending address change; TOTP set up while the address was not proven (by whoever
/// registered it, perhaps not its owner, even if the owner later opened the verification link)
/// goes too. TOTP set up on a proven address stays: a reset must not bypass a second factor.
fn reclaim(stored: &mut StoredUser, had_password: bool) -> Reclaimed {
    let address = stored.user.email.clone();
    let identities_before = stored.user.identities.len();
    if had_password {
        stored.user.identities.retain(|identity| identity.email.is_some() && identity.email == address);
    }
    let unproven = stored.user.email.is_some() && !stored.user.is_email_verified;
    let factors = &stored.second_factors;
    let totp = factors.totp.as_ref().is_some_and(|totp| totp.set_up_unverified)
        || (unproven && (factors.totp.is_some() || factors.totp_pending.is_some()));
    if totp {
        stored.second_factors.totp = None;
        stored.second_factors.totp_pending = None;
    }
    stored.user.pending_email = None;
    stored.user.is_email_verified = true;
    Reclaimed { identities: stored.user.identities.len() != identities_before, totp }
}
