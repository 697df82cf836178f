//! The `friends` Lambda function: see `latchkey::http::Function::Friends` for its routes.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    latchkey::lambda::run(latchkey::http::Function::Friends).await
}
