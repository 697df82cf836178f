//! A provider's signing keys, fetched over HTTPS and cached per process.
//!
//! The set is refetched when it is an hour old, and when a token names a key it does not hold
//! (the provider rotated its keys), but for unknown keys at most once a minute: a flood of
//! tokens with made-up `kid`s must not become a flood of requests to the provider. A failed
//! fetch is retried after 30 seconds, not at every sign-in.

use std::sync::Arc;
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey};
use tokio::sync::Mutex;

use super::ProviderError;
use crate::domain::ProviderName;

const MAX_AGE: Duration = Duration::from_secs(3600);
const UNKNOWN_KEY_REFETCH_INTERVAL: Duration = Duration::from_secs(60);
/// After a failed fetch, the next try waits this long: sign-ins meanwhile use the keys at hand
/// (or fail at once) rather than each waiting for a provider that is down.
const FAILURE_BACKOFF: Duration = Duration::from_secs(30);

/// One verification key.
#[derive(Clone)]
pub struct Key {
    pub decoding: Arc<DecodingKey>,
    /// The algorithm the key is declared for (`alg` of the JWK), when it says.
    pub algorithm: Option<Algorithm>,
}

pub struct KeySet {
    uri: String,
    cache: Mutex<Cache>,
}

#[derive(Default)]
struct Cache {
    keys: Vec<(String, Key)>,
    fetched_at: Option<Instant>,
    refetched_for_unknown_key_at: Option<Instant>,
    retry_at: Option<Instant>,
}

impl Cache {
    fn find(&self, kid: &str) -> Option<Key> {
        self.keys.iter().find(|(id, _)| id == kid).map(|(_, key)| key.clone())
    }
}

impl KeySet {
    pub fn new(uri: String) -> Self {
        Self { uri, cache: Mutex::new(Cache::default()) }
    }

    pub async fn find(&self, http: &reqwest::Client, provider: &ProviderName, kid: &str) -> Result<Key, ProviderError> {
        // Held across the fetch, so that concurrent sign-ins wait for one fetch, not make many.
        let mut cache = self.cache.lock().await;
        let backing_off = cache.retry_at.is_some_and(|at| Instant::now() < at);
        let stale = cache.fetched_at.is_none_or(|at| at.elapsed() > MAX_AGE);
        let mut just_fetched = false;
        if stale && !backing_off {
            just_fetched = self.refresh(&mut cache, http, provider).await?;
        } else if cache.keys.is_empty() {
            return Err(ProviderError::Unavailable {
                provider: provider.to_string(),
                detail: "its keys could not be fetched moments ago".into(),
            });
        }
        if let Some(key) = cache.find(kid) {
            return Ok(key);
        }
        let unknown =
            || ProviderError::Rejected("the ID token was signed with a key the provider does not publish".into());
        let refetched_lately =
            cache.refetched_for_unknown_key_at.is_some_and(|at| at.elapsed() < UNKNOWN_KEY_REFETCH_INTERVAL);
        if just_fetched || refetched_lately || cache.retry_at.is_some_and(|at| Instant::now() < at) {
            return Err(unknown());
        }
        cache.refetched_for_unknown_key_at = Some(Instant::now());
        self.refresh(&mut cache, http, provider).await?;
        cache.find(kid).ok_or_else(unknown)
    }

    /// Fetches the set into the cache. A failure starts the backoff; with keys at hand it is
    /// only logged (a stale set still verifies while the provider is down). Answers whether
    /// fresh keys arrived.
    async fn refresh(
        &self,
        cache: &mut Cache,
        http: &reqwest::Client,
        provider: &ProviderName,
    ) -> Result<bool, ProviderError> {
        match self.fetch(http, provider).await {
            Ok(keys) => {
                (cache.keys, cache.fetched_at, cache.retry_at) = (keys, Some(Instant::now()), None);
                Ok(true)
            }
            Err(error) => {
                cache.retry_at = Some(Instant::now() + FAILURE_BACKOFF);
                if cache.keys.is_empty() {
                    return Err(error);
                }
                tracing::warn!(%provider, %error, "JWKS refresh failed; the cached keys stay in use");
                Ok(false)
            }
        }
    }

    async fn fetch(
        &self,
        http: &reqwest::Client,
        provider: &ProviderName,
    ) -> Result<Vec<(String, Key)>, ProviderError> {
        let unavailable = |detail: String| ProviderError::Unavailable { provider: provider.to_string(), detail };
        let response = http.get(&self.uri).send().await.map_err(|error| unavailable(error.to_string()))?;
        if !response.status().is_success() {
            return Err(unavailable(format!("the JWKS endpoint answered {}", response.status())));
        }
        let set: JwkSet =
            response.json().await.map_err(|error| unavailable(format!("the JWKS does not parse: {error}")))?;
        let keys = set
            .keys
            .iter()
            .filter_map(|jwk| {
                let kid = jwk.common.key_id.clone()?;
                // Keys we cannot use (encryption keys, unknown types) are skipped, not fatal.
                let decoding = DecodingKey::from_jwk(jwk).ok()?;
                let algorithm = jwk.common.key_algorithm.and_then(|alg| alg.to_string().parse().ok());
                Some((kid, Key { decoding: Arc::new(decoding), algorithm }))
            })
            .collect();
        Ok(keys)
    }
}
