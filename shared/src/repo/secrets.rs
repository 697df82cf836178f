use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::{RepoError, from_item, put_new, take, to_item};
use crate::domain::{Email, UserId};
use crate::store::{Condition, ItemStore, Key, StoreError, Write};

/// What a one-time secret proves. A user has at most one live secret per purpose: issuing a
/// new one replaces the old, so only the latest email's code or link works.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    EmailCode,
    PasswordReset,
    EmailVerification,
    /// Confirms a new address (the secret's `email`) for the account.
    EmailChange,
}

impl Purpose {
    fn sort_key(self) -> &'static str {
        match self {
            Self::EmailCode => "SECRET#EMAIL_CODE",
            Self::PasswordReset => "SECRET#PASSWORD_RESET",
            Self::EmailVerification => "SECRET#EMAIL_VERIFICATION",
            Self::EmailChange => "SECRET#EMAIL_CHANGE",
        }
    }
}

/// A secret sent by email, stored only as a hash (or a keyed MAC for short codes).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OneTimeSecret {
    pub hash: String,
    /// The address it was sent to: verifying an address proves that address, not a later one.
    pub email: Email,
    /// Wrong guesses so far (email codes are burned after a few).
    pub attempts: u32,
    pub issued_at: i64,
    pub expires_at: i64,
    pub ttl: i64,
}

#[derive(Clone)]
pub struct OneTimeSecretRepo {
    store: Arc<dyn ItemStore>,
}

fn secret_key(user_id: UserId, purpose: Purpose) -> Key {
    Key::new(format!("USER#{user_id}"), purpose.sort_key())
}

impl OneTimeSecretRepo {
    pub fn new(store: Arc<dyn ItemStore>) -> Self {
        Self { store }
    }

    /// Stores `secret` in place of `replacing` (the secret as read, or none): `false` when
    /// another request replaced it first, so two racing requests never both send mail.
    pub async fn replace(
        &self,
        user_id: UserId,
        purpose: Purpose,
        secret: &OneTimeSecret,
        replacing: Option<&OneTimeSecret>,
    ) -> Result<bool, RepoError> {
        let item = to_item(secret_key(user_id, purpose), secret)?;
        let condition = match replacing {
            None => Condition::NotExists,
            Some(previous) => Condition::equals("hash", previous.hash.clone()),
        };
        match self.store.write(vec![Write::put(item, condition)]).await {
            Ok(()) => Ok(true),
            Err(StoreError::ConditionFailed { .. }) => Ok(false),
            Err(error) => Err(error.into()),
        }
    }

    pub async fn get(&self, user_id: UserId, purpose: Purpose) -> Result<Option<OneTimeSecret>, RepoError> {
        Ok(self.store.get(&secret_key(user_id, purpose)).await?.map(from_item).transpose()?)
    }

    /// The write that spends the secret with this hash: it fails if the secret was spent or
    /// replaced meanwhile, which is what makes it single use under concurrency.
    pub fn consume(user_id: UserId, purpose: Purpose, hash: &str) -> Write {
        Write::delete(secret_key(user_id, purpose), Condition::equals("hash", hash))
    }

    /// The write that voids any secret of `purpose` the user has.
    pub fn discard(user_id: UserId, purpose: Purpose) -> Write {
        Write::delete(secret_key(user_id, purpose), Condition::Always)
    }

    /// Spends the secret with this hash on its own; `false` when it was spent or replaced.
    pub async fn spend(&self, user_id: UserId, purpose: Purpose, hash: &str) -> Result<bool, RepoError> {
        match self.store.write(vec![Self::consume(user_id, purpose, hash)]).await {
            Ok(()) => Ok(true),
            Err(StoreError::ConditionFailed { .. }) => Ok(false),
            Err(error) => Err(error.into()),
        }
    }

    /// Counts a wrong guess against `secret` (as read). `Conflict` when the secret changed
    /// meanwhile (another guess was counted, or a new secret replaced it).
    pub async fn record_wrong_guess(
        &self,
        user_id: UserId,
        purpose: Purpose,
        secret: &OneTimeSecret,
    ) -> Result<(), RepoError> {
        let seen = Condition::Equals(vec![("hash", secret.hash.clone().into()), ("attempts", secret.attempts.into())]);
        let next = OneTimeSecret { attempts: secret.attempts + 1, ..secret.clone() };
        let write = Write::put(to_item(secret_key(user_id, purpose), &next)?, seen);
        match self.store.write(vec![write]).await {
            Err(StoreError::ConditionFailed { .. }) => Err(RepoError::Conflict),
            other => Ok(other?),
        }
    }
}

/// Recovery codes: one item per code, keyed by its hash, deleted when used.
#[derive(Clone)]
pub struct RecoveryCodeRepo {
    store: Arc<dyn ItemStore>,
}

#[derive(Serialize, Deserialize)]
struct RecoveryCode {
    hash: String,
}

fn recovery_key(user_id: UserId, hash: &str) -> Key {
    Key::new(format!("USER#{user_id}"), format!("RECOVERY#{hash}"))
}

impl RecoveryCodeRepo {
    pub fn new(store: Arc<dyn ItemStore>) -> Self {
        Self { store }
    }

    /// How many unused codes the user has.
    pub async fn count(&self, user_id: UserId) -> Result<usize, RepoError> {
        Ok(self.store.query(&format!("USER#{user_id}"), "RECOVERY#").await?.len())
    }

    /// The writes that delete every code of the user and, if `hashes` is not empty, store a
    /// new set: to be applied in the same transaction as the change that calls for them.
    pub async fn replace_all(&self, user_id: UserId, hashes: &[String]) -> Result<Vec<Write>, RepoError> {
        let existing = self.store.query(&format!("USER#{user_id}"), "RECOVERY#").await?;
        let mut writes: Vec<Write> =
            existing.into_iter().map(|item| Write::delete(item.key, Condition::Always)).collect();
        for hash in hashes {
            let item = to_item(recovery_key(user_id, hash), &RecoveryCode { hash: hash.clone() })?;
            writes.push(Write::put(item, Condition::Always));
        }
        Ok(writes)
    }

    /// Spends the code with this hash; `false` when there is no such unused code.
    pub async fn consume(&self, user_id: UserId, hash: &str) -> Result<bool, RepoError> {
        let write = Write::delete(recovery_key(user_id, hash), Condition::equals("hash", hash));
        match self.store.write(vec![write]).await {
            Ok(()) => Ok(true),
            Err(StoreError::ConditionFailed { .. }) => Ok(false),
            Err(error) => Err(error.into()),
        }
    }
}

/// Unlock links: one item per token, keyed by its hash, so that asking for a new one never
/// voids one already mailed (someone else asking cannot take the owner's away), and each
/// works once.
#[derive(Clone)]
pub struct UnlockTokenRepo {
    store: Arc<dyn ItemStore>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UnlockToken {
    pub issued_at: i64,
    pub expires_at: i64,
    pub ttl: i64,
}

fn unlock_key(user_id: UserId, hash: &str) -> Key {
    Key::new(format!("USER#{user_id}"), format!("UNLOCK#{hash}"))
}

impl UnlockTokenRepo {
    pub fn new(store: Arc<dyn ItemStore>) -> Self {
        Self { store }
    }

    /// When the user's latest unlock link was issued, if one is live.
    pub async fn latest_issued_at(&self, user_id: UserId, now: i64) -> Result<Option<i64>, RepoError> {
        let items = self.store.query(&format!("USER#{user_id}"), "UNLOCK#").await?;
        let tokens = items.into_iter().map(from_item::<UnlockToken>).collect::<Result<Vec<_>, _>>()?;
        Ok(tokens.iter().filter(|token| token.expires_at > now).map(|token| token.issued_at).max())
    }

    pub async fn create(&self, user_id: UserId, hash: &str, token: &UnlockToken) -> Result<(), RepoError> {
        put_new(self.store.as_ref(), unlock_key(user_id, hash), token).await
    }

    /// Whether the token with this hash is there and not expired (a read only).
    pub async fn is_live(&self, user_id: UserId, hash: &str, now: i64) -> Result<bool, RepoError> {
        let token = self.store.get(&unlock_key(user_id, hash)).await?.map(from_item::<UnlockToken>).transpose()?;
        Ok(token.is_some_and(|token| token.expires_at > now))
    }

    /// Spends the token with this hash; `false` when there is none, it expired, or another
    /// request spent it first.
    pub async fn consume(&self, user_id: UserId, hash: &str, now: i64) -> Result<bool, RepoError> {
        let token: Option<UnlockToken> = take(self.store.as_ref(), unlock_key(user_id, hash)).await?;
        Ok(token.is_some_and(|token| token.expires_at > now))
    }
}
