//! The `chat` Lambda function: the routes of `latchkey::http::routes::chat`.

use latchkey::lambda::{self, Adapters};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    lambda::run(latchkey::functions::chat, Adapters::default()).await
}
