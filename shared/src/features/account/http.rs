use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};

use super::service::{AccountError, AccountService};
use crate::domain::Email;
use crate::http::bodies::UserBody;
use crate::http::error::{ApiError, ErrorCode, taken};
use crate::http::extract::{Authenticated, ClientOrigin, JsonBody};
use crate::http::parse::{new_password, non_empty, typed_password};
use crate::http::{Function, Route, Slice};

pub fn routes() -> Vec<Route<AccountService>> {
    vec![
        Route::post(Function::Password, "/v1/auth/password/forgot", forgot_password),
        Route::post(Function::Password, "/v1/auth/password/reset", reset_password),
        Route::post(Function::Password, "/v1/auth/password/change", change_password),
        Route::post(Function::Email, "/v1/auth/email/verify", verify_email),
        Route::post(Function::Email, "/v1/auth/email/verify/resend", resend_verification),
        Route::post(Function::Users, "/v1/users/me/email/confirm", confirm_email_change),
    ]
}

impl From<AccountError> for ApiError {
    fn from(error: AccountError) -> Self {
        match error {
            AccountError::LinkNotFound => Self::of(ErrorCode::NotFound, &error),
            AccountError::EmailAlreadyVerified | AccountError::NoEmailAddress => {
                Self::of(ErrorCode::FailedPrecondition, &error)
            }
            AccountError::AlreadyExists(field) => taken(field, &error),
            AccountError::Proof(error) => error.into(),
            AccountError::Failure(error) => error.into(),
        }
    }
}

#[derive(Deserialize)]
pub struct ForgotPasswordRequest {
    email: Email,
}

/// `202` whatever the address: the answer never tells whether an account uses it.
async fn forgot_password(
    State(account): State<Slice<AccountService>>,
    JsonBody(request): JsonBody<ForgotPasswordRequest>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    account.forgot_password(request.email).await?;
    let message = "if an account uses this address, a reset link was sent to it";
    Ok((StatusCode::ACCEPTED, Json(json!({ "success": true, "message": message }))))
}

#[derive(Deserialize)]
pub struct ResetPasswordRequest {
    token: String,
    new_password: String,
}

async fn reset_password(
    State(account): State<Slice<AccountService>>,
    ClientOrigin(origin): ClientOrigin,
    JsonBody(request): JsonBody<ResetPasswordRequest>,
) -> Result<Json<Value>, ApiError> {
    let token = non_empty("token", &request.token)?;
    let password = new_password(account.config.password_policy, "new_password", request.new_password)?;
    account.reset_password(token, password, &origin).await?;
    Ok(Json(json!({ "success": true })))
}

#[derive(Deserialize)]
pub struct ChangePasswordRequest {
    current_password: String,
    new_password: String,
}

async fn change_password(
    State(account): State<Slice<AccountService>>,
    Authenticated(principal): Authenticated,
    ClientOrigin(origin): ClientOrigin,
    JsonBody(request): JsonBody<ChangePasswordRequest>,
) -> Result<Json<Value>, ApiError> {
    let current = typed_password("current_password", request.current_password)?;
    let password = new_password(account.config.password_policy, "new_password", request.new_password)?;
    let ended = account.change_password(&principal, current, password, &origin).await?;
    Ok(Json(json!({ "success": true, "sessions_ended": ended })))
}

#[derive(Deserialize)]
pub struct VerifyEmailRequest {
    token: String,
}

async fn verify_email(
    State(account): State<Slice<AccountService>>,
    ClientOrigin(origin): ClientOrigin,
    JsonBody(request): JsonBody<VerifyEmailRequest>,
) -> Result<Json<Value>, ApiError> {
    let user = account.verify_email(non_empty("token", &request.token)?, &origin).await?;
    Ok(Json(json!({ "success": true, "user": UserBody::from(user) })))
}

/// `POST /v1/users/me/email/confirm`: the link sent to a new address, used while signed in.
async fn confirm_email_change(
    State(account): State<Slice<AccountService>>,
    Authenticated(principal): Authenticated,
    ClientOrigin(origin): ClientOrigin,
    JsonBody(request): JsonBody<VerifyEmailRequest>,
) -> Result<Json<Value>, ApiError> {
    let user = account.confirm_email_change(&principal, non_empty("token", &request.token)?, &origin).await?;
    Ok(Json(json!({ "success": true, "user": UserBody::from(user) })))
}

async fn resend_verification(
    State(account): State<Slice<AccountService>>,
    Authenticated(principal): Authenticated,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    account.resend_verification(&principal).await?;
    Ok((StatusCode::ACCEPTED, Json(json!({ "success": true }))))
}
