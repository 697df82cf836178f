use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::service::{AccountError, AccountService};
use crate::domain::Email;
use crate::http::bodies::{Accepted, SessionsEnded, Success, UserBody};
use crate::http::error::{ApiError, ErrorCode, taken};
use crate::http::extract::{Authenticated, ClientOrigin, JsonBody};
use crate::http::parse::{new_password, non_empty, typed_password};
use crate::http::schemas::{NewPassword, Token, TypedPassword};
use crate::http::{Function, Route, Slice};

/// This slice's operations in the OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi(paths(
    forgot_password,
    reset_password,
    change_password,
    verify_email,
    resend_verification,
    confirm_email_change
))]
pub struct Api;

/// Every route of this slice; each function's builder names its own list.
pub fn routes() -> Vec<Route<AccountService>> {
    [password_routes(), email_routes(), users_routes()].into_iter().flatten().collect()
}

pub fn password_routes() -> Vec<Route<AccountService>> {
    vec![
        Route::post(Function::Password, "/v1/auth/password/forgot", forgot_password),
        Route::post(Function::Password, "/v1/auth/password/reset", reset_password),
        Route::post(Function::Password, "/v1/auth/password/change", change_password),
    ]
}

pub fn email_routes() -> Vec<Route<AccountService>> {
    vec![
        Route::post(Function::Email, "/v1/auth/email/verify", verify_email),
        Route::post(Function::Email, "/v1/auth/email/verify/resend", resend_verification),
    ]
}

/// Served by the `users` function, beside the profile it changes.
pub fn users_routes() -> Vec<Route<AccountService>> {
    vec![Route::post(Function::Users, "/v1/users/me/email/confirm", confirm_email_change)]
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

#[derive(Deserialize, ToSchema)]
pub struct ForgotPasswordRequest {
    email: Email,
}

/// Mails a reset link (valid 30 minutes) if an active account uses the address.
///
/// `202` whatever the address: the answer never tells whether an account uses it.
#[utoipa::path(post, path = "/v1/auth/password/forgot", tag = "account", request_body = ForgotPasswordRequest,
    responses((status = 202, description = "Taken.", body = Accepted)))]
async fn forgot_password(
    State(account): State<Slice<AccountService>>,
    JsonBody(request): JsonBody<ForgotPasswordRequest>,
) -> Result<(StatusCode, Json<Accepted>), ApiError> {
    account.forgot_password(request.email).await?;
    let message = "if an account uses this address, a reset link was sent to it";
    Ok((StatusCode::ACCEPTED, Json(Accepted::new(message))))
}

#[derive(Deserialize, ToSchema)]
pub struct ResetPasswordRequest {
    /// The token of the mailed link.
    #[schema(value_type = Token)]
    token: String,
    #[schema(value_type = NewPassword)]
    new_password: String,
}

/// Sets a new password with a reset link; ends every session of the account.
#[utoipa::path(post, path = "/v1/auth/password/reset", tag = "account", request_body = ResetPasswordRequest,
    responses((status = 200, description = "The password is set.", body = Success)))]
async fn reset_password(
    State(account): State<Slice<AccountService>>,
    ClientOrigin(origin): ClientOrigin,
    JsonBody(request): JsonBody<ResetPasswordRequest>,
) -> Result<Json<Success>, ApiError> {
    let token = non_empty("token", &request.token)?;
    let password = new_password(account.config.password_policy, "new_password", request.new_password)?;
    account.reset_password(token, password, &origin).await?;
    Ok(Json(Success::DONE))
}

#[derive(Deserialize, ToSchema)]
pub struct ChangePasswordRequest {
    #[schema(value_type = TypedPassword)]
    current_password: String,
    #[schema(value_type = NewPassword)]
    new_password: String,
}

/// Changes the caller's password; ends every other session.
#[utoipa::path(post, path = "/v1/auth/password/change", tag = "account", security(("bearer" = [])),
    request_body = ChangePasswordRequest,
    responses((status = 200, description = "The password is changed.", body = SessionsEnded)))]
async fn change_password(
    State(account): State<Slice<AccountService>>,
    Authenticated(principal): Authenticated,
    ClientOrigin(origin): ClientOrigin,
    JsonBody(request): JsonBody<ChangePasswordRequest>,
) -> Result<Json<SessionsEnded>, ApiError> {
    let current = typed_password("current_password", request.current_password)?;
    let password = new_password(account.config.password_policy, "new_password", request.new_password)?;
    let ended = account.change_password(&principal, current, password, &origin).await?;
    Ok(Json(SessionsEnded { success: true, sessions_ended: ended }))
}

#[derive(Deserialize, ToSchema)]
pub struct LinkToken {
    /// The token of the mailed link.
    #[schema(value_type = Token)]
    token: String,
}

/// The account after a link was used.
#[derive(Serialize, ToSchema)]
pub struct LinkUsed {
    success: bool,
    user: UserBody,
}

/// Marks the address verified with the mailed link.
#[utoipa::path(post, path = "/v1/auth/email/verify", tag = "account", request_body = LinkToken,
    responses((status = 200, description = "The address is verified.", body = LinkUsed)))]
async fn verify_email(
    State(account): State<Slice<AccountService>>,
    ClientOrigin(origin): ClientOrigin,
    JsonBody(request): JsonBody<LinkToken>,
) -> Result<Json<LinkUsed>, ApiError> {
    let user = account.verify_email(non_empty("token", &request.token)?, &origin).await?;
    Ok(Json(LinkUsed { success: true, user: user.into() }))
}

/// Makes the pending address the account's, with the link mailed to it, while signed in.
#[utoipa::path(post, path = "/v1/users/me/email/confirm", tag = "account", security(("bearer" = [])),
    request_body = LinkToken,
    responses((status = 200, description = "The address is the account's.", body = LinkUsed)))]
async fn confirm_email_change(
    State(account): State<Slice<AccountService>>,
    Authenticated(principal): Authenticated,
    ClientOrigin(origin): ClientOrigin,
    JsonBody(request): JsonBody<LinkToken>,
) -> Result<Json<LinkUsed>, ApiError> {
    let user = account.confirm_email_change(&principal, non_empty("token", &request.token)?, &origin).await?;
    Ok(Json(LinkUsed { success: true, user: user.into() }))
}

/// Mails the caller a new verification link (at most one a minute).
#[utoipa::path(post, path = "/v1/auth/email/verify/resend", tag = "account", security(("bearer" = [])),
    responses((status = 202, description = "Sent.", body = Success)))]
async fn resend_verification(
    State(account): State<Slice<AccountService>>,
    Authenticated(principal): Authenticated,
) -> Result<(StatusCode, Json<Success>), ApiError> {
    account.resend_verification(&principal).await?;
    Ok((StatusCode::ACCEPTED, Json(Success::DONE)))
}
