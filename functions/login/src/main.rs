//! The `login` Lambda function: the routes of `latchkey::http::routes::login`, with mail (SES).

use latchkey::lambda::{self, Adapters};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    lambda::run(latchkey::functions::login, Adapters { mail: Some(lambda::ses), ..Adapters::default() }).await
}
