//! argon2id password hashing, always on a blocking thread so logins never stall the workers.

use std::sync::Arc;

use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier as _, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use base64::Engine;
use base64::engine::general_purpose::STANDARD_NO_PAD;

use crate::domain::Password;

/// argon2id cost; the defaults are OWASP's (19 MiB, 2 passes, 1 lane).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Argon2Settings {
    pub memory_kib: u32,
    pub iterations: u32,
    pub parallelism: u32,
}

impl Default for Argon2Settings {
    fn default() -> Self {
        Self { memory_kib: 19_456, iterations: 2, parallelism: 1 }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum HashError {
    #[error("invalid argon2 settings: {0}")]
    Settings(String),
    #[error("password hashing failed: {0}")]
    Failed(String),
}

#[derive(Clone)]
pub struct PasswordHasher {
    inner: Arc<Inner>,
}

struct Inner {
    argon2: Argon2<'static>,
    /// One hash per core at a time: more would only queue inside the blocking pool while
    /// holding ~19 MiB each, so a burst of logins could exhaust memory.
    permits: tokio::sync::Semaphore,
    /// A PHC string with the configured cost that no password matches. Verifying against it
    /// when the user does not exist makes an unknown user cost the same time as a wrong password.
    dummy_hash: String,
}

impl PasswordHasher {
    pub fn new(settings: Argon2Settings) -> Result<Self, HashError> {
        let params = Params::new(settings.memory_kib, settings.iterations, settings.parallelism, None)
            .map_err(|error| HashError::Settings(error.to_string()))?;
        let dummy_hash = format!(
            "$argon2id$v=19$m={},t={},p={}${}${}",
            settings.memory_kib,
            settings.iterations,
            settings.parallelism,
            STANDARD_NO_PAD.encode(b"latchkey-no-user"),
            STANDARD_NO_PAD.encode([0u8; 32]),
        );
        let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        Ok(Self { inner: Arc::new(Inner { argon2, dummy_hash, permits: tokio::sync::Semaphore::new(cores) }) })
    }

    /// Hashes a new password into a PHC string.
    pub async fn hash(&self, password: &Password) -> Result<String, HashError> {
        let _permit = self.inner.permits.acquire().await.map_err(|e| HashError::Failed(e.to_string()))?;
        let inner = Arc::clone(&self.inner);
        let password = password.clone();
        tokio::task::spawn_blocking(move || {
            let mut salt = [0u8; 16];
            aws_lc_rs::rand::fill(&mut salt).map_err(|_| HashError::Failed("no randomness".into()))?;
            let salt = SaltString::encode_b64(&salt).map_err(|e| HashError::Failed(e.to_string()))?;
            inner
                .argon2
                .hash_password(password.expose().as_bytes(), &salt)
                .map(|hash| hash.to_string())
                .map_err(|e| HashError::Failed(e.to_string()))
        })
        .await
        .map_err(|e| HashError::Failed(e.to_string()))?
    }

    /// Whether `candidate` matches `stored`. With no stored hash (unknown user, or an account
    /// without a password) it still does the full work and answers false.
    pub async fn verify(&self, candidate: String, stored: Option<String>) -> bool {
        let Ok(_permit) = self.inner.permits.acquire().await else { return false };
        let inner = Arc::clone(&self.inner);
        let result = tokio::task::spawn_blocking(move || {
            let (phc, known) = match stored {
                Some(phc) => (phc, true),
                None => (inner.dummy_hash.clone(), false),
            };
            let Ok(parsed) = PasswordHash::new(&phc) else { return false };
            let matches = inner.argon2.verify_password(candidate.as_bytes(), &parsed).is_ok();
            matches && known
        })
        .await;
        result.unwrap_or(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::PasswordPolicy;

    fn cheap() -> PasswordHasher {
        PasswordHasher::new(Argon2Settings { memory_kib: 64, iterations: 1, parallelism: 1 }).unwrap()
    }

    #[tokio::test]
    async fn a_hash_verifies_its_password_and_nothing_else() {
        let hasher = cheap();
        let password = Password::new("correct horse".into(), PasswordPolicy::default()).unwrap();
        let phc = hasher.hash(&password).await.unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=64,t=1,p=1$"));
        assert!(hasher.verify("correct horse".into(), Some(phc.clone())).await);
        assert!(!hasher.verify("correct horsf".into(), Some(phc)).await);
    }

    #[tokio::test]
    async fn the_dummy_hash_is_a_real_argon2_hash_that_never_matches() {
        let hasher = cheap();
        assert!(PasswordHash::new(&hasher.inner.dummy_hash).is_ok());
        assert!(!hasher.verify(String::new(), None).await);
    }
}
