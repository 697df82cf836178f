//! Profiles, the user directory (regex-searchable), roles, and account withdrawal and
//! deletion.

mod http;
mod service;

pub use http::{Api, routes};
pub use service::{
    AdminAction, AdminBootstrap, AdminChanges, DirectoryError, DirectoryService, Listed, Patch, ProfileChanges,
    UserPage, UserQuery,
};
