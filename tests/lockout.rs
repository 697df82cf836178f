//! Brute-force protection: failures counted per account and per client address, in the store.

use latchkey::config::{Config, LockoutPolicy};
use latchkey::store::Key;
use latchkey_tests::{Backend, PASSWORD, Reply, TestServer, on_both_backends, test_config, unique_email};
use serde_json::json;

on_both_backends!(
    after_five_free_failures_the_account_is_locked_without_checking_the_password,
    an_unknown_account_locks_exactly_like_a_real_one,
    a_success_resets_the_account_counter,
    concurrent_wrong_passwords_are_each_counted_and_at_most_six_are_checked,
    one_address_failing_against_many_accounts_is_locked,
    wrong_current_passwords_on_signed_in_routes_count_too,
);

async fn wrong_login(server: &TestServer, email: &str) -> Reply {
    server.post("/v1/auth/login", json!({"email": email, "password": "definitely wrong"})).await
}

fn assert_locked(reply: &Reply) -> i64 {
    reply.error(429, "RESOURCE_EXHAUSTED");
    assert_eq!(reply.body["details"][0]["reason"], "TOO_MANY_ATTEMPTS", "{}", reply.body);
    let retry_after: i64 = reply.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!(retry_after >= 1, "Retry-After: {retry_after}");
    retry_after
}

/// Five failures are free; the sixth is checked and sets a one-second lock, so the seventh
/// attempt is refused unchecked.
async fn fail_six_times(server: &TestServer, email: &str) {
    for _ in 0..6 {
        wrong_login(server, email).await.error(401, "UNAUTHENTICATED");
    }
}

async fn after_five_free_failures_the_account_is_locked_without_checking_the_password(backend: Backend) {
    let server = TestServer::start(backend).await;
    let email = unique_email("ada");
    server.register(&email, None).await;
    fail_six_times(&server, &email).await;
    let locked = server.post("/v1/auth/login", json!({"email": email, "password": PASSWORD})).await;
    let retry_after = assert_locked(&locked);
    // The lock expires: after Retry-After the right password works again.
    tokio::time::sleep(std::time::Duration::from_millis(retry_after as u64 * 1000 + 100)).await;
    let reply = server.post("/v1/auth/login", json!({"email": email, "password": PASSWORD})).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
}

async fn an_unknown_account_locks_exactly_like_a_real_one(backend: Backend) {
    let server = TestServer::start(backend).await;
    let (known, unknown) = (unique_email("ada"), unique_email("nobody"));
    server.register(&known, None).await;
    // Interleaved, so that neither one-second lock has run out when it is probed.
    for _ in 0..6 {
        wrong_login(&server, &known).await.error(401, "UNAUTHENTICATED");
        wrong_login(&server, &unknown).await.error(401, "UNAUTHENTICATED");
    }
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
    let counter = Key::new(format!("THROTTLE#ACCOUNT#{}", tokens.user_id), "COUNTER");
    assert!(server.store.get(&counter).await.unwrap().is_none(), "the counter is cleared");
    // Five more failures are free again.
    for _ in 0..5 {
        wrong_login(&server, &email).await.error(401, "UNAUTHENTICATED");
    }
    server.login(&email).await;
}

async fn concurrent_wrong_passwords_are_each_counted_and_at_most_six_are_checked(backend: Backend) {
    let server = TestServer::start(backend).await;
    let email = unique_email("ada");
    let tokens = server.register(&email, None).await;
    let replies = futures::future::join_all((0..20).map(|_| wrong_login(&server, &email))).await;
    let checked = replies.iter().filter(|reply| reply.status == 401).count();
    let refused = replies.iter().filter(|reply| reply.status == 429).count();
    assert_eq!(checked + refused, 20, "statuses: {:?}", replies.iter().map(|r| r.status).collect::<Vec<_>>());
    // Every checked attempt was counted before its password was checked, so a burst cannot
    // get more guesses than a patient attacker.
    assert!((1..=6).contains(&checked), "{checked} passwords were checked");
    let counter = Key::new(format!("THROTTLE#ACCOUNT#{}", tokens.user_id), "COUNTER");
    let stored = server.store.get(&counter).await.unwrap().expect("a counter");
    assert_eq!(stored.attributes["failures"], json!(checked));
}

async fn one_address_failing_against_many_accounts_is_locked(backend: Backend) {
    let lockout = LockoutPolicy { ip_free_failures: 3, ..LockoutPolicy::default() };
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
    let server = TestServer::start(backend).await;
    let email = unique_email("ada");
    let tokens = server.register(&email, None).await;
    let change = json!({"current_password": "guess", "new_password": "a brand new passphrase"});
    for _ in 0..6 {
        server
            .post_authorized("/v1/auth/password/change", &tokens.access, change.clone())
            .await
            .error(403, "PERMISSION_DENIED");
    }
    assert_locked(&server.post_authorized("/v1/auth/password/change", &tokens.access, change).await);
    assert_locked(&server.post("/v1/auth/login", json!({"email": email, "password": PASSWORD})).await);
}
