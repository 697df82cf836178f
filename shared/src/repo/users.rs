use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use time::OffsetDateTime;

use super::{RepoError, count_write, from_item, read_count, to_item};
use crate::domain::{
    Email, LinkedIdentity, LoginIdentifier, Phone, ProviderName, Role, User, UserId, UserStatus, UserType, Username,
};
use crate::store::{Condition, Item, ItemStore, Key, StoreError, Write};

/// The values no two accounts may share.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UniqueField {
    Email,
    Username,
    Phone,
    /// A provider account (provider and subject).
    Identity,
}

impl std::fmt::Display for UniqueField {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Email => "email",
            Self::Username => "username",
            Self::Phone => "phone",
            Self::Identity => "identity",
        })
    }
}

/// A user with what the API never shows: the password hash and second-factor secrets. Stored
/// as a `UserItem`, so that the domain's and the API's names can change without the items.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(from = "UserItem", into = "UserItem")]
pub struct StoredUser {
    pub user: User,
    pub password_hash: Option<String>,
    pub second_factors: SecondFactors,
    /// The object holding the avatar (the API shows the path that serves its URL).
    pub avatar_key: Option<String>,
    /// Sessions started under an older epoch are void: a password reset or change bumps it,
    /// so a login that checked the old password while the change ran cannot keep a session.
    pub session_epoch: u64,
    /// Addresses the account had until recently: security notices still go to them, so that
    /// whoever changed the address cannot hide what they do next from the one it had.
    pub previous_emails: Vec<PreviousEmail>,
    /// Bumped by every update; updates are compare-and-swap on it.
    pub version: u64,
}

/// The user item's attributes, as every version has stored them. A field added later has a
/// default, so an item written before it still reads (an `avatar` path an earlier version
/// wrote is ignored: `avatar_key` says whether there is one).
#[derive(Serialize, Deserialize)]
struct UserItem {
    id: UserId,
    email: Option<Email>,
    username: Option<Username>,
    phone: Option<Phone>,
    role: Role,
    #[serde(rename = "type")]
    user_type: UserType,
    status: UserStatus,
    extra: Map<String, Value>,
    is_email_verified: bool,
    #[serde(default)]
    pending_email: Option<Email>,
    #[serde(default)]
    identities: Vec<IdentityItem>,
    #[serde(with = "time::serde::rfc3339")]
    created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    updated_at: OffsetDateTime,
    password_hash: Option<String>,
    #[serde(default)]
    second_factors: SecondFactors,
    #[serde(default)]
    avatar_key: Option<String>,
    #[serde(default)]
    session_epoch: u64,
    #[serde(default)]
    previous_emails: Vec<PreviousEmail>,
    #[serde(default)]
    version: u64,
}

#[derive(Serialize, Deserialize)]
struct IdentityItem {
    provider: ProviderName,
    subject: String,
    email: Option<Email>,
    #[serde(with = "time::serde::rfc3339")]
    linked_at: OffsetDateTime,
}

impl From<UserItem> for StoredUser {
    fn from(item: UserItem) -> Self {
        let identities = item.identities.into_iter().map(|identity| LinkedIdentity {
            provider: identity.provider,
            subject: identity.subject,
            email: identity.email,
            linked_at: identity.linked_at,
        });
        Self {
            user: User {
                id: item.id,
                email: item.email,
                username: item.username,
                phone: item.phone,
                role: item.role,
                user_type: item.user_type,
                status: item.status,
                extra: item.extra,
                is_email_verified: item.is_email_verified,
                pending_email: item.pending_email,
                has_avatar: item.avatar_key.is_some(),
                identities: identities.collect(),
                created_at: item.created_at,
                updated_at: item.updated_at,
            },
            password_hash: item.password_hash,
            second_factors: item.second_factors,
            avatar_key: item.avatar_key,
            session_epoch: item.session_epoch,
            previous_emails: item.previous_emails,
            version: item.version,
        }
    }
}

impl From<StoredUser> for UserItem {
    fn from(stored: StoredUser) -> Self {
        let user = stored.user;
        let identities = user.identities.into_iter().map(|identity| IdentityItem {
            provider: identity.provider,
            subject: identity.subject,
            email: identity.email,
            linked_at: identity.linked_at,
        });
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
            identities: identities.collect(),
            created_at: user.created_at,
            updated_at: user.updated_at,
            password_hash: stored.password_hash,
            second_factors: stored.second_factors,
            avatar_key: stored.avatar_key,
            session_epoch: stored.session_epoch,
            previous_emails: stored.previous_emails,
            version: stored.version,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PreviousEmail {
    pub email: Email,
    /// Notices go to it until then (epoch seconds).
    pub until: i64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SecondFactors {
    pub totp: Option<TotpFactor>,
    /// A TOTP secret shown to the user (sealed) but not yet confirmed with a code.
    pub totp_pending: Option<String>,
    /// The user asked for a code by email at every sign-in.
    pub email_codes: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TotpFactor {
    /// The shared secret, sealed with `crypto::sealing::SecretBox` for the user's id.
    pub sealed_secret: String,
    /// The last time step whose code was accepted: a code, or an older one, never works twice.
    pub last_step: u64,
    /// Set up while the account's address was not proven: whoever did may not be its owner, so
    /// a password reset from that address removes it.
    #[serde(default)]
    pub set_up_unverified: bool,
}

#[derive(Clone)]
pub struct UserRepo {
    store: Arc<dyn ItemStore>,
}

fn user_key(id: UserId) -> Key {
    Key::new(format!("USER#{id}"), "PROFILE")
}

fn guard_key(field: UniqueField, canonical: &str) -> Key {
    let prefix = match field {
        UniqueField::Email => "EMAIL",
        UniqueField::Username => "USERNAME",
        UniqueField::Phone => "PHONE",
        UniqueField::Identity => "IDENTITY",
    };
    Key::new(format!("{prefix}#{canonical}"), "UNIQUE")
}

fn guard_item(field: UniqueField, canonical: &str, owner: UserId) -> Item {
    Item { key: guard_key(field, canonical), attributes: object(json!({ "user_id": owner })) }
}

fn object(value: serde_json::Value) -> serde_json::Map<String, serde_json::Value> {
    value.as_object().cloned().unwrap_or_default()
}

/// The values no two accounts may share, in their canonical form.
fn unique_values(user: &User) -> Vec<(UniqueField, String)> {
    let mut values = Vec::new();
    if let Some(email) = &user.email {
        values.push((UniqueField::Email, email.as_str().to_owned()));
    }
    if let Some(username) = &user.username {
        values.push((UniqueField::Username, username.canonical()));
    }
    if let Some(phone) = &user.phone {
        values.push((UniqueField::Phone, phone.as_str().to_owned()));
    }
    for identity in &user.identities {
        values.push((UniqueField::Identity, identity_canonical(&identity.provider, &identity.subject)));
    }
    values
}

fn identity_canonical(provider: &ProviderName, subject: &str) -> String {
    format!("{provider}#{subject}")
}

/// The partition that lists every account, in creation order: what `GET /v1/users` filters.
const DIRECTORY: &str = "DIRECTORY";

fn directory_key(user: &User) -> Key {
    Key::new(DIRECTORY, format!("{:020}#{}", user.created_at.unix_timestamp_nanos(), user.id))
}

fn admin_count_key() -> Key {
    Key::new("ADMINS", "COUNT")
}

/// What the directory keeps of an account: enough to filter by name and email and to order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DirectoryEntry {
    pub id: UserId,
    pub username: Option<Username>,
    pub email: Option<Email>,
    pub status: UserStatus,
}

impl DirectoryEntry {
    fn of(user: &User) -> Self {
        Self { id: user.id, username: user.username.clone(), email: user.email.clone(), status: user.status }
    }
}

/// What a guard item says: who holds the value.
#[derive(Deserialize)]
struct Guard {
    user_id: UserId,
}

fn identifier_key(identifier: &LoginIdentifier) -> Key {
    match identifier {
        LoginIdentifier::Email(email) => guard_key(UniqueField::Email, email.as_str()),
        LoginIdentifier::Username(username) => guard_key(UniqueField::Username, &username.canonical()),
        LoginIdentifier::Phone(phone) => guard_key(UniqueField::Phone, phone.as_str()),
    }
}

impl UserRepo {
    pub fn new(store: Arc<dyn ItemStore>) -> Self {
        Self { store }
    }

    /// The writes that create a user: the record, one guard item per unique value and the
    /// directory entry, each on the condition that it does not exist yet. Applied together,
    /// either the account exists with all its values reserved, or nothing was written.
    pub fn creation_writes(user: &User, password_hash: Option<String>) -> Result<Vec<Write>, StoreError> {
        let record = StoredUser {
            user: user.clone(),
            password_hash,
            second_factors: SecondFactors::default(),
            avatar_key: None,
            session_epoch: 0,
            previous_emails: Vec::new(),
            version: 1,
        };
        let mut writes = vec![Write::put(to_item(user_key(user.id), &record)?, Condition::NotExists)];
        for (field, canonical) in unique_values(user) {
            writes.push(Write::put(guard_item(field, &canonical, user.id), Condition::NotExists));
        }
        writes.push(Write::put(to_item(directory_key(user), &DirectoryEntry::of(user))?, Condition::NotExists));
        Ok(writes)
    }

    /// Creates the user together with `also`. A taken unique value is `Taken`; any other
    /// failed condition (of `also`) is `Conflict`.
    pub async fn create(&self, user: &User, password_hash: Option<String>, also: Vec<Write>) -> Result<(), RepoError> {
        let guards = unique_values(user);
        let mut writes = Self::creation_writes(user, password_hash)?;
        writes.extend(also);
        match self.store.write(writes).await {
            Ok(()) => Ok(()),
            Err(StoreError::ConditionFailed { write }) if (1..=guards.len()).contains(&write) => {
                Err(RepoError::Taken(guards[write - 1].0))
            }
            Err(StoreError::ConditionFailed { .. }) => Err(RepoError::Conflict),
            Err(error) => Err(error.into()),
        }
    }

    /// Stores `stored` (as changed by the caller) if nobody updated it since it was read, together
    /// with `also`: all or nothing. `RepoError::Conflict` when any condition fails.
    pub async fn save(&self, stored: &StoredUser, also: Vec<Write>) -> Result<(), RepoError> {
        match self.store.write(Self::save_writes(stored, also)?).await {
            Err(StoreError::ConditionFailed { .. }) => Err(RepoError::Conflict),
            other => Ok(other?),
        }
    }

    /// Like `save`, for changes to what other records mirror: unique values (whose guard items
    /// are swapped in the same transaction, so a taken value is `Taken` and changes nothing),
    /// and what the directory lists. A withdrawn account releases its values and leaves the
    /// directory.
    pub async fn save_profile(&self, before: &User, after: &StoredUser, also: Vec<Write>) -> Result<(), RepoError> {
        let withdrawn = after.user.status == UserStatus::Withdrawn;
        let old: Vec<(UniqueField, String)> = unique_values(before);
        let new: Vec<(UniqueField, String)> = if withdrawn { Vec::new() } else { unique_values(&after.user) };
        let mut writes = Vec::new();
        for released in old.iter().filter(|value| !new.contains(value)) {
            let owned = Condition::equals("user_id", json!(before.id));
            writes.push(Write::delete(guard_key(released.0, &released.1), owned));
        }
        let mut claimed = Vec::new();
        for value in new.iter().filter(|value| !old.contains(value)) {
            claimed.push((writes.len() + 1, value.0));
            writes.push(Write::put(guard_item(value.0, &value.1, before.id), Condition::NotExists));
        }
        let entry = directory_key(&after.user);
        writes.push(match withdrawn {
            true => Write::delete(entry, Condition::Always),
            false => Write::put(to_item(entry, &DirectoryEntry::of(&after.user))?, Condition::Always),
        });
        writes.extend(also);
        match self.store.write(Self::save_writes(after, writes)?).await {
            Err(StoreError::ConditionFailed { write }) => {
                match claimed.iter().find(|(position, _)| *position == write) {
                    Some((_, field)) => Err(RepoError::Taken(*field)),
                    None => Err(RepoError::Conflict),
                }
            }
            other => Ok(other?),
        }
    }

    /// The compare-and-swap write of the user record, first, then `also`.
    fn save_writes(stored: &StoredUser, also: Vec<Write>) -> Result<Vec<Write>, StoreError> {
        let mut next = stored.clone();
        next.version += 1;
        next.user.updated_at = time::OffsetDateTime::now_utc();
        let mut writes = vec![Write::put(
            to_item(user_key(stored.user.id), &next)?,
            // Version 0 is a record written before versions existed: it has no `version`.
            match stored.version {
                0 => Condition::equals("version", serde_json::Value::Null),
                version => Condition::equals("version", version),
            },
        )];
        writes.extend(also);
        Ok(writes)
    }

    /// A transaction check that `id` is an active admin.
    pub fn admin_check(id: UserId) -> Write {
        Write::check(
            user_key(id),
            Condition::Equals(vec![("role", json!(Role::Admin)), ("status", json!(UserStatus::Normal))]),
        )
    }

    /// A transaction check that `id` is an active account.
    pub fn active_check(id: UserId) -> Write {
        Write::check(user_key(id), Condition::equals("status", json!(UserStatus::Normal)))
    }

    /// Every listed account, oldest first (creation time, then id).
    pub async fn directory(&self) -> Result<Vec<DirectoryEntry>, RepoError> {
        let items = self.store.query(DIRECTORY, "").await?;
        Ok(items.into_iter().map(from_item).collect::<Result<_, _>>()?)
    }

    /// How many active accounts have the admin role.
    pub async fn admin_count(&self) -> Result<u64, RepoError> {
        read_count(self.store.as_ref(), &admin_count_key()).await
    }

    /// The write that moves the admin count from `seen` to `count`, failing if it moved
    /// meanwhile: role changes that race are serialised on it, so the last admin stays.
    pub fn admin_count_write(seen: u64, count: u64) -> Write {
        count_write(admin_count_key(), seen, count)
    }

    pub async fn find_by_id(&self, id: UserId) -> Result<Option<StoredUser>, RepoError> {
        Ok(self.store.get(&user_key(id)).await?.map(from_item).transpose()?)
    }

    /// The account that signs in with this provider account.
    pub async fn find_by_identity(
        &self,
        provider: &ProviderName,
        subject: &str,
    ) -> Result<Option<StoredUser>, RepoError> {
        let guard = guard_key(UniqueField::Identity, &identity_canonical(provider, subject));
        match self.store.get(&guard).await? {
            Some(guard) => self.find_by_id(from_item::<Guard>(guard)?.user_id).await,
            None => Ok(None),
        }
    }

    /// Whether some account holds this email address.
    pub async fn email_taken(&self, email: &Email) -> Result<bool, RepoError> {
        Ok(self.store.get(&guard_key(UniqueField::Email, email.as_str())).await?.is_some())
    }

    pub async fn find_by_login(&self, identifier: &LoginIdentifier) -> Result<Option<StoredUser>, RepoError> {
        let Some(guard) = self.store.get(&identifier_key(identifier)).await? else {
            // Read a user item anyway, so that an unknown login costs the same two round trips
            // as a known one: the difference would tell an attacker which accounts exist.
            self.store.get(&user_key(UserId(uuid::Uuid::nil()))).await?;
            return Ok(None);
        };
        let guard: Guard = from_item(guard)?;
        self.find_by_id(guard.user_id).await
    }
}
