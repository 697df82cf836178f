use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::{RepoError, from_item, to_item};
use crate::domain::UserId;
use crate::store::{Condition, ItemStore, Key, Write};

/// An avatar upload a user was given a URL for and has not confirmed yet. Found by the hash
/// of its confirmation token, under the user who asked for it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PendingUpload {
    pub hash: String,
    /// Where the client uploads to (under `uploads/`, which a lifecycle rule empties daily).
    pub key: String,
    pub content_type: String,
    pub size: u64,
    pub expires_at: i64,
    pub ttl: i64,
}

#[derive(Clone)]
pub struct UploadRepo {
    store: Arc<dyn ItemStore>,
}

fn upload_key(user_id: UserId, hash: &str) -> Key {
    Key::new(format!("USER#{user_id}"), format!("UPLOAD#{hash}"))
}

impl UploadRepo {
    pub fn new(store: Arc<dyn ItemStore>) -> Self {
        Self { store }
    }

    pub async fn create(&self, user_id: UserId, upload: &PendingUpload) -> Result<(), RepoError> {
        let item = to_item(upload_key(user_id, &upload.hash), upload)?;
        Ok(self.store.write(vec![Write::put(item, Condition::NotExists)]).await?)
    }

    /// The user's uploads that have not expired yet.
    pub async fn pending(&self, user_id: UserId, now: i64) -> Result<Vec<PendingUpload>, RepoError> {
        let items = self.store.query(&format!("USER#{user_id}"), "UPLOAD#").await?;
        let uploads = items.into_iter().map(from_item::<PendingUpload>).collect::<Result<Vec<_>, _>>()?;
        Ok(uploads.into_iter().filter(|upload| upload.expires_at > now).collect())
    }

    pub async fn get(&self, user_id: UserId, hash: &str) -> Result<Option<PendingUpload>, RepoError> {
        Ok(self.store.get(&upload_key(user_id, hash)).await?.map(from_item).transpose()?)
    }

    /// The write that spends the upload's token (single use, with the change it confirms).
    pub fn consume(user_id: UserId, hash: &str) -> Write {
        Write::delete(upload_key(user_id, hash), Condition::equals("hash", hash))
    }
}
