//! The WebSocket protocol: the delivery port, the frames, and the one function both edges
//! feed client frames to.
//!
//! Protocol (JSON text frames):
//! - client: `{"action": "send_message", "conversation_id", "text", "client_id"}`;
//! - server: `{"type": "message", "conversation_id", "message"}` to the other participant
//!   and the sender's other connections, `{"type": "ack", "client_id", "conversation_id",
//!   "message"}` to the sending connection once the message is stored, and `{"type":
//!   "error", "client_id", "error": <the REST error body>}` when a frame is refused.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::http::MessageBody;
use super::service::{ChatError, ChatService};
use crate::domain::{ConversationId, Message, MessageText};
use crate::http::error::ApiError;

/// The subprotocol a browser offers (with `latchkey-ticket.<ticket>`) and the server accepts.
pub const SUBPROTOCOL: &str = "latchkey-chat";
/// The prefix of the subprotocol entry that carries the ticket.
pub const TICKET_PROTOCOL_PREFIX: &str = "latchkey-ticket.";

/// Longest `client_id` echoed back: clients use it to match acknowledgements.
const MAX_CLIENT_ID_CHARS: usize = 128;

/// What the server pushes to a connection.
#[derive(Debug, Clone, PartialEq)]
pub enum ServerFrame {
    Message { conversation_id: ConversationId, message: Message },
    Ack { client_id: Option<String>, conversation_id: ConversationId, message: Message },
    Error { client_id: Option<String>, error: serde_json::Value },
}

/// A frame as it goes over the wire: messages as `MessageBody`, never as stored.
#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum WireFrame<'a> {
    Message { conversation_id: ConversationId, message: MessageBody },
    Ack { client_id: &'a Option<String>, conversation_id: ConversationId, message: MessageBody },
    Error { client_id: &'a Option<String>, error: &'a serde_json::Value },
}

impl ServerFrame {
    pub fn to_json(&self) -> String {
        let wire = match self {
            Self::Message { conversation_id, message } => {
                WireFrame::Message { conversation_id: *conversation_id, message: message.clone().into() }
            }
            Self::Ack { client_id, conversation_id, message } => {
                WireFrame::Ack { client_id, conversation_id: *conversation_id, message: message.clone().into() }
            }
            Self::Error { client_id, error } => WireFrame::Error { client_id, error },
        };
        serde_json::to_string(&wire).expect("frames always serialise")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    /// The connection is closed (API Gateway's 410): forget it.
    #[error("the connection is gone")]
    Gone,
    #[error("delivery failed: {0}")]
    Failed(String),
}

/// Pushes frames to connections: the API Gateway Management API on AWS, the open sockets of
/// this process locally.
#[async_trait]
pub trait ChatDelivery: Send + Sync {
    async fn push(&self, connection_id: &str, frame: &ServerFrame) -> Result<(), DeliveryError>;
}

#[derive(Deserialize)]
#[serde(tag = "action", rename_all = "snake_case", deny_unknown_fields)]
enum ClientFrame {
    SendMessage { conversation_id: String, text: String, client_id: Option<String> },
}

/// A message as the client asked to send it, parsed.
pub struct Outgoing {
    pub conversation_id: ConversationId,
    pub text: MessageText,
    pub client_id: Option<String>,
}

/// Handles one text frame from `connection_id`: sends the message, or answers the sender with
/// an error frame. The connection is never dropped for a bad frame.
pub async fn handle_frame(chat: &ChatService, connection_id: &str, raw: &str, delivery: &dyn ChatDelivery) {
    // The client id is echoed even on a refusal, when it can be read at all.
    let client_id = serde_json::from_str::<serde_json::Value>(raw)
        .ok()
        .and_then(|value| value.get("client_id")?.as_str().map(String::from))
        .filter(|id| id.chars().count() <= MAX_CLIENT_ID_CHARS);
    let outcome = match parse(raw) {
        Ok(outgoing) => chat.send_chat_message(connection_id, outgoing, delivery).await.map_err(ApiError::from),
        Err(refusal) => Err(refusal),
    };
    if let Err(error) = outcome {
        let frame = ServerFrame::Error { client_id, error: error.body() };
        if let Err(failure) = delivery.push(connection_id, &frame).await {
            tracing::warn!(%failure, "an error frame could not be delivered");
        }
    }
}

fn parse(raw: &str) -> Result<Outgoing, ApiError> {
    let frame: ClientFrame = serde_json::from_str(raw).map_err(|error| {
        ApiError::invalid_field(
            "frame",
            format!("must be {{\"action\": \"send_message\", \"conversation_id\", \"text\", \"client_id\"}} ({error})"),
        )
    })?;
    let ClientFrame::SendMessage { conversation_id, text, client_id } = frame;
    let conversation_id =
        ConversationId::parse(&conversation_id).ok_or_else(|| ApiError::from(ChatError::NoSuchConversation))?;
    let text = MessageText::parse(&text).map_err(|error| ApiError::invalid_field("text", error))?;
    if client_id.as_ref().is_some_and(|id| id.chars().count() > MAX_CLIENT_ID_CHARS) {
        return Err(ApiError::invalid_field("client_id", format!("must be at most {MAX_CLIENT_ID_CHARS} characters")));
    }
    Ok(Outgoing { conversation_id, text, client_id })
}

/// Whether a `Sec-WebSocket-Protocol` header offers the chat subprotocol.
pub fn offers_subprotocol(protocols: Option<&str>) -> bool {
    protocols.is_some_and(|offered| offered.split(',').any(|protocol| protocol.trim() == SUBPROTOCOL))
}

/// The ticket a connection request carries: `?ticket=` or a `latchkey-ticket.<ticket>`
/// entry of `Sec-WebSocket-Protocol`.
pub fn ticket_of(query_ticket: Option<&str>, protocols: Option<&str>) -> Option<String> {
    let from_protocols = || {
        protocols?
            .split(',')
            .map(str::trim)
            .find_map(|protocol| protocol.strip_prefix(TICKET_PROTOCOL_PREFIX))
            .map(String::from)
    };
    query_ticket.map(String::from).or_else(from_protocols).filter(|ticket| !ticket.is_empty())
}
