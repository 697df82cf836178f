//! The local server's chat edge: `GET /v1/chat/ws` upgrades to a WebSocket (axum) speaking
//! the same protocol as the API Gateway WebSocket API, and this process's open sockets are
//! the delivery adapter.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use axum::Router;
use axum::extract::ws::{Message as WsMessage, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use futures::{SinkExt, StreamExt};
use serde::Deserialize;
use tokio::sync::mpsc;

use super::frames::{ChatDelivery, DeliveryError, SUBPROTOCOL, ServerFrame, handle_frame, ticket_of};
use super::service::{ChatError, ChatService};
use crate::http::error::ApiError;

/// The open sockets of this process, by connection id.
#[derive(Default)]
pub struct LocalConnections {
    senders: Mutex<HashMap<String, mpsc::Sender<String>>>,
}

/// Frames waiting for one slow client; a client that falls this far behind is dropped, so it
/// cannot make the server hold every message sent to it.
const OUTBOX_FRAMES: usize = 1024;

/// The largest frame a client may send: a message's 4 KiB of text, even if every character is
/// escaped as `\uXXXX`, with room for the rest of the frame.
pub const MAX_FRAME_BYTES: usize = 32 * 1024;

#[async_trait]
impl ChatDelivery for LocalConnections {
    async fn push(&self, connection_id: &str, frame: &ServerFrame) -> Result<(), DeliveryError> {
        let mut senders = self.senders.lock().expect("not poisoned");
        let Some(sender) = senders.get(connection_id) else { return Err(DeliveryError::Gone) };
        if sender.try_send(frame.to_json()).is_err() {
            // Full or closed: dropping the sender ends the connection's writer.
            senders.remove(connection_id);
            return Err(DeliveryError::Gone);
        }
        Ok(())
    }
}

/// `GET /v1/chat/ws`, served by the local server only (on AWS the WebSocket API is its own
/// endpoint).
pub fn local_chat_routes(chat: Arc<ChatService>, connections: Arc<LocalConnections>) -> Router {
    Router::new().route("/v1/chat/ws", get(open)).with_state((chat, connections))
}

#[derive(Deserialize)]
struct OpenQuery {
    ticket: Option<String>,
}

async fn open(
    State((chat, connections)): State<(Arc<ChatService>, Arc<LocalConnections>)>,
    Query(query): Query<OpenQuery>,
    headers: HeaderMap,
    upgrade: WebSocketUpgrade,
) -> Response {
    let protocols = headers.get("sec-websocket-protocol").and_then(|value| value.to_str().ok());
    let Some(ticket) = ticket_of(query.ticket.as_deref(), protocols) else {
        return ApiError::from(ChatError::InvalidTicket).into_response();
    };
    let connection_id = uuid::Uuid::new_v4().to_string();
    if let Err(error) = chat.open_chat_connection(&ticket, &connection_id).await {
        return ApiError::from(error).into_response();
    }
    let (failed_chat, failed_id) = (Arc::clone(&chat), connection_id.clone());
    upgrade
        .protocols([SUBPROTOCOL])
        // A frame carries at most one message (4 KiB of text, escaped as JSON, and its ids).
        .max_message_size(MAX_FRAME_BYTES)
        .max_frame_size(MAX_FRAME_BYTES)
        .on_failed_upgrade(move |error| {
            tracing::warn!(%error, "a chat WebSocket upgrade failed");
            tokio::spawn(async move { failed_chat.close_chat_connection(&failed_id).await });
        })
        .on_upgrade(move |socket| serve(socket, chat, connections, connection_id))
}

/// Runs one connection: frames are handled one at a time, in order; what the server pushes
/// goes through a channel so that deliveries from other connections interleave safely.
async fn serve(socket: WebSocket, chat: Arc<ChatService>, connections: Arc<LocalConnections>, connection_id: String) {
    let (mut sink, mut stream) = socket.split();
    let (sender, mut outbox) = mpsc::channel::<String>(OUTBOX_FRAMES);
    connections.senders.lock().expect("not poisoned").insert(connection_id.clone(), sender);
    let writer = tokio::spawn(async move {
        while let Some(frame) = outbox.recv().await {
            if sink.send(WsMessage::Text(frame.into())).await.is_err() {
                break;
            }
        }
    });
    while let Some(Ok(message)) = stream.next().await {
        match message {
            WsMessage::Text(text) => handle_frame(&chat, &connection_id, &text, connections.as_ref()).await,
            WsMessage::Binary(_) => {
                let refusal = ApiError::invalid_field("frame", "frames are JSON text");
                let frame = ServerFrame::Error { client_id: None, error: refusal.body() };
                let _ = connections.push(&connection_id, &frame).await;
            }
            WsMessage::Close(_) => break,
            WsMessage::Ping(_) | WsMessage::Pong(_) => {}
        }
    }
    connections.senders.lock().expect("not poisoned").remove(&connection_id);
    writer.abort();
    if let Err(error) = chat.close_chat_connection(&connection_id).await {
        tracing::warn!(%error, "a closed chat connection was not removed");
    }
}
