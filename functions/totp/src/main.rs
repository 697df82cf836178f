//! The `totp` Lambda function: the routes of `latchkey::http::routes::totp`, with mail (SES).

use latchkey::lambda::{self, Adapters};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    lambda::run(latchkey::functions::totp, Adapters { mail: Some(lambda::ses), ..Adapters::default() }).await
}
