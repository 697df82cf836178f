//! The `friends` Lambda function: the routes of `latchkey::http::routes::friends`.

use latchkey::lambda::{self, Adapters};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    lambda::run(latchkey::functions::friends, Adapters::default()).await
}
