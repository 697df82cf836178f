//! Sessions and tokens: registration, login (with lockout and unlock links), refresh-token
//! rotation with reuse detection, logout, introspection and the published keys.

mod http;
mod service;

pub use http::{
    Api, login_routes, logout_routes, refresh_routes, register_routes, routes, tokens_routes, unlock_routes,
};
pub use service::{Credentials, Introspection, Registered, Registration, SessionError, SessionService};
