//! HTTP edge: routes grouped the way they are deployed (one Lambda function per group).
//!
//! The route table is data, so one list builds the router, feeds the local server and is
//! checked against `template.yaml` and `openapi.yaml` by the tests.

pub mod bodies;
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

    /// This function's routes. A Lambda binary names its own `routes::<name>()` instead, so
    /// that it links its handlers only.
    pub fn routes(self) -> Vec<Route> {
        match self {
            Self::Register => routes::register(),
            Self::Login => routes::login(),
            Self::Refresh => routes::refresh(),
            Self::Logout => routes::logout(),
            Self::Users => routes::users(),
            Self::Tokens => routes::tokens(),
            Self::Totp => routes::totp(),
            Self::Password => routes::password(),
            Self::Email => routes::email(),
            Self::Friends => routes::friends(),
            Self::Avatar => routes::avatar(),
            Self::OAuth => routes::oauth(),
            Self::Chat => routes::chat(),
        }
    }
}

/// Each function's routes: the one table that `template.yaml`, `openapi.yaml` and `events/` are
/// checked against.
pub mod routes {
    use super::*;

    /// The routes of the `register` function.
    pub fn register() -> Vec<Route> {
        vec![Route::post("/v1/auth/register", handlers::register)]
    }

    /// The routes of the `login` function.
    pub fn login() -> Vec<Route> {
        vec![Route::post("/v1/auth/login", handlers::login)]
    }

    /// The routes of the `refresh` function.
    pub fn refresh() -> Vec<Route> {
        vec![Route::post("/v1/auth/refresh", handlers::refresh)]
    }

    /// The routes of the `logout` function.
    pub fn logout() -> Vec<Route> {
        vec![Route::post("/v1/auth/logout", handlers::logout), Route::post("/v1/auth/logout-all", handlers::logout_all)]
    }

    /// The routes of the `users` function.
    pub fn users() -> Vec<Route> {
        vec![
            Route::get("/v1/users/me", handlers::me),
            Route::patch("/v1/users/me", handlers::update_me),
            Route::delete("/v1/users/me", handlers::delete_me),
            Route::post("/v1/users/me/email/confirm", handlers::confirm_email_change),
            Route::get("/v1/auth/status", handlers::status),
            Route::get("/v1/users", handlers::list_users),
            Route::get("/v1/users/{id}", handlers::get_user),
            Route::patch("/v1/users/{id}", handlers::administer_user),
            Route::delete("/v1/users/{id}", handlers::delete_user),
        ]
    }

    /// The routes of the `tokens` function.
    pub fn tokens() -> Vec<Route> {
        vec![
            Route::get("/.well-known/jwks.json", handlers::jwks),
            Route::post("/v1/auth/introspect", handlers::introspect),
        ]
    }

    /// The routes of the `totp` function.
    pub fn totp() -> Vec<Route> {
        vec![
            Route::post("/v1/auth/totp/enable", handlers::enable_totp),
            Route::post("/v1/auth/totp/verify", handlers::verify_totp),
            Route::post("/v1/auth/totp/disable", handlers::disable_totp),
        ]
    }

    /// The routes of the `password` function.
    pub fn password() -> Vec<Route> {
        vec![
            Route::post("/v1/auth/password/forgot", handlers::forgot_password),
            Route::post("/v1/auth/password/reset", handlers::reset_password),
            Route::post("/v1/auth/password/change", handlers::change_password),
        ]
    }

    /// The routes of the `email` function.
    pub fn email() -> Vec<Route> {
        vec![
            Route::post("/v1/auth/email-code", handlers::send_email_code),
            Route::post("/v1/auth/unlock", handlers::send_unlock_link),
            Route::put("/v1/users/me/mfa/email", handlers::set_email_codes),
            Route::post("/v1/auth/email/verify", handlers::verify_email),
            Route::post("/v1/auth/email/verify/resend", handlers::resend_verification),
        ]
    }

    /// The routes of the `friends` function.
    pub fn friends() -> Vec<Route> {
        vec![
            Route::get("/v1/users/me/friends", handlers::list_friends),
            Route::put("/v1/users/me/friends/{username}", handlers::add_friend),
            Route::delete("/v1/users/me/friends/{username}", handlers::remove_friend),
        ]
    }

    /// The routes of the `avatar` function.
    pub fn avatar() -> Vec<Route> {
        vec![
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
        ]
    }

    /// The routes of the `oauth` function.
    pub fn oauth() -> Vec<Route> {
        vec![
            Route::post("/v1/auth/oauth/exchange", handlers::oauth::exchange),
            Route::post("/v1/auth/oauth/{provider}", handlers::oauth::sign_in),
            Route::get("/v1/auth/oauth/{provider}/authorize", handlers::oauth::authorize),
            Route::get("/v1/auth/oauth/{provider}/callback", handlers::oauth::callback),
            Route::get("/v1/users/me/identities", handlers::oauth::list_identities),
            Route::post("/v1/users/me/identities/{provider}", handlers::oauth::link_identity),
            Route::delete("/v1/users/me/identities/{provider}", handlers::oauth::unlink_identity),
        ]
    }

    /// The routes of the `chat` function.
    pub fn chat() -> Vec<Route> {
        vec![
            Route::post("/v1/conversations", handlers::chat::start),
            Route::get("/v1/conversations", handlers::chat::list),
            Route::get("/v1/conversations/{id}", handlers::chat::messages),
            Route::post("/v1/chat/ticket", handlers::chat::ticket),
        ]
    }
}

/// The router for some functions' routes (the local server serves them all).
pub fn router(functions: &[Function], state: AppState) -> Router {
    router_of(functions.iter().flat_map(|function| function.routes()), state)
}

/// The router for `routes`, with JSON errors for unknown routes and methods, the body limit,
/// and request logging.
pub fn router_of(routes: impl IntoIterator<Item = Route>, state: AppState) -> Router {
    let mut router = Router::new();
    for route in routes {
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
