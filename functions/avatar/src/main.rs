//! The `avatar` Lambda function: the routes of `latchkey::http::routes::avatar`, with avatars (S3).

use latchkey::lambda::{self, Adapters};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    lambda::run(latchkey::functions::avatar, Adapters { objects: Some(lambda::s3), ..Adapters::default() }).await
}
