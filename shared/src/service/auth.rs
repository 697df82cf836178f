//! Registration, login (with second factors and lockout), refresh-token rotation, logout and
//! access-token checks. The second-factor and password-lifecycle flows live in `mfa.rs` and
//! `account.rs` as further `impl AuthService` blocks: one service, one error type.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use subtle::ConstantTimeEq;
use time::OffsetDateTime;
use uuid::Uuid;

use super::throttle::{Subject, Throttle, ThrottleError};
use super::users::DirectoryCache;
use crate::config::Config;
use crate::crypto::keys::{AccessClaims, KeyError, KeyMaterial, SigningKeys};
use crate::crypto::passwords::{HashError, PasswordHasher};
use crate::crypto::sealing::{KeyedMac, SecretBox};
use crate::crypto::secrets;
use crate::domain::{Email, LoginIdentifier, Password, Phone, User, UserId, Username};
use crate::mail::templates::{Mail, Notice, Templates};
use crate::mail::{Mailer, Sender};
use crate::oauth::{ProviderError, Providers};
use crate::objects::ObjectStore;
use crate::repo::{
    ChatRepo, CounterRepo, FriendRepo, OneTimeSecretRepo, RecoveryCodeRepo, RepoError, Session, SessionRepo,
    SignInRepo, StoredUser, UniqueField, UnlockTokenRepo, UploadRepo, UserRepo,
};
use crate::store::{ItemStore, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// Unknown user, wrong password or an account that cannot sign in: deliberately one error.
    #[error("invalid credentials")]
    InvalidCredentials,
    /// The password was right; a second factor is needed, by one of `methods`.
    #[error("a second factor is required")]
    MfaRequired { methods: Vec<&'static str> },
    #[error("the second factor is wrong, expired or already used")]
    InvalidSecondFactor,
    /// A signed-in caller gave a wrong password or code for `field`.
    #[error("{field} is incorrect")]
    Incorrect { field: &'static str },
    #[error("the email address of this account is not verified yet")]
    EmailNotVerified,
    #[error("too many failed attempts; retry in {retry_after_seconds} seconds")]
    Throttled { retry_after_seconds: i64 },
    #[error("the refresh token is invalid, expired or revoked")]
    InvalidRefreshToken,
    #[error("the access token is invalid, expired or revoked")]
    InvalidAccessToken,
    /// A reset or verification token that is unknown, expired or spent.
    #[error("the link is invalid, expired or already used")]
    LinkNotFound,
    #[error("this {0} is already registered")]
    AlreadyExists(UniqueField),
    #[error("no such user")]
    NoSuchUser,
    #[error("no such upload: the token is unknown, expired or already used")]
    NoSuchUpload,
    #[error("no avatar")]
    NoAvatar,
    /// What was uploaded is not what was declared, or not an allowed image.
    #[error("{0}")]
    InvalidUpload(String),
    #[error("you are friends already")]
    AlreadyFriends,
    #[error("you are not friends")]
    NotFriends,
    /// Something only an admin may do.
    #[error("only admins may {0}")]
    AdminsOnly(AdminAction),
    #[error("only the two participants may {} a conversation", if *writing { "write to" } else { "read" })]
    NotAParticipant { writing: bool },
    #[error("{0}: is required")]
    MissingField(&'static str),
    #[error("the email address is already verified")]
    EmailAlreadyVerified,
    #[error("the account has no email address")]
    NoEmailAddress,
    #[error("the account has no email address to send codes to")]
    NoAddressForCodes,
    #[error("the last admin cannot be demoted, deleted or withdrawn")]
    LastAdmin,
    #[error("TOTP is already enabled; disable it first")]
    TotpAlreadyEnabled,
    /// Verifying a TOTP setup that was never begun.
    #[error("no TOTP setup is pending")]
    NoTotpSetupPending,
    #[error("TOTP is not enabled")]
    TotpNotEnabled,
    #[error("you cannot start a conversation with yourself")]
    ConversationWithYourself,
    #[error("you cannot befriend yourself")]
    FriendWithYourself,
    #[error("one of you has reached the friend limit")]
    FriendLimitReached,
    #[error("verify the account's email address before linking a provider")]
    UnverifiedAddressCannotLink,
    #[error("another account of this provider is linked; unlink it first")]
    OtherIdentityLinked,
    #[error("the account changed while this request ran; retry")]
    Aborted,
    #[error("no such sign-in provider")]
    NoSuchProvider,
    #[error("no such conversation")]
    NoSuchConversation,
    /// A change that needs a password from an account without one: a fresh login proves it.
    #[error("sign in again (within the last 10 minutes) to confirm this change")]
    ReauthenticationRequired,
    #[error("too many messages on this connection; retry in {retry_after_seconds} seconds")]
    TooManyMessages { retry_after_seconds: i64 },
    #[error("the user is not connected; a conversation can only be started with a connected user")]
    UserNotConnected,
    /// A chat connection without a valid ticket, or a frame on a connection that is not open.
    #[error("the chat ticket is invalid, expired or already used")]
    InvalidTicket,
    /// The provider token (or code) did not verify; the reason is safe to show.
    #[error("{0}")]
    ProviderRejected(String),
    /// The request does not fit the provider (an access token to an OpenID provider, ...).
    #[error("{0}")]
    ProviderUnsupported(&'static str),
    #[error("the sign-in provider {provider} is unreachable or failing; retry shortly")]
    ProviderUnavailable { provider: String, detail: String },
    #[error("an account already uses this provider's email address: sign in to it, then link the provider")]
    LinkRequired,
    #[error("the redirect URI is not one of the configured ones")]
    RedirectUriNotAllowed,
    #[error("the sign-in state is invalid, expired or already used; start the sign-in again")]
    InvalidState,
    #[error("the code is invalid, expired or already used")]
    InvalidGrant,
    #[error("no identity of this provider is linked to the account")]
    NoSuchIdentity,
    #[error("this is the only way to sign in to the account: link another provider or set a password first")]
    LastSignInMethod,
    /// A directory filter that took longer to match than a listing may take.
    #[error("{field}: is too costly to search with; use a simpler pattern")]
    PatternTooCostly { field: &'static str },
    #[error("storage unavailable: {0}")]
    Unavailable(String),
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<RepoError> for AuthError {
    fn from(error: RepoError) -> Self {
        match error {
            RepoError::Taken(field) => Self::AlreadyExists(field),
            RepoError::Conflict => Self::Aborted,
            RepoError::Store(StoreError::Unavailable(detail)) => Self::Unavailable(detail),
            other => Self::Internal(other.to_string()),
        }
    }
}

impl From<ProviderError> for AuthError {
    fn from(error: ProviderError) -> Self {
        match error {
            ProviderError::NotConfigured => Self::NoSuchProvider,
            ProviderError::Rejected(reason) => Self::ProviderRejected(reason),
            ProviderError::Unsupported(reason) => Self::ProviderUnsupported(reason),
            ProviderError::Unavailable { provider, detail } => Self::ProviderUnavailable { provider, detail },
        }
    }
}

impl From<ThrottleError> for AuthError {
    fn from(error: ThrottleError) -> Self {
        match error {
            ThrottleError::Locked(locked) => Self::Throttled { retry_after_seconds: locked.retry_after_seconds },
            ThrottleError::Contended => Self::Throttled { retry_after_seconds: 1 },
            ThrottleError::Repo(error) => error.into(),
        }
    }
}

impl From<HashError> for AuthError {
    fn from(error: HashError) -> Self {
        Self::Internal(error.to_string())
    }
}

impl From<KeyError> for AuthError {
    fn from(error: KeyError) -> Self {
        Self::Internal(error.to_string())
    }
}

/// What only admins may do (for `AuthError::AdminsOnly`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdminAction {
    ReadOthers,
    ChangeAccounts,
    FilterByEmail,
}

impl std::fmt::Display for AdminAction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::ReadOthers => "read another user's record",
            Self::ChangeAccounts => "change roles and statuses",
            Self::FilterByEmail => "filter by email",
        })
    }
}

pub struct Registration {
    pub email: Email,
    pub password: Password,
    pub username: Option<Username>,
    pub phone: Option<Phone>,
}

/// A second factor as the client sent it.
#[derive(Debug, Clone)]
pub enum SecondFactor {
    Totp(String),
    RecoveryCode(String),
    EmailCode(String),
}

pub struct Credentials {
    pub identifier: LoginIdentifier,
    /// The candidate as typed; not policy-checked, since old passwords may predate the policy.
    pub password: String,
    pub second_factor: Option<SecondFactor>,
    /// The token of a link mailed by `send_unlock_link`: lets the owner past a lockout.
    pub unlock_token: Option<String>,
}

/// Where a request came from, for per-address throttling.
#[derive(Debug, Clone, Copy, Default)]
pub struct Origin {
    pub ip: Option<IpAddr>,
}

/// What a successful sign-in or refresh hands the client.
#[derive(Debug)]
pub struct TokenPair {
    pub user: User,
    pub access_token: String,
    pub refresh_token: String,
    pub expires_in: i64,
}

pub enum Registered {
    SignedIn(TokenPair),
    /// The deployment requires a verified email before sign-in; a link was sent.
    VerificationRequired(User),
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

/// RFC 7662: an active access token's claims, with its holder as stored now (the role in
/// the token may be stale; the stored one is what counts).
pub struct Introspection {
    pub claims: AccessClaims,
    pub holder: Principal,
}

pub struct AuthService {
    pub(super) users: UserRepo,
    pub(super) sessions: SessionRepo,
    pub(super) secrets: OneTimeSecretRepo,
    pub(super) recovery_codes: RecoveryCodeRepo,
    pub(super) unlock_tokens: UnlockTokenRepo,
    pub(super) throttle: Throttle,
    pub(super) hasher: PasswordHasher,
    keys: SigningKeys,
    pub(super) secret_box: SecretBox,
    pub(super) code_mac: KeyedMac,
    mailer: Arc<dyn Mailer>,
    templates: Templates,
    pub(super) directory: DirectoryCache,
    pub(super) uploads: UploadRepo,
    /// Absent in functions that serve no avatar routes.
    pub(super) objects: Option<Arc<dyn ObjectStore>>,
    pub(super) friends: FriendRepo,
    pub(super) providers: Providers,
    pub(super) sign_ins: SignInRepo,
    pub(super) chat: ChatRepo,
    pub(super) config: Config,
}

pub(super) fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}

/// The outcome of one compare-and-swap attempt for `retry_on_conflict`: lost (`None`) when a
/// concurrent writer changed what it read.
pub(super) fn settled<T>(result: Result<T, RepoError>) -> Result<Option<T>, AuthError> {
    match result {
        Ok(value) => Ok(Some(value)),
        Err(RepoError::Conflict) => Ok(None),
        Err(error) => Err(error.into()),
    }
}

/// How often a change is re-applied on a fresh read after losing a compare-and-swap.
const CONFLICT_ATTEMPTS: usize = 5;

/// Runs `attempt` (told which try it is, from 0) until it is done (`Some`) or fails; `None`
/// means it lost a compare-and-swap to a concurrent change and runs again on a fresh read.
/// Past `CONFLICT_ATTEMPTS` the request ends with `Aborted` (the client may retry).
pub(super) async fn retry_on_conflict<T, F, Attempt>(mut attempt: F) -> Result<T, AuthError>
where
    F: FnMut(usize) -> Attempt,
    Attempt: Future<Output = Result<Option<T>, AuthError>>,
{
    for number in 0..CONFLICT_ATTEMPTS {
        if let Some(done) = attempt(number).await? {
            return Ok(done);
        }
    }
    Err(AuthError::Aborted)
}

impl AuthService {
    pub fn new(
        config: Config,
        store: Arc<dyn ItemStore>,
        keys: &KeyMaterial,
        mailer: Arc<dyn Mailer>,
        objects: Option<Arc<dyn ObjectStore>>,
    ) -> Result<Self, AuthError> {
        Ok(Self {
            uploads: UploadRepo::new(Arc::clone(&store)),
            objects,
            users: UserRepo::new(Arc::clone(&store)),
            sessions: SessionRepo::new(Arc::clone(&store)),
            secrets: OneTimeSecretRepo::new(Arc::clone(&store)),
            recovery_codes: RecoveryCodeRepo::new(Arc::clone(&store)),
            unlock_tokens: UnlockTokenRepo::new(Arc::clone(&store)),
            friends: FriendRepo::new(Arc::clone(&store)),
            providers: Providers::new(config.oauth_providers.clone()),
            sign_ins: SignInRepo::new(Arc::clone(&store)),
            chat: ChatRepo::new(Arc::clone(&store)),
            directory: DirectoryCache::new(Duration::from_secs(config.directory_cache_seconds)),
            throttle: Throttle::new(CounterRepo::new(store), config.lockout),
            hasher: PasswordHasher::new(config.argon2)?,
            keys: SigningKeys::from_material(keys, &config.issuer, &config.audience)?,
            secret_box: SecretBox::from_material(keys),
            code_mac: KeyedMac::for_codes(keys),
            mailer,
            templates: Templates::new(config.product_name.clone(), config.app_url.clone()),
            config,
        })
    }

    /// Who mail is sent as, for the mail adapters.
    pub fn sender(config: &Config) -> Sender {
        Sender { name: config.product_name.clone(), address: config.mail_from.clone() }
    }

    /// A taken email or phone is `409` (a sign-up form must say so); each one counts as a
    /// failure of the client address, so addresses cannot be tested for accounts at speed.
    pub async fn register(&self, registration: Registration, origin: &Origin) -> Result<Registered, AuthError> {
        self.check_address(origin).await?;
        let password_hash = self.hasher.hash(&registration.password).await?;
        let user = User::new_email_user(registration.email, registration.username, registration.phone, now());
        match self.users.create(&user, Some(password_hash), vec![]).await {
            Err(RepoError::Taken(field @ (UniqueField::Email | UniqueField::Phone))) => {
                return Err(self.failed(origin, AuthError::AlreadyExists(field)).await);
            }
            other => other?,
        }
        tracing::info!(user_id = %user.id, "user registered");
        if let Err(error) = self.send_verification(&user).await {
            tracing::error!(user_id = %user.id, %error, "the verification email could not be sent");
        }
        if self.config.require_verified_email {
            return Ok(Registered::VerificationRequired(user));
        }
        Ok(Registered::SignedIn(self.start_session(user, 0).await?))
    }

    /// Failures are counted twice: against the login name as typed, whose lock is answered
    /// with `429` (the same for every name, whether or not it names an account), and against
    /// the account across all its names, whose lock is enforced silently: the password is not
    /// checked and the answer is the wrong-password one, with the same work. So a lock earned
    /// through a username cannot be seen by trying the account's email or phone. The owner
    /// gets past either lock with a mailed unlock link (`send_unlock_link`); a login that
    /// carries its token takes the uniform response time, so whether it was needed does not show.
    pub async fn login(&self, credentials: Credentials, origin: &Origin) -> Result<TokenPair, AuthError> {
        match credentials.unlock_token.is_some() {
            true => self.uniformly(self.check_login(credentials, origin)).await,
            false => self.check_login(credentials, origin).await,
        }
    }

    async fn check_login(&self, credentials: Credentials, origin: &Origin) -> Result<TokenPair, AuthError> {
        let canonical = secrets::hash(&credentials.identifier.canonical());
        let name = Subject::LoginName(canonical.clone());
        let found = self.users.find_by_login(&credentials.identifier).await?;
        let account = match &found {
            Some(stored) => Subject::Account(stored.user.id),
            None => Subject::UnknownLogin(canonical),
        };
        let now = now().unix_timestamp();
        self.check_address(origin).await?;
        // A live unlock token of the account lets this request past both locks. It is spent,
        // and the locks forgotten, only once the whole sign-in succeeds: an owner asked for a
        // second factor comes back with the same token, and nobody can re-lock them in between.
        let mut unlocked: Option<Option<String>> = None;
        let mut unlock = async || -> Result<bool, AuthError> {
            if unlocked.is_none() {
                let live = match credentials.unlock_token.as_deref() {
                    Some(token) => self.live_unlock_token(found.as_ref(), token).await?,
                    None => None,
                };
                unlocked = Some(live);
            }
            Ok(unlocked.as_ref().is_some_and(Option::is_some))
        };
        match self.throttle.reserve(&name, now).await {
            Ok(()) => {}
            Err(ThrottleError::Locked(locked)) => {
                if !unlock().await? {
                    let refused = AuthError::Throttled { retry_after_seconds: locked.retry_after_seconds };
                    return Err(self.failed(origin, refused).await);
                }
            }
            Err(error) => return Err(error.into()),
        }
        let account_open = match self.throttle.reserve(&account, now).await {
            Ok(()) => true,
            Err(ThrottleError::Locked(_)) => unlock().await?,
            Err(error) => return Err(error.into()),
        };
        // Always one argon2 verification, whether or not the user exists or is locked (no
        // timing oracle).
        let stored_hash = found.as_ref().filter(|_| account_open).and_then(|stored| stored.password_hash.clone());
        let password_matches = self.hasher.verify(credentials.password, stored_hash).await;
        let stored = match found {
            Some(stored) if password_matches && account_open && stored.user.is_active() => stored,
            _ => return Err(self.failed(origin, AuthError::InvalidCredentials).await),
        };
        if self.config.require_verified_email && !stored.user.is_email_verified {
            return Err(AuthError::EmailNotVerified);
        }
        let recovery_codes_left = self.check_second_factor(&stored, credentials.second_factor, origin).await?;
        if let Some(Some(hash)) = &unlocked
            && !self.unlock_tokens.consume(stored.user.id, hash, now).await?
        {
            // Spent by a concurrent sign-in: this one is refused as the lock would refuse it.
            return Err(AuthError::Throttled { retry_after_seconds: 1 });
        }
        // The name's counter is forgotten beside the account's (in `finish_sign_in`): one round trip.
        let ((), signed_in) =
            tokio::join!(self.clear_failures(&name), self.finish_sign_in(stored, recovery_codes_left));
        signed_in
    }

    /// After every check passed: forgets the account's failures, reports a spent recovery
    /// code, and starts the session.
    pub(super) async fn finish_sign_in(
        &self,
        stored: StoredUser,
        recovery_codes_left: Option<usize>,
    ) -> Result<TokenPair, AuthError> {
        self.clear_failures(&Subject::Account(stored.user.id)).await;
        if let Some(remaining) = recovery_codes_left {
            self.notify(&stored, Notice::RecoveryCodeUsed { remaining }).await;
        }
        self.start_session(stored.user, stored.session_epoch).await
    }

    /// Rotates a refresh token: the presented one is spent, a new pair is issued.
    pub async fn refresh(&self, refresh_token: &str) -> Result<TokenPair, AuthError> {
        let presented_hash = secrets::hash(refresh_token);
        let session = self.live_session_of(&presented_hash).await?;
        let user = match self.users.find_by_id(session.user_id).await? {
            Some(stored) if stored.user.is_active() && stored.session_epoch == session.epoch => stored.user,
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
        Ok(self.sessions.delete_all(principal.user.id, None).await?)
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

    /// Refuses the request when the client address is locked out; counts nothing.
    pub(super) async fn check_address(&self, origin: &Origin) -> Result<(), AuthError> {
        match origin.ip {
            Some(ip) => Ok(self.throttle.check(&Subject::Address(ip), now().unix_timestamp()).await?),
            None => Ok(()),
        }
    }

    /// Refuses the attempt when the client address or the account is locked out, and counts
    /// it against the account until `throttle.clear` records its success.
    pub(super) async fn guard(&self, account: &Subject, origin: &Origin) -> Result<(), AuthError> {
        let now = now().unix_timestamp();
        self.check_address(origin).await?;
        Ok(self.throttle.reserve(account, now).await?)
    }

    /// Counts a failed attempt against the client address and hands back `error`.
    pub(super) async fn failed(&self, origin: &Origin, error: AuthError) -> AuthError {
        let Some(ip) = origin.ip else { return error };
        match self.throttle.record_failure(&Subject::Address(ip), now().unix_timestamp()).await {
            Ok(()) => error,
            // Many failures at once from one address: some go uncounted, the answer stays.
            Err(ThrottleError::Contended) => {
                tracing::warn!("a failure of a client address was not counted: its counter is contended");
                error
            }
            Err(counting) => counting.into(),
        }
    }

    /// Forgets the failures of a subject after a success. The success already happened, so a
    /// store hiccup here is logged rather than turned into an error.
    pub(super) async fn clear_failures(&self, subject: &Subject) {
        if let Err(error) = self.throttle.clear(subject).await {
            tracing::warn!(%error, "a failure counter could not be cleared");
        }
    }

    /// Renders and sends one message.
    pub(super) async fn send(&self, to: &Email, mail: Mail<'_>) -> Result<(), AuthError> {
        let message = self.templates.render(to, mail);
        self.mailer.send(message).await.map_err(|error| AuthError::Unavailable(error.to_string()))
    }

    /// Sends a security notice to the account's address, if it has one, and to the addresses
    /// it had within the last `PREVIOUS_ADDRESS_DAYS`. The change it reports already happened,
    /// so a mail failure is logged rather than turned into an error.
    pub(super) async fn notify(&self, stored: &StoredUser, notice: Notice) {
        let now = now().unix_timestamp();
        let recent = stored.previous_emails.iter().filter(|previous| previous.until > now).map(|p| &p.email);
        let mut addresses: Vec<&Email> = stored.user.email.iter().chain(recent).collect();
        addresses.dedup();
        for to in addresses {
            if let Err(error) = self.send(to, Mail::Notice(notice)).await {
                tracing::error!(?notice, %error, "a security notice could not be sent");
            }
        }
    }

    /// Runs `work`, then waits out the rest of the configured uniform response time, so that a
    /// request about an existing account (which sends mail) takes as long as one about nobody.
    pub(super) async fn uniformly<T>(&self, work: impl Future<Output = T>) -> T {
        let deadline = tokio::time::Instant::now() + Duration::from_millis(self.config.uniform_response_ms);
        let result = work.await;
        if tokio::time::Instant::now() > deadline {
            // Past the budget, the time taken may tell whether the account exists.
            tracing::warn!(
                budget_ms = self.config.uniform_response_ms,
                "a uniform-time request overran its budget; raise LATCHKEY_UNIFORM_RESPONSE_MS"
            );
        }
        tokio::time::sleep_until(deadline).await;
        result
    }

    async fn principal_of(&self, claims: &AccessClaims) -> Result<Option<Principal>, AuthError> {
        let (Some(user_id), Ok(session_id)) = (UserId::parse(&claims.sub), Uuid::parse_str(&claims.sid)) else {
            return Ok(None);
        };
        // Two independent reads; in flight together they cost one round trip.
        let (session, stored) = tokio::join!(self.sessions.get(user_id, session_id), self.users.find_by_id(user_id));
        let session = session?.filter(|session| session.expires_at > now().unix_timestamp());
        Ok(match (stored?, session) {
            (Some(stored), Some(session)) if stored.user.is_active() && stored.session_epoch == session.epoch => {
                Some(Principal {
                    session_epoch: stored.session_epoch,
                    totp_enabled: stored.second_factors.totp.is_some(),
                    email_codes_enabled: stored.second_factors.email_codes || self.config.require_email_codes,
                    user: stored.user,
                    session_id,
                })
            }
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

    pub(super) async fn start_session(&self, user: User, epoch: u64) -> Result<TokenPair, AuthError> {
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
            epoch,
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
