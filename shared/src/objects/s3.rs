//! The AWS object adapter: S3 through aws-sdk-s3, uploads and downloads by presigned URL.

use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_s3::Client;
use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_s3::primitives::ByteStream;

use super::{ObjectError, ObjectStore, UploadTicket};

pub struct S3Objects {
    client: Client,
    bucket: String,
}

impl S3Objects {
    pub fn new(client: Client, bucket: impl Into<String>) -> Self {
        Self { client, bucket: bucket.into() }
    }
}

fn unavailable(error: impl std::fmt::Display) -> ObjectError {
    ObjectError::Unavailable(error.to_string())
}

fn sdk<E: std::error::Error + Send + Sync + 'static, R: std::fmt::Debug + Send + Sync + 'static>(
    error: SdkError<E, R>,
) -> ObjectError {
    ObjectError::Unavailable(DisplayErrorContext(error).to_string())
}

fn presigning(expires_in: Duration) -> Result<PresigningConfig, ObjectError> {
    PresigningConfig::expires_in(expires_in).map_err(unavailable)
}

#[async_trait]
impl ObjectStore for S3Objects {
    async fn presign_upload(
        &self,
        key: &str,
        content_type: &str,
        length: u64,
        expires_in: Duration,
    ) -> Result<UploadTicket, ObjectError> {
        let length = i64::try_from(length).map_err(unavailable)?;
        // Content type and length are set on the request, so they are signed: S3 refuses a
        // PUT that sends anything else.
        let request = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_type(content_type)
            .content_length(length)
            .presigned(presigning(expires_in)?)
            .await
            .map_err(sdk)?;
        let headers = request.headers().map(|(name, value)| (name.to_owned(), value.to_owned())).collect();
        Ok(UploadTicket { url: request.uri().to_owned(), method: "PUT", headers })
    }

    async fn presign_download(&self, key: &str, expires_in: Duration) -> Result<String, ObjectError> {
        let request = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .presigned(presigning(expires_in)?)
            .await
            .map_err(sdk)?;
        Ok(request.uri().to_owned())
    }

    async fn size(&self, key: &str) -> Result<Option<u64>, ObjectError> {
        match self.client.head_object().bucket(&self.bucket).key(key).send().await {
            Ok(head) => Ok(Some(head.content_length().unwrap_or(0).max(0) as u64)),
            Err(error) if error.as_service_error().is_some_and(|e| e.is_not_found()) => Ok(None),
            Err(error) if error.as_service_error().and_then(ProvideErrorMetadata::code) == Some("NotFound") => Ok(None),
            Err(error) => Err(sdk(error)),
        }
    }

    async fn read_start(&self, key: &str, length: u64) -> Result<Vec<u8>, ObjectError> {
        let range = format!("bytes=0-{}", length.saturating_sub(1));
        let object = self.client.get_object().bucket(&self.bucket).key(key).range(range).send().await.map_err(sdk)?;
        let bytes = object.body.collect().await.map_err(unavailable)?.into_bytes();
        Ok(bytes.iter().take(length as usize).copied().collect())
    }

    async fn put(&self, key: &str, content_type: &str, body: Vec<u8>) -> Result<(), ObjectError> {
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_type(content_type)
            .body(ByteStream::from(body))
            .send()
            .await
            .map_err(sdk)?;
        Ok(())
    }

    async fn copy(&self, from: &str, to: &str, content_type: &str) -> Result<bool, ObjectError> {
        let copied = self
            .client
            .copy_object()
            .bucket(&self.bucket)
            .copy_source(format!("{}/{from}", self.bucket))
            .key(to)
            .content_type(content_type)
            // Whatever headers the uploader sent along are not carried over.
            .metadata_directive(aws_sdk_s3::types::MetadataDirective::Replace)
            .send()
            .await;
        match copied {
            Ok(_) => Ok(true),
            Err(error) if error.as_service_error().and_then(ProvideErrorMetadata::code) == Some("NoSuchKey") => {
                Ok(false)
            }
            Err(error) => Err(sdk(error)),
        }
    }

    async fn delete(&self, key: &str) -> Result<(), ObjectError> {
        self.client.delete_object().bucket(&self.bucket).key(key).send().await.map_err(sdk)?;
        Ok(())
    }
}
