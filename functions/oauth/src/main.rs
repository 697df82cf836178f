//! The `oauth` Lambda function: see `latchkey::http::Function::OAuth` for its routes.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    latchkey::lambda::run(latchkey::http::Function::OAuth).await
}
