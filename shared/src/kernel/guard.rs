//! The guard against guessing: per-address and per-account failure counters (the throttle),
//! and uniform response times for requests that must not tell whether an account exists.

use std::sync::Arc;
use std::time::Duration;

use super::failure::Failure;
use super::throttle::{Subject, Throttle, ThrottleError};
use super::{Origin, now};
use crate::config::Config;
use crate::domain::UserId;
use crate::repo::CounterRepo;
use crate::store::ItemStore;

pub struct Guard {
    throttle: Throttle,
    uniform_response: Duration,
}

impl Guard {
    pub fn new(config: &Config, store: &Arc<dyn ItemStore>) -> Self {
        Self {
            throttle: Throttle::new(CounterRepo::new(Arc::clone(store)), config.lockout),
            uniform_response: Duration::from_millis(config.uniform_response_ms),
        }
    }

    /// The counters themselves, for flows with their own lock handling (login, unlock links).
    pub fn throttle(&self) -> &Throttle {
        &self.throttle
    }

    /// Refuses the request when the client address is locked out; counts nothing.
    pub async fn check_address(&self, origin: &Origin) -> Result<(), Failure> {
        match origin.ip {
            Some(ip) => Ok(self.throttle.check(&Subject::Address(ip), now().unix_timestamp()).await?),
            None => Ok(()),
        }
    }

    /// Refuses the attempt when the client address or the subject is locked out, and counts
    /// it against the subject until `clear` records its success.
    pub async fn reserve(&self, subject: &Subject, origin: &Origin) -> Result<(), Failure> {
        let now = now().unix_timestamp();
        self.check_address(origin).await?;
        Ok(self.throttle.reserve(subject, now).await?)
    }

    /// Counts a failed attempt against the client address and hands back `error`.
    pub async fn failed<E: From<Failure>>(&self, origin: &Origin, error: E) -> E {
        let Some(ip) = origin.ip else { return error };
        match self.throttle.record_failure(&Subject::Address(ip), now().unix_timestamp()).await {
            Ok(()) => error,
            // Many failures at once from one address: some go uncounted, the answer stays.
            Err(ThrottleError::Contended) => {
                tracing::warn!("a failure of a client address was not counted: its counter is contended");
                error
            }
            Err(counting) => Failure::from(counting).into(),
        }
    }

    /// Forgets the failures of a subject after a success. The success already happened, so a
    /// store hiccup here is logged rather than turned into an error.
    pub async fn clear(&self, subject: &Subject) {
        if let Err(error) = self.throttle.clear(subject).await {
            tracing::warn!(%error, "a failure counter could not be cleared");
        }
    }

    /// Clears the account's failure count after a guarded operation succeeded.
    pub async fn succeeded(&self, user: UserId) {
        self.clear(&Subject::Account(user)).await
    }

    /// Runs `work`, then waits out the rest of the configured uniform response time, so that a
    /// request about an existing account (which sends mail) takes as long as one about nobody.
    pub async fn uniformly<T>(&self, work: impl Future<Output = T>) -> T {
        let deadline = tokio::time::Instant::now() + self.uniform_response;
        let result = work.await;
        if tokio::time::Instant::now() > deadline {
            // Past the budget, the time taken may tell whether the account exists.
            tracing::warn!(
                budget_ms = self.uniform_response.as_millis() as u64,
                "a uniform-time request overran its budget; raise the uniform response time"
            );
        }
        tokio::time::sleep_until(deadline).await;
        result
    }
}
