//! Domain types: values that are valid by construction, and the user model.

mod chat;
mod user;
mod values;

pub use chat::{Conversation, ConversationId, Message, MessageId, MessageText};
pub use user::{LinkedIdentity, PublicProfile, Role, User, UserId, UserStatus, UserType};
pub use values::{
    Email, Extra, ImageType, InvalidValue, LoginIdentifier, Password, PasswordPolicy, Pattern, PatternAllowance, Phone,
    ProviderName, Username,
};
