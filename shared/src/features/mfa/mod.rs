//! Second factors: TOTP with recovery codes, and one-time sign-in codes sent by email. (The
//! checks at sign-in and before sensitive changes are the kernel's `Proofs`.)

mod http;
mod service;

pub use http::{Api, routes};
pub use service::{SecondFactorError, SecondFactorService};
