//! Third-party sign-in: with a provider token (mobile and SPA clients), with the redirect flow
//! (state, PKCE and a one-time exchange code), and explicit linking of provider accounts.
//!
//! An account is found by its (provider, subject) guard item, never by email: a provider that
//! shares an address already registered is told to sign in and link, so nobody gets an
//! account by controlling a provider account with someone else's address.

use std::sync::Arc;

use aws_lc_rs::digest::{SHA256, digest};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::crypto::secrets;
use crate::domain::{LinkedIdentity, ProviderName, User};
use crate::kernel::throttle::Subject;
use crate::kernel::{
    Failure, Guard, Kernel, Notices, Origin, Principal, ProofError, Proofs, SecondFactor, Sessions, TokenPair,
    caller_record, now, retry_on_conflict, settled, taken_or_failure,
};
use crate::mail::templates::Notice;
use crate::oauth::{AuthorizationRequest, ProviderError, ProviderToken, Providers, VerifiedIdentity};
use crate::repo::{ExchangeGrant, PendingAuthorization, RepoError, SignInRepo, StoredUser, UniqueField, UserRepo};

#[derive(Debug, thiserror::Error)]
pub enum SignInError {
    #[error("no such sign-in provider")]
    NoSuchProvider,
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
    #[error("verify the account's email address before linking a provider")]
    UnverifiedAddressCannotLink,
    #[error("another account of this provider is linked; unlink it first")]
    OtherIdentityLinked,
    /// The account the identity signs in to cannot sign in (deleted by an admin).
    #[error("invalid credentials")]
    InvalidCredentials,
    #[error("the email address of this account is not verified yet")]
    EmailNotVerified,
    #[error("this {0} is already registered")]
    AlreadyExists(UniqueField),
    #[error(transparent)]
    Proof(#[from] ProofError),
    #[error(transparent)]
    Failure(#[from] Failure),
}

impl From<RepoError> for SignInError {
    fn from(error: RepoError) -> Self {
        taken_or_failure(error, Self::AlreadyExists)
    }
}

impl From<ProviderError> for SignInError {
    fn from(error: ProviderError) -> Self {
        match error {
            ProviderError::NotConfigured => Self::NoSuchProvider,
            ProviderError::Rejected(reason) => Self::ProviderRejected(reason),
            ProviderError::Unsupported(reason) => Self::ProviderUnsupported(reason),
            ProviderError::Unavailable { provider, detail } => Self::ProviderUnavailable { provider, detail },
        }
    }
}

/// How long the browser may take at the provider.
const AUTHORIZATION_VALID_SECONDS: i64 = 600;
/// How long the app has to trade the exchange code for tokens (a second factor included).
const EXCHANGE_VALID_SECONDS: i64 = 120;

/// A provider sign-in that succeeded.
pub struct ProviderSignIn {
    pub tokens: TokenPair,
    /// The sign-in created the account.
    pub created: bool,
}

/// What the redirect flow's callback tells the app, by redirecting to its `redirect_uri`.
pub struct CallbackOutcome {
    pub redirect_uri: String,
    pub app_state: String,
    pub result: Result<String, CallbackError>,
}

/// Why a callback did not produce an exchange code: the `error` the app receives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallbackError {
    /// The user declined at the provider, or the provider sent no code.
    AccessDenied,
    /// The provider refused the code, or what it returned did not verify.
    InvalidGrant,
    /// The provider's address belongs to an account: sign in to it and link.
    AccountExists,
    ProviderUnavailable,
}

impl CallbackError {
    pub fn code(self) -> &'static str {
        match self {
            Self::AccessDenied => "access_denied",
            Self::InvalidGrant => "invalid_grant",
            Self::AccountExists => "account_exists",
            Self::ProviderUnavailable => "temporarily_unavailable",
        }
    }
}

/// The account a provider identity signs in to.
enum Account {
    Existing(Box<StoredUser>),
    Created(User),
}

pub struct ProviderService {
    users: UserRepo,
    providers: Providers,
    sign_ins: SignInRepo,
    sessions: Arc<Sessions>,
    proofs: Arc<Proofs>,
    guard: Arc<Guard>,
    notices: Arc<Notices>,
    redirect_uris: Vec<String>,
    public_url: Option<String>,
    require_verified_email: bool,
}

impl ProviderService {
    pub fn new(kernel: &Kernel) -> Self {
        let config = &kernel.config;
        Self {
            users: kernel.users(),
            providers: Providers::new(config.oauth_providers.clone()),
            sign_ins: SignInRepo::new(Arc::clone(&kernel.store)),
            sessions: Arc::clone(&kernel.sessions),
            proofs: Arc::clone(&kernel.proofs),
            guard: Arc::clone(&kernel.guard),
            notices: Arc::clone(&kernel.notices),
            redirect_uris: config.oauth_redirect_uris.clone(),
            public_url: config.public_url.clone(),
            require_verified_email: config.require_verified_email,
        }
    }

    /// `POST /v1/auth/oauth/{provider}`.
    pub async fn sign_in_with_provider(
        &self,
        provider: &ProviderName,
        token: ProviderToken,
        second_factor: Option<SecondFactor>,
        origin: &Origin,
    ) -> Result<ProviderSignIn, SignInError> {
        let identity = self.providers.verify(provider, &token).await?;
        let account = self.account_for(provider, identity).await?;
        self.start_provider_session(account, second_factor, origin).await
    }

    /// `GET /v1/auth/oauth/{provider}/authorize`: remembers the trip and answers where to send
    /// the browser.
    pub async fn begin_authorization(
        &self,
        provider: &ProviderName,
        redirect_uri: &str,
        app_state: String,
        callback_url: String,
    ) -> Result<String, SignInError> {
        self.providers.get(provider)?;
        if !self.redirect_uris.iter().any(|allowed| allowed == redirect_uri) {
            return Err(SignInError::RedirectUriNotAllowed);
        }
        let (state, code_verifier, nonce) = (secrets::generate(), secrets::generate(), secrets::generate());
        let code_challenge = URL_SAFE_NO_PAD.encode(digest(&SHA256, code_verifier.as_bytes()));
        let request = AuthorizationRequest {
            callback_url: &callback_url,
            state: &state,
            code_challenge: &code_challenge,
            nonce: &nonce,
        };
        let location = self.providers.authorization_url(provider, request)?;
        let expires_at = now().unix_timestamp() + AUTHORIZATION_VALID_SECONDS;
        let pending = PendingAuthorization {
            provider: provider.clone(),
            code_verifier,
            nonce,
            callback_url,
            redirect_uri: redirect_uri.to_owned(),
            app_state,
            expires_at,
            ttl: expires_at,
        };
        self.sign_ins.save_authorization(&secrets::hash(&state), &pending).await?;
        Ok(location)
    }

    /// `GET /v1/auth/oauth/{provider}/callback`: spends the state, exchanges the provider's
    /// code, and prepares a one-time exchange code for the app. Tokens never travel in a URL.
    pub async fn finish_authorization(
        &self,
        provider: &ProviderName,
        state: Option<&str>,
        code: Option<&str>,
    ) -> Result<CallbackOutcome, SignInError> {
        self.providers.get(provider)?;
        let state = state.filter(|state| !state.is_empty()).ok_or(SignInError::InvalidState)?;
        let pending = match self.sign_ins.take_authorization(&secrets::hash(state)).await? {
            Some(pending) if pending.provider == *provider && pending.expires_at > now().unix_timestamp() => pending,
            _ => return Err(SignInError::InvalidState),
        };
        let result = match code {
            None => Err(CallbackError::AccessDenied),
            Some(code) => self.grant_for(provider, code, &pending).await?,
        };
        Ok(CallbackOutcome { redirect_uri: pending.redirect_uri, app_state: pending.app_state, result })
    }

    /// `POST /v1/auth/oauth/exchange`: trades an exchange code for tokens, once.
    pub async fn exchange_sign_in_code(
        &self,
        code: &str,
        second_factor: Option<SecondFactor>,
        origin: &Origin,
    ) -> Result<ProviderSignIn, SignInError> {
        // A locked-out address is refused before the code is looked at.
        self.guard.check_address(origin).await?;
        let hash = secrets::hash(code);
        let grant = match self.sign_ins.grant(&hash).await? {
            Some(grant) if grant.expires_at > now().unix_timestamp() => grant,
            _ => return Err(self.guard.failed(origin, SignInError::InvalidGrant).await),
        };
        // A grant is for the account as it was at the callback: a password reset since (a new
        // session epoch) or an unlink of the identity voids it.
        let still_linked = |stored: &StoredUser| match (&grant.provider, &grant.subject) {
            (Some(provider), Some(subject)) => stored.user.identity(provider).is_some_and(|id| id.subject == *subject),
            _ => true,
        };
        let stored = match self.users.find_by_id(grant.user_id).await? {
            Some(stored)
                if stored.user.is_active() && stored.session_epoch == grant.session_epoch && still_linked(&stored) =>
            {
                stored
            }
            _ => return Err(SignInError::InvalidGrant),
        };
        // The second factor is checked before the code is spent, so a client asked for one
        // retries with the same code.
        let recovery_codes_left = self.second_step(&stored, second_factor, origin).await?;
        if !self.sign_ins.spend_grant(&hash, &grant).await? {
            return Err(SignInError::InvalidGrant);
        }
        let tokens = self.sessions.finish_sign_in(stored, recovery_codes_left).await?;
        Ok(ProviderSignIn { tokens, created: grant.created })
    }

    /// `POST /v1/users/me/identities/{provider}`: adds a provider account to the caller's.
    /// Answers the identity and whether it is new (linking it again changes nothing).
    ///
    /// A new way into the account needs its owner: the password (or, without one, a fresh
    /// login), and an address the owner proved, so that whoever registered someone else's
    /// address cannot keep a way in after the owner resets the password.
    pub async fn link_identity(
        &self,
        principal: &Principal,
        provider: &ProviderName,
        token: ProviderToken,
        current_password: Option<String>,
        origin: &Origin,
    ) -> Result<(LinkedIdentity, bool), SignInError> {
        self.providers.get(provider)?;
        let stored = caller_record(&self.users, principal).await?;
        if stored.user.email.is_some() && !stored.user.is_email_verified {
            return Err(SignInError::UnverifiedAddressCannotLink);
        }
        let reauthenticated = self.proofs.reauthenticate(principal, stored, current_password, origin).await?;
        let verified = &self.providers.verify(provider, &token).await?;
        self.guard.succeeded(reauthenticated.user.id).await;
        let reauthenticated = &reauthenticated;
        retry_on_conflict(|attempt| async move {
            // The record just re-authenticated; after a lost swap, the account as it is now.
            let before = match attempt {
                0 => reauthenticated.clone(),
                _ => caller_record(&self.users, principal).await?,
            };
            if let Some(linked) = before.user.identity(provider) {
                return match linked.subject == verified.subject {
                    true => Ok(Some((linked.clone(), false))),
                    false => Err(SignInError::OtherIdentityLinked),
                };
            }
            let identity = linked_identity(provider, verified);
            let mut after = before.clone();
            after.user.identities.push(identity.clone());
            let Some(()) = settled::<_, SignInError>(self.users.save_profile(&before.user, &after, vec![]).await)?
            else {
                return Ok(None);
            };
            tracing::info!(user_id = %principal.user.id, %provider, "sign-in provider linked");
            self.notices.notify(&after, Notice::IdentityLinked).await;
            Ok(Some((identity, true)))
        })
        .await
    }

    /// The caller's linked identities, and whether the account also has a password.
    pub async fn identities(&self, principal: &Principal) -> Result<(Vec<LinkedIdentity>, bool), SignInError> {
        let stored = caller_record(&self.users, principal).await?;
        Ok((stored.user.identities, stored.password_hash.is_some()))
    }

    /// Where clients reach this API, when configured.
    pub fn public_url(&self) -> Option<&String> {
        self.public_url.as_ref()
    }

    /// `DELETE /v1/users/me/identities/{provider}`, unless it is the last way to sign in.
    pub async fn unlink_identity(&self, principal: &Principal, provider: &ProviderName) -> Result<(), SignInError> {
        let after = retry_on_conflict(|_| async move {
            let before = caller_record(&self.users, principal).await?;
            if before.user.identity(provider).is_none() {
                return Err(SignInError::NoSuchIdentity);
            }
            // Checked on the record the write is conditional on: two unlinks racing for the
            // last two identities cannot both pass.
            if before.password_hash.is_none() && before.user.identities.len() == 1 {
                return Err(SignInError::LastSignInMethod);
            }
            let mut after = before.clone();
            after.user.identities.retain(|identity| identity.provider != *provider);
            settled(self.users.save_profile(&before.user, &after, vec![]).await.map(|()| after))
        })
        .await?;
        tracing::info!(user_id = %principal.user.id, %provider, "sign-in provider unlinked");
        self.notices.notify(&after, Notice::IdentityUnlinked).await;
        Ok(())
    }

    /// Exchanges the provider's code and stores an exchange grant: the app's error when the
    /// provider or the account refuses, `Err` only when this server fails.
    async fn grant_for(
        &self,
        provider: &ProviderName,
        code: &str,
        pending: &PendingAuthorization,
    ) -> Result<Result<String, CallbackError>, SignInError> {
        let exchanged = self
            .providers
            .exchange_code(provider, code, &pending.callback_url, &pending.code_verifier, &pending.nonce)
            .await;
        let (account, subject) = match exchanged.map_err(SignInError::from) {
            Ok(identity) => {
                let subject = identity.subject.clone();
                (self.account_for(provider, identity).await, subject)
            }
            Err(error) => (Err(error), String::new()),
        };
        let (user_id, created, session_epoch) = match account {
            Ok(Account::Existing(stored)) => (stored.user.id, false, stored.session_epoch),
            Ok(Account::Created(user)) => (user.id, true, 0),
            Err(SignInError::LinkRequired) => return Ok(Err(CallbackError::AccountExists)),
            Err(SignInError::ProviderUnavailable { .. }) => return Ok(Err(CallbackError::ProviderUnavailable)),
            Err(SignInError::ProviderRejected(reason)) => {
                tracing::info!(%provider, %reason, "a provider sign-in was refused");
                return Ok(Err(CallbackError::InvalidGrant));
            }
            Err(SignInError::ProviderUnsupported(reason)) => {
                tracing::warn!(%provider, %reason, "a provider answered the code exchange unexpectedly");
                return Ok(Err(CallbackError::InvalidGrant));
            }
            // A disabled account: the browser goes back to the app, told no more than a refusal.
            Err(SignInError::InvalidCredentials) => return Ok(Err(CallbackError::AccessDenied)),
            Err(error @ SignInError::Failure(Failure::Aborted | Failure::Unavailable(_))) => {
                tracing::warn!(%provider, %error, "a redirect sign-in could not be completed");
                return Ok(Err(CallbackError::ProviderUnavailable));
            }
            Err(error) => return Err(error),
        };
        let code = secrets::generate();
        let expires_at = now().unix_timestamp() + EXCHANGE_VALID_SECONDS;
        let grant = ExchangeGrant {
            user_id,
            created,
            provider: Some(provider.clone()),
            subject: Some(subject),
            session_epoch,
            expires_at,
            ttl: expires_at,
        };
        self.sign_ins.save_grant(&secrets::hash(&code), &grant).await?;
        Ok(Ok(code))
    }

    /// The account of a verified provider identity, created if there is none. Creation writes
    /// the identity's guard item with the user, so two first sign-ins racing make one account.
    async fn account_for(&self, provider: &ProviderName, verified: VerifiedIdentity) -> Result<Account, SignInError> {
        let existing = |stored: StoredUser| match stored.user.is_active() {
            true => Ok(Account::Existing(Box::new(stored))),
            false => Err(SignInError::InvalidCredentials),
        };
        if let Some(stored) = self.users.find_by_identity(provider, &verified.subject).await? {
            return existing(stored);
        }
        let user = User::new_provider_user(linked_identity(provider, &verified));
        match self.users.create(&user, None, vec![]).await {
            Ok(()) => {
                tracing::info!(user_id = %user.id, %provider, "user created by a sign-in provider");
                Ok(Account::Created(user))
            }
            Err(RepoError::Taken(field @ (UniqueField::Identity | UniqueField::Email))) => {
                // A concurrent first sign-in created the account (its email guard may be the
                // condition reported): sign in to it. Otherwise the address is someone else's.
                match self.users.find_by_identity(provider, &verified.subject).await? {
                    Some(stored) => existing(stored),
                    None if field == UniqueField::Email => Err(SignInError::LinkRequired),
                    None => Err(Failure::Aborted.into()),
                }
            }
            Err(error) => Err(error.into()),
        }
    }

    async fn start_provider_session(
        &self,
        account: Account,
        second_factor: Option<SecondFactor>,
        origin: &Origin,
    ) -> Result<ProviderSignIn, SignInError> {
        match account {
            Account::Created(user) => Ok(ProviderSignIn { tokens: self.sessions.start(user, 0).await?, created: true }),
            Account::Existing(stored) => {
                let recovery_codes_left = self.second_step(&stored, second_factor, origin).await?;
                Ok(ProviderSignIn {
                    tokens: self.sessions.finish_sign_in(*stored, recovery_codes_left).await?,
                    created: false,
                })
            }
        }
    }

    /// What a password login checks after the password, a provider sign-in checks too: the
    /// verified address the deployment may require, and the account's second factor (wrong
    /// codes are throttled per account).
    async fn second_step(
        &self,
        stored: &StoredUser,
        second_factor: Option<SecondFactor>,
        origin: &Origin,
    ) -> Result<Option<usize>, SignInError> {
        if self.require_verified_email && stored.user.email.is_some() && !stored.user.is_email_verified {
            return Err(SignInError::EmailNotVerified);
        }
        if second_factor.is_some() {
            self.guard.reserve(&Subject::Account(stored.user.id), origin).await?;
        }
        Ok(self.proofs.check_second_factor(stored, second_factor, origin).await?)
    }
}

fn linked_identity(provider: &ProviderName, verified: &VerifiedIdentity) -> LinkedIdentity {
    LinkedIdentity {
        provider: provider.clone(),
        subject: verified.subject.clone(),
        email: verified.email.clone(),
        linked_at: now(),
    }
}
