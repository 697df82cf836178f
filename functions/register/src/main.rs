//! The `register` Lambda function: the routes of `latchkey::http::routes::register`, with mail (SES).

use latchkey::lambda::{self, Adapters};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    lambda::run(latchkey::functions::register, Adapters { mail: Some(lambda::ses), ..Adapters::default() }).await
}
