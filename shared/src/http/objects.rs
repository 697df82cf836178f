//! The local object store's signed URLs, served by `latchkey-local` (and the tests' server)
//! only: on AWS, S3 serves presigned URLs itself.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::put;

use super::error::{ApiError, ErrorCode};
use super::extract::QueryParams;
use crate::objects::local::{LocalObjects, SignedQuery, UrlError};

impl From<UrlError> for ApiError {
    fn from(error: UrlError) -> Self {
        match error {
            UrlError::Refused(reason) => ApiError::new(ErrorCode::PermissionDenied, reason),
            UrlError::NotFound => ApiError::new(ErrorCode::NotFound, "no such object"),
            UrlError::Io(detail) => {
                tracing::error!(%detail, "local object store");
                ApiError::new(ErrorCode::Unavailable, "the object could not be stored or read")
            }
        }
    }
}

/// `PUT` and `GET /v1/objects/{*key}` with a signed query, bodies up to `max_bytes`.
pub fn local_object_routes(objects: Arc<LocalObjects>, max_bytes: u64) -> Router {
    Router::new()
        .route("/v1/objects/{*key}", put(upload).get(download))
        .layer(DefaultBodyLimit::max(max_bytes as usize + 1))
        .with_state(objects)
}

async fn upload(
    State(objects): State<Arc<LocalObjects>>,
    Path(key): Path<String>,
    QueryParams(query): QueryParams<SignedQuery>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<StatusCode, ApiError> {
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|value| value.to_str().ok());
    objects.accept_upload(&key, &query, content_type, &body).await?;
    Ok(StatusCode::OK)
}

async fn download(
    State(objects): State<Arc<LocalObjects>>,
    Path(key): Path<String>,
    QueryParams(query): QueryParams<SignedQuery>,
) -> Result<Response, ApiError> {
    let bytes = objects.open_download(&key, &query).await?;
    let content_type = infer::get(&bytes).map_or("application/octet-stream", |kind| kind.mime_type());
    // Served as the image it was checked to be, and as nothing else: no sniffing, no scripts.
    let headers = [
        (header::CONTENT_TYPE, content_type),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::CONTENT_SECURITY_POLICY, "default-src 'none'; sandbox"),
    ];
    Ok((headers, bytes).into_response())
}
