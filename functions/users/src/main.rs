//! The `users` Lambda function: see `latchkey::http::Function::Users` for its routes.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    latchkey::lambda::run(latchkey::http::Function::Users).await
}
