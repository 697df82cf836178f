use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::service::{AdminChanges, DirectoryError, DirectoryService, Listed, Patch, ProfileChanges, UserQuery};
use crate::domain::{Email, Extra, Pattern, PatternAllowance, Phone, Role, UserId, UserStatus, Username};
use crate::http::bodies::{PasswordConfirmation, ProfileBody, UserBody};
use crate::http::error::{ApiError, ErrorCode, taken};
use crate::http::extract::{Authenticated, ClientOrigin, JsonBody, PathParam, QueryParams};
use crate::http::parse::{second_factor, typed_password};
use crate::http::{Function, Route, Slice};

pub fn routes() -> Vec<Route<DirectoryService>> {
    vec![
        Route::get(Function::Users, "/v1/users/me", me),
        Route::patch(Function::Users, "/v1/users/me", update_me),
        Route::delete(Function::Users, "/v1/users/me", delete_me),
        Route::get(Function::Users, "/v1/auth/status", status),
        Route::get(Function::Users, "/v1/users", list_users),
        Route::get(Function::Users, "/v1/users/{id}", get_user),
        Route::patch(Function::Users, "/v1/users/{id}", administer_user),
        Route::delete(Function::Users, "/v1/users/{id}", delete_user),
    ]
}

impl From<DirectoryError> for ApiError {
    fn from(error: DirectoryError) -> Self {
        match error {
            DirectoryError::NoSuchUser => Self::of(ErrorCode::NotFound, &error),
            DirectoryError::AdminsOnly(_) => Self::of(ErrorCode::PermissionDenied, &error),
            DirectoryError::LastAdmin => Self::of(ErrorCode::FailedPrecondition, &error),
            DirectoryError::AlreadyExists(field) => taken(field, &error),
            DirectoryError::PatternTooCostly { field } => {
                Self::invalid_field(field, "is too costly to search with; use a simpler pattern")
            }
            DirectoryError::Proof(error) => error.into(),
            DirectoryError::Failure(error) => error.into(),
        }
    }
}

/// One account of a listing: the full record for admins, the public profile for others.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum ListedBody {
    Full(Box<UserBody>),
    Public(ProfileBody),
}

impl From<Listed> for ListedBody {
    fn from(listed: Listed) -> Self {
        match listed {
            Listed::Full(user) => Self::Full(Box::new(user.into())),
            Listed::Public(profile) => Self::Public(profile.into()),
        }
    }
}

async fn me(Authenticated(principal): Authenticated) -> Json<UserBody> {
    Json(principal.user.into())
}

async fn status(Authenticated(principal): Authenticated) -> Json<Value> {
    Json(json!({
        "user": UserBody::from(principal.user),
        "totp_enabled": principal.totp_enabled,
        "email_codes_enabled": principal.email_codes_enabled,
    }))
}

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

async fn update_me(
    State(directory): State<Slice<DirectoryService>>,
    Authenticated(principal): Authenticated,
    ClientOrigin(origin): ClientOrigin,
    JsonBody(request): JsonBody<UpdateProfileRequest>,
) -> Result<Json<UserBody>, ApiError> {
    let extra = request.extra.map(Extra::parse).transpose().map_err(|error| ApiError::invalid_field("extra", error))?;
    let current_password = request.current_password.map(|raw| typed_password("current_password", raw)).transpose()?;
    let proof = second_factor(request.totp_code, None, request.email_code)?;
    let changes = ProfileChanges { username: request.username, email: request.email, phone: request.phone, extra };
    Ok(Json(directory.update_profile(&principal, changes, current_password, proof, &origin).await?.into()))
}

async fn delete_me(
    State(directory): State<Slice<DirectoryService>>,
    Authenticated(principal): Authenticated,
    ClientOrigin(origin): ClientOrigin,
    JsonBody(request): JsonBody<PasswordConfirmation>,
) -> Result<Json<Value>, ApiError> {
    let password = typed_password("password", request.password)?;
    directory.withdraw(&principal, password, &origin).await?;
    Ok(Json(json!({ "success": true })))
}

/// A user id from the path; one that cannot exist reads as missing.
fn user_id(raw: &str) -> Result<UserId, ApiError> {
    UserId::parse(raw).ok_or_else(|| DirectoryError::NoSuchUser.into())
}

async fn get_user(
    State(directory): State<Slice<DirectoryService>>,
    Authenticated(principal): Authenticated,
    PathParam(id): PathParam<String>,
) -> Result<Json<UserBody>, ApiError> {
    Ok(Json(directory.user(&principal, user_id(&id)?).await?.into()))
}

#[derive(Deserialize)]
pub struct AdminChangeRequest {
    role: Option<Role>,
    status: Option<UserStatus>,
}

async fn administer_user(
    State(directory): State<Slice<DirectoryService>>,
    Authenticated(principal): Authenticated,
    PathParam(id): PathParam<String>,
    JsonBody(request): JsonBody<AdminChangeRequest>,
) -> Result<Json<UserBody>, ApiError> {
    if request.status == Some(UserStatus::Withdrawn) {
        return Err(ApiError::invalid_field("status", "must be NORMAL or DELETED (only the owner can withdraw)"));
    }
    let changes = AdminChanges { role: request.role, status: request.status };
    Ok(Json(directory.administer(&principal, user_id(&id)?, changes).await?.into()))
}

async fn delete_user(
    State(directory): State<Slice<DirectoryService>>,
    Authenticated(principal): Authenticated,
    PathParam(id): PathParam<String>,
) -> Result<Json<Value>, ApiError> {
    let changes = AdminChanges { role: None, status: Some(UserStatus::Deleted) };
    directory.administer(&principal, user_id(&id)?, changes).await?;
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

async fn list_users(
    State(directory): State<Slice<DirectoryService>>,
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
    let listed = directory.list_users(&principal, query).await?;
    let users: Vec<ListedBody> = listed.users.into_iter().map(ListedBody::from).collect();
    Ok(Json(json!({ "users": users, "total_count": listed.total_count, "page": page, "size": size })))
}
