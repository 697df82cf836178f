//! Domain services: what Latchkey does, with no knowledge of HTTP or of the storage backend.

mod auth;

pub use auth::{AuthError, AuthService, Credentials, Introspection, Principal, Registration, TokenPair};
