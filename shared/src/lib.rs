//! Latchkey: a serverless authentication and user service.
//!
//! Layers, from the edge inwards:
//! - [`http`]: the edge every slice shares: the route table and the functions, extractors,
//!   error bodies and the local server;
//! - [`features`]: one slice per capability (sessions, second factors, account lifecycle,
//!   directory, friends, avatars, sign-in providers, chat), each with its service, its errors
//!   and its handlers;
//! - [`kernel`]: what several slices share (the caller, sessions, proofs, notices, the throttle);
//! - [`domain`]: values valid by construction (`Email`, `Password`, ...) and the user model;
//! - [`repo`]: typed records over [`store`], the item-store contract with a DynamoDB and an
//!   embedded (redb) implementation;
//! - [`crypto`]: argon2id, opaque secrets, TOTP, sealing of secrets at rest, Ed25519 token keys;
//! - [`mail`]: the mail port with its SES and outbox adapters, and the message templates;
//! - [`objects`]: the object store port (avatars) with its S3 and local-directory adapters;
//! - [`oauth`]: third-party sign-in providers (ID tokens against JWKS, access tokens, PKCE).
//!
//! [`functions`] says which slices each Lambda function serves; [`openapi`] generates the
//! contract; [`app`] wires the local server;
//! [`lambda`] runs one function on AWS Lambda.

#[cfg(feature = "embedded")]
pub mod app;
pub mod config;
pub mod crypto;
pub mod domain;
pub mod features;
pub mod functions;
pub mod http;
pub mod kernel;
#[cfg(feature = "aws")]
pub mod lambda;
pub mod mail;
pub mod oauth;
pub mod objects;
pub mod openapi;
#[cfg(unix)]
pub mod private_files;
pub mod repo;
pub mod store;
