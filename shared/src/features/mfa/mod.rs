//! Second factors: TOTP with recovery codes, and one-time sign-in codes sent by email. (The
//! checks at sign-in and before sensitive changes are the kernel's `Proofs`.)

mod http;
mod service;

pub use http::{Api, email_routes, routes, totp_routes};
pub use service::{SecondFactorError, SecondFactorService};
