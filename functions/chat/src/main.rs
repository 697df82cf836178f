//! The `chat` Lambda function: see `latchkey::http::Function::Chat` for its routes.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    latchkey::lambda::run(latchkey::http::Function::Chat).await
}
