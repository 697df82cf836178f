//! The `refresh` Lambda function: the routes of `latchkey::http::routes::refresh`.

use latchkey::lambda::{self, Adapters};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    lambda::run(latchkey::functions::refresh, Adapters::default()).await
}
