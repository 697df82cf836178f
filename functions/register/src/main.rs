//! The `register` Lambda function: see `latchkey::http::Function::Register` for its routes.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    latchkey::lambda::run(latchkey::http::Function::Register).await
}
