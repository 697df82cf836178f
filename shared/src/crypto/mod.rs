//! Passwords, opaque secrets and the access-token signing keys.

pub mod keys;
pub mod passwords;
pub mod secrets;
