//! Wiring: one function that turns settings, a store, key material and a mailer into the
//! shared state.

use std::sync::Arc;

use crate::config::Config;
use crate::crypto::keys::KeyMaterial;
use crate::http::AppState;
use crate::mail::Mailer;
use crate::objects::ObjectStore;
use crate::service::{AuthError, AuthService};
use crate::store::ItemStore;

pub fn state(
    config: Config,
    store: Arc<dyn ItemStore>,
    keys: &KeyMaterial,
    mailer: Arc<dyn Mailer>,
    objects: Option<Arc<dyn ObjectStore>>,
) -> Result<AppState, AuthError> {
    let (password_policy, avatar_max_bytes) = (config.password_policy, config.avatar_max_bytes);
    let auth = Arc::new(AuthService::new(config, store, keys, mailer, objects)?);
    Ok(AppState { auth, password_policy, avatar_max_bytes })
}

/// The local server's state: the embedded store, a key file, the mail outbox and the object
/// directory, all under `data_dir`; `public_url` is where the server is reached (the object
/// directory's signed URLs point there).
#[cfg(feature = "embedded")]
pub fn embedded_state(
    config: Config,
    data_dir: &std::path::Path,
    public_url: &str,
) -> Result<(AppState, Arc<crate::objects::local::LocalObjects>), SetupError> {
    use crate::crypto::sealing::KeyedMac;
    use crate::objects::local::LocalObjects;

    crate::private_files::create_dir(data_dir)
        .map_err(|error| SetupError(format!("cannot create the data directory {}: {error}", data_dir.display())))?;
    let store = crate::store::embedded::EmbeddedStore::open(&data_dir.join("latchkey.redb"))
        .map_err(|error| SetupError(error.to_string()))?;
    let keys = KeyMaterial::load_or_create_file(&data_dir.join("signing-key.json"))
        .map_err(|error| SetupError(error.to_string()))?;
    let outbox_dir = data_dir.join("outbox");
    let outbox = crate::mail::outbox::Outbox::new(&outbox_dir, AuthService::sender(&config))
        .map_err(|error| SetupError(format!("cannot create the outbox {}: {error}", outbox_dir.display())))?;
    let objects_dir = data_dir.join("objects");
    let objects = LocalObjects::new(&objects_dir, public_url, KeyedMac::for_urls(&keys))
        .map(Arc::new)
        .map_err(|error| SetupError(format!("cannot create {}: {error}", objects_dir.display())))?;
    let shared: Arc<dyn ObjectStore> = objects.clone();
    let state = state(config, Arc::new(store), &keys, Arc::new(outbox), Some(shared))
        .map_err(|error| SetupError(error.to_string()))?;
    Ok((state, objects))
}

/// Why the process could not start; the message is for the operator.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct SetupError(pub String);
