//! The `login` Lambda function: see `latchkey::http::Function::Login` for its routes.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    latchkey::lambda::run(latchkey::http::Function::Login).await
}
