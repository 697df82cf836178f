//! Parse, don't validate: each value here can only be built through a checking constructor,
//! so an invalid email, username, phone or password cannot exist past the HTTP edge.

use regex::Regex;
use serde::{Deserialize, Serialize};
use std::fmt;

/// Why a value was refused; the message is safe to show to the client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidValue(pub String);

fn invalid(message: impl Into<String>) -> InvalidValue {
    InvalidValue(message.into())
}

/// An email address, trimmed and lower-cased so that one mailbox has one account.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Email(String);

/// The local part is an RFC 5322 dot-atom (no quoting, so no `,`, `<`, `>` or spaces that
/// mail parsers would read as more recipients); the domain has two or more dotted labels of
/// letters, digits and hyphens, the last of at least two characters. (`http::schemas` states
/// the same as a pattern; a test holds the two together.) Plain character checks rather than a
/// regular expression: every function parses stored addresses, and only the directory needs
/// the regex engine.
fn is_address(address: &str) -> bool {
    let atom = |part: &str| {
        !part.is_empty() && part.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+/=?^_`{|}~-".contains(&b))
    };
    let label = |part: &str| {
        (1..=63).contains(&part.len())
            && part.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !part.starts_with('-')
            && !part.ends_with('-')
    };
    let Some((local, domain)) = address.split_once('@') else { return false };
    let labels: Vec<&str> = domain.split('.').collect();
    let (last, first) = labels.split_last().expect("split yields one part at least");
    let last_ok = (2..=63).contains(&last.len())
        && last.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    local.len() <= 64
        && local.split('.').all(atom)
        && local.bytes().all(|b| !b.is_ascii_uppercase())
        && !first.is_empty()
        && first.iter().all(|part| label(part))
        && last_ok
}

impl Email {
    pub const MAX_LEN: usize = 254;

    pub fn parse(raw: &str) -> Result<Self, InvalidValue> {
        let normalised = raw.trim().to_lowercase();
        if normalised.len() > Self::MAX_LEN {
            return Err(invalid(format!("must be at most {} characters", Self::MAX_LEN)));
        }
        // Mail to non-ASCII addresses needs SMTPUTF8, which SES does not offer.
        if !normalised.is_ascii() {
            return Err(invalid("must be ASCII (internationalised addresses are not supported)"));
        }
        if !is_address(&normalised) {
            return Err(invalid(
                "is not a valid email address (the part before @ may hold letters, digits, dots and !#$%&'*+/=?^_`{|}~-)",
            ));
        }
        Ok(Self(normalised))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A user name: 3 to 32 letters, digits, `_`, `.` or `-`, starting with a letter or digit.
/// Shown as typed; unique regardless of case.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Username(String);

impl Username {
    pub fn parse(raw: &str) -> Result<Self, InvalidValue> {
        let trimmed = raw.trim();
        let valid = (3..=32).contains(&trimmed.len())
            && trimmed.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric())
            && trimmed.bytes().all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b));
        if !valid {
            return Err(invalid(
                "must be 3 to 32 characters of letters, digits, '_', '.' or '-', starting with a letter or digit",
            ));
        }
        Ok(Self(trimmed.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The form uniqueness is decided on.
    pub fn canonical(&self) -> String {
        self.0.to_lowercase()
    }
}

/// A phone number in E.164 form (`+` and 8 to 15 digits). Spaces, dashes, dots and
/// parentheses typed by people are removed first.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Phone(String);

impl Phone {
    pub fn parse(raw: &str) -> Result<Self, InvalidValue> {
        let compact: String = raw.trim().chars().filter(|c| !matches!(c, ' ' | '-' | '.' | '(' | ')')).collect();
        let digits = compact.strip_prefix('+').unwrap_or_default();
        let valid =
            (8..=15).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit()) && !digits.starts_with('0');
        if !valid {
            return Err(invalid("must be an E.164 phone number such as +14155550123"));
        }
        Ok(Self(compact))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The name of a configured sign-in provider, as it appears in routes (`google`, `42`, `acme`):
/// 1 to 32 lower-case letters, digits or `-`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ProviderName(String);

impl ProviderName {
    pub fn parse(raw: &str) -> Result<Self, InvalidValue> {
        let valid = (1..=32).contains(&raw.len())
            && !raw.starts_with('-')
            && raw.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if !valid {
            return Err(invalid("must be 1 to 32 lower-case letters, digits or '-'"));
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

macro_rules! string_newtype_conversions {
    ($($name:ident),*) => {$(
        impl TryFrom<String> for $name {
            type Error = InvalidValue;
            fn try_from(raw: String) -> Result<Self, InvalidValue> {
                Self::parse(&raw)
            }
        }
        impl From<$name> for String {
            fn from(value: $name) -> String {
                value.0
            }
        }
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    )*};
}
string_newtype_conversions!(Email, Username, Phone, ProviderName);

/// NIST SP 800-63B: a minimum length, a generous maximum, no composition rules, no truncation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PasswordPolicy {
    pub min_chars: usize,
}

impl PasswordPolicy {
    pub const MAX_CHARS: usize = 128;
}

impl Default for PasswordPolicy {
    fn default() -> Self {
        Self { min_chars: 8 }
    }
}

/// A new password that satisfies the policy. Never printed: `Debug` is redacted.
#[derive(Clone)]
pub struct Password(String);

impl Password {
    pub fn new(raw: String, policy: PasswordPolicy) -> Result<Self, InvalidValue> {
        let chars = raw.chars().count();
        if chars < policy.min_chars {
            return Err(invalid(format!("must be at least {} characters", policy.min_chars)));
        }
        if chars > PasswordPolicy::MAX_CHARS {
            return Err(invalid(format!("must be at most {} characters", PasswordPolicy::MAX_CHARS)));
        }
        Ok(Self(raw))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

/// A search pattern for user listings: a regular expression for the `regex` crate, whose
/// matching is linear in the input, with a cap on the compiled size so no pattern can stall
/// the function. Anyone may list users, so everyone but admins gets a much smaller cap:
/// nested counted repetitions compile large and are slow on every entry they scan.
#[derive(Debug, Clone)]
pub struct Pattern(Regex);

/// Who a pattern is compiled for, which decides how large it may compile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatternAllowance {
    Admin,
    Member,
}

impl Pattern {
    pub const MAX_LEN: usize = 256;

    pub fn parse(raw: &str, allowance: PatternAllowance) -> Result<Self, InvalidValue> {
        if raw.len() > Self::MAX_LEN {
            return Err(invalid(format!("must be at most {} characters", Self::MAX_LEN)));
        }
        let limit = match allowance {
            PatternAllowance::Admin => 256 * 1024,
            PatternAllowance::Member => 128 * 1024,
        };
        regex::RegexBuilder::new(raw).size_limit(limit).dfa_size_limit(limit).build().map(Self).map_err(|error| {
            match error {
                regex::Error::CompiledTooBig(_) => invalid("is too complex; use a simpler pattern"),
                _ => invalid("is not a valid regular expression"),
            }
        })
    }

    pub fn is_match(&self, text: &str) -> bool {
        self.0.is_match(text)
    }
}

/// The free-form `extra` object of a profile: a JSON object of at most 4 KiB.
#[derive(Debug, Clone, PartialEq)]
pub struct Extra(serde_json::Map<String, serde_json::Value>);

impl Extra {
    pub const MAX_BYTES: usize = 4096;

    pub fn parse(value: serde_json::Value) -> Result<Self, InvalidValue> {
        let serde_json::Value::Object(object) = value else { return Err(invalid("must be a JSON object")) };
        let size = serde_json::to_vec(&object).map_or(usize::MAX, |bytes| bytes.len());
        if size > Self::MAX_BYTES {
            return Err(invalid(format!("must be at most {} bytes of JSON, not {size}", Self::MAX_BYTES)));
        }
        storable(&serde_json::Value::Object(object.clone()), 0)?;
        Ok(Self(object))
    }

    pub fn into_inner(self) -> serde_json::Map<String, serde_json::Value> {
        self.0
    }
}

/// The image formats an avatar may have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageType {
    Png,
    Jpeg,
    Webp,
    Gif,
}

impl ImageType {
    pub const ALL: [ImageType; 4] = [Self::Png, Self::Jpeg, Self::Webp, Self::Gif];

    pub fn parse(content_type: &str) -> Result<Self, InvalidValue> {
        let essence = content_type.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
        Self::ALL
            .into_iter()
            .find(|image| image.content_type() == essence)
            .ok_or_else(|| invalid("must be one of image/png, image/jpeg, image/webp or image/gif"))
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Self::Png => "image/png",
            Self::Jpeg => "image/jpeg",
            Self::Webp => "image/webp",
            Self::Gif => "image/gif",
        }
    }

    pub fn extension(self) -> &'static str {
        match self {
            Self::Png => "png",
            Self::Jpeg => "jpg",
            Self::Webp => "webp",
            Self::Gif => "gif",
        }
    }

    /// The widest and tallest avatar accepted, in pixels.
    pub const MAX_DIMENSION: usize = 8192;

    /// Whether `start`, the first bytes of a file, are the signature of this format followed
    /// by a header that parses, with dimensions from 1 to `MAX_DIMENSION`: a file that only
    /// begins with a signature (`GIF89a` then HTML) is refused.
    pub fn matches(self, start: &[u8]) -> bool {
        let signed = infer::get(start).is_some_and(|kind| kind.mime_type() == self.content_type());
        let in_range = |pixels: usize| (1..=Self::MAX_DIMENSION).contains(&pixels);
        signed && imagesize::blob_size(start).is_ok_and(|size| in_range(size.width) && in_range(size.height))
    }
}

/// What DynamoDB can store (so both backends accept the same `extra`): non-empty keys, at
/// most 32 levels of nesting, numbers within DynamoDB's range.
fn storable(value: &serde_json::Value, depth: usize) -> Result<(), InvalidValue> {
    use serde_json::Value;
    if depth > 31 {
        return Err(invalid("must nest at most 32 levels deep"));
    }
    match value {
        Value::Object(object) => object.iter().try_for_each(|(key, value)| match key.is_empty() {
            true => Err(invalid("must not have empty keys")),
            false => storable(value, depth + 1),
        }),
        Value::Array(items) => items.iter().try_for_each(|item| storable(item, depth + 1)),
        Value::Number(number) => {
            let magnitude = number.as_f64().map_or(f64::INFINITY, f64::abs);
            match magnitude == 0.0 || (1e-130..1e126).contains(&magnitude) {
                true => Ok(()),
                false => Err(invalid("numbers must lie within ±1e-130..1e126")),
            }
        }
        _ => Ok(()),
    }
}

/// The one identifier a login names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoginIdentifier {
    Email(Email),
    Username(Username),
    Phone(Phone),
}

impl LoginIdentifier {
    /// One string per account name, whatever case it was typed in.
    pub fn canonical(&self) -> String {
        match self {
            Self::Email(email) => format!("email:{}", email.as_str()),
            Self::Username(username) => format!("username:{}", username.canonical()),
            Self::Phone(phone) => format!("phone:{}", phone.as_str()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn email_is_trimmed_and_lower_cased() {
        assert_eq!(Email::parse("  Ada@Example.COM ").unwrap().as_str(), "ada@example.com");
    }

    #[test]
    fn malformed_emails_are_refused() {
        for raw in [
            "",
            "ada",
            "ada@",
            "@example.com",
            "ada@example",
            "a da@example.com",
            "ada@@example.com",
            "adä@example.com",
            "victim,attacker@example.com",
            "<victim>@example.com",
            "ada.@example.com",
            ".ada@example.com",
            "a..da@example.com",
            "\"ada\"@example.com",
        ] {
            assert!(Email::parse(raw).is_err(), "{raw:?} should be refused");
        }
        assert!(Email::parse(&format!("{}@example.com", "a".repeat(250))).is_err());
        assert!(Email::parse(&format!("{}@example.com", "a".repeat(65))).is_err());
        for raw in ["o'brien+tag@example.com", "a.b-c_d@sub.example.co", "x{y}|z~@example.org"] {
            assert!(Email::parse(raw).is_ok(), "{raw:?} should be accepted");
        }
    }

    #[test]
    fn phone_numbers_are_normalised_to_e164() {
        assert_eq!(Phone::parse("+1 (415) 555-0123").unwrap().as_str(), "+14155550123");
        for raw in ["4155550123", "+0123456789", "+1234", "+1415555012345678", "+1415abc0123"] {
            assert!(Phone::parse(raw).is_err(), "{raw:?} should be refused");
        }
    }

    #[test]
    fn usernames_are_unique_regardless_of_case() {
        assert_eq!(Username::parse("Ada_L").unwrap().canonical(), Username::parse("ada_l").unwrap().canonical());
        for raw in ["ab", "-ada", "ada lovelace", &"a".repeat(33), "ada@home"] {
            assert!(Username::parse(raw).is_err(), "{raw:?} should be refused");
        }
    }

    #[test]
    fn passwords_are_counted_in_characters_not_bytes() {
        let policy = PasswordPolicy::default();
        assert!(Password::new("short".into(), policy).is_err());
        assert!(Password::new("pässwörd".into(), policy).is_ok());
        assert!(Password::new("é".repeat(128), policy).is_ok());
        assert!(Password::new("é".repeat(129), policy).is_err());
    }

    #[test]
    fn patterns_must_compile_small_and_short() {
        let member = PatternAllowance::Member;
        assert!(Pattern::parse("^ada", member).unwrap().is_match("ada_l"));
        assert!(Pattern::parse("(", member).is_err());
        assert!(Pattern::parse(&"a".repeat(257), member).is_err());
        let too_big = r"\w{1000}\w{1000}";
        assert!(Pattern::parse(too_big, PatternAllowance::Admin).unwrap_err().0.starts_with("is too complex"));
        // Nested counted repetitions cost ~20 µs per entry scanned: members may not send them.
        let nested = "(?:(?:.{0,6}){0,6}){0,6}!";
        assert!(Pattern::parse(nested, member).unwrap_err().0.starts_with("is too complex"));
    }

    #[test]
    fn the_documented_case_insensitive_and_unicode_filters_work() {
        let member = PatternAllowance::Member;
        assert!(Pattern::parse("(?i)ada", member).unwrap().is_match("ADA_lovelace"));
        assert!(Pattern::parse(r"^\p{L}+$", member).unwrap().is_match("Zoë"));
        assert!(!Pattern::parse(r"^\p{L}+$", member).unwrap().is_match("zoe_1"));
        assert!(Pattern::parse(r"(?i)^émile", member).unwrap().is_match("ÉMILE"));
    }

    #[test]
    fn extra_is_an_object_of_at_most_4_kib() {
        assert!(Extra::parse(serde_json::json!({"theme": "dark"})).is_ok());
        assert!(Extra::parse(serde_json::json!(["not", "an", "object"])).is_err());
        assert!(Extra::parse(serde_json::json!({"blob": "x".repeat(4096)})).is_err());
        assert!(Extra::parse(serde_json::json!({"": 1})).is_err());
        assert!(Extra::parse(serde_json::json!({"x": 1e300})).is_err());
        assert!(Extra::parse(serde_json::json!({"x": {"y": [0, 1.5, -2]}})).is_ok());
        let deep = (0..40).fold(serde_json::json!(1), |inner, _| serde_json::json!({ "a": inner }));
        assert!(Extra::parse(deep).is_err());
    }

    #[test]
    fn image_types_are_told_by_their_first_bytes_not_their_name() {
        let png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x06\0\0\0\x1f\x15\xc4\x89";
        assert_eq!(ImageType::parse("image/PNG; charset=binary").unwrap(), ImageType::Png);
        assert!(ImageType::parse("image/svg+xml").is_err() && ImageType::parse("text/html").is_err());
        assert!(ImageType::Png.matches(png));
        assert!(!ImageType::Jpeg.matches(png));
        assert!(!ImageType::Png.matches(b"<html>not an image</html>"));
        assert!(ImageType::Gif.matches(b"GIF89a\x01\0\x01\0\0\0\0"));
        let jpeg =
            b"\xff\xd8\xff\xe0\0\x10JFIF\0\x01\x01\0\0\x01\0\x01\0\0\xff\xc0\0\x11\x08\0\x02\0\x03\x03\x01\x22\0";
        assert!(ImageType::Jpeg.matches(jpeg));
        let webp = b"RIFF\x24\0\0\0WEBPVP8L\x18\0\0\0\x2f\x01\0\0\0\x07\x10\x11\x11\x88\x88";
        assert!(ImageType::Webp.matches(webp));
    }

    #[test]
    fn an_image_signature_followed_by_html_is_not_an_image() {
        assert!(!ImageType::Gif.matches(b"GIF89a<html><script>alert(1)</script></html>"));
        assert!(!ImageType::Png.matches(b"\x89PNG\r\n\x1a\n<html><body>hi</body></html>"));
        // A header that parses but claims an absurd size is refused too.
        let huge = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\x01\0\0\0\0\0\x01\x08\x06\0\0\0\x1f\x15\xc4\x89";
        assert!(!ImageType::Png.matches(huge));
    }

    #[test]
    fn password_debug_never_shows_the_secret() {
        let password = Password::new("correct horse battery".into(), PasswordPolicy::default()).unwrap();
        assert!(!format!("{password:?}").contains("horse"));
    }
}
