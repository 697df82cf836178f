//! The OpenAPI schemas of the values the parsers check (`crate::domain`), with the limits they
//! enforce: a body that satisfies the schema is a body the server accepts. Each schema is
//! stated in the canonical form the server stores and answers (lower-case email addresses,
//! say); the parsers also accept the spellings they normalise.

use std::borrow::Cow;

use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, Schema, SchemaFormat, Type};
use utoipa::{PartialSchema, ToSchema};

use crate::domain::{
    ConversationId, Email, ImageType, MessageId, MessageText, PasswordPolicy, Phone, ProviderName, Role, UserId,
    UserStatus, UserType, Username,
};

fn string(pattern: Option<&str>, min: Option<usize>, max: Option<usize>, description: &str) -> RefOr<Schema> {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .pattern(pattern)
        .min_length(min)
        .max_length(max)
        .description(Some(description))
        .into()
}

fn id(description: &str) -> RefOr<Schema> {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::Uuid)))
        .description(Some(description))
        .into()
}

/// One of the names `values` serialise to.
fn names<T: serde::Serialize>(values: &[T], description: &str) -> RefOr<Schema> {
    let names = values.iter().map(|value| serde_json::to_value(value).expect("a name"));
    ObjectBuilder::new().schema_type(Type::String).enum_values(Some(names)).description(Some(description)).into()
}

/// A schema named after its type (the default `ToSchema` name).
macro_rules! named_schema {
    ($($type:ty => $schema:expr;)*) => {$(
        impl PartialSchema for $type {
            fn schema() -> RefOr<Schema> {
                $schema
            }
        }
        impl ToSchema for $type {
            fn name() -> Cow<'static, str> {
                Cow::Borrowed(stringify!($type))
            }
        }
    )*};
}

/// The email pattern of `Email::parse`, with its limit on the part before `@` as a lookahead.
pub const EMAIL_PATTERN: &str = r"^(?=[^@]{1,64}@)[a-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[a-z0-9!#$%&'*+/=?^_`{|}~-]+)*@([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z0-9-]{2,63}$";

const USERNAME_PATTERN: &str = "^[A-Za-z0-9][A-Za-z0-9_.-]{2,31}$";
const PHONE_PATTERN: &str = r"^\+[1-9][0-9]{7,14}$";
const PROVIDER_PATTERN: &str = "^[a-z0-9][a-z0-9-]{0,31}$";

named_schema! {
    Email => string(Some(EMAIL_PATTERN), None, Some(Email::MAX_LEN),
        "An email address (ASCII; compared and stored in lower case).");
    Username => string(Some(USERNAME_PATTERN), None, None,
        "3 to 32 letters, digits, '_', '.' or '-', starting with a letter or digit; unique regardless of case.");
    Phone => string(Some(PHONE_PATTERN), None, None,
        "An E.164 phone number such as +14155550123 (spaces, dashes, dots and parentheses are removed first).");
    ProviderName => string(Some(PROVIDER_PATTERN), None, None,
        "A configured sign-in provider: 1 to 32 lower-case letters, digits or '-'.");
    MessageText => string(None, Some(1), Some(MessageText::MAX_BYTES),
        "The text of a chat message: not blank, at most 4096 bytes of UTF-8.");
    UserId => id("A user's id.");
    Role => names(&[Role::User, Role::Admin], "The account's role.");
    UserStatus => names(&[UserStatus::Normal, UserStatus::Deleted, UserStatus::Withdrawn],
        "NORMAL, DELETED (by an admin) or WITHDRAWN (by the owner).");
    UserType => names(&UserType::ALL, "How the account was made: with a password, or by a sign-in provider.");
    ConversationId => id("A conversation's id.");
    MessageId => id("A message's id (time-sortable).");
}

/// A new password: `LATCHKEY_PASSWORD_MIN_LENGTH` characters (8 by default) to 128.
pub struct NewPassword;

named_schema! {
    NewPassword => string(None, Some(PasswordPolicy::default().min_chars), Some(PasswordPolicy::MAX_CHARS),
        "A new password: at least the deployment's minimum length (8 characters unless configured), at most 128; no composition rules.");
}

/// A password typed to prove identity: not checked against the policy (it may predate it).
pub struct TypedPassword;

named_schema! {
    TypedPassword => string(None, Some(1), Some(PasswordPolicy::MAX_CHARS), "The account's current password.");
}

/// A six-digit code from an authenticator app or an email.
pub struct SixDigits;

named_schema! {
    SixDigits => string(Some("^[0-9]{6}$"), None, None, "Six digits (spaces between them are ignored).");
}

/// A token or code this API handed out (refresh token, link token, exchange code, ...).
pub struct Token;

named_schema! {
    Token => string(Some(r"\S"), Some(1), Some(4096), "A token or code this API handed out; surrounding spaces are ignored.");
}

/// An avatar's image type.
pub struct ImageContentType;

named_schema! {
    ImageContentType => names(&ImageType::ALL.map(ImageType::content_type), "An image type an avatar may have.");
}

/// The error body of every failure (`google.rpc.Status`).
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct ErrorBody {
    /// The gRPC code (3 for `INVALID_ARGUMENT`, ...).
    code: u16,
    /// The gRPC code's name.
    #[schema(example = "INVALID_ARGUMENT")]
    status: String,
    message: String,
    /// `{"field", "description"}` for an invalid field, `{"reason", ...}` for the others.
    details: Vec<serde_json::Map<String, serde_json::Value>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Strings over `alphabet`, of every length up to `max`, from a fixed seed.
    fn samples(alphabet: &[u8], max: usize, count: usize) -> Vec<String> {
        let mut state: u64 = 0x2545_f491_4f6c_dd1d;
        let mut next = move || {
            state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            (state >> 33) as usize
        };
        (0..count)
            .map(|_| {
                let length = next() % (max + 1);
                (0..length).map(|_| alphabet[next() % alphabet.len()] as char).collect()
            })
            .collect()
    }

    /// Panics unless `parses` and `pattern` agree on every candidate, over both outcomes.
    fn agree(pattern: &str, parses: impl Fn(&str) -> bool, candidates: &[String]) {
        let pattern = regex::Regex::new(pattern).unwrap();
        let mut accepted = 0;
        for candidate in candidates {
            assert_eq!(parses(candidate), pattern.is_match(candidate), "{candidate:?} against {pattern}");
            accepted += usize::from(pattern.is_match(candidate));
        }
        assert!(
            accepted > 50 && accepted < candidates.len() - 50,
            "{pattern}: {accepted} of {} accepted",
            candidates.len()
        );
    }

    /// The documented patterns and the parsers' checks are one rule: on canonical input
    /// (what the parsers keep after trimming and normalising), each accepts what the other does.
    #[test]
    fn the_documented_patterns_accept_exactly_what_the_parsers_accept() {
        let names = samples(b"aZ09_.-x!", 34, 20_000);
        agree(USERNAME_PATTERN, |raw| Username::parse(raw).is_ok(), &names);
        let phones: Vec<String> = samples(b"+0123456789a", 17, 20_000);
        agree(PHONE_PATTERN, |raw| Phone::parse(raw).is_ok(), &phones);
        let providers = samples(b"az09-_A", 34, 20_000);
        agree(PROVIDER_PATTERN, |raw| ProviderName::parse(raw).is_ok(), &providers);
        // The email pattern's lookahead (the 64-character local part) is not the regex crate's;
        // it is checked apart.
        let rest = EMAIL_PATTERN.strip_prefix("^(?=[^@]{1,64}@)").expect("the local part's lookahead");
        let email = regex::Regex::new(&format!("^{rest}")).unwrap();
        let mut addresses: Vec<String> = samples(b"ab.-@x9+'_", 24, 40_000);
        addresses.extend(samples(b"a.@x,\"< \n!~A-", 24, 20_000));
        for length in [1, 2, 61, 62, 63, 64, 65] {
            let label = "a".repeat(length);
            addresses.extend([
                format!("ada@{label}.com"),
                format!("ada@example.{label}"),
                format!("{}@a.co", "b".repeat(length)),
            ]);
        }
        // 254 characters, and 255.
        addresses.push(format!("{}@{}.{}.{}.com", "a".repeat(64), "b".repeat(63), "c".repeat(63), "d".repeat(57)));
        addresses.push(format!("{}@{}.{}.{}.com", "a".repeat(64), "b".repeat(63), "c".repeat(63), "d".repeat(58)));
        addresses.extend(samples(b"a.", 70, 2_000).into_iter().map(|local| format!("{local}@example.com")));
        addresses.extend(samples(b"ab-.9", 20, 4_000).into_iter().map(|domain| format!("ada@{domain}")));
        let mut accepted = 0;
        for address in &addresses {
            let documented = email.is_match(address)
                && address.len() <= Email::MAX_LEN
                && address.split('@').next().is_some_and(|local| local.len() <= 64);
            assert_eq!(Email::parse(address).is_ok(), documented, "{address:?}");
            accepted += usize::from(documented);
        }
        assert!(accepted > 300, "only {accepted} addresses were valid: the samples test too little");
    }
}
