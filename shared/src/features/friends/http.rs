use axum::Json;
use axum::extract::State;
use serde::Serialize;
use utoipa::ToSchema;

use super::service::{FriendError, FriendService};
use crate::domain::Username;
use crate::http::bodies::{ProfileBody, Success};
use crate::http::error::{ApiError, ErrorCode};
use crate::http::extract::{Authenticated, PathParam};
use crate::http::{Function, Route, Slice};

/// This slice's operations in the OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi(paths(list_friends, add_friend, remove_friend))]
pub struct Api;

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

#[derive(Serialize, ToSchema)]
pub struct FriendAdded {
    success: bool,
    friend: ProfileBody,
}

/// Makes the two users friends of each other.
#[utoipa::path(put, path = "/v1/users/me/friends/{username}", tag = "friends", security(("bearer" = [])),
    params(("username" = Username, Path, description = "The other user's name.")),
    responses((status = 200, description = "Friends now.", body = FriendAdded)))]
async fn add_friend(
    State(friends): State<Slice<FriendService>>,
    Authenticated(principal): Authenticated,
    PathParam(name): PathParam<String>,
) -> Result<Json<FriendAdded>, ApiError> {
    let friend = friends.add_friend(&principal, username(&name)?).await?;
    Ok(Json(FriendAdded { success: true, friend: friend.into() }))
}

/// Ends the friendship, for both.
#[utoipa::path(delete, path = "/v1/users/me/friends/{username}", tag = "friends", security(("bearer" = [])),
    params(("username" = Username, Path, description = "The other user's name.")),
    responses((status = 200, description = "No longer friends.", body = Success)))]
async fn remove_friend(
    State(friends): State<Slice<FriendService>>,
    Authenticated(principal): Authenticated,
    PathParam(name): PathParam<String>,
) -> Result<Json<Success>, ApiError> {
    friends.remove_friend(&principal, username(&name)?).await?;
    Ok(Json(Success::DONE))
}

#[derive(Serialize, ToSchema)]
pub struct FriendList {
    friends: Vec<ProfileBody>,
}

/// The caller's friends whose accounts are active.
#[utoipa::path(get, path = "/v1/users/me/friends", tag = "friends", security(("bearer" = [])),
    responses((status = 200, description = "The friends.", body = FriendList)))]
async fn list_friends(
    State(friends): State<Slice<FriendService>>,
    Authenticated(principal): Authenticated,
) -> Result<Json<FriendList>, ApiError> {
    let friends = friends.list_friends(&principal).await?.into_iter().map(ProfileBody::from).collect();
    Ok(Json(FriendList { friends }))
}
