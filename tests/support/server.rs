//! Every route served over real HTTP on a loopback port, as latchkey-local serves them.

use std::sync::Arc;

use latchkey::config::Config;
use latchkey::crypto::keys::KeyMaterial;
use latchkey::crypto::sealing::KeyedMac;
use latchkey::http::server::ServerLimits;
use latchkey::kernel::Kernel;
use latchkey::objects::local::LocalObjects;
use latchkey::store::ItemStore;
use serde_json::{Value, json};

use crate::lambda::LambdaStack;
use crate::{
    Backend, Mailbox, PASSWORD, ReceivedMail, Reply, StoreGuard, TestBucket, Tokens, fresh_keys, fresh_store,
    http_client, test_config,
};

/// Every route served over real HTTP on a loopback port: by latchkey-local's app, or by the
/// function binaries behind the Lambda emulator (`Backend::Lambda`).
pub struct TestServer {
    pub base: String,
    /// Where chat clients connect (`?ticket=...` follows).
    pub websocket_url: String,
    pub client: reqwest::Client,
    /// The server's store, for tests that change records the API cannot change yet.
    pub store: Arc<dyn ItemStore>,
    pub mailbox: Mailbox,
    /// The server's key material, for tests that forge tokens it must refuse.
    pub keys: KeyMaterial,
    _store: StoreGuard,
    serving: Serving,
}

enum Serving {
    Local { server: tokio::task::JoinHandle<()>, _objects: (tempfile::TempDir, Option<TestBucket>) },
    Lambda { _stack: Box<LambdaStack> },
}

impl TestServer {
    pub async fn start(backend: Backend) -> Self {
        Self::start_with(backend, test_config()).await
    }

    /// A server on a fresh store of `backend`, mailing through that backend's adapter.
    pub async fn start_with(backend: Backend, config: Config) -> Self {
        if backend == Backend::Lambda {
            return Self::on_lambda(config, &[]).await;
        }
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

    /// The function binaries behind the Lambda emulator, on a fresh table, with template
    /// parameters from `config` and then `parameters`.
    pub async fn on_lambda(config: Config, parameters: &[(&str, String)]) -> Self {
        let (store, guard) = fresh_store(Backend::Lambda).await;
        let StoreGuard::Table(table) = &guard else { unreachable!("the Lambda backend keeps a table") };
        let mailbox = Mailbox::for_backend(Backend::Lambda, &config).await;
        let keys = fresh_keys();
        let (base, stack) = crate::lambda::start(&config, table, &keys, parameters).await;
        let websocket_url = stack.emulator.websocket_url.clone().expect("the template has a WebSocket API");
        let serving = Serving::Lambda { _stack: Box::new(stack) };
        Self { base, websocket_url, client: http_client(), store, mailbox, keys, _store: guard, serving }
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
        let kernel = Kernel::new(config, Arc::clone(&store), &keys, mailer, Some(objects)).expect("kernel");
        // As latchkey-local serves them, chat over the local WebSocket route included.
        let app = latchkey::app::local_app(&kernel, local);
        let server = tokio::spawn(async move {
            latchkey::http::server::serve(listener, app, limits, std::future::pending()).await.expect("serve");
        });
        let serving = Serving::Local { server, _objects: (objects_dir, bucket) };
        let websocket_url = format!("{}/v1/chat/ws", base.replacen("http", "ws", 1));
        Self { base, websocket_url, client: http_client(), store, mailbox, keys, _store: guard, serving }
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
        Reply::of("POST", self.client.post(self.url(path)).json(&body).send().await.expect("request")).await
    }

    pub async fn post_raw(&self, path: &str, body: impl Into<reqwest::Body>) -> Reply {
        let request = self.client.post(self.url(path)).header("content-type", "application/json").body(body);
        Reply::of("POST", request.send().await.expect("request")).await
    }

    pub async fn get(&self, path: &str, access_token: Option<&str>) -> Reply {
        let mut request = self.client.get(self.url(path));
        if let Some(token) = access_token {
            request = request.bearer_auth(token);
        }
        Reply::of("GET", request.send().await.expect("request")).await
    }

    pub async fn post_authorized(&self, path: &str, access_token: &str, body: Value) -> Reply {
        let request = self.client.post(self.url(path)).bearer_auth(access_token).json(&body);
        Reply::of("POST", request.send().await.expect("request")).await
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
        let mut request = self.client.request(method.clone(), self.url(path)).bearer_auth(token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        Reply::of(method.as_str(), request.send().await.expect("request")).await
    }

    /// Gives the account of `email` the admin role, as `latchkey-local admin grant` does.
    pub async fn make_admin(&self, email: &str) {
        let bootstrap =
            latchkey::features::directory::AdminBootstrap::new(Arc::clone(&self.store), &test_config()).unwrap();
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
        if let Serving::Local { server, .. } = &self.serving {
            server.abort();
        }
    }
}
