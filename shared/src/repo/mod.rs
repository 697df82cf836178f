//! Repositories: typed records on top of the item store, written once for both backends.
//!
//! The table layout (one table, `pk` + `sk`, an item kind per record here) is described once,
//! in `docs/architecture.md`.

mod chat;
mod counters;
mod friends;
mod secrets;
mod sessions;
mod sign_ins;
mod uploads;
mod users;

pub use chat::{ActivityEntry, ChatConnection, ChatRepo, ChatTicket, Started};
pub use counters::{CounterRepo, FailureCounter};
pub use friends::{FriendRepo, FriendshipChange};
pub use secrets::{OneTimeSecret, OneTimeSecretRepo, Purpose, RecoveryCodeRepo, UnlockToken, UnlockTokenRepo};
pub use sessions::{RefreshRecord, Session, SessionRepo};
pub use sign_ins::{ExchangeGrant, PendingAuthorization, SignInRepo};
pub use uploads::{PendingUpload, UploadRepo};
pub use users::{DirectoryEntry, PreviousEmail, SecondFactors, StoredUser, TotpFactor, UniqueField, UserRepo};

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::store::{Condition, Item, ItemStore, Key, StoreError, Write};

#[derive(Debug, thiserror::Error)]
pub enum RepoError {
    #[error("{0} is already in use")]
    Taken(UniqueField),
    /// A compare-and-swap lost to a concurrent writer.
    #[error("the record changed concurrently")]
    Conflict,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The write that moves a count item from `seen` to `count`, only if it still holds `seen`
/// (no item counts as 0, and a count of 0 is stored as no item).
fn count_write(key: Key, seen: u64, count: u64) -> Write {
    let condition = match seen {
        0 => Condition::NotExists,
        seen => Condition::equals("count", seen),
    };
    match count {
        0 => Write::delete(key, condition),
        count => Write::put(Item { key, attributes: Map::from_iter([("count".to_owned(), count.into())]) }, condition),
    }
}

async fn read_count(store: &dyn ItemStore, key: &Key) -> Result<u64, RepoError> {
    let item = store.get(key).await?;
    Ok(item.and_then(|item| item.attributes.get("count").and_then(Value::as_u64)).unwrap_or(0))
}

/// Stores a single-use record; `Conflict` if one with its key exists.
async fn put_new<T: Serialize>(store: &dyn ItemStore, key: Key, record: &T) -> Result<(), RepoError> {
    match store.write(vec![Write::put(to_item(key, record)?, Condition::NotExists)]).await {
        Err(StoreError::ConditionFailed { .. }) => Err(RepoError::Conflict),
        other => Ok(other?),
    }
}

/// Spends a single-use record (one with an `expires_at`): reads it and deletes it on the
/// condition that it is still the one read. `None` if it is absent or another request took it.
async fn take<T: DeserializeOwned>(store: &dyn ItemStore, key: Key) -> Result<Option<T>, RepoError> {
    let Some(item) = store.get(&key).await? else { return Ok(None) };
    let Some(expires_at) = item.attributes.get("expires_at").cloned() else { return Ok(None) };
    let record = from_item(item)?;
    match store.write(vec![Write::delete(key, Condition::Equals(vec![("expires_at", expires_at)]))]).await {
        Ok(()) => Ok(Some(record)),
        Err(StoreError::ConditionFailed { .. }) => Ok(None),
        Err(error) => Err(error.into()),
    }
}

fn to_item<T: Serialize>(key: Key, record: &T) -> Result<Item, StoreError> {
    match serde_json::to_value(record) {
        Ok(Value::Object(attributes)) => Ok(Item { key, attributes }),
        Ok(_) => Err(StoreError::Malformed("a record must serialise to an object".into())),
        Err(error) => Err(StoreError::Malformed(error.to_string())),
    }
}

fn from_item<T: DeserializeOwned>(item: Item) -> Result<T, StoreError> {
    serde_json::from_value(Value::Object(item.attributes)).map_err(|error| StoreError::Malformed(error.to_string()))
}
