//! The Lambda entry point shared by every function binary: `run(router, adapters)` with the
//! function's own router builder (`latchkey::functions::<name>`) and adapters, so each
//! binary links only its slices.

use std::net::SocketAddr;
use std::sync::Arc;

use aws_config::{BehaviorVersion, SdkConfig};
use axum::Router;
use axum::extract::ConnectInfo;
use lambda_http::request::RequestContext;
use lambda_http::{Error, RequestExt};

use crate::config::{Config, required};
use crate::crypto::keys::KeyMaterial;
use crate::features::chat::ChatService;
use crate::http::finish;
use crate::http::logging::{RequestId, init_tracing};
use crate::kernel::{Kernel, SetupError};
use crate::mail::ses::SesMailer;
use crate::mail::{Mailer, NoMail};
use crate::objects::ObjectStore;
use crate::objects::s3::S3Objects;
use crate::store::dynamodb::DynamoStore;
use crate::store::{ItemStore, Key};

/// Builds the mail port from the SDK configuration and the settings.
pub type MailAdapter = fn(&SdkConfig, &Config) -> Arc<dyn Mailer>;
/// Builds the object store for a bucket.
pub type ObjectAdapter = fn(&SdkConfig, &Config, String) -> Arc<dyn ObjectStore>;

/// The adapters a function's routes use beyond the table and the keys, named by its
/// `main.rs`: a function that names none links neither the SES nor the S3 client.
#[derive(Default, Clone, Copy)]
pub struct Adapters {
    /// The mail port, for functions that send mail.
    pub mail: Option<MailAdapter>,
    /// The object store, for functions that handle avatars (given `LATCHKEY_AVATAR_BUCKET`).
    pub objects: Option<ObjectAdapter>,
}

/// Mail through SES v2.
pub fn ses(sdk: &SdkConfig, config: &Config) -> Arc<dyn Mailer> {
    Arc::new(SesMailer::new(aws_sdk_sesv2::Client::new(sdk), &crate::kernel::sender(config)))
}

/// Avatars in S3.
pub fn s3(sdk: &SdkConfig, settings: &Config, bucket: String) -> Arc<dyn ObjectStore> {
    let config = aws_sdk_s3::config::Builder::from(sdk).force_path_style(settings.s3_force_path_style).build();
    Arc::new(S3Objects::new(aws_sdk_s3::Client::from_conf(config), bucket))
}

/// Builds the kernel once per container (config, SDK clients, signing keys), and from it the
/// function's router (`latchkey::functions::<name>`), which serves every invocation.
pub async fn run(router: fn(&Kernel) -> Router, adapters: Adapters) -> Result<(), Error> {
    init_tracing();
    lambda_http::run(app(router(&init(adapters).await?.0))).await
}

/// Runs the `chat-ws` function: API Gateway WebSocket events, not HTTP requests.
/// `LATCHKEY_WEBSOCKET_ENDPOINT` fixes the Management API endpoint (for a custom domain);
/// otherwise each event's domain and stage name it.
pub async fn run_websocket() -> Result<(), Error> {
    use crate::features::chat::apigateway::{ManagementClients, handle};
    use lambda_http::aws_lambda_events::apigw::ApiGatewayWebsocketProxyRequest;
    use lambda_http::{LambdaEvent, service_fn};

    init_tracing();
    let (kernel, sdk) = init(Adapters::default()).await?;
    let chat = ChatService::new(&kernel);
    let clients = ManagementClients::new(sdk, std::env::var("LATCHKEY_WEBSOCKET_ENDPOINT").ok());
    let (chat, clients) = (&chat, &clients);
    lambda_http::lambda_runtime::run(service_fn(
        move |event: LambdaEvent<ApiGatewayWebsocketProxyRequest>| async move {
            Ok::<_, Error>(handle(chat, clients, event.payload).await)
        },
    ))
    .await
}

/// What `run` serves: a function's routes, finished, told what API Gateway's event says about
/// the request (its id, and the client's address).
pub fn app(routes: Router) -> Router {
    finish(routes).layer(axum::middleware::map_request(tag_request))
}

async fn init(adapters: Adapters) -> Result<(Kernel, aws_config::SdkConfig), SetupError> {
    let setup = |error: &dyn std::fmt::Display| SetupError(error.to_string());
    let table = required("LATCHKEY_TABLE").map_err(|e| setup(&e))?;
    let secret_id = required("LATCHKEY_SIGNING_KEY_SECRET").map_err(|e| setup(&e))?;
    let aws = aws_config::defaults(BehaviorVersion::latest()).http_client(aws_https_client()).load().await;
    let secrets = aws_sdk_secretsmanager::Client::new(&aws);
    let store = DynamoStore::new(aws_sdk_dynamodb::Client::new(&aws), table);
    // Every request reads DynamoDB: opening its connection (a TLS handshake on AWS) beside the
    // secret read takes it off the first caller's path at no cost in time. What it reads, a
    // key nothing is stored under, does not matter, nor does an error.
    let warm_up = Key::new("WARM-UP", "WARM-UP");
    // Bounded, so that a slow DynamoDB (retries, throttling) cannot hold init up.
    let warm = tokio::time::timeout(std::time::Duration::from_secs(1), store.get(&warm_up));
    let (secret, _) = tokio::join!(secret_string(&secrets, &secret_id), warm);
    let keys = KeyMaterial::from_json(&secret?).map_err(|error| SetupError(error.to_string()))?;
    // Only the oauth function is given the provider secrets.
    let oauth_secrets = match std::env::var(OAUTH_SECRETS_SECRET) {
        Ok(id) => Some(secret_string(&secrets, &id).await?),
        Err(_) => None,
    };
    let config = Config::from_lookup(|name| match name {
        "LATCHKEY_OAUTH_CLIENT_SECRETS" => oauth_secrets.clone(),
        name => std::env::var(name).ok(),
    })
    .map_err(|e| setup(&e))?;
    // Building a client makes no network call.
    let mailer = adapters.mail.map_or_else(|| Arc::new(NoMail) as Arc<dyn Mailer>, |mail| mail(&aws, &config));
    let bucket = std::env::var("LATCHKEY_AVATAR_BUCKET").ok();
    let objects = adapters.objects.zip(bucket).map(|(objects, bucket)| objects(&aws, &config, bucket));
    Ok((Kernel::new(config, Arc::new(store), &keys, mailer, objects)?, aws))
}

/// The roots every AWS endpoint's certificate chains to (Amazon Trust Services).
const AWS_TRUST_ROOTS: &[u8] = include_bytes!("crypto/aws-trust-roots.pem");

/// The SDK clients' HTTPS client, trusting only the roots AWS endpoints chain to: loading the
/// system's trust store (its ~140 roots, twice over where a directory of them sits beside the
/// bundle) was the largest part of a cold start, and the functions reach nothing but AWS.
fn aws_https_client() -> aws_sdk_dynamodb::config::SharedHttpClient {
    use aws_smithy_http_client::tls::{self, TlsContext, TrustStore, rustls_provider::CryptoMode};
    let roots = TrustStore::empty().with_native_roots(false).with_pem_certificate(AWS_TRUST_ROOTS);
    let context = TlsContext::builder().with_trust_store(roots).build().expect("the trust store is only PEM");
    aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(CryptoMode::AwsLc))
        .tls_context(context)
        .build_https()
}

/// The variable naming the Secrets Manager secret with the sign-in providers' client secrets
/// (a JSON object of provider name to secret), read in place of `LATCHKEY_OAUTH_CLIENT_SECRETS`.
pub const OAUTH_SECRETS_SECRET: &str = "LATCHKEY_OAUTH_CLIENT_SECRETS_SECRET";

/// The string value of a Secrets Manager secret (the signing keys, the providers' secrets).
pub async fn secret_string(client: &aws_sdk_secretsmanager::Client, secret_id: &str) -> Result<String, SetupError> {
    let output = client.get_secret_value().secret_id(secret_id).send().await.map_err(|error| {
        SetupError(format!(
            "cannot read the secret {secret_id}: {}",
            aws_sdk_secretsmanager::error::DisplayErrorContext(error)
        ))
    })?;
    output
        .secret_string()
        .map(str::to_owned)
        .ok_or_else(|| SetupError(format!("the secret {secret_id} has no string value")))
}

/// Puts what API Gateway tells about a request where the handlers look for it: the request id
/// for the log line, and the client's address as the connection's peer (as the local server has it).
async fn tag_request(mut request: axum::extract::Request) -> axum::extract::Request {
    if let Some(context) = request.lambda_context_ref() {
        let id = RequestId(context.request_id.clone());
        request.extensions_mut().insert(id);
    }
    let source_ip = match request.request_context_ref() {
        Some(RequestContext::ApiGatewayV2(context)) => context.http.source_ip.as_deref().and_then(|ip| ip.parse().ok()),
        _ => None,
    };
    if let Some(ip) = source_ip {
        request.extensions_mut().insert(ConnectInfo(SocketAddr::new(ip, 0)));
    }
    request
}

#[cfg(test)]
mod tests {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;

    #[test]
    fn the_bundled_aws_roots_are_five_usable_trust_anchors() {
        let certificates: Vec<_> = CertificateDer::pem_slice_iter(super::AWS_TRUST_ROOTS)
            .collect::<Result<_, _>>()
            .expect("the bundle is PEM");
        let mut store = rustls::RootCertStore::empty();
        let (added, refused) = store.add_parsable_certificates(certificates);
        assert_eq!((added, refused), (5, 0), "Amazon Root CA 1 to 4 and Starfield Services Root G2");
    }
}
