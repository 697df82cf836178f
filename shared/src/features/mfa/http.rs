use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::service::{SecondFactorError, SecondFactorService};
use crate::domain::{Email, Username};
use crate::http::bodies::{Accepted, PasswordConfirmation, Success};
use crate::http::error::{ApiError, ErrorCode};
use crate::http::extract::{Authenticated, ClientOrigin, JsonBody};
use crate::http::parse::{one_identifier, second_factor, six_digits, typed_password};
use crate::http::schemas::{SixDigits, TypedPassword};
use crate::http::{Function, Route, Slice};

/// This slice's operations in the OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi(paths(enable_totp, verify_totp, disable_totp, send_email_code, set_email_codes))]
pub struct Api;

/// Every route of this slice; each function's builder names its own list.
pub fn routes() -> Vec<Route<SecondFactorService>> {
    [totp_routes(), email_routes()].into_iter().flatten().collect()
}

pub fn totp_routes() -> Vec<Route<SecondFactorService>> {
    vec![
        Route::post(Function::Totp, "/v1/auth/totp/enable", enable_totp),
        Route::post(Function::Totp, "/v1/auth/totp/verify", verify_totp),
        Route::post(Function::Totp, "/v1/auth/totp/disable", disable_totp),
    ]
}

pub fn email_routes() -> Vec<Route<SecondFactorService>> {
    vec![
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

/// Exactly one of `email` and `username` names the account.
#[derive(Deserialize, ToSchema)]
pub struct EmailCodeRequest {
    email: Option<Email>,
    username: Option<Username>,
}

/// Mails a sign-in code, if the account signs in with email codes.
///
/// `202` whatever the account: the answer never tells whether it exists. At most one code a
/// minute is sent; it is valid 10 minutes and takes five wrong guesses.
#[utoipa::path(post, path = "/v1/auth/email-code", tag = "mfa", request_body = EmailCodeRequest,
    responses((status = 202, description = "Taken.", body = Accepted)))]
async fn send_email_code(
    State(factors): State<Slice<SecondFactorService>>,
    JsonBody(request): JsonBody<EmailCodeRequest>,
) -> Result<(StatusCode, Json<Accepted>), ApiError> {
    let identifier = one_identifier(request.email, request.username, None)?;
    factors.send_email_code(identifier).await?;
    let message = "if an account matches, a sign-in code was sent to its email address";
    Ok((StatusCode::ACCEPTED, Json(Accepted::new(message))))
}

/// A TOTP secret to add to an authenticator app (inactive until verified).
#[derive(Serialize, ToSchema)]
pub struct TotpEnrollment {
    /// The secret in base32, to type in.
    secret: String,
    /// The `otpauth://` URL.
    url: String,
    /// The URL as a QR code: a PNG, base64-encoded.
    qr_png: String,
}

/// Begins TOTP setup: a fresh secret for the authenticator app.
#[utoipa::path(post, path = "/v1/auth/totp/enable", tag = "mfa", security(("bearer" = [])),
    request_body = PasswordConfirmation,
    responses((status = 200, description = "The secret; `/v1/auth/totp/verify` turns it on.", body = TotpEnrollment)))]
async fn enable_totp(
    State(factors): State<Slice<SecondFactorService>>,
    Authenticated(principal): Authenticated,
    ClientOrigin(origin): ClientOrigin,
    JsonBody(request): JsonBody<PasswordConfirmation>,
) -> Result<Json<TotpEnrollment>, ApiError> {
    let password = typed_password("password", request.password)?;
    let enrollment = factors.begin_totp(&principal, password, &origin).await?;
    Ok(Json(TotpEnrollment { secret: enrollment.secret_base32, url: enrollment.url, qr_png: enrollment.qr_png }))
}

#[derive(Deserialize, ToSchema)]
pub struct TotpCode {
    #[schema(value_type = SixDigits)]
    totp_code: String,
}

/// TOTP turned on, and the recovery codes (shown this once).
#[derive(Serialize, ToSchema)]
pub struct RecoveryCodes {
    success: bool,
    /// Ten single-use codes that stand in for a TOTP code.
    recovery_codes: Vec<String>,
}

/// Turns TOTP on with a code from the app; answers ten recovery codes.
#[utoipa::path(post, path = "/v1/auth/totp/verify", tag = "mfa", security(("bearer" = [])), request_body = TotpCode,
    responses((status = 200, description = "TOTP is on.", body = RecoveryCodes)))]
async fn verify_totp(
    State(factors): State<Slice<SecondFactorService>>,
    Authenticated(principal): Authenticated,
    ClientOrigin(origin): ClientOrigin,
    JsonBody(request): JsonBody<TotpCode>,
) -> Result<Json<RecoveryCodes>, ApiError> {
    let code = six_digits("totp_code", &request.totp_code)?;
    let recovery_codes = factors.confirm_totp(&principal, &code, &origin).await?;
    Ok(Json(RecoveryCodes { success: true, recovery_codes }))
}

#[derive(Deserialize, ToSchema)]
pub struct DisableTotpRequest {
    #[schema(value_type = TypedPassword)]
    password: String,
    #[schema(value_type = SixDigits)]
    totp_code: String,
}

/// Turns TOTP off (the password and a current code).
#[utoipa::path(post, path = "/v1/auth/totp/disable", tag = "mfa", security(("bearer" = [])),
    request_body = DisableTotpRequest, responses((status = 200, description = "TOTP is off.", body = Success)))]
async fn disable_totp(
    State(factors): State<Slice<SecondFactorService>>,
    Authenticated(principal): Authenticated,
    ClientOrigin(origin): ClientOrigin,
    JsonBody(request): JsonBody<DisableTotpRequest>,
) -> Result<Json<Success>, ApiError> {
    let password = typed_password("password", request.password)?;
    let code = six_digits("totp_code", &request.totp_code)?;
    factors.disable_totp(&principal, password, &code, &origin).await?;
    Ok(Json(Success::DONE))
}

/// At most one of `email_code` and `totp_code`; turning codes off needs one.
#[derive(Deserialize, ToSchema)]
pub struct EmailCodesSetting {
    enabled: bool,
    #[schema(value_type = TypedPassword)]
    password: String,
    /// Turning codes off needs a fresh one (from `POST /v1/auth/email-code`), or a TOTP code.
    #[schema(value_type = Option<SixDigits>)]
    email_code: Option<String>,
    #[schema(value_type = Option<SixDigits>)]
    totp_code: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct EmailCodesSet {
    success: bool,
    email_codes_enabled: bool,
}

/// Turns email codes at sign-in on or off for the caller.
#[utoipa::path(put, path = "/v1/users/me/mfa/email", tag = "mfa", security(("bearer" = [])),
    request_body = EmailCodesSetting, responses((status = 200, description = "The setting.", body = EmailCodesSet)))]
async fn set_email_codes(
    State(factors): State<Slice<SecondFactorService>>,
    Authenticated(principal): Authenticated,
    ClientOrigin(origin): ClientOrigin,
    JsonBody(request): JsonBody<EmailCodesSetting>,
) -> Result<Json<EmailCodesSet>, ApiError> {
    let password = typed_password("password", request.password)?;
    let proof = second_factor(request.totp_code, None, request.email_code)?;
    factors.set_email_codes(&principal, request.enabled, password, proof, &origin).await?;
    Ok(Json(EmailCodesSet { success: true, email_codes_enabled: request.enabled }))
}
