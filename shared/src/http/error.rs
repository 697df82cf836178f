//! The one place errors become HTTP responses.
//!
//! Every error body is `{"code", "status", "message", "details"}` with a gRPC code and name
//! (google.rpc.Status) and the matching HTTP status. Internal detail is logged, never sent.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::service::AuthError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    InvalidArgument,
    Unauthenticated,
    NotFound,
    MethodNotAllowed,
    AlreadyExists,
    PayloadTooLarge,
    Internal,
    Unavailable,
}

impl ErrorCode {
    /// (gRPC code, gRPC name, HTTP status)
    fn parts(self) -> (u16, &'static str, StatusCode) {
        match self {
            Self::InvalidArgument => (3, "INVALID_ARGUMENT", StatusCode::BAD_REQUEST),
            Self::Unauthenticated => (16, "UNAUTHENTICATED", StatusCode::UNAUTHORIZED),
            Self::NotFound => (5, "NOT_FOUND", StatusCode::NOT_FOUND),
            Self::MethodNotAllowed => (12, "UNIMPLEMENTED", StatusCode::METHOD_NOT_ALLOWED),
            Self::AlreadyExists => (6, "ALREADY_EXISTS", StatusCode::CONFLICT),
            Self::PayloadTooLarge => (3, "INVALID_ARGUMENT", StatusCode::PAYLOAD_TOO_LARGE),
            Self::Internal => (13, "INTERNAL", StatusCode::INTERNAL_SERVER_ERROR),
            Self::Unavailable => (14, "UNAVAILABLE", StatusCode::SERVICE_UNAVAILABLE),
        }
    }
}

#[derive(Debug)]
pub struct ApiError {
    code: ErrorCode,
    message: String,
    details: Vec<Value>,
    /// The `WWW-Authenticate` challenge of a 401 from a bearer-protected route (RFC 6750 §3).
    challenge: Option<&'static str>,
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self { code, message: message.into(), details: Vec::new(), challenge: None }
    }

    /// A bad value in the request, naming the field (as google.rpc.BadRequest does).
    pub fn invalid_field(field: &str, description: impl std::fmt::Display) -> Self {
        let description = description.to_string();
        Self {
            code: ErrorCode::InvalidArgument,
            message: format!("{field}: {description}"),
            details: vec![json!({ "field": field, "description": description })],
            challenge: None,
        }
    }

    pub fn unauthenticated(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Unauthenticated, message)
    }

    /// A 401 from a route that takes `Authorization: Bearer` when no token was given.
    pub fn bearer_required(message: impl Into<String>) -> Self {
        Self { challenge: Some("Bearer"), ..Self::unauthenticated(message) }
    }

    /// A 401 (or other error) from a bearer-protected route whose token was refused.
    pub fn with_invalid_token_challenge(mut self) -> Self {
        self.challenge = Some("Bearer error=\"invalid_token\"");
        self
    }
}

impl From<AuthError> for ApiError {
    fn from(error: AuthError) -> Self {
        let message = error.to_string();
        match error {
            AuthError::InvalidCredentials | AuthError::InvalidRefreshToken | AuthError::InvalidAccessToken => {
                Self::unauthenticated(message)
            }
            AuthError::AlreadyExists(field) => Self {
                code: ErrorCode::AlreadyExists,
                message,
                details: vec![json!({ "field": field.to_string(), "reason": "ALREADY_EXISTS" })],
                challenge: None,
            },
            AuthError::Unavailable(detail) => {
                tracing::error!(%detail, "storage unavailable");
                Self::new(ErrorCode::Unavailable, "the service is temporarily unavailable; retry shortly")
            }
            AuthError::Internal(detail) => {
                tracing::error!(%detail, "internal error");
                Self::new(ErrorCode::Internal, "internal error")
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (code, name, status) = self.code.parts();
        let body = json!({ "code": code, "status": name, "message": self.message, "details": self.details });
        let mut response = (status, axum::Json(body)).into_response();
        if let Some(challenge) = self.challenge.filter(|_| status == StatusCode::UNAUTHORIZED) {
            response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static(challenge));
        }
        response
    }
}
