//! Chat: conversations between two users over REST, and messages in real time over a
//! WebSocket connection opened with a single-use ticket. A message is stored before anyone is
//! told about it, so an acknowledged message is never lost: an offline receiver reads it later.

use std::collections::HashMap;
use std::sync::Arc;

use futures::future::join_all;

use super::frames::{ChatDelivery, DeliveryError, Outgoing, ServerFrame};
use crate::crypto::secrets;
use crate::domain::{
    Conversation, ConversationId, LoginIdentifier, Message, MessageId, PublicProfile, UserId, Username,
};
use crate::kernel::{Failure, Kernel, Principal, Profiles, now, retry_on_conflict, settled};
use crate::repo::{ActivityEntry, ChatConnection, ChatRepo, ChatTicket, RepoError, Started, UserRepo};

#[derive(Debug, thiserror::Error)]
pub enum ChatError {
    #[error("no such user")]
    NoSuchUser,
    #[error("you cannot start a conversation with yourself")]
    ConversationWithYourself,
    #[error("the user is not connected; a conversation can only be started with a connected user")]
    UserNotConnected,
    #[error("no such conversation")]
    NoSuchConversation,
    #[error("only the two participants may {} a conversation", if *writing { "write to" } else { "read" })]
    NotAParticipant { writing: bool },
    /// A chat connection without a valid ticket, or a frame on a connection that is not open.
    #[error("the chat ticket is invalid, expired or already used")]
    InvalidTicket,
    #[error("too many messages on this connection; retry in {retry_after_seconds} seconds")]
    TooManyMessages { retry_after_seconds: i64 },
    #[error(transparent)]
    Failure(#[from] Failure),
}

impl From<RepoError> for ChatError {
    fn from(error: RepoError) -> Self {
        Self::Failure(error.into())
    }
}

const TICKET_VALID_SECONDS: i64 = 30;
/// API Gateway closes WebSocket connections after two hours; a record outliving its
/// connection (a missed `$disconnect`) expires a little later.
const CONNECTION_TTL_SECONDS: i64 = 2 * 3600 + 300;
/// The window of the per-connection message rate limit.
const RATE_WINDOW_SECONDS: i64 = 10;

/// A conversation with its participants as anyone may see them.
#[derive(Debug)]
pub struct ConversationView {
    pub conversation_id: ConversationId,
    pub initiator: PublicProfile,
    pub receiver: PublicProfile,
}

#[derive(Debug)]
pub struct ConversationSummary {
    pub view: ConversationView,
    pub last_message: Option<Message>,
}

#[derive(Debug)]
pub struct ConversationList {
    pub conversations: Vec<ConversationSummary>,
    /// Pass as `cursor` for the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

#[derive(Debug)]
pub struct ConversationMessages {
    pub view: ConversationView,
    /// Newest first.
    pub messages: Vec<Message>,
    /// Pass as `before` for older messages; `null` when there are none.
    pub next_cursor: Option<String>,
}

pub struct ChatService {
    users: UserRepo,
    chat: ChatRepo,
    profiles: Arc<Profiles>,
    rate_limit: u32,
}

impl ChatService {
    pub fn new(kernel: &Kernel) -> Self {
        Self {
            users: kernel.users(),
            chat: ChatRepo::new(Arc::clone(&kernel.store)),
            profiles: Arc::clone(&kernel.profiles),
            rate_limit: kernel.config.chat_rate_limit,
        }
    }

    /// `POST /v1/conversations`: the conversation with `username` (`true` when it is new).
    /// A new one needs the other user to be connected; an existing one is returned as is.
    pub async fn start_conversation(
        &self,
        principal: &Principal,
        username: Username,
    ) -> Result<(ConversationView, bool), ChatError> {
        let target = match self.users.find_by_login(&LoginIdentifier::Username(username)).await? {
            Some(target) if target.user.is_active() => target,
            _ => return Err(ChatError::NoSuchUser),
        };
        let me = principal.user.id;
        if target.user.id == me {
            return Err(ChatError::ConversationWithYourself);
        }
        if let Some(existing) = self.chat.between(me, target.user.id).await? {
            return Ok((self.view_of(&self.conversation_record(existing).await?).await?, false));
        }
        if !self.profiles.is_connected(&target, now().unix_timestamp()).await? {
            return Err(ChatError::UserNotConnected);
        }
        let conversation = Conversation::between(me, target.user.id);
        let (conversation, created) = match self.chat.start(&conversation).await? {
            Started::Created => (conversation, true),
            // The other user started it at the same moment.
            Started::Existing(id) => (self.conversation_record(id).await?, false),
        };
        Ok((self.view_of(&conversation).await?, created))
    }

    /// `GET /v1/conversations`: the caller's conversations, latest activity first.
    pub async fn conversations(
        &self,
        principal: &Principal,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<ConversationList, ChatError> {
        let entries = self.chat.activity(principal.user.id, cursor, limit).await?;
        let next_cursor = (entries.len() == limit).then(|| entries.last().map(|(cursor, _)| cursor.clone())).flatten();
        let views = self.views_of(&entries.iter().map(|(_, entry)| &entry.conversation).collect::<Vec<_>>()).await?;
        let conversations = entries
            .into_iter()
            .zip(views)
            .map(|((_, entry), view)| ConversationSummary { view, last_message: entry.last_message })
            .collect();
        Ok(ConversationList { conversations, next_cursor })
    }

    /// `GET /v1/conversations/{id}`: its messages, newest first; only for its participants.
    pub async fn conversation_messages(
        &self,
        principal: &Principal,
        id: ConversationId,
        before: Option<MessageId>,
        limit: usize,
    ) -> Result<ConversationMessages, ChatError> {
        let conversation = self.conversation_record(id).await?;
        if !conversation.has_participant(principal.user.id) {
            return Err(ChatError::NotAParticipant { writing: false });
        }
        let messages = self.chat.messages(id, before, limit).await?;
        let next_cursor = (messages.len() == limit).then(|| messages.last().map(|m| m.id.to_string())).flatten();
        Ok(ConversationMessages { view: self.view_of(&conversation).await?, messages, next_cursor })
    }

    /// `POST /v1/chat/ticket`: a single-use ticket that opens one WebSocket connection within
    /// 30 seconds. Answers the ticket and its lifetime in seconds.
    pub async fn issue_chat_ticket(&self, principal: &Principal) -> Result<(String, i64), ChatError> {
        let session_epoch = principal.session_epoch;
        let ticket = secrets::generate();
        let expires_at = now().unix_timestamp() + TICKET_VALID_SECONDS;
        let record = ChatTicket { user_id: principal.user.id, session_epoch, expires_at, ttl: expires_at };
        self.chat.save_ticket(&secrets::hash(&ticket), &record).await?;
        Ok((ticket, TICKET_VALID_SECONDS))
    }

    /// A WebSocket connection asks to open with `ticket`: spends it and records the connection.
    pub async fn open_chat_connection(&self, ticket: &str, connection_id: &str) -> Result<UserId, ChatError> {
        let now = now().unix_timestamp();
        let record = match self.chat.take_ticket(&secrets::hash(ticket)).await? {
            Some(record) if record.expires_at > now => record,
            _ => return Err(ChatError::InvalidTicket),
        };
        // A password change or reset since the ticket was issued voids it, as it voids logins.
        let session_epoch = match self.users.find_by_id(record.user_id).await? {
            Some(stored) if stored.user.is_active() && stored.session_epoch == record.session_epoch => {
                stored.session_epoch
            }
            _ => return Err(ChatError::InvalidTicket),
        };
        let connection = ChatConnection {
            connection_id: connection_id.to_owned(),
            user_id: record.user_id,
            session_epoch,
            ttl: now + CONNECTION_TTL_SECONDS,
            window_start: now,
            window_count: 0,
        };
        self.chat.add_connection(&connection).await?;
        tracing::info!(user_id = %record.user_id, "chat connection opened");
        Ok(record.user_id)
    }

    /// The connection closed.
    pub async fn close_chat_connection(&self, connection_id: &str) -> Result<(), ChatError> {
        if let Some(connection) = self.chat.connection(connection_id).await? {
            self.chat.remove_connection(connection.user_id, connection_id).await?;
        }
        Ok(())
    }

    /// Stores a message sent on `connection_id`, acknowledges it to that connection, and pushes
    /// it to every other live connection of both participants.
    pub async fn send_chat_message(
        &self,
        connection_id: &str,
        outgoing: Outgoing,
        delivery: &dyn ChatDelivery,
    ) -> Result<(), ChatError> {
        let connection = self.count_chat_message(connection_id).await?;
        let sender = connection.user_id;
        let (account, conversation) =
            tokio::join!(self.users.find_by_id(sender), self.conversation_record(outgoing.conversation_id));
        // A connection speaks for its account only while the account is active and no password
        // change or reset has voided the logins of the time it was opened.
        match account? {
            Some(stored) if stored.user.is_active() && stored.session_epoch == connection.session_epoch => {}
            _ => {
                self.chat.remove_connection(sender, connection_id).await?;
                return Err(ChatError::InvalidTicket);
            }
        }
        let conversation = conversation?;
        if !conversation.has_participant(sender) {
            return Err(ChatError::NotAParticipant { writing: true });
        }
        let message = Message { id: MessageId::new(), sender, text: outgoing.text, sent_at: now() };
        self.chat.add_message(conversation.id, &message).await?;

        // The others are told at once; the sender's ack waits for the conversation lists too,
        // so a client that lists its conversations after the ack sees the message there.
        let pushed = ServerFrame::Message { conversation_id: conversation.id, message: message.clone() };
        let entry = ActivityEntry { conversation: conversation.clone(), last_message: Some(message.clone()) };
        let (delivered, _) = tokio::join!(
            self.push_to_others(&conversation, &connection, connection_id, &pushed, delivery),
            join_all([conversation.initiator, conversation.receiver].map(|user| self.record_activity(user, &entry)))
        );
        // The message is stored: the sender gets its ack whatever delivery met, so it never
        // sends it again (the receivers read it over REST if a push was lost).
        if let Err(error) = delivered {
            tracing::warn!(%error, "a stored message was not pushed to every connection");
        }
        let ack = ServerFrame::Ack { client_id: outgoing.client_id, conversation_id: conversation.id, message };
        if !self.deliver(delivery, sender, connection_id, &ack).await {
            tracing::info!(user_id = %sender, "a message was stored, but its sender disconnected before the ack");
        }
        Ok(())
    }

    /// Pushes `frame` to every live connection of the other participant and to the sender's
    /// other connections.
    async fn push_to_others(
        &self,
        conversation: &Conversation,
        sender: &ChatConnection,
        connection_id: &str,
        frame: &ServerFrame,
        delivery: &dyn ChatDelivery,
    ) -> Result<(), ChatError> {
        let (now, receiver) = (now().unix_timestamp(), conversation.other_than(sender.user_id));
        let (mine, receiver_account) = tokio::join!(
            self.chat.live_connections(sender.user_id, sender.session_epoch, now),
            self.users.find_by_id(receiver)
        );
        let theirs = match receiver_account? {
            Some(stored) if stored.user.is_active() => {
                self.chat.live_connections(receiver, stored.session_epoch, now).await?
            }
            _ => Vec::new(),
        };
        let (mine, sender) = (mine?, sender.user_id);
        let others_of_mine = mine.iter().filter(|id| id.as_str() != connection_id).map(|id| (sender, id));
        let targets = theirs.iter().map(|id| (receiver, id)).chain(others_of_mine);
        join_all(targets.map(|(user, id)| self.deliver(delivery, user, id, frame))).await;
        Ok(())
    }

    /// Moves the conversation up `user`'s list. The message is stored whatever happens here.
    async fn record_activity(&self, user: UserId, entry: &ActivityEntry) {
        if let Err(error) = self.chat.record_activity(user, entry).await {
            tracing::warn!(user_id = %user, %error, "a conversation list was not updated");
        }
    }

    /// Pushes one frame; a connection that is gone is forgotten. Answers whether it arrived.
    async fn deliver(
        &self,
        delivery: &dyn ChatDelivery,
        user: UserId,
        connection_id: &str,
        frame: &ServerFrame,
    ) -> bool {
        match delivery.push(connection_id, frame).await {
            Ok(()) => true,
            Err(DeliveryError::Gone) => {
                if let Err(error) = self.chat.remove_connection(user, connection_id).await {
                    tracing::warn!(%error, "a gone chat connection was not removed");
                }
                false
            }
            Err(error) => {
                tracing::warn!(user_id = %user, %error, "a chat frame was not delivered");
                false
            }
        }
    }

    /// Finds the connection's user and counts the message against the connection's rate:
    /// at most `chat_rate_limit` messages per 10 seconds.
    async fn count_chat_message(&self, connection_id: &str) -> Result<ChatConnection, ChatError> {
        retry_on_conflict(|_| async move {
            let seen = self.chat.connection(connection_id).await?.ok_or(ChatError::InvalidTicket)?;
            let now = now().unix_timestamp();
            let mut next = seen.clone();
            if now - seen.window_start >= RATE_WINDOW_SECONDS {
                (next.window_start, next.window_count) = (now, 0);
            }
            if next.window_count >= self.rate_limit {
                let retry_after_seconds = next.window_start + RATE_WINDOW_SECONDS - now;
                return Err(ChatError::TooManyMessages { retry_after_seconds });
            }
            next.window_count += 1;
            // Another frame of this connection counted first (a lost swap) is counted on top of.
            settled(self.chat.count_message(&seen, &next).await.map(|()| next))
        })
        .await
    }

    async fn conversation_record(&self, id: ConversationId) -> Result<Conversation, ChatError> {
        self.chat.conversation(id).await?.ok_or(ChatError::NoSuchConversation)
    }

    async fn view_of(&self, conversation: &Conversation) -> Result<ConversationView, ChatError> {
        Ok(self.views_of(&[conversation]).await?.remove(0))
    }

    /// The conversations with their participants' public profiles, each user read once (the
    /// caller of a conversation list is in every one of them).
    async fn views_of(&self, conversations: &[&Conversation]) -> Result<Vec<ConversationView>, ChatError> {
        let mut ids: Vec<UserId> = conversations.iter().flat_map(|c| [c.initiator, c.receiver]).collect();
        ids.sort_by_key(|id| id.0);
        ids.dedup();
        let users = join_all(ids.iter().map(|id| self.users.find_by_id(*id))).await;
        let users = users.into_iter().map(|user| user?.ok_or(ChatError::NoSuchUser)).collect::<Result<Vec<_>, _>>()?;
        let profiles: HashMap<UserId, PublicProfile> =
            self.profiles.of(users).await?.into_iter().map(|profile| (profile.id, profile)).collect();
        let profile = |id: UserId| profiles.get(&id).cloned().ok_or(ChatError::NoSuchUser);
        conversations
            .iter()
            .map(|c| {
                Ok(ConversationView {
                    conversation_id: c.id,
                    initiator: profile(c.initiator)?,
                    receiver: profile(c.receiver)?,
                })
            })
            .collect()
    }
}
