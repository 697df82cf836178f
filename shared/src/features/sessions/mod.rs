//! Sessions and tokens: registration, login (with lockout and unlock links), refresh-token
//! rotation with reuse detection, logout, introspection and the published keys.

mod http;
mod service;

pub use http::{Api, routes};
pub use service::{Credentials, Introspection, Registered, Registration, SessionError, SessionService};
