//! Handlers: parse the request, call one service method, shape the response.

mod account;
pub mod avatars;
pub mod chat;
mod mfa;
pub mod oauth;
mod users;

pub use account::{
    change_password, confirm_email_change, forgot_password, resend_verification, reset_password, verify_email,
};
pub use mfa::{disable_totp, enable_totp, send_email_code, send_unlock_link, set_email_codes, verify_totp};
pub use users::{
    add_friend, administer_user, delete_me, delete_user, get_user, list_friends, list_users, remove_friend, update_me,
};

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::AppState;
use super::bodies::UserBody;
use super::error::{ApiError, ErrorCode};
use super::extract::{Authenticated, ClientOrigin, JsonBody};
use crate::domain::{Email, LoginIdentifier, Password, PasswordPolicy, Phone, Username};
use crate::service::{Credentials, Introspection, Registered, Registration, SecondFactor, TokenPair};

#[derive(Serialize)]
pub struct TokenResponse {
    user: UserBody,
    access_token: String,
    refresh_token: String,
    token_type: &'static str,
    expires_in: i64,
}

impl From<TokenPair> for TokenResponse {
    fn from(pair: TokenPair) -> Self {
        Self {
            user: pair.user.into(),
            access_token: pair.access_token,
            refresh_token: pair.refresh_token,
            token_type: "Bearer",
            expires_in: pair.expires_in,
        }
    }
}

#[derive(Deserialize)]
pub struct RegisterRequest {
    email: Email,
    password: String,
    username: Option<Username>,
    phone: Option<Phone>,
}

pub async fn register(
    State(state): State<AppState>,
    ClientOrigin(origin): ClientOrigin,
    JsonBody(request): JsonBody<RegisterRequest>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let password = new_password(&state, "password", request.password)?;
    let registration =
        Registration { email: request.email, password, username: request.username, phone: request.phone };
    let body = match state.auth.register(registration, &origin).await? {
        Registered::SignedIn(pair) => json!(TokenResponse::from(pair)),
        Registered::VerificationRequired(user) => {
            json!({ "user": UserBody::from(user), "verification_required": true })
        }
    };
    Ok((StatusCode::CREATED, Json(body)))
}

/// A body that only re-enters the password, to confirm a sensitive change.
#[derive(Deserialize)]
pub struct PasswordConfirmation {
    password: String,
}

/// A new password, checked against the policy.
fn new_password(state: &AppState, field: &str, raw: String) -> Result<Password, ApiError> {
    Password::new(raw, state.password_policy).map_err(|error| ApiError::invalid_field(field, error))
}

/// A password typed to prove identity: not policy-checked (it may predate the policy), but
/// never empty and never longer than any password could be.
fn typed_password(field: &str, raw: String) -> Result<String, ApiError> {
    if raw.is_empty() {
        return Err(ApiError::invalid_field(field, "must not be empty"));
    }
    if raw.chars().count() > PasswordPolicy::MAX_CHARS {
        return Err(ApiError::invalid_field(
            field,
            format!("must be at most {} characters", PasswordPolicy::MAX_CHARS),
        ));
    }
    Ok(raw)
}

/// A token field, trimmed, that must not be blank.
pub(super) fn non_empty<'a>(field: &str, raw: &'a str) -> Result<&'a str, ApiError> {
    match raw.trim() {
        "" => Err(ApiError::invalid_field(field, "must not be empty")),
        token => Ok(token),
    }
}

/// A six-digit code (TOTP or email), as typed: spaces are dropped.
fn six_digits(field: &str, raw: &str) -> Result<String, ApiError> {
    let code: String = raw.chars().filter(|c| !c.is_whitespace()).collect();
    if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ApiError::invalid_field(field, "must be 6 digits"));
    }
    Ok(code)
}

/// Exactly one of an email, a username or a phone number names the account.
fn one_identifier(
    email: Option<Email>,
    username: Option<Username>,
    phone: Option<Phone>,
) -> Result<LoginIdentifier, ApiError> {
    match (email, username, phone) {
        (Some(email), None, None) => Ok(LoginIdentifier::Email(email)),
        (None, Some(username), None) => Ok(LoginIdentifier::Username(username)),
        (None, None, Some(phone)) => Ok(LoginIdentifier::Phone(phone)),
        _ => Err(ApiError::new(ErrorCode::InvalidArgument, "give exactly one of email, username or phone")),
    }
}

/// The second factor of a sign-in request (login, provider sign-in, exchange): at most one
/// of `totp_code`, `recovery_code` and `email_code`. (Listed in each request rather than
/// flattened, so that a wrong type is reported with its field name.)
fn second_factor(
    totp_code: Option<String>,
    recovery_code: Option<String>,
    email_code: Option<String>,
) -> Result<Option<SecondFactor>, ApiError> {
    Ok(match (totp_code, recovery_code, email_code) {
        (None, None, None) => None,
        (Some(code), None, None) => Some(SecondFactor::Totp(six_digits("totp_code", &code)?)),
        (None, Some(code), None) if !code.trim().is_empty() && code.len() <= 64 => {
            Some(SecondFactor::RecoveryCode(code))
        }
        (None, Some(_), None) => return Err(ApiError::invalid_field("recovery_code", "must be a recovery code")),
        (None, None, Some(code)) => Some(SecondFactor::EmailCode(six_digits("email_code", &code)?)),
        _ => {
            return Err(ApiError::new(
                ErrorCode::InvalidArgument,
                "give at most one of totp_code, recovery_code or email_code",
            ));
        }
    })
}

#[derive(Deserialize)]
pub struct LoginRequest {
    email: Option<Email>,
    username: Option<Username>,
    phone: Option<Phone>,
    password: String,
    totp_code: Option<String>,
    recovery_code: Option<String>,
    email_code: Option<String>,
    /// The token of the link `POST /v1/auth/unlock` mailed: signs in past a lockout.
    unlock_token: Option<String>,
}

pub async fn login(
    State(state): State<AppState>,
    ClientOrigin(origin): ClientOrigin,
    JsonBody(request): JsonBody<LoginRequest>,
) -> Result<Json<TokenResponse>, ApiError> {
    let identifier = one_identifier(request.email, request.username, request.phone)?;
    let password = typed_password("password", request.password)?;
    let second_factor = second_factor(request.totp_code, request.recovery_code, request.email_code)?;
    let unlock_token =
        request.unlock_token.map(|token| non_empty("unlock_token", &token).map(str::to_owned)).transpose()?;
    let pair = state.auth.login(Credentials { identifier, password, second_factor, unlock_token }, &origin).await?;
    Ok(Json(pair.into()))
}

#[derive(Deserialize)]
pub struct RefreshTokenRequest {
    refresh_token: String,
}

impl RefreshTokenRequest {
    fn token(&self) -> Result<&str, ApiError> {
        non_empty("refresh_token", &self.refresh_token)
    }
}

pub async fn refresh(
    State(state): State<AppState>,
    JsonBody(request): JsonBody<RefreshTokenRequest>,
) -> Result<Json<TokenResponse>, ApiError> {
    Ok(Json(state.auth.refresh(request.token()?).await?.into()))
}

pub async fn logout(
    State(state): State<AppState>,
    JsonBody(request): JsonBody<RefreshTokenRequest>,
) -> Result<Json<Value>, ApiError> {
    state.auth.logout(request.token()?).await?;
    Ok(Json(json!({ "success": true })))
}

pub async fn logout_all(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
) -> Result<Json<Value>, ApiError> {
    let ended = state.auth.logout_all(&principal).await?;
    Ok(Json(json!({ "success": true, "sessions_ended": ended })))
}

pub async fn me(Authenticated(principal): Authenticated) -> Json<UserBody> {
    Json(principal.user.into())
}

pub async fn status(Authenticated(principal): Authenticated) -> Json<Value> {
    Json(json!({
        "user": UserBody::from(principal.user),
        "totp_enabled": principal.totp_enabled,
        "email_codes_enabled": principal.email_codes_enabled,
    }))
}

#[derive(Deserialize)]
pub struct IntrospectRequest {
    token: String,
}

pub async fn introspect(
    State(state): State<AppState>,
    JsonBody(request): JsonBody<IntrospectRequest>,
) -> Result<Json<Value>, ApiError> {
    let body = match state.auth.introspect(request.token.trim()).await? {
        Some(Introspection { claims, holder }) => json!({
            "active": true,
            "token_type": "Bearer",
            "iss": claims.iss,
            "aud": claims.aud,
            "sub": claims.sub,
            "sid": claims.sid,
            "role": holder.user.role,
            "iat": claims.iat,
            "exp": claims.exp,
            "jti": claims.jti,
        }),
        None => json!({ "active": false }),
    };
    Ok(Json(body))
}

pub async fn jwks(State(state): State<AppState>) -> impl IntoResponse {
    // Verifiers may cache the keys briefly; rotation keeps retired keys published for longer.
    ([(header::CACHE_CONTROL, "public, max-age=300")], Json(state.auth.jwks()))
}
