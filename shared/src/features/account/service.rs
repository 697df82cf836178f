use std::sync::Arc;

use subtle::ConstantTimeEq;

use crate::crypto::passwords::PasswordHasher;
use crate::crypto::secrets;
use crate::domain::{Email, Password, User, UserId};
use crate::kernel::{
    Failure, Guard, Kernel, Links, Notices, Origin, Principal, ProofError, Proofs, caller_record, now, taken_or_failure,
};
use crate::mail::templates::{Mail, Notice};
use crate::repo::{
    OneTimeSecret, OneTimeSecretRepo, PreviousEmail, Purpose, RecoveryCodeRepo, RepoError, SessionRepo, StoredUser,
    UniqueField, UserRepo,
};
use crate::store::Write;

const RESET_VALID_MINUTES: i64 = 30;
/// How long an address the account moved away from still receives its security notices.
const PREVIOUS_ADDRESS_DAYS: i64 = 30;
/// The most previous addresses kept (the latest ones).
const MAX_PREVIOUS_ADDRESSES: usize = 5;

#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    /// A reset or verification token that is unknown, expired or spent.
    #[error("the link is invalid, expired or already used")]
    LinkNotFound,
    #[error("the email address is already verified")]
    EmailAlreadyVerified,
    #[error("the account has no email address")]
    NoEmailAddress,
    #[error("this {0} is already registered")]
    AlreadyExists(UniqueField),
    #[error(transparent)]
    Proof(#[from] ProofError),
    #[error(transparent)]
    Failure(#[from] Failure),
}

impl From<RepoError> for AccountError {
    fn from(error: RepoError) -> Self {
        taken_or_failure(error, Self::AlreadyExists)
    }
}

pub struct AccountService {
    users: UserRepo,
    recovery_codes: RecoveryCodeRepo,
    sessions: SessionRepo,
    links: Arc<Links>,
    proofs: Arc<Proofs>,
    guard: Arc<Guard>,
    notices: Arc<Notices>,
    hasher: PasswordHasher,
}

impl AccountService {
    pub fn new(kernel: &Kernel) -> Self {
        Self {
            users: kernel.users(),
            recovery_codes: RecoveryCodeRepo::new(Arc::clone(&kernel.store)),
            sessions: kernel.sessions.repo().clone(),
            links: Arc::clone(&kernel.links),
            proofs: Arc::clone(&kernel.proofs),
            guard: Arc::clone(&kernel.guard),
            notices: Arc::clone(&kernel.notices),
            hasher: kernel.hasher.clone(),
        }
    }

    /// Emails a reset link if the address belongs to an active account. Answers the same, in
    /// about the same time, either way.
    pub async fn forgot_password(&self, email: Email) -> Result<(), AccountError> {
        self.guard
            .uniformly(async {
                let identifier = crate::domain::LoginIdentifier::Email(email);
                let Some(stored) = self.users.find_by_login(&identifier).await? else { return Ok(()) };
                // An account made by a provider sets its first password this way too.
                let Some(address) = stored.user.email.clone().filter(|_| stored.user.is_active()) else {
                    return Ok(());
                };
                let purpose = Purpose::PasswordReset;
                let Some(token) =
                    self.links.issue_link(&stored.user, &address, purpose, RESET_VALID_MINUTES * 60).await?
                else {
                    return Ok(());
                };
                let mail = Mail::PasswordReset { token: &token, valid_minutes: RESET_VALID_MINUTES };
                if let Err(error) = self.notices.send(&address, mail).await {
                    tracing::error!(user_id = %stored.user.id, %error, "the reset email could not be sent");
                }
                Ok(())
            })
            .await
    }

    /// Sets a new password with a reset link; ends every session of the account.
    pub async fn reset_password(
        &self,
        token: &str,
        new_password: Password,
        origin: &Origin,
    ) -> Result<(), AccountError> {
        let (mut stored, secret) = self.redeem(token, Purpose::PasswordReset, origin).await?;
        // A link proves the address it was sent to, and only while it is the account's.
        if stored.user.email.as_ref() != Some(&secret.email) {
            return Err(self.guard.failed(origin, AccountError::LinkNotFound).await);
        }
        let before = stored.clone();
        let had_password = stored.password_hash.is_some();
        stored.password_hash = Some(self.hasher.hash(&new_password).await.map_err(Failure::from)?);
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
        self.guard.succeeded(stored.user.id).await;
        self.notices.notify(&stored, Notice::PasswordChanged).await;
        if removed.identities {
            self.notices.notify(&stored, Notice::IdentityUnlinked).await;
        }
        if removed.totp {
            self.notices.notify(&stored, Notice::TotpDisabled).await;
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
    ) -> Result<usize, AccountError> {
        let mut stored = self
            .proofs
            .check_password(caller_record(&self.users, principal).await?, current_password, "current_password", origin)
            .await?;
        stored.password_hash = Some(self.hasher.hash(&new_password).await.map_err(Failure::from)?);
        stored.session_epoch += 1;
        self.users.save(&stored, vec![]).await?;
        // Every other session is void from here on; the caller's moves into the new epoch.
        self.sessions.restamp(stored.user.id, principal.session_id, stored.session_epoch).await?;
        let ended = self.sessions.delete_all(stored.user.id, Some(principal.session_id)).await?;
        self.guard.succeeded(stored.user.id).await;
        self.notices.notify(&stored, Notice::PasswordChanged).await;
        Ok(ended)
    }

    /// Marks the address verified with a verification link; answers the account as it is now.
    pub async fn verify_email(&self, token: &str, origin: &Origin) -> Result<User, AccountError> {
        let (mut stored, secret) = self.redeem(token, Purpose::EmailVerification, origin).await?;
        if stored.user.email.as_ref() != Some(&secret.email) {
            // The address changed after the link was sent; the link proves the old one only.
            return Err(AccountError::LinkNotFound);
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
    ) -> Result<User, AccountError> {
        let (before, secret) = self.redeem(token, Purpose::EmailChange, origin).await?;
        if before.user.id != principal.user.id || before.user.pending_email.as_ref() != Some(&secret.email) {
            return Err(self.guard.failed(origin, AccountError::LinkNotFound).await);
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
        self.notices.notify(&after, Notice::EmailChanged).await;
        Ok(after.user)
    }

    /// Sends the caller a new verification link (the previous one stops working).
    pub async fn resend_verification(&self, principal: &Principal) -> Result<(), AccountError> {
        if principal.user.is_email_verified {
            return Err(AccountError::EmailAlreadyVerified);
        }
        let Some(address) = &principal.user.email else { return Err(AccountError::NoEmailAddress) };
        Ok(self.links.send_verification(&principal.user, address).await?)
    }

    /// The account and the live secret a link token names. Unknown, expired and spent tokens
    /// are all `LinkNotFound`, and count as failures of the client address.
    async fn redeem(
        &self,
        token: &str,
        purpose: Purpose,
        origin: &Origin,
    ) -> Result<(StoredUser, OneTimeSecret), AccountError> {
        self.guard.check_address(origin).await?;
        let parsed = token.trim().split_once('.').and_then(|(id, secret)| Some((UserId::parse(id)?, secret)));
        let Some((user_id, secret)) = parsed else {
            return Err(self.guard.failed(origin, AccountError::LinkNotFound).await);
        };
        let (stored, record) = tokio::join!(self.users.find_by_id(user_id), self.links.secrets().get(user_id, purpose));
        let presented = secrets::hash(secret);
        match (stored?, record?) {
            (Some(stored), Some(record))
                if stored.user.is_active()
                    && record.expires_at > now().unix_timestamp()
                    && bool::from(presented.as_bytes().ct_eq(record.hash.as_bytes())) =>
            {
                Ok((stored, record))
            }
            _ => Err(self.guard.failed(origin, AccountError::LinkNotFound).await),
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
    ) -> Result<(), AccountError> {
        let mut writes = vec![OneTimeSecretRepo::consume(after.user.id, purpose, &secret.hash)];
        writes.extend(also);
        match self.users.save_profile(&before.user, after, writes).await {
            Err(RepoError::Conflict) => match self.links.secrets().get(after.user.id, purpose).await? {
                Some(current) if current.hash == secret.hash => Err(Failure::Aborted.into()),
                _ => Err(AccountError::LinkNotFound),
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
    // Without a password, the identity the account was made with is its owner's way in, and stays
    // whatever address it shared; one linked since (perhaps with a stolen session) goes too.
    let created_at = stored.user.created_at;
    stored.user.identities.retain(|identity| {
        (identity.email.is_some() && identity.email == address) || (!had_password && identity.linked_at == created_at)
    });
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
