//! Latchkey's end-to-end, contract and deployment tests: one binary, a module per capability.
//! Each test starts what it needs (a server on a fresh store, a provider, a table in moto) and
//! drops it after; `support` (the `latchkey-tests` library) holds what they share.

mod account;
mod api;
mod avatars;
mod bad_input;
mod chat;
mod deployment;
mod lockout;
mod mail;
mod mfa;
mod oauth;
mod store_contract;
mod users;
