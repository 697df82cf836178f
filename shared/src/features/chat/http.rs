use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::json;
use time::OffsetDateTime;
use utoipa::{IntoParams, ToSchema};

use super::service::{
    ChatError, ChatService, ConversationList, ConversationMessages, ConversationSummary, ConversationView,
};
use crate::domain::{ConversationId, Message, MessageId, MessageText, UserId, Username};
use crate::http::bodies::ProfileBody;
use crate::http::error::{ApiError, ErrorCode};
use crate::http::extract::{Authenticated, JsonBody, PathParam, QueryParams};
use crate::http::{Function, Route, Slice};

/// This slice's operations in the OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi(paths(start, list, messages, ticket))]
pub struct Api;

pub fn routes() -> Vec<Route<ChatService>> {
    vec![
        Route::post(Function::Chat, "/v1/conversations", start),
        Route::get(Function::Chat, "/v1/conversations", list),
        Route::get(Function::Chat, "/v1/conversations/{id}", messages),
        Route::post(Function::Chat, "/v1/chat/ticket", ticket),
    ]
}

impl From<ChatError> for ApiError {
    fn from(error: ChatError) -> Self {
        match error {
            ChatError::NoSuchUser | ChatError::NoSuchConversation => Self::of(ErrorCode::NotFound, &error),
            ChatError::ConversationWithYourself => Self::of(ErrorCode::FailedPrecondition, &error),
            ChatError::UserNotConnected => Self::reason(ErrorCode::Conflict, &error, "USER_NOT_CONNECTED"),
            ChatError::NotAParticipant { .. } => Self::of(ErrorCode::PermissionDenied, &error),
            ChatError::InvalidTicket => {
                Self::new(ErrorCode::Unauthenticated, format!("{error}; ask POST /v1/chat/ticket for a new one"))
                    .with_detail(json!({ "reason": "INVALID_TICKET" }))
            }
            ChatError::TooManyMessages { retry_after_seconds } => {
                Self::too_many(error.to_string(), "TOO_MANY_MESSAGES", retry_after_seconds)
            }
            ChatError::Failure(error) => error.into(),
        }
    }
}

const DEFAULT_PAGE_SIZE: usize = 20;
const MAX_PAGE_SIZE: usize = 100;

#[derive(Deserialize, ToSchema)]
pub struct StartRequest {
    username: Username,
}

/// `201` for a new conversation, `200` for the one the two users already have.
/// The conversation with a user: a new one (`201`) needs them connected; an existing one is
/// answered as it is (`200`).
#[utoipa::path(post, path = "/v1/conversations", tag = "chat", security(("bearer" = [])), request_body = StartRequest,
    responses(
        (status = 201, description = "A new conversation.", body = ConversationBody),
        (status = 200, description = "The conversation the two already have.", body = ConversationBody),
    ))]
async fn start(
    State(chat): State<Slice<ChatService>>,
    Authenticated(principal): Authenticated,
    JsonBody(request): JsonBody<StartRequest>,
) -> Result<(StatusCode, Json<ConversationBody>), ApiError> {
    let (view, created) = chat.start_conversation(&principal, request.username).await?;
    Ok((if created { StatusCode::CREATED } else { StatusCode::OK }, Json(view.into())))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// `next_cursor` of the previous page.
    #[param(value_type = Option<String>, format = Uuid)]
    cursor: Option<String>,
    /// 1 to 100; 20 when absent.
    #[param(minimum = 1, maximum = 100)]
    limit: Option<usize>,
}

/// The caller's conversations, latest activity first.
#[utoipa::path(get, path = "/v1/conversations", tag = "chat", security(("bearer" = [])), params(ListQuery),
    responses((status = 200, description = "A page of conversations.", body = ConversationListBody)))]
async fn list(
    State(chat): State<Slice<ChatService>>,
    Authenticated(principal): Authenticated,
    QueryParams(query): QueryParams<ListQuery>,
) -> Result<Json<ConversationListBody>, ApiError> {
    let cursor = query.cursor.map(|cursor| time_sortable("cursor", &cursor)).transpose()?;
    let limit = page_size(query.limit)?;
    Ok(Json(chat.conversations(&principal, cursor.as_deref(), limit).await?.into()))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct MessagesQuery {
    /// `next_cursor` of the previous page: messages older than this one.
    #[param(value_type = Option<MessageId>)]
    before: Option<String>,
    /// 1 to 100; 20 when absent.
    #[param(minimum = 1, maximum = 100)]
    limit: Option<usize>,
}

/// A conversation's messages, newest first; for its two participants.
#[utoipa::path(get, path = "/v1/conversations/{id}", tag = "chat", security(("bearer" = [])),
    params(("id" = ConversationId, Path, description = "The conversation's id."), MessagesQuery),
    responses((status = 200, description = "A page of messages.", body = ConversationMessagesBody)))]
async fn messages(
    State(chat): State<Slice<ChatService>>,
    Authenticated(principal): Authenticated,
    PathParam(id): PathParam<String>,
    QueryParams(query): QueryParams<MessagesQuery>,
) -> Result<Json<ConversationMessagesBody>, ApiError> {
    let id = ConversationId::parse(&id).ok_or(ChatError::NoSuchConversation)?;
    let before = match query.before {
        Some(before) => {
            Some(MessageId::parse(&before).ok_or_else(|| ApiError::invalid_field("before", "is not a message id"))?)
        }
        None => None,
    };
    let limit = page_size(query.limit)?;
    Ok(Json(chat.conversation_messages(&principal, id, before, limit).await?.into()))
}

/// A single-use ticket that opens one chat WebSocket within 30 seconds.
#[derive(Serialize, ToSchema)]
pub struct ChatTicketBody {
    ticket: String,
    /// Seconds the ticket stays valid.
    expires_in: i64,
}

/// A ticket for the chat WebSocket (`?ticket=` or the `latchkey-ticket.<ticket>` subprotocol).
#[utoipa::path(post, path = "/v1/chat/ticket", tag = "chat", security(("bearer" = [])),
    responses((status = 201, description = "The ticket.", body = ChatTicketBody)))]
async fn ticket(
    State(chat): State<Slice<ChatService>>,
    Authenticated(principal): Authenticated,
) -> Result<(StatusCode, Json<ChatTicketBody>), ApiError> {
    let (ticket, expires_in) = chat.issue_chat_ticket(&principal).await?;
    Ok((StatusCode::CREATED, Json(ChatTicketBody { ticket, expires_in })))
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

/// A chat message, in REST answers and WebSocket frames.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct MessageBody {
    pub id: MessageId,
    pub sender: UserId,
    pub text: MessageText,
    #[serde(with = "time::serde::rfc3339")]
    pub sent_at: OffsetDateTime,
}

impl From<Message> for MessageBody {
    fn from(message: Message) -> Self {
        Self { id: message.id, sender: message.sender, text: message.text, sent_at: message.sent_at }
    }
}

/// A conversation with its participants' public profiles.
#[derive(Debug, Serialize, ToSchema)]
pub struct ConversationBody {
    pub conversation_id: ConversationId,
    pub initiator: ProfileBody,
    pub receiver: ProfileBody,
}

impl From<ConversationView> for ConversationBody {
    fn from(view: ConversationView) -> Self {
        Self { conversation_id: view.conversation_id, initiator: view.initiator.into(), receiver: view.receiver.into() }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ConversationSummaryBody {
    #[serde(flatten)]
    pub conversation: ConversationBody,
    pub last_message: Option<MessageBody>,
}

impl From<ConversationSummary> for ConversationSummaryBody {
    fn from(summary: ConversationSummary) -> Self {
        Self { conversation: summary.view.into(), last_message: summary.last_message.map(MessageBody::from) }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ConversationListBody {
    pub conversations: Vec<ConversationSummaryBody>,
    /// Pass as `cursor` for the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

impl From<ConversationList> for ConversationListBody {
    fn from(list: ConversationList) -> Self {
        let conversations = list.conversations.into_iter().map(ConversationSummaryBody::from).collect();
        Self { conversations, next_cursor: list.next_cursor }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ConversationMessagesBody {
    #[serde(flatten)]
    pub conversation: ConversationBody,
    /// Newest first.
    pub messages: Vec<MessageBody>,
    /// Pass as `before` for older messages; `null` when there are none.
    pub next_cursor: Option<String>,
}

impl From<ConversationMessages> for ConversationMessagesBody {
    fn from(page: ConversationMessages) -> Self {
        let messages = page.messages.into_iter().map(MessageBody::from).collect();
        Self { conversation: page.view.into(), messages, next_cursor: page.next_cursor }
    }
}
