use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use serde::Deserialize;
use serde_json::{Value, json};

use super::service::{Credentials, Introspection, Registered, Registration, SessionError, SessionService};
use crate::domain::{Email, Phone, Username};
use crate::http::bodies::{TokenResponse, UserBody};
use crate::http::error::{ApiError, ErrorCode, taken};
use crate::http::extract::{Authenticated, ClientOrigin, JsonBody};
use crate::http::parse::{new_password, non_empty, one_identifier, second_factor, typed_password};
use crate::http::{Function, Route, Slice};

pub fn routes() -> Vec<Route<SessionService>> {
    vec![
        Route::post(Function::Register, "/v1/auth/register", register),
        Route::post(Function::Login, "/v1/auth/login", login),
        Route::post(Function::Refresh, "/v1/auth/refresh", refresh),
        Route::post(Function::Logout, "/v1/auth/logout", logout),
        Route::post(Function::Logout, "/v1/auth/logout-all", logout_all),
        Route::get(Function::Tokens, "/.well-known/jwks.json", jwks),
        Route::post(Function::Tokens, "/v1/auth/introspect", introspect),
        Route::post(Function::Email, "/v1/auth/unlock", send_unlock_link),
    ]
}

impl From<SessionError> for ApiError {
    fn from(error: SessionError) -> Self {
        match error {
            SessionError::InvalidCredentials | SessionError::InvalidRefreshToken => {
                Self::unauthenticated(error.to_string())
            }
            SessionError::EmailNotVerified => Self::reason(ErrorCode::PermissionDenied, &error, "EMAIL_NOT_VERIFIED"),
            SessionError::AlreadyExists(field) => taken(field, &error),
            SessionError::Proof(error) => error.into(),
            SessionError::Failure(error) => error.into(),
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

async fn register(
    State(sessions): State<Slice<SessionService>>,
    ClientOrigin(origin): ClientOrigin,
    JsonBody(request): JsonBody<RegisterRequest>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let password = new_password(sessions.config.password_policy, "password", request.password)?;
    let registration =
        Registration { email: request.email, password, username: request.username, phone: request.phone };
    let body = match sessions.register(registration, &origin).await? {
        Registered::SignedIn(pair) => json!(TokenResponse::from(pair)),
        Registered::VerificationRequired(user) => {
            json!({ "user": UserBody::from(user), "verification_required": true })
        }
    };
    Ok((StatusCode::CREATED, Json(body)))
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

async fn login(
    State(sessions): State<Slice<SessionService>>,
    ClientOrigin(origin): ClientOrigin,
    JsonBody(request): JsonBody<LoginRequest>,
) -> Result<Json<TokenResponse>, ApiError> {
    let identifier = one_identifier(request.email, request.username, request.phone)?;
    let password = typed_password("password", request.password)?;
    let second_factor = second_factor(request.totp_code, request.recovery_code, request.email_code)?;
    let unlock_token =
        request.unlock_token.map(|token| non_empty("unlock_token", &token).map(str::to_owned)).transpose()?;
    let pair = sessions.login(Credentials { identifier, password, second_factor, unlock_token }, &origin).await?;
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

async fn refresh(
    State(sessions): State<Slice<SessionService>>,
    JsonBody(request): JsonBody<RefreshTokenRequest>,
) -> Result<Json<TokenResponse>, ApiError> {
    Ok(Json(sessions.refresh(request.token()?).await?.into()))
}

async fn logout(
    State(sessions): State<Slice<SessionService>>,
    JsonBody(request): JsonBody<RefreshTokenRequest>,
) -> Result<Json<Value>, ApiError> {
    sessions.logout(request.token()?).await?;
    Ok(Json(json!({ "success": true })))
}

async fn logout_all(
    State(sessions): State<Slice<SessionService>>,
    Authenticated(principal): Authenticated,
) -> Result<Json<Value>, ApiError> {
    let ended = sessions.logout_all(&principal).await?;
    Ok(Json(json!({ "success": true, "sessions_ended": ended })))
}

#[derive(Deserialize)]
pub struct IntrospectRequest {
    token: String,
}

async fn introspect(
    State(sessions): State<Slice<SessionService>>,
    JsonBody(request): JsonBody<IntrospectRequest>,
) -> Result<Json<Value>, ApiError> {
    let body = match sessions.introspect(request.token.trim()).await? {
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

async fn jwks(State(sessions): State<Slice<SessionService>>) -> impl IntoResponse {
    // Verifiers may cache the keys briefly; rotation keeps retired keys published for longer.
    ([(header::CACHE_CONTROL, "public, max-age=300")], Json(sessions.jwks()))
}

#[derive(Deserialize)]
pub struct UnlockRequest {
    email: Option<Email>,
    username: Option<Username>,
    phone: Option<Phone>,
}

/// `202` whatever the name: the answer never tells whether it exists or is locked.
async fn send_unlock_link(
    State(sessions): State<Slice<SessionService>>,
    JsonBody(request): JsonBody<UnlockRequest>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let identifier = one_identifier(request.email, request.username, request.phone)?;
    sessions.send_unlock_link(identifier).await;
    let message = "if this names an account whose sign-in is locked, an unlock link was sent to its email address";
    Ok((StatusCode::ACCEPTED, Json(json!({ "success": true, "message": message }))))
}
