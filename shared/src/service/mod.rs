//! Domain services: what Latchkey does, with no knowledge of HTTP or of the storage backend.

mod account;
mod auth;
mod avatars;
mod chat;
mod friends;
mod mfa;
mod oauth;
mod throttle;
mod users;

pub use auth::{
    AuthError, AuthService, Credentials, Introspection, Origin, Principal, Registered, Registration, SecondFactor,
    TokenPair,
};
pub use avatars::{AvatarUpload, URL_LIFETIME};
pub use chat::{ConversationList, ConversationMessages, ConversationSummary, ConversationView};
pub use oauth::{CallbackError, CallbackOutcome, ProviderSignIn};
pub use users::{AdminBootstrap, AdminChanges, Listed, Patch, ProfileChanges, UserPage, UserQuery};
