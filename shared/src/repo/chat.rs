//! Conversations, messages, each user's conversation list ordered by activity, WebSocket
//! connections, and the single-use tickets that open them.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::{RepoError, from_item, put_new, take, to_item};
use crate::domain::{Conversation, ConversationId, Message, MessageId, UserId};
use crate::store::{Condition, ItemStore, Key, Page, StoreError, Write};

/// One line of a user's conversation list: what it shows without reading the conversation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActivityEntry {
    pub conversation: Conversation,
    pub last_message: Option<Message>,
}

/// Where a user's entry for a conversation sits in their activity order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct ActivityPointer {
    /// The id of the conversation's latest message, or of the conversation while it has none:
    /// both are UUIDv7, so ordering by it orders by latest activity.
    activity: String,
}

/// A live WebSocket connection of a user.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatConnection {
    pub connection_id: String,
    pub user_id: UserId,
    /// The account's session epoch when the connection opened (see `StoredUser::session_epoch`).
    pub session_epoch: u64,
    pub ttl: i64,
    /// The start (epoch seconds) of the current rate window and the messages sent in it.
    pub window_start: i64,
    pub window_count: u32,
}

/// The user's side of a connection, so that delivery and presence find a user's connections.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct UserConnection {
    connection_id: String,
    #[serde(default)]
    session_epoch: u64,
    ttl: i64,
}

/// A single-use, short-lived ticket for opening a WebSocket connection.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatTicket {
    pub user_id: UserId,
    /// The account's session epoch when the ticket was issued.
    pub session_epoch: u64,
    pub expires_at: i64,
    pub ttl: i64,
}

#[derive(Clone)]
pub struct ChatRepo {
    store: Arc<dyn ItemStore>,
}

/// What `start` found.
pub enum Started {
    Created,
    /// The two already have a conversation: this one.
    Existing(ConversationId),
}

fn conversation_key(id: ConversationId) -> Key {
    Key::new(format!("CONVERSATION#{id}"), "META")
}

/// One item per pair of users, whichever of them started it: no two conversations per pair.
fn pair_key(a: UserId, b: UserId) -> Key {
    let (low, high) = if a.0 <= b.0 { (a, b) } else { (b, a) };
    Key::new(format!("PAIR#{low}#{high}"), "UNIQUE")
}

fn message_key(conversation: ConversationId, message: MessageId) -> Key {
    Key::new(format!("CONVERSATION#{conversation}"), format!("MSG#{message}"))
}

fn pointer_key(user: UserId, conversation: ConversationId) -> Key {
    Key::new(format!("USER#{user}"), format!("CONVERSATION#{conversation}"))
}

fn activity_key(user: UserId, activity: &str) -> Key {
    Key::new(format!("USER#{user}"), format!("ACTIVITY#{activity}"))
}

fn connection_key(connection_id: &str) -> Key {
    Key::new(format!("CONNECTION#{connection_id}"), "CONNECTION")
}

fn user_connection_key(user: UserId, connection_id: &str) -> Key {
    Key::new(format!("USER#{user}"), format!("CONNECTION#{connection_id}"))
}

fn ticket_key(hash: &str) -> Key {
    Key::new(format!("CHAT_TICKET#{hash}"), "TICKET")
}

#[derive(Serialize, Deserialize)]
struct PairGuard {
    conversation_id: ConversationId,
}

impl ChatRepo {
    pub fn new(store: Arc<dyn ItemStore>) -> Self {
        Self { store }
    }

    /// Creates `conversation` unless its two users have one, with both users' list entries,
    /// all in one transaction.
    pub async fn start(&self, conversation: &Conversation) -> Result<Started, RepoError> {
        let (a, b) = (conversation.initiator, conversation.receiver);
        let guard = PairGuard { conversation_id: conversation.id };
        let entry = ActivityEntry { conversation: conversation.clone(), last_message: None };
        let activity = conversation.id.to_string();
        let pointer = ActivityPointer { activity: activity.clone() };
        let mut writes = vec![
            Write::put(to_item(pair_key(a, b), &guard)?, Condition::NotExists),
            Write::put(to_item(conversation_key(conversation.id), conversation)?, Condition::NotExists),
        ];
        for user in [a, b] {
            writes.push(Write::put(to_item(pointer_key(user, conversation.id), &pointer)?, Condition::NotExists));
            writes.push(Write::put(to_item(activity_key(user, &activity), &entry)?, Condition::NotExists));
        }
        match self.store.write(writes).await {
            Ok(()) => Ok(Started::Created),
            Err(StoreError::ConditionFailed { write: 0 }) => match self.between(a, b).await? {
                Some(existing) => Ok(Started::Existing(existing)),
                None => Err(RepoError::Conflict),
            },
            Err(StoreError::ConditionFailed { .. }) => Err(RepoError::Conflict),
            Err(error) => Err(error.into()),
        }
    }

    /// The conversation of two users, if they have one.
    pub async fn between(&self, a: UserId, b: UserId) -> Result<Option<ConversationId>, RepoError> {
        let guard = self.store.get(&pair_key(a, b)).await?;
        Ok(guard.map(from_item::<PairGuard>).transpose()?.map(|guard| guard.conversation_id))
    }

    pub async fn conversation(&self, id: ConversationId) -> Result<Option<Conversation>, RepoError> {
        Ok(self.store.get(&conversation_key(id)).await?.map(from_item).transpose()?)
    }

    /// Stores a message: from here on it is not lost, whoever is online.
    pub async fn add_message(&self, conversation: ConversationId, message: &Message) -> Result<(), RepoError> {
        put_new(self.store.as_ref(), message_key(conversation, message.id), message).await
    }

    /// A page of messages, newest first, older than `before`.
    pub async fn messages(
        &self,
        conversation: ConversationId,
        before: Option<MessageId>,
        limit: usize,
    ) -> Result<Vec<Message>, RepoError> {
        let page = Page { limit, descending: true, after: before.map(|id| format!("MSG#{id}")) };
        let items = self.store.query_page(&format!("CONVERSATION#{conversation}"), "MSG#", &page).await?;
        Ok(items.into_iter().map(from_item).collect::<Result<_, _>>()?)
    }

    /// Moves the conversation to the top of `user`'s list with `message` as its last one,
    /// unless a later message is there already. A compare-and-swap on the user's pointer
    /// serialises concurrent messages, so the list never shows an older one as the last.
    pub async fn record_activity(&self, user: UserId, entry: &ActivityEntry) -> Result<(), RepoError> {
        let Some(message) = &entry.last_message else { return Ok(()) };
        let activity = message.id.to_string();
        let conversation = entry.conversation.id;
        for _ in 0..5 {
            let Some(item) = self.store.get(&pointer_key(user, conversation)).await? else { return Ok(()) };
            let seen: ActivityPointer = from_item(item)?;
            if seen.activity >= activity {
                return Ok(());
            }
            let writes = vec![
                Write::put(
                    to_item(pointer_key(user, conversation), &ActivityPointer { activity: activity.clone() })?,
                    Condition::equals("activity", seen.activity.clone()),
                ),
                Write::delete(activity_key(user, &seen.activity), Condition::Always),
                Write::put(to_item(activity_key(user, &activity), entry)?, Condition::Always),
            ];
            match self.store.write(writes).await {
                Ok(()) => return Ok(()),
                Err(StoreError::ConditionFailed { .. }) => continue,
                Err(error) => return Err(error.into()),
            }
        }
        Err(RepoError::Conflict)
    }

    /// A page of `user`'s conversations, latest activity first, after the `after` cursor.
    pub async fn activity(
        &self,
        user: UserId,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<(String, ActivityEntry)>, RepoError> {
        let page = Page { limit, descending: true, after: after.map(|cursor| format!("ACTIVITY#{cursor}")) };
        let items = self.store.query_page(&format!("USER#{user}"), "ACTIVITY#", &page).await?;
        items
            .into_iter()
            .map(|item| {
                let cursor = item.key.sk.trim_start_matches("ACTIVITY#").to_owned();
                Ok((cursor, from_item(item)?))
            })
            .collect()
    }

    pub async fn save_ticket(&self, hash: &str, ticket: &ChatTicket) -> Result<(), RepoError> {
        put_new(self.store.as_ref(), ticket_key(hash), ticket).await
    }

    pub async fn take_ticket(&self, hash: &str) -> Result<Option<ChatTicket>, RepoError> {
        take(self.store.as_ref(), ticket_key(hash)).await
    }

    pub async fn add_connection(&self, connection: &ChatConnection) -> Result<(), RepoError> {
        let mirror = UserConnection {
            connection_id: connection.connection_id.clone(),
            session_epoch: connection.session_epoch,
            ttl: connection.ttl,
        };
        let writes = vec![
            Write::put(to_item(connection_key(&connection.connection_id), connection)?, Condition::NotExists),
            Write::put(
                to_item(user_connection_key(connection.user_id, &connection.connection_id), &mirror)?,
                Condition::Always,
            ),
        ];
        match self.store.write(writes).await {
            Err(StoreError::ConditionFailed { .. }) => Err(RepoError::Conflict),
            other => Ok(other?),
        }
    }

    pub async fn connection(&self, connection_id: &str) -> Result<Option<ChatConnection>, RepoError> {
        Ok(self.store.get(&connection_key(connection_id)).await?.map(from_item).transpose()?)
    }

    /// Counts a message against the connection's rate window, as read in `seen`; `Conflict`
    /// when another message of the connection was counted meanwhile.
    pub async fn count_message(&self, seen: &ChatConnection, next: &ChatConnection) -> Result<(), RepoError> {
        let condition = Condition::Equals(vec![
            ("window_start", seen.window_start.into()),
            ("window_count", seen.window_count.into()),
        ]);
        match self.store.write(vec![Write::put(to_item(connection_key(&next.connection_id), next)?, condition)]).await {
            Err(StoreError::ConditionFailed { .. }) => Err(RepoError::Conflict),
            other => Ok(other?),
        }
    }

    pub async fn remove_connection(&self, user: UserId, connection_id: &str) -> Result<(), RepoError> {
        let writes = vec![
            Write::delete(connection_key(connection_id), Condition::Always),
            Write::delete(user_connection_key(user, connection_id), Condition::Always),
        ];
        Ok(self.store.write(writes).await?)
    }

    /// The ids of the user's connections that have not expired and were opened in the
    /// account's current session `epoch` (a password change or reset voids the others).
    pub async fn live_connections(&self, user: UserId, epoch: u64, now: i64) -> Result<Vec<String>, RepoError> {
        let items = self.store.query(&format!("USER#{user}"), "CONNECTION#").await?;
        let connections = items.into_iter().map(from_item::<UserConnection>).collect::<Result<Vec<_>, _>>()?;
        let live = connections.into_iter().filter(|c| c.ttl > now && c.session_epoch == epoch);
        Ok(live.map(|c| c.connection_id).collect())
    }
}
