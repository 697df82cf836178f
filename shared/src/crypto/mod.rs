//! Passwords, opaque secrets, TOTP, secrets at rest and the access-token signing keys.

pub mod keys;
pub mod passwords;
pub mod sealing;
pub mod secrets;
pub mod totp;
