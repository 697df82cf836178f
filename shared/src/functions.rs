//! What each Lambda function serves: its slices' routes on their services, built from the
//! kernel. A function's `main.rs` names its builder here, so its binary links those slices only.

use axum::Router;
use axum::http::Method;

use crate::features::account::{self, AccountService};
use crate::features::avatars::{self, AvatarService};
use crate::features::chat::{self, ChatService};
use crate::features::directory::{self, DirectoryService};
use crate::features::friends::{self, FriendService};
use crate::features::mfa::{self, SecondFactorService};
use crate::features::providers::{self, ProviderService};
use crate::features::sessions::{self, SessionService};
use crate::http::{Function, Route, Slice, mount};
use crate::kernel::Kernel;

fn sessions(routes: Vec<Route<SessionService>>, kernel: &Kernel) -> Router {
    mount(routes, Slice::new(SessionService::new(kernel), kernel))
}

fn second_factors(routes: Vec<Route<SecondFactorService>>, kernel: &Kernel) -> Router {
    mount(routes, Slice::new(SecondFactorService::new(kernel), kernel))
}

fn account(routes: Vec<Route<AccountService>>, kernel: &Kernel) -> Router {
    mount(routes, Slice::new(AccountService::new(kernel), kernel))
}

/// `function`'s router: what its `main.rs` serves on Lambda.
pub fn router(function: Function, kernel: &Kernel) -> Router {
    match function {
        Function::Register => register(kernel),
        Function::Login => login(kernel),
        Function::Refresh => refresh(kernel),
        Function::Logout => logout(kernel),
        Function::Users => users(kernel),
        Function::Tokens => tokens(kernel),
        Function::Totp => totp(kernel),
        Function::Password => password(kernel),
        Function::Email => email(kernel),
        Function::Friends => friends(kernel),
        Function::Avatar => avatar(kernel),
        Function::OAuth => oauth(kernel),
        Function::Chat => chat(kernel),
    }
}

pub fn register(kernel: &Kernel) -> Router {
    sessions(sessions::register_routes(), kernel)
}

pub fn login(kernel: &Kernel) -> Router {
    sessions(sessions::login_routes(), kernel)
}

pub fn refresh(kernel: &Kernel) -> Router {
    sessions(sessions::refresh_routes(), kernel)
}

pub fn logout(kernel: &Kernel) -> Router {
    sessions(sessions::logout_routes(), kernel)
}

pub fn tokens(kernel: &Kernel) -> Router {
    sessions(sessions::tokens_routes(), kernel)
}

pub fn totp(kernel: &Kernel) -> Router {
    second_factors(mfa::totp_routes(), kernel)
}

pub fn password(kernel: &Kernel) -> Router {
    account(account::password_routes(), kernel)
}

/// Mailed codes and links: second factors, the address lifecycle and unlock links.
pub fn email(kernel: &Kernel) -> Router {
    second_factors(mfa::email_routes(), kernel)
        .merge(account(account::email_routes(), kernel))
        .merge(sessions(sessions::unlock_routes(), kernel))
}

/// The directory, and the confirmation of an address change.
pub fn users(kernel: &Kernel) -> Router {
    let directory = Slice::new(DirectoryService::new(kernel), kernel);
    mount(directory::routes(), directory).merge(account(account::users_routes(), kernel))
}

pub fn friends(kernel: &Kernel) -> Router {
    mount(friends::routes(), Slice::new(FriendService::new(kernel), kernel))
}

pub fn avatar(kernel: &Kernel) -> Router {
    mount(avatars::routes(), Slice::new(AvatarService::new(kernel), kernel))
}

pub fn oauth(kernel: &Kernel) -> Router {
    mount(providers::routes(), Slice::new(ProviderService::new(kernel), kernel))
}

pub fn chat(kernel: &Kernel) -> Router {
    mount(chat::routes(), Slice::new(ChatService::new(kernel), kernel))
}

/// Every slice's routes on one service each: what the local server serves.
pub fn all(kernel: &Kernel) -> Router {
    Router::new()
        .merge(mount(sessions::routes(), Slice::new(SessionService::new(kernel), kernel)))
        .merge(mount(mfa::routes(), Slice::new(SecondFactorService::new(kernel), kernel)))
        .merge(mount(account::routes(), Slice::new(AccountService::new(kernel), kernel)))
        .merge(mount(directory::routes(), Slice::new(DirectoryService::new(kernel), kernel)))
        .merge(mount(friends::routes(), Slice::new(FriendService::new(kernel), kernel)))
        .merge(mount(avatars::routes(), Slice::new(AvatarService::new(kernel), kernel)))
        .merge(mount(providers::routes(), Slice::new(ProviderService::new(kernel), kernel)))
        .merge(mount(chat::routes(), Slice::new(ChatService::new(kernel), kernel)))
}

/// Every route served over HTTP, with its function: the one table that `template.yaml`,
/// `openapi.yaml` and `events/` are checked against.
pub fn table() -> Vec<(Function, Method, &'static str)> {
    fn rows<S>(routes: Vec<Route<S>>) -> impl Iterator<Item = (Function, Method, &'static str)> {
        routes.into_iter().map(|route| (route.function, route.method, route.path))
    }
    rows(sessions::routes())
        .chain(rows(mfa::routes()))
        .chain(rows(account::routes()))
        .chain(rows(directory::routes()))
        .chain(rows(friends::routes()))
        .chain(rows(avatars::routes()))
        .chain(rows(providers::routes()))
        .chain(rows(chat::routes()))
        .collect()
}
