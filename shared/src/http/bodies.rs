//! Response bodies that show stored records: their own structs, so that renaming a field of the
//! API never changes an item in the table, nor the reverse.

use serde::Serialize;
use serde_json::{Map, Value};
use time::OffsetDateTime;

use crate::domain::{
    ConversationId, Email, LinkedIdentity, Message, MessageId, MessageText, Phone, ProviderName, PublicProfile, Role,
    User, UserId, UserStatus, UserType, Username,
};
use crate::service::{ConversationList, ConversationMessages, ConversationSummary, ConversationView, Listed};

/// A user as the API shows it to its owner (and to admins).
#[derive(Debug, Serialize)]
pub struct UserBody {
    pub id: UserId,
    pub email: Option<Email>,
    pub username: Option<Username>,
    pub phone: Option<Phone>,
    pub role: Role,
    #[serde(rename = "type")]
    pub user_type: UserType,
    pub status: UserStatus,
    pub extra: Map<String, Value>,
    pub is_email_verified: bool,
    pub pending_email: Option<Email>,
    pub avatar: Option<String>,
    pub identities: Vec<IdentityBody>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

impl From<User> for UserBody {
    fn from(user: User) -> Self {
        Self {
            id: user.id,
            email: user.email,
            username: user.username,
            phone: user.phone,
            role: user.role,
            user_type: user.user_type,
            status: user.status,
            extra: user.extra,
            is_email_verified: user.is_email_verified,
            pending_email: user.pending_email,
            avatar: user.avatar,
            identities: user.identities.into_iter().map(IdentityBody::from).collect(),
            created_at: user.created_at,
            updated_at: user.updated_at,
        }
    }
}

/// A provider account linked to the user.
#[derive(Debug, Serialize)]
pub struct IdentityBody {
    pub provider: ProviderName,
    pub subject: String,
    pub email: Option<Email>,
    #[serde(with = "time::serde::rfc3339")]
    pub linked_at: OffsetDateTime,
}

impl From<LinkedIdentity> for IdentityBody {
    fn from(identity: LinkedIdentity) -> Self {
        Self {
            provider: identity.provider,
            subject: identity.subject,
            email: identity.email,
            linked_at: identity.linked_at,
        }
    }
}

/// One account of a listing: the full record for admins, the public profile for others.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum ListedBody {
    Full(Box<UserBody>),
    Public(PublicProfile),
}

impl From<Listed> for ListedBody {
    fn from(listed: Listed) -> Self {
        match listed {
            Listed::Full(user) => Self::Full(Box::new(user.into())),
            Listed::Public(profile) => Self::Public(profile),
        }
    }
}

/// A chat message, in REST answers and WebSocket frames.
#[derive(Debug, Clone, Serialize)]
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
#[derive(Debug, Serialize)]
pub struct ConversationBody {
    pub conversation_id: ConversationId,
    pub initiator: PublicProfile,
    pub receiver: PublicProfile,
}

impl From<ConversationView> for ConversationBody {
    fn from(view: ConversationView) -> Self {
        Self { conversation_id: view.conversation_id, initiator: view.initiator, receiver: view.receiver }
    }
}

#[derive(Debug, Serialize)]
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

#[derive(Debug, Serialize)]
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

#[derive(Debug, Serialize)]
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
