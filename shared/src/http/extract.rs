//! Request extractors that turn bad input into clean, documented errors.

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, FailedToBufferBody};
use std::convert::Infallible;
use std::net::SocketAddr;

use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Request};
use axum::http::header::{AUTHORIZATION, CONTENT_TYPE};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use super::Slice;
use super::error::{ApiError, ErrorCode};
use crate::kernel::{Origin, Principal};

/// The largest request body accepted, in bytes.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// A JSON body whose errors name the offending field. The body must be declared as JSON
/// (`415` otherwise: a page on another origin can send `text/plain` without a preflight) and be
/// exactly one JSON object.
pub struct JsonBody<T>(pub T);

fn declares_json(headers: &axum::http::HeaderMap) -> bool {
    let Some(value) = headers.get(CONTENT_TYPE).and_then(|value| value.to_str().ok()) else { return false };
    let essence = value.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
    essence == "application/json" || (essence.starts_with("application/") && essence.ends_with("+json"))
}

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        if !declares_json(request.headers()) {
            return Err(ApiError::new(
                ErrorCode::UnsupportedMediaType,
                "the request body must be JSON, sent with Content-Type: application/json",
            ));
        }
        let bytes = Bytes::from_request(request, state).await.map_err(body_unreadable)?;
        if bytes.iter().find(|byte| !byte.is_ascii_whitespace()) != Some(&b'{') {
            return Err(ApiError::new(ErrorCode::InvalidArgument, "the request body must be a JSON object"));
        }
        let deserializer = &mut serde_json::Deserializer::from_slice(&bytes);
        let value = serde_path_to_error::deserialize(&mut *deserializer).map_err(|error| {
            let path = error.path().to_string();
            let inner = error.into_inner();
            // serde_json appends " at line L column C"; clients need the field, not the column.
            let message = inner.to_string();
            let message = message.split(" at line ").next().unwrap_or_default().to_owned();
            if inner.is_syntax() || inner.is_eof() {
                ApiError::new(ErrorCode::InvalidArgument, format!("the request body is not valid JSON: {message}"))
            } else if let Some(field) = missing_field(&message) {
                ApiError::invalid_field(&path_join(&path, field), "is required")
            } else if path == "." {
                ApiError::new(ErrorCode::InvalidArgument, message)
            } else {
                ApiError::invalid_field(&path, message)
            }
        })?;
        deserializer.end().map_err(|_| {
            ApiError::new(ErrorCode::InvalidArgument, "the request body must be one JSON object with nothing after it")
        })?;
        Ok(JsonBody(value))
    }
}

/// A body that could not be read: too large, or not sent in time.
pub fn body_unreadable(rejection: BytesRejection) -> ApiError {
    let too_large =
        || ApiError::new(ErrorCode::PayloadTooLarge, format!("the request body is larger than {MAX_BODY_BYTES} bytes"));
    match rejection {
        BytesRejection::FailedToBufferBody(FailedToBufferBody::LengthLimitError(_)) => too_large(),
        BytesRejection::FailedToBufferBody(_) => {
            ApiError::new(ErrorCode::RequestTimeout, "the request body did not arrive in time or was cut short")
        }
        _ => ApiError::new(ErrorCode::InvalidArgument, "the request body could not be read"),
    }
}

/// The field serde reports in "missing field `name`".
fn missing_field(message: &str) -> Option<&str> {
    message.strip_prefix("missing field `")?.strip_suffix('`')
}

fn path_join(parent: &str, field: &str) -> String {
    if parent == "." { field.to_owned() } else { format!("{parent}.{field}") }
}

/// The bearer token of the `Authorization` header, not yet checked.
pub struct BearerToken(pub String);

impl<S: Send + Sync> FromRequestParts<S> for BearerToken {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        let header = parts
            .headers
            .get(AUTHORIZATION)
            .ok_or_else(|| ApiError::bearer_required("the Authorization header is missing"))?;
        let malformed = || {
            ApiError::unauthenticated("the Authorization header must be 'Bearer <access token>'")
                .with_invalid_token_challenge()
        };
        let value = header.to_str().map_err(|_| malformed())?;
        let (scheme, token) = value.split_once(' ').ok_or_else(malformed)?;
        let token = token.trim();
        if !scheme.eq_ignore_ascii_case("bearer") || token.is_empty() {
            return Err(malformed());
        }
        Ok(Self(token.to_owned()))
    }
}

/// The caller of a protected route, after its access token and session were checked.
pub struct Authenticated(pub Principal);

impl<S: Send + Sync> FromRequestParts<Slice<S>> for Authenticated {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &Slice<S>) -> Result<Self, ApiError> {
        let BearerToken(token) = BearerToken::from_request_parts(parts, state).await?;
        match state.sessions.authenticate(&token).await {
            Ok(principal) => Ok(Self(principal)),
            Err(error) => Err(ApiError::from(error).with_invalid_token_challenge()),
        }
    }
}

/// Where the request came from, for per-address throttling: the peer address locally, and on
/// Lambda API Gateway's `requestContext.http.sourceIp` (which `lambda::run` puts in the same place).
pub struct ClientOrigin(pub Origin);

impl<S: Send + Sync> FromRequestParts<S> for ClientOrigin {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Infallible> {
        let ip = parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|ConnectInfo(address)| address.ip());
        Ok(Self(Origin { ip }))
    }
}

/// Query parameters whose errors are the documented JSON error, naming the parameter.
pub struct QueryParams<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for QueryParams<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        let query = parts.uri.query().unwrap_or_default();
        let deserializer = serde_urlencoded::Deserializer::new(form_urlencoded::parse(query.as_bytes()));
        serde_path_to_error::deserialize(deserializer).map(QueryParams).map_err(|error| {
            let path = error.path().to_string();
            let message = error.into_inner().to_string();
            match missing_field(&message) {
                Some(field) => ApiError::invalid_field(field, "is required"),
                None if path == "." => ApiError::new(ErrorCode::InvalidArgument, format!("the query string {message}")),
                None => ApiError::invalid_field(&path, message),
            }
        })
    }
}

/// A path parameter, whose errors (invalid UTF-8 after decoding, say) name the parameter.
pub struct PathParam<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for PathParam<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        use axum::extract::path::ErrorKind;
        use axum::extract::rejection::PathRejection;
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(value)) => Ok(Self(value)),
            Err(PathRejection::FailedToDeserializePathParams(error)) => Err(match error.into_kind() {
                ErrorKind::InvalidUtf8InPathParam { key } => ApiError::invalid_field(&key, "is not valid UTF-8"),
                ErrorKind::ParseErrorAtKey { key, expected_type, .. } => {
                    ApiError::invalid_field(&key, format!("must be a {expected_type}"))
                }
                other => ApiError::new(ErrorCode::InvalidArgument, format!("the path is not valid: {other}")),
            }),
            Err(_) => Err(ApiError::new(ErrorCode::Internal, "the route's path parameters are missing")),
        }
    }
}
