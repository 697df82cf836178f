use std::sync::Arc;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{RepoError, from_item, to_item};
use crate::domain::UserId;
use crate::store::{Condition, ItemStore, Key, StoreError, Write};

/// One login: the family of every refresh token rotated from it, and the `sid` its access
/// tokens carry. Deleting it ends the login everywhere.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Session {
    pub sid: Uuid,
    pub user_id: UserId,
    /// Hash of the one refresh token of this family that may still be used.
    pub refresh_hash: String,
    pub created_at: i64,
    pub expires_at: i64,
    /// The store's expiry attribute: the same instant as `expires_at`.
    pub ttl: i64,
    /// The account's session epoch when this login began; a different one voids the session.
    #[serde(default)]
    pub epoch: u64,
}

/// Every refresh token ever issued, current or rotated, points back to its family, so that
/// presenting a rotated one can be recognised as reuse.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RefreshRecord {
    pub sid: Uuid,
    pub user_id: UserId,
    pub expires_at: i64,
    pub ttl: i64,
}

#[derive(Clone)]
pub struct SessionRepo {
    store: Arc<dyn ItemStore>,
}

fn session_key(user_id: UserId, sid: Uuid) -> Key {
    Key::new(format!("USER#{user_id}"), format!("SESSION#{sid}"))
}

fn refresh_key(hash: &str) -> Key {
    Key::new(format!("REFRESH#{hash}"), "REFRESH")
}

impl SessionRepo {
    pub fn new(store: Arc<dyn ItemStore>) -> Self {
        Self { store }
    }

    fn refresh_write(session: &Session) -> Result<Write, StoreError> {
        let record = RefreshRecord {
            sid: session.sid,
            user_id: session.user_id,
            expires_at: session.expires_at,
            ttl: session.ttl,
        };
        Ok(Write::put(to_item(refresh_key(&session.refresh_hash), &record)?, Condition::NotExists))
    }

    pub async fn create(&self, session: &Session) -> Result<(), RepoError> {
        let writes = vec![
            Write::put(to_item(session_key(session.user_id, session.sid), session)?, Condition::NotExists),
            Self::refresh_write(session)?,
        ];
        Ok(self.store.write(writes).await?)
    }

    pub async fn get(&self, user_id: UserId, sid: Uuid) -> Result<Option<Session>, RepoError> {
        Ok(self.store.get(&session_key(user_id, sid)).await?.map(from_item).transpose()?)
    }

    pub async fn find_refresh(&self, hash: &str) -> Result<Option<RefreshRecord>, RepoError> {
        Ok(self.store.get(&refresh_key(hash)).await?.map(from_item).transpose()?)
    }

    /// Replaces the family's current refresh token, only if it is still `previous_hash`:
    /// of two concurrent rotations of one token, exactly one succeeds.
    pub async fn rotate(&self, rotated: &Session, previous_hash: &str) -> Result<(), RepoError> {
        let writes = vec![
            Write::put(
                to_item(session_key(rotated.user_id, rotated.sid), rotated)?,
                Condition::equals("refresh_hash", previous_hash),
            ),
            Self::refresh_write(rotated)?,
        ];
        match self.store.write(writes).await {
            Err(StoreError::ConditionFailed { .. }) => Err(RepoError::Conflict),
            other => Ok(other?),
        }
    }

    /// Moves a session into a new session epoch (the one that survives a password change).
    pub async fn restamp(&self, user_id: UserId, sid: Uuid, epoch: u64) -> Result<(), RepoError> {
        let Some(session) = self.get(user_id, sid).await? else { return Ok(()) };
        let condition = Condition::equals("refresh_hash", session.refresh_hash.clone());
        let write = Write::put(to_item(session_key(user_id, sid), &Session { epoch, ..session })?, condition);
        match self.store.write(vec![write]).await {
            // Rotated or ended meanwhile: the rotation carried the old epoch, so it is void anyway.
            Err(StoreError::ConditionFailed { .. }) => Ok(()),
            other => Ok(other?),
        }
    }

    pub async fn delete(&self, user_id: UserId, sid: Uuid) -> Result<(), RepoError> {
        Ok(self.store.write(vec![Write::delete(session_key(user_id, sid), Condition::Always)]).await?)
    }

    /// Whether the user has a login of the current session `epoch` that has not ended or expired.
    pub async fn has_live_session(&self, user_id: UserId, epoch: u64, now: i64) -> Result<bool, RepoError> {
        let sessions = self.store.query(&format!("USER#{user_id}"), "SESSION#").await?;
        let sessions = sessions.into_iter().map(from_item::<Session>).collect::<Result<Vec<_>, _>>()?;
        Ok(sessions.iter().any(|session| session.expires_at > now && session.epoch == epoch))
    }

    /// Ends every login of the user but `keep`; answers how many were ended.
    pub async fn delete_all(&self, user_id: UserId, keep: Option<Uuid>) -> Result<usize, RepoError> {
        let kept = keep.map(|sid| session_key(user_id, sid));
        let sessions = self.store.query(&format!("USER#{user_id}"), "SESSION#").await?;
        // One transaction holds at most 100 writes.
        let writes: Vec<Write> = sessions
            .into_iter()
            .filter(|item| Some(&item.key) != kept.as_ref())
            .map(|item| Write::delete(item.key, Condition::Always))
            .collect();
        let count = writes.len();
        for chunk in writes.chunks(100) {
            self.store.write(chunk.to_vec()).await?;
        }
        Ok(count)
    }
}
