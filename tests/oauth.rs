//! Third-party sign-in against a provider on loopback: ID tokens (JWKS, claims, nonce), the
//! redirect flow (state, PKCE, one-time exchange code), Facebook and 42 access tokens, and
//! explicit linking.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use latchkey::config::Config;
use latchkey_tests::provider::{CLIENT_ID, SigningKey, TestProvider};
use latchkey_tests::{Backend, PASSWORD, Reply, TestServer, Tokens, on_every_backend, test_config, unique_email};
use serde_json::{Value, json};

on_every_backend!(
    a_valid_id_token_creates_the_account_once_then_signs_in_to_it,
    the_redirect_flow_hands_the_app_a_one_time_exchange_code,
    linking_adds_a_way_to_sign_in_and_unlinking_removes_it,
    concurrent_first_sign_ins_make_one_account,
    a_reset_by_the_addresses_owner_drops_provider_identities_that_do_not_vouch_for_it,
);

const APP_CALLBACK: &str = "http://app.localhost/oauth/done";

fn config_for(provider: &TestProvider) -> Config {
    let env = [
        ("LATCHKEY_OAUTH_PROVIDERS", provider.providers_json()),
        ("LATCHKEY_OAUTH_CLIENT_SECRETS", TestProvider::secrets_json()),
        ("LATCHKEY_OAUTH_REDIRECT_URIS", redirect_uris()),
    ];
    let parsed = Config::from_lookup(|name| env.iter().find(|(n, _)| *n == name).map(|(_, v)| v.clone())).unwrap();
    Config { oauth_providers: parsed.oauth_providers, oauth_redirect_uris: parsed.oauth_redirect_uris, ..test_config() }
}

async fn started(backend: Backend) -> (TestProvider, TestServer) {
    let provider = TestProvider::start().await;
    let server = match backend {
        // As a stack is deployed: providers and redirect URIs are parameters, the client
        // secrets a Secrets Manager secret the oauth function reads at init.
        Backend::Lambda => {
            let secret = format!("latchkey-test-oauth-{}", uuid::Uuid::new_v4());
            let client = aws_sdk_secretsmanager::Client::new(&latchkey_tests::aws_sdk_config());
            client.create_secret().name(&secret).secret_string(TestProvider::secrets_json()).send().await.unwrap();
            let parameters = [
                ("OAuthProviders", provider.providers_json()),
                ("OAuthRedirectUris", redirect_uris()),
                ("OAuthClientSecretsSecret", secret),
            ];
            TestServer::on_lambda(test_config(), &parameters).await
        }
        _ => TestServer::start_with(backend, config_for(&provider)).await,
    };
    (provider, server)
}

fn redirect_uris() -> String {
    format!("{APP_CALLBACK}, http://other.localhost/cb")
}

async fn sign_in(server: &TestServer, provider: &str, body: Value) -> Reply {
    server.post(&format!("/v1/auth/oauth/{provider}"), body).await
}

/// A password account whose address is verified (linking a provider needs both).
async fn verified_account(server: &TestServer, name: &str) -> (String, Tokens) {
    let email = unique_email(name);
    let tokens = server.register(&email, None).await;
    let token = server.last_mail_to(&email).await.link_token();
    let verified = server.post("/v1/auth/email/verify", json!({ "token": token })).await;
    assert_eq!(verified.status, 200, "{}", verified.body);
    (email, tokens)
}

/// Signs in at the OpenID provider configured as `google` with an ID token.
async fn google_sign_in(server: &TestServer, id_token: impl Into<String>) -> Reply {
    sign_in(server, "google", json!({ "id_token": id_token.into() })).await
}

async fn link(server: &TestServer, provider: &str, tokens: &Tokens, body: Value) -> Reply {
    server.post_authorized(&format!("/v1/users/me/identities/{provider}"), &tokens.access, body).await
}

fn reason(reply: &Reply) -> &str {
    reply.body["details"][0]["reason"].as_str().unwrap_or_default()
}

fn subject() -> String {
    uuid::Uuid::new_v4().to_string()
}

async fn a_valid_id_token_creates_the_account_once_then_signs_in_to_it(backend: Backend) {
    let (provider, server) = started(backend).await;
    let (sub, email) = (subject(), unique_email("gina"));

    let first = google_sign_in(&server, provider.id_token(&sub, Some(&email))).await;
    assert_eq!(first.status, 201, "{}", first.body);
    let user = &first.body["user"];
    assert_eq!((user["type"].as_str(), user["email"].as_str()), (Some("GOOGLE"), Some(email.as_str())));
    assert_eq!(user["is_email_verified"], true, "providers share verified addresses only");
    assert_eq!(user["identities"][0]["provider"], "google");
    assert_eq!(user["identities"][0]["subject"], sub.as_str());

    let again = google_sign_in(&server, provider.id_token(&sub, Some(&email))).await;
    assert_eq!(again.status, 200, "{}", again.body);
    assert_eq!(again.body["user"]["id"], user["id"], "the same account");
    let tokens = Tokens::of(&again);
    assert_eq!(server.get("/v1/users/me", Some(&tokens.access)).await.body["id"], user["id"]);
    let refreshed = server.post("/v1/auth/refresh", json!({ "refresh_token": tokens.refresh })).await;
    assert_eq!(refreshed.status, 200, "provider sessions rotate like any other");

    // The account has no password: a password login with its email fails like any other.
    let login = server.post("/v1/auth/login", json!({ "email": email, "password": PASSWORD })).await;
    login.error(401, "UNAUTHENTICATED");
}

#[tokio::test]
async fn an_id_token_without_a_verified_email_makes_an_account_without_email() {
    let (provider, server) = started(Backend::Embedded).await;
    let mut claims = provider.claims(&subject(), Some("unverified@example.com"));
    claims["email_verified"] = json!(false);
    let reply = sign_in(&server, "acme", json!({ "id_token": provider.key.sign(&claims) })).await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    assert_eq!(reply.body["user"]["email"], Value::Null, "an unverified address is not taken");
    assert_eq!(reply.body["user"]["type"], "OIDC");
    // Nobody was handed that address: it can still be registered.
    server.register("unverified@example.com", None).await;
}

#[tokio::test]
async fn expired_foreign_misissued_forged_and_unsigned_id_tokens_are_refused() {
    let (provider, server) = started(Backend::Embedded).await;
    let sub = subject();
    let with = |change: &dyn Fn(&mut Value)| {
        let mut claims = provider.claims(&sub, None);
        change(&mut claims);
        provider.key.sign(&claims)
    };
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let valid = provider.id_token(&sub, None);
    let (head, body) = (valid.split('.').next().unwrap(), valid.split('.').nth(1).unwrap());
    let b64 = |value: Value| URL_SAFE_NO_PAD.encode(value.to_string());
    let tampered_body =
        b64(json!({ "iss": provider.base, "aud": CLIENT_ID, "sub": "someone-else", "iat": now, "exp": now + 600 }));
    let other_key = SigningKey::generate("key-1");
    let cases = [
        ("expired", with(&|c| c["exp"] = json!(now - 120)), "expired"),
        ("issued to another app", with(&|c| c["aud"] = json!("not-our-client")), "another app"),
        ("another issuer", with(&|c| c["iss"] = json!("https://evil.example")), "(iss)"),
        ("issued in the future", with(&|c| c["iat"] = json!(now + 3600)), "future"),
        ("tampered payload", format!("{head}.{tampered_body}.{}", valid.split('.').nth(2).unwrap()), "signature"),
        ("signed by another key with our kid", other_key.sign(&provider.claims(&sub, None)), "signature"),
        ("alg none", format!("{}.{body}.", b64(json!({ "alg": "none", "kid": "key-1" }))), "malformed"),
        (
            "HS256",
            jsonwebtoken::encode(
                &jsonwebtoken::Header {
                    kid: Some("key-1".into()),
                    ..jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256)
                },
                &provider.claims(&sub, None),
                &jsonwebtoken::EncodingKey::from_secret(b"guessable"),
            )
            .unwrap(),
            "algorithm",
        ),
        ("not a JWT", "garbage".to_owned(), "malformed"),
    ];
    for (case, token, says) in cases {
        let reply = google_sign_in(&server, token).await;
        let message = reply.error(401, "UNAUTHENTICATED");
        assert_eq!(reason(&reply), "INVALID_PROVIDER_TOKEN", "{case}: {}", reply.body);
        assert!(message.contains(says), "{case}: {message}");
    }
    // None of them made an account: the first valid sign-in does.
    assert_eq!(google_sign_in(&server, valid).await.status, 201);
}

#[tokio::test]
async fn an_unknown_key_id_refetches_the_keys_once_then_is_refused() {
    let (provider, server) = started(Backend::Embedded).await;
    assert_eq!(google_sign_in(&server, provider.id_token(&subject(), None)).await.status, 201);
    assert_eq!(provider.jwks_fetches(), 1, "the keys are fetched once and cached");

    let stranger = SigningKey::generate("never-published");
    for _ in 0..3 {
        let reply = google_sign_in(&server, stranger.sign(&provider.claims(&subject(), None))).await;
        assert!(reply.error(401, "UNAUTHENTICATED").contains("key"), "{}", reply.body);
    }
    assert_eq!(provider.jwks_fetches(), 2, "one refetch for unknown keys per minute, however many tokens");
}

#[tokio::test]
async fn a_key_the_provider_rotated_in_is_picked_up_at_first_sight() {
    let (provider, server) = started(Backend::Embedded).await;
    assert_eq!(google_sign_in(&server, provider.id_token(&subject(), None)).await.status, 201);
    let rotated = SigningKey::generate("key-2");
    provider.publish(&rotated);
    let reply = google_sign_in(&server, rotated.sign(&provider.claims(&subject(), None))).await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    assert_eq!(provider.jwks_fetches(), 2);
}

#[tokio::test]
async fn a_nonce_sent_by_the_client_must_be_the_tokens() {
    let (provider, server) = started(Backend::Embedded).await;
    let mut claims = provider.claims(&subject(), None);
    claims["nonce"] = json!("n-0S6_WzA2Mj");
    let token = provider.key.sign(&claims);
    let wrong = sign_in(&server, "google", json!({ "id_token": token, "nonce": "another" })).await;
    assert!(wrong.error(401, "UNAUTHENTICATED").contains("nonce"));
    let right = sign_in(&server, "google", json!({ "id_token": token, "nonce": "n-0S6_WzA2Mj" })).await;
    assert_eq!(right.status, 201, "{}", right.body);
}

#[tokio::test]
async fn a_provider_email_of_an_existing_account_is_told_to_sign_in_and_link() {
    let (provider, server) = started(Backend::Embedded).await;
    let email = unique_email("pat");
    let password_account = server.register(&email, None).await;

    let reply = google_sign_in(&server, provider.id_token(&subject(), Some(&email))).await;
    let message = reply.error(409, "ALREADY_EXISTS");
    assert_eq!(reason(&reply), "ACCOUNT_EXISTS_LINK_REQUIRED");
    assert!(message.contains("link"), "{message}");
    // The password account is untouched and still has no identity.
    let me = server.get("/v1/users/me", Some(&password_account.access)).await;
    assert_eq!(me.body["identities"], json!([]));
    server.login(&email).await;
}

#[tokio::test]
async fn a_provider_sign_in_still_asks_for_the_accounts_second_factor() {
    let (provider, server) = started(Backend::Embedded).await;
    let ((email, tokens), sub) = (verified_account(&server, "mfa").await, subject());
    let body = json!({ "id_token": provider.id_token(&sub, None), "current_password": PASSWORD });
    let link = link(&server, "google", &tokens, body).await;
    assert_eq!(link.status, 201, "{}", link.body);
    let codes_on = server
        .put_authorized("/v1/users/me/mfa/email", &tokens.access, json!({ "enabled": true, "password": PASSWORD }))
        .await;
    assert!(codes_on.status < 300, "{}", codes_on.body);

    let bare = google_sign_in(&server, provider.id_token(&sub, None)).await;
    bare.error(401, "UNAUTHENTICATED");
    assert_eq!(reason(&bare), "MFA_REQUIRED", "{}", bare.body);

    server.post("/v1/auth/email-code", json!({ "email": email })).await;
    let code = server.last_mail_to(&email).await.code();
    let with_code =
        sign_in(&server, "google", json!({ "id_token": provider.id_token(&sub, None), "email_code": code })).await;
    assert_eq!(with_code.status, 200, "{}", with_code.body);
}

#[tokio::test]
async fn bad_requests_and_unconfigured_providers_get_clean_errors() {
    let (provider, server) = started(Backend::Embedded).await;
    let token = provider.id_token(&subject(), None);
    sign_in(&server, "github", json!({ "id_token": token })).await.error(404, "NOT_FOUND");
    sign_in(&server, "Not A Name", json!({ "id_token": token })).await.error(404, "NOT_FOUND");
    sign_in(&server, "google", json!({})).await.error(400, "INVALID_ARGUMENT");
    sign_in(&server, "google", json!({ "id_token": token, "access_token": "x" })).await.error(400, "INVALID_ARGUMENT");
    google_sign_in(&server, "  ").await.error(400, "INVALID_ARGUMENT");
    let access_to_oidc = sign_in(&server, "google", json!({ "access_token": "x" })).await;
    access_to_oidc.error(400, "INVALID_ARGUMENT");
    assert_eq!(reason(&access_to_oidc), "UNSUPPORTED_BY_PROVIDER");
    sign_in(&server, "42", json!({ "id_token": token })).await.error(400, "INVALID_ARGUMENT");
    server.post("/v1/auth/oauth/exchange", json!({ "code": 7 })).await.error(400, "INVALID_ARGUMENT");

    // A deployment without providers answers 404 for every one.
    let bare = TestServer::start(Backend::Embedded).await;
    sign_in(&bare, "google", json!({ "id_token": token })).await.error(404, "NOT_FOUND");
}

#[tokio::test]
async fn a_provider_that_is_down_answers_503_with_a_clear_message() {
    let (provider, _) = started(Backend::Embedded).await;
    // A port nobody listens on.
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap().local_addr().unwrap();
    let json = provider.providers_json().replace(&provider.base[7..], &closed.to_string());
    let env = [("LATCHKEY_OAUTH_PROVIDERS", json), ("LATCHKEY_OAUTH_CLIENT_SECRETS", TestProvider::secrets_json())];
    let parsed = Config::from_lookup(|name| env.iter().find(|(n, _)| *n == name).map(|(_, v)| v.clone())).unwrap();
    let server =
        TestServer::start_with(Backend::Embedded, Config { oauth_providers: parsed.oauth_providers, ..test_config() })
            .await;

    for (name, body) in
        [("google", json!({ "id_token": provider.id_token(&subject(), None) })), ("42", json!({ "access_token": "t" }))]
    {
        let reply = sign_in(&server, name, body).await;
        let message = reply.error(503, "UNAVAILABLE");
        assert_eq!(reason(&reply), "PROVIDER_UNAVAILABLE");
        assert!(message.contains(name) && message.contains("unreachable"), "{message}");
        assert!(!message.contains("127.0.0.1"), "no internal detail: {message}");
    }
}

#[tokio::test]
async fn facebook_access_tokens_are_checked_with_the_app_token_and_another_apps_are_refused() {
    let (provider, server) = started(Backend::Embedded).await;
    let (sub, email) = ("10158000000000001".to_owned(), unique_email("fb"));
    let ours = provider.access_token(&sub, Some(&email), CLIENT_ID);
    let reply = sign_in(&server, "facebook", json!({ "access_token": ours })).await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    assert_eq!(
        (reply.body["user"]["type"].as_str(), reply.body["user"]["email"].as_str()),
        (Some("FACEBOOK"), Some(email.as_str()))
    );

    let theirs = provider.access_token(&sub, Some(&email), "some-other-app");
    let refused = sign_in(&server, "facebook", json!({ "access_token": theirs })).await;
    assert!(refused.error(401, "UNAUTHENTICATED").contains("another app"));
    sign_in(&server, "facebook", json!({ "access_token": "made-up" })).await.error(401, "UNAUTHENTICATED");
}

#[tokio::test]
async fn forty_two_access_tokens_issued_to_another_app_are_refused() {
    let (provider, server) = started(Backend::Embedded).await;
    let theirs = provider.access_token("4242", None, "some-other-app");
    let refused = sign_in(&server, "42", json!({ "access_token": theirs })).await;
    assert!(refused.error(401, "UNAUTHENTICATED").contains("another app"));
    let ours = provider.access_token("4242", Some(&unique_email("marvin")), CLIENT_ID);
    let reply = sign_in(&server, "42", json!({ "access_token": ours })).await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    assert_eq!(reply.body["user"]["type"], "FORTYTWO");
}

/// A client that shows redirects instead of following them.
fn browser() -> reqwest::Client {
    latchkey_tests::http_client_builder().redirect(reqwest::redirect::Policy::none()).build().unwrap()
}

async fn location(response: reqwest::Response) -> reqwest::Url {
    let status = response.status();
    let location = response.headers().get("location").map(|value| value.to_str().unwrap().to_owned());
    let body = response.text().await.unwrap();
    assert_eq!(status, 302, "expected a redirect; body: {body}");
    reqwest::Url::parse(&location.expect("a Location")).expect("an absolute Location")
}

fn param(url: &reqwest::Url, name: &str) -> Option<String> {
    url.query_pairs().find(|(key, _)| key == name).map(|(_, value)| value.into_owned())
}

/// Starts a Google sign-in for the app and answers the state Latchkey sent to the provider.
async fn started_flow(browser: &reqwest::Client, server: &TestServer) -> String {
    let authorize = server.url(&format!("/v1/auth/oauth/google/authorize?redirect_uri={APP_CALLBACK}&state=s"));
    let to_provider = browser.get(authorize).send().await.unwrap();
    param(&location(to_provider).await, "state").expect("a state")
}

/// Runs the browser's part of the redirect flow: Latchkey, the provider, Latchkey's callback.
/// Answers where the browser lands in the app.
async fn through_the_browser(server: &TestServer, provider_name: &str) -> reqwest::Url {
    let browser = browser();
    let authorize = format!("/v1/auth/oauth/{provider_name}/authorize?redirect_uri={APP_CALLBACK}&state=app-xyz");
    let to_provider = browser.get(server.url(&authorize)).send().await.unwrap();
    let at_provider = location(to_provider).await;
    assert_eq!(param(&at_provider, "code_challenge_method").as_deref(), Some("S256"));
    let state = param(&at_provider, "state").expect("a state");
    assert!(state.len() >= 43 && state != "app-xyz", "Latchkey's own random state");
    let back = location(browser.get(at_provider).send().await.unwrap()).await;
    assert!(back.as_str().starts_with(&server.url(&format!("/v1/auth/oauth/{provider_name}/callback"))));
    let callback = browser.get(back.clone()).send().await.unwrap();
    assert_eq!(callback.headers()["cache-control"], "no-store");
    let landed = location(callback).await;
    assert!(landed.as_str().starts_with(APP_CALLBACK), "{landed}");
    assert_eq!(param(&landed, "state").as_deref(), Some("app-xyz"), "the app's state comes back");
    assert!(param(&landed, "access_token").is_none() && !landed.as_str().contains("refresh"), "no tokens in URLs");
    // Replaying the callback (its state is spent) is refused.
    let replay = Reply::of("GET", browser.get(back).send().await.unwrap()).await;
    assert_eq!(reason(&replay), "INVALID_STATE");
    landed
}

async fn the_redirect_flow_hands_the_app_a_one_time_exchange_code(backend: Backend) {
    let (provider, server) = started(backend).await;
    let email = unique_email("redirect");
    provider.sign_in_next_as(&subject(), Some(&email));
    let landed = through_the_browser(&server, "google").await;
    let code = param(&landed, "code").expect("an exchange code");

    let exchanged = server.post("/v1/auth/oauth/exchange", json!({ "code": code })).await;
    assert_eq!(exchanged.status, 201, "{}", exchanged.body);
    assert_eq!(exchanged.body["user"]["email"], email.as_str());
    let tokens = Tokens::of(&exchanged);
    assert_eq!(server.get("/v1/users/me", Some(&tokens.access)).await.status, 200);

    let replayed = server.post("/v1/auth/oauth/exchange", json!({ "code": code })).await;
    replayed.error(400, "INVALID_ARGUMENT");
    assert_eq!(reason(&replayed), "INVALID_GRANT");

    // 42 runs the same flow with access tokens; the same provider account signs in again.
    provider.sign_in_next_as("4242", Some(&unique_email("marvin")));
    let landed = through_the_browser(&server, "42").await;
    let exchanged = server.post("/v1/auth/oauth/exchange", json!({ "code": param(&landed, "code").unwrap() })).await;
    assert_eq!(exchanged.status, 201, "{}", exchanged.body);
    assert_eq!(exchanged.body["user"]["type"], "FORTYTWO");
}

#[tokio::test]
async fn the_redirect_flow_refuses_foreign_redirect_uris_and_bad_state_and_reports_refusals_to_the_app() {
    let (provider, server) = started(Backend::Embedded).await;
    let browser = browser();
    for uri in ["https://evil.example/steal", "http://app.localhost/oauth/done/extra", ""] {
        let reply = Reply::of(
            "GET",
            browser
                .get(server.url(&format!("/v1/auth/oauth/google/authorize?redirect_uri={uri}&state=s")))
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert!(reply.error(400, "INVALID_ARGUMENT").contains("redirect_uri"), "{uri}");
        assert!(reply.headers.get("location").is_none(), "never a redirect to an unchecked URI");
    }
    for query in ["code=abc&state=made-up", "code=abc", "error=access_denied"] {
        let reply = Reply::of(
            "GET",
            browser.get(server.url(&format!("/v1/auth/oauth/google/callback?{query}"))).send().await.unwrap(),
        )
        .await;
        reply.error(400, "INVALID_ARGUMENT");
        assert_eq!(reason(&reply), "INVALID_STATE", "{query}");
    }
    // A state issued for one provider does not complete another's flow.
    let state = started_flow(&browser, &server).await;
    let crossed = Reply::of(
        "GET",
        browser.get(server.url(&format!("/v1/auth/oauth/acme/callback?code=x&state={state}"))).send().await.unwrap(),
    )
    .await;
    assert_eq!(reason(&crossed), "INVALID_STATE");

    // The user declines at the provider: the app is told, without a code.
    let state = started_flow(&browser, &server).await;
    let declined = browser
        .get(server.url(&format!("/v1/auth/oauth/google/callback?error=access_denied&state={state}")))
        .send()
        .await
        .unwrap();
    let landed = location(declined).await;
    assert_eq!((param(&landed, "error").as_deref(), param(&landed, "code")), (Some("access_denied"), None));

    // The provider's address belongs to a password account: the app is told to have the user link.
    let email = unique_email("taken");
    server.register(&email, None).await;
    provider.sign_in_next_as(&subject(), Some(&email));
    let landed = through_the_browser(&server, "google").await;
    assert_eq!(param(&landed, "error").as_deref(), Some("account_exists"));
}

async fn linking_adds_a_way_to_sign_in_and_unlinking_removes_it(backend: Backend) {
    let (provider, server) = started(backend).await;
    let (email, tokens) = verified_account(&server, "linker").await;
    let sub = subject();
    let id_token = provider.id_token(&sub, Some(&email));
    let path = "/v1/users/me/identities/google";
    let body = json!({ "id_token": id_token, "current_password": PASSWORD });

    let linked = server.post_authorized(path, &tokens.access, body.clone()).await;
    assert_eq!(linked.status, 201, "{}", linked.body);
    assert_eq!(
        (linked.body["provider"].as_str(), linked.body["subject"].as_str()),
        (Some("google"), Some(sub.as_str()))
    );
    let again = server.post_authorized(path, &tokens.access, body).await;
    assert_eq!(again.status, 200, "linking the same account again changes nothing");
    let listed = server.get("/v1/users/me/identities", Some(&tokens.access)).await;
    assert_eq!((listed.body["identities"].as_array().unwrap().len(), &listed.body["has_password"]), (1, &json!(true)));

    // The provider now signs in to the password account.
    let via_google = google_sign_in(&server, provider.id_token(&sub, Some(&email))).await;
    assert_eq!(via_google.status, 200, "{}", via_google.body);
    assert_eq!(via_google.body["user"]["id"], tokens.user_id.as_str());
    let notices = server.mailbox.messages_to(&email).await;
    assert!(notices.iter().any(|mail| mail.subject.contains("provider was linked")), "the owner is told");

    let unlinked = server.delete_authorized(path, &tokens.access, None).await;
    assert_eq!(unlinked.status, 204);
    server.delete_authorized(path, &tokens.access, None).await.error(404, "NOT_FOUND");
    // Unlinked, the provider account no longer reaches this account (its email is taken: link).
    let after = google_sign_in(&server, provider.id_token(&sub, Some(&email))).await;
    after.error(409, "ALREADY_EXISTS");
}

#[tokio::test]
async fn a_provider_account_of_another_user_cannot_be_linked_and_the_last_identity_stays() {
    let (provider, server) = started(Backend::Embedded).await;
    let (sub, fb) = (subject(), "10158000000000002");
    let provider_only = Tokens::of(&google_sign_in(&server, provider.id_token(&sub, None)).await);

    let (_, someone) = verified_account(&server, "someone").await;
    let body = json!({ "id_token": provider.id_token(&sub, None), "current_password": PASSWORD });
    let taken = link(&server, "google", &someone, body.clone()).await;
    taken.error(409, "ALREADY_EXISTS");
    assert_eq!(taken.body["details"][0]["field"], "identity");

    let last = server.delete_authorized("/v1/users/me/identities/google", &provider_only.access, None).await;
    last.error(400, "FAILED_PRECONDITION");
    assert_eq!(reason(&last), "LAST_SIGN_IN_METHOD");

    let facebook = provider.access_token(fb, None, CLIENT_ID);
    let linked = link(&server, "facebook", &provider_only, json!({ "access_token": facebook })).await;
    assert_eq!(linked.status, 201, "{}", linked.body);
    assert_eq!(
        server.delete_authorized("/v1/users/me/identities/google", &provider_only.access, None).await.status,
        204
    );
    let listed = server.get("/v1/users/me/identities", Some(&provider_only.access)).await;
    assert_eq!(listed.body["identities"][0]["provider"], "facebook");
    assert_eq!(listed.body["has_password"], false);
    let last = server.delete_authorized("/v1/users/me/identities/facebook", &provider_only.access, None).await;
    assert_eq!(reason(&last), "LAST_SIGN_IN_METHOD");

    // Released by the unlink, the Google account may now be linked by someone else.
    let relinked = link(&server, "google", &someone, body).await;
    assert_eq!(relinked.status, 201, "{}", relinked.body);
}

async fn concurrent_first_sign_ins_make_one_account(backend: Backend) {
    let (provider, server) = started(backend).await;
    let (sub, email) = (subject(), unique_email("race"));
    let attempts = (0..8).map(|_| google_sign_in(&server, provider.id_token(&sub, Some(&email))));
    let replies = futures::future::join_all(attempts).await;
    let created = replies.iter().filter(|reply| reply.status == 201).count();
    assert_eq!(created, 1, "{:?}", replies.iter().map(|r| (r.status, r.body.to_string())).collect::<Vec<_>>());
    let ids: std::collections::HashSet<&str> =
        replies.iter().map(|reply| reply.body["user"]["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), 1, "every sign-in reached the one account");
}

#[tokio::test]
async fn a_provider_account_with_an_email_sets_its_first_password_by_reset_link() {
    let (provider, server) = started(Backend::Embedded).await;
    let (sub, email) = (subject(), unique_email("firstpw"));
    let created = google_sign_in(&server, provider.id_token(&sub, Some(&email))).await;
    let tokens = Tokens::of(&created);

    let forgot = server.post("/v1/auth/password/forgot", json!({ "email": email })).await;
    assert_eq!(forgot.status, 202);
    let token = server.last_mail_to(&email).await.link_token();
    let reset = server.post("/v1/auth/password/reset", json!({ "token": token, "new_password": PASSWORD })).await;
    assert_eq!(reset.status, 200, "{}", reset.body);

    let login = server.login(&email).await;
    assert_eq!(login.user_id, tokens.user_id, "the password signs in to the provider's account");
    let listed = server.get("/v1/users/me/identities", Some(&login.access)).await;
    assert_eq!(listed.body["has_password"], true);
    // With a password, the provider is no longer the only way in.
    assert_eq!(server.delete_authorized("/v1/users/me/identities/google", &login.access, None).await.status, 204);
}

#[tokio::test]
async fn linking_needs_a_proved_address_and_the_password_or_a_fresh_login() {
    let (provider, server) = started(Backend::Embedded).await;
    let token = |sub: &str| json!({ "id_token": provider.id_token(sub, None), "current_password": PASSWORD });

    // Whoever registered an address they do not own cannot add a way in before its owner resets.
    let squatter = server.register(&unique_email("squat"), None).await;
    let refused = link(&server, "google", &squatter, token(&subject())).await;
    assert!(refused.error(400, "FAILED_PRECONDITION").contains("verify"), "{}", refused.body);

    let (_, owner) = verified_account(&server, "owner").await;
    let no_password = json!({ "id_token": provider.id_token(&subject(), None) });
    link(&server, "google", &owner, no_password).await.error(400, "INVALID_ARGUMENT");
    let wrong = json!({ "id_token": provider.id_token(&subject(), None), "current_password": "not the password" });
    link(&server, "google", &owner, wrong).await.error(403, "PERMISSION_DENIED");

    // An account made by a provider has no password: its login must be fresh.
    let (sub, facebook) = (subject(), "10158000000000003");
    let created = Tokens::of(&google_sign_in(&server, provider.id_token(&sub, None)).await);
    let body = json!({ "access_token": provider.access_token(facebook, None, CLIENT_ID) });
    let user_id = latchkey::domain::UserId::parse(&created.user_id).unwrap();
    let sessions = server.store.query(&format!("USER#{user_id}"), "SESSION#").await.unwrap();
    let mut session = sessions.into_iter().next().expect("the sign-in's session");
    let an_hour_ago = session.attributes["created_at"].as_i64().unwrap() - 3600;
    session.attributes.insert("created_at".into(), json!(an_hour_ago));
    server.store.write(vec![latchkey::store::Write::put(session, latchkey::store::Condition::Always)]).await.unwrap();
    let stale = link(&server, "facebook", &created, body).await;
    stale.error(403, "PERMISSION_DENIED");
    assert_eq!(reason(&stale), "REAUTHENTICATION_REQUIRED");
    let fresh = Tokens::of(&google_sign_in(&server, provider.id_token(&sub, None)).await);
    let body = json!({ "access_token": provider.access_token(facebook, None, CLIENT_ID) });
    assert_eq!(link(&server, "facebook", &fresh, body).await.status, 201);
}

#[tokio::test]
async fn the_redirect_flow_needs_the_apps_own_state() {
    let (_provider, server) = started(Backend::Embedded).await;
    let browser = browser();
    let without = server.url(&format!("/v1/auth/oauth/google/authorize?redirect_uri={APP_CALLBACK}"));
    let reply = Reply::of("GET", browser.get(without).send().await.unwrap()).await;
    reply.error(400, "INVALID_ARGUMENT");
    assert!(reply.headers.get("location").is_none());
}

#[tokio::test]
async fn a_failing_jwks_endpoint_is_not_asked_again_at_every_sign_in() {
    let (provider, server) = started(Backend::Embedded).await;
    provider.fail_jwks(true);
    for _ in 0..3 {
        let reply = google_sign_in(&server, provider.id_token(&subject(), None)).await;
        reply.error(503, "UNAVAILABLE");
        assert_eq!(reason(&reply), "PROVIDER_UNAVAILABLE");
    }
    assert_eq!(provider.jwks_fetches(), 1, "a failed fetch is retried after a pause, not per request");
}

async fn a_reset_by_the_addresses_owner_drops_provider_identities_that_do_not_vouch_for_it(backend: Backend) {
    let (provider, server) = started(backend).await;
    // A squatter registers the victim's address; the victim, not knowing, opens the
    // verification link; the squatter links a provider account of their own.
    let (victim, squatter) = verified_account(&server, "victim").await;
    let squatters_sub = subject();
    let body = json!({ "id_token": provider.id_token(&squatters_sub, None), "current_password": PASSWORD });
    assert_eq!(link(&server, "google", &squatter, body).await.status, 201);
    // The victim resets the password from the mail: the account is theirs alone now.
    assert_eq!(server.post("/v1/auth/password/forgot", json!({ "email": victim })).await.status, 202);
    let token = server.last_mail_to(&victim).await.link_token();
    let reset = json!({ "token": token, "new_password": "the owner's own passphrase" });
    assert_eq!(server.post("/v1/auth/password/reset", reset).await.status, 200);
    assert!(server.last_mail_to(&victim).await.subject.contains("A sign-in provider was removed"));
    let again = google_sign_in(&server, provider.id_token(&squatters_sub, None)).await;
    assert_eq!(again.status, 201, "the squatter's provider account no longer reaches the victim's: {}", again.body);
    assert_ne!(again.body["user"]["id"], squatter.user_id.as_str());

    // A provider account that vouches for the account's own address survives a reset.
    let owner =
        server.post("/v1/auth/login", json!({ "email": victim, "password": "the owner's own passphrase" })).await;
    let owner = Tokens::of(&owner);
    let own_sub = subject();
    let body = json!({ "id_token": provider.id_token(&own_sub, Some(&victim)), "current_password": "the owner's own passphrase" });
    assert_eq!(link(&server, "google", &owner, body).await.status, 201);
    assert_eq!(server.post("/v1/auth/password/forgot", json!({ "email": victim })).await.status, 202);
    let token = server.last_mail_to(&victim).await.link_token();
    let reset = json!({ "token": token, "new_password": "yet another passphrase" });
    assert_eq!(server.post("/v1/auth/password/reset", reset).await.status, 200);
    let kept = google_sign_in(&server, provider.id_token(&own_sub, Some(&victim))).await;
    assert_eq!((kept.status, kept.body["user"]["id"].as_str()), (200, Some(owner.user_id.as_str())));
}

#[tokio::test]
async fn a_provider_account_without_an_address_cannot_hold_someone_elses() {
    let (provider, server) = started(Backend::Embedded).await;
    let created = Tokens::of(&google_sign_in(&server, provider.id_token(&subject(), None)).await);
    let victim = unique_email("victim");
    let claim = server.patch_authorized("/v1/users/me", &created.access, json!({ "email": victim })).await;
    assert_eq!(claim.status, 200, "{}", claim.body);
    assert!(claim.body["email"].is_null(), "pending, not the account's: {}", claim.body);
    // The victim's own provider sign-in and registration are not blocked by it.
    let own = google_sign_in(&server, provider.id_token(&subject(), Some(&victim))).await;
    assert_eq!(own.status, 201, "{}", own.body);
}

#[tokio::test]
async fn an_unconfigured_providers_callback_is_404_and_missing_parameters_are_named() {
    let (_provider, server) = started(Backend::Embedded).await;
    server.get("/v1/auth/oauth/github/callback?state=x&code=y", None).await.error(404, "NOT_FOUND");
    let bare = TestServer::start(Backend::Embedded).await;
    bare.get("/v1/auth/oauth/google/callback?state=x&code=y", None).await.error(404, "NOT_FOUND");
    for (query, field) in [(format!("redirect_uri={APP_CALLBACK}"), "state"), ("state=abc".to_owned(), "redirect_uri")]
    {
        let reply = Reply::of(
            "GET",
            browser().get(server.url(&format!("/v1/auth/oauth/google/authorize?{query}"))).send().await.unwrap(),
        )
        .await;
        let message = reply.error(400, "INVALID_ARGUMENT");
        assert_eq!(reply.body["details"][0]["field"], field, "{query}: {}", reply.body);
        assert!(!message.contains("deserialize"), "{message}");
    }
}

/// An exchange code waits up to 120 s for the app; a password reset in that time voids it,
/// so nobody looping the redirect flow keeps a way in across the owner's reset.
#[tokio::test]
async fn a_password_reset_voids_exchange_codes_issued_before_it() {
    let (provider, server) = started(Backend::Embedded).await;
    let (sub, email) = (subject(), unique_email("gina"));
    let created = google_sign_in(&server, provider.id_token(&sub, Some(&email))).await;
    assert_eq!(created.status, 201, "{}", created.body);
    provider.sign_in_next_as(&sub, Some(&email));
    let code = param(&through_the_browser(&server, "google").await, "code").expect("an exchange code");
    assert_eq!(server.post("/v1/auth/password/forgot", json!({ "email": email })).await.status, 202);
    let token = server.last_mail_to(&email).await.link_token();
    let reset = json!({ "token": token, "new_password": "the owner's own passphrase" });
    assert_eq!(server.post("/v1/auth/password/reset", reset).await.status, 200);
    let exchanged = server.post("/v1/auth/oauth/exchange", json!({ "code": code })).await;
    exchanged.error(400, "INVALID_ARGUMENT");
    assert_eq!(reason(&exchanged), "INVALID_GRANT");
}

/// A stolen, fresh session of an account without a password can link the thief's provider and
/// unlink the owner's; the owner's reset takes the account back from that provider too.
#[tokio::test]
async fn a_reset_of_an_account_without_a_password_drops_an_identity_linked_since_it_was_made() {
    let (provider, server) = started(Backend::Embedded).await;
    let owner = subject();
    let stolen = Tokens::of(&google_sign_in(&server, provider.id_token(&owner, None)).await);
    let email = unique_email("gina");
    assert_eq!(server.patch_authorized("/v1/users/me", &stolen.access, json!({ "email": email })).await.status, 200);
    let token = server.last_mail_to(&email).await.link_token();
    server.post_authorized("/v1/users/me/email/confirm", &stolen.access, json!({ "token": token })).await;
    let thief = subject();
    let thiefs = json!({ "id_token": provider.key.sign(&provider.claims(&thief, None)) });
    assert_eq!(link(&server, "acme", &stolen, thiefs).await.status, 201);
    assert_eq!(server.delete_authorized("/v1/users/me/identities/google", &stolen.access, None).await.status, 204);

    assert_eq!(server.post("/v1/auth/password/forgot", json!({ "email": email })).await.status, 202);
    let token = server.last_mail_to(&email).await.link_token();
    let reset = json!({ "token": token, "new_password": "a first passphrase" });
    assert_eq!(server.post("/v1/auth/password/reset", reset).await.status, 200);
    let thiefs = json!({ "id_token": provider.key.sign(&provider.claims(&thief, None)) });
    let again = sign_in(&server, "acme", thiefs).await;
    assert_ne!(again.body["user"]["id"].as_str(), Some(stolen.user_id.as_str()), "the thief's provider is gone");
    let owners = server.post("/v1/auth/login", json!({ "email": email, "password": "a first passphrase" })).await;
    assert_eq!(owners.status, 200, "{}", owners.body);
}

/// An account a provider made has no password holder to take it back from: a reset (after the
/// owner gave it an address) keeps its identities, or the owner would lose the way they sign in.
#[tokio::test]
async fn a_reset_of_an_account_without_a_password_keeps_its_identities() {
    let (provider, server) = started(Backend::Embedded).await;
    let sub = subject();
    let created = Tokens::of(&google_sign_in(&server, provider.id_token(&sub, None)).await);
    let email = unique_email("gina");
    assert_eq!(server.patch_authorized("/v1/users/me", &created.access, json!({ "email": email })).await.status, 200);
    let token = server.last_mail_to(&email).await.link_token();
    let confirmed =
        server.post_authorized("/v1/users/me/email/confirm", &created.access, json!({ "token": token })).await;
    assert_eq!(confirmed.status, 200, "{}", confirmed.body);
    assert_eq!(server.post("/v1/auth/password/forgot", json!({ "email": email })).await.status, 202);
    let token = server.last_mail_to(&email).await.link_token();
    let reset = json!({ "token": token, "new_password": "a first passphrase" });
    assert_eq!(server.post("/v1/auth/password/reset", reset).await.status, 200);
    let again = google_sign_in(&server, provider.id_token(&sub, None)).await;
    assert_eq!((again.status, again.body["user"]["id"].as_str()), (200, Some(created.user_id.as_str())));
}
