//! Proofs of identity from a caller or a sign-in: the password (throttled like a login), a
//! recent login for accounts without one, and second factors (TOTP, recovery codes, mailed
//! codes), each code accepted once.

use std::sync::Arc;

use subtle::ConstantTimeEq;

use super::failure::{Failure, retry_on_conflict, settled};
use super::guard::Guard;
use super::throttle::Subject;
use super::{Origin, Principal, SecondFactor, now};
use crate::config::Config;
use crate::crypto::passwords::PasswordHasher;
use crate::crypto::sealing::{KeyedMac, SecretBox};
use crate::crypto::{secrets, totp};
use crate::domain::User;
use crate::repo::{
    OneTimeSecretRepo, Purpose, RecoveryCodeRepo, RepoError, SessionRepo, StoredUser, TotpFactor, UserRepo,
};
use crate::store::ItemStore;

/// A mailed code takes this many wrong guesses, then stays burned until it expires.
const EMAIL_CODE_MAX_WRONG_GUESSES: u32 = 5;
/// How recent a login must be to stand in for a password an account does not have.
const RECENT_SIGN_IN_SECONDS: i64 = 600;

#[derive(Debug, thiserror::Error)]
pub enum ProofError {
    /// A signed-in caller gave a wrong password or code for `field`.
    #[error("{field} is incorrect")]
    Incorrect { field: &'static str },
    #[error("{0}: is required")]
    MissingField(&'static str),
    /// A change that needs a password from an account without one: a fresh login proves it.
    #[error("sign in again (within the last 10 minutes) to confirm this change")]
    ReauthenticationRequired,
    /// The password was right; a second factor is needed, by one of `methods`.
    #[error("a second factor is required")]
    MfaRequired { methods: Vec<&'static str> },
    #[error("the second factor is wrong, expired or already used")]
    InvalidSecondFactor,
    #[error(transparent)]
    Failure(#[from] Failure),
}

impl From<RepoError> for ProofError {
    fn from(error: RepoError) -> Self {
        Self::Failure(error.into())
    }
}

pub struct Proofs {
    users: UserRepo,
    sessions: SessionRepo,
    secrets: OneTimeSecretRepo,
    recovery_codes: RecoveryCodeRepo,
    guard: Arc<Guard>,
    hasher: PasswordHasher,
    secret_box: Arc<SecretBox>,
    code_mac: Arc<KeyedMac>,
    require_email_codes: bool,
}

impl Proofs {
    pub fn new(
        config: &Config,
        store: &Arc<dyn ItemStore>,
        guard: &Arc<Guard>,
        hasher: PasswordHasher,
        secret_box: &Arc<SecretBox>,
        code_mac: &Arc<KeyedMac>,
    ) -> Self {
        Self {
            users: UserRepo::new(Arc::clone(store)),
            sessions: SessionRepo::new(Arc::clone(store)),
            secrets: OneTimeSecretRepo::new(Arc::clone(store)),
            recovery_codes: RecoveryCodeRepo::new(Arc::clone(store)),
            guard: Arc::clone(guard),
            hasher,
            secret_box: Arc::clone(secret_box),
            code_mac: Arc::clone(code_mac),
            require_email_codes: config.require_email_codes,
        }
    }

    /// Re-authenticates a signed-in caller, whose record `stored` is, with their password
    /// (throttled like a login). Answers the record on success.
    pub async fn check_password(
        &self,
        stored: StoredUser,
        password: String,
        field: &'static str,
        origin: &Origin,
    ) -> Result<StoredUser, ProofError> {
        self.guard.reserve(&Subject::Account(stored.user.id), origin).await?;
        if !self.hasher.verify(password, stored.password_hash.clone()).await {
            return Err(self.guard.failed(origin, ProofError::Incorrect { field }).await);
        }
        Ok(stored)
    }

    /// Re-authenticates a signed-in caller before a change that adds a way into the account:
    /// with the password when the account has one; an account made by a provider has none, so
    /// its login must have begun in the last ten minutes (the user just signed in again).
    pub async fn reauthenticate(
        &self,
        principal: &Principal,
        stored: StoredUser,
        password: Option<String>,
        origin: &Origin,
    ) -> Result<StoredUser, ProofError> {
        if stored.password_hash.is_some() {
            let password = password.ok_or(ProofError::MissingField("current_password"))?;
            return self.check_password(stored, password, "current_password", origin).await;
        }
        let session = self.sessions.get(stored.user.id, principal.session_id).await?;
        match session {
            Some(session) if now().unix_timestamp() - session.created_at <= RECENT_SIGN_IN_SECONDS => Ok(stored),
            _ => Err(ProofError::ReauthenticationRequired),
        }
    }

    /// A fresh code of a second factor the account has (TOTP, or a mailed code when it signs in
    /// with email codes), for a change that would weaken or move it: the password alone must
    /// not. An account with neither needs nothing.
    pub async fn prove_second_factor(
        &self,
        stored: &StoredUser,
        proof: Option<SecondFactor>,
        origin: &Origin,
    ) -> Result<(), ProofError> {
        let totp = stored.second_factors.totp.is_some();
        let email = stored.second_factors.email_codes || self.require_email_codes;
        // Counted against the account like a password (an account with one was counted when
        // its password was checked).
        if proof.is_some() && stored.password_hash.is_none() {
            self.guard.reserve(&Subject::Account(stored.user.id), origin).await?;
        }
        let (proven, field) = match proof {
            Some(SecondFactor::Totp(code)) if totp => (self.accept_totp(stored, &code).await?, "totp_code"),
            Some(SecondFactor::EmailCode(code)) if email => {
                (self.accept_mailed_code(&stored.user, Purpose::EmailCode, &code).await?, "email_code")
            }
            _ if !totp && !email => return Ok(()),
            _ => return Err(ProofError::MissingField(if totp { "totp_code" } else { "email_code" })),
        };
        match proven {
            true => Ok(()),
            false => Err(self.guard.failed(origin, ProofError::Incorrect { field }).await),
        }
    }

    /// At sign-in, after the password matched: demands and checks the account's second factor.
    /// Answers how many recovery codes remain when one was spent.
    pub async fn check_second_factor(
        &self,
        stored: &StoredUser,
        factor: Option<SecondFactor>,
        origin: &Origin,
    ) -> Result<Option<usize>, ProofError> {
        let totp = stored.second_factors.totp.is_some();
        // An account without an address (made by a provider that shared none) cannot get codes.
        let email = (stored.second_factors.email_codes || self.require_email_codes) && stored.user.email.is_some();
        let mut methods = Vec::new();
        if totp {
            methods.extend(["totp_code", "recovery_code"]);
        }
        if email {
            methods.push("email_code");
        }
        if methods.is_empty() {
            return Ok(None);
        }
        let accepted = match factor {
            Some(SecondFactor::Totp(code)) if totp => self.accept_totp(stored, &code).await?,
            Some(SecondFactor::EmailCode(code)) if email => {
                self.accept_mailed_code(&stored.user, Purpose::EmailCode, &code).await?
            }
            Some(SecondFactor::RecoveryCode(code)) if totp => {
                let hash = secrets::hash(&secrets::normalize_recovery_code(&code));
                if self.recovery_codes.consume(stored.user.id, &hash).await? {
                    return Ok(Some(self.recovery_codes.count(stored.user.id).await?));
                }
                false
            }
            _ => return Err(ProofError::MfaRequired { methods }),
        };
        if !accepted {
            return Err(self.guard.failed(origin, ProofError::InvalidSecondFactor).await);
        }
        Ok(None)
    }

    /// A TOTP code is accepted once: its time step must be later than the last one accepted,
    /// and recording the step is a compare-and-swap, so a code raced twice wins once.
    pub async fn accept_totp(&self, stored: &StoredUser, code: &str) -> Result<bool, Failure> {
        retry_on_conflict(|attempt| async move {
            // The record as given, then as re-read after a lost compare-and-swap.
            let seen = match attempt {
                0 => stored.clone(),
                _ => self.users.find_by_id(stored.user.id).await?.ok_or(Failure::SignedOut)?,
            };
            let Some(factor) = seen.second_factors.totp.clone() else { return Ok(Some(false)) };
            let secret = self.open_totp_secret(&seen.user, &factor.sealed_secret)?;
            let now = now().unix_timestamp() as u64;
            let Some(step) = totp::matching_step(&secret, code, now) else { return Ok(Some(false)) };
            // If this very step was accepted meanwhile, the re-read refuses it.
            if step <= factor.last_step {
                return Ok(Some(false));
            }
            // A secret sealed before a key rotation is sealed again with the active key, so the
            // retired key can eventually be dropped.
            let sealed_secret = match self.secret_box.is_current(&factor.sealed_secret) {
                true => factor.sealed_secret,
                false => self.secret_box.seal(&secret, &seen.user.id.to_string()),
            };
            let mut advanced = seen;
            advanced.second_factors.totp = Some(TotpFactor { sealed_secret, last_step: step, ..factor });
            settled(self.users.save(&advanced, vec![]).await.map(|()| true))
        })
        .await
    }

    /// A mailed code is good until it is used, expires, or has taken five wrong guesses (it
    /// then stays burned until it expires, so asking for a new one still waits out the minute).
    async fn accept_mailed_code(&self, user: &User, purpose: Purpose, code: &str) -> Result<bool, Failure> {
        let presented = &self.code_mac.mac(code.trim(), &user.id.to_string());
        let accepted = retry_on_conflict(|_| async move {
            let Some(secret) = self.secrets.get(user.id, purpose).await? else { return Ok(Some(false)) };
            if secret.expires_at <= now().unix_timestamp() || secret.attempts >= EMAIL_CODE_MAX_WRONG_GUESSES {
                return Ok(Some(false));
            }
            if bool::from(presented.as_bytes().ct_eq(secret.hash.as_bytes())) {
                return Ok(Some(self.secrets.spend(user.id, purpose, &secret.hash).await?));
            }
            // Another guess counted first (a lost swap) is counted on top of.
            settled(self.secrets.record_wrong_guess(user.id, purpose, &secret).await.map(|()| false))
        })
        .await;
        match accepted {
            Err(Failure::Aborted) => Ok(false),
            other => other,
        }
    }

    /// The TOTP secret of `user`, unsealed.
    pub fn open_totp_secret(&self, user: &User, sealed: &str) -> Result<Vec<u8>, Failure> {
        self.secret_box
            .open(sealed, &user.id.to_string())
            .ok_or_else(|| Failure::Internal(format!("the TOTP secret of user {} does not open", user.id)))
    }
}
