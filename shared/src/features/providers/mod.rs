//! Third-party sign-in: with a provider token (mobile and SPA clients), with the redirect flow
//! (state, PKCE and a one-time exchange code), and explicit linking of provider accounts.

mod http;
mod service;

pub use http::{Api, routes};
pub use service::{CallbackError, CallbackOutcome, ProviderService, ProviderSignIn, SignInError};
