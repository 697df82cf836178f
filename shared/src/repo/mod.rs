//! Repositories: typed records on top of the item store, written once for both backends.
//!
//! Table layout (one table, `pk` + `sk`):
//!
//! | item              | pk                   | sk                 |
//! |-------------------|----------------------|--------------------|
//! | user              | `USER#<id>`          | `PROFILE`          |
//! | session (family)  | `USER#<id>`          | `SESSION#<sid>`    |
//! | refresh token     | `REFRESH#<sha256>`   | `REFRESH`          |
//! | unique email      | `EMAIL#<email>`      | `UNIQUE`           |
//! | unique username   | `USERNAME#<lower>`   | `UNIQUE`           |
//! | unique phone      | `PHONE#<e164>`       | `UNIQUE`           |
//! | one-time secret   | `USER#<id>`          | `SECRET#<purpose>` |
//! | recovery code     | `USER#<id>`          | `RECOVERY#<sha256>`|
//! | failure counter   | `THROTTLE#<subject>` | `COUNTER`          |

mod counters;
mod secrets;
mod sessions;
mod users;

pub use counters::{CounterRepo, FailureCounter};
pub use secrets::{OneTimeSecret, OneTimeSecretRepo, Purpose, RecoveryCodeRepo};
pub use sessions::{RefreshRecord, Session, SessionRepo};
pub use users::{SecondFactors, StoredUser, TotpFactor, UniqueField, UserRepo};

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::store::{Item, Key, StoreError};

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
