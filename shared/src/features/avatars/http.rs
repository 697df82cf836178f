use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, FailedToBufferBody};
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, Method, header};
use axum::routing;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::service::{AvatarError, AvatarService};
use crate::domain::{ImageType, UserId};
use crate::http::bodies::Success;
use crate::http::error::{ApiError, ErrorCode};
use crate::http::extract::{Authenticated, JsonBody, PathParam, body_unreadable};
use crate::http::parse::{non_empty, whole_number};
use crate::http::schemas::{ImageContentType, Token};
use crate::http::{Function, Route, Slice};

/// This slice's operations in the OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi(paths(upload_url, confirm, upload, remove, view))]
pub struct Api;

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

#[derive(Deserialize, ToSchema)]
pub struct UploadUrlRequest {
    /// The file's name on the client (not used for storage).
    #[schema(min_length = 1, max_length = 255, pattern = r"\S")]
    filename: String,
    #[schema(value_type = ImageContentType)]
    content_type: String,
    /// The exact size in bytes: at most the deployment's `LATCHKEY_AVATAR_MAX_BYTES` (5 MiB
    /// unless configured).
    #[serde(deserialize_with = "whole_number")]
    #[schema(minimum = 1, maximum = 5_242_880)]
    size: u64,
}

/// Where to upload exactly the declared image, and the token that confirms it.
#[derive(Serialize, ToSchema)]
pub struct UploadTicketBody {
    /// A presigned URL, valid for `expires_in` seconds.
    url: String,
    /// `PUT`.
    method: String,
    /// Headers the upload must send as they are.
    headers: std::collections::BTreeMap<String, String>,
    #[schema(value_type = Token)]
    token_to_confirm: String,
    expires_in: u64,
}

/// A short-lived URL of an avatar image.
#[derive(Serialize, ToSchema)]
pub struct AvatarUrl {
    url: String,
}

/// Step one of an upload: a presigned URL for exactly the declared image.
#[utoipa::path(post, path = "/v1/avatar/upload-url", tag = "avatars", security(("bearer" = [])),
    request_body = UploadUrlRequest, responses((status = 200, description = "Where to upload.", body = UploadTicketBody)))]
async fn upload_url(
    State(avatars): State<Slice<AvatarService>>,
    Authenticated(principal): Authenticated,
    JsonBody(request): JsonBody<UploadUrlRequest>,
) -> Result<Json<UploadTicketBody>, ApiError> {
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
    Ok(Json(UploadTicketBody {
        url: upload.ticket.url,
        method: upload.ticket.method.to_string(),
        headers: upload.ticket.headers.into_iter().collect(),
        token_to_confirm: upload.token,
        expires_in: upload.expires_in,
    }))
}

#[derive(Deserialize, ToSchema)]
pub struct ConfirmRequest {
    #[schema(value_type = Token)]
    token: String,
}

/// Step two: checks the uploaded image and makes it the caller's avatar.
#[utoipa::path(post, path = "/v1/avatar/confirm", tag = "avatars", security(("bearer" = [])),
    request_body = ConfirmRequest, responses((status = 200, description = "The avatar is set.", body = AvatarUrl)))]
async fn confirm(
    State(avatars): State<Slice<AvatarService>>,
    Authenticated(principal): Authenticated,
    JsonBody(request): JsonBody<ConfirmRequest>,
) -> Result<Json<AvatarUrl>, ApiError> {
    let url = avatars.confirm_avatar(&principal, non_empty("token", &request.token)?).await?;
    Ok(Json(AvatarUrl { url }))
}

/// Sets the avatar in one request: the body is the image (at most 4 MiB), its type in
/// `Content-Type`.
#[utoipa::path(put, path = "/v1/avatar", tag = "avatars", security(("bearer" = [])),
    request_body(description = "The image's bytes.",
        content(("image/png"), ("image/jpeg"), ("image/webp"), ("image/gif"))),
    responses((status = 200, description = "The avatar is set.", body = AvatarUrl)))]
async fn upload(
    State(avatars): State<Slice<AvatarService>>,
    Authenticated(principal): Authenticated,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<AvatarUrl>, ApiError> {
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
    Ok(Json(AvatarUrl { url }))
}

/// Removes the caller's avatar.
#[utoipa::path(delete, path = "/v1/avatar", tag = "avatars", security(("bearer" = [])),
    responses((status = 200, description = "Removed.", body = Success)))]
async fn remove(
    State(avatars): State<Slice<AvatarService>>,
    Authenticated(principal): Authenticated,
) -> Result<Json<Success>, ApiError> {
    avatars.delete_avatar(&principal).await?;
    Ok(Json(Success::DONE))
}

/// A URL (valid five minutes) of anyone's avatar; any signed-in user may ask.
#[utoipa::path(get, path = "/v1/users/{id}/avatar", tag = "avatars", security(("bearer" = [])),
    params(("id" = UserId, Path, description = "The account's id.")),
    responses((status = 200, description = "The avatar's URL.", body = AvatarUrl)))]
async fn view(
    State(avatars): State<Slice<AvatarService>>,
    Authenticated(_): Authenticated,
    PathParam(id): PathParam<String>,
) -> Result<Json<AvatarUrl>, ApiError> {
    let id = UserId::parse(&id).ok_or(AvatarError::NoAvatar)?;
    Ok(Json(AvatarUrl { url: avatars.avatar_url(id).await? }))
}
