//! Wiring: one function that turns settings, a store and keys into the shared state.

use std::sync::Arc;

use crate::config::Config;
use crate::crypto::keys::SigningKeys;
use crate::http::AppState;
use crate::service::{AuthError, AuthService};
use crate::store::ItemStore;

pub fn state(config: Config, store: Arc<dyn ItemStore>, keys: SigningKeys) -> Result<AppState, AuthError> {
    let password_policy = config.password_policy;
    Ok(AppState { auth: Arc::new(AuthService::new(config, store, keys)?), password_policy })
}

/// The local server's state: the embedded store and a key file, both under `data_dir`.
#[cfg(feature = "embedded")]
pub fn embedded_state(config: Config, data_dir: &std::path::Path) -> Result<AppState, SetupError> {
    std::fs::create_dir_all(data_dir)
        .map_err(|error| SetupError(format!("cannot create the data directory {}: {error}", data_dir.display())))?;
    let store = crate::store::embedded::EmbeddedStore::open(&data_dir.join("latchkey.redb"))
        .map_err(|error| SetupError(error.to_string()))?;
    let keys = SigningKeys::load_or_create_file(&data_dir.join("signing-key.json"), &config.issuer, &config.audience)
        .map_err(|error| SetupError(error.to_string()))?;
    state(config, Arc::new(store), keys).map_err(|error| SetupError(error.to_string()))
}

/// Why the process could not start; the message is for the operator.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct SetupError(pub String);
