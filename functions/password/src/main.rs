//! The `password` Lambda function: see `latchkey::http::Function::Password` for its routes.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    latchkey::lambda::run(latchkey::http::Function::Password).await
}
