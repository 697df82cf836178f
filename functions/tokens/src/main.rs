//! The `tokens` Lambda function: the routes of `latchkey::http::routes::tokens`.

use latchkey::lambda::{self, Adapters};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    lambda::run(latchkey::functions::tokens, Adapters::default()).await
}
