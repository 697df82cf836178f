use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, FailedToBufferBody};
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, Method, header};
use axum::routing;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::service::{AvatarError, AvatarService};
use crate::domain::{ImageType, UserId};
use crate::http::error::{ApiError, ErrorCode};
use crate::http::extract::{Authenticated, JsonBody, PathParam, body_unreadable};
use crate::http::parse::non_empty;
use crate::http::{Function, Route, Slice};

pub fn routes() -> Vec<Route<AvatarService>> {
    vec![
        Route::post(Function::Avatar, "/v1/avatar/upload-url", upload_url),
        Route::post(Function::Avatar, "/v1/avatar/confirm", confirm),
        Route::new(
            Function::Avatar,
            Method::PUT,
            "/v1/avatar",
            // The one route whose body is not small JSON.
            routing::put(upload).layer(DefaultBodyLimit::max(DIRECT_UPLOAD_MAX_BYTES as usize + 1)),
        ),
        Route::delete(Function::Avatar, "/v1/avatar", remove),
        Route::get(Function::Avatar, "/v1/users/{id}/avatar", view),
    ]
}

impl From<AvatarError> for ApiError {
    fn from(error: AvatarError) -> Self {
        match error {
            AvatarError::NoSuchUpload | AvatarError::NoAvatar => Self::of(ErrorCode::NotFound, &error),
            AvatarError::InvalidUpload(_) => Self::reason(ErrorCode::InvalidArgument, &error, "INVALID_UPLOAD"),
            AvatarError::Failure(error) => error.into(),
        }
    }
}

/// API Gateway hands Lambda a binary body base64-encoded, in at most 6 MB: 4 MiB of image
/// is the most a direct upload can carry.
const DIRECT_UPLOAD_MAX_BYTES: u64 = 4 * 1024 * 1024;

#[derive(Deserialize)]
pub struct UploadUrlRequest {
    filename: String,
    content_type: String,
    size: u64,
}

async fn upload_url(
    State(avatars): State<Slice<AvatarService>>,
    Authenticated(principal): Authenticated,
    JsonBody(request): JsonBody<UploadUrlRequest>,
) -> Result<Json<Value>, ApiError> {
    let filename = non_empty("filename", &request.filename)?;
    if filename.chars().count() > 255 {
        return Err(ApiError::invalid_field("filename", "must be at most 255 characters"));
    }
    let image = ImageType::parse(&request.content_type).map_err(|e| ApiError::invalid_field("content_type", e))?;
    if request.size == 0 || request.size > avatars.config.avatar_max_bytes {
        let limit = avatars.config.avatar_max_bytes;
        return Err(ApiError::invalid_field("size", format!("must be from 1 to {limit} bytes")));
    }
    let upload = avatars.avatar_upload_url(&principal, image, request.size).await?;
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

async fn confirm(
    State(avatars): State<Slice<AvatarService>>,
    Authenticated(principal): Authenticated,
    JsonBody(request): JsonBody<ConfirmRequest>,
) -> Result<Json<Value>, ApiError> {
    let url = avatars.confirm_avatar(&principal, non_empty("token", &request.token)?).await?;
    Ok(Json(json!({ "url": url })))
}

/// `PUT /v1/avatar`: the body is the image, its type in `Content-Type`.
async fn upload(
    State(avatars): State<Slice<AvatarService>>,
    Authenticated(principal): Authenticated,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, ApiError> {
    let limit = avatars.config.avatar_max_bytes.min(DIRECT_UPLOAD_MAX_BYTES);
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
    let url = avatars.upload_avatar(&principal, image, body.to_vec()).await?;
    Ok(Json(json!({ "url": url })))
}

async fn remove(
    State(avatars): State<Slice<AvatarService>>,
    Authenticated(principal): Authenticated,
) -> Result<Json<Value>, ApiError> {
    avatars.delete_avatar(&principal).await?;
    Ok(Json(json!({ "success": true })))
}

/// Any signed-in user may view any avatar.
async fn view(
    State(avatars): State<Slice<AvatarService>>,
    Authenticated(_): Authenticated,
    PathParam(id): PathParam<String>,
) -> Result<Json<Value>, ApiError> {
    let id = UserId::parse(&id).ok_or(AvatarError::NoAvatar)?;
    Ok(Json(json!({ "url": avatars.avatar_url(id).await? })))
}
