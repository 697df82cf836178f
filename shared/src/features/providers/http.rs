use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::service::{CallbackOutcome, ProviderService, ProviderSignIn, SignInError};
use crate::domain::ProviderName;
use crate::http::bodies::{IdentityBody, TokenResponse};
use crate::http::error::{ApiError, ErrorCode, taken};
use crate::http::extract::{Authenticated, ClientOrigin, JsonBody, PathParam, QueryParams};
use crate::http::parse::{non_empty, second_factor, typed_password};
use crate::http::schemas::{SixDigits, Token, TypedPassword};
use crate::http::{Function, Route, Slice};
use crate::kernel::Failure;
use crate::oauth::ProviderToken;

/// This slice's operations in the OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi(paths(exchange, sign_in, authorize, callback, list_identities, link_identity, unlink_identity))]
pub struct Api;

pub fn routes() -> Vec<Route<ProviderService>> {
    vec![
        Route::post(Function::OAuth, "/v1/auth/oauth/exchange", exchange),
        Route::post(Function::OAuth, "/v1/auth/oauth/{provider}", sign_in),
        Route::get(Function::OAuth, "/v1/auth/oauth/{provider}/authorize", authorize),
        Route::get(Function::OAuth, "/v1/auth/oauth/{provider}/callback", callback),
        Route::get(Function::OAuth, "/v1/users/me/identities", list_identities),
        Route::post(Function::OAuth, "/v1/users/me/identities/{provider}", link_identity),
        Route::delete(Function::OAuth, "/v1/users/me/identities/{provider}", unlink_identity),
    ]
}

impl From<SignInError> for ApiError {
    fn from(error: SignInError) -> Self {
        use ErrorCode::*;
        match error {
            SignInError::NoSuchProvider | SignInError::NoSuchIdentity => Self::of(NotFound, &error),
            SignInError::ProviderRejected(_) => Self::reason(Unauthenticated, &error, "INVALID_PROVIDER_TOKEN"),
            SignInError::ProviderUnsupported(_) => Self::reason(InvalidArgument, &error, "UNSUPPORTED_BY_PROVIDER"),
            SignInError::ProviderUnavailable { ref provider, ref detail } => {
                tracing::error!(%provider, %detail, "a sign-in provider is unavailable");
                Self::reason(Unavailable, &error, "PROVIDER_UNAVAILABLE")
            }
            SignInError::LinkRequired => Self::reason(AlreadyExists, &error, "ACCOUNT_EXISTS_LINK_REQUIRED"),
            SignInError::RedirectUriNotAllowed => Self::invalid_field("redirect_uri", "is not an allowed redirect URI"),
            SignInError::InvalidState => Self::reason(InvalidArgument, &error, "INVALID_STATE"),
            SignInError::InvalidGrant => Self::reason(InvalidArgument, &error, "INVALID_GRANT"),
            SignInError::LastSignInMethod => Self::reason(FailedPrecondition, &error, "LAST_SIGN_IN_METHOD"),
            SignInError::UnverifiedAddressCannotLink | SignInError::OtherIdentityLinked => {
                Self::of(FailedPrecondition, &error)
            }
            SignInError::InvalidCredentials => Self::unauthenticated(error.to_string()),
            SignInError::EmailNotVerified => Self::reason(PermissionDenied, &error, "EMAIL_NOT_VERIFIED"),
            SignInError::AlreadyExists(field) => taken(field, &error),
            SignInError::Proof(error) => error.into(),
            SignInError::Failure(error) => error.into(),
        }
    }
}

/// A `{provider}` path segment: a name that cannot be configured is simply not found.
fn provider(raw: &str) -> Result<ProviderName, ApiError> {
    ProviderName::parse(raw).map_err(|_| SignInError::NoSuchProvider.into())
}

/// A provider token as a client sends it: exactly one of `id_token` and `access_token`, and
/// with an ID token the nonce the client put in its request, checked against the token's.
fn provider_token(
    id_token: Option<String>,
    access_token: Option<String>,
    nonce: Option<String>,
) -> Result<ProviderToken, ApiError> {
    match (id_token, access_token, nonce) {
        (Some(token), None, nonce) => Ok(ProviderToken::IdToken {
            token: non_empty("id_token", &token)?.to_owned(),
            nonce: nonce.map(|nonce| non_empty("nonce", &nonce).map(str::to_owned)).transpose()?,
        }),
        (None, Some(token), None) => Ok(ProviderToken::AccessToken(non_empty("access_token", &token)?.to_owned())),
        (None, Some(_), Some(_)) => Err(ApiError::invalid_field("nonce", "goes with an id_token only")),
        _ => Err(ApiError::new(ErrorCode::InvalidArgument, "give exactly one of id_token or access_token")),
    }
}

/// Exactly one of `id_token` (OpenID providers, with the `nonce` the client put in its
/// request, if any) and `access_token` (OAuth-only providers); at most one second factor.
#[derive(Deserialize, ToSchema)]
pub struct ProviderSignInRequest {
    #[schema(value_type = Option<Token>)]
    id_token: Option<String>,
    #[schema(value_type = Option<Token>)]
    access_token: Option<String>,
    #[schema(value_type = Option<Token>)]
    nonce: Option<String>,
    #[schema(value_type = Option<SixDigits>)]
    totp_code: Option<String>,
    #[schema(value_type = Option<String>, min_length = 1, max_length = 64, pattern = r"\S")]
    recovery_code: Option<String>,
    #[schema(value_type = Option<SixDigits>)]
    email_code: Option<String>,
}

/// `201` when the sign-in created the account, `200` otherwise.
fn signed_in(sign_in: ProviderSignIn) -> (StatusCode, Json<TokenResponse>) {
    let status = if sign_in.created { StatusCode::CREATED } else { StatusCode::OK };
    (status, Json(sign_in.tokens.into()))
}

/// Signs in with a provider token; creates the account on a first sign-in.
///
/// An address a provider shares that belongs to an account the identity is not linked to is
/// `409` (`ACCOUNT_EXISTS_LINK_REQUIRED`): sign in to that account and link the provider.
#[utoipa::path(post, path = "/v1/auth/oauth/{provider}", tag = "oauth",
    params(("provider" = ProviderName, Path, description = "A configured provider.")),
    request_body = ProviderSignInRequest,
    responses(
        (status = 200, description = "Signed in.", body = TokenResponse),
        (status = 201, description = "Signed in to an account the sign-in created.", body = TokenResponse),
    ))]
async fn sign_in(
    State(providers): State<Slice<ProviderService>>,
    PathParam(name): PathParam<String>,
    ClientOrigin(origin): ClientOrigin,
    JsonBody(request): JsonBody<ProviderSignInRequest>,
) -> Result<(StatusCode, Json<TokenResponse>), ApiError> {
    let provider = provider(&name)?;
    let token = provider_token(request.id_token, request.access_token, request.nonce)?;
    let second_factor = second_factor(request.totp_code, request.recovery_code, request.email_code)?;
    Ok(signed_in(providers.sign_in_with_provider(&provider, token, second_factor, &origin).await?))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuthorizeQuery {
    /// One of the deployment's `LATCHKEY_OAUTH_REDIRECT_URIS`.
    redirect_uri: String,
    /// The app's own CSRF state, returned to it with the exchange code. Required: an app that
    /// does not check it can be handed a sign-in it never started (login CSRF).
    #[param(min_length = 1, max_length = 512)]
    state: String,
}

/// Begins the redirect flow: sends the browser to the provider.
#[utoipa::path(get, path = "/v1/auth/oauth/{provider}/authorize", tag = "oauth",
    params(("provider" = ProviderName, Path, description = "A configured provider."), AuthorizeQuery),
    responses((status = 302, description = "To the provider's authorization page (`Location`).")))]
async fn authorize(
    State(providers): State<Slice<ProviderService>>,
    PathParam(name): PathParam<String>,
    headers: HeaderMap,
    QueryParams(query): QueryParams<AuthorizeQuery>,
) -> Result<Response, ApiError> {
    let provider = provider(&name)?;
    if query.state.is_empty() || query.state.len() > 512 {
        return Err(ApiError::invalid_field("state", "must be 1 to 512 characters"));
    }
    let callback_url = format!("{}/v1/auth/oauth/{provider}/callback", public_url(&providers, &headers)?);
    let location = providers.begin_authorization(&provider, &query.redirect_uri, query.state, callback_url).await?;
    Ok(found(&location))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    /// Set by the provider when the user declined (RFC 6749 4.1.2.1).
    error: Option<String>,
}

/// Where the provider sends the browser back: on to the app's `redirect_uri`, with a one-time
/// exchange `code` (or an `error`) and the app's `state`.
#[utoipa::path(get, path = "/v1/auth/oauth/{provider}/callback", tag = "oauth",
    params(("provider" = ProviderName, Path, description = "A configured provider."), CallbackQuery),
    responses((status = 302, description = "To the app's redirect URI (`Location`).")))]
async fn callback(
    State(providers): State<Slice<ProviderService>>,
    PathParam(name): PathParam<String>,
    QueryParams(query): QueryParams<CallbackQuery>,
) -> Result<Response, ApiError> {
    let provider = provider(&name)?;
    let code = query.code.as_deref().filter(|code| !code.is_empty() && query.error.is_none());
    let outcome = providers.finish_authorization(&provider, query.state.as_deref(), code).await?;
    Ok(found(&app_redirect(outcome)?))
}

/// At most one second factor (the account's, when it has one).
#[derive(Deserialize, ToSchema)]
pub struct ExchangeRequest {
    /// The exchange code the callback handed the app (valid two minutes, once).
    #[schema(value_type = Token)]
    code: String,
    #[schema(value_type = Option<SixDigits>)]
    totp_code: Option<String>,
    #[schema(value_type = Option<String>, min_length = 1, max_length = 64, pattern = r"\S")]
    recovery_code: Option<String>,
    #[schema(value_type = Option<SixDigits>)]
    email_code: Option<String>,
}

/// Trades an exchange code from the redirect flow for tokens.
#[utoipa::path(post, path = "/v1/auth/oauth/exchange", tag = "oauth", request_body = ExchangeRequest,
    responses(
        (status = 200, description = "Signed in.", body = TokenResponse),
        (status = 201, description = "Signed in to an account the sign-in created.", body = TokenResponse),
    ))]
async fn exchange(
    State(providers): State<Slice<ProviderService>>,
    ClientOrigin(origin): ClientOrigin,
    JsonBody(request): JsonBody<ExchangeRequest>,
) -> Result<(StatusCode, Json<TokenResponse>), ApiError> {
    let code = non_empty("code", &request.code)?;
    let second_factor = second_factor(request.totp_code, request.recovery_code, request.email_code)?;
    Ok(signed_in(providers.exchange_sign_in_code(code, second_factor, &origin).await?))
}

#[derive(Serialize, ToSchema)]
pub struct IdentityList {
    identities: Vec<IdentityBody>,
    /// Whether the account also has a password.
    has_password: bool,
}

/// The caller's linked provider accounts.
#[utoipa::path(get, path = "/v1/users/me/identities", tag = "oauth", security(("bearer" = [])),
    responses((status = 200, description = "The identities.", body = IdentityList)))]
async fn list_identities(
    State(providers): State<Slice<ProviderService>>,
    Authenticated(principal): Authenticated,
) -> Result<Json<IdentityList>, ApiError> {
    let (identities, has_password) = providers.identities(&principal).await?;
    let identities = identities.into_iter().map(IdentityBody::from).collect();
    Ok(Json(IdentityList { identities, has_password }))
}

/// Exactly one of `id_token` and `access_token`.
#[derive(Deserialize, ToSchema)]
pub struct LinkRequest {
    #[schema(value_type = Option<Token>)]
    id_token: Option<String>,
    #[schema(value_type = Option<Token>)]
    access_token: Option<String>,
    #[schema(value_type = Option<Token>)]
    nonce: Option<String>,
    /// Required when the account has a password.
    #[schema(value_type = Option<TypedPassword>)]
    current_password: Option<String>,
}

/// Links a provider account to the caller's (the password, or a login in the last ten
/// minutes, and a verified address).
#[utoipa::path(post, path = "/v1/users/me/identities/{provider}", tag = "oauth", security(("bearer" = [])),
    params(("provider" = ProviderName, Path, description = "A configured provider.")), request_body = LinkRequest,
    responses(
        (status = 201, description = "Linked.", body = IdentityBody),
        (status = 200, description = "It was linked already.", body = IdentityBody),
    ))]
async fn link_identity(
    State(providers): State<Slice<ProviderService>>,
    PathParam(name): PathParam<String>,
    Authenticated(principal): Authenticated,
    ClientOrigin(origin): ClientOrigin,
    JsonBody(request): JsonBody<LinkRequest>,
) -> Result<(StatusCode, Json<IdentityBody>), ApiError> {
    let provider = provider(&name)?;
    let password = request.current_password.map(|raw| typed_password("current_password", raw)).transpose()?;
    let token = provider_token(request.id_token, request.access_token, request.nonce)?;
    let (identity, new) = providers.link_identity(&principal, &provider, token, password, &origin).await?;
    Ok((if new { StatusCode::CREATED } else { StatusCode::OK }, Json(identity.into())))
}

/// Unlinks a provider account, unless it is the account's last way to sign in.
#[utoipa::path(delete, path = "/v1/users/me/identities/{provider}", tag = "oauth", security(("bearer" = [])),
    params(("provider" = ProviderName, Path, description = "A configured provider.")),
    responses((status = 204, description = "Unlinked.")))]
async fn unlink_identity(
    State(providers): State<Slice<ProviderService>>,
    PathParam(name): PathParam<String>,
    Authenticated(principal): Authenticated,
) -> Result<StatusCode, ApiError> {
    providers.unlink_identity(&principal, &provider(&name)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Where clients reach this API: `LATCHKEY_PUBLIC_URL`, else (on API Gateway) the request's
/// host over HTTPS.
fn public_url(providers: &ProviderService, headers: &HeaderMap) -> Result<String, ApiError> {
    if let Some(url) = providers.public_url() {
        return Ok(url.clone());
    }
    let host = headers.get(header::HOST).and_then(|host| host.to_str().ok()).unwrap_or_default();
    let plausible = !host.is_empty() && host.bytes().all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b));
    match plausible {
        true => Ok(format!("https://{host}")),
        false => Err(ApiError::new(ErrorCode::InvalidArgument, "the Host header is missing or malformed")),
    }
}

/// The app's redirect URI with the exchange code (or the error) and the app's state.
fn app_redirect(outcome: CallbackOutcome) -> Result<String, ApiError> {
    let mut url = reqwest::Url::parse(&outcome.redirect_uri)
        .map_err(|_| ApiError::from(Failure::Internal("a configured redirect URI is not a URL".into())))?;
    {
        let mut query = url.query_pairs_mut();
        match &outcome.result {
            Ok(code) => query.append_pair("code", code),
            Err(error) => query.append_pair("error", error.code()),
        };
        query.append_pair("state", &outcome.app_state);
    }
    Ok(url.into())
}

/// A `302 Found` that no cache keeps (it carries one-time values).
fn found(location: &str) -> Response {
    let mut response = StatusCode::FOUND.into_response();
    if let Ok(value) = HeaderValue::from_str(location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}
