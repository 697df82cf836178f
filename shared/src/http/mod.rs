//! HTTP edge: routes grouped the way they are deployed (one Lambda function per group).
//!
//! The route table is data, so one list builds the router, feeds the local server and is
//! checked against `template.yaml` and `openapi.yaml` by the tests.

pub mod error;
pub mod extract;
mod handlers;
pub mod logging;
pub mod objects;
#[cfg(feature = "embedded")]
pub mod server;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::handler::Handler;
use axum::http::Method;
use axum::routing::{self, MethodRouter};

use crate::domain::PasswordPolicy;
use crate::service::AuthService;
use error::{ApiError, ErrorCode};

/// What every handler can reach: the services, built once per process.
#[derive(Clone)]
pub struct AppState {
    pub auth: Arc<AuthService>,
    pub password_policy: PasswordPolicy,
    pub avatar_max_bytes: u64,
}

/// One deployable endpoint group: a Lambda function on AWS, a set of routes locally.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Function {
    Register,
    Login,
    Refresh,
    Logout,
    Users,
    Tokens,
    Totp,
    Password,
    Email,
    Friends,
    Avatar,
    OAuth,
    Chat,
}

pub struct Route {
    pub method: Method,
    /// In the `{param}` syntax shared by axum, API Gateway and OpenAPI.
    pub path: &'static str,
    handler: MethodRouter<AppState>,
}

impl Route {
    fn get<H: Handler<T, AppState>, T: 'static>(path: &'static str, handler: H) -> Self {
        Self { method: Method::GET, path, handler: routing::get(handler) }
    }

    fn post<H: Handler<T, AppState>, T: 'static>(path: &'static str, handler: H) -> Self {
        Self { method: Method::POST, path, handler: routing::post(handler) }
    }

    fn put<H: Handler<T, AppState>, T: 'static>(path: &'static str, handler: H) -> Self {
        Self { method: Method::PUT, path, handler: routing::put(handler) }
    }

    fn patch<H: Handler<T, AppState>, T: 'static>(path: &'static str, handler: H) -> Self {
        Self { method: Method::PATCH, path, handler: routing::patch(handler) }
    }

    fn delete<H: Handler<T, AppState>, T: 'static>(path: &'static str, handler: H) -> Self {
        Self { method: Method::DELETE, path, handler: routing::delete(handler) }
    }
}

impl Function {
    pub const ALL: [Function; 13] = [
        Self::Register,
        Self::Login,
        Self::Refresh,
        Self::Logout,
        Self::Users,
        Self::Tokens,
        Self::Totp,
        Self::Password,
        Self::Email,
        Self::Friends,
        Self::Avatar,
        Self::OAuth,
        Self::Chat,
    ];

    /// The crate under `functions/` and the function's name in `template.yaml`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Register => "register",
            Self::Login => "login",
            Self::Refresh => "refresh",
            Self::Logout => "logout",
            Self::Users => "users",
            Self::Tokens => "tokens",
            Self::Totp => "totp",
            Self::Password => "password",
            Self::Email => "email",
            Self::Friends => "friends",
            Self::Avatar => "avatar",
            Self::OAuth => "oauth",
            Self::Chat => "chat",
        }
    }

    pub fn routes(self) -> Vec<Route> {
        match self {
            Self::Register => vec![Route::post("/v1/auth/register", handlers::register)],
            Self::Login => vec![Route::post("/v1/auth/login", handlers::login)],
            Self::Refresh => vec![Route::post("/v1/auth/refresh", handlers::refresh)],
            Self::Logout => vec![
                Route::post("/v1/auth/logout", handlers::logout),
                Route::post("/v1/auth/logout-all", handlers::logout_all),
            ],
            Self::Users => vec![
                Route::get("/v1/users/me", handlers::me),
                Route::patch("/v1/users/me", handlers::update_me),
                Route::delete("/v1/users/me", handlers::delete_me),
                Route::post("/v1/users/me/email/confirm", handlers::confirm_email_change),
                Route::get("/v1/auth/status", handlers::status),
                Route::get("/v1/users", handlers::list_users),
                Route::get("/v1/users/{id}", handlers::get_user),
                Route::patch("/v1/users/{id}", handlers::administer_user),
                Route::delete("/v1/users/{id}", handlers::delete_user),
            ],
            Self::Tokens => vec![
                Route::get("/.well-known/jwks.json", handlers::jwks),
                Route::post("/v1/auth/introspect", handlers::introspect),
            ],
            Self::Totp => vec![
                Route::post("/v1/auth/totp/enable", handlers::enable_totp),
                Route::post("/v1/auth/totp/verify", handlers::verify_totp),
                Route::post("/v1/auth/totp/disable", handlers::disable_totp),
            ],
            Self::Password => vec![
                Route::post("/v1/auth/password/forgot", handlers::forgot_password),
                Route::post("/v1/auth/password/reset", handlers::reset_password),
                Route::post("/v1/auth/password/change", handlers::change_password),
            ],
            Self::Email => vec![
                Route::post("/v1/auth/email-code", handlers::send_email_code),
                Route::post("/v1/auth/unlock", handlers::send_unlock_code),
                Route::put("/v1/users/me/mfa/email", handlers::set_email_codes),
                Route::post("/v1/auth/email/verify", handlers::verify_email),
                Route::post("/v1/auth/email/verify/resend", handlers::resend_verification),
            ],
            Self::Friends => vec![
                Route::get("/v1/users/me/friends", handlers::list_friends),
                Route::put("/v1/users/me/friends/{username}", handlers::add_friend),
                Route::delete("/v1/users/me/friends/{username}", handlers::remove_friend),
            ],
            Self::Avatar => vec![
                Route::post("/v1/avatar/upload-url", handlers::avatars::upload_url),
                Route::post("/v1/avatar/confirm", handlers::avatars::confirm),
                Route {
                    method: Method::PUT,
                    path: "/v1/avatar",
                    // The one route whose body is not small JSON.
                    handler: routing::put(handlers::avatars::upload)
                        .layer(DefaultBodyLimit::max(handlers::avatars::DIRECT_UPLOAD_MAX_BYTES as usize + 1)),
                },
                Route::delete("/v1/avatar", handlers::avatars::remove),
                Route::get("/v1/users/{id}/avatar", handlers::avatars::view),
            ],
            Self::OAuth => vec![
                Route::post("/v1/auth/oauth/exchange", handlers::oauth::exchange),
                Route::post("/v1/auth/oauth/{provider}", handlers::oauth::sign_in),
                Route::get("/v1/auth/oauth/{provider}/authorize", handlers::oauth::authorize),
                Route::get("/v1/auth/oauth/{provider}/callback", handlers::oauth::callback),
                Route::get("/v1/users/me/identities", handlers::oauth::list_identities),
                Route::post("/v1/users/me/identities/{provider}", handlers::oauth::link_identity),
                Route::delete("/v1/users/me/identities/{provider}", handlers::oauth::unlink_identity),
            ],
            Self::Chat => vec![
                Route::post("/v1/conversations", handlers::chat::start),
                Route::get("/v1/conversations", handlers::chat::list),
                Route::get("/v1/conversations/{id}", handlers::chat::messages),
                Route::post("/v1/chat/ticket", handlers::chat::ticket),
            ],
        }
    }
}

/// The router for some functions' routes, with JSON errors for unknown routes and methods,
/// the body limit, and request logging.
pub fn router(functions: &[Function], state: AppState) -> Router {
    let mut router = Router::new();
    for route in functions.iter().flat_map(|function| function.routes()) {
        router = router.route(route.path, route.handler);
    }
    router
        .fallback(|| async { ApiError::new(ErrorCode::NotFound, "no such route") })
        .method_not_allowed_fallback(|| async {
            ApiError::new(ErrorCode::MethodNotAllowed, "this route does not accept that method")
        })
        .layer(DefaultBodyLimit::max(extract::MAX_BODY_BYTES))
        .layer(axum::middleware::from_fn(logging::log_request))
        .with_state(state)
}
