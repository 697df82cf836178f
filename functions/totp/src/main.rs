//! The `totp` Lambda function: see `latchkey::http::Function::Totp` for its routes.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    latchkey::lambda::run(latchkey::http::Function::Totp).await
}
