//! The `email` Lambda function: the routes of `latchkey::http::routes::email`, with mail (SES).

use latchkey::lambda::{self, Adapters};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    lambda::run(latchkey::functions::email, Adapters { mail: Some(lambda::ses), ..Adapters::default() }).await
}
