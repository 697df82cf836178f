//! What the tests share, by concern: `server` (a Latchkey server on a loopback port over any
//! backend), `lambda` (the function binaries under the Lambda emulator), `aws` (moto), `stores`, `mail` (reading back what was sent), `client` (HTTP
//! client, replies, tokens) and `provider` (a sign-in provider on loopback). Each test starts
//! its own server on a fresh store and drops it after.

mod aws;
mod client;
mod contract;
pub mod lambda;
mod mail;
pub mod provider;
mod server;
mod stores;

pub use aws::{AWS_ENDPOINT_VARIABLE, TestBucket, TestTable, aws_endpoint, aws_sdk_config, s3_client};
pub use client::{PASSWORD, Reply, Tokens, http_client, http_client_builder};
pub use contract::{query_parameter_allows, schema_allows};
pub use mail::{Mailbox, ReceivedMail};
pub use server::TestServer;
pub use stores::{StoreGuard, fresh_store};

use latchkey::config::Config;
use latchkey::crypto::keys::KeyMaterial;
use latchkey::crypto::passwords::Argon2Settings;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Embedded,
    DynamoDb,
    /// The function binaries under the Lambda emulator, over DynamoDB, SES and S3 in moto.
    Lambda,
}

/// Settings for tests: cheap argon2 so hundreds of registrations stay fast, and a short
/// uniform response time for the mail-sending routes.
pub fn test_config() -> Config {
    Config {
        argon2: Argon2Settings { memory_kib: 256, iterations: 1, parallelism: 1 },
        uniform_response_ms: 100,
        // Tests list users right after changing them.
        directory_cache_seconds: 0,
        ..Config::default()
    }
}

/// An address no other test uses: SES mail in moto is shared by every test.
pub fn unique_email(name: &str) -> String {
    format!("{name}-{}@example.com", &uuid::Uuid::new_v4().simple().to_string()[..12])
}

/// Fresh key material (as the local server makes it on first start).
pub fn fresh_keys() -> KeyMaterial {
    let dir = tempfile::tempdir().expect("temp dir");
    KeyMaterial::load_or_create_file(&dir.path().join("key.json")).expect("key material")
}

/// Runs each named async test function once per backend, as `embedded::name` and `dynamodb::name`.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod embedded {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() { super::$name($crate::Backend::Embedded).await })*
        }
        mod dynamodb {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() { super::$name($crate::Backend::DynamoDb).await })*
        }
    };
}

/// As `on_both_backends!`, and once more as `lambda::name` over the function binaries.
#[macro_export]
macro_rules! on_every_backend {
    ($($name:ident),* $(,)?) => {
        $crate::on_both_backends!($($name),*);
        mod lambda {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() { super::$name($crate::Backend::Lambda).await })*
        }
    };
}
