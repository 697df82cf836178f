//! The password lifecycle and email verification.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{new_password, non_empty, typed_password};
use crate::domain::Email;
use crate::http::AppState;
use crate::http::bodies::UserBody;
use crate::http::error::ApiError;
use crate::http::extract::{Authenticated, ClientOrigin, JsonBody};

#[derive(Deserialize)]
pub struct ForgotPasswordRequest {
    email: Email,
}

/// `202` whatever the address: the answer never tells whether an account uses it.
pub async fn forgot_password(
    State(state): State<AppState>,
    JsonBody(request): JsonBody<ForgotPasswordRequest>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    state.auth.forgot_password(request.email).await?;
    let message = "if an account uses this address, a reset link was sent to it";
    Ok((StatusCode::ACCEPTED, Json(json!({ "success": true, "message": message }))))
}

#[derive(Deserialize)]
pub struct ResetPasswordRequest {
    token: String,
    new_password: String,
}

pub async fn reset_password(
    State(state): State<AppState>,
    ClientOrigin(origin): ClientOrigin,
    JsonBody(request): JsonBody<ResetPasswordRequest>,
) -> Result<Json<Value>, ApiError> {
    let token = non_empty("token", &request.token)?;
    let password = new_password(&state, "new_password", request.new_password)?;
    state.auth.reset_password(token, password, &origin).await?;
    Ok(Json(json!({ "success": true })))
}

#[derive(Deserialize)]
pub struct ChangePasswordRequest {
    current_password: String,
    new_password: String,
}

pub async fn change_password(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    ClientOrigin(origin): ClientOrigin,
    JsonBody(request): JsonBody<ChangePasswordRequest>,
) -> Result<Json<Value>, ApiError> {
    let current = typed_password("current_password", request.current_password)?;
    let password = new_password(&state, "new_password", request.new_password)?;
    let ended = state.auth.change_password(&principal, current, password, &origin).await?;
    Ok(Json(json!({ "success": true, "sessions_ended": ended })))
}

#[derive(Deserialize)]
pub struct VerifyEmailRequest {
    token: String,
}

pub async fn verify_email(
    State(state): State<AppState>,
    ClientOrigin(origin): ClientOrigin,
    JsonBody(request): JsonBody<VerifyEmailRequest>,
) -> Result<Json<Value>, ApiError> {
    let user = state.auth.verify_email(non_empty("token", &request.token)?, &origin).await?;
    Ok(Json(json!({ "success": true, "user": UserBody::from(user) })))
}

/// `POST /v1/users/me/email/confirm`: the link sent to a new address, used while signed in.
pub async fn confirm_email_change(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    ClientOrigin(origin): ClientOrigin,
    JsonBody(request): JsonBody<VerifyEmailRequest>,
) -> Result<Json<Value>, ApiError> {
    let user = state.auth.confirm_email_change(&principal, non_empty("token", &request.token)?, &origin).await?;
    Ok(Json(json!({ "success": true, "user": UserBody::from(user) })))
}

pub async fn resend_verification(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    state.auth.resend_verification(&principal).await?;
    Ok((StatusCode::ACCEPTED, Json(json!({ "success": true }))))
}
