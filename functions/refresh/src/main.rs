//! The `refresh` Lambda function: see `latchkey::http::Function::Refresh` for its routes.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    latchkey::lambda::run(latchkey::http::Function::Refresh).await
}
