//! Second factors: TOTP setup and removal, email codes.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{PasswordConfirmation, one_identifier, second_factor, six_digits, typed_password};
use crate::domain::{Email, Phone, Username};
use crate::http::AppState;
use crate::http::error::ApiError;
use crate::http::extract::{Authenticated, ClientOrigin, JsonBody};

#[derive(Deserialize)]
pub struct EmailCodeRequest {
    email: Option<Email>,
    username: Option<Username>,
}

/// `202` whatever the account: the answer never tells whether it exists.
pub async fn send_email_code(
    State(state): State<AppState>,
    JsonBody(request): JsonBody<EmailCodeRequest>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let identifier = one_identifier(request.email, request.username, None)?;
    state.auth.send_email_code(identifier).await?;
    let message = "if an account matches, a sign-in code was sent to its email address";
    Ok((StatusCode::ACCEPTED, Json(json!({ "success": true, "message": message }))))
}

pub async fn enable_totp(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    ClientOrigin(origin): ClientOrigin,
    JsonBody(request): JsonBody<PasswordConfirmation>,
) -> Result<Json<Value>, ApiError> {
    let password = typed_password("password", request.password)?;
    let enrollment = state.auth.begin_totp(&principal, password, &origin).await?;
    Ok(Json(json!({ "secret": enrollment.secret_base32, "url": enrollment.url, "qr_png": enrollment.qr_png })))
}

#[derive(Deserialize)]
pub struct TotpCode {
    totp_code: String,
}

pub async fn verify_totp(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    ClientOrigin(origin): ClientOrigin,
    JsonBody(request): JsonBody<TotpCode>,
) -> Result<Json<Value>, ApiError> {
    let code = six_digits("totp_code", &request.totp_code)?;
    let recovery_codes = state.auth.confirm_totp(&principal, &code, &origin).await?;
    Ok(Json(json!({ "success": true, "recovery_codes": recovery_codes })))
}

#[derive(Deserialize)]
pub struct DisableTotpRequest {
    password: String,
    totp_code: String,
}

pub async fn disable_totp(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    ClientOrigin(origin): ClientOrigin,
    JsonBody(request): JsonBody<DisableTotpRequest>,
) -> Result<Json<Value>, ApiError> {
    let password = typed_password("password", request.password)?;
    let code = six_digits("totp_code", &request.totp_code)?;
    state.auth.disable_totp(&principal, password, &code, &origin).await?;
    Ok(Json(json!({ "success": true })))
}

#[derive(Deserialize)]
pub struct EmailCodesSetting {
    enabled: bool,
    password: String,
    /// Turning codes off needs a fresh one (from `POST /v1/auth/email-code`), or a TOTP code.
    email_code: Option<String>,
    totp_code: Option<String>,
}

pub async fn set_email_codes(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    ClientOrigin(origin): ClientOrigin,
    JsonBody(request): JsonBody<EmailCodesSetting>,
) -> Result<Json<Value>, ApiError> {
    let password = typed_password("password", request.password)?;
    let proof = second_factor(request.totp_code, None, request.email_code)?;
    state.auth.set_email_codes(&principal, request.enabled, password, proof, &origin).await?;
    Ok(Json(json!({ "success": true, "email_codes_enabled": request.enabled })))
}

/// `202` whatever the name: the answer never tells whether it exists or is locked.
pub async fn send_unlock_link(
    State(state): State<AppState>,
    JsonBody(request): JsonBody<UnlockRequest>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let identifier = one_identifier(request.email, request.username, request.phone)?;
    state.auth.send_unlock_link(identifier).await?;
    let message = "if this names an account whose sign-in is locked, an unlock link was sent to its email address";
    Ok((StatusCode::ACCEPTED, Json(json!({ "success": true, "message": message }))))
}

#[derive(Deserialize)]
pub struct UnlockRequest {
    email: Option<Email>,
    username: Option<Username>,
    phone: Option<Phone>,
}
