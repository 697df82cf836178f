use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};

use super::service::{SecondFactorError, SecondFactorService};
use crate::domain::{Email, Username};
use crate::http::bodies::PasswordConfirmation;
use crate::http::error::{ApiError, ErrorCode};
use crate::http::extract::{Authenticated, ClientOrigin, JsonBody};
use crate::http::parse::{one_identifier, second_factor, six_digits, typed_password};
use crate::http::{Function, Route, Slice};

pub fn routes() -> Vec<Route<SecondFactorService>> {
    vec![
        Route::post(Function::Totp, "/v1/auth/totp/enable", enable_totp),
        Route::post(Function::Totp, "/v1/auth/totp/verify", verify_totp),
        Route::post(Function::Totp, "/v1/auth/totp/disable", disable_totp),
        Route::post(Function::Email, "/v1/auth/email-code", send_email_code),
        Route::put(Function::Email, "/v1/users/me/mfa/email", set_email_codes),
    ]
}

impl From<SecondFactorError> for ApiError {
    fn from(error: SecondFactorError) -> Self {
        match error {
            SecondFactorError::NoTotpSetupPending => {
                Self::new(ErrorCode::FailedPrecondition, "no TOTP setup is pending; call /v1/auth/totp/enable first")
            }
            SecondFactorError::TotpAlreadyEnabled
            | SecondFactorError::TotpNotEnabled
            | SecondFactorError::NoAddressForCodes => Self::of(ErrorCode::FailedPrecondition, &error),
            SecondFactorError::Proof(error) => error.into(),
            SecondFactorError::Failure(error) => error.into(),
        }
    }
}

#[derive(Deserialize)]
pub struct EmailCodeRequest {
    email: Option<Email>,
    username: Option<Username>,
}

/// `202` whatever the account: the answer never tells whether it exists.
async fn send_email_code(
    State(factors): State<Slice<SecondFactorService>>,
    JsonBody(request): JsonBody<EmailCodeRequest>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let identifier = one_identifier(request.email, request.username, None)?;
    factors.send_email_code(identifier).await?;
    let message = "if an account matches, a sign-in code was sent to its email address";
    Ok((StatusCode::ACCEPTED, Json(json!({ "success": true, "message": message }))))
}

async fn enable_totp(
    State(factors): State<Slice<SecondFactorService>>,
    Authenticated(principal): Authenticated,
    ClientOrigin(origin): ClientOrigin,
    JsonBody(request): JsonBody<PasswordConfirmation>,
) -> Result<Json<Value>, ApiError> {
    let password = typed_password("password", request.password)?;
    let enrollment = factors.begin_totp(&principal, password, &origin).await?;
    Ok(Json(json!({ "secret": enrollment.secret_base32, "url": enrollment.url, "qr_png": enrollment.qr_png })))
}

#[derive(Deserialize)]
pub struct TotpCode {
    totp_code: String,
}

async fn verify_totp(
    State(factors): State<Slice<SecondFactorService>>,
    Authenticated(principal): Authenticated,
    ClientOrigin(origin): ClientOrigin,
    JsonBody(request): JsonBody<TotpCode>,
) -> Result<Json<Value>, ApiError> {
    let code = six_digits("totp_code", &request.totp_code)?;
    let recovery_codes = factors.confirm_totp(&principal, &code, &origin).await?;
    Ok(Json(json!({ "success": true, "recovery_codes": recovery_codes })))
}

#[derive(Deserialize)]
pub struct DisableTotpRequest {
    password: String,
    totp_code: String,
}

async fn disable_totp(
    State(factors): State<Slice<SecondFactorService>>,
    Authenticated(principal): Authenticated,
    ClientOrigin(origin): ClientOrigin,
    JsonBody(request): JsonBody<DisableTotpRequest>,
) -> Result<Json<Value>, ApiError> {
    let password = typed_password("password", request.password)?;
    let code = six_digits("totp_code", &request.totp_code)?;
    factors.disable_totp(&principal, password, &code, &origin).await?;
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

async fn set_email_codes(
    State(factors): State<Slice<SecondFactorService>>,
    Authenticated(principal): Authenticated,
    ClientOrigin(origin): ClientOrigin,
    JsonBody(request): JsonBody<EmailCodesSetting>,
) -> Result<Json<Value>, ApiError> {
    let password = typed_password("password", request.password)?;
    let proof = second_factor(request.totp_code, None, request.email_code)?;
    factors.set_email_codes(&principal, request.enabled, password, proof, &origin).await?;
    Ok(Json(json!({ "success": true, "email_codes_enabled": request.enabled })))
}
