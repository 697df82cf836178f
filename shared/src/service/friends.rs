//! Friends: mutual, made by one call, capped per account.

use super::auth::{AuthError, AuthService, Principal, now, retry_on_conflict};
use crate::domain::{LoginIdentifier, PublicProfile, UserId, UserStatus, Username};
use crate::repo::{FriendshipChange, StoredUser, UserRepo};

impl AuthService {
    /// `PUT /v1/users/me/friends/{username}`: the two become friends of each other.
    pub async fn add_friend(&self, principal: &Principal, username: Username) -> Result<PublicProfile, AuthError> {
        let friend = self.active_by_username(username).await?;
        let me = principal.user.id;
        if friend.user.id == me {
            return Err(AuthError::FriendWithYourself);
        }
        let other = friend.user.id;
        retry_on_conflict(|_| async move {
            let seen = (self.friends.count(me).await?, self.friends.count(other).await?);
            if seen.0 >= self.config.max_friends || seen.1 >= self.config.max_friends {
                return Err(AuthError::FriendLimitReached);
            }
            // Both accounts must still be active when the friendship is written.
            let checks = vec![UserRepo::active_check(me), UserRepo::active_check(other)];
            match self.friends.add(me, other, seen, now().unix_timestamp(), checks).await? {
                FriendshipChange::Done => Ok(Some(())),
                FriendshipChange::Unchanged => Err(AuthError::AlreadyFriends),
                FriendshipChange::Raced => Ok(None),
                FriendshipChange::Inactive => Err(AuthError::NoSuchUser),
            }
        })
        .await?;
        Ok(self.public_profiles(vec![friend]).await?.remove(0))
    }

    /// `DELETE /v1/users/me/friends/{username}`: ends the friendship for both. A friend whose
    /// account an admin deleted can still be removed (it still counts towards the limit).
    pub async fn remove_friend(&self, principal: &Principal, username: Username) -> Result<(), AuthError> {
        let friend = match self.users.find_by_login(&LoginIdentifier::Username(username)).await? {
            Some(stored) => stored.user,
            None => return Err(AuthError::NoSuchUser),
        };
        if friend.id == principal.user.id {
            return Err(AuthError::NotFriends);
        }
        self.unfriend(principal.user.id, friend.id).await
    }

    async fn unfriend(&self, me: UserId, friend: UserId) -> Result<(), AuthError> {
        retry_on_conflict(|_| async move {
            let seen = (self.friends.count(me).await?, self.friends.count(friend).await?);
            match self.friends.remove(me, friend, seen).await? {
                FriendshipChange::Done => Ok(Some(())),
                FriendshipChange::Unchanged => Err(AuthError::NotFriends),
                FriendshipChange::Raced | FriendshipChange::Inactive => Ok(None),
            }
        })
        .await
    }

    /// Ends every friendship of a withdrawn account, so it leaves its friends' lists and
    /// counts. The account is already gone, so failures are logged, not returned.
    pub(super) async fn forget_friends(&self, user: UserId) {
        let friends = match self.friends.list(user).await {
            Ok(friends) => friends,
            Err(error) => {
                return tracing::warn!(user_id = %user, %error, "friendships of a withdrawn account not listed");
            }
        };
        for friend in friends {
            if let Err(error) = self.unfriend(user, friend).await {
                tracing::warn!(user_id = %user, %error, "a friendship of a withdrawn account was not ended");
            }
        }
    }

    /// `GET /v1/users/me/friends`: public profiles of the caller's friends whose accounts are
    /// active (a deleted or withdrawn friend is not listed).
    pub async fn list_friends(&self, principal: &Principal) -> Result<Vec<PublicProfile>, AuthError> {
        let ids = self.friends.list(principal.user.id).await?;
        let records = futures::future::join_all(ids.iter().map(|id| self.users.find_by_id(*id))).await;
        let mut friends = Vec::new();
        for (id, stored) in ids.into_iter().zip(records) {
            match stored? {
                Some(stored) if stored.user.is_active() => friends.push(stored),
                // A friendship a withdrawal left behind (its cleanup failed): end it now.
                Some(stored) if stored.user.status == UserStatus::Withdrawn => {
                    if let Err(error) = self.unfriend(principal.user.id, id).await {
                        tracing::warn!(%error, "a friendship with a withdrawn account was not ended");
                    }
                }
                _ => {}
            }
        }
        self.public_profiles(friends).await
    }

    async fn active_by_username(&self, username: Username) -> Result<StoredUser, AuthError> {
        match self.users.find_by_login(&LoginIdentifier::Username(username)).await? {
            Some(stored) if stored.user.is_active() => Ok(stored),
            _ => Err(AuthError::NoSuchUser),
        }
    }
}
