//! Registration, login, refresh-token rotation, logout and access-token checks.

use std::sync::Arc;

use subtle::ConstantTimeEq;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::config::Config;
use crate::crypto::keys::{AccessClaims, SigningKeys};
use crate::crypto::passwords::{HashError, PasswordHasher};
use crate::crypto::secrets;
use crate::domain::{Email, LoginIdentifier, Password, Phone, User, UserId, Username};
use crate::repo::{RepoError, Session, SessionRepo, StoredUser, UniqueField, UserRepo};
use crate::store::{ItemStore, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// Unknown user, wrong password or an account that cannot sign in: deliberately one error.
    #[error("invalid credentials")]
    InvalidCredentials,
    #[error("the refresh token is invalid, expired or revoked")]
    InvalidRefreshToken,
    #[error("the access token is invalid, expired or revoked")]
    InvalidAccessToken,
    #[error("this {0} is already registered")]
    AlreadyExists(UniqueField),
    #[error("storage unavailable: {0}")]
    Unavailable(String),
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<RepoError> for AuthError {
    fn from(error: RepoError) -> Self {
        match error {
            RepoError::Taken(field) => Self::AlreadyExists(field),
            RepoError::Store(StoreError::Unavailable(detail)) => Self::Unavailable(detail),
            other => Self::Internal(other.to_string()),
        }
    }
}

impl From<HashError> for AuthError {
    fn from(error: HashError) -> Self {
        Self::Internal(error.to_string())
    }
}

pub struct Registration {
    pub email: Email,
    pub password: Password,
    pub username: Option<Username>,
    pub phone: Option<Phone>,
}

pub struct Credentials {
    pub identifier: LoginIdentifier,
    /// The candidate as typed; not policy-checked, since old passwords may predate the policy.
    pub password: String,
}

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
}

/// RFC 7662: an active access token's claims, with its holder as stored now (the role in
/// the token may be stale; the stored one is what counts).
pub struct Introspection {
    pub claims: AccessClaims,
    pub holder: Principal,
}

pub struct AuthService {
    users: UserRepo,
    sessions: SessionRepo,
    hasher: PasswordHasher,
    keys: Arc<SigningKeys>,
    config: Config,
}

fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}

impl AuthService {
    pub fn new(config: Config, store: Arc<dyn ItemStore>, keys: SigningKeys) -> Result<Self, AuthError> {
        Ok(Self {
            users: UserRepo::new(Arc::clone(&store)),
            sessions: SessionRepo::new(store),
            hasher: PasswordHasher::new(config.argon2)?,
            keys: Arc::new(keys),
            config,
        })
    }

    pub async fn register(&self, registration: Registration) -> Result<TokenPair, AuthError> {
        let password_hash = self.hasher.hash(&registration.password).await?;
        let user = User::new_email_user(registration.email, registration.username, registration.phone, now());
        self.users.create(&user, Some(password_hash)).await?;
        tracing::info!(user_id = %user.id, "user registered");
        self.start_session(user).await
    }

    pub async fn login(&self, credentials: Credentials) -> Result<TokenPair, AuthError> {
        let found = self.users.find_by_login(&credentials.identifier).await?;
        // Always one argon2 verification, whether or not the user exists (no timing oracle).
        let stored_hash = found.as_ref().and_then(|stored| stored.password_hash.clone());
        let password_matches = self.hasher.verify(credentials.password, stored_hash).await;
        match found {
            Some(StoredUser { user, .. }) if password_matches && user.is_active() => self.start_session(user).await,
            _ => Err(AuthError::InvalidCredentials),
        }
    }

    /// Rotates a refresh token: the presented one is spent, a new pair is issued.
    pub async fn refresh(&self, refresh_token: &str) -> Result<TokenPair, AuthError> {
        let presented_hash = secrets::hash(refresh_token);
        let session = self.live_session_of(&presented_hash).await?;
        let user = match self.users.find_by_id(session.user_id).await? {
            Some(stored) if stored.user.is_active() => stored.user,
            _ => return Err(AuthError::InvalidRefreshToken),
        };
        let refresh_token = secrets::generate();
        let rotated = Session { refresh_hash: secrets::hash(&refresh_token), ..session };
        match self.sessions.rotate(&rotated, &presented_hash).await {
            Ok(()) => Ok(self.token_pair(user, &rotated, refresh_token)),
            // A concurrent refresh with the same token won the compare-and-swap.
            Err(RepoError::Conflict) => Err(AuthError::InvalidRefreshToken),
            Err(error) => Err(error.into()),
        }
    }

    /// Ends the login the refresh token belongs to.
    pub async fn logout(&self, refresh_token: &str) -> Result<(), AuthError> {
        let session = self.live_session_of(&secrets::hash(refresh_token)).await?;
        self.sessions.delete(session.user_id, session.sid).await?;
        Ok(())
    }

    /// Ends every login of the caller, on every device.
    pub async fn logout_all(&self, principal: &Principal) -> Result<usize, AuthError> {
        Ok(self.sessions.delete_all(principal.user.id).await?)
    }

    /// Checks an access token: signature, claims, and that its session has not ended.
    pub async fn authenticate(&self, access_token: &str) -> Result<Principal, AuthError> {
        let claims = self.keys.verify(access_token).ok_or(AuthError::InvalidAccessToken)?;
        self.principal_of(&claims).await?.ok_or(AuthError::InvalidAccessToken)
    }

    /// `None` for anything that is not a live access token of ours.
    pub async fn introspect(&self, token: &str) -> Result<Option<Introspection>, AuthError> {
        let Some(claims) = self.keys.verify(token) else { return Ok(None) };
        Ok(self.principal_of(&claims).await?.map(|holder| Introspection { claims, holder }))
    }

    pub fn jwks(&self) -> serde_json::Value {
        self.keys.jwks()
    }

    async fn principal_of(&self, claims: &AccessClaims) -> Result<Option<Principal>, AuthError> {
        let (Some(user_id), Ok(session_id)) = (UserId::parse(&claims.sub), Uuid::parse_str(&claims.sid)) else {
            return Ok(None);
        };
        // Two independent reads; in flight together they cost one round trip.
        let (session, stored) = tokio::join!(self.sessions.get(user_id, session_id), self.users.find_by_id(user_id));
        let live = session?.is_some_and(|session| session.expires_at > now().unix_timestamp());
        Ok(match stored? {
            Some(StoredUser { user, .. }) if live && user.is_active() => Some(Principal { user, session_id }),
            _ => None,
        })
    }

    /// The session a refresh token may still be used on. Presenting a token that was already
    /// rotated is treated as theft (RFC 9700 4.14.2): the whole family is revoked.
    async fn live_session_of(&self, presented_hash: &str) -> Result<Session, AuthError> {
        let record = self.sessions.find_refresh(presented_hash).await?.ok_or(AuthError::InvalidRefreshToken)?;
        if record.expires_at <= now().unix_timestamp() {
            return Err(AuthError::InvalidRefreshToken);
        }
        let session = self.sessions.get(record.user_id, record.sid).await?.ok_or(AuthError::InvalidRefreshToken)?;
        let is_current: bool = session.refresh_hash.as_bytes().ct_eq(presented_hash.as_bytes()).into();
        if !is_current {
            tracing::warn!(user_id = %session.user_id, sid = %session.sid, "a rotated refresh token was reused; revoking its family");
            self.sessions.delete(session.user_id, session.sid).await?;
            return Err(AuthError::InvalidRefreshToken);
        }
        Ok(session)
    }

    async fn start_session(&self, user: User) -> Result<TokenPair, AuthError> {
        let refresh_token = secrets::generate();
        let created_at = now().unix_timestamp();
        let expires_at = created_at + self.config.refresh_token_ttl_seconds;
        let session = Session {
            sid: Uuid::new_v4(),
            user_id: user.id,
            refresh_hash: secrets::hash(&refresh_token),
            created_at,
            expires_at,
            ttl: expires_at,
        };
        self.sessions.create(&session).await?;
        Ok(self.token_pair(user, &session, refresh_token))
    }

    fn token_pair(&self, user: User, session: &Session, refresh_token: String) -> TokenPair {
        let issued_at = now().unix_timestamp();
        // An access token never outlives its login.
        let expires_at = (issued_at + self.config.access_token_ttl_seconds).min(session.expires_at);
        let claims = AccessClaims {
            iss: self.config.issuer.clone(),
            aud: self.config.audience.clone(),
            sub: user.id.to_string(),
            sid: session.sid.to_string(),
            role: user.role,
            iat: issued_at,
            exp: expires_at,
            jti: Uuid::new_v4().to_string(),
        };
        TokenPair { access_token: self.keys.sign(&claims), refresh_token, expires_in: expires_at - issued_at, user }
    }
}
