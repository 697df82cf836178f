use std::sync::Arc;

use crate::domain::{LoginIdentifier, PublicProfile, UserId, UserStatus, Username};
use crate::kernel::{Failure, Kernel, Principal, Profiles, now, retry_on_conflict};
use crate::repo::{FriendRepo, FriendshipChange, RepoError, StoredUser, UserRepo};

#[derive(Debug, thiserror::Error)]
pub enum FriendError {
    #[error("no such user")]
    NoSuchUser,
    #[error("you cannot befriend yourself")]
    FriendWithYourself,
    #[error("you are friends already")]
    AlreadyFriends,
    #[error("you are not friends")]
    NotFriends,
    #[error("one of you has reached the friend limit")]
    FriendLimitReached,
    #[error(transparent)]
    Failure(#[from] Failure),
}

impl From<RepoError> for FriendError {
    fn from(error: RepoError) -> Self {
        Self::Failure(error.into())
    }
}

/// Ending friendships, for this slice and for the withdrawal of an account.
pub struct Friendships {
    friends: FriendRepo,
}

impl Friendships {
    pub fn new(kernel: &Kernel) -> Self {
        Self { friends: FriendRepo::new(Arc::clone(&kernel.store)) }
    }

    /// Ends the friendship for both.
    pub async fn end(&self, me: UserId, friend: UserId) -> Result<(), FriendError> {
        retry_on_conflict(|_| async move {
            let seen = (self.friends.count(me).await?, self.friends.count(friend).await?);
            match self.friends.remove(me, friend, seen).await? {
                FriendshipChange::Done => Ok(Some(())),
                FriendshipChange::Unchanged => Err(FriendError::NotFriends),
                FriendshipChange::Raced | FriendshipChange::Inactive => Ok(None),
            }
        })
        .await
    }

    /// Ends every friendship of a withdrawn account, so it leaves its friends' lists and
    /// counts. The account is already gone, so failures are logged, not returned.
    pub async fn forget_all(&self, user: UserId) {
        let friends = match self.friends.list(user).await {
            Ok(friends) => friends,
            Err(error) => {
                return tracing::warn!(user_id = %user, %error, "friendships of a withdrawn account not listed");
            }
        };
        for friend in friends {
            if let Err(error) = self.end(user, friend).await {
                tracing::warn!(user_id = %user, %error, "a friendship of a withdrawn account was not ended");
            }
        }
    }
}

pub struct FriendService {
    users: UserRepo,
    friends: FriendRepo,
    friendships: Friendships,
    profiles: Arc<Profiles>,
    max_friends: u64,
}

impl FriendService {
    pub fn new(kernel: &Kernel) -> Self {
        Self {
            users: kernel.users(),
            friends: FriendRepo::new(Arc::clone(&kernel.store)),
            friendships: Friendships::new(kernel),
            profiles: Arc::clone(&kernel.profiles),
            max_friends: kernel.config.max_friends,
        }
    }

    /// `PUT /v1/users/me/friends/{username}`: the two become friends of each other.
    pub async fn add_friend(&self, principal: &Principal, username: Username) -> Result<PublicProfile, FriendError> {
        let friend = self.active_by_username(username).await?;
        let me = principal.user.id;
        if friend.user.id == me {
            return Err(FriendError::FriendWithYourself);
        }
        let other = friend.user.id;
        retry_on_conflict(|_| async move {
            let seen = (self.friends.count(me).await?, self.friends.count(other).await?);
            if seen.0 >= self.max_friends || seen.1 >= self.max_friends {
                return Err(FriendError::FriendLimitReached);
            }
            // Both accounts must still be active when the friendship is written.
            let checks = vec![UserRepo::active_check(me), UserRepo::active_check(other)];
            match self.friends.add(me, other, seen, now().unix_timestamp(), checks).await? {
                FriendshipChange::Done => Ok(Some(())),
                FriendshipChange::Unchanged => Err(FriendError::AlreadyFriends),
                FriendshipChange::Raced => Ok(None),
                FriendshipChange::Inactive => Err(FriendError::NoSuchUser),
            }
        })
        .await?;
        Ok(self.profiles.of(vec![friend]).await?.remove(0))
    }

    /// `DELETE /v1/users/me/friends/{username}`: ends the friendship for both. A friend whose
    /// account an admin deleted can still be removed (it still counts towards the limit).
    pub async fn remove_friend(&self, principal: &Principal, username: Username) -> Result<(), FriendError> {
        let friend = match self.users.find_by_login(&LoginIdentifier::Username(username)).await? {
            Some(stored) => stored.user,
            None => return Err(FriendError::NoSuchUser),
        };
        if friend.id == principal.user.id {
            return Err(FriendError::NotFriends);
        }
        self.friendships.end(principal.user.id, friend.id).await
    }

    /// `GET /v1/users/me/friends`: public profiles of the caller's friends whose accounts are
    /// active (a deleted or withdrawn friend is not listed).
    pub async fn list_friends(&self, principal: &Principal) -> Result<Vec<PublicProfile>, FriendError> {
        let ids = self.friends.list(principal.user.id).await?;
        let records = futures::future::join_all(ids.iter().map(|id| self.users.find_by_id(*id))).await;
        let mut friends = Vec::new();
        for (id, stored) in ids.into_iter().zip(records) {
            match stored? {
                Some(stored) if stored.user.is_active() => friends.push(stored),
                // A friendship a withdrawal left behind (its cleanup failed): end it now.
                Some(stored) if stored.user.status == UserStatus::Withdrawn => {
                    if let Err(error) = self.friendships.end(principal.user.id, id).await {
                        tracing::warn!(%error, "a friendship with a withdrawn account was not ended");
                    }
                }
                _ => {}
            }
        }
        Ok(self.profiles.of(friends).await?)
    }

    async fn active_by_username(&self, username: Username) -> Result<StoredUser, FriendError> {
        match self.users.find_by_login(&LoginIdentifier::Username(username)).await? {
            Some(stored) if stored.user.is_active() => Ok(stored),
            _ => Err(FriendError::NoSuchUser),
        }
    }
}
