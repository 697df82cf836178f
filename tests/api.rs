//! The API end to end over HTTP, run once on the embedded store and once on DynamoDB (moto).

use latchkey::config::{Config, LockoutPolicy};
use latchkey_tests::{Backend, PASSWORD, TestServer, Tokens, on_every_backend, test_config};
use serde_json::json;

on_every_backend!(
    register_returns_201_with_the_user_and_a_token_pair,
    registering_a_taken_email_username_or_phone_is_409_naming_the_field,
    a_refused_registration_reserves_nothing,
    fifty_concurrent_registrations_of_one_email_give_one_success_and_49_conflicts,
    login_works_with_email_username_or_phone,
    wrong_password_and_unknown_user_get_the_same_401,
    refresh_rotates_the_pair_and_spends_the_old_token,
    reusing_a_rotated_refresh_token_revokes_the_whole_family,
    two_concurrent_refreshes_with_one_token_have_exactly_one_winner,
    logout_ends_the_session_and_its_access_tokens,
    logout_all_ends_every_session_of_the_caller_only,
    me_and_status_describe_the_caller,
    introspection_is_active_only_for_live_access_tokens,
    introspection_and_protected_routes_see_the_account_as_stored_now,
    jwks_publishes_the_key_that_verifies_access_tokens,
);

async fn register_returns_201_with_the_user_and_a_token_pair(backend: Backend) {
    let server = TestServer::start(backend).await;
    let reply = server
        .post(
            "/v1/auth/register",
            json!({"email": " Ada@Example.COM ", "password": PASSWORD, "username": "Ada", "phone": "+44 20 7946 0958"}),
        )
        .await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    let user = &reply.body["user"];
    assert_eq!(user["email"], "ada@example.com");
    assert_eq!(user["username"], "Ada");
    assert_eq!(user["phone"], "+442079460958");
    assert_eq!(user["role"], "USER");
    assert_eq!(user["type"], "EMAIL");
    assert_eq!(user["status"], "NORMAL");
    assert_eq!(user["is_email_verified"], false);
    assert!(user.get("password_hash").is_none() && !reply.body.to_string().contains("argon2"));
    assert_eq!(reply.body["token_type"], "Bearer");
    assert_eq!(reply.body["expires_in"], 900);
    assert_eq!(reply.body["refresh_token"].as_str().unwrap().len(), 43, "256-bit base64url refresh token");
}

async fn registering_a_taken_email_username_or_phone_is_409_naming_the_field(backend: Backend) {
    let server = TestServer::start(backend).await;
    let first = json!({"email": "ada@example.com", "password": PASSWORD, "username": "ada", "phone": "+14155550100"});
    assert_eq!(server.post("/v1/auth/register", first).await.status, 201);
    for (body, field) in [
        (json!({"email": "ADA@example.com", "password": PASSWORD}), "email"),
        (json!({"email": "other@example.com", "password": PASSWORD, "username": "ADA"}), "username"),
        (json!({"email": "third@example.com", "password": PASSWORD, "phone": "+1 415 555 0100"}), "phone"),
    ] {
        let reply = server.post("/v1/auth/register", body).await;
        reply.error(409, "ALREADY_EXISTS");
        assert_eq!(reply.body["details"][0]["field"], field, "{}", reply.body);
    }
}

async fn a_refused_registration_reserves_nothing(backend: Backend) {
    let server = TestServer::start(backend).await;
    server.register("ada@example.com", Some("ada")).await;
    // The username is taken, so the whole registration must be undone, email guard included.
    let refused = server
        .post("/v1/auth/register", json!({"email": "grace@example.com", "password": PASSWORD, "username": "ada"}))
        .await;
    refused.error(409, "ALREADY_EXISTS");
    server.register("grace@example.com", Some("grace")).await;
}

async fn fifty_concurrent_registrations_of_one_email_give_one_success_and_49_conflicts(backend: Backend) {
    // The address's throttle counts taken identifiers: past its free failures it answers 429
    // first, which it does here whenever the requests are not all in flight at once (the
    // Lambda backend runs at most 8 instances of a function).
    let lockout = LockoutPolicy { ip_free_failures: 100, ..test_config().lockout };
    let server = TestServer::start_with(backend, Config { lockout, ..test_config() }).await;
    let attempts =
        (0..50).map(|_| server.post("/v1/auth/register", json!({"email": "race@example.com", "password": PASSWORD})));
    let replies = futures::future::join_all(attempts).await;
    let created = replies.iter().filter(|reply| reply.status == 201).count();
    let conflicts = replies.iter().filter(|reply| reply.status == 409).count();
    assert_eq!((created, conflicts), (1, 49), "statuses: {:?}", replies.iter().map(|r| r.status).collect::<Vec<_>>());
}

async fn login_works_with_email_username_or_phone(backend: Backend) {
    let server = TestServer::start(backend).await;
    let body = json!({"email": "ada@example.com", "password": PASSWORD, "username": "ada", "phone": "+14155550101"});
    let user_id = Tokens::of(&server.post("/v1/auth/register", body).await).user_id;
    for identifier in
        [json!({"email": "ADA@example.com"}), json!({"username": "Ada"}), json!({"phone": "+1 (415) 555-0101"})]
    {
        let mut body = identifier.clone();
        body["password"] = json!(PASSWORD);
        let reply = server.post("/v1/auth/login", body).await;
        assert_eq!(reply.status, 200, "login with {identifier}: {}", reply.body);
        assert_eq!(Tokens::of(&reply).user_id, user_id);
    }
}

async fn wrong_password_and_unknown_user_get_the_same_401(backend: Backend) {
    let server = TestServer::start(backend).await;
    server.register("ada@example.com", None).await;
    let wrong_password =
        server.post("/v1/auth/login", json!({"email": "ada@example.com", "password": "not the password"})).await;
    let unknown_user =
        server.post("/v1/auth/login", json!({"email": "nobody@example.com", "password": PASSWORD})).await;
    wrong_password.error(401, "UNAUTHENTICATED");
    assert_eq!(wrong_password.body, unknown_user.body, "the two failures must be indistinguishable");
    assert_eq!(wrong_password.status, unknown_user.status);
}

async fn refresh_rotates_the_pair_and_spends_the_old_token(backend: Backend) {
    let server = TestServer::start(backend).await;
    let first = server.register("ada@example.com", None).await;
    let reply = server.post("/v1/auth/refresh", json!({"refresh_token": first.refresh})).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let second = Tokens::of(&reply);
    assert_ne!(second.refresh, first.refresh);
    assert_eq!(server.get("/v1/users/me", Some(&second.access)).await.status, 200);
    let third = server.post("/v1/auth/refresh", json!({"refresh_token": second.refresh})).await;
    assert_eq!(third.status, 200, "the rotated token is usable once: {}", third.body);
}

async fn reusing_a_rotated_refresh_token_revokes_the_whole_family(backend: Backend) {
    let server = TestServer::start(backend).await;
    let stolen = server.register("ada@example.com", None).await;
    let legitimate = Tokens::of(&server.post("/v1/auth/refresh", json!({"refresh_token": stolen.refresh})).await);

    let replay = server.post("/v1/auth/refresh", json!({"refresh_token": stolen.refresh})).await;
    replay.error(401, "UNAUTHENTICATED");

    // Every token of that login is now dead: the newest refresh token and its access token.
    server.post("/v1/auth/refresh", json!({"refresh_token": legitimate.refresh})).await.error(401, "UNAUTHENTICATED");
    server.get("/v1/users/me", Some(&legitimate.access)).await.error(401, "UNAUTHENTICATED");
    // Other logins of the same user are untouched.
    let other = server.login("ada@example.com").await;
    assert_eq!(server.get("/v1/users/me", Some(&other.access)).await.status, 200);
}

async fn two_concurrent_refreshes_with_one_token_have_exactly_one_winner(backend: Backend) {
    let server = TestServer::start(backend).await;
    server.register("ada@example.com", None).await;
    for _ in 0..5 {
        let tokens = server.login("ada@example.com").await;
        let body = json!({"refresh_token": tokens.refresh});
        let (a, b) = tokio::join!(server.post("/v1/auth/refresh", body.clone()), server.post("/v1/auth/refresh", body));
        let mut statuses = [a.status, b.status];
        statuses.sort();
        assert_eq!(statuses, [200, 401], "a: {} b: {}", a.body, b.body);
    }
}

async fn logout_ends_the_session_and_its_access_tokens(backend: Backend) {
    let server = TestServer::start(backend).await;
    let tokens = server.register("ada@example.com", None).await;
    let reply = server.post("/v1/auth/logout", json!({"refresh_token": tokens.refresh})).await;
    assert_eq!((reply.status, reply.body.clone()), (200, json!({"success": true})));
    server.get("/v1/users/me", Some(&tokens.access)).await.error(401, "UNAUTHENTICATED");
    server.post("/v1/auth/refresh", json!({"refresh_token": tokens.refresh})).await.error(401, "UNAUTHENTICATED");
    server.post("/v1/auth/logout", json!({"refresh_token": tokens.refresh})).await.error(401, "UNAUTHENTICATED");
}

async fn logout_all_ends_every_session_of_the_caller_only(backend: Backend) {
    let server = TestServer::start(backend).await;
    let phone = server.register("ada@example.com", None).await;
    let laptop = server.login("ada@example.com").await;
    let grace = server.register("grace@example.com", None).await;

    let reply = server.post_authorized("/v1/auth/logout-all", &laptop.access, json!({})).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.body["sessions_ended"], 2);
    for tokens in [&phone, &laptop] {
        server.get("/v1/users/me", Some(&tokens.access)).await.error(401, "UNAUTHENTICATED");
        server.post("/v1/auth/refresh", json!({"refresh_token": tokens.refresh})).await.error(401, "UNAUTHENTICATED");
    }
    assert_eq!(server.get("/v1/users/me", Some(&grace.access)).await.status, 200);
}

async fn me_and_status_describe_the_caller(backend: Backend) {
    let server = TestServer::start(backend).await;
    let tokens = server.register("ada@example.com", Some("ada")).await;
    let me = server.get("/v1/users/me", Some(&tokens.access)).await;
    assert_eq!(me.status, 200);
    assert_eq!(
        (me.body["id"].as_str().unwrap(), me.body["username"].as_str().unwrap()),
        (tokens.user_id.as_str(), "ada")
    );
    let status = server.get("/v1/auth/status", Some(&tokens.access)).await;
    assert_eq!(status.status, 200);
    assert_eq!(status.body["user"], me.body);
    assert_eq!(status.body["totp_enabled"], false);
}

async fn introspection_is_active_only_for_live_access_tokens(backend: Backend) {
    let server = TestServer::start(backend).await;
    let tokens = server.register("ada@example.com", None).await;
    let active = server.post("/v1/auth/introspect", json!({"token": tokens.access})).await;
    assert_eq!(active.status, 200);
    assert_eq!(active.body["active"], true);
    assert_eq!(active.body["sub"], tokens.user_id.as_str());
    assert_eq!(active.body["iss"], "latchkey");
    assert_eq!(active.body["role"], "USER");
    assert!(active.body["sid"].is_string() && active.body["exp"].is_i64() && active.body["iat"].is_i64());

    for token in [tokens.refresh.as_str(), "garbage", ""] {
        let reply = server.post("/v1/auth/introspect", json!({"token": token})).await;
        assert_eq!((reply.status, reply.body.clone()), (200, json!({"active": false})), "token {token:?}");
    }
    server.post("/v1/auth/logout", json!({"refresh_token": tokens.refresh})).await;
    let ended = server.post("/v1/auth/introspect", json!({"token": tokens.access})).await;
    assert_eq!(ended.body, json!({"active": false}));
}

async fn jwks_publishes_the_key_that_verifies_access_tokens(backend: Backend) {
    let server = TestServer::start(backend).await;
    let tokens = server.register("ada@example.com", None).await;
    let jwks = server.get("/.well-known/jwks.json", None).await;
    assert_eq!(jwks.status, 200);
    let set: jsonwebtoken::jwk::JwkSet = serde_json::from_value(jwks.body).expect("a JWK Set");
    let header = jsonwebtoken::decode_header(&tokens.access).unwrap();
    assert_eq!(header.typ.as_deref(), Some("at+jwt"));
    let jwk = set.find(header.kid.as_deref().unwrap()).expect("the token's kid is published");
    let key = jsonwebtoken::DecodingKey::from_jwk(jwk).unwrap();
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::EdDSA);
    validation.set_audience(&["latchkey"]);
    validation.set_issuer(&["latchkey"]);
    let claims = jsonwebtoken::decode::<serde_json::Value>(&tokens.access, &key, &validation).expect("verifies").claims;
    assert_eq!(claims["sub"], tokens.user_id.as_str());
    for claim in ["sid", "jti", "iat", "exp", "role"] {
        assert!(claims.get(claim).is_some(), "claim {claim} missing");
    }
}

async fn introspection_and_protected_routes_see_the_account_as_stored_now(backend: Backend) {
    let server = TestServer::start(backend).await;
    let tokens = server.register("ada@example.com", None).await;
    let key = latchkey::store::Key::new(format!("USER#{}", tokens.user_id), "PROFILE");
    let mut user = server.store.get(&key).await.unwrap().expect("the user item");
    user.attributes.insert("role".into(), json!("ADMIN"));
    server
        .store
        .write(vec![latchkey::store::Write::put(user.clone(), latchkey::store::Condition::Always)])
        .await
        .unwrap();

    // The token still says USER; introspection reports the role that counts now.
    let reply = server.post("/v1/auth/introspect", json!({"token": tokens.access})).await;
    assert_eq!((reply.body["active"].clone(), reply.body["role"].clone()), (json!(true), json!("ADMIN")));

    user.attributes.insert("status".into(), json!("DELETED"));
    server.store.write(vec![latchkey::store::Write::put(user, latchkey::store::Condition::Always)]).await.unwrap();
    server.get("/v1/users/me", Some(&tokens.access)).await.error(401, "UNAUTHENTICATED");
    let reply = server.post("/v1/auth/introspect", json!({"token": tokens.access})).await;
    assert_eq!(reply.body, json!({"active": false}));
    server
        .post("/v1/auth/login", json!({"email": "ada@example.com", "password": PASSWORD}))
        .await
        .error(401, "UNAUTHENTICATED");
}
