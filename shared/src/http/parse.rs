//! Parsers for request fields that several slices take (passwords, codes, tokens, the login
//! identifier, a second factor), each failing with an error that names the field.

use serde::Deserialize;

use super::error::{ApiError, ErrorCode};
use crate::domain::{Email, LoginIdentifier, Password, PasswordPolicy, Phone, Username};
use crate::kernel::SecondFactor;

/// A new password, checked against the policy.
pub fn new_password(policy: PasswordPolicy, field: &str, raw: String) -> Result<Password, ApiError> {
    Password::new(raw, policy).map_err(|error| ApiError::invalid_field(field, error))
}

/// A password typed to prove identity: not policy-checked (it may predate the policy), but
/// never empty and never longer than any password could be.
pub fn typed_password(field: &str, raw: String) -> Result<String, ApiError> {
    if raw.is_empty() {
        return Err(ApiError::invalid_field(field, "must not be empty"));
    }
    if raw.chars().count() > PasswordPolicy::MAX_CHARS {
        return Err(ApiError::invalid_field(
            field,
            format!("must be at most {} characters", PasswordPolicy::MAX_CHARS),
        ));
    }
    Ok(raw)
}

/// A token field, trimmed, that must not be blank.
pub fn non_empty<'a>(field: &str, raw: &'a str) -> Result<&'a str, ApiError> {
    match raw.trim() {
        "" => Err(ApiError::invalid_field(field, "must not be empty")),
        token => Ok(token),
    }
}

/// A six-digit code (TOTP or email), as typed: spaces are dropped.
pub fn six_digits(field: &str, raw: &str) -> Result<String, ApiError> {
    let code: String = raw.chars().filter(|c| !c.is_whitespace()).collect();
    if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ApiError::invalid_field(field, "must be 6 digits"));
    }
    Ok(code)
}

/// Exactly one of an email, a username or a phone number names the account.
pub fn one_identifier(
    email: Option<Email>,
    username: Option<Username>,
    phone: Option<Phone>,
) -> Result<LoginIdentifier, ApiError> {
    match (email, username, phone) {
        (Some(email), None, None) => Ok(LoginIdentifier::Email(email)),
        (None, Some(username), None) => Ok(LoginIdentifier::Username(username)),
        (None, None, Some(phone)) => Ok(LoginIdentifier::Phone(phone)),
        _ => Err(ApiError::new(ErrorCode::InvalidArgument, "give exactly one of email, username or phone")),
    }
}

/// The second factor of a sign-in request (login, provider sign-in, exchange): at most one
/// of `totp_code`, `recovery_code` and `email_code`. (Listed in each request rather than
/// flattened, so that a wrong type is reported with its field name.)
pub fn second_factor(
    totp_code: Option<String>,
    recovery_code: Option<String>,
    email_code: Option<String>,
) -> Result<Option<SecondFactor>, ApiError> {
    Ok(match (totp_code, recovery_code, email_code) {
        (None, None, None) => None,
        (Some(code), None, None) => Some(SecondFactor::Totp(six_digits("totp_code", &code)?)),
        (None, Some(code), None) if !code.trim().is_empty() && code.len() <= 64 => {
            Some(SecondFactor::RecoveryCode(code))
        }
        (None, Some(_), None) => return Err(ApiError::invalid_field("recovery_code", "must be a recovery code")),
        (None, None, Some(code)) => Some(SecondFactor::EmailCode(six_digits("email_code", &code)?)),
        _ => {
            return Err(ApiError::new(
                ErrorCode::InvalidArgument,
                "give at most one of totp_code, recovery_code or email_code",
            ));
        }
    })
}

/// A whole number, also when JSON spells it with a fraction of zero (`1060.0`): JSON Schema
/// counts that as an integer, so a client the schema allows to send it is answered the same.
pub fn whole_number<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<u64, D::Error> {
    use serde::de::{Error, Unexpected};
    match serde_json::Number::deserialize(deserializer)? {
        number if number.as_u64().is_some() => Ok(number.as_u64().unwrap_or_default()),
        number => match number.as_f64() {
            Some(float) if float.fract() == 0.0 && (0.0..=u64::MAX as f64).contains(&float) => Ok(float as u64),
            _ => Err(D::Error::invalid_value(Unexpected::Other(&number.to_string()), &"a whole number")),
        },
    }
}
