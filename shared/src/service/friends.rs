//! Friends: mutual, made by one call, capped per account.

use super::auth::{AuthError, AuthService, Principal, now};
use crate::domain::{LoginIdentifier, PublicProfile, User, Username};
use crate::repo::FriendshipChange;

impl AuthService {
    /// `PUT /v1/users/me/friends/{username}`: the two become friends of each other.
    pub async fn add_friend(&self, principal: &Principal, username: Username) -> Result<PublicProfile, AuthError> {
        let friend = self.active_by_username(username).await?;
        let me = principal.user.id;
        if friend.id == me {
            return Err(AuthError::FailedPrecondition("you cannot befriend yourself"));
        }
        for _ in 0..5 {
            let seen = (self.friends.count(me).await?, self.friends.count(friend.id).await?);
            if seen.0 >= self.config.max_friends || seen.1 >= self.config.max_friends {
                return Err(AuthError::FailedPrecondition("one of you has reached the friend limit"));
            }
            match self.friends.add(me, friend.id, seen, now().unix_timestamp()).await? {
                FriendshipChange::Done => return Ok(self.public_profiles(vec![friend]).await?.remove(0)),
                FriendshipChange::Unchanged => return Err(AuthError::AlreadyFriends),
                FriendshipChange::Raced => continue,
            }
        }
        Err(AuthError::Aborted)
    }

    /// `DELETE /v1/users/me/friends/{username}`: ends the friendship for both.
    pub async fn remove_friend(&self, principal: &Principal, username: Username) -> Result<(), AuthError> {
        let friend = self.active_by_username(username).await?;
        let me = principal.user.id;
        for _ in 0..5 {
            let seen = (self.friends.count(me).await?, self.friends.count(friend.id).await?);
            match self.friends.remove(me, friend.id, seen).await? {
                FriendshipChange::Done => return Ok(()),
                FriendshipChange::Unchanged => return Err(AuthError::NotFriends),
                FriendshipChange::Raced => continue,
            }
        }
        Err(AuthError::Aborted)
    }

    /// `GET /v1/users/me/friends`: public profiles of the caller's friends whose accounts are
    /// active (a deleted or withdrawn friend is not listed).
    pub async fn list_friends(&self, principal: &Principal) -> Result<Vec<PublicProfile>, AuthError> {
        let ids = self.friends.list(principal.user.id).await?;
        let records = futures::future::join_all(ids.into_iter().map(|id| self.users.find_by_id(id))).await;
        let mut friends = Vec::new();
        for stored in records {
            if let Some(stored) = stored?.filter(|stored| stored.user.is_active()) {
                friends.push(stored.user);
            }
        }
        self.public_profiles(friends).await
    }

    async fn active_by_username(&self, username: Username) -> Result<User, AuthError> {
        match self.users.find_by_login(&LoginIdentifier::Username(username)).await? {
            Some(stored) if stored.user.is_active() => Ok(stored.user),
            _ => Err(AuthError::NoSuchUser),
        }
    }
}
