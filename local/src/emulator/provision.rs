//! The stack's stateful resources, made in whatever AWS the SDK configuration names (moto's
//! server here): the table with the template's key schema, the signing-key secret, the avatar
//! bucket and the SES identity mail is sent from. Each call is safe to repeat.

use aws_config::SdkConfig;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType, TimeToLiveSpecification,
};
use latchkey::crypto::keys::KeyMaterial;

/// The table as the template declares it: `pk`/`sk` strings, on demand, TTL on `ttl`.
pub async fn table(client: &aws_sdk_dynamodb::Client, name: &str) -> anyhow::Result<()> {
    let attribute =
        |name: &str| AttributeDefinition::builder().attribute_name(name).attribute_type(ScalarAttributeType::S).build();
    let key = |name: &str, kind| KeySchemaElement::builder().attribute_name(name).key_type(kind).build();
    let created = client
        .create_table()
        .table_name(name)
        .attribute_definitions(attribute("pk")?)
        .attribute_definitions(attribute("sk")?)
        .key_schema(key("pk", KeyType::Hash)?)
        .key_schema(key("sk", KeyType::Range)?)
        .billing_mode(BillingMode::PayPerRequest)
        .send()
        .await;
    match created {
        Ok(_) => {}
        Err(error) if error.as_service_error().is_some_and(|e| e.is_resource_in_use_exception()) => return Ok(()),
        Err(error) => {
            anyhow::bail!("cannot create the table {name}: {}", aws_sdk_dynamodb::error::DisplayErrorContext(error))
        }
    }
    let ttl = TimeToLiveSpecification::builder().attribute_name("ttl").enabled(true).build()?;
    client.update_time_to_live().table_name(name).time_to_live_specification(ttl).send().await?;
    Ok(())
}

/// The signing-key secret, with fresh key material unless it exists already.
pub async fn signing_key_secret(sdk: &SdkConfig, name: &str, keys: &KeyMaterial) -> anyhow::Result<()> {
    let client = aws_sdk_secretsmanager::Client::new(sdk);
    let created = client.create_secret().name(name).secret_string(serde_json::to_string(keys)?).send().await;
    match created {
        Ok(_) => Ok(()),
        Err(error) if error.as_service_error().is_some_and(|e| e.is_resource_exists_exception()) => Ok(()),
        Err(error) => anyhow::bail!(
            "cannot create the secret {name}: {}",
            aws_sdk_secretsmanager::error::DisplayErrorContext(error)
        ),
    }
}

/// The avatar bucket (path-style: `<bucket>.127.0.0.1` does not resolve).
pub async fn bucket(sdk: &SdkConfig, name: &str) -> anyhow::Result<()> {
    let client = aws_sdk_s3::Client::from_conf(aws_sdk_s3::config::Builder::from(sdk).force_path_style(true).build());
    match client.create_bucket().bucket(name).send().await {
        Ok(_) => Ok(()),
        Err(error) if error.as_service_error().is_some_and(|e| e.is_bucket_already_owned_by_you()) => Ok(()),
        Err(error) => {
            anyhow::bail!("cannot create the bucket {name}: {}", aws_sdk_s3::error::DisplayErrorContext(error))
        }
    }
}

/// The identity SES sends from (moto, like SES, refuses mail from an unverified address).
pub async fn mail_identity(sdk: &SdkConfig, address: &str) -> anyhow::Result<()> {
    let client = aws_sdk_sesv2::Client::new(sdk);
    match client.create_email_identity().email_identity(address).send().await {
        Ok(_) => Ok(()),
        Err(error) if error.as_service_error().is_some_and(|e| e.is_already_exists_exception()) => Ok(()),
        Err(error) => anyhow::bail!(
            "cannot create the SES identity {address}: {}",
            aws_sdk_sesv2::error::DisplayErrorContext(error)
        ),
    }
}
