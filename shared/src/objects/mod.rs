//! Object storage for avatars: one port, two adapters. On AWS, S3 with presigned URLs; locally,
//! a directory whose signed URLs the local server itself serves, with the same checks.

pub mod local;
#[cfg(feature = "aws")]
pub mod s3;

use std::time::Duration;

use async_trait::async_trait;

/// How a client uploads an object: the URL, the method and the headers it must send as given
/// (they are part of the signature).
#[derive(Debug, Clone, PartialEq)]
pub struct UploadTicket {
    pub url: String,
    pub method: &'static str,
    pub headers: Vec<(String, String)>,
}

#[derive(Debug, thiserror::Error)]
pub enum ObjectError {
    #[error("object storage unavailable: {0}")]
    Unavailable(String),
}

#[async_trait]
pub trait ObjectStore: Send + Sync + 'static {
    /// A URL valid for `expires_in` that accepts one PUT of exactly `length` bytes of
    /// `content_type` to `key`, and nothing else.
    async fn presign_upload(
        &self,
        key: &str,
        content_type: &str,
        length: u64,
        expires_in: Duration,
    ) -> Result<UploadTicket, ObjectError>;

    /// A URL valid for `expires_in` that reads `key`.
    async fn presign_download(&self, key: &str, expires_in: Duration) -> Result<String, ObjectError>;

    /// The size of `key`, or `None` when there is no such object.
    async fn size(&self, key: &str) -> Result<Option<u64>, ObjectError>;

    /// The first `length` bytes of `key` (fewer if it is shorter).
    async fn read_start(&self, key: &str, length: u64) -> Result<Vec<u8>, ObjectError>;

    async fn put(&self, key: &str, content_type: &str, body: Vec<u8>) -> Result<(), ObjectError>;

    /// Copies `from` to `to` (server-side on S3); `false` when `from` does not exist.
    async fn copy(&self, from: &str, to: &str, content_type: &str) -> Result<bool, ObjectError>;

    /// Deletes `key`; deleting a missing object is not an error.
    async fn delete(&self, key: &str) -> Result<(), ObjectError>;
}
