//! Domain types: values that are valid by construction, and the user model.

mod user;
mod values;

pub use user::{PublicProfile, Role, User, UserId, UserStatus, UserType};
pub use values::{
    Email, Extra, ImageType, InvalidValue, LoginIdentifier, Password, PasswordPolicy, Pattern, Phone, Username,
};
