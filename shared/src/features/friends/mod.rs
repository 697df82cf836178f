//! Friends: mutual, made by one call, capped per account.

mod http;
mod service;

pub use http::{Api, routes};
pub use service::{FriendError, FriendService, Friendships};
