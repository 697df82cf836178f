use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::crypto::passwords::PasswordHasher;
use crate::domain::{Email, Extra, Password, Pattern, Phone, PublicProfile, Role, User, UserId, UserStatus, Username};
use crate::features::avatars::discard;
use crate::features::friends::Friendships;
use crate::kernel::throttle::Subject;
use crate::kernel::{
    Failure, Guard, Kernel, Links, Notices, Origin, Principal, Profiles, ProofError, Proofs, SecondFactor,
    caller_record, now, retry_on_conflict, settled, taken_or_failure,
};
use crate::mail::templates::Notice;
use crate::objects::ObjectStore;
use crate::repo::{DirectoryEntry, RepoError, SessionRepo, StoredUser, UniqueField, UserRepo};
use crate::store::Write;

#[derive(Debug, thiserror::Error)]
pub enum DirectoryError {
    #[error("no such user")]
    NoSuchUser,
    /// Something only an admin may do.
    #[error("only admins may {0}")]
    AdminsOnly(AdminAction),
    #[error("the last admin cannot be demoted, deleted or withdrawn")]
    LastAdmin,
    #[error("this {0} is already registered")]
    AlreadyExists(UniqueField),
    /// A directory filter that took longer to match than a listing may take.
    #[error("{field}: is too costly to search with; use a simpler pattern")]
    PatternTooCostly { field: &'static str },
    #[error(transparent)]
    Proof(#[from] ProofError),
    #[error(transparent)]
    Failure(#[from] Failure),
}

impl From<RepoError> for DirectoryError {
    fn from(error: RepoError) -> Self {
        taken_or_failure(error, Self::AlreadyExists)
    }
}

/// What only admins may do (for `DirectoryError::AdminsOnly`).
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

/// How a field of a partial update changes.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum Patch<T> {
    #[default]
    Keep,
    Clear,
    Set(T),
}

/// Absent keeps the value (with `#[serde(default)]`), `null` clears it, a value sets it.
impl<'de, T: serde::Deserialize<'de>> serde::Deserialize<'de> for Patch<T> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Ok(Option::<T>::deserialize(deserializer)?.map_or(Self::Clear, Self::Set))
    }
}

impl<T> Patch<T> {
    fn apply(self, current: Option<T>) -> Option<T> {
        match self {
            Self::Keep => current,
            Self::Clear => None,
            Self::Set(value) => Some(value),
        }
    }
}

/// `PATCH /v1/users/me`: what the owner may change.
#[derive(Debug, Default, Clone)]
pub struct ProfileChanges {
    pub username: Patch<Username>,
    pub email: Option<Email>,
    pub phone: Patch<Phone>,
    pub extra: Option<Extra>,
}

/// `PATCH /v1/users/{id}`: what an admin may change.
#[derive(Debug, Default)]
pub struct AdminChanges {
    pub role: Option<Role>,
    /// `NORMAL` or `DELETED`; withdrawal is the owner's alone.
    pub status: Option<UserStatus>,
}

pub struct UserQuery {
    pub name: Option<Pattern>,
    pub email: Option<Pattern>,
    /// 1-based.
    pub page: usize,
    pub size: usize,
}

/// One listed account: the full record for admins, the public profile for everyone else.
#[derive(Debug)]
pub enum Listed {
    Full(User),
    Public(PublicProfile),
}

pub struct UserPage {
    pub users: Vec<Listed>,
    pub total_count: usize,
}

/// The directory as last read, shared by the requests of one process for a few seconds: at
/// 100,000 accounts a full read is ~15 MB, so it is read at most once per `ttl` per container.
struct DirectoryCache {
    ttl: Duration,
    scans: tokio::sync::Semaphore,
    cached: tokio::sync::Mutex<Option<(Instant, Arc<Vec<DirectoryEntry>>)>>,
}

impl DirectoryCache {
    fn new(ttl: Duration) -> Self {
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        Self { ttl, scans: tokio::sync::Semaphore::new(cores), cached: tokio::sync::Mutex::new(None) }
    }

    async fn entries(&self, users: &UserRepo) -> Result<Arc<Vec<DirectoryEntry>>, RepoError> {
        // Held across the read, so a burst of requests on a cold cache reads the directory once.
        let mut cached = self.cached.lock().await;
        if let Some((read_at, entries)) = cached.as_ref()
            && read_at.elapsed() < self.ttl
        {
            return Ok(Arc::clone(entries));
        }
        let entries = Arc::new(users.directory().await?);
        *cached = Some((Instant::now(), Arc::clone(&entries)));
        Ok(entries)
    }
}

/// The most time one listing may spend matching its filters against the directory.
const FILTER_BUDGET: Duration = Duration::from_millis(500);

/// Counted by the admin count: an active account with the admin role.
fn counts_as_admin(user: &User) -> bool {
    user.is_admin() && user.is_active()
}

/// A role or status change, keeping the admin count in step (compare-and-swap), so that
/// concurrent demotions cannot remove the last admin. Retries when the record or the count
/// moved meanwhile.
async fn change_account(
    users: &UserRepo,
    id: UserId,
    change: impl Fn(&mut StoredUser),
    checks: Vec<Write>,
) -> Result<(StoredUser, StoredUser), DirectoryError> {
    let (change, checks) = (&change, &checks);
    retry_on_conflict(|_| async move {
        let before = match users.find_by_id(id).await? {
            // A withdrawn account is gone for good: its values may belong to others by now.
            Some(stored) if stored.user.status != UserStatus::Withdrawn => stored,
            _ => return Err(DirectoryError::NoSuchUser),
        };
        let mut after = before.clone();
        change(&mut after);
        let (was, will) = (counts_as_admin(&before.user), counts_as_admin(&after.user));
        let mut also = checks.clone();
        if was != will {
            let seen = users.admin_count().await?;
            if was && seen <= 1 {
                return Err(DirectoryError::LastAdmin);
            }
            also.push(UserRepo::admin_count_write(seen, if will { seen + 1 } else { seen - 1 }));
        }
        settled(users.save_profile(&before.user, &after, also).await.map(|()| (before, after)))
    })
    .await
}

pub struct DirectoryService {
    users: UserRepo,
    sessions: SessionRepo,
    directory: DirectoryCache,
    profiles: Arc<Profiles>,
    friendships: Friendships,
    objects: Option<Arc<dyn ObjectStore>>,
    proofs: Arc<Proofs>,
    guard: Arc<Guard>,
    notices: Arc<Notices>,
    links: Arc<Links>,
}

impl DirectoryService {
    pub fn new(kernel: &Kernel) -> Self {
        Self {
            users: kernel.users(),
            sessions: kernel.sessions.repo().clone(),
            directory: DirectoryCache::new(Duration::from_secs(kernel.config.directory_cache_seconds)),
            profiles: Arc::clone(&kernel.profiles),
            friendships: Friendships::new(kernel),
            objects: kernel.objects.clone(),
            proofs: Arc::clone(&kernel.proofs),
            guard: Arc::clone(&kernel.guard),
            notices: Arc::clone(&kernel.notices),
            links: Arc::clone(&kernel.links),
        }
    }

    /// `GET /v1/users/{id}`: the caller's own record, or anyone's for an admin.
    pub async fn user(&self, principal: &Principal, id: UserId) -> Result<User, DirectoryError> {
        if id == principal.user.id {
            return Ok(principal.user.clone());
        }
        if !principal.user.is_admin() {
            return Err(DirectoryError::AdminsOnly(AdminAction::ReadOthers));
        }
        match self.users.find_by_id(id).await? {
            Some(stored) if stored.user.is_active() => Ok(stored.user),
            _ => Err(DirectoryError::NoSuchUser),
        }
    }

    /// `PATCH /v1/users/me`. Unique values are swapped atomically (a taken one is `409` and
    /// changes nothing). A new email needs the current password (ASVS 5.0 7.5.1), and a fresh
    /// code of the account's second factor if it has one, and is only
    /// *pending*: the account keeps its address (and that address its mail) until the link
    /// sent to the new one is used by the signed-in owner, so nobody can hold an address they
    /// cannot read.
    pub async fn update_profile(
        &self,
        principal: &Principal,
        changes: ProfileChanges,
        current_password: Option<String>,
        proof: Option<SecondFactor>,
        origin: &Origin,
    ) -> Result<User, DirectoryError> {
        let new_email = changes.email.clone().filter(|email| Some(email) != principal.user.email.as_ref());
        // A phone number is private: every try is counted before it is made, so a prober, or a
        // burst of them, cannot tell a free number (`200`) from a taken one at speed.
        if matches!(&changes.phone, Patch::Set(phone) if Some(phone) != principal.user.phone.as_ref()) {
            self.guard.reserve(&Subject::PhoneTries(principal.user.id), origin).await?;
        }
        if new_email.is_some() {
            let stored = self
                .proofs
                .reauthenticate(principal, caller_record(&self.users, principal).await?, current_password, origin)
                .await?;
            // Emailed codes would follow the address: a stolen session and password must not move
            // the second factor to an inbox of their own.
            self.proofs.prove_second_factor(&stored, proof, origin).await?;
        }
        // Re-applied on a fresh read when something else changed the account meanwhile (a
        // TOTP sign-in, a verification): only a taken value ends it.
        let (changes, email) = (&changes, &new_email);
        let (before, after) = retry_on_conflict(|_| async move {
            let before = caller_record(&self.users, principal).await?;
            let mut after = before.clone();
            let user = &mut after.user;
            user.username = changes.username.clone().apply(user.username.take());
            user.phone = changes.phone.clone().apply(user.phone.take());
            if let Some(extra) = &changes.extra {
                user.extra = extra.clone().into_inner();
            }
            if email.is_some() {
                user.pending_email = email.clone();
            } else if changes.email.is_some() {
                // The account's own address again: the pending change, if any, is withdrawn.
                user.pending_email = None;
            }
            match self.users.save_profile(&before.user, &after, vec![]).await {
                Err(RepoError::Taken(field)) => Err(self.taken(field, origin).await),
                saved => settled(saved.map(|()| (before, after))),
            }
        })
        .await?;
        if let Some(address) = &new_email {
            self.guard.succeeded(after.user.id).await;
            self.notices.notify(&before, Notice::EmailChangeRequested).await;
            if let Err(error) = self.links.send_email_change_link(&after.user, address).await {
                tracing::error!(user_id = %after.user.id, %error, "the email change link could not be sent");
            }
        }
        Ok(after.user)
    }

    /// A unique value that belongs to another account. Phone numbers are private, so a `409`
    /// for one is counted like a failed login (against the caller and the client address):
    /// nobody can try numbers at speed to find whose they are.
    async fn taken(&self, field: UniqueField, origin: &Origin) -> DirectoryError {
        match field {
            // The caller's attempt was counted before it was made; the address's now.
            UniqueField::Phone => self.guard.failed(origin, DirectoryError::AlreadyExists(field)).await,
            _ => DirectoryError::AlreadyExists(field),
        }
    }

    /// `DELETE /v1/users/me`: the account is withdrawn, its sessions end, and its email,
    /// username and phone are free for new accounts.
    pub async fn withdraw(
        &self,
        principal: &Principal,
        password: String,
        origin: &Origin,
    ) -> Result<(), DirectoryError> {
        self.proofs.check_password(caller_record(&self.users, principal).await?, password, "password", origin).await?;
        let withdraw = |stored: &mut StoredUser| stored.user.status = UserStatus::Withdrawn;
        let (before, _) = change_account(&self.users, principal.user.id, withdraw, vec![]).await?;
        // The account is gone from here on (it is no longer active): what follows is cleanup.
        if let Err(error) = self.sessions.delete_all(principal.user.id, None).await {
            tracing::warn!(user_id = %principal.user.id, %error, "sessions of a withdrawn account not deleted");
        }
        self.friendships.forget_all(principal.user.id).await;
        if let (Some(key), Some(objects)) = (&before.avatar_key, &self.objects) {
            discard(objects.as_ref(), key).await;
        }
        self.guard.succeeded(principal.user.id).await;
        tracing::info!(user_id = %principal.user.id, "account withdrawn");
        Ok(())
    }

    /// `PATCH /v1/users/{id}` (admins): role and status. Takes effect at once on every
    /// protected route (they read the stored account), and in tokens at the next refresh.
    pub async fn administer(
        &self,
        principal: &Principal,
        id: UserId,
        changes: AdminChanges,
    ) -> Result<User, DirectoryError> {
        if !principal.user.is_admin() {
            return Err(DirectoryError::AdminsOnly(AdminAction::ChangeAccounts));
        }
        // The caller must still be an active admin when the change commits, not only when the
        // request began (an admin demoted meanwhile loses the race).
        let checks = match id == principal.user.id {
            true => vec![],
            false => vec![UserRepo::admin_check(principal.user.id)],
        };
        let change = |stored: &mut StoredUser| {
            if let Some(role) = changes.role {
                stored.user.role = role;
            }
            if let Some(status) = changes.status {
                stored.user.status = status;
            }
        };
        let (before, after) = match change_account(&self.users, id, change, checks).await {
            Err(DirectoryError::Failure(Failure::Aborted))
                if !caller_record(&self.users, principal).await?.user.is_admin() =>
            {
                return Err(DirectoryError::AdminsOnly(AdminAction::ChangeAccounts));
            }
            other => other?,
        };
        if before.user.is_active() && !after.user.is_active() {
            self.sessions.delete_all(id, None).await?;
        }
        tracing::info!(admin = %principal.user.id, user_id = %id, role = ?after.user.role, status = ?after.user.status, "account changed by an admin");
        Ok(after.user)
    }

    /// `GET /v1/users`: a page of the directory, filtered by regular expressions, in
    /// creation order. Admins see full records (and may filter by email); others see the
    /// public profiles of active accounts.
    pub async fn list_users(&self, principal: &Principal, query: UserQuery) -> Result<UserPage, DirectoryError> {
        let admin = principal.user.is_admin();
        if query.email.is_some() && !admin {
            return Err(DirectoryError::AdminsOnly(AdminAction::FilterByEmail));
        }
        let entries = self.directory.entries(&self.users).await?;
        // At most one scan per core at a time: more would only queue on the blocking pool.
        let _scan = self.directory.scans.acquire().await.map_err(|error| Failure::Internal(error.to_string()))?;
        // Matching is CPU work that grows with the directory: it runs on a blocking thread,
        // within a time budget, so no pattern can hold an async worker for long.
        let (name, email) = (query.name.clone(), query.email.clone());
        let matching = tokio::task::spawn_blocking(move || {
            let started = Instant::now();
            let mut matching = Vec::new();
            for (scanned, entry) in entries.iter().enumerate() {
                if scanned % 64 == 63 && started.elapsed() > FILTER_BUDGET {
                    return None;
                }
                let visible = admin || entry.status == UserStatus::Normal;
                let username = entry.username.as_ref().map_or("", |username| username.as_str());
                let address = entry.email.as_ref().map_or("", Email::as_str);
                if visible
                    && name.as_ref().is_none_or(|pattern| pattern.is_match(username))
                    && email.as_ref().is_none_or(|pattern| pattern.is_match(address))
                {
                    matching.push(entry.id);
                }
            }
            Some(matching)
        })
        .await
        .map_err(|error| Failure::Internal(error.to_string()))?
        .ok_or(DirectoryError::PatternTooCostly {
            field: if query.name.is_some() { "filter_name" } else { "filter_email" },
        })?;
        let total_count = matching.len();
        let page = matching.into_iter().skip((query.page - 1) * query.size).take(query.size);
        // The directory may be seconds old; the records of the page are read now.
        let records = futures::future::join_all(page.map(|id| self.users.find_by_id(id))).await;
        let mut users = Vec::new();
        for stored in records {
            match stored? {
                Some(stored) if admin && stored.user.status != UserStatus::Withdrawn => users.push(stored),
                Some(stored) if stored.user.is_active() => users.push(stored),
                _ => {}
            }
        }
        let users = match admin {
            true => users.into_iter().map(|stored| Listed::Full(stored.user)).collect(),
            false => self.profiles.of(users).await?.into_iter().map(Listed::Public).collect(),
        };
        Ok(UserPage { users, total_count })
    }
}

/// Creating and promoting admins from the command line: no signed-in caller, no keys or mail,
/// only the store (`latchkey-local admin ...`).
pub struct AdminBootstrap {
    users: UserRepo,
    hasher: PasswordHasher,
}

impl AdminBootstrap {
    pub fn new(
        store: Arc<dyn crate::store::ItemStore>,
        config: &crate::config::Config,
    ) -> Result<Self, DirectoryError> {
        let hasher = PasswordHasher::new(config.argon2).map_err(Failure::from)?;
        Ok(Self { users: UserRepo::new(store), hasher })
    }

    /// A new account with the admin role, counted in the same transaction that creates it.
    pub async fn create(&self, email: Email, password: Password) -> Result<User, DirectoryError> {
        let user =
            User { role: Role::Admin, is_email_verified: true, ..User::new_email_user(email, None, None, now()) };
        let password_hash = self.hasher.hash(&password).await.map_err(Failure::from)?;
        let (user, password_hash) = (&user, &password_hash);
        retry_on_conflict(|_| async move {
            let seen = self.users.admin_count().await?;
            let count = UserRepo::admin_count_write(seen, seen + 1);
            settled::<_, DirectoryError>(self.users.create(user, Some(password_hash.clone()), vec![count]).await)
        })
        .await?;
        Ok(user.clone())
    }

    /// Gives an existing account the admin role.
    pub async fn grant(&self, email: Email) -> Result<User, DirectoryError> {
        let identifier = crate::domain::LoginIdentifier::Email(email);
        let stored = self.users.find_by_login(&identifier).await?.ok_or(DirectoryError::NoSuchUser)?;
        let promote = |stored: &mut StoredUser| stored.user.role = Role::Admin;
        let (_, after) = change_account(&self.users, stored.user.id, promote, vec![]).await?;
        Ok(after.user)
    }
}
