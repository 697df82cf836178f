//! Conversations over REST, and the tickets that open a chat WebSocket.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::domain::{ConversationId, MessageId, Username};
use crate::http::AppState;
use crate::http::bodies::{ConversationBody, ConversationListBody, ConversationMessagesBody};
use crate::http::error::ApiError;
use crate::http::extract::{Authenticated, JsonBody, PathParam, QueryParams};
use crate::service::AuthError;

const DEFAULT_PAGE_SIZE: usize = 20;
const MAX_PAGE_SIZE: usize = 100;

#[derive(Deserialize)]
pub struct StartRequest {
    username: Username,
}

/// `201` for a new conversation, `200` for the one the two users already have.
pub async fn start(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    JsonBody(request): JsonBody<StartRequest>,
) -> Result<(StatusCode, Json<ConversationBody>), ApiError> {
    let (view, created) = state.auth.start_conversation(&principal, request.username).await?;
    Ok((if created { StatusCode::CREATED } else { StatusCode::OK }, Json(view.into())))
}

#[derive(Deserialize)]
pub struct ListQuery {
    cursor: Option<String>,
    limit: Option<usize>,
}

pub async fn list(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    QueryParams(query): QueryParams<ListQuery>,
) -> Result<Json<ConversationListBody>, ApiError> {
    let cursor = query.cursor.map(|cursor| time_sortable("cursor", &cursor)).transpose()?;
    let limit = page_size(query.limit)?;
    Ok(Json(state.auth.conversations(&principal, cursor.as_deref(), limit).await?.into()))
}

#[derive(Deserialize)]
pub struct MessagesQuery {
    before: Option<String>,
    limit: Option<usize>,
}

pub async fn messages(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    PathParam(id): PathParam<String>,
    QueryParams(query): QueryParams<MessagesQuery>,
) -> Result<Json<ConversationMessagesBody>, ApiError> {
    let id = ConversationId::parse(&id).ok_or(AuthError::NoSuchConversation)?;
    let before = match query.before {
        Some(before) => {
            Some(MessageId::parse(&before).ok_or_else(|| ApiError::invalid_field("before", "is not a message id"))?)
        }
        None => None,
    };
    let limit = page_size(query.limit)?;
    Ok(Json(state.auth.conversation_messages(&principal, id, before, limit).await?.into()))
}

pub async fn ticket(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let (ticket, expires_in) = state.auth.issue_chat_ticket(&principal).await?;
    Ok((StatusCode::CREATED, Json(json!({ "ticket": ticket, "expires_in": expires_in }))))
}

fn page_size(limit: Option<usize>) -> Result<usize, ApiError> {
    match limit.unwrap_or(DEFAULT_PAGE_SIZE) {
        size @ 1..=MAX_PAGE_SIZE => Ok(size),
        _ => Err(ApiError::invalid_field("limit", format!("must be 1 to {MAX_PAGE_SIZE}"))),
    }
}

/// A cursor handed out by the list: a UUID, in its canonical form.
fn time_sortable(field: &str, raw: &str) -> Result<String, ApiError> {
    match uuid::Uuid::parse_str(raw) {
        Ok(id) => Ok(id.to_string()),
        Err(_) => Err(ApiError::invalid_field(field, "is not a cursor this API handed out")),
    }
}
