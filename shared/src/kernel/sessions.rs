//! Sessions and access tokens: starting a session with its token pair (what every way of
//! signing in ends with), and checking an access token against the live session and account
//! behind it (what every protected route begins with).

use std::sync::Arc;

use uuid::Uuid;

use super::failure::Failure;
use super::guard::Guard;
use super::notices::Notices;
use super::now;
use super::throttle::Subject;
use crate::config::Config;
use crate::crypto::keys::{AccessClaims, KeyError, KeyMaterial, SigningKeys};
use crate::crypto::secrets;
use crate::domain::{User, UserId};
use crate::mail::templates::Notice;
use crate::repo::{Session, SessionRepo, StoredUser, UserRepo};
use crate::store::ItemStore;

/// What a successful sign-in or refresh hands the client.
#[derive(Debug)]
pub struct TokenPair {
    pub user: User,
    pub access_token: String,
    pub refresh_token: String,
    pub expires_in: i64,
}

/// The caller of a protected route: a valid access token whose session is still live, and
/// the caller's active account as stored now (so a role or status change counts at once).
#[derive(Debug, Clone)]
pub struct Principal {
    pub user: User,
    pub session_id: Uuid,
    /// The account's session epoch, which the session was checked against.
    pub session_epoch: u64,
    pub totp_enabled: bool,
    /// Sign-in asks this account for an email code (its choice or the deployment's).
    pub email_codes_enabled: bool,
}

pub struct Sessions {
    repo: SessionRepo,
    users: UserRepo,
    keys: SigningKeys,
    guard: Arc<Guard>,
    notices: Arc<Notices>,
    issuer: String,
    audience: String,
    access_token_ttl_seconds: i64,
    refresh_token_ttl_seconds: i64,
    require_email_codes: bool,
}

impl Sessions {
    pub fn new(
        config: &Config,
        store: &Arc<dyn ItemStore>,
        keys: &KeyMaterial,
        guard: &Arc<Guard>,
        notices: &Arc<Notices>,
    ) -> Result<Self, KeyError> {
        Ok(Self {
            guard: Arc::clone(guard),
            notices: Arc::clone(notices),
            repo: SessionRepo::new(Arc::clone(store)),
            users: UserRepo::new(Arc::clone(store)),
            keys: SigningKeys::from_material(keys, &config.issuer, &config.audience)?,
            issuer: config.issuer.clone(),
            audience: config.audience.clone(),
            access_token_ttl_seconds: config.access_token_ttl_seconds,
            refresh_token_ttl_seconds: config.refresh_token_ttl_seconds,
            require_email_codes: config.require_email_codes,
        })
    }

    /// The session records, for the flows that rotate, restamp and end them.
    pub fn repo(&self) -> &SessionRepo {
        &self.repo
    }

    /// After every check of a sign-in passed (password or provider, second factor): forgets the
    /// account's failures, reports a spent recovery code, and starts the session.
    pub async fn finish_sign_in(
        &self,
        stored: StoredUser,
        recovery_codes_left: Option<usize>,
    ) -> Result<TokenPair, Failure> {
        self.guard.clear(&Subject::Account(stored.user.id)).await;
        if let Some(remaining) = recovery_codes_left {
            self.notices.notify(&stored, Notice::RecoveryCodeUsed { remaining }).await;
        }
        self.start(stored.user, stored.session_epoch).await
    }

    /// Starts a login of `user` in the account's session `epoch`.
    pub async fn start(&self, user: User, epoch: u64) -> Result<TokenPair, Failure> {
        let refresh_token = secrets::generate();
        let created_at = now().unix_timestamp();
        let expires_at = created_at + self.refresh_token_ttl_seconds;
        let session = Session {
            sid: Uuid::new_v4(),
            user_id: user.id,
            refresh_hash: secrets::hash(&refresh_token),
            created_at,
            expires_at,
            ttl: expires_at,
            epoch,
        };
        self.repo.create(&session).await?;
        Ok(self.token_pair(user, &session, refresh_token))
    }

    /// A fresh access token for `session`, with the refresh token the client now holds.
    pub fn token_pair(&self, user: User, session: &Session, refresh_token: String) -> TokenPair {
        let issued_at = now().unix_timestamp();
        // An access token never outlives its login.
        let expires_at = (issued_at + self.access_token_ttl_seconds).min(session.expires_at);
        let claims = AccessClaims {
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            sub: user.id.to_string(),
            sid: session.sid.to_string(),
            role: user.role,
            iat: issued_at,
            exp: expires_at,
            jti: Uuid::new_v4().to_string(),
        };
        TokenPair { access_token: self.keys.sign(&claims), refresh_token, expires_in: expires_at - issued_at, user }
    }

    /// Checks an access token: signature, claims, and that its session has not ended.
    pub async fn authenticate(&self, access_token: &str) -> Result<Principal, Failure> {
        let claims = self.keys.verify(access_token).ok_or(Failure::SignedOut)?;
        self.principal_of(&claims).await?.ok_or(Failure::SignedOut)
    }

    /// The claims of a live access token of ours with its holder as stored now; `None` for
    /// anything else.
    pub async fn holder_of(&self, token: &str) -> Result<Option<(AccessClaims, Principal)>, Failure> {
        let Some(claims) = self.keys.verify(token) else { return Ok(None) };
        Ok(self.principal_of(&claims).await?.map(|holder| (claims, holder)))
    }

    /// The public keys access tokens are verified with (JWKS).
    pub fn jwks(&self) -> serde_json::Value {
        self.keys.jwks()
    }

    async fn principal_of(&self, claims: &AccessClaims) -> Result<Option<Principal>, Failure> {
        let (Some(user_id), Ok(session_id)) = (UserId::parse(&claims.sub), Uuid::parse_str(&claims.sid)) else {
            return Ok(None);
        };
        // Two independent reads; in flight together they cost one round trip.
        let (session, stored) = tokio::join!(self.repo.get(user_id, session_id), self.users.find_by_id(user_id));
        let session = session?.filter(|session| session.expires_at > now().unix_timestamp());
        Ok(match (stored?, session) {
            (Some(stored), Some(session)) if stored.user.is_active() && stored.session_epoch == session.epoch => {
                Some(Principal {
                    session_epoch: stored.session_epoch,
                    totp_enabled: stored.second_factors.totp.is_some(),
                    email_codes_enabled: stored.second_factors.email_codes || self.require_email_codes,
                    user: stored.user,
                    session_id,
                })
            }
            _ => None,
        })
    }
}
