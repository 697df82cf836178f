use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};

use super::service::{FriendError, FriendService};
use crate::domain::Username;
use crate::http::bodies::ProfileBody;
use crate::http::error::{ApiError, ErrorCode};
use crate::http::extract::{Authenticated, PathParam};
use crate::http::{Function, Route, Slice};

pub fn routes() -> Vec<Route<FriendService>> {
    vec![
        Route::get(Function::Friends, "/v1/users/me/friends", list_friends),
        Route::put(Function::Friends, "/v1/users/me/friends/{username}", add_friend),
        Route::delete(Function::Friends, "/v1/users/me/friends/{username}", remove_friend),
    ]
}

impl From<FriendError> for ApiError {
    fn from(error: FriendError) -> Self {
        match error {
            FriendError::NoSuchUser | FriendError::NotFriends => Self::of(ErrorCode::NotFound, &error),
            FriendError::AlreadyFriends => Self::reason(ErrorCode::AlreadyExists, &error, "ALREADY_FRIENDS"),
            FriendError::FriendWithYourself | FriendError::FriendLimitReached => {
                Self::of(ErrorCode::FailedPrecondition, &error)
            }
            FriendError::Failure(error) => error.into(),
        }
    }
}

fn username(raw: &str) -> Result<Username, ApiError> {
    Username::parse(raw).map_err(|error| ApiError::invalid_field("username", error))
}

async fn add_friend(
    State(friends): State<Slice<FriendService>>,
    Authenticated(principal): Authenticated,
    PathParam(name): PathParam<String>,
) -> Result<Json<Value>, ApiError> {
    let friend = friends.add_friend(&principal, username(&name)?).await?;
    Ok(Json(json!({ "success": true, "friend": ProfileBody::from(friend) })))
}

async fn remove_friend(
    State(friends): State<Slice<FriendService>>,
    Authenticated(principal): Authenticated,
    PathParam(name): PathParam<String>,
) -> Result<Json<Value>, ApiError> {
    friends.remove_friend(&principal, username(&name)?).await?;
    Ok(Json(json!({ "success": true })))
}

async fn list_friends(
    State(friends): State<Slice<FriendService>>,
    Authenticated(principal): Authenticated,
) -> Result<Json<Value>, ApiError> {
    let friends: Vec<ProfileBody> =
        friends.list_friends(&principal).await?.into_iter().map(ProfileBody::from).collect();
    Ok(Json(json!({ "friends": friends })))
}
