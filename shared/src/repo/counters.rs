use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::{RepoError, from_item, to_item};
use crate::store::{Condition, ItemStore, Key, StoreError, Write};

/// Failed attempts of one subject (an account, a login name or an address) in the current window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailureCounter {
    pub failures: u32,
    pub window_started_at: i64,
    /// No attempt is allowed before this instant (0 when not locked).
    pub locked_until: i64,
    pub ttl: i64,
}

#[derive(Clone)]
pub struct CounterRepo {
    store: Arc<dyn ItemStore>,
}

fn counter_key(subject: &str) -> Key {
    Key::new(format!("THROTTLE#{subject}"), "COUNTER")
}

impl CounterRepo {
    pub fn new(store: Arc<dyn ItemStore>) -> Self {
        Self { store }
    }

    pub async fn get(&self, subject: &str) -> Result<Option<FailureCounter>, RepoError> {
        Ok(self.store.get(&counter_key(subject)).await?.map(from_item).transpose()?)
    }

    /// Writes `next` only if the stored counter is still `seen` (absent when `None`).
    pub async fn swap(
        &self,
        subject: &str,
        seen: Option<&FailureCounter>,
        next: &FailureCounter,
    ) -> Result<(), RepoError> {
        let condition = match seen {
            None => Condition::NotExists,
            Some(seen) => Condition::equals("failures", seen.failures),
        };
        let write = Write::put(to_item(counter_key(subject), next)?, condition);
        match self.store.write(vec![write]).await {
            Err(StoreError::ConditionFailed { .. }) => Err(RepoError::Conflict),
            other => Ok(other?),
        }
    }

    pub async fn delete(&self, subject: &str) -> Result<(), RepoError> {
        Ok(self.store.write(vec![Write::delete(counter_key(subject), Condition::Always)]).await?)
    }
}
