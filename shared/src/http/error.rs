//! The error body, and how the kernel's errors become HTTP responses; each slice maps its own
//! errors next to its handlers.
//!
//! Every error body is `{"code", "status", "message", "details"}` with a gRPC code and name
//! (google.rpc.Status) and the matching HTTP status. Internal detail is logged, never sent.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::kernel::{Failure, ProofError};
use crate::repo::UniqueField;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    InvalidArgument,
    FailedPrecondition,
    Unauthenticated,
    PermissionDenied,
    NotFound,
    MethodNotAllowed,
    AlreadyExists,
    Aborted,
    /// The target is not in the state the operation needs (HTTP 409 with gRPC FAILED_PRECONDITION).
    Conflict,
    ResourceExhausted,
    PayloadTooLarge,
    /// The body was declared as something other than JSON.
    UnsupportedMediaType,
    /// The request did not arrive in time.
    RequestTimeout,
    Internal,
    Unavailable,
}

impl ErrorCode {
    /// (gRPC code, gRPC name, HTTP status)
    fn parts(self) -> (u16, &'static str, StatusCode) {
        match self {
            Self::InvalidArgument => (3, "INVALID_ARGUMENT", StatusCode::BAD_REQUEST),
            Self::FailedPrecondition => (9, "FAILED_PRECONDITION", StatusCode::BAD_REQUEST),
            Self::Unauthenticated => (16, "UNAUTHENTICATED", StatusCode::UNAUTHORIZED),
            Self::PermissionDenied => (7, "PERMISSION_DENIED", StatusCode::FORBIDDEN),
            Self::NotFound => (5, "NOT_FOUND", StatusCode::NOT_FOUND),
            Self::MethodNotAllowed => (12, "UNIMPLEMENTED", StatusCode::METHOD_NOT_ALLOWED),
            Self::AlreadyExists => (6, "ALREADY_EXISTS", StatusCode::CONFLICT),
            Self::Aborted => (10, "ABORTED", StatusCode::CONFLICT),
            Self::Conflict => (9, "FAILED_PRECONDITION", StatusCode::CONFLICT),
            Self::ResourceExhausted => (8, "RESOURCE_EXHAUSTED", StatusCode::TOO_MANY_REQUESTS),
            Self::PayloadTooLarge => (3, "INVALID_ARGUMENT", StatusCode::PAYLOAD_TOO_LARGE),
            Self::UnsupportedMediaType => (3, "INVALID_ARGUMENT", StatusCode::UNSUPPORTED_MEDIA_TYPE),
            Self::RequestTimeout => (4, "DEADLINE_EXCEEDED", StatusCode::REQUEST_TIMEOUT),
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
    /// Seconds for the `Retry-After` header of a 429.
    retry_after: Option<i64>,
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self { code, message: message.into(), details: Vec::new(), challenge: None, retry_after: None }
    }

    pub fn with_detail(mut self, detail: Value) -> Self {
        self.details.push(detail);
        self
    }

    /// The JSON body: `{"code", "status", "message", "details"}` (also the `error` of a chat
    /// error frame).
    pub fn body(&self) -> Value {
        let (code, name, _) = self.code.parts();
        json!({ "code": code, "status": name, "message": self.message, "details": self.details })
    }

    /// A 429 with `Retry-After`.
    pub fn too_many(message: String, reason: &str, retry_after_seconds: i64) -> Self {
        Self {
            retry_after: Some(retry_after_seconds),
            ..Self::new(ErrorCode::ResourceExhausted, message)
                .with_detail(json!({ "reason": reason, "retry_after_seconds": retry_after_seconds }))
        }
    }

    /// The HTTP status (for edges that are not axum: the WebSocket `$connect` answer).
    pub fn status(&self) -> u16 {
        self.code.parts().2.as_u16()
    }

    /// A bad value in the request, naming the field (as google.rpc.BadRequest does).
    pub fn invalid_field(field: &str, description: impl std::fmt::Display) -> Self {
        let description = description.to_string();
        Self::new(ErrorCode::InvalidArgument, format!("{field}: {description}"))
            .with_detail(json!({ "field": field, "description": description }))
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

impl ApiError {
    /// An error whose message is `error`'s, with a machine-readable `reason` detail.
    pub fn reason(code: ErrorCode, error: &impl std::fmt::Display, reason: &str) -> Self {
        Self::new(code, error.to_string()).with_detail(json!({ "reason": reason }))
    }

    /// An error whose message is `error`'s.
    pub fn of(code: ErrorCode, error: &impl std::fmt::Display) -> Self {
        Self::new(code, error.to_string())
    }
}

impl From<Failure> for ApiError {
    fn from(error: Failure) -> Self {
        match error {
            Failure::Throttled { retry_after_seconds } => {
                Self::too_many(error.to_string(), "TOO_MANY_ATTEMPTS", retry_after_seconds)
            }
            Failure::SignedOut => Self::unauthenticated(error.to_string()),
            Failure::Aborted => Self::of(ErrorCode::Aborted, &error),
            Failure::Unavailable(detail) => {
                tracing::error!(%detail, "a backing service is unavailable");
                Self::new(ErrorCode::Unavailable, "the service is temporarily unavailable; retry shortly")
            }
            Failure::Internal(detail) => {
                tracing::error!(%detail, "internal error");
                Self::new(ErrorCode::Internal, "internal error")
            }
        }
    }
}

impl From<ProofError> for ApiError {
    fn from(error: ProofError) -> Self {
        match error {
            ProofError::Incorrect { field } => Self::of(ErrorCode::PermissionDenied, &error)
                .with_detail(json!({ "field": field, "reason": "INCORRECT" })),
            ProofError::MissingField(field) => Self::invalid_field(field, "is required"),
            ProofError::ReauthenticationRequired => {
                Self::reason(ErrorCode::PermissionDenied, &error, "REAUTHENTICATION_REQUIRED")
            }
            ProofError::MfaRequired { ref methods } => Self::unauthenticated(error.to_string())
                .with_detail(json!({ "reason": "MFA_REQUIRED", "methods": methods })),
            ProofError::InvalidSecondFactor => {
                Self::reason(ErrorCode::Unauthenticated, &error, "INVALID_SECOND_FACTOR")
            }
            ProofError::Failure(failure) => failure.into(),
        }
    }
}

/// A unique value that is another account's: `409`, naming the field.
pub fn taken(field: UniqueField, error: &impl std::fmt::Display) -> ApiError {
    ApiError::of(ErrorCode::AlreadyExists, error)
        .with_detail(json!({ "field": field.to_string(), "reason": "ALREADY_EXISTS" }))
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.code.parts().2;
        let mut response = (status, axum::Json(self.body())).into_response();
        if let Some(challenge) = self.challenge.filter(|_| status == StatusCode::UNAUTHORIZED) {
            response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static(challenge));
        }
        if let Some(seconds) = self.retry_after {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(seconds.max(1)));
        }
        response
    }
}
