//! Public profiles, as the directory, friends and chat show them: with whether the user is
//! connected now (a live session or an open chat connection).

use std::sync::Arc;

use super::failure::Failure;
use super::now;
use crate::domain::PublicProfile;
use crate::repo::{ChatRepo, SessionRepo, StoredUser};
use crate::store::ItemStore;

pub struct Profiles {
    sessions: SessionRepo,
    chat: ChatRepo,
}

impl Profiles {
    pub fn new(store: &Arc<dyn ItemStore>) -> Self {
        Self { sessions: SessionRepo::new(Arc::clone(store)), chat: ChatRepo::new(Arc::clone(store)) }
    }

    /// Public profiles, with `is_connected` read for each (concurrently).
    pub async fn of(&self, users: Vec<StoredUser>) -> Result<Vec<PublicProfile>, Failure> {
        let now = now().unix_timestamp();
        let live = futures::future::join_all(users.iter().map(|stored| self.is_connected(stored, now))).await;
        users.iter().zip(live).map(|(stored, live)| Ok(stored.user.public_profile(live?))).collect()
    }

    /// Whether the user has a live session or an open chat connection.
    pub async fn is_connected(&self, stored: &StoredUser, now: i64) -> Result<bool, Failure> {
        let (session, connections) = tokio::join!(
            self.sessions.has_live_session(stored.user.id, stored.session_epoch, now),
            self.chat.live_connections(stored.user.id, stored.session_epoch, now)
        );
        Ok(session? || !connections?.is_empty())
    }
}
