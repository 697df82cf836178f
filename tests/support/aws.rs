//! AWS in moto (and other local S3 servers): SDK configuration, and tables and buckets that
//! live as long as one test.

use aws_sdk_dynamodb::config::{BehaviorVersion, Credentials, Region};
use latchkey::store::dynamodb::DynamoStore;

/// Where the DynamoDB-speaking server (moto) listens; the test command sets it.
pub const AWS_ENDPOINT_VARIABLE: &str = "LATCHKEY_TEST_AWS_ENDPOINT";

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
        latchkey_local::emulator::provision::table(&client, &name)
            .await
            .unwrap_or_else(|error| panic!("{error:#} on {}. Is moto's server running?", aws_endpoint()));
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
