//! The `chat-ws` Lambda function: the API Gateway WebSocket API of chat (`$connect`,
//! `$disconnect`, `send_message`); see `latchkey::features::chat`.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    latchkey::lambda::run_websocket().await
}
