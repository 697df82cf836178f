//! The account lifecycle: email verification, password reset and change, and the
//! confirmation of a new address.

mod http;
mod service;

pub use http::{Api, routes};
pub use service::{AccountError, AccountService};
