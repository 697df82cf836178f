//! The `tokens` Lambda function: see `latchkey::http::Function::Tokens` for its routes.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    latchkey::lambda::run(latchkey::http::Function::Tokens).await
}
