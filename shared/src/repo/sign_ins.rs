//! The single-use records of the redirect sign-in flow: the `state` of a trip to the provider,
//! and the exchange code the app trades for tokens. Both are keyed by the SHA-256 of the value
//! the browser carries, and spent by a conditional delete, so each works once.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::{RepoError, from_item, put_new, take};
use crate::domain::{ProviderName, UserId};
use crate::store::{Condition, ItemStore, Key, StoreError, Write};

/// What the server remembers between sending the browser to the provider and its return.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PendingAuthorization {
    pub provider: ProviderName,
    /// PKCE (RFC 7636): proves at the code exchange that this server started the flow.
    pub code_verifier: String,
    pub nonce: String,
    /// Where this server's callback was, as sent to the provider (it must be sent again).
    pub callback_url: String,
    /// The app's URL that receives the exchange code.
    pub redirect_uri: String,
    /// The app's own `state`, handed back to it untouched.
    pub app_state: String,
    pub expires_at: i64,
    pub ttl: i64,
}

/// A sign-in that succeeded at the provider, waiting for the app to collect its tokens.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExchangeGrant {
    pub user_id: UserId,
    /// The sign-in created the account.
    pub created: bool,
    /// The identity that signed in (absent in grants stored before it was recorded).
    #[serde(default)]
    pub provider: Option<ProviderName>,
    #[serde(default)]
    pub subject: Option<String>,
    /// The account's session epoch at the callback: a reset since voids the grant.
    #[serde(default)]
    pub session_epoch: u64,
    pub expires_at: i64,
    pub ttl: i64,
}

#[derive(Clone)]
pub struct SignInRepo {
    store: Arc<dyn ItemStore>,
}

fn state_key(hash: &str) -> Key {
    Key::new(format!("OAUTH_STATE#{hash}"), "STATE")
}

fn grant_key(hash: &str) -> Key {
    Key::new(format!("OAUTH_EXCHANGE#{hash}"), "GRANT")
}

impl SignInRepo {
    pub fn new(store: Arc<dyn ItemStore>) -> Self {
        Self { store }
    }

    pub async fn save_authorization(&self, state_hash: &str, pending: &PendingAuthorization) -> Result<(), RepoError> {
        put_new(self.store.as_ref(), state_key(state_hash), pending).await
    }

    /// Spends the authorization with this state; `None` if it is unknown or already spent.
    pub async fn take_authorization(&self, state_hash: &str) -> Result<Option<PendingAuthorization>, RepoError> {
        take(self.store.as_ref(), state_key(state_hash)).await
    }

    pub async fn save_grant(&self, code_hash: &str, grant: &ExchangeGrant) -> Result<(), RepoError> {
        put_new(self.store.as_ref(), grant_key(code_hash), grant).await
    }

    pub async fn grant(&self, code_hash: &str) -> Result<Option<ExchangeGrant>, RepoError> {
        Ok(self.store.get(&grant_key(code_hash)).await?.map(from_item).transpose()?)
    }

    /// Spends a grant read with `grant`; `false` if another request spent it first.
    pub async fn spend_grant(&self, code_hash: &str, grant: &ExchangeGrant) -> Result<bool, RepoError> {
        let write = Write::delete(grant_key(code_hash), Condition::equals("expires_at", grant.expires_at));
        match self.store.write(vec![write]).await {
            Ok(()) => Ok(true),
            Err(StoreError::ConditionFailed { .. }) => Ok(false),
            Err(error) => Err(error.into()),
        }
    }
}
