//! Settings, read once per process from the environment. Every name is documented in the
//! README's configuration table.

use crate::crypto::passwords::Argon2Settings;
use crate::domain::{Email, PasswordPolicy};
use crate::oauth::settings::{self as oauth_settings, ProviderSettings};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// `iss` of access tokens.
    pub issuer: String,
    /// `aud` of access tokens.
    pub audience: String,
    pub access_token_ttl_seconds: i64,
    /// The absolute lifetime of a login; rotation does not extend it.
    pub refresh_token_ttl_seconds: i64,
    pub argon2: Argon2Settings,
    pub password_policy: PasswordPolicy,
    /// The name in email subjects, bodies and the TOTP issuer.
    pub product_name: String,
    /// The address mail comes from (on AWS, an identity verified in SES).
    pub mail_from: String,
    /// The base URL of the app that opens reset and verification links.
    pub app_url: String,
    /// Refuse sign-in until the email address is verified.
    pub require_verified_email: bool,
    /// Ask every account for a second factor at sign-in: an email code (or TOTP, if it has it).
    pub require_email_codes: bool,
    pub lockout: LockoutPolicy,
    /// The least time, in milliseconds, that email-code and forgot-password requests take,
    /// so that sending mail to a real account does not answer slower than an unknown one.
    pub uniform_response_ms: u64,
    /// How long one process reuses the user directory it read for `GET /v1/users`.
    pub directory_cache_seconds: u64,
    /// The most friends an account may have.
    pub max_friends: u64,
    /// The largest avatar accepted, in bytes.
    pub avatar_max_bytes: u64,
    /// The most chat messages one connection may send in 10 seconds.
    pub chat_rate_limit: u32,
    /// Third-party sign-in providers (`LATCHKEY_OAUTH_PROVIDERS` and their client secrets).
    pub oauth_providers: Vec<ProviderSettings>,
    /// The app URLs the redirect sign-in may return to (exact match).
    pub oauth_redirect_uris: Vec<String>,
    /// Where clients reach this API (the base of the provider callback URL). Unset on Lambda,
    /// the request's host is used.
    pub public_url: Option<String>,
    /// Lambda: address the avatar bucket in the path, for S3-compatible servers whose bucket
    /// subdomains do not resolve (moto on loopback).
    pub s3_force_path_style: bool,
}

/// Brute-force limits: failures beyond `free_failures` within an hour lock the subject for a
/// delay that doubles with each further failure (1 s, 2 s, 4 s, ... at most 15 minutes), and
/// no subject gets more than `max_failures_per_hour`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LockoutPolicy {
    pub account_free_failures: u32,
    pub account_max_failures_per_hour: u32,
    pub ip_free_failures: u32,
    pub ip_max_failures_per_hour: u32,
}

impl Default for LockoutPolicy {
    fn default() -> Self {
        Self {
            account_free_failures: 5,
            account_max_failures_per_hour: 100,
            ip_free_failures: 20,
            ip_max_failures_per_hour: 1000,
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("configuration: {name} {problem}")]
pub struct ConfigError {
    pub name: &'static str,
    pub problem: String,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            issuer: "latchkey".into(),
            audience: "latchkey".into(),
            access_token_ttl_seconds: 900,
            refresh_token_ttl_seconds: 30 * 24 * 3600,
            argon2: Argon2Settings::default(),
            password_policy: PasswordPolicy::default(),
            product_name: "Latchkey".into(),
            mail_from: "no-reply@latchkey.localhost".into(),
            app_url: "http://localhost:3000".into(),
            require_verified_email: false,
            require_email_codes: false,
            lockout: LockoutPolicy::default(),
            uniform_response_ms: 400,
            directory_cache_seconds: 10,
            max_friends: 1000,
            avatar_max_bytes: 5 * 1024 * 1024,
            chat_rate_limit: 20,
            oauth_providers: Vec::new(),
            oauth_redirect_uris: vec!["http://localhost:3000/oauth/callback".into()],
            public_url: None,
            s3_force_path_style: false,
        }
    }
}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads settings through `lookup`; unset names keep their defaults.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let defaults = Self::default();
        let number = |name: &'static str, default: i64, min: i64| -> Result<i64, ConfigError> {
            match lookup(name) {
                None => Ok(default),
                Some(raw) => match raw.trim().parse::<i64>() {
                    Ok(value) if value >= min => Ok(value),
                    _ => Err(ConfigError {
                        name,
                        problem: format!("must be a whole number of at least {min}, not {raw:?}"),
                    }),
                },
            }
        };
        let small = |name, default: u32, min| number(name, i64::from(default), min).map(|v| v as u32);
        let flag = |name: &'static str, default: bool| -> Result<bool, ConfigError> {
            match lookup(name).as_deref().map(str::trim) {
                None => Ok(default),
                Some("true" | "1" | "yes") => Ok(true),
                Some("false" | "0" | "no") => Ok(false),
                Some(raw) => Err(ConfigError { name, problem: format!("must be true or false, not {raw:?}") }),
            }
        };
        let product_name = lookup("LATCHKEY_PRODUCT_NAME").unwrap_or(defaults.product_name);
        // It is the display name of every message's sender, which SES takes as plain ASCII.
        if product_name.is_empty() || !product_name.bytes().all(|b| (b' '..=b'~').contains(&b)) {
            return Err(ConfigError {
                name: "LATCHKEY_PRODUCT_NAME",
                problem: format!("must be printable ASCII, not {product_name:?}"),
            });
        }
        let mail_from = lookup("LATCHKEY_MAIL_FROM").unwrap_or(defaults.mail_from);
        if Email::parse(&mail_from).is_err() {
            return Err(ConfigError {
                name: "LATCHKEY_MAIL_FROM",
                problem: format!("must be an email address, not {mail_from:?}"),
            });
        }
        let oauth_providers = oauth_settings::parse(
            lookup("LATCHKEY_OAUTH_PROVIDERS").as_deref(),
            lookup("LATCHKEY_OAUTH_CLIENT_SECRETS").as_deref(),
        )
        .map_err(|error| ConfigError { name: "LATCHKEY_OAUTH_PROVIDERS", problem: error.0 })?;
        let app_url = lookup("LATCHKEY_APP_URL").unwrap_or(defaults.app_url);
        let oauth_redirect_uris = match lookup("LATCHKEY_OAUTH_REDIRECT_URIS") {
            Some(list) => list.split(',').map(str::trim).filter(|uri| !uri.is_empty()).map(String::from).collect(),
            None => vec![format!("{}/oauth/callback", app_url.trim_end_matches('/'))],
        };
        if let Some(bad) = oauth_redirect_uris.iter().find(|uri| reqwest::Url::parse(uri).is_err()) {
            return Err(ConfigError {
                name: "LATCHKEY_OAUTH_REDIRECT_URIS",
                problem: format!("must list absolute URLs, not {bad:?}"),
            });
        }
        Ok(Self {
            oauth_providers,
            oauth_redirect_uris,
            public_url: lookup("LATCHKEY_PUBLIC_URL").map(|url| url.trim_end_matches('/').to_owned()),
            issuer: lookup("LATCHKEY_ISSUER").unwrap_or(defaults.issuer),
            audience: lookup("LATCHKEY_AUDIENCE").unwrap_or(defaults.audience),
            access_token_ttl_seconds: number(
                "LATCHKEY_ACCESS_TOKEN_TTL_SECONDS",
                defaults.access_token_ttl_seconds,
                60,
            )?,
            refresh_token_ttl_seconds: number(
                "LATCHKEY_REFRESH_TOKEN_TTL_SECONDS",
                defaults.refresh_token_ttl_seconds,
                300,
            )?,
            argon2: Argon2Settings {
                memory_kib: small("LATCHKEY_ARGON2_MEMORY_KIB", defaults.argon2.memory_kib, 8)?,
                iterations: small("LATCHKEY_ARGON2_ITERATIONS", defaults.argon2.iterations, 1)?,
                parallelism: small("LATCHKEY_ARGON2_PARALLELISM", defaults.argon2.parallelism, 1)?,
            },
            password_policy: PasswordPolicy {
                min_chars: number("LATCHKEY_PASSWORD_MIN_LENGTH", defaults.password_policy.min_chars as i64, 1)?
                    as usize,
            },
            product_name,
            mail_from,
            app_url,
            require_verified_email: flag("LATCHKEY_REQUIRE_VERIFIED_EMAIL", defaults.require_verified_email)?,
            require_email_codes: flag("LATCHKEY_REQUIRE_EMAIL_CODES", defaults.require_email_codes)?,
            lockout: LockoutPolicy {
                account_free_failures: small(
                    "LATCHKEY_LOCKOUT_FREE_FAILURES",
                    defaults.lockout.account_free_failures,
                    1,
                )?,
                account_max_failures_per_hour: small(
                    "LATCHKEY_LOCKOUT_MAX_FAILURES_PER_HOUR",
                    defaults.lockout.account_max_failures_per_hour,
                    1,
                )?,
                ip_free_failures: small("LATCHKEY_LOCKOUT_IP_FREE_FAILURES", defaults.lockout.ip_free_failures, 1)?,
                ip_max_failures_per_hour: small(
                    "LATCHKEY_LOCKOUT_IP_MAX_FAILURES_PER_HOUR",
                    defaults.lockout.ip_max_failures_per_hour,
                    1,
                )?,
            },
            uniform_response_ms: number("LATCHKEY_UNIFORM_RESPONSE_MS", defaults.uniform_response_ms as i64, 0)? as u64,
            directory_cache_seconds: number(
                "LATCHKEY_DIRECTORY_CACHE_SECONDS",
                defaults.directory_cache_seconds as i64,
                0,
            )? as u64,
            max_friends: number("LATCHKEY_MAX_FRIENDS", defaults.max_friends as i64, 1)? as u64,
            avatar_max_bytes: number("LATCHKEY_AVATAR_MAX_BYTES", defaults.avatar_max_bytes as i64, 1024)? as u64,
            chat_rate_limit: small("LATCHKEY_CHAT_RATE_LIMIT", defaults.chat_rate_limit, 1)?,
            s3_force_path_style: flag("LATCHKEY_S3_FORCE_PATH_STYLE", defaults.s3_force_path_style)?,
        })
    }
}

/// A variable that must be set (on Lambda, by the template).
pub fn required(name: &'static str) -> Result<String, ConfigError> {
    std::env::var(name).map_err(|_| ConfigError { name, problem: "must be set".into() })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn unset_variables_keep_the_documented_defaults() {
        assert_eq!(Config::from_lookup(|_| None).unwrap(), Config::default());
        assert_eq!(Config::default().argon2, Argon2Settings { memory_kib: 19_456, iterations: 2, parallelism: 1 });
    }

    #[test]
    fn flags_and_the_sender_address_are_checked() {
        let env = HashMap::from([("LATCHKEY_REQUIRE_EMAIL_CODES", "yes"), ("LATCHKEY_MAIL_FROM", "auth@acme.test")]);
        let config = Config::from_lookup(|name| env.get(name).map(|v| v.to_string())).unwrap();
        assert!(config.require_email_codes && !config.require_verified_email);
        assert_eq!(config.mail_from, "auth@acme.test");
        for (name, bad) in [("LATCHKEY_REQUIRE_VERIFIED_EMAIL", "sometimes"), ("LATCHKEY_MAIL_FROM", "not an address")]
        {
            let error = Config::from_lookup(|asked| (asked == name).then(|| bad.to_string())).unwrap_err();
            assert_eq!(error.name, name);
        }
    }

    #[test]
    fn a_malformed_number_names_the_variable() {
        let env = HashMap::from([("LATCHKEY_ACCESS_TOKEN_TTL_SECONDS", "soon")]);
        let error = Config::from_lookup(|name| env.get(name).map(|v| v.to_string())).unwrap_err();
        assert_eq!(error.name, "LATCHKEY_ACCESS_TOKEN_TTL_SECONDS");
    }
}
