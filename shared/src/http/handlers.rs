//! Handlers: parse the request, call one service method, shape the response.

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::AppState;
use super::error::{ApiError, ErrorCode};
use super::extract::{Authenticated, JsonBody};
use crate::domain::{Email, LoginIdentifier, Password, PasswordPolicy, Phone, User, Username};
use crate::service::{Credentials, Introspection, Registration, TokenPair};

#[derive(Serialize)]
pub struct TokenResponse {
    user: User,
    access_token: String,
    refresh_token: String,
    token_type: &'static str,
    expires_in: i64,
}

impl From<TokenPair> for TokenResponse {
    fn from(pair: TokenPair) -> Self {
        Self {
            user: pair.user,
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
    JsonBody(request): JsonBody<RegisterRequest>,
) -> Result<(StatusCode, Json<TokenResponse>), ApiError> {
    let password = Password::new(request.password, state.password_policy)
        .map_err(|error| ApiError::invalid_field("password", error))?;
    let registration =
        Registration { email: request.email, password, username: request.username, phone: request.phone };
    let pair = state.auth.register(registration).await?;
    Ok((StatusCode::CREATED, Json(pair.into())))
}

#[derive(Deserialize)]
pub struct LoginRequest {
    email: Option<Email>,
    username: Option<Username>,
    phone: Option<Phone>,
    password: String,
}

pub async fn login(
    State(state): State<AppState>,
    JsonBody(request): JsonBody<LoginRequest>,
) -> Result<Json<TokenResponse>, ApiError> {
    let identifier = match (request.email, request.username, request.phone) {
        (Some(email), None, None) => LoginIdentifier::Email(email),
        (None, Some(username), None) => LoginIdentifier::Username(username),
        (None, None, Some(phone)) => LoginIdentifier::Phone(phone),
        _ => {
            return Err(ApiError::new(ErrorCode::InvalidArgument, "give exactly one of email, username or phone"));
        }
    };
    if request.password.is_empty() {
        return Err(ApiError::invalid_field("password", "must not be empty"));
    }
    if request.password.chars().count() > PasswordPolicy::MAX_CHARS {
        return Err(ApiError::invalid_field(
            "password",
            format!("must be at most {} characters", PasswordPolicy::MAX_CHARS),
        ));
    }
    let pair = state.auth.login(Credentials { identifier, password: request.password }).await?;
    Ok(Json(pair.into()))
}

#[derive(Deserialize)]
pub struct RefreshTokenRequest {
    refresh_token: String,
}

impl RefreshTokenRequest {
    fn token(&self) -> Result<&str, ApiError> {
        match self.refresh_token.trim() {
            "" => Err(ApiError::invalid_field("refresh_token", "must not be empty")),
            token => Ok(token),
        }
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

pub async fn me(Authenticated(principal): Authenticated) -> Json<User> {
    Json(principal.user)
}

pub async fn status(Authenticated(principal): Authenticated) -> Json<Value> {
    // Second factors arrive with the MFA work; until then no account can have TOTP on.
    Json(json!({ "user": principal.user, "totp_enabled": false }))
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
