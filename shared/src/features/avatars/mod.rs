//! Avatars: a presigned upload confirmed by the uploader, a direct upload, presigned views.

mod http;
mod service;

pub use http::{Api, routes};
pub use service::{AvatarError, AvatarService, AvatarUpload, URL_LIFETIME, discard};
