//! Avatars: a presigned upload confirmed by the uploader, a direct upload, presigned views.
//!
//! Uploads land under `uploads/<user>/` (emptied daily by a bucket lifecycle rule, which is
//! what removes uploads nobody confirmed); a confirmed one is checked (size, and that its
//! first bytes are an image of the declared type) and moved to `avatars/<user>/`.

use std::sync::Arc;
use std::time::Duration;

use subtle::ConstantTimeEq;

use crate::crypto::secrets;
use crate::domain::{ImageType, User, UserId, UserStatus};
use crate::kernel::{Failure, Kernel, Principal, caller_record, now, retry_on_conflict, settled};
use crate::objects::{ObjectStore, UploadTicket};
use crate::repo::{PendingUpload, RepoError, StoredUser, UploadRepo, UserRepo};

#[derive(Debug, thiserror::Error)]
pub enum AvatarError {
    #[error("no such upload: the token is unknown, expired or already used")]
    NoSuchUpload,
    #[error("no avatar")]
    NoAvatar,
    /// What was uploaded is not what was declared, or not an allowed image.
    #[error("{0}")]
    InvalidUpload(String),
    #[error(transparent)]
    Failure(#[from] Failure),
}

impl From<RepoError> for AvatarError {
    fn from(error: RepoError) -> Self {
        Self::Failure(error.into())
    }
}

impl From<crate::objects::ObjectError> for AvatarError {
    fn from(error: crate::objects::ObjectError) -> Self {
        Self::Failure(error.into())
    }
}

/// How long upload and view URLs (and the confirmation token) are valid.
pub const URL_LIFETIME: Duration = Duration::from_secs(300);
/// Upload URLs one user may hold at once: each lets up to the size limit into the bucket until
/// the lifecycle rule removes it, so asking for URLs in a loop is refused.
const MAX_PENDING_UPLOADS: usize = 5;
/// Enough of a file to read every allowed format's header and dimensions (a JPEG's size comes
/// after its metadata segments, which cameras fill with tens of kilobytes).
const HEADER_BYTES: u64 = 256 * 1024;

/// What `POST /v1/avatar/upload-url` hands the client.
pub struct AvatarUpload {
    pub ticket: UploadTicket,
    pub token: String,
    pub expires_in: u64,
}

pub struct AvatarService {
    users: UserRepo,
    uploads: UploadRepo,
    /// Absent when no bucket is configured: every avatar route then answers 503.
    objects: Option<Arc<dyn ObjectStore>>,
    max_bytes: u64,
}

impl AvatarService {
    pub fn new(kernel: &Kernel) -> Self {
        Self {
            users: kernel.users(),
            uploads: UploadRepo::new(Arc::clone(&kernel.store)),
            objects: kernel.objects.clone(),
            max_bytes: kernel.config.avatar_max_bytes,
        }
    }

    fn objects(&self) -> Result<&dyn ObjectStore, AvatarError> {
        self.objects.as_deref().ok_or_else(|| Failure::Unavailable("no object store is configured".into()).into())
    }

    /// Step one: a URL that accepts exactly the declared image, and a token to confirm it with.
    pub async fn avatar_upload_url(
        &self,
        principal: &Principal,
        image: ImageType,
        size: u64,
    ) -> Result<AvatarUpload, AvatarError> {
        let id = principal.user.id;
        let now = now().unix_timestamp();
        let pending = self.uploads.pending(id, now).await?;
        if pending.len() >= MAX_PENDING_UPLOADS {
            let first_free = pending.iter().map(|upload| upload.expires_at).min().unwrap_or(now);
            return Err(Failure::Throttled { retry_after_seconds: first_free - now }.into());
        }
        let key = format!("uploads/{id}/{}.{}", uuid::Uuid::new_v4(), image.extension());
        let ticket = self.objects()?.presign_upload(&key, image.content_type(), size, URL_LIFETIME).await?;
        let secret = secrets::generate();
        let expires_at = now + URL_LIFETIME.as_secs() as i64;
        let upload = PendingUpload {
            hash: secrets::hash(&secret),
            key,
            content_type: image.content_type().to_owned(),
            size,
            expires_at,
            ttl: expires_at,
        };
        self.uploads.create(id, &upload).await?;
        Ok(AvatarUpload { ticket, token: format!("{id}.{secret}"), expires_in: URL_LIFETIME.as_secs() })
    }

    /// Step two: checks what was uploaded and makes it the caller's avatar. Answers a view URL.
    ///
    /// The upload is first copied to `avatars/`, where the client cannot write, and the copy is
    /// what gets checked: the presigned URL stays usable until it expires, so checking the
    /// upload itself would let bytes swapped in after the check through.
    pub async fn confirm_avatar(&self, principal: &Principal, token: &str) -> Result<String, AvatarError> {
        let objects = self.objects()?;
        let user_id = principal.user.id;
        let parsed = token.trim().split_once('.').and_then(|(id, secret)| Some((UserId::parse(id)?, secret)));
        // Someone else's token reads as no upload at all.
        let Some((_, secret)) = parsed.filter(|(owner, _)| *owner == user_id) else {
            return Err(AvatarError::NoSuchUpload);
        };
        let hash = secrets::hash(secret);
        let upload = match self.uploads.get(user_id, &hash).await? {
            Some(upload) if bool::from(upload.hash.as_bytes().ct_eq(hash.as_bytes())) => upload,
            _ => return Err(AvatarError::NoSuchUpload),
        };
        if upload.expires_at <= now().unix_timestamp() {
            self.discard_object(&upload.key).await;
            return Err(AvatarError::NoSuchUpload);
        }
        let image = ImageType::parse(&upload.content_type).map_err(|_| AvatarError::NoSuchUpload)?;
        let key = format!("avatars/{user_id}/{}.{}", uuid::Uuid::new_v4(), image.extension());
        if !objects.copy(&upload.key, &key, image.content_type()).await? {
            return Err(AvatarError::InvalidUpload("nothing was uploaded to the URL".into()));
        }
        let refusal = match objects.size(&key).await? {
            Some(size) if size != upload.size => {
                Some(format!("{size} bytes were uploaded, not the {} declared", upload.size))
            }
            Some(size) if size > self.max_bytes => Some(format!("{size} bytes is over the limit")),
            Some(_) if !image.matches(&objects.read_start(&key, HEADER_BYTES).await?) => {
                Some(format!("the file is not a {} image", image.content_type()))
            }
            Some(_) => None,
            None => Some("nothing was uploaded to the URL".to_owned()),
        };
        if let Some(refusal) = refusal {
            self.discard_object(&key).await;
            self.discard_object(&upload.key).await;
            return Err(AvatarError::InvalidUpload(refusal));
        }
        if let Err(error) = self.set_avatar(principal, Some(key.clone()), Some(&hash)).await {
            self.discard_object(&key).await;
            return Err(error);
        }
        self.discard_object(&upload.key).await;
        Ok(objects.presign_download(&key, URL_LIFETIME).await?)
    }

    /// `PUT /v1/avatar`: the image bytes in one request, checked the same way.
    pub async fn upload_avatar(
        &self,
        principal: &Principal,
        image: ImageType,
        body: Vec<u8>,
    ) -> Result<String, AvatarError> {
        let objects = self.objects()?;
        if !image.matches(&body) {
            return Err(AvatarError::InvalidUpload(format!("the body is not a {} image", image.content_type())));
        }
        let key = format!("avatars/{}/{}.{}", principal.user.id, uuid::Uuid::new_v4(), image.extension());
        objects.put(&key, image.content_type(), body).await?;
        if let Err(error) = self.set_avatar(principal, Some(key.clone()), None).await {
            self.discard_object(&key).await;
            return Err(error);
        }
        Ok(objects.presign_download(&key, URL_LIFETIME).await?)
    }

    /// `DELETE /v1/avatar`.
    pub async fn delete_avatar(&self, principal: &Principal) -> Result<(), AvatarError> {
        self.objects()?;
        self.set_avatar(principal, None, None).await
    }

    /// `GET /v1/users/{id}/avatar`: a short-lived URL of anyone's avatar.
    pub async fn avatar_url(&self, id: UserId) -> Result<String, AvatarError> {
        let objects = self.objects()?;
        match self.users.find_by_id(id).await? {
            Some(StoredUser { user: User { status: UserStatus::Normal, .. }, avatar_key: Some(key), .. }) => {
                Ok(objects.presign_download(&key, URL_LIFETIME).await?)
            }
            _ => Err(AvatarError::NoAvatar),
        }
    }

    /// Points the caller's avatar at `key` (or at nothing) and, for a confirmed upload, spends
    /// its token in the same transaction; then deletes the object it replaced. Another change
    /// to the account meanwhile is retried on a fresh read; a token spent meanwhile is 404.
    async fn set_avatar(
        &self,
        principal: &Principal,
        key: Option<String>,
        upload: Option<&str>,
    ) -> Result<(), AvatarError> {
        let replaced = retry_on_conflict(|_| {
            let key = key.clone();
            async move {
                let mut stored = caller_record(&self.users, principal).await?;
                if key.is_none() && stored.avatar_key.is_none() {
                    return Err(AvatarError::NoAvatar);
                }
                let replaced = std::mem::replace(&mut stored.avatar_key, key);
                stored.user.has_avatar = stored.avatar_key.is_some();
                let spend = upload.map(|hash| UploadRepo::consume(stored.user.id, hash)).into_iter().collect();
                let saved = settled::<_, AvatarError>(self.users.save(&stored, spend).await.map(|()| replaced))?;
                // Lost to another change: retried, unless it was this upload's token being spent.
                if saved.is_none()
                    && let Some(hash) = upload
                    && self.uploads.get(stored.user.id, hash).await?.is_none()
                {
                    return Err(AvatarError::NoSuchUpload);
                }
                Ok(saved)
            }
        })
        .await?;
        if let Some(old) = replaced {
            self.discard_object(&old).await;
        }
        Ok(())
    }

    async fn discard_object(&self, key: &str) {
        if let Some(objects) = &self.objects {
            discard(objects.as_ref(), key).await;
        }
    }
}

/// Deletes an object that is no longer wanted. The outcome of the request does not depend
/// on it (S3's lifecycle rule and the next upload are the backstops), so failures are logged.
pub async fn discard(objects: &dyn ObjectStore, key: &str) {
    if let Err(error) = objects.delete(key).await {
        tracing::warn!(%key, %error, "an object could not be deleted");
    }
}
