//! What the tests share: a Latchkey server on a loopback port over either backend, and an
//! HTTP client for it. Each test starts its own server on a fresh store and drops it after.

pub mod provider;

use std::sync::Arc;

use aws_sdk_dynamodb::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_dynamodb::types::{AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType};
use latchkey::chat::local::local_chat_routes;
use latchkey::config::Config;
use latchkey::crypto::keys::KeyMaterial;
use latchkey::crypto::passwords::Argon2Settings;
use latchkey::crypto::sealing::KeyedMac;
use latchkey::http::objects::local_object_routes;
use latchkey::http::server::ServerLimits;
use latchkey::http::{Function, router};
use latchkey::mail::Mailer;
use latchkey::mail::outbox::Outbox;
use latchkey::mail::ses::SesMailer;
use latchkey::objects::local::LocalObjects;
use latchkey::service::AuthService;
use latchkey::store::ItemStore;
use latchkey::store::dynamodb::DynamoStore;
use latchkey::store::embedded::EmbeddedStore;
use serde_json::{Value, json};

/// An HTTP client for the tests. reqwest is built without a TLS backend of its own: the
/// library's (aws-lc-rs) is installed first.
pub fn http_client() -> reqwest::Client {
    http_client_builder().build().expect("an HTTP client")
}

pub fn http_client_builder() -> reqwest::ClientBuilder {
    latchkey::oauth::install_tls_backend();
    reqwest::Client::builder()
}

/// Where the DynamoDB-speaking server (moto) listens; the test command sets it.
pub const AWS_ENDPOINT_VARIABLE: &str = "LATCHKEY_TEST_AWS_ENDPOINT";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Embedded,
    DynamoDb,
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

pub fn aws_endpoint() -> String {
    std::env::var(AWS_ENDPOINT_VARIABLE).unwrap_or_else(|_| {
        panic!(
            "{AWS_ENDPOINT_VARIABLE} is not set. Run the test command (`./scripts/test`), which installs and \
             starts moto's server, or start one yourself (`pip install 'moto[server]' && moto_server -p 5050`) \
             and export {AWS_ENDPOINT_VARIABLE}=http://127.0.0.1:5050"
        )
    })
}

/// SDK configuration for the local AWS-speaking server (static test credentials, loopback only).
pub fn aws_sdk_config() -> aws_config::SdkConfig {
    aws_config::SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .endpoint_url(aws_endpoint())
        .region(Region::new("us-east-1"))
        .credentials_provider(aws_sdk_dynamodb::config::SharedCredentialsProvider::new(Credentials::new(
            "test", "test", None, None, "tests",
        )))
        .build()
}

/// A fresh table named uniquely for one test, deleted when dropped.
pub struct TestTable {
    pub client: aws_sdk_dynamodb::Client,
    pub name: String,
}

impl TestTable {
    pub async fn create() -> Self {
        let client = aws_sdk_dynamodb::Client::new(&aws_sdk_config());
        let name = format!("latchkey-test-{}", uuid::Uuid::new_v4());
        let attribute = |name: &str| {
            AttributeDefinition::builder().attribute_name(name).attribute_type(ScalarAttributeType::S).build().unwrap()
        };
        let key = |name: &str, kind| KeySchemaElement::builder().attribute_name(name).key_type(kind).build().unwrap();
        client
            .create_table()
            .table_name(&name)
            .attribute_definitions(attribute("pk"))
            .attribute_definitions(attribute("sk"))
            .key_schema(key("pk", KeyType::Hash))
            .key_schema(key("sk", KeyType::Range))
            .billing_mode(BillingMode::PayPerRequest)
            .send()
            .await
            .unwrap_or_else(|error| {
                panic!(
                    "cannot create a table on {}: {}. Is moto's server running?",
                    aws_endpoint(),
                    aws_sdk_dynamodb::error::DisplayErrorContext(error)
                )
            });
        Self { client, name }
    }

    pub fn store(&self) -> DynamoStore {
        DynamoStore::new(self.client.clone(), self.name.clone())
    }
}

impl Drop for TestTable {
    fn drop(&mut self) {
        let (client, name) = (self.client.clone(), self.name.clone());
        // Drop cannot await; a short-lived runtime on its own thread deletes the table.
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            let _ = runtime.block_on(client.delete_table().table_name(name).send());
        })
        .join();
    }
}

/// A fresh S3 bucket in moto, emptied and deleted when dropped.
pub struct TestBucket {
    pub client: aws_sdk_s3::Client,
    pub name: String,
}

impl TestBucket {
    pub async fn create() -> Self {
        Self::create_on(s3_client(&aws_sdk_config())).await
    }

    pub async fn create_on(client: aws_sdk_s3::Client) -> Self {
        let name = format!("latchkey-test-{}", uuid::Uuid::new_v4());
        client.create_bucket().bucket(&name).send().await.unwrap_or_else(|error| {
            panic!("cannot create a bucket: {}", aws_sdk_s3::error::DisplayErrorContext(error))
        });
        Self { client, name }
    }

    pub fn objects(&self) -> latchkey::objects::s3::S3Objects {
        latchkey::objects::s3::S3Objects::new(self.client.clone(), self.name.clone())
    }
}

/// An S3 client for a local S3-speaking server: path-style addressing, since
/// `<bucket>.127.0.0.1` does not resolve.
pub fn s3_client(config: &aws_config::SdkConfig) -> aws_sdk_s3::Client {
    aws_sdk_s3::Client::from_conf(aws_sdk_s3::config::Builder::from(config).force_path_style(true).build())
}

impl Drop for TestBucket {
    fn drop(&mut self) {
        let (client, name) = (self.client.clone(), self.name.clone());
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            runtime.block_on(async {
                if let Ok(listing) = client.list_objects_v2().bucket(&name).send().await {
                    for object in listing.contents() {
                        let _ = client.delete_object().bucket(&name).key(object.key().unwrap_or_default()).send().await;
                    }
                }
                let _ = client.delete_bucket().bucket(&name).send().await;
            });
        })
        .join();
    }
}

/// A store of the given backend that lives as long as the returned guard.
pub async fn fresh_store(backend: Backend) -> (Arc<dyn ItemStore>, StoreGuard) {
    match backend {
        Backend::Embedded => {
            let dir = tempfile::tempdir().expect("temp dir");
            let store = EmbeddedStore::open(&dir.path().join("test.redb")).expect("open redb");
            (Arc::new(store), StoreGuard::Dir(dir))
        }
        Backend::DynamoDb => {
            let table = TestTable::create().await;
            (Arc::new(table.store()), StoreGuard::Table(table))
        }
    }
}

pub enum StoreGuard {
    Dir(tempfile::TempDir),
    Table(TestTable),
}

/// Fresh key material (as the local server makes it on first start).
pub fn fresh_keys() -> KeyMaterial {
    let dir = tempfile::tempdir().expect("temp dir");
    KeyMaterial::load_or_create_file(&dir.path().join("key.json")).expect("key material")
}

/// Where a test server's mail goes, and how a test reads it back.
pub enum Mailbox {
    /// The local adapter: `.eml` files in a temporary directory.
    Outbox(tempfile::TempDir),
    /// The SES adapter against moto, which records what it was asked to send.
    Ses,
}

/// One message as a test reads it: for the outbox the text part, for SES the HTML part
/// (the part moto records).
#[derive(Debug, Clone)]
pub struct ReceivedMail {
    pub subject: String,
    pub body: String,
}

impl ReceivedMail {
    /// The six-digit code in the message.
    pub fn code(&self) -> String {
        let pattern = regex::Regex::new(r"\b(\d{6})\b").unwrap();
        pattern.captures(&self.body).unwrap_or_else(|| panic!("no code in {:?}", self.body))[1].to_owned()
    }

    /// The token of the link in the message.
    pub fn link_token(&self) -> String {
        let pattern = regex::Regex::new(r"#token=([0-9a-f-]{36}\.[A-Za-z0-9_-]{43})").unwrap();
        pattern.captures(&self.body).unwrap_or_else(|| panic!("no link token in {:?}", self.body))[1].to_owned()
    }
}

impl Mailbox {
    pub async fn for_backend(backend: Backend, config: &Config) -> Self {
        match backend {
            Backend::Embedded => Self::Outbox(tempfile::tempdir().expect("temp dir")),
            Backend::DynamoDb => {
                // moto refuses mail from an address that is not a verified identity, as SES does.
                let client = aws_sdk_sesv2::Client::new(&aws_sdk_config());
                let _ = client.create_email_identity().email_identity(&config.mail_from).send().await;
                Self::Ses
            }
        }
    }

    fn mailer(&self, config: &Config) -> Arc<dyn Mailer> {
        let sender = AuthService::sender(config);
        match self {
            Self::Outbox(dir) => Arc::new(Outbox::new(dir.path(), sender).expect("outbox")),
            Self::Ses => Arc::new(SesMailer::new(aws_sdk_sesv2::Client::new(&aws_sdk_config()), &sender)),
        }
    }

    /// Every message sent to `to`, oldest first.
    pub async fn messages_to(&self, to: &str) -> Vec<ReceivedMail> {
        match self {
            Self::Outbox(dir) => {
                let mut files: Vec<_> = std::fs::read_dir(dir.path())
                    .expect("outbox")
                    .map(|entry| entry.unwrap().path())
                    .filter(|path| path.extension().is_some_and(|ext| ext == "eml"))
                    .collect();
                files.sort();
                files
                    .into_iter()
                    .filter_map(|path| {
                        let bytes = std::fs::read(&path).unwrap();
                        let message = mail_parser::MessageParser::default().parse(&bytes).expect("an RFC 5322 message");
                        let addressed = message.to()?.first()?.address()? == to;
                        addressed.then(|| ReceivedMail {
                            subject: message.subject().unwrap_or_default().to_owned(),
                            body: message.body_text(0).expect("a text part").into_owned(),
                        })
                    })
                    .collect()
            }
            Self::Ses => {
                // scripts/moto_server.py serves sent mail on its own; plain moto only in its
                // full data dump.
                let endpoint = aws_endpoint();
                let light = http_client().get(format!("{endpoint}/latchkey/ses-messages")).send().await.expect("moto");
                let data: Value = if light.status().is_success() {
                    light.json().await.expect("JSON")
                } else {
                    let dump =
                        http_client().get(format!("{endpoint}/moto-api/data.json")).send().await.expect("moto's data");
                    dump.json::<Value>().await.expect("moto's data is JSON")["ses"].take()
                };
                let mut found = Vec::new();
                collect_ses_messages(&data, to, &mut found);
                found
            }
        }
    }
}

/// Every object with a subject, a body and destinations is one SES message (moto's
/// `data.json` nests them under account and region).
fn collect_ses_messages(value: &Value, to: &str, found: &mut Vec<ReceivedMail>) {
    match value {
        Value::Object(object) if object.contains_key("subject") && object.contains_key("body") => {
            let addressed = object.get("destinations").is_some_and(|d| d.to_string().contains(&format!("\"{to}\"")));
            if addressed {
                found.push(ReceivedMail {
                    subject: object["subject"].as_str().unwrap_or_default().to_owned(),
                    body: object["body"].as_str().unwrap_or_default().to_owned(),
                });
            }
        }
        Value::Object(object) => object.values().for_each(|v| collect_ses_messages(v, to, found)),
        Value::Array(items) => items.iter().for_each(|v| collect_ses_messages(v, to, found)),
        _ => {}
    }
}

/// Every route served over real HTTP on a loopback port.
pub struct TestServer {
    pub base: String,
    pub client: reqwest::Client,
    /// The server's store, for tests that change records the API cannot change yet.
    pub store: Arc<dyn ItemStore>,
    pub mailbox: Mailbox,
    /// The server's key material, for tests that forge tokens it must refuse.
    pub keys: KeyMaterial,
    _store: StoreGuard,
    _objects: (tempfile::TempDir, Option<TestBucket>),
    server: tokio::task::JoinHandle<()>,
}

impl TestServer {
    pub async fn start(backend: Backend) -> Self {
        Self::start_with(backend, test_config()).await
    }

    /// A server on a fresh store of `backend`, mailing through that backend's adapter.
    pub async fn start_with(backend: Backend, config: Config) -> Self {
        let (store, guard) = fresh_store(backend).await;
        let mailbox = Mailbox::for_backend(backend, &config).await;
        Self::with_parts(store, guard, mailbox, config).await
    }

    /// A server on a given store, mailing to an outbox.
    pub async fn with_store(store: Arc<dyn ItemStore>, guard: StoreGuard, config: Config) -> Self {
        Self::with_parts(store, guard, Mailbox::for_backend(Backend::Embedded, &config).await, config).await
    }

    /// A server on a fresh embedded store with the given connection limits.
    pub async fn start_with_limits(limits: ServerLimits) -> Self {
        let config = test_config();
        let (store, guard) = fresh_store(Backend::Embedded).await;
        let mailbox = Mailbox::for_backend(Backend::Embedded, &config).await;
        Self::with_parts_and_limits(store, guard, mailbox, config, limits).await
    }

    async fn with_parts(store: Arc<dyn ItemStore>, guard: StoreGuard, mailbox: Mailbox, config: Config) -> Self {
        Self::with_parts_and_limits(store, guard, mailbox, config, ServerLimits::default()).await
    }

    async fn with_parts_and_limits(
        store: Arc<dyn ItemStore>,
        guard: StoreGuard,
        mailbox: Mailbox,
        mut config: Config,
        limits: ServerLimits,
    ) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind loopback");
        let base = format!("http://{}", listener.local_addr().unwrap());
        // As latchkey-local does: the providers' callback points back at this server.
        config.public_url.get_or_insert_with(|| base.clone());
        let mailer = mailbox.mailer(&config);
        let keys = fresh_keys();
        // The AWS backends keep avatars in S3 (moto); the embedded one in a local directory
        // whose signed URLs this server serves, as latchkey-local does.
        let objects_dir = tempfile::tempdir().expect("temp dir");
        let local = Arc::new(LocalObjects::new(objects_dir.path(), &base, KeyedMac::for_urls(&keys)).expect("objects"));
        let bucket = match mailbox {
            Mailbox::Ses => Some(TestBucket::create().await),
            Mailbox::Outbox(_) => None,
        };
        let objects: Arc<dyn latchkey::objects::ObjectStore> = match &bucket {
            Some(bucket) => Arc::new(bucket.objects()),
            None => local.clone(),
        };
        let max_object_bytes = config.avatar_max_bytes;
        let state = latchkey::app::state(config, Arc::clone(&store), &keys, mailer, Some(objects)).expect("state");
        // As latchkey-local does: chat over the local WebSocket route.
        let chat = local_chat_routes(state.clone(), Arc::default());
        let app = router(&Function::ALL, state).merge(local_object_routes(local, max_object_bytes)).merge(chat);
        let server = tokio::spawn(async move {
            latchkey::http::server::serve(listener, app, limits, std::future::pending()).await.expect("serve");
        });
        let _objects = (objects_dir, bucket);
        Self { base, client: http_client(), store, mailbox, keys, _store: guard, _objects, server }
    }

    /// An access token for `tokens`' user and session, correctly signed, that expired a
    /// minute ago.
    pub fn expired_access_token(&self, tokens: &Tokens) -> String {
        let config = test_config();
        let keys = latchkey::crypto::keys::SigningKeys::from_material(&self.keys, &config.issuer, &config.audience)
            .expect("keys");
        let claims: latchkey::crypto::keys::AccessClaims = {
            let payload = tokens.access.split('.').nth(1).expect("a JWT");
            let bytes = base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, payload).unwrap();
            serde_json::from_slice(&bytes).expect("claims")
        };
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        keys.sign(&latchkey::crypto::keys::AccessClaims { iat: now - 960, exp: now - 60, ..claims })
    }

    /// The latest message sent to `to`; panics when there is none.
    pub async fn last_mail_to(&self, to: &str) -> ReceivedMail {
        let messages = self.mailbox.messages_to(to).await;
        messages.last().cloned().unwrap_or_else(|| panic!("no mail was sent to {to}"))
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn post(&self, path: &str, body: Value) -> Reply {
        Reply::of(self.client.post(self.url(path)).json(&body).send().await.expect("request")).await
    }

    pub async fn post_raw(&self, path: &str, body: impl Into<reqwest::Body>) -> Reply {
        let request = self.client.post(self.url(path)).header("content-type", "application/json").body(body);
        Reply::of(request.send().await.expect("request")).await
    }

    pub async fn get(&self, path: &str, access_token: Option<&str>) -> Reply {
        let mut request = self.client.get(self.url(path));
        if let Some(token) = access_token {
            request = request.bearer_auth(token);
        }
        Reply::of(request.send().await.expect("request")).await
    }

    pub async fn post_authorized(&self, path: &str, access_token: &str, body: Value) -> Reply {
        let request = self.client.post(self.url(path)).bearer_auth(access_token).json(&body);
        Reply::of(request.send().await.expect("request")).await
    }

    pub async fn put_authorized(&self, path: &str, access_token: &str, body: Value) -> Reply {
        self.send_authorized(reqwest::Method::PUT, path, access_token, Some(body)).await
    }

    pub async fn patch_authorized(&self, path: &str, access_token: &str, body: Value) -> Reply {
        self.send_authorized(reqwest::Method::PATCH, path, access_token, Some(body)).await
    }

    pub async fn delete_authorized(&self, path: &str, access_token: &str, body: Option<Value>) -> Reply {
        self.send_authorized(reqwest::Method::DELETE, path, access_token, body).await
    }

    async fn send_authorized(&self, method: reqwest::Method, path: &str, token: &str, body: Option<Value>) -> Reply {
        let mut request = self.client.request(method, self.url(path)).bearer_auth(token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        Reply::of(request.send().await.expect("request")).await
    }

    /// Gives the account of `email` the admin role, as `latchkey-local admin grant` does.
    pub async fn make_admin(&self, email: &str) {
        let bootstrap = latchkey::service::AdminBootstrap::new(Arc::clone(&self.store), &test_config()).unwrap();
        bootstrap.grant(latchkey::domain::Email::parse(email).unwrap()).await.expect("grant admin");
    }

    /// Registers `email` with the standard test password; panics unless it succeeds.
    pub async fn register(&self, email: &str, username: Option<&str>) -> Tokens {
        let mut body = json!({ "email": email, "password": PASSWORD });
        if let Some(username) = username {
            body["username"] = json!(username);
        }
        let reply = self.post("/v1/auth/register", body).await;
        assert_eq!(reply.status, 201, "registration failed: {}", reply.body);
        Tokens::of(&reply)
    }

    pub async fn login(&self, email: &str) -> Tokens {
        let reply = self.post("/v1/auth/login", json!({ "email": email, "password": PASSWORD })).await;
        assert_eq!(reply.status, 200, "login failed: {}", reply.body);
        Tokens::of(&reply)
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.server.abort();
    }
}

pub const PASSWORD: &str = "correct horse battery staple";

#[derive(Debug, Clone)]
pub struct Tokens {
    pub access: String,
    pub refresh: String,
    pub user_id: String,
}

impl Tokens {
    pub fn of(reply: &Reply) -> Self {
        let text = |field: &str| {
            reply.body[field].as_str().unwrap_or_else(|| panic!("no {field} in {}", reply.body)).to_owned()
        };
        Self {
            access: text("access_token"),
            refresh: text("refresh_token"),
            user_id: reply.body["user"]["id"].as_str().unwrap().to_owned(),
        }
    }
}

#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

impl Reply {
    pub async fn of(response: reqwest::Response) -> Self {
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let bytes = response.bytes().await.expect("body");
        if status == 204 {
            assert!(bytes.is_empty(), "a 204 has no body");
            return Self { status, headers, body: Value::Null };
        }
        let body = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| panic!("status {status}: the body is not JSON: {:?}", String::from_utf8_lossy(&bytes)));
        Self { status, headers, body }
    }

    /// Asserts the documented error shape and returns the message.
    pub fn error(&self, status: u16, grpc_status: &str) -> String {
        assert_eq!(self.status, status, "unexpected status; body: {}", self.body);
        assert_eq!(self.body["status"], grpc_status, "body: {}", self.body);
        assert!(self.body["code"].is_u64() && self.body["details"].is_array(), "error shape: {}", self.body);
        self.body["message"].as_str().expect("message").to_owned()
    }
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
