//! HTTP edge: routes grouped the way they are deployed (one Lambda function per group).
//!
//! Each slice's routes are data tagged with their function, so one table (`functions::table`)
//! builds the routers, feeds the local server and is checked against `template.yaml`,
//! `openapi.yaml` and `events/` by the tests.

pub mod bodies;
pub mod error;
pub mod extract;
pub mod logging;
pub mod objects;
pub mod parse;
pub mod schemas;
#[cfg(feature = "embedded")]
pub mod server;

use std::ops::Deref;
use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::handler::Handler;
use axum::http::Method;
use axum::routing::{self, MethodRouter};

use crate::config::Config;
use crate::kernel::{Kernel, Sessions};
use error::{ApiError, ErrorCode};

/// What a slice's handlers reach: its service (through `Deref`), the kernel's token checks for
/// `Authenticated`, and the settings the parsers need (password policy, size limits).
pub struct Slice<S> {
    pub service: Arc<S>,
    pub sessions: Arc<Sessions>,
    pub config: Arc<Config>,
}

impl<S> Slice<S> {
    pub fn new(service: S, kernel: &Kernel) -> Self {
        Self { service: Arc::new(service), sessions: Arc::clone(&kernel.sessions), config: Arc::clone(&kernel.config) }
    }
}

impl<S> Clone for Slice<S> {
    fn clone(&self) -> Self {
        Self {
            service: Arc::clone(&self.service),
            sessions: Arc::clone(&self.sessions),
            config: Arc::clone(&self.config),
        }
    }
}

impl<S> Deref for Slice<S> {
    type Target = S;

    fn deref(&self) -> &S {
        &self.service
    }
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

/// One route of a slice, tagged with the function that serves it on AWS.
pub struct Route<S> {
    pub function: Function,
    pub method: Method,
    /// In the `{param}` syntax shared by axum, API Gateway and OpenAPI.
    pub path: &'static str,
    handler: MethodRouter<Slice<S>>,
}

impl<S: Send + Sync + 'static> Route<S> {
    pub fn new(function: Function, method: Method, path: &'static str, handler: MethodRouter<Slice<S>>) -> Self {
        Self { function, method, path, handler }
    }

    pub fn get<H: Handler<T, Slice<S>>, T: 'static>(function: Function, path: &'static str, handler: H) -> Self {
        Self::new(function, Method::GET, path, routing::get(handler))
    }

    pub fn post<H: Handler<T, Slice<S>>, T: 'static>(function: Function, path: &'static str, handler: H) -> Self {
        Self::new(function, Method::POST, path, routing::post(handler))
    }

    pub fn put<H: Handler<T, Slice<S>>, T: 'static>(function: Function, path: &'static str, handler: H) -> Self {
        Self::new(function, Method::PUT, path, routing::put(handler))
    }

    pub fn patch<H: Handler<T, Slice<S>>, T: 'static>(function: Function, path: &'static str, handler: H) -> Self {
        Self::new(function, Method::PATCH, path, routing::patch(handler))
    }

    pub fn delete<H: Handler<T, Slice<S>>, T: 'static>(function: Function, path: &'static str, handler: H) -> Self {
        Self::new(function, Method::DELETE, path, routing::delete(handler))
    }
}

/// The router for `routes`, on their slice's state.
pub fn mount<S: Send + Sync + 'static>(routes: Vec<Route<S>>, state: Slice<S>) -> Router {
    let mut router = Router::new();
    for route in routes {
        router = router.route(route.path, route.handler);
    }
    router.with_state(state)
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
}

/// The finished router for some routes: JSON errors for unknown routes and methods, the body
/// limit, and request logging.
pub fn finish(routes: Router) -> Router {
    routes
        .fallback(|| async { ApiError::new(ErrorCode::NotFound, "no such route") })
        .method_not_allowed_fallback(|| async {
            ApiError::new(ErrorCode::MethodNotAllowed, "this route does not accept that method")
        })
        .layer(DefaultBodyLimit::max(extract::MAX_BODY_BYTES))
        .layer(axum::middleware::from_fn(logging::log_request))
}
