//! Second factors end to end: TOTP with recovery codes, and email codes, on the embedded
//! store with the outbox and on DynamoDB with SES (both in moto).

use latchkey::crypto::totp;
use latchkey::store::Key;
use latchkey_tests::{Backend, PASSWORD, Reply, TestServer, Tokens, on_every_backend, test_config, unique_email};
use serde_json::{Value, json};

on_every_backend!(
    totp_setup_then_login_needs_a_code_and_accepts_each_code_once,
    totp_is_inactive_until_a_code_confirms_it_and_wrong_secrets_change_nothing,
    a_recovery_code_signs_in_once_and_its_use_is_notified,
    disabling_totp_needs_the_password_and_a_code_and_voids_recovery_codes,
    the_totp_secret_is_stored_sealed,
    email_codes_turned_on_make_login_need_the_code_from_the_latest_mail,
    an_email_code_is_burned_after_five_wrong_guesses,
    asking_for_an_email_code_answers_the_same_for_unknown_accounts,
    turning_email_codes_off_needs_a_fresh_code_not_just_the_password,
    a_reset_of_a_never_proven_address_removes_the_second_factor_set_up_before_it,
    a_reset_keeps_totp_set_up_on_a_proven_address,
);

fn now() -> u64 {
    time::OffsetDateTime::now_utc().unix_timestamp() as u64
}

/// A six-digit code that is certainly not `code`.
fn another_code(code: &str) -> String {
    format!("{:06}", (code.parse::<u32>().unwrap() + 1) % 1_000_000)
}

fn secret_of(enrollment: &Reply) -> Vec<u8> {
    let base32 = enrollment.body["secret"].as_str().expect("a secret");
    totp_rs::Secret::try_from_base32(base32).expect("base32").as_ref().to_vec()
}

/// Registers a user and turns TOTP on; answers their tokens, the secret and the recovery codes.
async fn user_with_totp(server: &TestServer, email: &str) -> (Tokens, Vec<u8>, Vec<String>) {
    let tokens = server.register(email, None).await;
    let enrollment =
        server.post_authorized("/v1/auth/totp/enable", &tokens.access, json!({"password": PASSWORD})).await;
    assert_eq!(enrollment.status, 200, "{}", enrollment.body);
    let secret = secret_of(&enrollment);
    let code = totp::code_at(&secret, 6, now());
    let verified = server.post_authorized("/v1/auth/totp/verify", &tokens.access, json!({"totp_code": code})).await;
    assert_eq!(verified.status, 200, "{}", verified.body);
    let codes = verified.body["recovery_codes"].as_array().unwrap().iter().map(|c| c.as_str().unwrap().to_owned());
    (tokens, secret, codes.collect())
}

async fn login(server: &TestServer, email: &str, factor: Value) -> Reply {
    let mut body = json!({"email": email, "password": PASSWORD});
    if let (Some(body), Some(factor)) = (body.as_object_mut(), factor.as_object()) {
        body.extend(factor.clone());
    }
    server.post("/v1/auth/login", body).await
}

fn assert_mfa_required(reply: &Reply, method: &str) {
    reply.error(401, "UNAUTHENTICATED");
    assert_eq!(reply.body["details"][0]["reason"], "MFA_REQUIRED", "{}", reply.body);
    assert!(reply.body["details"][0]["methods"].as_array().unwrap().contains(&json!(method)), "{}", reply.body);
    assert!(reply.body.get("access_token").is_none());
}

async fn totp_setup_then_login_needs_a_code_and_accepts_each_code_once(backend: Backend) {
    let server = TestServer::start(backend).await;
    let email = unique_email("ada");
    let (tokens, secret, recovery_codes) = user_with_totp(&server, &email).await;
    assert_eq!(recovery_codes.len(), 10);
    let status = server.get("/v1/auth/status", Some(&tokens.access)).await;
    assert_eq!(status.body["totp_enabled"], true, "{}", status.body);

    assert_mfa_required(&login(&server, &email, json!({})).await, "totp_code");
    // The setup code's time step is spent; the next step's code is within the one-step skew.
    let next = totp::code_at(&secret, 6, now() + 30);
    let reply = login(&server, &email, json!({"totp_code": next})).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    // ASVS 2.8.4: the same code again, still inside its window, is refused; so is an older one.
    let replayed = login(&server, &email, json!({"totp_code": next})).await;
    replayed.error(401, "UNAUTHENTICATED");
    assert_eq!(replayed.body["details"][0]["reason"], "INVALID_SECOND_FACTOR");
    let older = totp::code_at(&secret, 6, now());
    login(&server, &email, json!({"totp_code": older})).await.error(401, "UNAUTHENTICATED");

    let notice = server.last_mail_to(&email).await;
    assert!(notice.subject.contains("Authenticator app sign-in turned on"), "{notice:?}");
}

async fn totp_is_inactive_until_a_code_confirms_it_and_wrong_secrets_change_nothing(backend: Backend) {
    let server = TestServer::start(backend).await;
    let email = unique_email("ada");
    let tokens = server.register(&email, None).await;
    let wrong =
        server.post_authorized("/v1/auth/totp/enable", &tokens.access, json!({"password": "wrong password"})).await;
    wrong.error(403, "PERMISSION_DENIED");
    assert_eq!(wrong.body["details"][0]["field"], "password");

    let enrollment =
        server.post_authorized("/v1/auth/totp/enable", &tokens.access, json!({"password": PASSWORD})).await;
    assert_eq!(enrollment.status, 200, "{}", enrollment.body);
    let url = enrollment.body["url"].as_str().unwrap();
    assert!(url.starts_with("otpauth://totp/Latchkey:") && url.contains("issuer=Latchkey"), "{url}");
    assert!(enrollment.body["qr_png"].as_str().unwrap().starts_with("data:image/png;base64,"));
    // Not active yet: login still needs the password only.
    assert_eq!(login(&server, &email, json!({})).await.status, 200);

    let secret = secret_of(&enrollment);
    let wrong_code = another_code(&totp::code_at(&secret, 6, now()));
    let refused =
        server.post_authorized("/v1/auth/totp/verify", &tokens.access, json!({"totp_code": wrong_code})).await;
    refused.error(403, "PERMISSION_DENIED");
    let status = server.get("/v1/auth/status", Some(&tokens.access)).await;
    assert_eq!(status.body["totp_enabled"], false);
    assert_eq!(login(&server, &email, json!({})).await.status, 200);

    let code = totp::code_at(&secret, 6, now());
    let verified = server.post_authorized("/v1/auth/totp/verify", &tokens.access, json!({"totp_code": code})).await;
    assert_eq!(verified.status, 200, "{}", verified.body);
    let again = server.post_authorized("/v1/auth/totp/enable", &tokens.access, json!({"password": PASSWORD})).await;
    again.error(400, "FAILED_PRECONDITION");
}

async fn a_recovery_code_signs_in_once_and_its_use_is_notified(backend: Backend) {
    let server = TestServer::start(backend).await;
    let email = unique_email("ada");
    let (_, _, codes) = user_with_totp(&server, &email).await;
    // Typed the way people type them: upper case, spaces instead of dashes.
    let typed = codes[3].to_uppercase().replace('-', " ");
    let reply = login(&server, &email, json!({"recovery_code": typed})).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    login(&server, &email, json!({"recovery_code": codes[3]})).await.error(401, "UNAUTHENTICATED");
    login(&server, &email, json!({"recovery_code": "aaaa-bbbb-cccc-dddd"})).await.error(401, "UNAUTHENTICATED");

    let notice = server.last_mail_to(&email).await;
    assert!(notice.subject.contains("A recovery code was used"), "{notice:?}");
    assert!(notice.body.contains("9 unused recovery codes remain"), "{}", notice.body);
}

async fn disabling_totp_needs_the_password_and_a_code_and_voids_recovery_codes(backend: Backend) {
    let server = TestServer::start(backend).await;
    let email = unique_email("ada");
    let (tokens, secret, codes) = user_with_totp(&server, &email).await;
    let next = totp::code_at(&secret, 6, now() + 30);
    let wrong_password = json!({"password": "not it at all", "totp_code": next});
    server
        .post_authorized("/v1/auth/totp/disable", &tokens.access, wrong_password)
        .await
        .error(403, "PERMISSION_DENIED");
    let wrong_code = json!({"password": PASSWORD, "totp_code": another_code(&next)});
    server.post_authorized("/v1/auth/totp/disable", &tokens.access, wrong_code).await.error(403, "PERMISSION_DENIED");
    let reply = server
        .post_authorized("/v1/auth/totp/disable", &tokens.access, json!({"password": PASSWORD, "totp_code": next}))
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);

    assert_eq!(server.get("/v1/auth/status", Some(&tokens.access)).await.body["totp_enabled"], false);
    assert_eq!(login(&server, &email, json!({})).await.status, 200, "the password alone signs in again");
    let recovery = server.store.query(&format!("USER#{}", tokens.user_id), "RECOVERY#").await.unwrap();
    assert!(recovery.is_empty(), "recovery codes are deleted with TOTP");
    assert!(!codes.is_empty());
    assert!(server.last_mail_to(&email).await.subject.contains("turned off"));
}

async fn the_totp_secret_is_stored_sealed(backend: Backend) {
    let server = TestServer::start(backend).await;
    let email = unique_email("ada");
    let (tokens, secret, codes) = user_with_totp(&server, &email).await;
    let item = server.store.get(&Key::new(format!("USER#{}", tokens.user_id), "PROFILE")).await.unwrap().unwrap();
    let stored = serde_json::to_string(&item.attributes).unwrap();
    let base32 = totp_rs::Secret::from(secret.clone()).to_base32();
    assert!(!stored.contains(&base32), "the TOTP secret is not stored in the clear");
    assert!(item.attributes["second_factors"]["totp"]["sealed_secret"].is_string(), "{stored}");
    let recovery = server.store.query(&format!("USER#{}", tokens.user_id), "RECOVERY#").await.unwrap();
    assert_eq!(recovery.len(), 10);
    let all = serde_json::to_string(&recovery.iter().map(|item| &item.attributes).collect::<Vec<_>>()).unwrap();
    assert!(codes.iter().all(|code| !all.contains(code.as_str()) && !all.contains(&code.replace('-', ""))));
}

async fn email_codes_turned_on_make_login_need_the_code_from_the_latest_mail(backend: Backend) {
    let server = TestServer::start(backend).await;
    let email = unique_email("ada");
    let tokens = server.register(&email, None).await;
    let setting = json!({"enabled": true, "password": PASSWORD});
    let reply = server.put_authorized("/v1/users/me/mfa/email", &tokens.access, setting).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert!(server.last_mail_to(&email).await.subject.contains("Email codes turned on"));
    assert_eq!(server.get("/v1/auth/status", Some(&tokens.access)).await.body["email_codes_enabled"], true);

    assert_mfa_required(&login(&server, &email, json!({})).await, "email_code");
    let asked = server.post("/v1/auth/email-code", json!({"email": email})).await;
    assert_eq!(asked.status, 202, "{}", asked.body);
    let mail = server.last_mail_to(&email).await;
    assert!(mail.subject.contains("sign-in code"), "{mail:?}");
    let code = mail.code();
    let reply = login(&server, &email, json!({"email_code": code})).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    login(&server, &email, json!({"email_code": code})).await.error(401, "UNAUTHENTICATED");
}

async fn an_email_code_is_burned_after_five_wrong_guesses(backend: Backend) {
    let server = TestServer::start(backend).await;
    let email = unique_email("ada");
    let tokens = server.register(&email, None).await;
    let setting = json!({"enabled": true, "password": PASSWORD});
    assert_eq!(server.put_authorized("/v1/users/me/mfa/email", &tokens.access, setting).await.status, 200);
    assert_eq!(server.post("/v1/auth/email-code", json!({"email": email})).await.status, 202);
    let code = server.last_mail_to(&email).await.code();
    let wrong = another_code(&code);
    for _ in 0..5 {
        login(&server, &email, json!({"email_code": wrong})).await.error(401, "UNAUTHENTICATED");
    }
    // The right code no longer works: five wrong guesses burned it.
    login(&server, &email, json!({"email_code": code})).await.error(401, "UNAUTHENTICATED");
    // A new code waits out the minute from the burned one: the inbox cannot be flooded.
    assert_eq!(server.post("/v1/auth/email-code", json!({"email": email})).await.status, 202);
    assert_eq!(server.last_mail_to(&email).await.code(), code, "no new code within the minute");
    let key = Key::new(format!("USER#{}", tokens.user_id), "SECRET#EMAIL_CODE");
    let burned = server.store.get(&key).await.unwrap().expect("the burned code is kept until it expires");
    assert_eq!(burned.attributes["attempts"], 5);
}

async fn asking_for_an_email_code_answers_the_same_for_unknown_accounts(backend: Backend) {
    let server = TestServer::start(backend).await;
    let email = unique_email("ada");
    let tokens = server.register(&email, None).await;
    let setting = json!({"enabled": true, "password": PASSWORD});
    assert_eq!(server.put_authorized("/v1/users/me/mfa/email", &tokens.access, setting).await.status, 200);
    let mails_before = server.mailbox.messages_to(&email).await.len();
    let known = server.post("/v1/auth/email-code", json!({"email": email})).await;
    let unknown_email = unique_email("nobody");
    let unknown = server.post("/v1/auth/email-code", json!({"email": unknown_email})).await;
    let unknown_name = server.post("/v1/auth/email-code", json!({"username": "nobody_here"})).await;
    assert_eq!((known.status, unknown.status, unknown_name.status), (202, 202, 202));
    assert_eq!(known.body, unknown.body);
    assert_eq!(known.body, unknown_name.body);
    assert_eq!(server.mailbox.messages_to(&email).await.len(), mails_before + 1);
    assert!(server.mailbox.messages_to(&unknown_email).await.is_empty());

    // An account that does not sign in with email codes is sent none (same answer).
    let plain = unique_email("plain");
    server.register(&plain, None).await;
    let sent = server.mailbox.messages_to(&plain).await.len();
    assert_eq!(server.post("/v1/auth/email-code", json!({"email": plain})).await.body, known.body);
    assert_eq!(server.mailbox.messages_to(&plain).await.len(), sent);
}

#[tokio::test]
async fn a_deployment_can_require_email_codes_of_every_account() {
    let config = latchkey::config::Config { require_email_codes: true, ..test_config() };
    let server = TestServer::start_with(Backend::Embedded, config).await;
    let email = unique_email("ada");
    server.register(&email, None).await;
    assert_mfa_required(&login(&server, &email, json!({})).await, "email_code");
    assert_eq!(server.post("/v1/auth/email-code", json!({"email": email})).await.status, 202);
    let code = server.last_mail_to(&email).await.code();
    assert_eq!(login(&server, &email, json!({"email_code": code})).await.status, 200);
}

/// Interoperability with an independent authenticator: Python's pyotp reads the otpauth:// URL
/// and its code confirms the setup.
#[tokio::test]
async fn an_independent_authenticator_reading_the_otpauth_url_produces_accepted_codes() {
    let python = std::env::var("LATCHKEY_TEST_PYTHON").unwrap_or_else(|_| {
        panic!(
            "LATCHKEY_TEST_PYTHON is not set. Run the test command (`./scripts/test`), which installs pyotp into \
             .venv, or `pip install pyotp` and export LATCHKEY_TEST_PYTHON=<that python>"
        )
    });
    let server = TestServer::start(Backend::Embedded).await;
    let email = unique_email("ada");
    let tokens = server.register(&email, None).await;
    let enrollment =
        server.post_authorized("/v1/auth/totp/enable", &tokens.access, json!({"password": PASSWORD})).await;
    let url = enrollment.body["url"].as_str().unwrap();
    let script = "import sys, pyotp; t = pyotp.parse_uri(sys.argv[1]); print(t.issuer, t.name, t.now())";
    let output = std::process::Command::new(&python).args(["-c", script, url]).output().expect("python runs");
    assert!(output.status.success(), "pyotp failed: {}", String::from_utf8_lossy(&output.stderr));
    let printed = String::from_utf8(output.stdout).unwrap();
    let fields: Vec<&str> = printed.split_whitespace().collect();
    assert_eq!(fields[..2], ["Latchkey", email.as_str()], "pyotp reads issuer and account: {printed}");
    let verified =
        server.post_authorized("/v1/auth/totp/verify", &tokens.access, json!({"totp_code": fields[2]})).await;
    assert_eq!(verified.status, 200, "pyotp's code is accepted: {}", verified.body);
}

async fn turning_email_codes_off_needs_a_fresh_code_not_just_the_password(backend: Backend) {
    let server = TestServer::start(backend).await;
    let email = unique_email("ada");
    let tokens = server.register(&email, None).await;
    let on = json!({"enabled": true, "password": PASSWORD});
    assert_eq!(server.put_authorized("/v1/users/me/mfa/email", &tokens.access, on).await.status, 200);
    let off = json!({"enabled": false, "password": PASSWORD});
    let missing = server.put_authorized("/v1/users/me/mfa/email", &tokens.access, off.clone()).await;
    missing.error(400, "INVALID_ARGUMENT");
    assert_eq!(missing.body["details"][0]["field"], "email_code", "{}", missing.body);
    assert_eq!(server.post("/v1/auth/email-code", json!({"email": email})).await.status, 202);
    let code = server.last_mail_to(&email).await.code();
    let wrong = json!({"enabled": false, "password": PASSWORD, "email_code": another_code(&code)});
    server.put_authorized("/v1/users/me/mfa/email", &tokens.access, wrong).await.error(403, "PERMISSION_DENIED");
    assert_eq!(server.get("/v1/auth/status", Some(&tokens.access)).await.body["email_codes_enabled"], true);
    let right = json!({"enabled": false, "password": PASSWORD, "email_code": code});
    let reply = server.put_authorized("/v1/users/me/mfa/email", &tokens.access, right).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(server.get("/v1/auth/status", Some(&tokens.access)).await.body["email_codes_enabled"], false);
    assert!(server.last_mail_to(&email).await.subject.contains("Email codes turned off"));
}

async fn a_reset_of_a_never_proven_address_removes_the_second_factor_set_up_before_it(backend: Backend) {
    let server = TestServer::start(backend).await;
    // Whether or not the owner, not knowing, opened the verification link in between.
    for owner_opened_the_verification_link in [false, true] {
        let email = unique_email("victim");
        // Whoever registered the address sets up TOTP before its owner ever saw it...
        user_with_totp(&server, &email).await;
        if owner_opened_the_verification_link {
            let token = server.mailbox.messages_to(&email).await[0].link_token();
            assert_eq!(server.post("/v1/auth/email/verify", json!({"token": token})).await.status, 200);
        }
        assert_mfa_required(&login(&server, &email, json!({})).await, "totp_code");
        // ...and the owner resets the password from the mail.
        assert_eq!(server.post("/v1/auth/password/forgot", json!({"email": email})).await.status, 202);
        let token = server.last_mail_to(&email).await.link_token();
        let reset = json!({"token": token, "new_password": "the owner's own passphrase"});
        assert_eq!(server.post("/v1/auth/password/reset", reset).await.status, 200);
        let body = json!({"email": email, "password": "the owner's own passphrase"});
        let reply = server.post("/v1/auth/login", body).await;
        assert_eq!(reply.status, 200, "no second factor of the squatter's is left: {}", reply.body);
        assert!(server.mailbox.messages_to(&email).await.iter().any(|mail| mail.subject.contains("turned off")));
    }
}

async fn a_reset_keeps_totp_set_up_on_a_proven_address(backend: Backend) {
    let server = TestServer::start(backend).await;
    let email = unique_email("ada");
    let tokens = server.register(&email, None).await;
    let token = server.last_mail_to(&email).await.link_token();
    assert_eq!(server.post("/v1/auth/email/verify", json!({"token": token})).await.status, 200);
    let enrollment =
        server.post_authorized("/v1/auth/totp/enable", &tokens.access, json!({"password": PASSWORD})).await;
    let code = totp::code_at(&secret_of(&enrollment), 6, now());
    assert_eq!(
        server.post_authorized("/v1/auth/totp/verify", &tokens.access, json!({"totp_code": code})).await.status,
        200
    );
    assert_eq!(server.post("/v1/auth/password/forgot", json!({"email": email})).await.status, 202);
    let token = server.last_mail_to(&email).await.link_token();
    let reset = json!({"token": token, "new_password": "a new passphrase"});
    assert_eq!(server.post("/v1/auth/password/reset", reset).await.status, 200);
    // Control of the mailbox alone does not get past the second factor.
    let reply = server.post("/v1/auth/login", json!({"email": email, "password": "a new passphrase"})).await;
    assert_mfa_required(&reply, "totp_code");
}

/// Email codes follow the address: with a stolen session and the password alone, nobody may
/// move the second factor to an inbox of their own.
#[tokio::test]
async fn a_new_email_of_an_account_with_a_second_factor_needs_a_fresh_code() {
    let server = TestServer::start(Backend::Embedded).await;
    let email = unique_email("ada");
    let tokens = server.register(&email, None).await;
    let on = json!({"enabled": true, "password": PASSWORD});
    assert_eq!(server.put_authorized("/v1/users/me/mfa/email", &tokens.access, on).await.status, 200);
    let new = unique_email("mallory");
    let change = json!({"email": new, "current_password": PASSWORD});
    let refused = server.patch_authorized("/v1/users/me", &tokens.access, change).await;
    refused.error(400, "INVALID_ARGUMENT");
    assert_eq!(refused.body["details"][0]["field"], "email_code", "{}", refused.body);
    assert_eq!(server.post("/v1/auth/email-code", json!({"email": email})).await.status, 202);
    let code = server.last_mail_to(&email).await.code();
    let change = json!({"email": new, "current_password": PASSWORD, "email_code": code});
    let reply = server.patch_authorized("/v1/users/me", &tokens.access, change).await;
    assert_eq!((reply.status, reply.body["pending_email"].as_str()), (200, Some(new.as_str())), "{}", reply.body);
}
