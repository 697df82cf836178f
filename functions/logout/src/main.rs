//! The `logout` Lambda function: the routes of `latchkey::http::routes::logout`.

use latchkey::lambda::{self, Adapters};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    lambda::run(latchkey::functions::logout, Adapters::default()).await
}
