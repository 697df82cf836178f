//! Third-party sign-in providers: verifying what a provider issued (an ID token against its
//! JWKS, an access token against its API) and the authorization-code flow with PKCE.
//!
//! This module speaks HTTPS to providers; it knows nothing of Latchkey's routes or storage.

mod jwks;
pub mod settings;

use std::collections::HashMap;
use std::sync::OnceLock;
use std::time::Duration;

use jsonwebtoken::{Algorithm, Validation};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use subtle::ConstantTimeEq;

use crate::domain::{Email, ProviderName};
use jwks::KeySet;
pub use settings::{ProviderKind, ProviderSettings};

/// What a client presents to sign in or link.
#[derive(Debug, Clone)]
pub enum ProviderToken {
    /// An OpenID Connect ID token, with the nonce the client put in its request, if any.
    IdToken { token: String, nonce: Option<String> },
    /// An OAuth access token (Facebook, 42).
    AccessToken(String),
}

/// A provider account, as the provider vouched for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedIdentity {
    pub subject: String,
    /// Only an address the provider says it verified.
    pub email: Option<Email>,
}

#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    #[error("no such sign-in provider")]
    NotConfigured,
    /// The token or code was refused; the message is safe to show.
    #[error("{0}")]
    Rejected(String),
    /// The request does not fit the provider (an access token to an OpenID provider, ...).
    #[error("{0}")]
    Unsupported(&'static str),
    #[error("the sign-in provider {provider} is unreachable or failing; retry shortly")]
    Unavailable { provider: String, detail: String },
}

/// The ID token algorithms accepted: the asymmetric ones providers use. `none` and the HMAC
/// family (whose key would be public) never verify.
const ALGORITHMS: [Algorithm; 8] = [
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::ES256,
    Algorithm::ES384,
];

/// Clock skew tolerated between a provider and this server.
const LEEWAY_SECONDS: u64 = 60;

pub struct Provider {
    pub settings: ProviderSettings,
    keys: Option<KeySet>,
}

/// Every configured provider and one HTTPS client, built once per process.
pub struct Providers {
    /// Built at the first call to a provider: functions that never call one pay nothing.
    http: OnceLock<reqwest::Client>,
    providers: HashMap<ProviderName, Provider>,
}

/// What the redirect flow sends to the provider's authorization endpoint.
pub struct AuthorizationRequest<'a> {
    pub callback_url: &'a str,
    pub state: &'a str,
    pub code_challenge: &'a str,
    pub nonce: &'a str,
}

impl Providers {
    pub fn new(settings: Vec<ProviderSettings>) -> Self {
        install_tls_backend();
        let providers = settings
            .into_iter()
            .map(|settings| {
                let keys = settings.jwks_uri.clone().map(KeySet::new);
                (settings.name.clone(), Provider { settings, keys })
            })
            .collect();
        Self { http: OnceLock::new(), providers }
    }

    fn http(&self) -> &reqwest::Client {
        self.http.get_or_init(|| {
            // A redirect callback makes up to three provider calls in turn (code exchange, keys,
            // user info): 3 x 6 s stays inside the function's 25 s and API Gateway's 30 s.
            reqwest::Client::builder()
                .connect_timeout(Duration::from_secs(3))
                .timeout(Duration::from_secs(6))
                .user_agent("latchkey")
                .build()
                .expect("an HTTPS client with the built-in roots always builds")
        })
    }

    pub fn get(&self, name: &ProviderName) -> Result<&Provider, ProviderError> {
        self.providers.get(name).ok_or(ProviderError::NotConfigured)
    }

    /// Checks a token a client obtained from `name` and answers whose it is.
    pub async fn verify(&self, name: &ProviderName, token: &ProviderToken) -> Result<VerifiedIdentity, ProviderError> {
        let provider = self.get(name)?;
        match (provider.settings.kind, token) {
            (ProviderKind::Oidc, ProviderToken::IdToken { token, nonce }) => {
                self.verify_id_token(provider, token, nonce.as_deref()).await
            }
            (ProviderKind::Oidc, ProviderToken::AccessToken(_)) => Err(ProviderError::Unsupported(
                // An access token does not say which app it was issued to (RFC 6749 10.16).
                "this provider signs in with an id_token",
            )),
            (ProviderKind::Facebook, ProviderToken::AccessToken(token)) => self.verify_facebook(provider, token).await,
            (ProviderKind::FortyTwo, ProviderToken::AccessToken(token)) => self.verify_42(provider, token).await,
            (_, ProviderToken::IdToken { .. }) => {
                Err(ProviderError::Unsupported("this provider signs in with an access_token"))
            }
        }
    }

    /// Where to send the browser to sign in at `name`.
    pub fn authorization_url(
        &self,
        name: &ProviderName,
        request: AuthorizationRequest<'_>,
    ) -> Result<String, ProviderError> {
        let provider = self.get(name)?;
        let settings = &provider.settings;
        let endpoint = settings.authorize_url.as_deref().ok_or(ProviderError::Unsupported(
            "this provider is configured for token sign-in only (no authorize_url)",
        ))?;
        let mut params = vec![
            ("response_type", "code"),
            ("client_id", settings.client_ids[0].as_str()),
            ("redirect_uri", request.callback_url),
            ("scope", settings.scopes.as_str()),
            ("state", request.state),
            ("code_challenge", request.code_challenge),
            ("code_challenge_method", "S256"),
        ];
        if settings.kind == ProviderKind::Oidc {
            params.push(("nonce", request.nonce));
        }
        let url = reqwest::Url::parse_with_params(endpoint, &params)
            .map_err(|_| ProviderError::Unsupported("the provider's authorize_url is not a URL"))?;
        Ok(url.into())
    }

    /// Exchanges an authorization code (with its PKCE verifier) and verifies what comes back.
    pub async fn exchange_code(
        &self,
        name: &ProviderName,
        code: &str,
        callback_url: &str,
        code_verifier: &str,
        nonce: &str,
    ) -> Result<VerifiedIdentity, ProviderError> {
        #[derive(Deserialize)]
        struct TokenResponse {
            access_token: Option<String>,
            id_token: Option<String>,
        }
        let provider = self.get(name)?;
        let settings = &provider.settings;
        let endpoint = settings
            .token_url
            .as_deref()
            .ok_or(ProviderError::Unsupported("this provider is configured for token sign-in only (no token_url)"))?;
        let mut form = vec![
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", callback_url),
            ("client_id", settings.client_ids[0].as_str()),
            ("code_verifier", code_verifier),
        ];
        if let Some(secret) = &settings.client_secret {
            form.push(("client_secret", secret));
        }
        let request = self.http().post(endpoint).form(&form);
        let tokens: TokenResponse = self.call(provider, request, "the provider refused the authorization code").await?;
        let token = match (settings.kind, tokens.id_token, tokens.access_token) {
            (ProviderKind::Oidc, Some(id_token), _) => {
                ProviderToken::IdToken { token: id_token, nonce: Some(nonce.to_owned()) }
            }
            (ProviderKind::Facebook | ProviderKind::FortyTwo, _, Some(access_token)) => {
                ProviderToken::AccessToken(access_token)
            }
            _ => return Err(ProviderError::Rejected("the provider answered the code exchange without a token".into())),
        };
        self.verify(name, &token).await
    }

    async fn verify_id_token(
        &self,
        provider: &Provider,
        token: &str,
        nonce: Option<&str>,
    ) -> Result<VerifiedIdentity, ProviderError> {
        #[derive(Deserialize)]
        struct IdClaims {
            sub: String,
            iat: i64,
            nonce: Option<String>,
            email: Option<String>,
            /// A boolean, or (Apple) the string "true".
            email_verified: Option<serde_json::Value>,
        }
        let rejected = |message: &str| ProviderError::Rejected(message.to_owned());
        let header = jsonwebtoken::decode_header(token).map_err(|_| rejected("the ID token is malformed"))?;
        if !ALGORITHMS.contains(&header.alg) {
            return Err(rejected("the ID token's algorithm is not accepted"));
        }
        let kid = header.kid.as_deref().ok_or_else(|| rejected("the ID token names no signing key (kid)"))?;
        let keys = provider.keys.as_ref().ok_or(ProviderError::Unsupported("this provider has no jwks_uri"))?;
        let key = keys.find(self.http(), &provider.settings.name, kid).await?;
        if key.algorithm.is_some_and(|algorithm| algorithm != header.alg) {
            return Err(rejected("the ID token's algorithm does not match its key"));
        }
        let mut validation = Validation::new(header.alg);
        validation.set_issuer(&provider.settings.issuers);
        validation.set_audience(&provider.settings.client_ids);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.leeway = LEEWAY_SECONDS;
        let claims = jsonwebtoken::decode::<IdClaims>(token, &key.decoding, &validation)
            .map_err(|error| {
                use jsonwebtoken::errors::ErrorKind;
                rejected(match error.kind() {
                    ErrorKind::ExpiredSignature => "the ID token has expired",
                    ErrorKind::InvalidAudience => "the ID token was issued to another app (aud)",
                    ErrorKind::InvalidIssuer => "the ID token was not issued by this provider (iss)",
                    ErrorKind::InvalidSignature => "the ID token's signature does not verify",
                    ErrorKind::ImmatureSignature => "the ID token is not valid yet",
                    _ => "the ID token is invalid",
                })
            })?
            .claims;
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        if claims.iat > now + LEEWAY_SECONDS as i64 {
            return Err(rejected("the ID token was issued in the future (iat)"));
        }
        if let Some(expected) = nonce {
            let matches =
                claims.nonce.as_deref().is_some_and(|got| bool::from(got.as_bytes().ct_eq(expected.as_bytes())));
            if !matches {
                return Err(rejected("the ID token's nonce does not match"));
            }
        }
        let verified = matches!(claims.email_verified, Some(serde_json::Value::Bool(true)))
            || matches!(claims.email_verified.as_ref().and_then(|v| v.as_str()), Some("true"));
        let email = claims.email.filter(|_| verified).and_then(|email| Email::parse(&email).ok());
        Ok(VerifiedIdentity { subject: claims.sub, email })
    }

    /// Facebook: `debug_token` with the app token says whether the token is valid and which
    /// app it was issued to; `/me` then gives the account.
    async fn verify_facebook(&self, provider: &Provider, token: &str) -> Result<VerifiedIdentity, ProviderError> {
        #[derive(Deserialize)]
        struct Debug {
            data: DebugData,
        }
        #[derive(Deserialize)]
        struct DebugData {
            app_id: Option<String>,
            is_valid: bool,
            user_id: Option<String>,
        }
        #[derive(Deserialize)]
        struct Me {
            id: String,
            email: Option<String>,
        }
        let settings = &provider.settings;
        let api = settings.api_url.as_deref().unwrap_or_default();
        let secret = settings.client_secret.as_deref().unwrap_or_default();
        let app_token = format!("{}|{secret}", settings.client_ids[0]);
        let request = self
            .http()
            .get(format!("{api}/debug_token"))
            .query(&[("input_token", token), ("access_token", &app_token)]);
        let debug: Debug = self.call(provider, request, "Facebook refused the access token").await?;
        let for_us = debug.data.app_id.as_ref().is_some_and(|app| settings.client_ids.contains(app));
        if !debug.data.is_valid || !for_us {
            return Err(ProviderError::Rejected(
                "the access token is invalid, expired or issued to another app".into(),
            ));
        }
        let request = self.http().get(format!("{api}/me")).query(&[("fields", "id,email")]).bearer_auth(token);
        let me: Me = self.call(provider, request, "Facebook refused the access token").await?;
        if debug.data.user_id.as_deref() != Some(me.id.as_str()) {
            return Err(ProviderError::Rejected("the access token does not belong to the account it names".into()));
        }
        // Graph API only returns confirmed addresses.
        Ok(VerifiedIdentity { subject: me.id, email: me.email.and_then(|email| Email::parse(&email).ok()) })
    }

    /// 42: `/oauth/token/info` says which application the token was issued to; `/v2/me` gives
    /// the account.
    async fn verify_42(&self, provider: &Provider, token: &str) -> Result<VerifiedIdentity, ProviderError> {
        #[derive(Deserialize)]
        struct TokenInfo {
            resource_owner_id: Option<u64>,
            application: Option<Application>,
        }
        #[derive(Deserialize)]
        struct Application {
            uid: String,
        }
        #[derive(Deserialize)]
        struct Me {
            id: u64,
            email: Option<String>,
        }
        let settings = &provider.settings;
        let api = settings.api_url.as_deref().unwrap_or_default();
        let request = self.http().get(format!("{api}/oauth/token/info")).bearer_auth(token);
        let info: TokenInfo = self.call(provider, request, "42 refused the access token").await?;
        let for_us = info.application.as_ref().is_some_and(|app| settings.client_ids.contains(&app.uid));
        if !for_us {
            return Err(ProviderError::Rejected("the access token was issued to another app".into()));
        }
        let request = self.http().get(format!("{api}/v2/me")).bearer_auth(token);
        let me: Me = self.call(provider, request, "42 refused the access token").await?;
        if info.resource_owner_id != Some(me.id) {
            return Err(ProviderError::Rejected("the access token does not belong to the account it names".into()));
        }
        // 42 accounts carry the school's address, which 42 manages.
        Ok(VerifiedIdentity { subject: me.id.to_string(), email: me.email.and_then(|email| Email::parse(&email).ok()) })
    }

    /// Sends a request to the provider: a 4xx is the provider refusing (`refused`), anything
    /// else that is not a JSON success is the provider being unavailable.
    async fn call<T: DeserializeOwned>(
        &self,
        provider: &Provider,
        request: reqwest::RequestBuilder,
        refused: &str,
    ) -> Result<T, ProviderError> {
        let unavailable =
            |detail: String| ProviderError::Unavailable { provider: provider.settings.name.to_string(), detail };
        let response = request.send().await.map_err(|error| unavailable(without_url(error)))?;
        let status = response.status();
        if status.is_client_error() {
            return Err(ProviderError::Rejected(refused.to_owned()));
        }
        if !status.is_success() {
            return Err(unavailable(format!("answered {status}")));
        }
        response.json().await.map_err(|error| unavailable(format!("answered unreadable JSON: {}", without_url(error))))
    }
}

/// Makes aws-lc-rs (which the AWS SDK already brings) the process's TLS backend. reqwest is
/// built without a backend of its own, so every process that makes a reqwest client calls
/// this first; it is cheap and idempotent.
pub fn install_tls_backend() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
}

/// A reqwest error's message without its URL, whose query may carry a token.
fn without_url(error: reqwest::Error) -> String {
    error.without_url().to_string()
}
