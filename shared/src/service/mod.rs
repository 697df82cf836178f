//! Domain services: what Latchkey does, with no knowledge of HTTP or of the storage backend.

mod account;
mod auth;
mod mfa;
mod throttle;

pub use auth::{
    AuthError, AuthService, Credentials, Introspection, Origin, Principal, Registered, Registration, SecondFactor,
    TokenPair,
};
