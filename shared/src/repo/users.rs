use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::json;

use super::{RepoError, from_item, to_item};
use crate::domain::{LoginIdentifier, User, UserId};
use crate::store::{Condition, Item, ItemStore, Key, StoreError, Write};

/// The values no two accounts may share.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UniqueField {
    Email,
    Username,
    Phone,
}

impl std::fmt::Display for UniqueField {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Email => "email",
            Self::Username => "username",
            Self::Phone => "phone",
        })
    }
}

/// A user with what the API never shows: the password hash and second-factor secrets.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StoredUser {
    #[serde(flatten)]
    pub user: User,
    pub password_hash: Option<String>,
    #[serde(default)]
    pub second_factors: SecondFactors,
    /// Bumped by every update; updates are compare-and-swap on it.
    #[serde(default)]
    pub version: u64,
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
    };
    Key::new(format!("{prefix}#{canonical}"), "UNIQUE")
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

    /// Writes the user and one guard item per unique value in one transaction: either the
    /// account exists with all its values reserved, or nothing was written.
    pub async fn create(&self, user: &User, password_hash: Option<String>) -> Result<(), RepoError> {
        let mut guards = vec![(UniqueField::Email, user.email.as_str().to_owned())];
        if let Some(username) = &user.username {
            guards.push((UniqueField::Username, username.canonical()));
        }
        if let Some(phone) = &user.phone {
            guards.push((UniqueField::Phone, phone.as_str().to_owned()));
        }
        let record =
            StoredUser { user: user.clone(), password_hash, second_factors: SecondFactors::default(), version: 0 };
        let mut writes = vec![Write::put(to_item(user_key(user.id), &record)?, Condition::NotExists)];
        for (field, canonical) in &guards {
            let guard = Item {
                key: guard_key(*field, canonical),
                attributes: json!({ "user_id": user.id }).as_object().cloned().unwrap_or_default(),
            };
            writes.push(Write::put(guard, Condition::NotExists));
        }
        match self.store.write(writes).await {
            Ok(()) => Ok(()),
            Err(StoreError::ConditionFailed { write }) if write >= 1 => Err(RepoError::Taken(guards[write - 1].0)),
            Err(error) => Err(error.into()),
        }
    }

    /// Stores `stored` (as changed by the caller) if nobody updated it since it was read, together
    /// with `also`: all or nothing. `RepoError::Conflict` when any condition fails.
    pub async fn save(&self, stored: &StoredUser, also: Vec<Write>) -> Result<(), RepoError> {
        let mut next = stored.clone();
        next.version += 1;
        next.user.updated_at = time::OffsetDateTime::now_utc();
        let mut writes = vec![Write::put(
            to_item(user_key(stored.user.id), &next)?,
            Condition::AttributeEquals("version", stored.version.into()),
        )];
        writes.extend(also);
        match self.store.write(writes).await {
            Err(StoreError::ConditionFailed { .. }) => Err(RepoError::Conflict),
            other => Ok(other?),
        }
    }

    pub async fn find_by_id(&self, id: UserId) -> Result<Option<StoredUser>, RepoError> {
        Ok(self.store.get(&user_key(id)).await?.map(from_item).transpose()?)
    }

    pub async fn find_by_login(&self, identifier: &LoginIdentifier) -> Result<Option<StoredUser>, RepoError> {
        #[derive(Deserialize)]
        struct Guard {
            user_id: UserId,
        }
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
