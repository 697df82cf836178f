use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::service::{Credentials, Introspection, Registered, Registration, SessionError, SessionService};
use crate::domain::{Email, Phone, Username};
use crate::domain::{Role, UserId};
use crate::http::bodies::{Accepted, SessionsEnded, Success, TokenResponse, UserBody};
use crate::http::error::{ApiError, ErrorCode, taken};
use crate::http::extract::{Authenticated, ClientOrigin, JsonBody};
use crate::http::parse::{new_password, non_empty, one_identifier, second_factor, typed_password};
use crate::http::schemas::{NewPassword, SixDigits, Token, TypedPassword};
use crate::http::{Function, Route, Slice};

/// This slice's operations in the OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi(paths(register, login, refresh, logout, logout_all, jwks, introspect, send_unlock_link))]
pub struct Api;

/// Every route of this slice. Each function's builder names its own list instead, so that its
/// binary links only those handlers.
pub fn routes() -> Vec<Route<SessionService>> {
    [register_routes(), login_routes(), refresh_routes(), logout_routes(), tokens_routes(), unlock_routes()]
        .into_iter()
        .flatten()
        .collect()
}

pub fn register_routes() -> Vec<Route<SessionService>> {
    vec![Route::post(Function::Register, "/v1/auth/register", register)]
}

pub fn login_routes() -> Vec<Route<SessionService>> {
    vec![Route::post(Function::Login, "/v1/auth/login", login)]
}

pub fn refresh_routes() -> Vec<Route<SessionService>> {
    vec![Route::post(Function::Refresh, "/v1/auth/refresh", refresh)]
}

pub fn logout_routes() -> Vec<Route<SessionService>> {
    vec![
        Route::post(Function::Logout, "/v1/auth/logout", logout),
        Route::post(Function::Logout, "/v1/auth/logout-all", logout_all),
    ]
}

pub fn tokens_routes() -> Vec<Route<SessionService>> {
    vec![
        Route::get(Function::Tokens, "/.well-known/jwks.json", jwks),
        Route::post(Function::Tokens, "/v1/auth/introspect", introspect),
    ]
}

/// Served by the `email` function, beside the mailed codes and links.
pub fn unlock_routes() -> Vec<Route<SessionService>> {
    vec![Route::post(Function::Email, "/v1/auth/unlock", send_unlock_link)]
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

#[derive(Deserialize, ToSchema)]
pub struct RegisterRequest {
    email: Email,
    #[schema(value_type = NewPassword)]
    password: String,
    username: Option<Username>,
    phone: Option<Phone>,
}

/// What a registration answers: a signed-in session, or (where the deployment requires a
/// verified address first) the account and the note that a link was sent.
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
pub enum RegisterResponse {
    SignedIn(TokenResponse),
    VerificationRequired(VerificationRequired),
}

#[derive(Serialize, ToSchema)]
pub struct VerificationRequired {
    user: UserBody,
    verification_required: bool,
}

/// Creates an account with a password, and signs it in.
///
/// A taken email or phone number is `409` and counts as a failure of the client address.
#[utoipa::path(post, path = "/v1/auth/register", tag = "sessions", request_body = RegisterRequest,
    responses((status = 201, description = "The account was created.", body = RegisterResponse)))]
async fn register(
    State(sessions): State<Slice<SessionService>>,
    ClientOrigin(origin): ClientOrigin,
    JsonBody(request): JsonBody<RegisterRequest>,
) -> Result<(StatusCode, Json<RegisterResponse>), ApiError> {
    let password = new_password(sessions.config.password_policy, "password", request.password)?;
    let registration =
        Registration { email: request.email, password, username: request.username, phone: request.phone };
    let body = match sessions.register(registration, &origin).await? {
        Registered::SignedIn(pair) => RegisterResponse::SignedIn(pair.into()),
        Registered::VerificationRequired(user) => RegisterResponse::VerificationRequired(VerificationRequired {
            user: user.into(),
            verification_required: true,
        }),
    };
    Ok((StatusCode::CREATED, Json(body)))
}

/// Exactly one of `email`, `username` and `phone` names the account; at most one of
/// `totp_code`, `recovery_code` and `email_code` is its second factor.
#[derive(Deserialize, ToSchema)]
pub struct LoginRequest {
    email: Option<Email>,
    username: Option<Username>,
    phone: Option<Phone>,
    #[schema(value_type = TypedPassword)]
    password: String,
    #[schema(value_type = Option<SixDigits>)]
    totp_code: Option<String>,
    /// One of the codes shown when TOTP was set up (each works once).
    #[schema(value_type = Option<String>, min_length = 1, max_length = 64, pattern = r"\S")]
    recovery_code: Option<String>,
    #[schema(value_type = Option<SixDigits>)]
    email_code: Option<String>,
    /// The token of the link `POST /v1/auth/unlock` mailed: signs in past a lockout.
    #[schema(value_type = Option<Token>)]
    unlock_token: Option<String>,
}

/// Signs in with a password (and the account's second factor, if it has one).
///
/// A wrong password, an unknown name and a disabled account answer the same `401`. When the
/// account has a second factor and none was given, the `401` names the methods in
/// `details[0].methods` (`reason: MFA_REQUIRED`).
#[utoipa::path(post, path = "/v1/auth/login", tag = "sessions", request_body = LoginRequest,
    responses((status = 200, description = "Signed in.", body = TokenResponse)))]
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

#[derive(Deserialize, ToSchema)]
pub struct RefreshTokenRequest {
    #[schema(value_type = Token)]
    refresh_token: String,
}

impl RefreshTokenRequest {
    fn token(&self) -> Result<&str, ApiError> {
        non_empty("refresh_token", &self.refresh_token)
    }
}

/// Rotates a refresh token: the one sent is spent, a new pair is answered.
///
/// Sending a token that was already rotated ends its whole session (theft is assumed).
#[utoipa::path(post, path = "/v1/auth/refresh", tag = "sessions", request_body = RefreshTokenRequest,
    responses((status = 200, description = "A new token pair.", body = TokenResponse)))]
async fn refresh(
    State(sessions): State<Slice<SessionService>>,
    JsonBody(request): JsonBody<RefreshTokenRequest>,
) -> Result<Json<TokenResponse>, ApiError> {
    Ok(Json(sessions.refresh(request.token()?).await?.into()))
}

/// Ends the session of a refresh token.
#[utoipa::path(post, path = "/v1/auth/logout", tag = "sessions", request_body = RefreshTokenRequest,
    responses((status = 200, description = "The session ended.", body = Success)))]
async fn logout(
    State(sessions): State<Slice<SessionService>>,
    JsonBody(request): JsonBody<RefreshTokenRequest>,
) -> Result<Json<Success>, ApiError> {
    sessions.logout(request.token()?).await?;
    Ok(Json(Success::DONE))
}

/// Ends every session of the caller, on every device.
#[utoipa::path(post, path = "/v1/auth/logout-all", tag = "sessions", security(("bearer" = [])),
    responses((status = 200, description = "Every session ended.", body = SessionsEnded)))]
async fn logout_all(
    State(sessions): State<Slice<SessionService>>,
    Authenticated(principal): Authenticated,
) -> Result<Json<SessionsEnded>, ApiError> {
    let ended = sessions.logout_all(&principal).await?;
    Ok(Json(SessionsEnded { success: true, sessions_ended: ended }))
}

#[derive(Deserialize, ToSchema)]
pub struct IntrospectRequest {
    /// Any string: what is not a live access token of this deployment is `active: false`.
    #[schema(max_length = 65536)]
    token: String,
}

/// RFC 7662: whether an access token is live, and its claims (with the role as stored now).
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
pub enum IntrospectResponse {
    Active(ActiveToken),
    Inactive(InactiveToken),
}

#[derive(Serialize, ToSchema)]
pub struct ActiveToken {
    active: bool,
    #[schema(value_type = String, pattern = "^Bearer$")]
    token_type: &'static str,
    iss: String,
    aud: String,
    #[schema(value_type = UserId)]
    sub: String,
    /// The session's id.
    sid: String,
    role: Role,
    iat: i64,
    exp: i64,
    jti: String,
}

/// Nothing else is told of a token that is not live.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InactiveToken {
    /// Always `false`.
    active: bool,
}

/// Tells whether an access token is live (RFC 7662).
///
/// Any token that is not a live access token of this deployment (expired, revoked, forged or
/// not a token) is `{"active": false}`.
#[utoipa::path(post, path = "/v1/auth/introspect", tag = "sessions", request_body = IntrospectRequest,
    responses((status = 200, description = "The token's state.", body = IntrospectResponse)))]
async fn introspect(
    State(sessions): State<Slice<SessionService>>,
    JsonBody(request): JsonBody<IntrospectRequest>,
) -> Result<Json<IntrospectResponse>, ApiError> {
    let body = match sessions.introspect(request.token.trim()).await? {
        Some(Introspection { claims, holder }) => IntrospectResponse::Active(ActiveToken {
            active: true,
            token_type: "Bearer",
            iss: claims.iss,
            aud: claims.aud,
            sub: claims.sub,
            sid: claims.sid,
            role: holder.user.role,
            iat: claims.iat,
            exp: claims.exp,
            jti: claims.jti,
        }),
        None => IntrospectResponse::Inactive(InactiveToken { active: false }),
    };
    Ok(Json(body))
}

/// The public keys that verify access tokens (RFC 7517), cacheable for five minutes.
#[utoipa::path(get, path = "/.well-known/jwks.json", tag = "sessions",
    responses((status = 200, description = "The key set.", body = Jwks)))]
async fn jwks(State(sessions): State<Slice<SessionService>>) -> impl IntoResponse {
    // Verifiers may cache the keys briefly; rotation keeps retired keys published for longer.
    ([(header::CACHE_CONTROL, "public, max-age=300")], Json(sessions.jwks()))
}

/// The public keys of a JWKS.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct Jwks {
    keys: Vec<Jwk>,
}

/// An Ed25519 public key (RFC 8037).
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct Jwk {
    kty: String,
    crv: String,
    x: String,
    kid: String,
    #[schema(rename = "use")]
    use_: String,
    alg: String,
}

/// Exactly one of `email`, `username` and `phone` names the account.
#[derive(Deserialize, ToSchema)]
pub struct UnlockRequest {
    email: Option<Email>,
    username: Option<Username>,
    phone: Option<Phone>,
}

/// Mails an unlock link when the name's sign-in is locked out.
///
/// `202` whatever the name: the answer never tells whether it exists or is locked.
#[utoipa::path(post, path = "/v1/auth/unlock", tag = "sessions", request_body = UnlockRequest,
    responses((status = 202, description = "Taken.", body = Accepted)))]
async fn send_unlock_link(
    State(sessions): State<Slice<SessionService>>,
    JsonBody(request): JsonBody<UnlockRequest>,
) -> Result<(StatusCode, Json<Accepted>), ApiError> {
    let identifier = one_identifier(request.email, request.username, request.phone)?;
    sessions.send_unlock_link(identifier).await;
    let message = "if this names an account whose sign-in is locked, an unlock link was sent to its email address";
    Ok((StatusCode::ACCEPTED, Json(Accepted::new(message))))
}
