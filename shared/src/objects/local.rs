//! The local object adapter: files under a directory, uploaded and downloaded through URLs
//! that the local server serves and checks like S3 checks presigned ones: an HMAC over the
//! method, key, expiry and (for uploads) content type and length, keyed from the key material.

use std::path::{Path, PathBuf};
use std::time::Duration;

use async_trait::async_trait;
use serde::Deserialize;
use time::OffsetDateTime;

use super::{ObjectError, ObjectStore, UploadTicket};
use crate::crypto::sealing::KeyedMac;

pub struct LocalObjects {
    root: PathBuf,
    /// Where the local server is reached, e.g. `http://127.0.0.1:3000`.
    base_url: String,
    mac: KeyedMac,
}

/// The query of a signed URL.
#[derive(Debug, Deserialize)]
pub struct SignedQuery {
    expires: i64,
    signature: String,
    content_type: Option<String>,
    content_length: Option<u64>,
}

/// Why a signed URL was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum UrlError {
    #[error("{0}")]
    Refused(&'static str),
    #[error("no such object")]
    NotFound,
    #[error("the object could not be stored or read: {0}")]
    Io(String),
}

fn io(error: std::io::Error) -> ObjectError {
    ObjectError::Unavailable(error.to_string())
}

fn now() -> i64 {
    OffsetDateTime::now_utc().unix_timestamp()
}

/// The part of a URL that a signature covers.
fn signed_text(method: &str, key: &str, expires: i64, content_type: &str, length: Option<u64>) -> String {
    format!("{method}\n{key}\n{expires}\n{content_type}\n{}", length.map_or(String::new(), |n| n.to_string()))
}

impl LocalObjects {
    pub fn new(root: &Path, base_url: impl Into<String>, mac: KeyedMac) -> std::io::Result<Self> {
        crate::private_files::create_dir(root)?;
        Ok(Self { root: root.to_owned(), base_url: base_url.into().trim_end_matches('/').to_owned(), mac })
    }

    /// The file of `key`, for keys made of plain segments only (no `..`, no absolute paths).
    fn path(&self, key: &str) -> Option<PathBuf> {
        let plain = |segment: &str| {
            !segment.is_empty()
                && segment != "."
                && segment != ".."
                && segment.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        };
        key.split('/').all(plain).then(|| self.root.join(key))
    }

    fn url(&self, key: &str, expires: i64, signature: &str, upload: Option<(&str, u64)>) -> String {
        let mut url = format!("{}/v1/objects/{key}?expires={expires}&signature={signature}", self.base_url);
        if let Some((content_type, length)) = upload {
            url.push_str(&format!("&content_type={content_type}&content_length={length}"));
        }
        url
    }

    fn check(&self, method: &str, key: &str, query: &SignedQuery, length: Option<u64>) -> Result<PathBuf, UrlError> {
        let content_type = query.content_type.as_deref().unwrap_or("");
        let text = signed_text(method, key, query.expires, content_type, length);
        if !self.mac.verify(&text, "object-url", &query.signature) {
            return Err(UrlError::Refused("the signature does not match the request"));
        }
        if query.expires <= now() {
            return Err(UrlError::Refused("the URL has expired"));
        }
        self.path(key).ok_or(UrlError::NotFound)
    }

    /// Stores an upload made to a signed URL: the signature, expiry, content type and length
    /// must all be what was signed.
    pub async fn accept_upload(
        &self,
        key: &str,
        query: &SignedQuery,
        content_type: Option<&str>,
        body: &[u8],
    ) -> Result<(), UrlError> {
        let path = self.check("PUT", key, query, query.content_length)?;
        if content_type != query.content_type.as_deref() {
            return Err(UrlError::Refused("the Content-Type is not the signed one"));
        }
        if Some(body.len() as u64) != query.content_length {
            return Err(UrlError::Refused("the body length is not the signed Content-Length"));
        }
        write_file(&path, body).await.map_err(|error| UrlError::Io(error.to_string()))
    }

    /// Reads an object through a signed download URL.
    pub async fn open_download(&self, key: &str, query: &SignedQuery) -> Result<Vec<u8>, UrlError> {
        let path = self.check("GET", key, query, None)?;
        match tokio::fs::read(&path).await {
            Ok(bytes) => Ok(bytes),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Err(UrlError::NotFound),
            Err(error) => Err(UrlError::Io(error.to_string())),
        }
    }

    fn existing(&self, key: &str) -> Result<PathBuf, ObjectError> {
        self.path(key).ok_or_else(|| ObjectError::Unavailable(format!("{key:?} is not a valid object key")))
    }
}

/// Written `0600` under a temporary name, then renamed: a reader never sees half an object.
async fn write_file(path: &Path, body: &[u8]) -> std::io::Result<()> {
    if let Some(parent) = path.parent() {
        crate::private_files::create_dir(parent)?;
    }
    crate::private_files::write_atomically(path, body).await
}

#[async_trait]
impl ObjectStore for LocalObjects {
    async fn presign_upload(
        &self,
        key: &str,
        content_type: &str,
        length: u64,
        expires_in: Duration,
    ) -> Result<UploadTicket, ObjectError> {
        self.existing(key)?;
        let expires = now() + expires_in.as_secs() as i64;
        let signature = self.mac.mac(&signed_text("PUT", key, expires, content_type, Some(length)), "object-url");
        let headers = vec![
            ("content-type".to_owned(), content_type.to_owned()),
            ("content-length".to_owned(), length.to_string()),
        ];
        Ok(UploadTicket {
            url: self.url(key, expires, &signature, Some((content_type, length))),
            method: "PUT",
            headers,
        })
    }

    async fn presign_download(&self, key: &str, expires_in: Duration) -> Result<String, ObjectError> {
        self.existing(key)?;
        let expires = now() + expires_in.as_secs() as i64;
        let signature = self.mac.mac(&signed_text("GET", key, expires, "", None), "object-url");
        Ok(self.url(key, expires, &signature, None))
    }

    async fn size(&self, key: &str) -> Result<Option<u64>, ObjectError> {
        match tokio::fs::metadata(self.existing(key)?).await {
            Ok(metadata) => Ok(Some(metadata.len())),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(error) => Err(io(error)),
        }
    }

    async fn read_start(&self, key: &str, length: u64) -> Result<Vec<u8>, ObjectError> {
        use tokio::io::AsyncReadExt;
        let file = tokio::fs::File::open(self.existing(key)?).await.map_err(io)?;
        let mut start = Vec::new();
        file.take(length).read_to_end(&mut start).await.map_err(io)?;
        Ok(start)
    }

    async fn put(&self, key: &str, _content_type: &str, body: Vec<u8>) -> Result<(), ObjectError> {
        write_file(&self.existing(key)?, &body).await.map_err(io)
    }

    async fn copy(&self, from: &str, to: &str, _content_type: &str) -> Result<bool, ObjectError> {
        let (from, to) = (self.existing(from)?, self.existing(to)?);
        let bytes = match tokio::fs::read(&from).await {
            Ok(bytes) => bytes,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(false),
            Err(error) => return Err(io(error)),
        };
        write_file(&to, &bytes).await.map_err(io)?;
        Ok(true)
    }

    async fn delete(&self, key: &str) -> Result<(), ObjectError> {
        match tokio::fs::remove_file(self.existing(key)?).await {
            Err(error) if error.kind() != std::io::ErrorKind::NotFound => Err(io(error)),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::keys::KeyMaterial;

    fn objects(dir: &Path) -> LocalObjects {
        let material =
            KeyMaterial { kid: "k".into(), seed: "a-seed-that-is-long-enough-0123456789".into(), retired: vec![] };
        LocalObjects::new(dir, "http://127.0.0.1:1", KeyedMac::for_urls(&material)).unwrap()
    }

    fn query(url: &str) -> SignedQuery {
        let uri: axum::http::Uri = url.parse().unwrap();
        axum::extract::Query::<SignedQuery>::try_from_uri(&uri).unwrap().0
    }

    #[tokio::test]
    async fn an_upload_url_works_until_it_expires() {
        let dir = tempfile::tempdir().unwrap();
        let objects = objects(dir.path());
        let live = objects.presign_upload("uploads/u/a.png", "image/png", 3, Duration::from_secs(60)).await.unwrap();
        let path = "uploads/u/a.png";
        assert_eq!(objects.accept_upload(path, &query(&live.url), Some("image/png"), b"abc").await, Ok(()));
        assert_eq!(objects.size(path).await.unwrap(), Some(3));
        let expired = objects.presign_upload(path, "image/png", 3, Duration::ZERO).await.unwrap();
        let refused = objects.accept_upload(path, &query(&expired.url), Some("image/png"), b"abc").await;
        assert_eq!(refused, Err(UrlError::Refused("the URL has expired")));
    }

    #[tokio::test]
    async fn keys_that_could_leave_the_directory_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let objects = objects(dir.path());
        for key in ["../escape.png", "/etc/passwd", "a//b", "uploads/./x", "up loads/x"] {
            assert!(objects.presign_upload(key, "image/png", 3, Duration::from_secs(60)).await.is_err(), "{key}");
        }
    }
}
