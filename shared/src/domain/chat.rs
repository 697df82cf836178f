//! Conversations between two users and their messages.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

use super::{InvalidValue, UserId};

/// A conversation's id: a UUIDv7, so ids sort by creation time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ConversationId(pub Uuid);

/// A message's id: a UUIDv7, so a conversation's messages sort by the time they were stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct MessageId(pub Uuid);

macro_rules! time_sortable_id {
    ($($name:ident),*) => {$(
        impl $name {
            pub fn new() -> Self {
                Self(Uuid::now_v7())
            }

            pub fn parse(raw: &str) -> Option<Self> {
                Uuid::parse_str(raw).ok().map(Self)
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                // Hyphenated lower-case hex: fixed width, so string order is time order.
                self.0.fmt(f)
            }
        }
    )*};
}
time_sortable_id!(ConversationId, MessageId);

/// The text of a message: not blank, at most 4 KiB of UTF-8.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct MessageText(String);

impl MessageText {
    pub const MAX_BYTES: usize = 4096;

    pub fn parse(raw: &str) -> Result<Self, InvalidValue> {
        if raw.trim().is_empty() {
            return Err(InvalidValue("must not be empty".into()));
        }
        if raw.len() > Self::MAX_BYTES {
            return Err(InvalidValue(format!("must be at most {} bytes of UTF-8", Self::MAX_BYTES)));
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for MessageText {
    type Error = InvalidValue;
    fn try_from(raw: String) -> Result<Self, InvalidValue> {
        Self::parse(&raw)
    }
}

impl From<MessageText> for String {
    fn from(text: MessageText) -> String {
        text.0
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Conversation {
    pub id: ConversationId,
    pub initiator: UserId,
    pub receiver: UserId,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

impl Conversation {
    pub fn between(initiator: UserId, receiver: UserId) -> Self {
        Self { id: ConversationId::new(), initiator, receiver, created_at: OffsetDateTime::now_utc() }
    }

    pub fn has_participant(&self, user: UserId) -> bool {
        self.initiator == user || self.receiver == user
    }

    /// The participant who is not `user`.
    pub fn other_than(&self, user: UserId) -> UserId {
        if self.initiator == user { self.receiver } else { self.initiator }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    pub id: MessageId,
    pub sender: UserId,
    pub text: MessageText,
    #[serde(with = "time::serde::rfc3339")]
    pub sent_at: OffsetDateTime,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_not_blank_and_at_most_4_kib_of_utf8() {
        assert!(MessageText::parse(" \n").is_err());
        assert!(MessageText::parse(&"é".repeat(2048)).is_ok(), "4096 bytes");
        assert!(MessageText::parse(&"é".repeat(2049)).is_err(), "2049 characters, 4098 bytes");
    }

    #[test]
    fn ids_made_later_sort_later_as_strings() {
        let ids: Vec<String> = (0..100).map(|_| MessageId::new().to_string()).collect();
        let mut sorted = ids.clone();
        sorted.sort();
        assert_eq!(ids, sorted);
    }
}
