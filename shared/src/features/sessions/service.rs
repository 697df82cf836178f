use std::sync::Arc;

use subtle::ConstantTimeEq;

use crate::crypto::keys::AccessClaims;
use crate::crypto::passwords::PasswordHasher;
use crate::crypto::secrets;
use crate::domain::{Email, LoginIdentifier, Password, Phone, User, UserId, Username};
use crate::kernel::throttle::{Subject, ThrottleError};
use crate::kernel::{
    Failure, Guard, Links, Notices, Origin, Principal, ProofError, Proofs, RESEND_AFTER_SECONDS, SecondFactor,
    Sessions, TokenPair, now, taken_or_failure,
};
use crate::mail::templates::Mail;
use crate::repo::{RepoError, Session, StoredUser, UniqueField, UnlockToken, UnlockTokenRepo, UserRepo};

const UNLOCK_VALID_MINUTES: i64 = 15;

#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    /// Unknown user, wrong password or an account that cannot sign in: deliberately one error.
    #[error("invalid credentials")]
    InvalidCredentials,
    #[error("the email address of this account is not verified yet")]
    EmailNotVerified,
    #[error("the refresh token is invalid, expired or revoked")]
    InvalidRefreshToken,
    #[error("this {0} is already registered")]
    AlreadyExists(UniqueField),
    #[error(transparent)]
    Proof(#[from] ProofError),
    #[error(transparent)]
    Failure(#[from] Failure),
}

impl From<RepoError> for SessionError {
    fn from(error: RepoError) -> Self {
        taken_or_failure(error, Self::AlreadyExists)
    }
}

pub struct Registration {
    pub email: Email,
    pub password: Password,
    pub username: Option<Username>,
    pub phone: Option<Phone>,
}

pub enum Registered {
    SignedIn(TokenPair),
    /// The deployment requires a verified email before sign-in; a link was sent.
    VerificationRequired(User),
}

pub struct Credentials {
    pub identifier: LoginIdentifier,
    /// The candidate as typed; not policy-checked, since old passwords may predate the policy.
    pub password: String,
    pub second_factor: Option<SecondFactor>,
    /// The token of a link mailed by `send_unlock_link`: lets the owner past a lockout.
    pub unlock_token: Option<String>,
}

/// RFC 7662: an active access token's claims, with its holder as stored now (the role in
/// the token may be stale; the stored one is what counts).
pub struct Introspection {
    pub claims: AccessClaims,
    pub holder: Principal,
}

pub struct SessionService {
    users: UserRepo,
    sessions: Arc<Sessions>,
    unlock_tokens: UnlockTokenRepo,
    guard: Arc<Guard>,
    proofs: Arc<Proofs>,
    notices: Arc<Notices>,
    links: Arc<Links>,
    hasher: PasswordHasher,
    require_verified_email: bool,
}

impl SessionService {
    pub fn new(kernel: &crate::kernel::Kernel) -> Self {
        Self {
            users: kernel.users(),
            sessions: Arc::clone(&kernel.sessions),
            unlock_tokens: UnlockTokenRepo::new(Arc::clone(&kernel.store)),
            guard: Arc::clone(&kernel.guard),
            proofs: Arc::clone(&kernel.proofs),
            notices: Arc::clone(&kernel.notices),
            links: Arc::clone(&kernel.links),
            hasher: kernel.hasher.clone(),
            require_verified_email: kernel.config.require_verified_email,
        }
    }

    /// A taken email or phone is `409` (a sign-up form must say so); each one counts as a
    /// failure of the client address, so addresses cannot be tested for accounts at speed.
    pub async fn register(&self, registration: Registration, origin: &Origin) -> Result<Registered, SessionError> {
        self.guard.check_address(origin).await?;
        let password_hash = self.hasher.hash(&registration.password).await.map_err(Failure::from)?;
        let user = User::new_email_user(registration.email, registration.username, registration.phone, now());
        match self.users.create(&user, Some(password_hash), vec![]).await {
            Err(RepoError::Taken(field @ (UniqueField::Email | UniqueField::Phone))) => {
                return Err(self.guard.failed(origin, SessionError::AlreadyExists(field)).await);
            }
            other => other?,
        }
        tracing::info!(user_id = %user.id, "user registered");
        if let Some(address) = &user.email
            && let Err(error) = self.links.send_verification(&user, address).await
        {
            tracing::error!(user_id = %user.id, %error, "the verification email could not be sent");
        }
        if self.require_verified_email {
            return Ok(Registered::VerificationRequired(user));
        }
        Ok(Registered::SignedIn(self.sessions.start(user, 0).await?))
    }

    /// Failures are counted twice: against the login name as typed, whose lock is answered
    /// with `429` (the same for every name, whether or not it names an account), and against
    /// the account across all its names, whose lock is enforced silently: the password is not
    /// checked and the answer is the wrong-password one, with the same work. So a lock earned
    /// through a username cannot be seen by trying the account's email or phone. The owner
    /// gets past either lock with a mailed unlock link (`send_unlock_link`); a login that
    /// carries its token takes the uniform response time, so whether it was needed does not show.
    pub async fn login(&self, credentials: Credentials, origin: &Origin) -> Result<TokenPair, SessionError> {
        match credentials.unlock_token.is_some() {
            true => self.guard.uniformly(self.check_login(credentials, origin)).await,
            false => self.check_login(credentials, origin).await,
        }
    }

    async fn check_login(&self, credentials: Credentials, origin: &Origin) -> Result<TokenPair, SessionError> {
        let throttle = self.guard.throttle();
        let canonical = secrets::hash(&credentials.identifier.canonical());
        let name = Subject::LoginName(canonical.clone());
        let found = self.users.find_by_login(&credentials.identifier).await?;
        let account = match &found {
            Some(stored) => Subject::Account(stored.user.id),
            None => Subject::UnknownLogin(canonical),
        };
        let now = now().unix_timestamp();
        self.guard.check_address(origin).await?;
        // A live unlock token of the account lets this request past both locks. It is spent,
        // and the locks forgotten, only once the whole sign-in succeeds: an owner asked for a
        // second factor comes back with the same token, and nobody can re-lock them in between.
        let mut unlocked: Option<Option<String>> = None;
        let mut unlock = async || -> Result<bool, SessionError> {
            if unlocked.is_none() {
                let live = match credentials.unlock_token.as_deref() {
                    Some(token) => self.live_unlock_token(found.as_ref(), token).await?,
                    None => None,
                };
                unlocked = Some(live);
            }
            Ok(unlocked.as_ref().is_some_and(Option::is_some))
        };
        match throttle.reserve(&name, now).await {
            Ok(()) => {}
            Err(ThrottleError::Locked(locked)) => {
                if !unlock().await? {
                    let refused = Failure::Throttled { retry_after_seconds: locked.retry_after_seconds };
                    return Err(self.guard.failed(origin, SessionError::from(refused)).await);
                }
            }
            Err(error) => return Err(Failure::from(error).into()),
        }
        let account_open = match throttle.reserve(&account, now).await {
            Ok(()) => true,
            Err(ThrottleError::Locked(_)) => unlock().await?,
            Err(error) => return Err(Failure::from(error).into()),
        };
        // Always one argon2 verification, whether or not the user exists or is locked (no
        // timing oracle).
        let stored_hash = found.as_ref().filter(|_| account_open).and_then(|stored| stored.password_hash.clone());
        let password_matches = self.hasher.verify(credentials.password, stored_hash).await;
        let stored = match found {
            Some(stored) if password_matches && account_open && stored.user.is_active() => stored,
            _ => return Err(self.guard.failed(origin, SessionError::InvalidCredentials).await),
        };
        if self.require_verified_email && !stored.user.is_email_verified {
            return Err(SessionError::EmailNotVerified);
        }
        let recovery_codes_left = self.proofs.check_second_factor(&stored, credentials.second_factor, origin).await?;
        if let Some(Some(hash)) = &unlocked
            && !self.unlock_tokens.consume(stored.user.id, hash, now).await?
        {
            // Spent by a concurrent sign-in: this one is refused as the lock would refuse it.
            return Err(Failure::Throttled { retry_after_seconds: 1 }.into());
        }
        // The name's counter is forgotten beside the account's (in `finish_sign_in`): one round trip.
        let ((), signed_in) =
            tokio::join!(self.guard.clear(&name), self.sessions.finish_sign_in(stored, recovery_codes_left));
        Ok(signed_in?)
    }

    /// The hash of `token` when it is a live unlock link of the account (not spent: a sign-in
    /// that still needs its second factor comes back with the same token). 256 random bits:
    /// no guess counting is needed, so nobody can burn the owner's link. A token of another
    /// account, or of none, reads a record of nobody: the same work.
    async fn live_unlock_token(&self, stored: Option<&StoredUser>, token: &str) -> Result<Option<String>, Failure> {
        let parsed = token.split_once('.').and_then(|(id, secret)| Some((UserId::parse(id)?, secret)));
        let (owner, secret) = parsed.unwrap_or((UserId(uuid::Uuid::nil()), token));
        let user_id =
            stored.map(|stored| stored.user.id).filter(|id| *id == owner).unwrap_or(UserId(uuid::Uuid::nil()));
        let hash = secrets::hash(secret);
        let live = self.unlock_tokens.is_live(user_id, &hash, now().unix_timestamp()).await? && user_id == owner;
        Ok(live.then_some(hash))
    }

    /// `POST /v1/auth/unlock`: mails an unlock link when the login name or its account is
    /// locked out (at most one a minute; earlier links keep working). Answers the same, in
    /// about the same time, whatever the name.
    pub async fn send_unlock_link(&self, identifier: LoginIdentifier) {
        let sent: Result<(), Failure> = self
            .guard
            .uniformly(async {
                let throttle = self.guard.throttle();
                let name = Subject::LoginName(secrets::hash(&identifier.canonical()));
                let Some(stored) = self.users.find_by_login(&identifier).await? else { return Ok(()) };
                let user = &stored.user;
                let Some(address) = user.email.as_ref().filter(|_| user.is_active()) else { return Ok(()) };
                let (now, account) = (now().unix_timestamp(), Subject::Account(user.id));
                let (name_lock, account_lock) = tokio::join!(throttle.check(&name, now), throttle.check(&account, now));
                if name_lock.is_ok() && account_lock.is_ok() {
                    return Ok(());
                }
                let latest = self.unlock_tokens.latest_issued_at(user.id, now).await?;
                if latest.is_some_and(|issued_at| now - issued_at < RESEND_AFTER_SECONDS) {
                    return Ok(());
                }
                let secret = secrets::generate();
                let expires_at = now + UNLOCK_VALID_MINUTES * 60;
                let token = UnlockToken { issued_at: now, expires_at, ttl: expires_at };
                self.unlock_tokens.create(user.id, &secrets::hash(&secret), &token).await?;
                let link = format!("{}.{secret}", user.id);
                let mail = Mail::Unlock { token: &link, valid_minutes: UNLOCK_VALID_MINUTES };
                self.notices.send(address, mail).await
            })
            .await;
        // Only a locked account with an address gets this far: any failure, answered, would
        // tell that the name is of one.
        if let Err(error) = sent {
            tracing::error!(%error, "an unlock link could not be sent");
        }
    }

    /// Rotates a refresh token: the presented one is spent, a new pair is issued.
    pub async fn refresh(&self, refresh_token: &str) -> Result<TokenPair, SessionError> {
        let presented_hash = secrets::hash(refresh_token);
        let session = self.live_session_of(&presented_hash).await?;
        let user = match self.users.find_by_id(session.user_id).await? {
            Some(stored) if stored.user.is_active() && stored.session_epoch == session.epoch => stored.user,
            _ => return Err(SessionError::InvalidRefreshToken),
        };
        let refresh_token = secrets::generate();
        let rotated = Session { refresh_hash: secrets::hash(&refresh_token), ..session };
        match self.sessions.repo().rotate(&rotated, &presented_hash).await {
            Ok(()) => Ok(self.sessions.token_pair(user, &rotated, refresh_token)),
            // A concurrent refresh with the same token won the compare-and-swap.
            Err(RepoError::Conflict) => Err(SessionError::InvalidRefreshToken),
            Err(error) => Err(error.into()),
        }
    }

    /// Ends the login the refresh token belongs to.
    pub async fn logout(&self, refresh_token: &str) -> Result<(), SessionError> {
        let session = self.live_session_of(&secrets::hash(refresh_token)).await?;
        self.sessions.repo().delete(session.user_id, session.sid).await?;
        Ok(())
    }

    /// Ends every login of the caller, on every device.
    pub async fn logout_all(&self, principal: &Principal) -> Result<usize, SessionError> {
        Ok(self.sessions.repo().delete_all(principal.user.id, None).await?)
    }

    /// `None` for anything that is not a live access token of ours.
    pub async fn introspect(&self, token: &str) -> Result<Option<Introspection>, SessionError> {
        let held = self.sessions.holder_of(token).await?;
        Ok(held.map(|(claims, holder)| Introspection { claims, holder }))
    }

    pub fn jwks(&self) -> serde_json::Value {
        self.sessions.jwks()
    }

    /// The session a refresh token may still be used on. Presenting a token that was already
    /// rotated is treated as theft (RFC 9700 4.14.2): the whole family is revoked.
    async fn live_session_of(&self, presented_hash: &str) -> Result<Session, SessionError> {
        let sessions = self.sessions.repo();
        let record = sessions.find_refresh(presented_hash).await?.ok_or(SessionError::InvalidRefreshToken)?;
        if record.expires_at <= now().unix_timestamp() {
            return Err(SessionError::InvalidRefreshToken);
        }
        let session = sessions.get(record.user_id, record.sid).await?.ok_or(SessionError::InvalidRefreshToken)?;
        let is_current: bool = session.refresh_hash.as_bytes().ct_eq(presented_hash.as_bytes()).into();
        if !is_current {
            tracing::warn!(user_id = %session.user_id, sid = %session.sid, "a rotated refresh token was reused; revoking its family");
            sessions.delete(session.user_id, session.sid).await?;
            return Err(SessionError::InvalidRefreshToken);
        }
        Ok(session)
    }
}
