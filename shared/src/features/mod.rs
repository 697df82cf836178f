//! One slice per capability. Each has a service holding only the repositories and ports it
//! uses, an error enum in its own words, and an HTTP module with its handlers, request and
//! response types, routes and error mapping. What several share is in [`crate::kernel`].

pub mod account;
pub mod avatars;
pub mod chat;
pub mod directory;
pub mod friends;
pub mod mfa;
pub mod providers;
pub mod sessions;
