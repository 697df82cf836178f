//! Settings, read once per process from the environment. Every name is documented in the
//! README's configuration table.

use crate::crypto::passwords::Argon2Settings;
use crate::domain::PasswordPolicy;

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
        Ok(Self {
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
    fn a_malformed_number_names_the_variable() {
        let env = HashMap::from([("LATCHKEY_ACCESS_TOKEN_TTL_SECONDS", "soon")]);
        let error = Config::from_lookup(|name| env.get(name).map(|v| v.to_string())).unwrap_err();
        assert_eq!(error.name, "LATCHKEY_ACCESS_TOKEN_TTL_SECONDS");
    }
}
