use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use super::service::{AdminChanges, DirectoryError, DirectoryService, Listed, Patch, ProfileChanges, UserQuery};
use crate::domain::{Email, Extra, Pattern, PatternAllowance, Phone, Role, UserId, UserStatus, Username};
use crate::http::bodies::{PasswordConfirmation, ProfileBody, Success, UserBody};
use crate::http::error::{ApiError, ErrorCode, taken};
use crate::http::extract::{Authenticated, ClientOrigin, JsonBody, PathParam, QueryParams};
use crate::http::parse::{second_factor, typed_password};
use crate::http::schemas::{SixDigits, TypedPassword};
use crate::http::{Function, Route, Slice};

/// This slice's operations in the OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi(paths(me, update_me, delete_me, status, list_users, get_user, administer_user, delete_user))]
pub struct Api;

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
#[derive(Debug, Serialize, ToSchema)]
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

/// The caller's account.
#[utoipa::path(get, path = "/v1/users/me", tag = "users", security(("bearer" = [])),
    responses((status = 200, description = "The caller's account.", body = UserBody)))]
async fn me(Authenticated(principal): Authenticated) -> Json<UserBody> {
    Json(principal.user.into())
}

/// The caller's account and its second factors.
#[derive(Serialize, ToSchema)]
pub struct StatusBody {
    user: UserBody,
    totp_enabled: bool,
    /// Sign-in asks this account for an email code (its choice or the deployment's).
    email_codes_enabled: bool,
}

/// The caller's account and which second factors it signs in with.
#[utoipa::path(get, path = "/v1/auth/status", tag = "users", security(("bearer" = [])),
    responses((status = 200, description = "The caller's status.", body = StatusBody)))]
async fn status(Authenticated(principal): Authenticated) -> Json<StatusBody> {
    Json(StatusBody {
        user: principal.user.into(),
        totp_enabled: principal.totp_enabled,
        email_codes_enabled: principal.email_codes_enabled,
    })
}

const DEFAULT_PAGE_SIZE: usize = 20;
const MAX_PAGE_SIZE: usize = 100;

/// What to change: an absent field stays, `null` clears it. A new `email` needs
/// `current_password` (when the account has one) and, when the account has a second factor, a
/// fresh code of it; it is pending until the link mailed to it is used.
#[derive(Deserialize, ToSchema)]
pub struct UpdateProfileRequest {
    #[serde(default)]
    #[schema(value_type = Option<Username>)]
    username: Patch<Username>,
    email: Option<Email>,
    #[serde(default)]
    #[schema(value_type = Option<Phone>)]
    phone: Patch<Phone>,
    /// Replaces the stored object (`Extra`: at most 4096 bytes of JSON, 32 levels deep).
    #[schema(value_type = Option<Object>)]
    extra: Option<Value>,
    #[schema(value_type = Option<TypedPassword>)]
    current_password: Option<String>,
    /// A new email of an account with a second factor needs a fresh code of it.
    #[schema(value_type = Option<SixDigits>)]
    totp_code: Option<String>,
    #[schema(value_type = Option<SixDigits>)]
    email_code: Option<String>,
}

/// Changes the caller's profile.
#[utoipa::path(patch, path = "/v1/users/me", tag = "users", security(("bearer" = [])),
    request_body = UpdateProfileRequest, responses((status = 200, description = "The account now.", body = UserBody)))]
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

/// Withdraws the caller's account: its sessions end and its email, name and phone are free.
#[utoipa::path(delete, path = "/v1/users/me", tag = "users", security(("bearer" = [])),
    request_body = PasswordConfirmation, responses((status = 200, description = "Withdrawn.", body = Success)))]
async fn delete_me(
    State(directory): State<Slice<DirectoryService>>,
    Authenticated(principal): Authenticated,
    ClientOrigin(origin): ClientOrigin,
    JsonBody(request): JsonBody<PasswordConfirmation>,
) -> Result<Json<Success>, ApiError> {
    let password = typed_password("password", request.password)?;
    directory.withdraw(&principal, password, &origin).await?;
    Ok(Json(Success::DONE))
}

/// A user id from the path; one that cannot exist reads as missing.
fn user_id(raw: &str) -> Result<UserId, ApiError> {
    UserId::parse(raw).ok_or_else(|| DirectoryError::NoSuchUser.into())
}

/// The caller's own account, or (for admins) anyone's.
#[utoipa::path(get, path = "/v1/users/{id}", tag = "users", security(("bearer" = [])),
    params(("id" = UserId, Path, description = "The account's id.")),
    responses((status = 200, description = "The account.", body = UserBody)))]
async fn get_user(
    State(directory): State<Slice<DirectoryService>>,
    Authenticated(principal): Authenticated,
    PathParam(id): PathParam<String>,
) -> Result<Json<UserBody>, ApiError> {
    Ok(Json(directory.user(&principal, user_id(&id)?).await?.into()))
}

/// What an admin changes; withdrawal is the owner's alone.
#[derive(Deserialize, ToSchema)]
pub struct AdminChangeRequest {
    role: Option<Role>,
    /// `NORMAL` or `DELETED`.
    #[schema(value_type = Option<String>, pattern = "^(NORMAL|DELETED)$")]
    status: Option<UserStatus>,
}

/// Changes an account's role or status (admins).
#[utoipa::path(patch, path = "/v1/users/{id}", tag = "users", security(("bearer" = [])),
    params(("id" = UserId, Path, description = "The account's id.")), request_body = AdminChangeRequest,
    responses((status = 200, description = "The account now.", body = UserBody)))]
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

/// Deletes an account (admins): its status is `DELETED` and its sessions end.
#[utoipa::path(delete, path = "/v1/users/{id}", tag = "users", security(("bearer" = [])),
    params(("id" = UserId, Path, description = "The account's id.")),
    responses((status = 200, description = "Deleted.", body = Success)))]
async fn delete_user(
    State(directory): State<Slice<DirectoryService>>,
    Authenticated(principal): Authenticated,
    PathParam(id): PathParam<String>,
) -> Result<Json<Success>, ApiError> {
    let changes = AdminChanges { role: None, status: Some(UserStatus::Deleted) };
    directory.administer(&principal, user_id(&id)?, changes).await?;
    Ok(Json(Success::DONE))
}

/// The furthest page: one whose first account's index still fits the address space.
const MAX_PAGE: usize = usize::MAX / MAX_PAGE_SIZE;
// The schema below states it as a literal.
const _: () = assert!(MAX_PAGE as u64 == 184_467_440_737_095_516);

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// A regular expression the user name must match (admins: a larger pattern budget).
    #[param(value_type = Option<String>, max_length = 256)]
    filter_name: Option<String>,
    /// A regular expression the email address must match (admins only).
    #[param(value_type = Option<String>, max_length = 256)]
    filter_email: Option<String>,
    /// 1-based; 1 when absent.
    #[param(value_type = Option<u64>, minimum = 1, maximum = 184_467_440_737_095_516_u64)]
    page: Option<String>,
    /// 1 to 100; 20 when absent.
    #[param(value_type = Option<u64>, minimum = 1, maximum = 100)]
    size: Option<String>,
}

/// A page of the directory.
#[derive(Serialize, ToSchema)]
pub struct UserPageBody {
    /// Full records for admins, public profiles for everyone else.
    users: Vec<ListedBody>,
    /// How many accounts match the filters.
    total_count: usize,
    page: usize,
    size: usize,
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

/// A page of the user directory, filtered by regular expressions, in creation order.
#[utoipa::path(get, path = "/v1/users", tag = "users", security(("bearer" = [])), params(ListParams),
    responses((status = 200, description = "A page.", body = UserPageBody)))]
async fn list_users(
    State(directory): State<Slice<DirectoryService>>,
    Authenticated(principal): Authenticated,
    QueryParams(params): QueryParams<ListParams>,
) -> Result<Json<UserPageBody>, ApiError> {
    let allowance = if principal.user.is_admin() { PatternAllowance::Admin } else { PatternAllowance::Member };
    let query = UserQuery {
        name: pattern("filter_name", params.filter_name, allowance)?,
        email: pattern("filter_email", params.filter_email, allowance)?,
        page: number("page", params.page, 1, 1..=MAX_PAGE)?,
        size: number("size", params.size, DEFAULT_PAGE_SIZE, 1..=MAX_PAGE_SIZE)?,
    };
    let (page, size) = (query.page, query.size);
    let listed = directory.list_users(&principal, query).await?;
    let users: Vec<ListedBody> = listed.users.into_iter().map(ListedBody::from).collect();
    Ok(Json(UserPageBody { users, total_count: listed.total_count, page, size }))
}
