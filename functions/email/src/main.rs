//! The `email` Lambda function: see `latchkey::http::Function::Email` for its routes.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    latchkey::lambda::run(latchkey::http::Function::Email).await
}
