//! Brute-force protection: failures are counted per account and per client address, in the
//! store, with compare-and-swap updates so concurrent attempts are each counted.
//!
//! An account attempt is counted *before* its secret is checked (and the count cleared on
//! success): otherwise a burst of parallel guesses would all pass the check at count zero.

use std::net::IpAddr;

use crate::config::LockoutPolicy;
use crate::domain::UserId;
use crate::repo::{CounterRepo, FailureCounter, RepoError};

const WINDOW_SECONDS: i64 = 3600;
const MAX_DELAY_SECONDS: i64 = 15 * 60;
/// A compare-and-swap that keeps losing means heavy contention on one counter; an attempt
/// to reserve is then refused rather than let through uncounted.
const SWAP_ATTEMPTS: usize = 16;

/// Who a failure is counted against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Subject {
    Account(UserId),
    /// A login name as typed (the hash of its canonical form), whether or not it names an
    /// account: its lock is the one a login shows.
    LoginName(String),
    /// A login name that matches no account: counted like an account, so that lockout
    /// behaves the same whether or not the account exists.
    UnknownLogin(String),
    Address(IpAddr),
    /// Phone numbers an account tried to take: every try counts, taken or not, so nobody can
    /// find whose a number is at speed. Apart from the account's own counter, so trying
    /// numbers never locks sign-in.
    PhoneTries(UserId),
}

impl Subject {
    fn key(&self) -> String {
        match self {
            Self::Account(id) => format!("ACCOUNT#{id}"),
            Self::LoginName(hash) => format!("NAME#{hash}"),
            Self::PhoneTries(id) => format!("PHONE_TRIES#{id}"),
            Self::UnknownLogin(hash) => format!("LOGIN#{hash}"),
            // An IPv4 client of a dual-stack listener arrives as ::ffff:a.b.c.d.
            Self::Address(address) => Self::address_key(address.to_canonical()),
        }
    }

    fn address_key(address: IpAddr) -> String {
        match address {
            IpAddr::V4(address) => format!("IP#{address}"),
            // One IPv6 host usually holds a whole /64; counting addresses would count nothing.
            IpAddr::V6(address) => {
                let segments = address.segments();
                format!("IP#{:x}:{:x}:{:x}:{:x}::/64", segments[0], segments[1], segments[2], segments[3])
            }
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Limits {
    free_failures: u32,
    max_per_window: u32,
}

/// Why an attempt may not be made now, and for how long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Locked {
    pub retry_after_seconds: i64,
}

#[derive(Debug, thiserror::Error)]
pub enum ThrottleError {
    #[error("too many failed attempts")]
    Locked(Locked),
    /// The counter kept changing under this update (many attempts at once on one subject).
    #[error("the failure counter is contended")]
    Contended,
    #[error(transparent)]
    Repo(#[from] RepoError),
}

pub struct Throttle {
    counters: CounterRepo,
    policy: LockoutPolicy,
}

/// The counter as it stands at `now`: an expired window counts as no failures.
fn current(counter: Option<FailureCounter>, now: i64) -> Option<FailureCounter> {
    counter.filter(|counter| now < counter.window_started_at + WINDOW_SECONDS)
}

fn lock_of(counter: &FailureCounter, limits: Limits, now: i64) -> Option<Locked> {
    let until = if counter.failures >= limits.max_per_window {
        counter.window_started_at + WINDOW_SECONDS
    } else {
        counter.locked_until
    };
    (until > now).then(|| Locked { retry_after_seconds: until - now })
}

/// The counter after one more failure at `now`.
fn bumped(counter: Option<FailureCounter>, limits: Limits, now: i64) -> FailureCounter {
    let (failures, window_started_at) = match counter {
        Some(counter) => (counter.failures + 1, counter.window_started_at),
        None => (1, now),
    };
    let locked_until = match failures.checked_sub(limits.free_failures + 1) {
        None => 0,
        Some(beyond) => now + (1i64 << beyond.min(20)).min(MAX_DELAY_SECONDS),
    };
    FailureCounter { failures, window_started_at, locked_until, ttl: window_started_at + WINDOW_SECONDS }
}

impl Throttle {
    pub fn new(counters: CounterRepo, policy: LockoutPolicy) -> Self {
        Self { counters, policy }
    }

    fn limits(&self, subject: &Subject) -> Limits {
        match subject {
            Subject::Address(_) => Limits {
                free_failures: self.policy.ip_free_failures,
                max_per_window: self.policy.ip_max_failures_per_hour,
            },
            _ => Limits {
                free_failures: self.policy.account_free_failures,
                max_per_window: self.policy.account_max_failures_per_hour,
            },
        }
    }

    /// Refuses when `subject` is locked out; reads only.
    pub async fn check(&self, subject: &Subject, now: i64) -> Result<(), ThrottleError> {
        let counter = current(self.counters.get(&subject.key()).await?, now);
        match counter.and_then(|counter| lock_of(&counter, self.limits(subject), now)) {
            Some(locked) => Err(ThrottleError::Locked(locked)),
            None => Ok(()),
        }
    }

    /// Refuses when `subject` is locked out; otherwise counts this attempt as a failure until
    /// `clear` says it succeeded.
    pub async fn reserve(&self, subject: &Subject, now: i64) -> Result<(), ThrottleError> {
        match self.bump(subject, now, true).await {
            // An attempt that cannot be counted is not made.
            Err(ThrottleError::Contended) => Err(ThrottleError::Locked(Locked { retry_after_seconds: 1 })),
            other => other,
        }
    }

    /// Counts a failure (of an attempt that was allowed by `check`).
    pub async fn record_failure(&self, subject: &Subject, now: i64) -> Result<(), ThrottleError> {
        self.bump(subject, now, false).await
    }

    /// Forgets the subject's failures: a success resets the account counter.
    pub async fn clear(&self, subject: &Subject) -> Result<(), ThrottleError> {
        Ok(self.counters.delete(&subject.key()).await?)
    }

    async fn bump(&self, subject: &Subject, now: i64, enforce: bool) -> Result<(), ThrottleError> {
        let (key, limits) = (subject.key(), self.limits(subject));
        for _ in 0..SWAP_ATTEMPTS {
            let stored = self.counters.get(&key).await?;
            let counter = current(stored, now);
            if enforce && let Some(locked) = counter.as_ref().and_then(|counter| lock_of(counter, limits, now)) {
                // Written back unchanged: a refused attempt costs the read and the write a counted
                // one does, so the time taken does not tell a locked account (an account's lock
                // is enforced silently) from a name of nobody.
                if let Some(seen) = &stored {
                    let _ = self.counters.swap(&key, Some(seen), seen).await;
                }
                return Err(ThrottleError::Locked(locked));
            }
            match self.counters.swap(&key, stored.as_ref(), &bumped(counter, limits, now)).await {
                Err(RepoError::Conflict) => continue,
                other => return Ok(other?),
            }
        }
        Err(ThrottleError::Contended)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: Limits = Limits { free_failures: 5, max_per_window: 100 };

    fn after(failures: u32, now: i64) -> Option<FailureCounter> {
        (0..failures).fold(None, |counter, _| Some(bumped(counter, LIMITS, now)))
    }

    #[test]
    fn five_failures_are_free_then_the_delay_doubles_up_to_fifteen_minutes() {
        let now = 1_000_000;
        assert_eq!(after(5, now).unwrap().locked_until, 0);
        let delays: Vec<i64> = (6..=16).map(|n| after(n, now).unwrap().locked_until - now).collect();
        assert_eq!(delays, vec![1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 900]);
    }

    #[test]
    fn the_hourly_cap_locks_until_the_window_ends_and_an_old_window_is_forgotten() {
        let start = 1_000_000;
        let capped = FailureCounter { failures: 100, window_started_at: start, locked_until: 0, ttl: 0 };
        assert_eq!(lock_of(&capped, LIMITS, start + 600), Some(Locked { retry_after_seconds: 3000 }));
        assert_eq!(current(Some(capped), start + WINDOW_SECONDS), None);
    }

    #[test]
    fn ipv6_clients_are_counted_per_64_bit_prefix() {
        let a = Subject::Address("2001:db8:1:2:aaaa::1".parse().unwrap());
        let b = Subject::Address("2001:db8:1:2:bbbb::2".parse().unwrap());
        assert_eq!(a.key(), b.key());
        assert_ne!(a.key(), Subject::Address("2001:db8:1:3::1".parse().unwrap()).key());
        let mapped = Subject::Address("::ffff:203.0.113.7".parse().unwrap());
        assert_eq!(mapped.key(), Subject::Address("203.0.113.7".parse().unwrap()).key());
    }
}
