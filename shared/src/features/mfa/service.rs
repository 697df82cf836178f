use std::sync::Arc;

use crate::crypto::sealing::{KeyedMac, SecretBox};
use crate::crypto::secrets;
use crate::crypto::totp::{self, Enrollment};
use crate::domain::{LoginIdentifier, User};
use crate::kernel::throttle::Subject;
use crate::kernel::{
    Failure, Guard, Kernel, Links, Notices, Origin, Principal, ProofError, Proofs, SecondFactor, caller_record, now,
    retry_on_conflict, settled,
};
use crate::mail::templates::{Mail, Notice};
use crate::repo::{Purpose, RecoveryCodeRepo, RepoError, TotpFactor, UserRepo};

const EMAIL_CODE_DIGITS: u32 = 6;
const EMAIL_CODE_VALID_MINUTES: i64 = 10;
const RECOVERY_CODES: usize = 10;

#[derive(Debug, thiserror::Error)]
pub enum SecondFactorError {
    #[error("TOTP is already enabled; disable it first")]
    TotpAlreadyEnabled,
    /// Verifying a TOTP setup that was never begun.
    #[error("no TOTP setup is pending")]
    NoTotpSetupPending,
    #[error("TOTP is not enabled")]
    TotpNotEnabled,
    #[error("the account has no email address to send codes to")]
    NoAddressForCodes,
    #[error(transparent)]
    Proof(#[from] ProofError),
    #[error(transparent)]
    Failure(#[from] Failure),
}

impl From<RepoError> for SecondFactorError {
    fn from(error: RepoError) -> Self {
        Self::Failure(error.into())
    }
}

pub struct SecondFactorService {
    users: UserRepo,
    recovery_codes: RecoveryCodeRepo,
    proofs: Arc<Proofs>,
    guard: Arc<Guard>,
    notices: Arc<Notices>,
    links: Arc<Links>,
    secret_box: Arc<SecretBox>,
    code_mac: Arc<KeyedMac>,
    product_name: String,
    require_email_codes: bool,
}

impl SecondFactorService {
    pub fn new(kernel: &Kernel) -> Self {
        Self {
            users: kernel.users(),
            recovery_codes: RecoveryCodeRepo::new(Arc::clone(&kernel.store)),
            proofs: Arc::clone(&kernel.proofs),
            guard: Arc::clone(&kernel.guard),
            notices: Arc::clone(&kernel.notices),
            links: Arc::clone(&kernel.links),
            secret_box: Arc::clone(&kernel.secret_box),
            code_mac: Arc::clone(&kernel.code_mac),
            product_name: kernel.config.product_name.clone(),
            require_email_codes: kernel.config.require_email_codes,
        }
    }

    /// Sends a sign-in code to the account's address, if the account signs in with email
    /// codes. Answers the same, in about the same time, whether or not the account exists.
    pub async fn send_email_code(&self, identifier: LoginIdentifier) -> Result<(), SecondFactorError> {
        self.guard
            .uniformly(async {
                let Some(stored) = self.users.find_by_login(&identifier).await? else { return Ok(()) };
                let uses_codes = stored.second_factors.email_codes || self.require_email_codes;
                if uses_codes {
                    self.mail_code(&stored.user).await?;
                }
                Ok(())
            })
            .await
    }

    /// Mails a fresh six-digit sign-in code to an active account with an address (at most one
    /// a minute). A mail failure is logged: answering differently would tell the caller that
    /// the account exists.
    async fn mail_code(&self, user: &User) -> Result<(), Failure> {
        let Some(address) = user.email.as_ref().filter(|_| user.is_active()) else { return Ok(()) };
        let code = secrets::generate_digits(EMAIL_CODE_DIGITS);
        let hash = self.code_mac.mac(&code, &user.id.to_string());
        let purpose = Purpose::EmailCode;
        if !self.links.issue_secret(user, address, purpose, hash, EMAIL_CODE_VALID_MINUTES * 60).await? {
            return Ok(());
        }
        let mail = Mail::EmailCode { code: &code, valid_minutes: EMAIL_CODE_VALID_MINUTES };
        if let Err(error) = self.notices.send(address, mail).await {
            tracing::error!(user_id = %user.id, %error, "the email code could not be sent");
        }
        Ok(())
    }

    /// Step one of TOTP: a fresh secret for the authenticator app, inactive until verified.
    pub async fn begin_totp(
        &self,
        principal: &Principal,
        password: String,
        origin: &Origin,
    ) -> Result<Enrollment, SecondFactorError> {
        // The state is checked first, so a right password is never spent on a refusal.
        let stored = caller_record(&self.users, principal).await?;
        if stored.second_factors.totp.is_some() {
            return Err(SecondFactorError::TotpAlreadyEnabled);
        }
        let mut stored = self.proofs.check_password(stored, password, "password", origin).await?;
        let secret = totp::generate_secret();
        let enrollment = totp::enrollment(&secret, &self.product_name, &stored.user.account_label())
            .map_err(|error| Failure::Internal(error.to_string()))?;
        stored.second_factors.totp_pending = Some(self.secret_box.seal(&secret, &stored.user.id.to_string()));
        self.users.save(&stored, vec![]).await?;
        self.guard.succeeded(stored.user.id).await;
        Ok(enrollment)
    }

    /// Step two of TOTP: a code from the app proves it holds the secret; TOTP becomes active
    /// and a fresh set of recovery codes is returned (the only time they are shown).
    pub async fn confirm_totp(
        &self,
        principal: &Principal,
        code: &str,
        origin: &Origin,
    ) -> Result<Vec<String>, SecondFactorError> {
        let mut stored = caller_record(&self.users, principal).await?;
        if stored.second_factors.totp.is_some() {
            return Err(SecondFactorError::TotpAlreadyEnabled);
        }
        let Some(pending) = stored.second_factors.totp_pending.take() else {
            return Err(SecondFactorError::NoTotpSetupPending);
        };
        self.guard.reserve(&Subject::Account(stored.user.id), origin).await?;
        let secret = self.proofs.open_totp_secret(&stored.user, &pending)?;
        let Some(step) = totp::matching_step(&secret, code, now().unix_timestamp() as u64) else {
            return Err(self.guard.failed(origin, ProofError::Incorrect { field: "totp_code" }.into()).await);
        };
        let codes: Vec<String> = (0..RECOVERY_CODES).map(|_| secrets::generate_recovery_code()).collect();
        let hashes: Vec<String> =
            codes.iter().map(|code| secrets::hash(&secrets::normalize_recovery_code(code))).collect();
        let writes = self.recovery_codes.replace_all(stored.user.id, &hashes).await?;
        let set_up_unverified = stored.user.email.is_some() && !stored.user.is_email_verified;
        stored.second_factors.totp = Some(TotpFactor { sealed_secret: pending, last_step: step, set_up_unverified });
        self.users.save(&stored, writes).await?;
        self.guard.succeeded(stored.user.id).await;
        self.notices.notify(&stored, Notice::TotpEnabled).await;
        Ok(codes)
    }

    /// Turns TOTP off; needs the password and a current code.
    pub async fn disable_totp(
        &self,
        principal: &Principal,
        password: String,
        code: &str,
        origin: &Origin,
    ) -> Result<(), SecondFactorError> {
        let stored = caller_record(&self.users, principal).await?;
        if stored.second_factors.totp.is_none() {
            return Err(SecondFactorError::TotpNotEnabled);
        }
        let mut stored = self.proofs.check_password(stored, password, "password", origin).await?;
        if !self.proofs.accept_totp(&stored, code).await? {
            return Err(self.guard.failed(origin, ProofError::Incorrect { field: "totp_code" }.into()).await);
        }
        // Re-read: accepting the code advanced the stored record.
        stored = caller_record(&self.users, principal).await?;
        let writes = self.recovery_codes.replace_all(stored.user.id, &[]).await?;
        stored.second_factors.totp = None;
        stored.second_factors.totp_pending = None;
        self.users.save(&stored, writes).await?;
        self.guard.succeeded(stored.user.id).await;
        self.notices.notify(&stored, Notice::TotpDisabled).await;
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
    ) -> Result<(), SecondFactorError> {
        let stored = caller_record(&self.users, principal).await?;
        let stored = self.proofs.check_password(stored, password, "password", origin).await?;
        if enabled && stored.user.email.is_none() {
            return Err(SecondFactorError::NoAddressForCodes);
        }
        let changed = stored.second_factors.email_codes != enabled;
        if changed && !enabled {
            self.proofs.prove_second_factor(&stored, proof, origin).await?;
        }
        if changed {
            // Re-applied on a fresh read: accepting a TOTP code advanced the stored record.
            retry_on_conflict(|_| async move {
                let mut current = caller_record(&self.users, principal).await?;
                current.second_factors.email_codes = enabled;
                settled::<_, SecondFactorError>(self.users.save(&current, vec![]).await)
            })
            .await?;
        }
        self.guard.succeeded(stored.user.id).await;
        if changed {
            let notice = if enabled { Notice::EmailCodesEnabled } else { Notice::EmailCodesDisabled };
            self.notices.notify(&stored, notice).await;
        }
        Ok(())
    }
}
