//! Avatars: presigned upload and confirmation, direct upload, view and delete.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::{BytesRejection, FailedToBufferBody};
use axum::http::{HeaderMap, header};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::non_empty;
use crate::domain::{ImageType, UserId};
use crate::http::AppState;
use crate::http::error::{ApiError, ErrorCode};
use crate::http::extract::{Authenticated, JsonBody, PathParam, body_unreadable};
use crate::service::AuthError;

/// API Gateway hands Lambda a binary body base64-encoded, in at most 6 MB: 4 MiB of image
/// is the most a direct upload can carry.
pub const DIRECT_UPLOAD_MAX_BYTES: u64 = 4 * 1024 * 1024;

#[derive(Deserialize)]
pub struct UploadUrlRequest {
    filename: String,
    content_type: String,
    size: u64,
}

pub async fn upload_url(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    JsonBody(request): JsonBody<UploadUrlRequest>,
) -> Result<Json<Value>, ApiError> {
    let filename = non_empty("filename", &request.filename)?;
    if filename.chars().count() > 255 {
        return Err(ApiError::invalid_field("filename", "must be at most 255 characters"));
    }
    let image = ImageType::parse(&request.content_type).map_err(|e| ApiError::invalid_field("content_type", e))?;
    if request.size == 0 || request.size > state.avatar_max_bytes {
        let limit = state.avatar_max_bytes;
        return Err(ApiError::invalid_field("size", format!("must be from 1 to {limit} bytes")));
    }
    let upload = state.auth.avatar_upload_url(&principal, image, request.size).await?;
    let headers: Map<String, Value> =
        upload.ticket.headers.into_iter().map(|(name, value)| (name, value.into())).collect();
    Ok(Json(json!({
        "url": upload.ticket.url,
        "method": upload.ticket.method,
        "headers": headers,
        "token_to_confirm": upload.token,
        "expires_in": upload.expires_in,
    })))
}

#[derive(Deserialize)]
pub struct ConfirmRequest {
    token: String,
}

pub async fn confirm(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    JsonBody(request): JsonBody<ConfirmRequest>,
) -> Result<Json<Value>, ApiError> {
    let url = state.auth.confirm_avatar(&principal, non_empty("token", &request.token)?).await?;
    Ok(Json(json!({ "url": url })))
}

/// `PUT /v1/avatar`: the body is the image, its type in `Content-Type`.
pub async fn upload(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, ApiError> {
    let limit = state.avatar_max_bytes.min(DIRECT_UPLOAD_MAX_BYTES);
    let too_large = || ApiError::new(ErrorCode::PayloadTooLarge, format!("an avatar is at most {limit} bytes"));
    let body = body.map_err(|rejection| match rejection {
        BytesRejection::FailedToBufferBody(FailedToBufferBody::LengthLimitError(_)) => too_large(),
        // Cut short or too slow: the same answer as every other body that does not arrive.
        other => body_unreadable(other),
    })?;
    if body.len() as u64 > limit {
        return Err(too_large());
    }
    if body.is_empty() {
        return Err(ApiError::new(ErrorCode::InvalidArgument, "the body must be the image"));
    }
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|value| value.to_str().ok()).unwrap_or_default();
    let image = ImageType::parse(content_type).map_err(|e| ApiError::invalid_field("Content-Type", e))?;
    let url = state.auth.upload_avatar(&principal, image, body.to_vec()).await?;
    Ok(Json(json!({ "url": url })))
}

pub async fn remove(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
) -> Result<Json<Value>, ApiError> {
    state.auth.delete_avatar(&principal).await?;
    Ok(Json(json!({ "success": true })))
}

/// Any signed-in user may view any avatar.
pub async fn view(
    State(state): State<AppState>,
    Authenticated(_): Authenticated,
    PathParam(id): PathParam<String>,
) -> Result<Json<Value>, ApiError> {
    let id = UserId::parse(&id).ok_or(AuthError::NoAvatar)?;
    Ok(Json(json!({ "url": state.auth.avatar_url(id).await? })))
}
