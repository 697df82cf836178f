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

fn sessions_of(function: Function, kernel: &Kernel) -> Router {
    mount(sessions::routes(), Some(function), Slice::new(SessionService::new(kernel), kernel))
}

fn second_factors_of(function: Function, kernel: &Kernel) -> Router {
    mount(mfa::routes(), Some(function), Slice::new(SecondFactorService::new(kernel), kernel))
}

fn account_of(function: Function, kernel: &Kernel) -> Router {
    mount(account::routes(), Some(function), Slice::new(AccountService::new(kernel), kernel))
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
    sessions_of(Function::Register, kernel)
}

pub fn login(kernel: &Kernel) -> Router {
    sessions_of(Function::Login, kernel)
}

pub fn refresh(kernel: &Kernel) -> Router {
    sessions_of(Function::Refresh, kernel)
}

pub fn logout(kernel: &Kernel) -> Router {
    sessions_of(Function::Logout, kernel)
}

pub fn tokens(kernel: &Kernel) -> Router {
    sessions_of(Function::Tokens, kernel)
}

pub fn totp(kernel: &Kernel) -> Router {
    second_factors_of(Function::Totp, kernel)
}

pub fn password(kernel: &Kernel) -> Router {
    account_of(Function::Password, kernel)
}

/// Mailed codes and links: second factors, the address lifecycle and unlock links.
pub fn email(kernel: &Kernel) -> Router {
    second_factors_of(Function::Email, kernel)
        .merge(account_of(Function::Email, kernel))
        .merge(sessions_of(Function::Email, kernel))
}

/// The directory, and the confirmation of an address change.
pub fn users(kernel: &Kernel) -> Router {
    let directory = Slice::new(DirectoryService::new(kernel), kernel);
    mount(directory::routes(), Some(Function::Users), directory).merge(account_of(Function::Users, kernel))
}

pub fn friends(kernel: &Kernel) -> Router {
    mount(friends::routes(), Some(Function::Friends), Slice::new(FriendService::new(kernel), kernel))
}

pub fn avatar(kernel: &Kernel) -> Router {
    mount(avatars::routes(), Some(Function::Avatar), Slice::new(AvatarService::new(kernel), kernel))
}

pub fn oauth(kernel: &Kernel) -> Router {
    mount(providers::routes(), Some(Function::OAuth), Slice::new(ProviderService::new(kernel), kernel))
}

pub fn chat(kernel: &Kernel) -> Router {
    mount(chat::routes(), Some(Function::Chat), Slice::new(ChatService::new(kernel), kernel))
}

/// Every slice's routes on one service each: what the local server serves.
pub fn all(kernel: &Kernel) -> Router {
    Router::new()
        .merge(mount(sessions::routes(), None, Slice::new(SessionService::new(kernel), kernel)))
        .merge(mount(mfa::routes(), None, Slice::new(SecondFactorService::new(kernel), kernel)))
        .merge(mount(account::routes(), None, Slice::new(AccountService::new(kernel), kernel)))
        .merge(mount(directory::routes(), None, Slice::new(DirectoryService::new(kernel), kernel)))
        .merge(mount(friends::routes(), None, Slice::new(FriendService::new(kernel), kernel)))
        .merge(mount(avatars::routes(), None, Slice::new(AvatarService::new(kernel), kernel)))
        .merge(mount(providers::routes(), None, Slice::new(ProviderService::new(kernel), kernel)))
        .merge(mount(chat::routes(), None, Slice::new(ChatService::new(kernel), kernel)))
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
