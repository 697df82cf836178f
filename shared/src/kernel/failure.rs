//! What can go wrong in any slice, whatever it does: the store, a lost race, a lockout, the
//! caller's account ending mid-request. Each slice's error wraps this.

use crate::crypto::keys::KeyError;
use crate::crypto::passwords::HashError;
use crate::objects::ObjectError;
use crate::repo::{RepoError, UniqueField};
use crate::store::StoreError;

use super::throttle::ThrottleError;

#[derive(Debug, thiserror::Error)]
pub enum Failure {
    #[error("too many failed attempts; retry in {retry_after_seconds} seconds")]
    Throttled { retry_after_seconds: i64 },
    /// The caller's access token, or the account or session behind it, is no longer good.
    #[error("the access token is invalid, expired or revoked")]
    SignedOut,
    #[error("the account changed while this request ran; retry")]
    Aborted,
    #[error("storage unavailable: {0}")]
    Unavailable(String),
    #[error("internal error: {0}")]
    Internal(String),
}

/// A unique value taken where the slice writes none is a bug, not a user error: such slices
/// match `RepoError::Taken` themselves where it can happen.
impl From<RepoError> for Failure {
    fn from(error: RepoError) -> Self {
        match error {
            RepoError::Conflict => Self::Aborted,
            RepoError::Store(StoreError::Unavailable(detail)) => Self::Unavailable(detail),
            other => Self::Internal(other.to_string()),
        }
    }
}

impl From<ThrottleError> for Failure {
    fn from(error: ThrottleError) -> Self {
        match error {
            ThrottleError::Locked(locked) => Self::Throttled { retry_after_seconds: locked.retry_after_seconds },
            ThrottleError::Contended => Self::Throttled { retry_after_seconds: 1 },
            ThrottleError::Repo(error) => error.into(),
        }
    }
}

impl From<HashError> for Failure {
    fn from(error: HashError) -> Self {
        Self::Internal(error.to_string())
    }
}

impl From<KeyError> for Failure {
    fn from(error: KeyError) -> Self {
        Self::Internal(error.to_string())
    }
}

impl From<ObjectError> for Failure {
    fn from(error: ObjectError) -> Self {
        Self::Unavailable(error.to_string())
    }
}

/// A store error as a slice that writes unique values reports it: a taken value is the
/// slice's own `taken(field)` (a `409` naming the field), anything else a `Failure`.
pub fn taken_or_failure<E: From<Failure>>(error: RepoError, taken: fn(UniqueField) -> E) -> E {
    match error {
        RepoError::Taken(field) => taken(field),
        other => Failure::from(other).into(),
    }
}

/// The outcome of one compare-and-swap attempt for `retry_on_conflict`: lost (`None`) when a
/// concurrent writer changed what it read.
pub fn settled<T, E: From<RepoError>>(result: Result<T, RepoError>) -> Result<Option<T>, E> {
    match result {
        Ok(value) => Ok(Some(value)),
        Err(RepoError::Conflict) => Ok(None),
        Err(error) => Err(error.into()),
    }
}

/// How often a change is re-applied on a fresh read after losing a compare-and-swap.
const CONFLICT_ATTEMPTS: usize = 5;

/// Runs `attempt` (told which try it is, from 0) until it is done (`Some`) or fails; `None`
/// means it lost a compare-and-swap to a concurrent change and runs again on a fresh read.
/// Past `CONFLICT_ATTEMPTS` the request ends with `Aborted` (the client may retry).
pub async fn retry_on_conflict<T, E, F, Attempt>(mut attempt: F) -> Result<T, E>
where
    E: From<Failure>,
    F: FnMut(usize) -> Attempt,
    Attempt: Future<Output = Result<Option<T>, E>>,
{
    for number in 0..CONFLICT_ATTEMPTS {
        if let Some(done) = attempt(number).await? {
            return Ok(done);
        }
    }
    Err(Failure::Aborted.into())
}
