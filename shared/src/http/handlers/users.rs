//! Profiles, the user directory, roles and friends.

use axum::Json;
use axum::extract::State;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{PasswordConfirmation, second_factor, typed_password};
use crate::domain::{Email, Extra, Pattern, PatternAllowance, Phone, Role, UserId, UserStatus, Username};
use crate::http::AppState;
use crate::http::bodies::{ListedBody, UserBody};
use crate::http::error::ApiError;
use crate::http::extract::{Authenticated, ClientOrigin, JsonBody, PathParam, QueryParams};
use crate::service::{AdminChanges, AuthError, Patch, ProfileChanges, UserQuery};

const DEFAULT_PAGE_SIZE: usize = 20;
const MAX_PAGE_SIZE: usize = 100;

#[derive(Deserialize)]
pub struct UpdateProfileRequest {
    #[serde(default)]
    username: Patch<Username>,
    email: Option<Email>,
    #[serde(default)]
    phone: Patch<Phone>,
    extra: Option<Value>,
    current_password: Option<String>,
    /// A new email of an account with a second factor needs a fresh code of it.
    totp_code: Option<String>,
    email_code: Option<String>,
}

pub async fn update_me(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    ClientOrigin(origin): ClientOrigin,
    JsonBody(request): JsonBody<UpdateProfileRequest>,
) -> Result<Json<UserBody>, ApiError> {
    let extra = request.extra.map(Extra::parse).transpose().map_err(|error| ApiError::invalid_field("extra", error))?;
    let current_password = request.current_password.map(|raw| typed_password("current_password", raw)).transpose()?;
    let proof = second_factor(request.totp_code, None, request.email_code)?;
    let changes = ProfileChanges { username: request.username, email: request.email, phone: request.phone, extra };
    Ok(Json(state.auth.update_profile(&principal, changes, current_password, proof, &origin).await?.into()))
}

pub async fn delete_me(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    ClientOrigin(origin): ClientOrigin,
    JsonBody(request): JsonBody<PasswordConfirmation>,
) -> Result<Json<Value>, ApiError> {
    let password = typed_password("password", request.password)?;
    state.auth.withdraw(&principal, password, &origin).await?;
    Ok(Json(json!({ "success": true })))
}

/// A user id from the path; one that cannot exist reads as missing.
fn user_id(raw: &str) -> Result<UserId, ApiError> {
    UserId::parse(raw).ok_or_else(|| AuthError::NoSuchUser.into())
}

pub async fn get_user(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    PathParam(id): PathParam<String>,
) -> Result<Json<UserBody>, ApiError> {
    Ok(Json(state.auth.user(&principal, user_id(&id)?).await?.into()))
}

#[derive(Deserialize)]
pub struct AdminChangeRequest {
    role: Option<Role>,
    status: Option<UserStatus>,
}

pub async fn administer_user(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    PathParam(id): PathParam<String>,
    JsonBody(request): JsonBody<AdminChangeRequest>,
) -> Result<Json<UserBody>, ApiError> {
    if request.status == Some(UserStatus::Withdrawn) {
        return Err(ApiError::invalid_field("status", "must be NORMAL or DELETED (only the owner can withdraw)"));
    }
    let changes = AdminChanges { role: request.role, status: request.status };
    Ok(Json(state.auth.administer(&principal, user_id(&id)?, changes).await?.into()))
}

pub async fn delete_user(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    PathParam(id): PathParam<String>,
) -> Result<Json<Value>, ApiError> {
    let changes = AdminChanges { role: None, status: Some(UserStatus::Deleted) };
    state.auth.administer(&principal, user_id(&id)?, changes).await?;
    Ok(Json(json!({ "success": true })))
}

#[derive(Deserialize)]
pub struct ListParams {
    filter_name: Option<String>,
    filter_email: Option<String>,
    page: Option<String>,
    size: Option<String>,
}

fn pattern(field: &str, raw: Option<String>, allowance: PatternAllowance) -> Result<Option<Pattern>, ApiError> {
    match raw.filter(|raw| !raw.is_empty()) {
        None => Ok(None),
        Some(raw) => Pattern::parse(&raw, allowance).map(Some).map_err(|error| ApiError::invalid_field(field, error)),
    }
}

fn number(
    field: &str,
    raw: Option<String>,
    default: usize,
    range: std::ops::RangeInclusive<usize>,
) -> Result<usize, ApiError> {
    let Some(raw) = raw else { return Ok(default) };
    match raw.parse::<usize>() {
        Ok(value) if range.contains(&value) => Ok(value),
        _ => Err(ApiError::invalid_field(
            field,
            format!("must be a whole number from {} to {}", range.start(), range.end()),
        )),
    }
}

pub async fn list_users(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    QueryParams(params): QueryParams<ListParams>,
) -> Result<Json<Value>, ApiError> {
    let allowance = if principal.user.is_admin() { PatternAllowance::Admin } else { PatternAllowance::Member };
    let query = UserQuery {
        name: pattern("filter_name", params.filter_name, allowance)?,
        email: pattern("filter_email", params.filter_email, allowance)?,
        page: number("page", params.page, 1, 1..=usize::MAX / MAX_PAGE_SIZE)?,
        size: number("size", params.size, DEFAULT_PAGE_SIZE, 1..=MAX_PAGE_SIZE)?,
    };
    let (page, size) = (query.page, query.size);
    let listed = state.auth.list_users(&principal, query).await?;
    let users: Vec<ListedBody> = listed.users.into_iter().map(ListedBody::from).collect();
    Ok(Json(json!({ "users": users, "total_count": listed.total_count, "page": page, "size": size })))
}

fn username(raw: &str) -> Result<Username, ApiError> {
    Username::parse(raw).map_err(|error| ApiError::invalid_field("username", error))
}

pub async fn add_friend(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    PathParam(name): PathParam<String>,
) -> Result<Json<Value>, ApiError> {
    let friend = state.auth.add_friend(&principal, username(&name)?).await?;
    Ok(Json(json!({ "success": true, "friend": friend })))
}

pub async fn remove_friend(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    PathParam(name): PathParam<String>,
) -> Result<Json<Value>, ApiError> {
    state.auth.remove_friend(&principal, username(&name)?).await?;
    Ok(Json(json!({ "success": true })))
}

pub async fn list_friends(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(json!({ "friends": state.auth.list_friends(&principal).await? })))
}
