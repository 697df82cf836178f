use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use time::OffsetDateTime;
use uuid::Uuid;

use super::{Email, Phone, ProviderName, Username};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct UserId(pub Uuid);

impl UserId {
    pub fn new() -> Self {
        Self(Uuid::new_v4())
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Uuid::parse_str(raw).ok().map(Self)
    }
}

impl Default for UserId {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Display for UserId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Role {
    User,
    Admin,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum UserStatus {
    Normal,
    Deleted,
    Withdrawn,
}

/// How the account was first created: with a password, or by a sign-in provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum UserType {
    Email,
    Google,
    Apple,
    Facebook,
    Kakao,
    #[serde(rename = "FORTYTWO")]
    FortyTwo,
    /// Any other OpenID Connect provider the deployment configured.
    Oidc,
}

impl UserType {
    pub const ALL: [Self; 7] =
        [Self::Email, Self::Google, Self::Apple, Self::Facebook, Self::Kakao, Self::FortyTwo, Self::Oidc];

    /// The type of an account whose first identity came from `provider`.
    pub fn of_provider(provider: &ProviderName) -> Self {
        match provider.as_str() {
            "google" => Self::Google,
            "apple" => Self::Apple,
            "facebook" => Self::Facebook,
            "kakao" => Self::Kakao,
            "42" => Self::FortyTwo,
            _ => Self::Oidc,
        }
    }
}

/// A provider account the user signs in with: unique across all users.
#[derive(Debug, Clone, PartialEq)]
pub struct LinkedIdentity {
    pub provider: ProviderName,
    /// The provider's stable id of the account (`sub`).
    pub subject: String,
    /// The address the provider vouched for when it was linked, if it shared one.
    pub email: Option<Email>,
    pub linked_at: OffsetDateTime,
}

/// A user account. The API shows it as `http::bodies::UserBody`, the store keeps it as
/// `repo`'s own item; secrets live beside it there, not in it.
#[derive(Debug, Clone, PartialEq)]
pub struct User {
    pub id: UserId,
    /// Absent for an account made by a provider that shared no verified address.
    pub email: Option<Email>,
    pub username: Option<Username>,
    pub phone: Option<Phone>,
    pub role: Role,
    pub user_type: UserType,
    pub status: UserStatus,
    pub extra: Map<String, Value>,
    pub is_email_verified: bool,
    /// A new address asked for and not confirmed yet: it is not the account's until the link
    /// sent to it is used.
    pub pending_email: Option<Email>,
    /// Whether the account has an avatar (the stored record has its object's key).
    pub has_avatar: bool,
    /// The sign-in providers linked to the account.
    pub identities: Vec<LinkedIdentity>,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

/// What any signed-in user may see of another: never the email, phone or role.
#[derive(Debug, Clone, PartialEq)]
pub struct PublicProfile {
    pub id: UserId,
    pub username: Option<Username>,
    pub has_avatar: bool,
    /// True while the user has a live session.
    pub is_connected: bool,
}

impl User {
    /// A fresh password account.
    pub fn new_email_user(email: Email, username: Option<Username>, phone: Option<Phone>, now: OffsetDateTime) -> Self {
        Self {
            id: UserId::new(),
            email: Some(email),
            username,
            phone,
            role: Role::User,
            user_type: UserType::Email,
            status: UserStatus::Normal,
            extra: Map::new(),
            is_email_verified: false,
            pending_email: None,
            has_avatar: false,
            identities: Vec::new(),
            created_at: now,
            updated_at: now,
        }
    }

    /// A fresh account made by signing in with `identity`: its email, if the provider shared
    /// one, is verified (providers only share addresses they verified).
    pub fn new_provider_user(identity: LinkedIdentity) -> Self {
        let now = identity.linked_at;
        Self {
            id: UserId::new(),
            email: identity.email.clone(),
            username: None,
            phone: None,
            role: Role::User,
            user_type: UserType::of_provider(&identity.provider),
            status: UserStatus::Normal,
            extra: Map::new(),
            is_email_verified: identity.email.is_some(),
            pending_email: None,
            has_avatar: false,
            identities: vec![identity],
            created_at: now,
            updated_at: now,
        }
    }

    /// What names the account in an authenticator app: its email, else its username, else its id.
    pub fn account_label(&self) -> String {
        match (&self.email, &self.username) {
            (Some(email), _) => email.to_string(),
            (None, Some(username)) => username.to_string(),
            (None, None) => self.id.to_string(),
        }
    }

    pub fn identity(&self, provider: &ProviderName) -> Option<&LinkedIdentity> {
        self.identities.iter().find(|identity| identity.provider == *provider)
    }

    pub fn is_active(&self) -> bool {
        self.status == UserStatus::Normal
    }

    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }

    pub fn public_profile(&self, is_connected: bool) -> PublicProfile {
        PublicProfile { id: self.id, username: self.username.clone(), has_avatar: self.has_avatar, is_connected }
    }
}
