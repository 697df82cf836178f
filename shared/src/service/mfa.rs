//! Second factors: TOTP with recovery codes, and one-time codes sent by email.

use subtle::ConstantTimeEq;

use super::account::RESEND_AFTER_SECONDS;
use super::auth::{AuthError, AuthService, Origin, Principal, SecondFactor, now, retry_on_conflict, settled};
use super::throttle::Subject;
use crate::crypto::secrets;
use crate::crypto::totp::{self, Enrollment};
use crate::domain::{LoginIdentifier, User, UserId};
use crate::mail::templates::{Mail, Notice};
use crate::repo::{Purpose, StoredUser, TotpFactor, UnlockToken};

const EMAIL_CODE_DIGITS: u32 = 6;
const EMAIL_CODE_VALID_MINUTES: i64 = 10;
const EMAIL_CODE_MAX_WRONG_GUESSES: u32 = 5;
const RECOVERY_CODES: usize = 10;
const UNLOCK_VALID_MINUTES: i64 = 15;
/// How recent a login must be to stand in for a password an account does not have.
const RECENT_SIGN_IN_SECONDS: i64 = 600;

impl AuthService {
    /// Sends a sign-in code to the account's address, if the account signs in with email
    /// codes. Answers the same, in about the same time, whether or not the account exists.
    pub async fn send_email_code(&self, identifier: LoginIdentifier) -> Result<(), AuthError> {
        self.uniformly(async {
            let Some(stored) = self.users.find_by_login(&identifier).await? else { return Ok(()) };
            let uses_codes = stored.second_factors.email_codes || self.config.require_email_codes;
            if uses_codes {
                self.mail_code(&stored.user).await?;
            }
            Ok(())
        })
        .await
    }

    /// `POST /v1/auth/unlock`: mails an unlock link when the login name or its account is
    /// locked out (at most one a minute; earlier links keep working). Answers the same, in
    /// about the same time, whatever the name.
    pub async fn send_unlock_link(&self, identifier: LoginIdentifier) -> Result<(), AuthError> {
        let sent: Result<(), AuthError> = self
            .uniformly(async {
                let name = Subject::LoginName(secrets::hash(&identifier.canonical()));
                let Some(stored) = self.users.find_by_login(&identifier).await? else { return Ok(()) };
                let user = &stored.user;
                let Some(address) = user.email.as_ref().filter(|_| user.is_active()) else { return Ok(()) };
                let (now, account) = (now().unix_timestamp(), Subject::Account(user.id));
                let (name_lock, account_lock) =
                    tokio::join!(self.throttle.check(&name, now), self.throttle.check(&account, now));
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
                self.send(address, mail).await
            })
            .await;
        // Only a locked account with an address gets this far: any failure, answered, would
        // tell that the name is of one.
        if let Err(error) = sent {
            tracing::error!(%error, "an unlock link could not be sent");
        }
        Ok(())
    }

    /// Mails a fresh six-digit sign-in code to an active account with an address (at most one
    /// a minute). A mail failure is logged: answering differently would tell the caller that
    /// the account exists.
    async fn mail_code(&self, user: &User) -> Result<(), AuthError> {
        let Some(address) = user.email.as_ref().filter(|_| user.is_active()) else { return Ok(()) };
        let code = secrets::generate_digits(EMAIL_CODE_DIGITS);
        let hash = self.code_mac.mac(&code, &user.id.to_string());
        let purpose = Purpose::EmailCode;
        if !self.issue_secret(user, address, purpose, hash, EMAIL_CODE_VALID_MINUTES * 60).await? {
            return Ok(());
        }
        let mail = Mail::EmailCode { code: &code, valid_minutes: EMAIL_CODE_VALID_MINUTES };
        if let Err(error) = self.send(address, mail).await {
            tracing::error!(user_id = %user.id, %error, "the email code could not be sent");
        }
        Ok(())
    }

    /// The hash of `token` when it is a live unlock link of the account (not spent: a sign-in
    /// that still needs its second factor comes back with the same token). 256 random bits:
    /// no guess counting is needed, so nobody can burn the owner's link. A token of another
    /// account, or of none, reads a record of nobody: the same work.
    pub(super) async fn live_unlock_token(
        &self,
        stored: Option<&StoredUser>,
        token: &str,
    ) -> Result<Option<String>, AuthError> {
        let parsed = token.split_once('.').and_then(|(id, secret)| Some((UserId::parse(id)?, secret)));
        let (owner, secret) = parsed.unwrap_or((UserId(uuid::Uuid::nil()), token));
        let user_id =
            stored.map(|stored| stored.user.id).filter(|id| *id == owner).unwrap_or(UserId(uuid::Uuid::nil()));
        let hash = secrets::hash(secret);
        let live = self.unlock_tokens.is_live(user_id, &hash, now().unix_timestamp()).await? && user_id == owner;
        Ok(live.then_some(hash))
    }

    /// Step one of TOTP: a fresh secret for the authenticator app, inactive until verified.
    pub async fn begin_totp(
        &self,
        principal: &Principal,
        password: String,
        origin: &Origin,
    ) -> Result<Enrollment, AuthError> {
        // The state is checked first, so a right password is never spent on a refusal.
        let stored = self.stored(principal).await?;
        if stored.second_factors.totp.is_some() {
            return Err(AuthError::TotpAlreadyEnabled);
        }
        let mut stored = self.check_password(stored, password, "password", origin).await?;
        let secret = totp::generate_secret();
        let enrollment = totp::enrollment(&secret, &self.config.product_name, &stored.user.account_label())
            .map_err(|error| AuthError::Internal(error.to_string()))?;
        stored.second_factors.totp_pending = Some(self.secret_box.seal(&secret, &stored.user.id.to_string()));
        self.users.save(&stored, vec![]).await?;
        self.succeeded(&stored.user).await;
        Ok(enrollment)
    }

    /// Step two of TOTP: a code from the app proves it holds the secret; TOTP becomes active
    /// and a fresh set of recovery codes is returned (the only time they are shown).
    pub async fn confirm_totp(
        &self,
        principal: &Principal,
        code: &str,
        origin: &Origin,
    ) -> Result<Vec<String>, AuthError> {
        let mut stored = self.stored(principal).await?;
        if stored.second_factors.totp.is_some() {
            return Err(AuthError::TotpAlreadyEnabled);
        }
        let Some(pending) = stored.second_factors.totp_pending.take() else {
            return Err(AuthError::NoTotpSetupPending);
        };
        self.guard(&Subject::Account(stored.user.id), origin).await?;
        let secret = self.open_totp_secret(&stored.user, &pending)?;
        let Some(step) = totp::matching_step(&secret, code, now().unix_timestamp() as u64) else {
            return Err(self.failed(origin, AuthError::Incorrect { field: "totp_code" }).await);
        };
        let codes: Vec<String> = (0..RECOVERY_CODES).map(|_| secrets::generate_recovery_code()).collect();
        let hashes: Vec<String> =
            codes.iter().map(|code| secrets::hash(&secrets::normalize_recovery_code(code))).collect();
        let writes = self.recovery_codes.replace_all(stored.user.id, &hashes).await?;
        let set_up_unverified = stored.user.email.is_some() && !stored.user.is_email_verified;
        stored.second_factors.totp = Some(TotpFactor { sealed_secret: pending, last_step: step, set_up_unverified });
        self.users.save(&stored, writes).await?;
        self.succeeded(&stored.user).await;
        self.notify(&stored, Notice::TotpEnabled).await;
        Ok(codes)
    }

    /// Turns TOTP off; needs the password and a current code.
    pub async fn disable_totp(
        &self,
        principal: &Principal,
        password: String,
        code: &str,
        origin: &Origin,
    ) -> Result<(), AuthError> {
        let stored = self.stored(principal).await?;
        if stored.second_factors.totp.is_none() {
            return Err(AuthError::TotpNotEnabled);
        }
        let mut stored = self.check_password(stored, password, "password", origin).await?;
        if !self.accept_totp(&stored, code).await? {
            return Err(self.failed(origin, AuthError::Incorrect { field: "totp_code" }).await);
        }
        // Re-read: accepting the code advanced the stored record.
        stored = self.stored(principal).await?;
        let writes = self.recovery_codes.replace_all(stored.user.id, &[]).await?;
        stored.second_factors.totp = None;
        stored.second_factors.totp_pending = None;
        self.users.save(&stored, writes).await?;
        self.succeeded(&stored.user).await;
        self.notify(&stored, Notice::TotpDisabled).await;
        Ok(())
    }

    /// Turns email codes at sign-in on or off for the caller; needs the password, and to turn
    /// them off also a fresh code (mailed, or from the authenticator app), as for TOTP: the
    /// password alone must not remove a factor.
    pub async fn set_email_codes(
        &self,
        principal: &Principal,
        enabled: bool,
        password: String,
        proof: Option<SecondFactor>,
        origin: &Origin,
    ) -> Result<(), AuthError> {
        let stored = self.check_password(self.stored(principal).await?, password, "password", origin).await?;
        if enabled && stored.user.email.is_none() {
            return Err(AuthError::NoAddressForCodes);
        }
        let changed = stored.second_factors.email_codes != enabled;
        if changed && !enabled {
            self.prove_second_factor(&stored, proof, origin).await?;
        }
        if changed {
            // Re-applied on a fresh read: accepting a TOTP code advanced the stored record.
            retry_on_conflict(|_| async move {
                let mut current = self.stored(principal).await?;
                current.second_factors.email_codes = enabled;
                settled(self.users.save(&current, vec![]).await)
            })
            .await?;
        }
        self.succeeded(&stored.user).await;
        if changed {
            let notice = if enabled { Notice::EmailCodesEnabled } else { Notice::EmailCodesDisabled };
            self.notify(&stored, notice).await;
        }
        Ok(())
    }

    /// A fresh code of a second factor the account has (TOTP, or a mailed code when it signs in
    /// with email codes), for a change that would weaken or move it: the password alone must
    /// not. An account with neither needs nothing.
    pub(super) async fn prove_second_factor(
        &self,
        stored: &StoredUser,
        proof: Option<SecondFactor>,
        origin: &Origin,
    ) -> Result<(), AuthError> {
        let totp = stored.second_factors.totp.is_some();
        let email = stored.second_factors.email_codes || self.config.require_email_codes;
        // Counted against the account like a password (an account with one was counted when
        // its password was checked).
        if proof.is_some() && stored.password_hash.is_none() {
            self.guard(&Subject::Account(stored.user.id), origin).await?;
        }
        let (proven, field) = match proof {
            Some(SecondFactor::Totp(code)) if totp => (self.accept_totp(stored, &code).await?, "totp_code"),
            Some(SecondFactor::EmailCode(code)) if email => {
                (self.accept_mailed_code(&stored.user, Purpose::EmailCode, &code).await?, "email_code")
            }
            _ if !totp && !email => return Ok(()),
            _ => return Err(AuthError::MissingField(if totp { "totp_code" } else { "email_code" })),
        };
        match proven {
            true => Ok(()),
            false => Err(self.failed(origin, AuthError::Incorrect { field }).await),
        }
    }

    /// At sign-in, after the password matched: demands and checks the account's second factor.
    /// Answers how many recovery codes remain when one was spent.
    pub(super) async fn check_second_factor(
        &self,
        stored: &StoredUser,
        factor: Option<SecondFactor>,
        origin: &Origin,
    ) -> Result<Option<usize>, AuthError> {
        let totp = stored.second_factors.totp.is_some();
        // An account without an address (made by a provider that shared none) cannot get codes.
        let email =
            (stored.second_factors.email_codes || self.config.require_email_codes) && stored.user.email.is_some();
        let mut methods = Vec::new();
        if totp {
            methods.extend(["totp_code", "recovery_code"]);
        }
        if email {
            methods.push("email_code");
        }
        if methods.is_empty() {
            return Ok(None);
        }
        let accepted = match factor {
            Some(SecondFactor::Totp(code)) if totp => self.accept_totp(stored, &code).await?,
            Some(SecondFactor::EmailCode(code)) if email => {
                self.accept_mailed_code(&stored.user, Purpose::EmailCode, &code).await?
            }
            Some(SecondFactor::RecoveryCode(code)) if totp => {
                let hash = secrets::hash(&secrets::normalize_recovery_code(&code));
                if self.recovery_codes.consume(stored.user.id, &hash).await? {
                    return Ok(Some(self.recovery_codes.count(stored.user.id).await?));
                }
                false
            }
            _ => return Err(AuthError::MfaRequired { methods }),
        };
        if !accepted {
            return Err(self.failed(origin, AuthError::InvalidSecondFactor).await);
        }
        Ok(None)
    }

    /// A TOTP code is accepted once: its time step must be later than the last one accepted,
    /// and recording the step is a compare-and-swap, so a code raced twice wins once.
    async fn accept_totp(&self, stored: &StoredUser, code: &str) -> Result<bool, AuthError> {
        retry_on_conflict(|attempt| async move {
            // The record as given, then as re-read after a lost compare-and-swap.
            let seen = match attempt {
                0 => stored.clone(),
                _ => self.users.find_by_id(stored.user.id).await?.ok_or(AuthError::InvalidAccessToken)?,
            };
            let Some(factor) = seen.second_factors.totp.clone() else { return Ok(Some(false)) };
            let secret = self.open_totp_secret(&seen.user, &factor.sealed_secret)?;
            let now = now().unix_timestamp() as u64;
            let Some(step) = totp::matching_step(&secret, code, now) else { return Ok(Some(false)) };
            // If this very step was accepted meanwhile, the re-read refuses it.
            if step <= factor.last_step {
                return Ok(Some(false));
            }
            // A secret sealed before a key rotation is sealed again with the active key, so the
            // retired key can eventually be dropped.
            let sealed_secret = match self.secret_box.is_current(&factor.sealed_secret) {
                true => factor.sealed_secret,
                false => self.secret_box.seal(&secret, &seen.user.id.to_string()),
            };
            let mut advanced = seen;
            advanced.second_factors.totp = Some(TotpFactor { sealed_secret, last_step: step, ..factor });
            settled(self.users.save(&advanced, vec![]).await.map(|()| true))
        })
        .await
    }

    /// A mailed code is good until it is used, expires, or has taken five wrong guesses (it
    /// then stays burned until it expires, so asking for a new one still waits out the minute).
    async fn accept_mailed_code(&self, user: &User, purpose: Purpose, code: &str) -> Result<bool, AuthError> {
        let presented = &self.code_mac.mac(code.trim(), &user.id.to_string());
        let accepted = retry_on_conflict(|_| async move {
            let Some(secret) = self.secrets.get(user.id, purpose).await? else { return Ok(Some(false)) };
            if secret.expires_at <= now().unix_timestamp() || secret.attempts >= EMAIL_CODE_MAX_WRONG_GUESSES {
                return Ok(Some(false));
            }
            if bool::from(presented.as_bytes().ct_eq(secret.hash.as_bytes())) {
                return Ok(Some(self.secrets.spend(user.id, purpose, &secret.hash).await?));
            }
            // Another guess counted first (a lost swap) is counted on top of.
            settled(self.secrets.record_wrong_guess(user.id, purpose, &secret).await.map(|()| false))
        })
        .await;
        match accepted {
            Err(AuthError::Aborted) => Ok(false),
            other => other,
        }
    }

    fn open_totp_secret(&self, user: &User, sealed: &str) -> Result<Vec<u8>, AuthError> {
        self.secret_box
            .open(sealed, &user.id.to_string())
            .ok_or_else(|| AuthError::Internal(format!("the TOTP secret of user {} does not open", user.id)))
    }

    /// The caller's stored record, with its password hash and second factors.
    pub(super) async fn stored(&self, principal: &Principal) -> Result<StoredUser, AuthError> {
        match self.users.find_by_id(principal.user.id).await? {
            Some(stored) if stored.user.is_active() => Ok(stored),
            _ => Err(AuthError::InvalidAccessToken),
        }
    }

    /// Re-authenticates a signed-in caller, whose record `stored` is, with their password
    /// (throttled like a login). Answers the record on success.
    pub(super) async fn check_password(
        &self,
        stored: StoredUser,
        password: String,
        field: &'static str,
        origin: &Origin,
    ) -> Result<StoredUser, AuthError> {
        self.guard(&Subject::Account(stored.user.id), origin).await?;
        if !self.hasher.verify(password, stored.password_hash.clone()).await {
            return Err(self.failed(origin, AuthError::Incorrect { field }).await);
        }
        Ok(stored)
    }

    /// Re-authenticates a signed-in caller before a change that adds a way into the account:
    /// with the password when the account has one; an account made by a provider has none, so
    /// its login must have begun in the last ten minutes (the user just signed in again).
    pub(super) async fn reauthenticate(
        &self,
        principal: &Principal,
        stored: StoredUser,
        password: Option<String>,
        origin: &Origin,
    ) -> Result<StoredUser, AuthError> {
        if stored.password_hash.is_some() {
            let password = password.ok_or(AuthError::MissingField("current_password"))?;
            return self.check_password(stored, password, "current_password", origin).await;
        }
        let session = self.sessions.get(stored.user.id, principal.session_id).await?;
        match session {
            Some(session) if now().unix_timestamp() - session.created_at <= RECENT_SIGN_IN_SECONDS => Ok(stored),
            _ => Err(AuthError::ReauthenticationRequired),
        }
    }

    /// Clears the account's failure count after a guarded operation succeeded.
    pub(super) async fn succeeded(&self, user: &User) {
        self.clear_failures(&Subject::Account(user.id)).await
    }
}
