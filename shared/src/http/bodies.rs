//! Bodies several slices share. Those that show stored records are their own structs, so that
//! renaming a field of the API never changes an item in the table, nor the reverse.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use time::OffsetDateTime;
use utoipa::ToSchema;

use super::schemas::TypedPassword;
use crate::domain::{
    Email, LinkedIdentity, Phone, ProviderName, PublicProfile, Role, User, UserId, UserStatus, UserType, Username,
};
use crate::kernel::TokenPair;

/// A user as the API shows it to its owner (and to admins).
#[derive(Debug, Serialize, ToSchema)]
pub struct UserBody {
    pub id: UserId,
    pub email: Option<Email>,
    pub username: Option<Username>,
    pub phone: Option<Phone>,
    pub role: Role,
    #[serde(rename = "type")]
    pub user_type: UserType,
    pub status: UserStatus,
    /// The owner's free-form object (at most 4 KiB of JSON).
    pub extra: Map<String, Value>,
    pub is_email_verified: bool,
    /// A new address asked for and not confirmed yet.
    pub pending_email: Option<Email>,
    /// The path that answers a short-lived URL of the avatar, when there is one.
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
            avatar: user.has_avatar.then(|| avatar_path(user.id)),
            identities: user.identities.into_iter().map(IdentityBody::from).collect(),
            created_at: user.created_at,
            updated_at: user.updated_at,
        }
    }
}

/// What any signed-in user may see of another.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ProfileBody {
    pub id: UserId,
    pub username: Option<Username>,
    pub avatar: Option<String>,
    /// True while the user has a live session or an open chat connection.
    pub is_connected: bool,
}

impl From<PublicProfile> for ProfileBody {
    fn from(profile: PublicProfile) -> Self {
        Self {
            id: profile.id,
            username: profile.username,
            avatar: profile.has_avatar.then(|| avatar_path(profile.id)),
            is_connected: profile.is_connected,
        }
    }
}

/// Where a user's avatar URL is served: what `avatar` shows when there is one.
fn avatar_path(id: UserId) -> String {
    format!("/v1/users/{id}/avatar")
}

/// A provider account linked to the user.
#[derive(Debug, Serialize, ToSchema)]
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

/// What a sign-in, a registration or a refresh answers.
#[derive(Serialize, ToSchema)]
pub struct TokenResponse {
    user: UserBody,
    /// A JWT (EdDSA) to send as `Authorization: Bearer`.
    access_token: String,
    /// Opaque; spent by `POST /v1/auth/refresh`, which answers a new one.
    refresh_token: String,
    #[schema(value_type = String, pattern = "^Bearer$")]
    token_type: &'static str,
    /// Seconds until the access token expires.
    expires_in: i64,
}

impl From<TokenPair> for TokenResponse {
    fn from(pair: TokenPair) -> Self {
        Self {
            user: pair.user.into(),
            access_token: pair.access_token,
            refresh_token: pair.refresh_token,
            token_type: "Bearer",
            expires_in: pair.expires_in,
        }
    }
}

/// A body that only re-enters the password, to confirm a sensitive change.
#[derive(Deserialize, ToSchema)]
pub struct PasswordConfirmation {
    #[schema(value_type = TypedPassword)]
    pub password: String,
}

/// A change that was made.
#[derive(Serialize, ToSchema)]
pub struct Success {
    pub success: bool,
}

impl Success {
    pub const DONE: Self = Self { success: true };
}

/// A request that was taken (`202`), answered the same whatever the account.
#[derive(Serialize, ToSchema)]
pub struct Accepted {
    pub success: bool,
    pub message: &'static str,
}

impl Accepted {
    pub fn new(message: &'static str) -> Self {
        Self { success: true, message }
    }
}

/// A change that ended sessions.
#[derive(Serialize, ToSchema)]
pub struct SessionsEnded {
    pub success: bool,
    /// How many sessions it ended.
    pub sessions_ended: usize,
}
