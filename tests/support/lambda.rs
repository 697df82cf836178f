//! The function binaries as Lambda runs them (`latchkey_local::emulator`): each test's own
//! table, signing-key secret and bucket in moto, and the template's parameters taken from the
//! test's settings, so the functions get what a deployed stack would give them.

use std::collections::BTreeMap;
use std::path::PathBuf;

use latchkey::config::Config;
use latchkey::crypto::keys::KeyMaterial;
use latchkey_local::emulator::{Emulator, Settings, provision};

use crate::{TestBucket, TestTable, aws_endpoint, aws_sdk_config};

/// Where the function binaries are; the test command builds them (`cargo build --bins`).
pub const FUNCTIONS_DIR_VARIABLE: &str = "LATCHKEY_TEST_FUNCTIONS_DIR";

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).parent().expect("the workspace").to_path_buf()
}

fn functions_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| repo_root().join("target"), PathBuf::from);
    let dir = std::env::var_os(FUNCTIONS_DIR_VARIABLE).map_or_else(|| target.join("debug"), PathBuf::from);
    assert!(
        dir.join("tokens").is_file() && dir.join("chat-ws").is_file(),
        "the function binaries are not in {}: run `cargo build --workspace --bins` (./scripts/test does), or \
         point {FUNCTIONS_DIR_VARIABLE} at them",
        dir.display()
    );
    dir
}

/// What a Lambda test server holds on to: the emulator, and the AWS resources it uses.
pub struct LambdaStack {
    pub emulator: Emulator,
    _bucket: TestBucket,
}

/// The template parameters that carry the settings a test may change.
fn parameters(config: &Config, public_url: &str) -> BTreeMap<String, String> {
    [
        ("PublicUrl", public_url.to_owned()),
        ("Issuer", config.issuer.clone()),
        ("Audience", config.audience.clone()),
        ("AccessTokenTtlSeconds", config.access_token_ttl_seconds.to_string()),
        ("RefreshTokenTtlSeconds", config.refresh_token_ttl_seconds.to_string()),
        ("MailFrom", config.mail_from.clone()),
        ("ProductName", config.product_name.clone()),
        ("AppUrl", config.app_url.clone()),
        ("RequireVerifiedEmail", config.require_verified_email.to_string()),
        ("RequireEmailCodes", config.require_email_codes.to_string()),
        ("DirectoryCacheSeconds", config.directory_cache_seconds.to_string()),
        ("MaxFriends", config.max_friends.to_string()),
        ("ChatRateLimit", config.chat_rate_limit.to_string()),
        ("AvatarMaxBytes", config.avatar_max_bytes.to_string()),
    ]
    .into_iter()
    .map(|(name, value)| (name.to_owned(), value))
    .collect()
}

/// Fails a test whose settings the functions would not get: the sign-in providers are
/// template parameters the test passes itself (`TestServer::on_lambda`).
fn assert_carried(config: &Config) {
    let defaults = Config::default();
    assert!(
        config.oauth_providers.is_empty() && config.oauth_redirect_uris == defaults.oauth_redirect_uris,
        "the Lambda backend takes sign-in providers as template parameters: use TestServer::on_lambda"
    );
}

/// Settings no template parameter carries (a deployment keeps their defaults: the tests hash
/// cheaply, the bench as deployed), given to every function; and path-style S3 addressing,
/// which moto on loopback needs.
fn test_environment(config: &Config) -> Vec<(String, String)> {
    let lockout = &config.lockout;
    [
        ("LATCHKEY_ARGON2_MEMORY_KIB", config.argon2.memory_kib.to_string()),
        ("LATCHKEY_ARGON2_ITERATIONS", config.argon2.iterations.to_string()),
        ("LATCHKEY_ARGON2_PARALLELISM", config.argon2.parallelism.to_string()),
        ("LATCHKEY_PASSWORD_MIN_LENGTH", config.password_policy.min_chars.to_string()),
        ("LATCHKEY_UNIFORM_RESPONSE_MS", config.uniform_response_ms.to_string()),
        ("LATCHKEY_LOCKOUT_FREE_FAILURES", lockout.account_free_failures.to_string()),
        ("LATCHKEY_LOCKOUT_MAX_FAILURES_PER_HOUR", lockout.account_max_failures_per_hour.to_string()),
        ("LATCHKEY_LOCKOUT_IP_FREE_FAILURES", lockout.ip_free_failures.to_string()),
        ("LATCHKEY_LOCKOUT_IP_MAX_FAILURES_PER_HOUR", lockout.ip_max_failures_per_hour.to_string()),
        ("LATCHKEY_S3_FORCE_PATH_STYLE", "true".to_owned()),
    ]
    .into_iter()
    .map(|(name, value)| (name.to_owned(), value))
    .collect()
}

/// Starts the emulator over `table` with `keys` in a fresh secret; `extra` parameters (the
/// sign-in providers, say) go over the ones taken from `config`.
pub async fn start(
    config: &Config,
    table: &TestTable,
    keys: &KeyMaterial,
    extra: &[(&str, String)],
) -> (String, LambdaStack) {
    assert_carried(config);
    let sdk = aws_sdk_config();
    let secret = format!("latchkey-test-{}", uuid::Uuid::new_v4());
    provision::signing_key_secret(&sdk, &secret, keys).await.expect("the signing-key secret");
    let bucket = TestBucket::create().await;
    let http = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind loopback");
    let websocket = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind loopback");
    let base = format!("http://{}", http.local_addr().unwrap());
    let mut parameters = parameters(config, &base);
    parameters.extend(extra.iter().map(|(name, value)| (name.to_string(), value.clone())));
    let resources =
        [("Table", table.name.clone()), ("SigningKeySecret", secret), ("AvatarBucket", bucket.name.clone())]
            .into_iter()
            .map(|(name, value)| (name.to_owned(), value))
            .collect();
    let emulator = Emulator::start(Settings {
        template: repo_root().join("template.yaml"),
        binary_dir: functions_dir(),
        parameters,
        resources,
        aws_endpoint: aws_endpoint(),
        extra_environment: test_environment(config),
        http_listener: http,
        websocket_listener: websocket,
        show_logs: std::env::var_os("LATCHKEY_TEST_FUNCTION_LOGS").is_some(),
    })
    .await
    .expect("the emulator starts");
    (base, LambdaStack { emulator, _bucket: bucket })
}
