//! The `logout` Lambda function: see `latchkey::http::Function::Logout` for its routes.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    latchkey::lambda::run(latchkey::http::Function::Logout).await
}
