//! Wiring: one function that turns settings, a store, key material and a mailer into the
//! shared state.

use std::sync::Arc;

use crate::config::Config;
use crate::crypto::keys::KeyMaterial;
use crate::http::AppState;
use crate::mail::Mailer;
use crate::service::{AuthError, AuthService};
use crate::store::ItemStore;

pub fn state(
    config: Config,
    store: Arc<dyn ItemStore>,
    keys: &KeyMaterial,
    mailer: Arc<dyn Mailer>,
) -> Result<AppState, AuthError> {
    let password_policy = config.password_policy;
    Ok(AppState { auth: Arc::new(AuthService::new(config, store, keys, mailer)?), password_policy })
}

/// The local server's state: the embedded store, a key file and the mail outbox, all under
/// `data_dir`.
#[cfg(feature = "embedded")]
pub fn embedded_state(config: Config, data_dir: &std::path::Path) -> Result<AppState, SetupError> {
    std::fs::create_dir_all(data_dir)
        .map_err(|error| SetupError(format!("cannot create the data directory {}: {error}", data_dir.display())))?;
    let store = crate::store::embedded::EmbeddedStore::open(&data_dir.join("latchkey.redb"))
        .map_err(|error| SetupError(error.to_string()))?;
    let keys = KeyMaterial::load_or_create_file(&data_dir.join("signing-key.json"))
        .map_err(|error| SetupError(error.to_string()))?;
    let outbox_dir = data_dir.join("outbox");
    let outbox = crate::mail::outbox::Outbox::new(&outbox_dir, AuthService::sender(&config))
        .map_err(|error| SetupError(format!("cannot create the outbox {}: {error}", outbox_dir.display())))?;
    state(config, Arc::new(store), &keys, Arc::new(outbox)).map_err(|error| SetupError(error.to_string()))
}

/// Why the process could not start; the message is for the operator.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct SetupError(pub String);
