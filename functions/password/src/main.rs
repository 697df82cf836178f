//! The `password` Lambda function: the routes of `latchkey::http::routes::password`, with mail (SES).

use latchkey::lambda::{self, Adapters};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    lambda::run(latchkey::functions::password, Adapters { mail: Some(lambda::ses), ..Adapters::default() }).await
}
