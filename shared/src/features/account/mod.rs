//! The account lifecycle: email verification, password reset and change, and the
//! confirmation of a new address.

mod http;
mod service;

pub use http::{Api, email_routes, password_routes, routes, users_routes};
pub use service::{AccountError, AccountService};
