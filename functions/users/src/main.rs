//! The `users` Lambda function: the routes of `latchkey::http::routes::users`, with mail (SES) and avatars (S3).

use latchkey::lambda::{self, Adapters};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    lambda::run(latchkey::functions::users, Adapters { mail: Some(lambda::ses), objects: Some(lambda::s3) }).await
}
