//! The `avatar` Lambda function: see `latchkey::http::Function::Avatar` for its routes.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    latchkey::lambda::run(latchkey::http::Function::Avatar).await
}
