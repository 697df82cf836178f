use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::json;

use super::{RepoError, count_write, from_item, read_count, to_item};
use crate::domain::UserId;
use crate::store::{Condition, ItemStore, Key, StoreError, Write};

/// Friendship is mutual: one edge item under each of the two users, written and deleted
/// together with both users' friend counts (compare-and-swap), so the cap holds under
/// concurrency and no half-friendship can exist.
#[derive(Clone)]
pub struct FriendRepo {
    store: Arc<dyn ItemStore>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Edge {
    user_id: UserId,
    since: i64,
}

/// Why a friendship could not be added or removed.
#[derive(Debug, PartialEq, Eq)]
pub enum FriendshipChange {
    Done,
    /// Adding: they are friends already. Removing: they are not friends.
    Unchanged,
    /// A count moved meanwhile; read again and retry.
    Raced,
    /// A check given with the change failed: one of the accounts is no longer active.
    Inactive,
}

fn edge_key(owner: UserId, friend: UserId) -> Key {
    Key::new(format!("USER#{owner}"), format!("FRIEND#{friend}"))
}

fn count_key(owner: UserId) -> Key {
    Key::new(format!("USER#{owner}"), "FRIENDS")
}

impl FriendRepo {
    pub fn new(store: Arc<dyn ItemStore>) -> Self {
        Self { store }
    }

    pub async fn count(&self, owner: UserId) -> Result<u64, RepoError> {
        read_count(self.store.as_ref(), &count_key(owner)).await
    }

    /// The ids of `owner`'s friends, in id order.
    pub async fn list(&self, owner: UserId) -> Result<Vec<UserId>, RepoError> {
        let items = self.store.query(&format!("USER#{owner}"), "FRIEND#").await?;
        items.into_iter().map(|item| Ok(from_item::<Edge>(item)?.user_id)).collect()
    }

    /// Makes `a` and `b` friends, given the friend counts as read (`seen`).
    /// `checks` (after the four writes) must hold too.
    pub async fn add(
        &self,
        a: UserId,
        b: UserId,
        seen: (u64, u64),
        now: i64,
        checks: Vec<Write>,
    ) -> Result<FriendshipChange, RepoError> {
        let edge = |owner, friend| to_item(edge_key(owner, friend), &Edge { user_id: friend, since: now });
        let writes = vec![
            Write::put(edge(a, b)?, Condition::NotExists),
            Write::put(edge(b, a)?, Condition::NotExists),
            count_write(count_key(a), seen.0, seen.0 + 1),
            count_write(count_key(b), seen.1, seen.1 + 1),
        ];
        self.apply([writes, checks].concat()).await
    }

    /// Ends the friendship of `a` and `b`, given the friend counts as read (`seen`).
    pub async fn remove(&self, a: UserId, b: UserId, seen: (u64, u64)) -> Result<FriendshipChange, RepoError> {
        let writes = vec![
            Write::delete(edge_key(a, b), Condition::equals("user_id", json!(b))),
            Write::delete(edge_key(b, a), Condition::equals("user_id", json!(a))),
            count_write(count_key(a), seen.0, seen.0.saturating_sub(1)),
            count_write(count_key(b), seen.1, seen.1.saturating_sub(1)),
        ];
        self.apply(writes).await
    }

    async fn apply(&self, writes: Vec<Write>) -> Result<FriendshipChange, RepoError> {
        match self.store.write(writes).await {
            Ok(()) => Ok(FriendshipChange::Done),
            Err(StoreError::ConditionFailed { write: 0 | 1 }) => Ok(FriendshipChange::Unchanged),
            Err(StoreError::ConditionFailed { write: 2 | 3 }) => Ok(FriendshipChange::Raced),
            Err(StoreError::ConditionFailed { .. }) => Ok(FriendshipChange::Inactive),
            Err(error) => Err(error.into()),
        }
    }
}
