//! Request extractors that turn bad input into clean, documented errors.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use std::convert::Infallible;
use std::net::SocketAddr;

use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Request};
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use super::AppState;
use super::error::{ApiError, ErrorCode};
use crate::service::{Origin, Principal};

/// The largest request body accepted, in bytes.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// A JSON body whose errors name the offending field.
pub struct JsonBody<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        let bytes = Bytes::from_request(request, state).await.map_err(|rejection| match rejection {
            BytesRejection::FailedToBufferBody(_) => ApiError::new(
                ErrorCode::PayloadTooLarge,
                format!("the request body is larger than {MAX_BODY_BYTES} bytes or could not be read"),
            ),
            other => ApiError::new(ErrorCode::InvalidArgument, other.body_text()),
        })?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Err(ApiError::new(ErrorCode::InvalidArgument, "the request body must be a JSON object"));
        }
        let deserializer = &mut serde_json::Deserializer::from_slice(&bytes);
        serde_path_to_error::deserialize(deserializer).map(JsonBody).map_err(|error| {
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
        })
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

impl FromRequestParts<AppState> for Authenticated {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let BearerToken(token) = BearerToken::from_request_parts(parts, state).await?;
        match state.auth.authenticate(&token).await {
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

/// Query parameters whose errors are the documented JSON error.
pub struct QueryParams<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for QueryParams<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(params)) => Ok(Self(params)),
            Err(rejection) => Err(ApiError::new(ErrorCode::InvalidArgument, rejection.body_text())),
        }
    }
}
