//! The local server's wiring: the kernel on the embedded store, a key file, the mail outbox and
//! the object directory, and every route on it. (On AWS, `lambda` builds the kernel from
//! DynamoDB, Secrets Manager, SES and S3.)

use std::sync::Arc;

use axum::Router;

use crate::config::Config;
use crate::crypto::keys::KeyMaterial;
use crate::crypto::sealing::KeyedMac;
use crate::features::chat::ChatService;
use crate::features::chat::local::local_chat_routes;
use crate::functions;
use crate::http::finish;
use crate::http::objects::local_object_routes;
use crate::kernel::{Kernel, SetupError};
use crate::objects::ObjectStore;
use crate::objects::local::LocalObjects;

/// The local server's kernel: the embedded store, a key file, the mail outbox and the object
/// directory, all under `data_dir`; `public_url` is where the server is reached (the object
/// directory's signed URLs point there).
pub fn embedded_kernel(
    config: Config,
    data_dir: &std::path::Path,
    public_url: &str,
) -> Result<(Kernel, Arc<crate::objects::local::LocalObjects>), SetupError> {
    crate::private_files::create_dir(data_dir)
        .map_err(|error| SetupError(format!("cannot create the data directory {}: {error}", data_dir.display())))?;
    let store = crate::store::embedded::EmbeddedStore::open(&data_dir.join("latchkey.redb"))
        .map_err(|error| SetupError(error.to_string()))?;
    let keys = KeyMaterial::load_or_create_file(&data_dir.join("signing-key.json"))
        .map_err(|error| SetupError(error.to_string()))?;
    let outbox_dir = data_dir.join("outbox");
    let outbox = crate::mail::outbox::Outbox::new(&outbox_dir, crate::kernel::sender(&config))
        .map_err(|error| SetupError(format!("cannot create the outbox {}: {error}", outbox_dir.display())))?;
    let objects_dir = data_dir.join("objects");
    let objects = LocalObjects::new(&objects_dir, public_url, KeyedMac::for_urls(&keys))
        .map(Arc::new)
        .map_err(|error| SetupError(format!("cannot create {}: {error}", objects_dir.display())))?;
    let shared: Arc<dyn ObjectStore> = objects.clone();
    let kernel = Kernel::new(config, Arc::new(store), &keys, Arc::new(outbox), Some(shared))?;
    Ok((kernel, objects))
}

/// Every route the local server serves: each slice's, the signed URLs of the object directory,
/// and the chat WebSocket.
pub fn local_app(kernel: &Kernel, objects: Arc<LocalObjects>) -> Router {
    let chat = local_chat_routes(Arc::new(ChatService::new(kernel)), Arc::default());
    let objects = local_object_routes(objects, kernel.config.avatar_max_bytes);
    finish(functions::all(kernel)).merge(objects).merge(chat)
}
