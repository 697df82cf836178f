//! A small item store: the one storage contract that both backends implement.
//!
//! Everything Latchkey persists is an item addressed by a partition key and a sort key,
//! carrying a JSON object of attributes. The repositories (`crate::repo`) are written once
//! on top of this trait; DynamoDB and the embedded redb store are its two implementations,
//! held to the same contract tests.

#[cfg(feature = "aws")]
pub mod dynamodb;
#[cfg(feature = "embedded")]
pub mod embedded;

use async_trait::async_trait;
use serde_json::{Map, Value};

/// The attribute that both backends treat as the item's expiry (epoch seconds).
/// DynamoDB deletes expired items lazily (within days), so readers must still check it.
pub const TTL_ATTRIBUTE: &str = "ttl";

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Key {
    pub pk: String,
    pub sk: String,
}

impl Key {
    pub fn new(pk: impl Into<String>, sk: impl Into<String>) -> Self {
        Self { pk: pk.into(), sk: sk.into() }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Item {
    pub key: Key,
    pub attributes: Map<String, Value>,
}

/// A precondition on the item a write touches, checked atomically with the write.
#[derive(Debug, Clone, PartialEq)]
pub enum Condition {
    Always,
    /// No item with this key exists: how uniqueness is enforced.
    NotExists,
    /// The item exists and each attribute holds exactly its value: compare-and-swap. A
    /// `null` value means the attribute is absent (as in records written before it existed).
    Equals(Vec<(&'static str, Value)>),
}

impl Condition {
    /// The item exists and `attribute` holds exactly `value`.
    pub fn equals(attribute: &'static str, value: impl Into<Value>) -> Self {
        Self::Equals(vec![(attribute, value.into())])
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Write {
    Put {
        item: Item,
        condition: Condition,
    },
    Delete {
        key: Key,
        condition: Condition,
    },
    /// Writes nothing: only its condition must hold for the others to be applied.
    Check {
        key: Key,
        condition: Condition,
    },
}

impl Write {
    pub fn put(item: Item, condition: Condition) -> Self {
        Self::Put { item, condition }
    }

    pub fn delete(key: Key, condition: Condition) -> Self {
        Self::Delete { key, condition }
    }

    pub fn check(key: Key, condition: Condition) -> Self {
        Self::Check { key, condition }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A condition of the write did not hold; nothing was written.
    #[error("the condition of write {write} did not hold")]
    ConditionFailed {
        /// The position, in the list given to `write`, of the write whose condition failed.
        write: usize,
    },
    /// The backend could not be reached or refused the request; nothing is known to be written.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// An item could not be (de)serialised: a bug or a hand-edited table.
    #[error("malformed item: {0}")]
    Malformed(String),
}

/// Which slice of a partition `query_page` reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    pub limit: usize,
    /// Descending sort-key order: with time-sortable sort keys, the newest first.
    pub descending: bool,
    /// Exclusive: the page starts after this sort key.
    pub after: Option<String>,
}

#[async_trait]
pub trait ItemStore: Send + Sync + 'static {
    /// A strongly consistent read of one item.
    async fn get(&self, key: &Key) -> Result<Option<Item>, StoreError>;

    /// Applies every write or none. Fails with `ConditionFailed` when any condition is false.
    /// At most 100 writes, each to a different key (DynamoDB's transaction limits).
    async fn write(&self, writes: Vec<Write>) -> Result<(), StoreError>;

    /// Every item of partition `pk` whose sort key starts with `sk_prefix`, in sort-key order.
    async fn query(&self, pk: &str, sk_prefix: &str) -> Result<Vec<Item>, StoreError>;

    /// One page of `query`: at most `page.limit` items, in sort-key order or (newest first)
    /// its reverse, starting after the sort key `page.after` (the last one of the previous page).
    async fn query_page(&self, pk: &str, sk_prefix: &str, page: &Page) -> Result<Vec<Item>, StoreError>;

    /// Unconditional bulk puts, for seeding and migrations: cheaper than `write`, but not
    /// atomic as a whole (on DynamoDB, BatchWriteItem in batches of 25).
    async fn import(&self, items: Vec<Item>) -> Result<(), StoreError>;
}

/// Whether `condition` holds for the item currently stored (`None` when absent).
/// The embedded store evaluates conditions with this; DynamoDB evaluates its own expressions.
pub fn condition_holds(condition: &Condition, current: Option<&Map<String, Value>>) -> bool {
    match condition {
        Condition::Always => true,
        Condition::NotExists => current.is_none(),
        Condition::Equals(expected) => current.is_some_and(|attributes| {
            expected.iter().all(|(attribute, value)| attributes.get(*attribute).unwrap_or(&Value::Null) == value)
        }),
    }
}
