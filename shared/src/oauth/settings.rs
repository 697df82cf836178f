//! Which sign-in providers a deployment offers, read from `LATCHKEY_OAUTH_PROVIDERS` (JSON) and
//! the client secrets (JSON, from the environment locally and Secrets Manager on Lambda).
//!
//! Google, Apple, Kakao, Facebook and 42 are known by name and need only `client_ids`; any other
//! name is an OpenID Connect provider described by `issuer` and `jwks_uri`. Every endpoint can be
//! overridden, which is how the tests point a provider at loopback.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::domain::ProviderName;

/// How a provider's tokens are verified.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProviderKind {
    /// ID tokens, verified against the provider's JWKS.
    Oidc,
    /// Access tokens, verified with Graph API's `debug_token` and the app token.
    Facebook,
    /// Access tokens, verified with the 42 API's `/oauth/token/info`.
    #[serde(rename = "42")]
    FortyTwo,
}

#[derive(Clone, PartialEq, Eq)]
pub struct ProviderSettings {
    pub name: ProviderName,
    pub kind: ProviderKind,
    /// The OAuth client ids of the apps (web, iOS, Android) whose tokens are accepted: an ID
    /// token's `aud` must be one of them. The first one runs the redirect flow.
    pub client_ids: Vec<String>,
    /// Accepted `iss` values of ID tokens (Google uses two spellings).
    pub issuers: Vec<String>,
    pub jwks_uri: Option<String>,
    pub authorize_url: Option<String>,
    pub token_url: Option<String>,
    /// The base URL of the provider's API (Facebook's Graph API, the 42 API).
    pub api_url: Option<String>,
    pub scopes: String,
    /// Needed for the redirect flow's code exchange and Facebook's app token.
    pub client_secret: Option<String>,
}

impl std::fmt::Debug for ProviderSettings {
    /// Everything but the secret, which must not reach a log.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProviderSettings")
            .field("name", &self.name)
            .field("kind", &self.kind)
            .field("client_ids", &self.client_ids)
            .field("issuers", &self.issuers)
            .field("client_secret", &self.client_secret.as_ref().map(|_| "<redacted>"))
            .finish_non_exhaustive()
    }
}

/// One provider's entry in `LATCHKEY_OAUTH_PROVIDERS`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    kind: Option<ProviderKind>,
    client_ids: Vec<String>,
    issuer: Option<String>,
    jwks_uri: Option<String>,
    authorize_url: Option<String>,
    token_url: Option<String>,
    api_url: Option<String>,
    scopes: Option<String>,
}

#[derive(Debug, thiserror::Error)]
#[error("LATCHKEY_OAUTH_PROVIDERS: {0}")]
pub struct SettingsError(pub String);

/// What a known provider is unless the entry says otherwise.
struct Defaults {
    kind: ProviderKind,
    issuers: &'static [&'static str],
    jwks_uri: Option<&'static str>,
    authorize_url: &'static str,
    token_url: &'static str,
    api_url: Option<&'static str>,
    scopes: &'static str,
}

fn defaults(name: &str) -> Option<Defaults> {
    Some(match name {
        "google" => Defaults {
            kind: ProviderKind::Oidc,
            issuers: &["https://accounts.google.com", "accounts.google.com"],
            jwks_uri: Some("https://www.googleapis.com/oauth2/v3/certs"),
            authorize_url: "https://accounts.google.com/o/oauth2/v2/auth",
            token_url: "https://oauth2.googleapis.com/token",
            api_url: None,
            scopes: "openid email",
        },
        "apple" => Defaults {
            kind: ProviderKind::Oidc,
            issuers: &["https://appleid.apple.com"],
            jwks_uri: Some("https://appleid.apple.com/auth/keys"),
            authorize_url: "https://appleid.apple.com/auth/authorize",
            token_url: "https://appleid.apple.com/auth/token",
            api_url: None,
            // Asking Apple for `email` or `name` forces a form POST to the callback; the redirect
            // flow asks for the ID token only (apps get the email with Sign in with Apple JS/iOS).
            scopes: "openid",
        },
        "kakao" => Defaults {
            kind: ProviderKind::Oidc,
            issuers: &["https://kauth.kakao.com"],
            jwks_uri: Some("https://kauth.kakao.com/.well-known/jwks.json"),
            authorize_url: "https://kauth.kakao.com/oauth/authorize",
            token_url: "https://kauth.kakao.com/oauth/token",
            api_url: None,
            scopes: "openid account_email",
        },
        "facebook" => Defaults {
            kind: ProviderKind::Facebook,
            issuers: &[],
            jwks_uri: None,
            authorize_url: "https://www.facebook.com/v21.0/dialog/oauth",
            token_url: "https://graph.facebook.com/v21.0/oauth/access_token",
            api_url: Some("https://graph.facebook.com/v21.0"),
            scopes: "email public_profile",
        },
        "42" => Defaults {
            kind: ProviderKind::FortyTwo,
            issuers: &[],
            jwks_uri: None,
            authorize_url: "https://api.intra.42.fr/oauth/authorize",
            token_url: "https://api.intra.42.fr/oauth/token",
            api_url: Some("https://api.intra.42.fr"),
            scopes: "public",
        },
        _ => return None,
    })
}

/// Parses the provider list and attaches each provider's secret. `providers_json` unset means
/// no provider is offered.
pub fn parse(providers_json: Option<&str>, secrets_json: Option<&str>) -> Result<Vec<ProviderSettings>, SettingsError> {
    let Some(providers_json) = providers_json.filter(|json| !json.trim().is_empty()) else { return Ok(Vec::new()) };
    let entries: BTreeMap<String, Entry> =
        serde_json::from_str(providers_json).map_err(|error| SettingsError(error.to_string()))?;
    let mut secrets: BTreeMap<String, String> = match secrets_json.filter(|json| !json.trim().is_empty()) {
        // The message of a secrets parse error could quote a secret: it is not passed on.
        Some(json) => serde_json::from_str(json)
            .map_err(|_| SettingsError("the client secrets must be a JSON object of provider name to secret".into()))?,
        None => BTreeMap::new(),
    };
    let mut providers = Vec::new();
    for (raw_name, entry) in entries {
        let problem = |problem: &str| SettingsError(format!("{raw_name}: {problem}"));
        let name = ProviderName::parse(&raw_name).map_err(|error| problem(&format!("the name {error}")))?;
        // `POST /v1/auth/oauth/exchange` is a route of its own.
        if raw_name == "exchange" {
            return Err(problem("this name is reserved"));
        }
        if entry.client_ids.is_empty() || entry.client_ids.iter().any(|id| id.trim().is_empty()) {
            return Err(problem("client_ids must list at least one client id"));
        }
        let known = defaults(&raw_name);
        let kind = entry.kind.or(known.as_ref().map(|known| known.kind)).unwrap_or(ProviderKind::Oidc);
        let issuers = match (&entry.issuer, &known) {
            (Some(issuer), _) => vec![issuer.clone()],
            (None, Some(known)) => known.issuers.iter().map(|issuer| issuer.to_string()).collect(),
            (None, None) => Vec::new(),
        };
        let jwks_uri = entry.jwks_uri.or(known.as_ref().and_then(|known| known.jwks_uri.map(String::from)));
        if kind == ProviderKind::Oidc && (issuers.is_empty() || jwks_uri.is_none()) {
            return Err(problem("an OpenID Connect provider needs issuer and jwks_uri"));
        }
        let api_url = entry.api_url.or(known.as_ref().and_then(|known| known.api_url.map(String::from)));
        if kind != ProviderKind::Oidc && api_url.is_none() {
            return Err(problem("api_url is required"));
        }
        let client_secret = secrets.remove(&raw_name);
        if kind == ProviderKind::Facebook && client_secret.is_none() {
            return Err(problem("Facebook needs its app secret (to verify tokens with debug_token)"));
        }
        // debug_token with one app's token inspects only that app's tokens.
        if kind == ProviderKind::Facebook && entry.client_ids.len() != 1 {
            return Err(problem("Facebook takes exactly one App ID in client_ids"));
        }
        providers.push(ProviderSettings {
            name,
            kind,
            client_ids: entry.client_ids,
            issuers,
            jwks_uri,
            authorize_url: entry.authorize_url.or(known.as_ref().map(|known| known.authorize_url.to_owned())),
            token_url: entry.token_url.or(known.as_ref().map(|known| known.token_url.to_owned())),
            api_url,
            scopes: entry
                .scopes
                .or(known.as_ref().map(|known| known.scopes.to_owned()))
                .unwrap_or("openid email".into()),
            client_secret,
        });
    }
    if let Some(unknown) = secrets.keys().next() {
        return Err(SettingsError(format!(
            "a client secret is given for {unknown}, which is not a configured provider"
        )));
    }
    Ok(providers)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_providers_need_only_their_client_ids() {
        let providers = parse(Some(r#"{"google": {"client_ids": ["web", "ios"]}}"#), None).unwrap();
        let google = &providers[0];
        assert_eq!((google.name.as_str(), google.kind), ("google", ProviderKind::Oidc));
        assert_eq!(google.issuers, ["https://accounts.google.com", "accounts.google.com"]);
        assert_eq!(google.client_ids, ["web", "ios"]);
        assert!(google.jwks_uri.as_deref().unwrap().starts_with("https://"));
    }

    #[test]
    fn any_other_name_is_an_openid_provider_that_must_say_where_its_keys_are() {
        let error = parse(Some(r#"{"acme": {"client_ids": ["a"], "issuer": "https://id.acme.test"}}"#), None);
        assert!(error.unwrap_err().to_string().contains("jwks_uri"));
        let json = r#"{"acme": {"client_ids": ["a"], "issuer": "https://id.acme.test", "jwks_uri": "https://id.acme.test/keys"}}"#;
        assert_eq!(parse(Some(json), None).unwrap()[0].kind, ProviderKind::Oidc);
    }

    #[test]
    fn facebook_needs_its_secret_and_secrets_must_name_providers() {
        let facebook = r#"{"facebook": {"client_ids": ["123"]}}"#;
        assert!(parse(Some(facebook), None).is_err());
        assert_eq!(
            parse(Some(facebook), Some(r#"{"facebook": "s3cret"}"#)).unwrap()[0].client_secret.as_deref(),
            Some("s3cret")
        );
        let two_apps = r#"{"facebook": {"client_ids": ["123", "456"]}}"#;
        assert!(parse(Some(two_apps), Some(r#"{"facebook": "s"}"#)).is_err(), "debug_token inspects one app's tokens");
        let stray = parse(Some(facebook), Some(r#"{"facebook": "s", "github": "t"}"#)).unwrap_err();
        assert!(stray.to_string().contains("github"));
    }

    #[test]
    fn a_malformed_secret_list_is_refused_without_quoting_it() {
        let error = parse(Some(r#"{"42": {"client_ids": ["u"]}}"#), Some("{\"42\": hunter2")).unwrap_err();
        assert!(!error.to_string().contains("hunter2"));
    }

    #[test]
    fn bad_names_empty_client_ids_and_unknown_fields_are_refused() {
        for json in [
            r#"{"Google": {"client_ids": ["a"]}}"#,
            r#"{"google": {"client_ids": []}}"#,
            r#"{"google": {"client_ids": ["a"], "clientid": "b"}}"#,
            r#"{"exchange": {"client_ids": ["a"], "issuer": "https://i.test", "jwks_uri": "https://i.test/k"}}"#,
        ] {
            assert!(parse(Some(json), None).is_err(), "{json}");
        }
    }
}
