//! Brute-force protection: failures counted per login name (seen), per account (silent) and
//! per client address, in the store; and the unlock link that lets the owner past a lock.
//!
//! The doubling delays after the free failures start at one second, measured in whole
//! seconds, so a test cannot count on one still holding a moment later. These tests lock by
//! the hourly cap instead (set low), which holds until the window ends; the delays themselves
//! are unit-tested in `service::throttle`.

use latchkey::config::{Config, LockoutPolicy};
use latchkey::store::{Condition, Key, Write};
use latchkey_tests::{Backend, PASSWORD, Reply, TestServer, on_both_backends, test_config, unique_email};
use serde_json::json;

on_both_backends!(
    past_the_hourly_cap_the_account_is_locked_without_checking_the_password,
    an_unknown_account_locks_exactly_like_a_real_one,
    a_success_resets_the_account_counter,
    concurrent_wrong_passwords_are_each_counted_and_none_past_the_cap_is_checked,
    one_address_failing_against_many_accounts_is_locked,
    wrong_current_passwords_on_signed_in_routes_count_too,
    a_lock_earned_through_the_username_is_not_seen_through_the_email_or_phone,
    the_owner_signs_in_past_a_lock_with_a_mailed_unlock_link_nobody_else_can_void,
    an_unlock_link_is_mailed_only_for_a_locked_account_and_a_wrong_token_changes_nothing,
    trying_phone_numbers_that_are_taken_is_throttled_like_failed_logins,
);

/// At most six failures per account per hour.
const CAP: u32 = 6;

async fn capped_server(backend: Backend) -> TestServer {
    let lockout = LockoutPolicy { account_max_failures_per_hour: CAP, ..LockoutPolicy::default() };
    TestServer::start_with(backend, Config { lockout, ..test_config() }).await
}

async fn wrong_login(server: &TestServer, email: &str) -> Reply {
    server.post("/v1/auth/login", json!({"email": email, "password": "definitely wrong"})).await
}

fn assert_locked(reply: &Reply) -> i64 {
    reply.error(429, "RESOURCE_EXHAUSTED");
    assert_eq!(reply.body["details"][0]["reason"], "TOO_MANY_ATTEMPTS", "{}", reply.body);
    let retry_after: i64 = reply.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert_eq!(reply.body["details"][0]["retry_after_seconds"], json!(retry_after));
    retry_after
}

async fn fail_up_to_the_cap(server: &TestServer, email: &str) {
    for _ in 0..CAP {
        wrong_login(server, email).await.error(401, "UNAUTHENTICATED");
    }
}

fn counter_key(user_id: &str) -> Key {
    Key::new(format!("THROTTLE#ACCOUNT#{user_id}"), "COUNTER")
}

/// The counter of a login name, as typed (`email:...`, `username:...`, `phone:...`).
fn name_counter_key(canonical: &str) -> Key {
    Key::new(format!("THROTTLE#NAME#{}", latchkey::crypto::secrets::hash(canonical)), "COUNTER")
}

/// Moves a failure counter's window an hour into the past, as if the hour had gone by.
async fn age_counter(server: &TestServer, key: Key) {
    let mut counter = server.store.get(&key).await.unwrap().expect("a failure counter");
    let started = counter.attributes["window_started_at"].as_i64().unwrap();
    counter.attributes.insert("window_started_at".into(), json!(started - 3601));
    server.store.write(vec![Write::put(counter, Condition::Always)]).await.unwrap();
}

async fn past_the_hourly_cap_the_account_is_locked_without_checking_the_password(backend: Backend) {
    let server = capped_server(backend).await;
    let email = unique_email("ada");
    let tokens = server.register(&email, None).await;
    fail_up_to_the_cap(&server, &email).await;
    let locked = server.post("/v1/auth/login", json!({"email": email, "password": PASSWORD})).await;
    let retry_after = assert_locked(&locked);
    assert!((3000..=3600).contains(&retry_after), "locked until the hour is over: {retry_after}");

    // An hour later the window has passed and the right password works again.
    age_counter(&server, counter_key(&tokens.user_id)).await;
    age_counter(&server, name_counter_key(&format!("email:{email}"))).await;
    let reply = server.post("/v1/auth/login", json!({"email": email, "password": PASSWORD})).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
}

async fn an_unknown_account_locks_exactly_like_a_real_one(backend: Backend) {
    let server = capped_server(backend).await;
    let (known, unknown) = (unique_email("ada"), unique_email("nobody"));
    server.register(&known, None).await;
    fail_up_to_the_cap(&server, &known).await;
    fail_up_to_the_cap(&server, &unknown).await;
    let (a, b) = (wrong_login(&server, &known).await, wrong_login(&server, &unknown).await);
    assert_eq!((a.status, b.status), (429, 429));
    assert_eq!(a.body["status"], b.body["status"]);
    assert_eq!(a.body["details"][0]["reason"], b.body["details"][0]["reason"]);
}

async fn a_success_resets_the_account_counter(backend: Backend) {
    let server = TestServer::start(backend).await;
    let email = unique_email("ada");
    let tokens = server.register(&email, None).await;
    for _ in 0..4 {
        wrong_login(&server, &email).await.error(401, "UNAUTHENTICATED");
    }
    server.login(&email).await;
    assert!(server.store.get(&counter_key(&tokens.user_id)).await.unwrap().is_none(), "the counter is cleared");
    // Five more failures are free again.
    for _ in 0..5 {
        wrong_login(&server, &email).await.error(401, "UNAUTHENTICATED");
    }
    server.login(&email).await;
}

async fn concurrent_wrong_passwords_are_each_counted_and_none_past_the_cap_is_checked(backend: Backend) {
    let server = capped_server(backend).await;
    let email = unique_email("ada");
    let tokens = server.register(&email, None).await;
    let replies = futures::future::join_all((0..20).map(|_| wrong_login(&server, &email))).await;
    let checked = replies.iter().filter(|reply| reply.status == 401).count();
    let refused = replies.iter().filter(|reply| reply.status == 429).count();
    assert_eq!(checked + refused, 20, "statuses: {:?}", replies.iter().map(|r| r.status).collect::<Vec<_>>());
    // Every attempt is counted before its password is checked, so a burst gets no more
    // guesses than the cap, however many arrive at once.
    assert!((1..=CAP as usize).contains(&checked), "{checked} passwords were checked");
    let stored = server.store.get(&counter_key(&tokens.user_id)).await.unwrap().expect("a counter");
    assert_eq!(stored.attributes["failures"], json!(checked));
}

async fn one_address_failing_against_many_accounts_is_locked(backend: Backend) {
    let lockout = LockoutPolicy { ip_max_failures_per_hour: 4, ..LockoutPolicy::default() };
    let server = TestServer::start_with(backend, Config { lockout, ..test_config() }).await;
    let email = unique_email("ada");
    server.register(&email, None).await;
    // Four different accounts, one failure each: no account is locked, the address is.
    for _ in 0..4 {
        wrong_login(&server, &unique_email("someone")).await.error(401, "UNAUTHENTICATED");
    }
    assert_locked(&server.post("/v1/auth/login", json!({"email": email, "password": PASSWORD})).await);
}

async fn wrong_current_passwords_on_signed_in_routes_count_too(backend: Backend) {
    let server = capped_server(backend).await;
    let email = unique_email("ada");
    let tokens = server.register(&email, None).await;
    let change = json!({"current_password": "guess", "new_password": "a brand new passphrase"});
    for _ in 0..CAP {
        let reply = server.post_authorized("/v1/auth/password/change", &tokens.access, change.clone()).await;
        reply.error(403, "PERMISSION_DENIED");
    }
    assert_locked(&server.post_authorized("/v1/auth/password/change", &tokens.access, change).await);
    // The account is locked for password sign-in too, silently: the right password gets the
    // wrong-password answer (the login name itself earned no lock to show).
    let refused = server.post("/v1/auth/login", json!({"email": email, "password": PASSWORD})).await;
    assert_eq!(refused.error(401, "UNAUTHENTICATED"), "invalid credentials");
}

/// Registers `ada` with a username and a phone; answers (email, username, phone).
async fn ada_with_three_names(server: &TestServer) -> (String, String, String) {
    let (email, username) = (unique_email("ada"), format!("ada_{}", &uuid::Uuid::new_v4().simple().to_string()[..8]));
    let phone = format!("+1415555{:04}", rand_digits());
    let body = json!({"email": email, "password": PASSWORD, "username": username, "phone": phone});
    assert_eq!(server.post("/v1/auth/register", body).await.status, 201);
    (email, username, phone)
}

fn rand_digits() -> u16 {
    (uuid::Uuid::new_v4().as_u128() % 10_000) as u16
}

async fn a_lock_earned_through_the_username_is_not_seen_through_the_email_or_phone(backend: Backend) {
    let server = capped_server(backend).await;
    let (email, username, phone) = ada_with_three_names(&server).await;
    for _ in 0..CAP {
        let reply = server.post("/v1/auth/login", json!({"username": username, "password": "wrong"})).await;
        reply.error(401, "UNAUTHENTICATED");
    }
    assert_locked(&server.post("/v1/auth/login", json!({"username": username, "password": "wrong"})).await);
    // The account's own email and phone answer exactly like names of nobody: 401, not 429.
    let nobody = wrong_login(&server, &unique_email("nobody")).await;
    for body in [
        json!({"email": email, "password": "wrong"}),
        json!({"phone": phone, "password": "wrong"}),
        json!({"email": email, "password": PASSWORD}),
    ] {
        let reply = server.post("/v1/auth/login", body.clone()).await;
        assert_eq!((reply.status, &reply.body), (nobody.status, &nobody.body), "{body}");
    }
}

async fn the_owner_signs_in_past_a_lock_with_a_mailed_unlock_link_nobody_else_can_void(backend: Backend) {
    let server = capped_server(backend).await;
    let (email, username, _) = ada_with_three_names(&server).await;
    for _ in 0..=CAP {
        server.post("/v1/auth/login", json!({"username": username, "password": "wrong"})).await;
    }
    let right = json!({"username": username, "password": PASSWORD});
    assert_locked(&server.post("/v1/auth/login", right.clone()).await);
    let asked = server.post("/v1/auth/unlock", json!({"username": username})).await;
    assert_eq!(asked.status, 202, "{}", asked.body);
    let mail = server.last_mail_to(&email).await;
    assert!(mail.subject.contains("past a lockout"), "{}", mail.subject);
    // Others asking again, or trying tokens, do not take the owner's link away.
    assert_eq!(server.post("/v1/auth/unlock", json!({"username": username})).await.status, 202);
    for _ in 0..10 {
        let guess = json!({"username": username, "password": PASSWORD, "unlock_token": format!("{}.guess", uuid::Uuid::new_v4())});
        assert_locked(&server.post("/v1/auth/login", guess).await);
    }
    let mut with_code = right.clone();
    with_code["unlock_token"] = json!(mail.link_token());
    let reply = server.post("/v1/auth/login", with_code.clone()).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    // The locks are gone, for every name of the account; the code worked once.
    assert_eq!(server.post("/v1/auth/login", right).await.status, 200);
    assert_eq!(server.post("/v1/auth/login", json!({"email": email, "password": PASSWORD})).await.status, 200);
    for _ in 0..=CAP {
        server.post("/v1/auth/login", json!({"username": username, "password": "wrong"})).await;
    }
    assert_locked(&server.post("/v1/auth/login", with_code).await);
}

async fn an_unlock_link_is_mailed_only_for_a_locked_account_and_a_wrong_token_changes_nothing(backend: Backend) {
    let server = capped_server(backend).await;
    let (email, username, _) = ada_with_three_names(&server).await;
    // Not locked: the same answer, and no mail.
    let asked = server.post("/v1/auth/unlock", json!({"username": username})).await;
    let unknown = server.post("/v1/auth/unlock", json!({"username": "nobody_at_all"})).await;
    assert_eq!((asked.status, &asked.body), (unknown.status, &unknown.body));
    assert!(server.mailbox.messages_to(&email).await.iter().all(|mail| !mail.subject.contains("lockout")));
    fail_up_to_the_cap(&server, &email).await;
    assert_eq!(server.post("/v1/auth/unlock", json!({"email": email})).await.status, 202);
    let token = server.last_mail_to(&email).await.link_token();
    // Another account's token, or a tampered one, lifts nothing.
    let (id, secret) = token.split_once('.').unwrap();
    for wrong in [format!("{}.{secret}", uuid::Uuid::new_v4()), format!("{id}.{}", "A".repeat(43))] {
        let guess = json!({"email": email, "password": PASSWORD, "unlock_token": wrong});
        assert_locked(&server.post("/v1/auth/login", guess).await);
    }
    let right = json!({"email": email, "password": PASSWORD, "unlock_token": token});
    assert_eq!(server.post("/v1/auth/login", right).await.status, 200);
}

async fn trying_phone_numbers_that_are_taken_is_throttled_like_failed_logins(backend: Backend) {
    let server = capped_server(backend).await;
    let (_, _, taken) = ada_with_three_names(&server).await;
    let prober = server.register(&unique_email("mallory"), None).await;
    for _ in 0..CAP {
        let reply = server.patch_authorized("/v1/users/me", &prober.access, json!({"phone": taken})).await;
        reply.error(409, "ALREADY_EXISTS");
        assert_eq!(reply.body["details"][0]["field"], "phone");
    }
    assert_locked(&server.patch_authorized("/v1/users/me", &prober.access, json!({"phone": taken})).await);
    // Locked, a free number gets the same answer: nothing tells the two apart any more.
    let free = format!("+1650555{:04}", rand_digits());
    assert_locked(&server.patch_authorized("/v1/users/me", &prober.access, json!({"phone": free})).await);
}

/// An owner asked for a second factor comes back with the same unlock token: it is spent only
/// when the whole sign-in succeeds, so nobody can re-lock them between the two steps.
#[tokio::test]
async fn an_unlock_link_outlives_the_second_factor_step() {
    let server = capped_server(Backend::Embedded).await;
    let email = unique_email("ada");
    let tokens = server.register(&email, None).await;
    let on = json!({"enabled": true, "password": PASSWORD});
    assert_eq!(server.put_authorized("/v1/users/me/mfa/email", &tokens.access, on).await.status, 200);
    fail_up_to_the_cap(&server, &email).await;
    assert_eq!(server.post("/v1/auth/unlock", json!({"email": email})).await.status, 202);
    let token = server.last_mail_to(&email).await.link_token();
    let first = json!({"email": email, "password": PASSWORD, "unlock_token": token});
    let asked = server.post("/v1/auth/login", first).await;
    asked.error(401, "UNAUTHENTICATED");
    assert_eq!(asked.body["details"][0]["reason"], "MFA_REQUIRED", "{}", asked.body);
    assert_eq!(server.post("/v1/auth/email-code", json!({"email": email})).await.status, 202);
    let code = server.last_mail_to(&email).await.code();
    let second = json!({"email": email, "password": PASSWORD, "unlock_token": token, "email_code": code});
    let reply = server.post("/v1/auth/login", second.clone()).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
}
