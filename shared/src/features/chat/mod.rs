//! Chat: conversations between two users over REST, and messages in real time over a
//! WebSocket. On AWS the WebSocket edge is an API Gateway WebSocket API (`apigateway`, the
//! `chat-ws` function); locally it is axum's WebSocket (`local`).

#[cfg(feature = "aws")]
pub mod apigateway;
pub mod frames;
mod http;
#[cfg(feature = "embedded")]
pub mod local;
mod service;

pub use http::{Api, routes};
pub use service::{
    ChatError, ChatService, ConversationList, ConversationMessages, ConversationSummary, ConversationView,
};
