//! What several slices share: the caller ([`Principal`]) and its sessions, the guard against
//! guessing, security notices, proofs of identity (password, second factor), address links,
//! public profiles, and the compare-and-swap retry. Each slice's service takes from the
//! [`Kernel`] only the parts it uses.

mod failure;
mod guard;
mod links;
mod notices;
mod profiles;
mod proofs;
mod sessions;
pub mod throttle;

use std::net::IpAddr;
use std::sync::Arc;

use time::OffsetDateTime;

pub use failure::{Failure, retry_on_conflict, settled, taken_or_failure};
pub use guard::Guard;
pub use links::{Links, RESEND_AFTER_SECONDS};
pub use notices::Notices;
pub use profiles::Profiles;
pub use proofs::{ProofError, Proofs};
pub use sessions::{Principal, Sessions, TokenPair};

use crate::config::Config;
use crate::crypto::keys::KeyMaterial;
use crate::crypto::passwords::PasswordHasher;
use crate::crypto::sealing::{KeyedMac, SecretBox};
use crate::mail::templates::Templates;
use crate::mail::{Mailer, Sender};
use crate::objects::ObjectStore;
use crate::repo::{StoredUser, UserRepo};
use crate::store::ItemStore;

pub fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}

/// Where a request came from, for per-address throttling.
#[derive(Debug, Clone, Copy, Default)]
pub struct Origin {
    pub ip: Option<IpAddr>,
}

/// A second factor as the client sent it.
#[derive(Debug, Clone)]
pub enum SecondFactor {
    Totp(String),
    RecoveryCode(String),
    EmailCode(String),
}

/// The caller's stored record, with its password hash and second factors; `SignedOut` when
/// the account stopped being active since the request was authenticated.
pub async fn caller_record(users: &UserRepo, principal: &Principal) -> Result<StoredUser, Failure> {
    match users.find_by_id(principal.user.id).await? {
        Some(stored) if stored.user.is_active() => Ok(stored),
        _ => Err(Failure::SignedOut),
    }
}

/// Who mail is sent as, for the mail adapters.
pub fn sender(config: &Config) -> Sender {
    Sender { name: config.product_name.clone(), address: config.mail_from.clone() }
}

/// Why the process could not start; the message is for the operator.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct SetupError(pub String);

/// Built once per process (per Lambda container): the settings, the store, the keys and the
/// shared parts. Building it makes no network call.
pub struct Kernel {
    pub config: Arc<Config>,
    pub store: Arc<dyn ItemStore>,
    pub sessions: Arc<Sessions>,
    pub guard: Arc<Guard>,
    pub notices: Arc<Notices>,
    pub proofs: Arc<Proofs>,
    pub links: Arc<Links>,
    pub profiles: Arc<Profiles>,
    pub hasher: PasswordHasher,
    pub secret_box: Arc<SecretBox>,
    pub code_mac: Arc<KeyedMac>,
    /// Absent where no avatar routes are served.
    pub objects: Option<Arc<dyn ObjectStore>>,
}

impl Kernel {
    pub fn new(
        config: Config,
        store: Arc<dyn ItemStore>,
        keys: &KeyMaterial,
        mailer: Arc<dyn Mailer>,
        objects: Option<Arc<dyn ObjectStore>>,
    ) -> Result<Self, SetupError> {
        let setup = |error: &dyn std::fmt::Display| SetupError(error.to_string());
        let config = Arc::new(config);
        let hasher = PasswordHasher::new(config.argon2).map_err(|e| setup(&e))?;
        let secret_box = Arc::new(SecretBox::from_material(keys));
        let code_mac = Arc::new(KeyedMac::for_codes(keys));
        let guard = Arc::new(Guard::new(&config, &store));
        let templates = Templates::new(config.product_name.clone(), config.app_url.clone());
        let notices = Arc::new(Notices::new(mailer, templates));
        let sessions = Arc::new(Sessions::new(&config, &store, keys, &guard, &notices).map_err(|e| setup(&e))?);
        let proofs = Arc::new(Proofs::new(&config, &store, &guard, hasher.clone(), &secret_box, &code_mac));
        let links = Arc::new(Links::new(&store, &notices));
        let profiles = Arc::new(Profiles::new(&store));
        Ok(Self {
            config,
            store,
            sessions,
            guard,
            notices,
            proofs,
            links,
            profiles,
            hasher,
            secret_box,
            code_mac,
            objects,
        })
    }

    pub fn users(&self) -> UserRepo {
        UserRepo::new(Arc::clone(&self.store))
    }
}
