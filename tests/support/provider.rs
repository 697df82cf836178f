//! A sign-in provider on loopback, speaking real HTTP: a JWKS endpoint, an authorization
//! endpoint that approves at once, a token endpoint that checks PKCE, and the Facebook and 42
//! token-inspection APIs. It signs ID tokens (ES256) with keys it generates.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use aws_lc_rs::digest::{SHA256, digest};
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use axum::Router;
use axum::extract::{Form, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::Deserialize;
use serde_json::{Value, json};

/// The client id the test deployment is registered with.
pub const CLIENT_ID: &str = "latchkey-test-client";
pub const CLIENT_SECRET: &str = "provider-client-secret";

/// A signing key the provider may or may not publish.
pub struct SigningKey {
    pub kid: String,
    pkcs8: Vec<u8>,
    jwk: Value,
}

impl SigningKey {
    pub fn generate(kid: &str) -> Self {
        let document = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &SystemRandom::new()).unwrap();
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, document.as_ref()).unwrap();
        // An uncompressed point: 0x04, then x and y.
        let point = pair.public_key().as_ref();
        let jwk = json!({
            "kty": "EC", "crv": "P-256", "use": "sig", "alg": "ES256", "kid": kid,
            "x": URL_SAFE_NO_PAD.encode(&point[1..33]), "y": URL_SAFE_NO_PAD.encode(&point[33..65]),
        });
        Self { kid: kid.to_owned(), pkcs8: document.as_ref().to_vec(), jwk }
    }

    pub fn sign(&self, claims: &Value) -> String {
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, claims, &EncodingKey::from_ec_der(&self.pkcs8)).unwrap()
    }
}

/// Who the provider signs in when the browser reaches its authorization endpoint.
#[derive(Clone)]
pub struct ProviderUser {
    pub subject: String,
    pub email: Option<String>,
}

struct IssuedCode {
    user: ProviderUser,
    code_challenge: String,
    nonce: Option<String>,
    redirect_uri: String,
}

#[derive(Default)]
struct Shared {
    published: Vec<Value>,
    next_user: Option<ProviderUser>,
    codes: HashMap<String, IssuedCode>,
    /// Opaque access tokens: the user and the app they were issued to.
    access_tokens: HashMap<String, (ProviderUser, String)>,
    /// The JWKS endpoint answers 500 (the provider is having a bad day).
    jwks_failing: bool,
}

pub struct TestProvider {
    pub base: String,
    pub key: SigningKey,
    shared: Arc<Mutex<Shared>>,
    jwks_fetches: Arc<AtomicUsize>,
    server: tokio::task::JoinHandle<()>,
}

#[derive(Clone)]
struct AppState {
    shared: Arc<Mutex<Shared>>,
    jwks_fetches: Arc<AtomicUsize>,
    issuer: String,
    key: Arc<SigningKey>,
}

impl TestProvider {
    pub async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind loopback");
        let base = format!("http://{}", listener.local_addr().unwrap());
        let key = SigningKey::generate("key-1");
        let shared = Arc::new(Mutex::new(Shared { published: vec![key.jwk.clone()], ..Shared::default() }));
        let jwks_fetches = Arc::new(AtomicUsize::new(0));
        let state = AppState {
            shared: Arc::clone(&shared),
            jwks_fetches: Arc::clone(&jwks_fetches),
            issuer: base.clone(),
            key: Arc::new(SigningKey { kid: key.kid.clone(), pkcs8: key.pkcs8.clone(), jwk: key.jwk.clone() }),
        };
        let app = Router::new()
            .route("/jwks", get(jwks))
            .route("/authorize", get(authorize))
            .route("/token", post(token))
            .route("/debug_token", get(facebook_debug_token))
            .route("/me", get(facebook_me))
            .route("/oauth/token/info", get(forty_two_token_info))
            .route("/v2/me", get(forty_two_me))
            .with_state(state);
        let server = tokio::spawn(async move { axum::serve(listener, app).await.expect("serve") });
        Self { base, key, shared, jwks_fetches, server }
    }

    /// `LATCHKEY_OAUTH_PROVIDERS` entries for this provider under several names: an OpenID
    /// provider (`google`, `acme`), Facebook and 42.
    pub fn providers_json(&self) -> String {
        let base = &self.base;
        let oidc = json!({
            "client_ids": [CLIENT_ID, "our-ios-app"], "issuer": base, "jwks_uri": format!("{base}/jwks"),
            "authorize_url": format!("{base}/authorize"), "token_url": format!("{base}/token"),
        });
        let oauth = json!({
            "client_ids": [CLIENT_ID], "api_url": base,
            "authorize_url": format!("{base}/authorize"), "token_url": format!("{base}/token"),
        });
        json!({ "google": oidc, "acme": oidc, "facebook": oauth, "42": oauth }).to_string()
    }

    pub fn secrets_json() -> String {
        json!({ "facebook": CLIENT_SECRET, "42": CLIENT_SECRET }).to_string()
    }

    /// Claims of a valid ID token for `subject` issued to the test client.
    pub fn claims(&self, subject: &str, email: Option<&str>) -> Value {
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let mut claims = json!({ "iss": self.base, "aud": CLIENT_ID, "sub": subject, "iat": now, "exp": now + 600 });
        if let Some(email) = email {
            claims["email"] = json!(email);
            claims["email_verified"] = json!(true);
        }
        claims
    }

    pub fn id_token(&self, subject: &str, email: Option<&str>) -> String {
        self.key.sign(&self.claims(subject, email))
    }

    /// Starts publishing `key` (a rotation).
    pub fn publish(&self, key: &SigningKey) {
        self.shared.lock().unwrap().published.push(key.jwk.clone());
    }

    pub fn fail_jwks(&self, failing: bool) {
        self.shared.lock().unwrap().jwks_failing = failing;
    }

    pub fn jwks_fetches(&self) -> usize {
        self.jwks_fetches.load(Ordering::SeqCst)
    }

    /// The account the next browser visit to the authorization endpoint signs in.
    pub fn sign_in_next_as(&self, subject: &str, email: Option<&str>) {
        self.shared.lock().unwrap().next_user =
            Some(ProviderUser { subject: subject.to_owned(), email: email.map(String::from) });
    }

    /// An opaque access token for `subject`, issued to the app `app`.
    pub fn access_token(&self, subject: &str, email: Option<&str>, app: &str) -> String {
        let token = uuid::Uuid::new_v4().to_string();
        let user = ProviderUser { subject: subject.to_owned(), email: email.map(String::from) };
        self.shared.lock().unwrap().access_tokens.insert(token.clone(), (user, app.to_owned()));
        token
    }
}

impl Drop for TestProvider {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn jwks(State(state): State<AppState>) -> Response {
    state.jwks_fetches.fetch_add(1, Ordering::SeqCst);
    let shared = state.shared.lock().unwrap();
    if shared.jwks_failing {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    }
    axum::Json(json!({ "keys": shared.published.clone() })).into_response()
}

#[derive(Deserialize)]
struct AuthorizeQuery {
    client_id: String,
    redirect_uri: String,
    state: String,
    code_challenge: String,
    code_challenge_method: String,
    nonce: Option<String>,
}

/// Approves at once, as if the user had signed in and consented.
async fn authorize(State(state): State<AppState>, Query(query): Query<AuthorizeQuery>) -> Response {
    if query.client_id != CLIENT_ID || query.code_challenge_method != "S256" {
        return (StatusCode::BAD_REQUEST, "bad client or PKCE method").into_response();
    }
    let mut shared = state.shared.lock().unwrap();
    let Some(user) = shared.next_user.clone() else {
        return found(format!("{}?error=access_denied&state={}", query.redirect_uri, query.state));
    };
    let code = uuid::Uuid::new_v4().to_string();
    let issued = IssuedCode {
        user,
        code_challenge: query.code_challenge,
        nonce: query.nonce,
        redirect_uri: query.redirect_uri.clone(),
    };
    shared.codes.insert(code.clone(), issued);
    found(format!("{}?code={code}&state={}", query.redirect_uri, query.state))
}

/// Providers answer the authorization request with a `302 Found` (RFC 6749 4.1.2).
fn found(location: String) -> Response {
    (StatusCode::FOUND, [("location", location)]).into_response()
}

#[derive(Deserialize)]
struct TokenForm {
    grant_type: String,
    code: String,
    redirect_uri: String,
    client_id: String,
    client_secret: Option<String>,
    code_verifier: String,
}

/// The code exchange: single use, bound to the redirect URI and the PKCE challenge.
async fn token(State(state): State<AppState>, Form(form): Form<TokenForm>) -> Response {
    let refuse = |why: &str| (StatusCode::BAD_REQUEST, axum::Json(json!({ "error": "invalid_grant", "why": why })));
    let Some(issued) = state.shared.lock().unwrap().codes.remove(&form.code) else {
        return refuse("unknown or used code").into_response();
    };
    let challenge = URL_SAFE_NO_PAD.encode(digest(&SHA256, form.code_verifier.as_bytes()));
    if form.grant_type != "authorization_code"
        || form.client_id != CLIENT_ID
        || form.redirect_uri != issued.redirect_uri
    {
        return refuse("grant, client or redirect_uri").into_response();
    }
    if challenge != issued.code_challenge {
        return refuse("PKCE verifier").into_response();
    }
    // A confidential client must send its secret right; the OpenID test client is public.
    if form.client_secret.as_deref().is_some_and(|secret| secret != CLIENT_SECRET) {
        return refuse("client secret").into_response();
    }
    let access_token = uuid::Uuid::new_v4().to_string();
    state
        .shared
        .lock()
        .unwrap()
        .access_tokens
        .insert(access_token.clone(), (issued.user.clone(), CLIENT_ID.to_owned()));
    let mut body = json!({ "access_token": access_token, "token_type": "bearer", "expires_in": 3600 });
    if let Some(nonce) = issued.nonce {
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let mut claims = json!({
            "iss": state.issuer, "aud": CLIENT_ID, "sub": issued.user.subject, "iat": now, "exp": now + 600, "nonce": nonce,
        });
        if let Some(email) = &issued.user.email {
            claims["email"] = json!(email);
            claims["email_verified"] = json!("true");
        }
        body["id_token"] = json!(state.key.sign(&claims));
    }
    axum::Json(body).into_response()
}

fn bearer(headers: &HeaderMap) -> Option<String> {
    headers.get("authorization")?.to_str().ok()?.strip_prefix("Bearer ").map(String::from)
}

fn lookup(state: &AppState, token: &str) -> Option<(ProviderUser, String)> {
    state.shared.lock().unwrap().access_tokens.get(token).cloned()
}

#[derive(Deserialize)]
struct DebugQuery {
    input_token: String,
    access_token: String,
}

async fn facebook_debug_token(State(state): State<AppState>, Query(query): Query<DebugQuery>) -> Response {
    if query.access_token != format!("{CLIENT_ID}|{CLIENT_SECRET}") {
        return (StatusCode::BAD_REQUEST, axum::Json(json!({ "error": { "message": "bad app token" } })))
            .into_response();
    }
    let data = match lookup(&state, &query.input_token) {
        Some((user, app)) => json!({ "app_id": app, "is_valid": true, "user_id": user.subject }),
        None => json!({ "is_valid": false }),
    };
    axum::Json(json!({ "data": data })).into_response()
}

async fn facebook_me(State(state): State<AppState>, headers: HeaderMap) -> Response {
    match bearer(&headers).and_then(|token| lookup(&state, &token)) {
        Some((user, _)) => axum::Json(json!({ "id": user.subject, "email": user.email })).into_response(),
        None => StatusCode::UNAUTHORIZED.into_response(),
    }
}

async fn forty_two_token_info(State(state): State<AppState>, headers: HeaderMap) -> Response {
    match bearer(&headers).and_then(|token| lookup(&state, &token)) {
        Some((user, app)) => axum::Json(json!({
            "resource_owner_id": user.subject.parse::<u64>().unwrap_or(0),
            "scopes": ["public"], "expires_in_seconds": 7000, "application": { "uid": app },
        }))
        .into_response(),
        None => StatusCode::UNAUTHORIZED.into_response(),
    }
}

async fn forty_two_me(State(state): State<AppState>, headers: HeaderMap) -> Response {
    match bearer(&headers).and_then(|token| lookup(&state, &token)) {
        Some((user, _)) => axum::Json(json!({
            "id": user.subject.parse::<u64>().unwrap_or(0), "email": user.email, "login": "marvin",
        }))
        .into_response(),
        None => StatusCode::UNAUTHORIZED.into_response(),
    }
}
