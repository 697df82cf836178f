//! The Lambda entry point shared by every function binary.

use std::sync::Arc;

use aws_config::BehaviorVersion;
use lambda_http::{Error, RequestExt};

use crate::app::SetupError;
use crate::config::{Config, required};
use crate::crypto::keys::SigningKeys;
use crate::http::logging::{RequestId, init_tracing};
use crate::http::{Function, router};
use crate::store::dynamodb::DynamoStore;

/// Builds the state once per container (config, SDK clients, signing keys), then serves
/// `function`'s routes for every invocation.
pub async fn run(function: Function) -> Result<(), Error> {
    init_tracing();
    let app = router(&[function], init().await?).layer(axum::middleware::map_request(tag_request_id));
    lambda_http::run(app).await
}

async fn init() -> Result<crate::http::AppState, SetupError> {
    let setup = |error: &dyn std::fmt::Display| SetupError(error.to_string());
    let config = Config::from_env().map_err(|e| setup(&e))?;
    let table = required("LATCHKEY_TABLE").map_err(|e| setup(&e))?;
    let secret_id = required("LATCHKEY_SIGNING_KEY_SECRET").map_err(|e| setup(&e))?;
    let aws = aws_config::defaults(BehaviorVersion::latest()).load().await;
    let keys = signing_keys_from_secret(&aws_sdk_secretsmanager::Client::new(&aws), &secret_id, &config).await?;
    let store = DynamoStore::new(aws_sdk_dynamodb::Client::new(&aws), table);
    crate::app::state(config, Arc::new(store), keys).map_err(|e| setup(&e))
}

/// Reads the signing keys from a Secrets Manager secret (the JSON of `crypto::keys`).
pub async fn signing_keys_from_secret(
    client: &aws_sdk_secretsmanager::Client,
    secret_id: &str,
    config: &Config,
) -> Result<SigningKeys, SetupError> {
    let output = client.get_secret_value().secret_id(secret_id).send().await.map_err(|error| {
        SetupError(format!(
            "cannot read the signing key secret {secret_id}: {}",
            aws_sdk_secretsmanager::error::DisplayErrorContext(error)
        ))
    })?;
    let json = output
        .secret_string()
        .ok_or_else(|| SetupError(format!("the signing key secret {secret_id} has no string value")))?;
    SigningKeys::from_json(json, &config.issuer, &config.audience).map_err(|error| SetupError(error.to_string()))
}

async fn tag_request_id(mut request: axum::extract::Request) -> axum::extract::Request {
    if let Some(context) = request.lambda_context_ref() {
        let id = RequestId(context.request_id.clone());
        request.extensions_mut().insert(id);
    }
    request
}
