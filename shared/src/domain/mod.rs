//! Domain types: values that are valid by construction, and the user model.

mod user;
mod values;

pub use user::{Role, User, UserId, UserStatus, UserType};
pub use values::{Email, InvalidValue, LoginIdentifier, Password, PasswordPolicy, Phone, Username};
