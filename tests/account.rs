//! The password lifecycle and email verification end to end, reading links from the mail
//! each backend sent (the outbox, or SES in moto).

use latchkey::config::Config;
use latchkey::store::{Condition, Key, Write};
use latchkey_tests::{Backend, PASSWORD, TestServer, Tokens, on_every_backend, test_config, unique_email};
use serde_json::json;

on_every_backend!(
    forgot_then_reset_sets_the_password_ends_every_session_and_spends_the_link,
    a_reset_link_is_refused_when_unknown_malformed_superseded_or_expired,
    a_weak_new_password_is_400_and_leaves_the_link_usable,
    forgot_password_answers_the_same_for_unknown_addresses,
    changing_the_password_ends_the_other_sessions_and_sends_a_notice,
    a_wrong_current_password_changes_nothing,
    registration_mails_a_link_that_verifies_the_address_once,
    resending_verification_replaces_the_link_and_is_refused_once_verified,
);

const NEW_PASSWORD: &str = "a brand new passphrase";

/// Moves a stored secret's timestamp `attribute` by `seconds`, as if time had passed.
async fn shift_secret(server: &TestServer, key: &Key, attribute: &str, seconds: i64) {
    let mut item = server.store.get(key).await.unwrap().expect("the secret");
    let moved = item.attributes[attribute].as_i64().unwrap() + seconds;
    item.attributes.insert(attribute.into(), json!(moved));
    server.store.write(vec![Write::put(item, Condition::Always)]).await.unwrap();
}

async fn forgot(server: &TestServer, email: &str) -> String {
    let reply = server.post("/v1/auth/password/forgot", json!({"email": email})).await;
    assert_eq!(reply.status, 202, "{}", reply.body);
    let mail = server.last_mail_to(email).await;
    assert!(mail.subject.contains("Reset your"), "{mail:?}");
    mail.link_token()
}

async fn login_with(server: &TestServer, email: &str, password: &str) -> u16 {
    server.post("/v1/auth/login", json!({"email": email, "password": password})).await.status
}

async fn forgot_then_reset_sets_the_password_ends_every_session_and_spends_the_link(backend: Backend) {
    let server = TestServer::start(backend).await;
    let email = unique_email("ada");
    let session = server.register(&email, None).await;
    let token = forgot(&server, &email).await;
    let reset = json!({"token": token, "new_password": NEW_PASSWORD});
    let reply = server.post("/v1/auth/password/reset", reset.clone()).await;
    assert_eq!(reply.status, 200, "{}", reply.body);

    assert_eq!(login_with(&server, &email, PASSWORD).await, 401);
    assert_eq!(login_with(&server, &email, NEW_PASSWORD).await, 200);
    server.get("/v1/users/me", Some(&session.access)).await.error(401, "UNAUTHENTICATED");
    server.post("/v1/auth/refresh", json!({"refresh_token": session.refresh})).await.error(401, "UNAUTHENTICATED");
    server.post("/v1/auth/password/reset", reset).await.error(404, "NOT_FOUND");
    assert!(server.last_mail_to(&email).await.subject.contains("Your password was changed"));
}

async fn a_reset_link_is_refused_when_unknown_malformed_superseded_or_expired(backend: Backend) {
    let server = TestServer::start(backend).await;
    let email = unique_email("ada");
    let tokens = server.register(&email, None).await;
    let key = Key::new(format!("USER#{}", tokens.user_id), "SECRET#PASSWORD_RESET");
    let first = forgot(&server, &email).await;
    // Asked again within a minute, nothing new is sent: the inbox cannot be flooded.
    let sent = server.mailbox.messages_to(&email).await.len();
    assert_eq!(server.post("/v1/auth/password/forgot", json!({"email": email})).await.status, 202);
    assert_eq!(server.mailbox.messages_to(&email).await.len(), sent);
    // A minute later a new link is sent, and it replaces the first.
    shift_secret(&server, &key, "issued_at", -61).await;
    let second = forgot(&server, &email).await;
    assert_ne!(first, second);
    let reset = |token: &str| json!({"token": token, "new_password": NEW_PASSWORD});
    for token in [first.as_str(), "not-a-token", &format!("{}.{}", tokens.user_id, "A".repeat(43))] {
        let reply = server.post("/v1/auth/password/reset", reset(token)).await;
        reply.error(404, "NOT_FOUND");
    }
    // Expire the live link.
    shift_secret(&server, &key, "expires_at", -31 * 60).await;
    server.post("/v1/auth/password/reset", reset(&second)).await.error(404, "NOT_FOUND");
    assert_eq!(login_with(&server, &email, PASSWORD).await, 200, "nothing changed");
}

async fn a_weak_new_password_is_400_and_leaves_the_link_usable(backend: Backend) {
    let server = TestServer::start(backend).await;
    let email = unique_email("ada");
    server.register(&email, None).await;
    let token = forgot(&server, &email).await;
    let weak = server.post("/v1/auth/password/reset", json!({"token": token, "new_password": "short"})).await;
    weak.error(400, "INVALID_ARGUMENT");
    assert_eq!(weak.body["details"][0]["field"], "new_password");
    let reply = server.post("/v1/auth/password/reset", json!({"token": token, "new_password": NEW_PASSWORD})).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
}

async fn forgot_password_answers_the_same_for_unknown_addresses(backend: Backend) {
    let server = TestServer::start(backend).await;
    let email = unique_email("ada");
    server.register(&email, None).await;
    let known = server.post("/v1/auth/password/forgot", json!({"email": email})).await;
    let nobody = unique_email("nobody");
    let unknown = server.post("/v1/auth/password/forgot", json!({"email": nobody})).await;
    assert_eq!((known.status, unknown.status), (202, 202));
    assert_eq!(known.body, unknown.body);
    assert!(server.mailbox.messages_to(&nobody).await.is_empty());
    server.post("/v1/auth/password/forgot", json!({"email": "not an address"})).await.error(400, "INVALID_ARGUMENT");
}

async fn changing_the_password_ends_the_other_sessions_and_sends_a_notice(backend: Backend) {
    let server = TestServer::start(backend).await;
    let email = unique_email("ada");
    let other = server.register(&email, None).await;
    let current = server.login(&email).await;
    let change = json!({"current_password": PASSWORD, "new_password": NEW_PASSWORD});
    let reply = server.post_authorized("/v1/auth/password/change", &current.access, change).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.body["sessions_ended"], 1);

    assert_eq!(server.get("/v1/users/me", Some(&current.access)).await.status, 200, "this session stays");
    server.get("/v1/users/me", Some(&other.access)).await.error(401, "UNAUTHENTICATED");
    assert_eq!(login_with(&server, &email, NEW_PASSWORD).await, 200);
    assert_eq!(login_with(&server, &email, PASSWORD).await, 401);
    let notice = server.last_mail_to(&email).await;
    assert!(notice.subject.contains("Your password was changed"), "{notice:?}");
}

async fn a_wrong_current_password_changes_nothing(backend: Backend) {
    let server = TestServer::start(backend).await;
    let email = unique_email("ada");
    let tokens = server.register(&email, None).await;
    let change = json!({"current_password": "not my password", "new_password": NEW_PASSWORD});
    let reply = server.post_authorized("/v1/auth/password/change", &tokens.access, change).await;
    reply.error(403, "PERMISSION_DENIED");
    assert_eq!(reply.body["details"][0]["field"], "current_password");
    let weak = json!({"current_password": PASSWORD, "new_password": "short"});
    server.post_authorized("/v1/auth/password/change", &tokens.access, weak).await.error(400, "INVALID_ARGUMENT");
    let anonymous = server
        .post("/v1/auth/password/change", json!({"current_password": PASSWORD, "new_password": NEW_PASSWORD}))
        .await;
    anonymous.error(401, "UNAUTHENTICATED");
    assert_eq!(login_with(&server, &email, PASSWORD).await, 200);
}

async fn registration_mails_a_link_that_verifies_the_address_once(backend: Backend) {
    let server = TestServer::start(backend).await;
    let email = unique_email("ada");
    let tokens = server.register(&email, None).await;
    let mail = server.last_mail_to(&email).await;
    assert!(mail.subject.contains("Confirm your email address"), "{mail:?}");
    let token = mail.link_token();
    let reply = server.post("/v1/auth/email/verify", json!({"token": token})).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.body["user"]["is_email_verified"], true);
    assert_eq!(server.get("/v1/users/me", Some(&tokens.access)).await.body["is_email_verified"], true);
    server.post("/v1/auth/email/verify", json!({"token": token})).await.error(404, "NOT_FOUND");
    server.post("/v1/auth/email/verify", json!({"token": ""})).await.error(400, "INVALID_ARGUMENT");
}

async fn resending_verification_replaces_the_link_and_is_refused_once_verified(backend: Backend) {
    let server = TestServer::start(backend).await;
    let email = unique_email("ada");
    let tokens = server.register(&email, None).await;
    let first = server.last_mail_to(&email).await.link_token();
    // Within a minute of the first link, resending sends nothing new.
    let reply = server.post_authorized("/v1/auth/email/verify/resend", &tokens.access, json!({})).await;
    assert_eq!(reply.status, 202, "{}", reply.body);
    assert_eq!(server.last_mail_to(&email).await.link_token(), first);
    let key = Key::new(format!("USER#{}", tokens.user_id), "SECRET#EMAIL_VERIFICATION");
    shift_secret(&server, &key, "issued_at", -61).await;
    let reply = server.post_authorized("/v1/auth/email/verify/resend", &tokens.access, json!({})).await;
    assert_eq!(reply.status, 202, "{}", reply.body);
    let second = server.last_mail_to(&email).await.link_token();
    assert_ne!(first, second);
    server.post("/v1/auth/email/verify", json!({"token": first})).await.error(404, "NOT_FOUND");
    assert_eq!(server.post("/v1/auth/email/verify", json!({"token": second})).await.status, 200);
    let again = server.post_authorized("/v1/auth/email/verify/resend", &tokens.access, json!({})).await;
    again.error(400, "FAILED_PRECONDITION");
}

#[tokio::test]
async fn a_deployment_can_require_a_verified_email_before_sign_in() {
    let config = Config { require_verified_email: true, ..test_config() };
    let server = TestServer::start_with(Backend::Embedded, config).await;
    let email = unique_email("ada");
    let reply = server.post("/v1/auth/register", json!({"email": email, "password": PASSWORD})).await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    assert_eq!(reply.body["verification_required"], true);
    assert!(reply.body.get("access_token").is_none(), "no tokens before verification");

    let refused = server.post("/v1/auth/login", json!({"email": email, "password": PASSWORD})).await;
    refused.error(403, "PERMISSION_DENIED");
    assert_eq!(refused.body["details"][0]["reason"], "EMAIL_NOT_VERIFIED");
    // A wrong password still reads as a wrong password: the unverified state is only told to the owner.
    assert_eq!(login_with(&server, &email, "not the password").await, 401);

    let token = server.last_mail_to(&email).await.link_token();
    assert_eq!(server.post("/v1/auth/email/verify", json!({"token": token})).await.status, 200);
    let signed_in = server.post("/v1/auth/login", json!({"email": email, "password": PASSWORD})).await;
    assert_eq!(signed_in.status, 200, "{}", signed_in.body);
    Tokens::of(&signed_in);
}
