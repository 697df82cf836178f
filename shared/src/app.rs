//! Wiring for the local server: the kernel on the embedded store, a key file, the mail outbox
//! and the object directory. (On AWS, `lambda` builds it from DynamoDB, Secrets Manager, SES
//! and S3.)

use std::sync::Arc;

use crate::config::Config;
use crate::crypto::keys::KeyMaterial;
use crate::kernel::Kernel;
use crate::objects::ObjectStore;

/// The local server's kernel: the embedded store, a key file, the mail outbox and the object
/// directory, all under `data_dir`; `public_url` is where the server is reached (the object
/// directory's signed URLs point there).
#[cfg(feature = "embedded")]
pub fn embedded_kernel(
    config: Config,
    data_dir: &std::path::Path,
    public_url: &str,
) -> Result<(Kernel, Arc<crate::objects::local::LocalObjects>), SetupError> {
    use crate::crypto::sealing::KeyedMac;
    use crate::objects::local::LocalObjects;

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

/// Why the process could not start; the message is for the operator.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct SetupError(pub String);
