//! Profiles, the user directory, roles, account deletion and friends, over HTTP on both backends.

use latchkey::config::Config;
use latchkey_tests::{Backend, PASSWORD, Reply, TestServer, Tokens, on_every_backend, test_config, unique_email};
use serde_json::{Value, json};

on_every_backend!(
    patching_me_changes_profile_fields_and_a_taken_value_is_409_changing_nothing,
    a_new_email_needs_the_password_and_is_the_accounts_only_once_its_owner_confirms_it,
    an_address_set_by_someone_else_stays_free_for_its_owner,
    a_reset_link_only_works_for_the_address_the_account_has,
    members_filters_are_bounded_and_the_documented_unicode_filters_work,
    withdrawing_ends_sessions_frees_every_value_and_reads_as_404,
    a_user_record_is_readable_by_its_owner_and_admins_only,
    listing_filters_by_regex_in_creation_order_and_pages,
    non_admins_see_public_profiles_only_and_cannot_filter_by_email,
    is_connected_follows_live_sessions,
    admins_change_roles_and_statuses_and_the_last_admin_stays,
    ten_concurrent_changes_to_one_username_have_exactly_one_winner,
    two_admins_demoting_each_other_at_once_leave_one_admin,
    friendship_is_mutual_and_made_and_ended_by_one_call,
    friends_refuse_yourself_strangers_duplicates_and_the_cap,
);

async fn user(server: &TestServer, name: &str) -> (String, Tokens) {
    let email = unique_email(name);
    let tokens = server.register(&email, Some(&format!("{name}_{}", &email[name.len() + 1..name.len() + 7]))).await;
    (email, tokens)
}

async fn admin(server: &TestServer) -> (String, Tokens) {
    let (email, _) = user(server, "admin").await;
    server.make_admin(&email).await;
    let tokens = server.login(&email).await;
    (email, tokens)
}

fn usernames(reply: &Reply) -> Vec<String> {
    reply.body["users"].as_array().unwrap().iter().map(|u| u["username"].as_str().unwrap_or("").to_owned()).collect()
}

async fn patching_me_changes_profile_fields_and_a_taken_value_is_409_changing_nothing(backend: Backend) {
    let server = TestServer::start(backend).await;
    let (_, ada) = user(&server, "ada").await;
    let (_, grace) = user(&server, "grace").await;
    let change = json!({"username": "ada_lovelace", "phone": "+44 20 7946 0001", "extra": {"theme": "dark"}});
    let reply = server.patch_authorized("/v1/users/me", &ada.access, change).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.body["username"], "ada_lovelace");
    assert_eq!(reply.body["phone"], "+442079460001");
    assert_eq!(reply.body["extra"], json!({"theme": "dark"}));
    let me = server.get("/v1/users/me", Some(&ada.access)).await;
    assert_eq!(me.body["extra"], json!({"theme": "dark"}));

    // `extra` is replaced as a whole; `null` clears the phone.
    let reply =
        server.patch_authorized("/v1/users/me", &ada.access, json!({"extra": {"lang": "en"}, "phone": null})).await;
    assert_eq!(reply.body["extra"], json!({"lang": "en"}));
    assert_eq!(reply.body["phone"], Value::Null);

    let taken = server
        .patch_authorized("/v1/users/me", &grace.access, json!({"username": "ADA_LOVELACE", "extra": {"x": 1}}))
        .await;
    taken.error(409, "ALREADY_EXISTS");
    assert_eq!(taken.body["details"][0]["field"], "username");
    let grace_now = server.get("/v1/users/me", Some(&grace.access)).await;
    assert_eq!(grace_now.body["extra"], json!({}), "a refused change changes nothing");
    // The released phone number is free for someone else.
    assert_eq!(
        server.patch_authorized("/v1/users/me", &grace.access, json!({"phone": "+442079460001"})).await.status,
        200
    );

    let oversize = json!({"extra": {"blob": "x".repeat(5000)}});
    let reply = server.patch_authorized("/v1/users/me", &ada.access, oversize).await;
    reply.error(400, "INVALID_ARGUMENT");
    assert_eq!(reply.body["details"][0]["field"], "extra");
    server.patch_authorized("/v1/users/me", &ada.access, json!({"extra": [1]})).await.error(400, "INVALID_ARGUMENT");
    // What DynamoDB could not store is refused on both backends alike.
    for extra in [json!({"": 1}), json!({"x": 1e300})] {
        let reply = server.patch_authorized("/v1/users/me", &ada.access, json!({"extra": extra})).await;
        reply.error(400, "INVALID_ARGUMENT");
    }
    server
        .patch_authorized("/v1/users/me", &ada.access, json!({"username": "a b"}))
        .await
        .error(400, "INVALID_ARGUMENT");
}

async fn a_new_email_needs_the_password_and_is_the_accounts_only_once_its_owner_confirms_it(backend: Backend) {
    let server = TestServer::start(backend).await;
    let (old, ada) = user(&server, "ada").await;
    let token = server.last_mail_to(&old).await.link_token();
    assert_eq!(server.post("/v1/auth/email/verify", json!({"token": token})).await.status, 200);
    let new = unique_email("ada-new");
    assert_eq!(server.post("/v1/auth/password/forgot", json!({"email": old})).await.status, 202);
    let reset_token = server.last_mail_to(&old).await.link_token();

    let missing = server.patch_authorized("/v1/users/me", &ada.access, json!({"email": new})).await;
    missing.error(400, "INVALID_ARGUMENT");
    assert_eq!(missing.body["details"][0]["field"], "current_password");
    let wrong = json!({"email": new, "current_password": "not my password"});
    server.patch_authorized("/v1/users/me", &ada.access, wrong).await.error(403, "PERMISSION_DENIED");

    let change = json!({"email": new, "current_password": PASSWORD});
    let reply = server.patch_authorized("/v1/users/me", &ada.access, change).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    // Pending: the account keeps its address, which keeps signing in.
    assert_eq!((reply.body["email"].as_str(), reply.body["pending_email"].as_str()), (Some(&*old), Some(&*new)));
    assert_eq!(reply.body["is_email_verified"], true);
    assert!(server.last_mail_to(&old).await.subject.contains("A new email address was requested"));
    let confirm_token = server.last_mail_to(&new).await.link_token();
    assert!(server.last_mail_to(&new).await.subject.contains("Confirm your new email address"));
    assert_eq!(server.post("/v1/auth/login", json!({"email": old, "password": PASSWORD})).await.status, 200);
    assert_eq!(server.post("/v1/auth/login", json!({"email": new, "password": PASSWORD})).await.status, 401);
    // Giving the account's own address withdraws a pending change; asking again renews it.
    let withdrawn = server.patch_authorized("/v1/users/me", &ada.access, json!({"email": old})).await;
    assert!(withdrawn.body["pending_email"].is_null(), "{}", withdrawn.body);
    let change = json!({"email": new, "current_password": PASSWORD});
    let renewed = server.patch_authorized("/v1/users/me", &ada.access, change).await;
    assert_eq!(renewed.body["pending_email"], new.as_str());

    // The link works only for the signed-in owner of the account it was sent for.
    let body = json!({"token": confirm_token});
    server.post("/v1/users/me/email/confirm", body.clone()).await.error(401, "UNAUTHENTICATED");
    let (_, grace) = user(&server, "grace").await;
    server.post_authorized("/v1/users/me/email/confirm", &grace.access, body.clone()).await.error(404, "NOT_FOUND");
    let confirmed = server.post_authorized("/v1/users/me/email/confirm", &ada.access, body.clone()).await;
    assert_eq!(confirmed.status, 200, "{}", confirmed.body);
    assert_eq!(
        (confirmed.body["user"]["email"].as_str(), confirmed.body["user"]["is_email_verified"].as_bool()),
        (Some(&*new), Some(true))
    );
    assert!(confirmed.body["user"]["pending_email"].is_null());
    assert!(server.last_mail_to(&old).await.subject.contains("Your email address was changed"));
    server.post_authorized("/v1/users/me/email/confirm", &ada.access, body).await.error(404, "NOT_FOUND");
    // A reset link sent to the old address died with it.
    let reset = json!({"token": reset_token, "new_password": "taken over by the old mailbox"});
    server.post("/v1/auth/password/reset", reset).await.error(404, "NOT_FOUND");
    assert_eq!(server.post("/v1/auth/login", json!({"email": new, "password": PASSWORD})).await.status, 200);
    assert_eq!(server.post("/v1/auth/login", json!({"email": old, "password": PASSWORD})).await.status, 401);
    server.register(&old, None).await;
    // The old address still hears about what happens to the account for a while.
    let change = json!({"current_password": PASSWORD, "new_password": "another long passphrase"});
    assert_eq!(server.post_authorized("/v1/auth/password/change", &ada.access, change).await.status, 200);
    assert!(server.last_mail_to(&old).await.subject.contains("Your password was changed"));
}

async fn an_address_set_by_someone_else_stays_free_for_its_owner(backend: Backend) {
    let server = TestServer::start(backend).await;
    let (_, mallory) = user(&server, "mallory").await;
    let victim = unique_email("victim");
    let claim = json!({"email": victim, "current_password": PASSWORD});
    assert_eq!(server.patch_authorized("/v1/users/me", &mallory.access, claim).await.status, 200);
    // Nothing is claimed: the owner registers and signs in as usual.
    let owner = server.register(&victim, None).await;
    assert_eq!(server.post("/v1/auth/login", json!({"email": victim, "password": PASSWORD})).await.status, 200);
    // The owner opening mallory's link, signed in to their own account, attaches nothing.
    let mallorys_link = server.mailbox.messages_to(&victim).await.into_iter().find(|m| m.subject.contains("new email"));
    let token = mallorys_link.expect("mallory's confirmation link").link_token();
    let reply = server.post_authorized("/v1/users/me/email/confirm", &owner.access, json!({"token": token})).await;
    reply.error(404, "NOT_FOUND");
    assert_ne!(server.get("/v1/users/me", Some(&mallory.access)).await.body["email"], victim.as_str());
}

async fn a_reset_link_only_works_for_the_address_the_account_has(backend: Backend) {
    use latchkey::store::{Condition, Key, Write};
    let server = TestServer::start(backend).await;
    let (old, ada) = user(&server, "ada").await;
    assert_eq!(server.post("/v1/auth/password/forgot", json!({"email": old})).await.status, 202);
    let reset_token = server.last_mail_to(&old).await.link_token();
    // A reset issued to the old address while the address changes (the race the discard in
    // the change cannot see) leaves its record behind: kept aside here, put back after.
    let key = Key::new(format!("USER#{}", ada.user_id), "SECRET#PASSWORD_RESET");
    let raced = server.store.get(&key).await.unwrap().expect("the reset secret");
    let new = unique_email("ada-new");
    let change = json!({"email": new, "current_password": PASSWORD});
    assert_eq!(server.patch_authorized("/v1/users/me", &ada.access, change).await.status, 200);
    let token = server.last_mail_to(&new).await.link_token();
    let confirmed = server.post_authorized("/v1/users/me/email/confirm", &ada.access, json!({"token": token})).await;
    assert_eq!(confirmed.status, 200, "{}", confirmed.body);
    server.store.write(vec![Write::put(raced, Condition::Always)]).await.unwrap();
    let reset = json!({"token": reset_token, "new_password": "taken over by the old mailbox"});
    server.post("/v1/auth/password/reset", reset).await.error(404, "NOT_FOUND");
    assert_eq!(server.post("/v1/auth/login", json!({"email": new, "password": PASSWORD})).await.status, 200);
}

async fn withdrawing_ends_sessions_frees_every_value_and_reads_as_404(backend: Backend) {
    let server = TestServer::start(backend).await;
    let (_, admin) = admin(&server).await;
    let email = unique_email("ada");
    let ada = server.register(&email, Some("ada_withdraws")).await;
    let grace = server.register(&unique_email("grace"), Some("grace_stays")).await;
    assert_eq!(server.put_authorized("/v1/users/me/friends/grace_stays", &ada.access, json!({})).await.status, 200);
    let other_session = server.login(&email).await;
    server
        .delete_authorized("/v1/users/me", &ada.access, Some(json!({"password": "wrong one"})))
        .await
        .error(403, "PERMISSION_DENIED");
    let reply = server.delete_authorized("/v1/users/me", &ada.access, Some(json!({"password": PASSWORD}))).await;
    assert_eq!(reply.status, 200, "{}", reply.body);

    server.get("/v1/users/me", Some(&other_session.access)).await.error(401, "UNAUTHENTICATED");
    server.post("/v1/auth/refresh", json!({"refresh_token": ada.refresh})).await.error(401, "UNAUTHENTICATED");
    server.get(&format!("/v1/users/{}", ada.user_id), Some(&admin.access)).await.error(404, "NOT_FOUND");
    assert_eq!(server.post("/v1/auth/login", json!({"email": email, "password": PASSWORD})).await.status, 401);
    // Gone for good: an admin cannot bring it back, and its friendships ended.
    let revive = server
        .patch_authorized(&format!("/v1/users/{}", ada.user_id), &admin.access, json!({"status": "NORMAL"}))
        .await;
    revive.error(404, "NOT_FOUND");
    let friends = server.get("/v1/users/me/friends", Some(&grace.access)).await;
    assert_eq!(friends.body["friends"], json!([]));
    let count = latchkey::store::Key::new(format!("USER#{}", grace.user_id), "FRIENDS");
    assert!(server.store.get(&count).await.unwrap().is_none(), "the friend count went back to zero");
    // Its email and username are free for a new account.
    server.register(&email, Some("ada_withdraws")).await;
}

async fn a_user_record_is_readable_by_its_owner_and_admins_only(backend: Backend) {
    let server = TestServer::start(backend).await;
    let (_, ada) = user(&server, "ada").await;
    let (_, grace) = user(&server, "grace").await;
    let (_, admin) = admin(&server).await;
    let path = format!("/v1/users/{}", ada.user_id);
    assert_eq!(server.get(&path, Some(&ada.access)).await.body["id"], ada.user_id.as_str());
    server.get(&path, Some(&grace.access)).await.error(403, "PERMISSION_DENIED");
    let seen = server.get(&path, Some(&admin.access)).await;
    assert_eq!(seen.status, 200, "{}", seen.body);
    assert!(seen.body["email"].is_string());
    server.get(&path, None).await.error(401, "UNAUTHENTICATED");
    server.get(&format!("/v1/users/{}", uuid::Uuid::new_v4()), Some(&admin.access)).await.error(404, "NOT_FOUND");
    server.get("/v1/users/not-an-id", Some(&admin.access)).await.error(404, "NOT_FOUND");
    // A token whose session ended is refused like an expired one.
    server.post_authorized("/v1/auth/logout-all", &grace.access, json!({})).await;
    server.get(&path, Some(&grace.access)).await.error(401, "UNAUTHENTICATED");
    assert_eq!(server.delete_authorized(&path, &admin.access, None).await.status, 200);
    server.get(&path, Some(&admin.access)).await.error(404, "NOT_FOUND");
}

async fn listing_filters_by_regex_in_creation_order_and_pages(backend: Backend) {
    let server = TestServer::start(backend).await;
    let (_, admin) = admin(&server).await;
    for name in ["alice", "bob", "alfred", "carol", "albert"] {
        server.register(&unique_email(name), Some(name)).await;
    }
    let all = server.get("/v1/users?size=100", Some(&admin.access)).await;
    assert_eq!(all.status, 200, "{}", all.body);
    assert_eq!(all.body["total_count"], 6);
    assert_eq!(usernames(&all)[1..], ["alice", "bob", "alfred", "carol", "albert"], "creation order");

    let filtered = server.get("/v1/users?filter_name=%5Eal&size=2", Some(&admin.access)).await;
    assert_eq!(
        (filtered.body["total_count"].clone(), filtered.body["page"].clone(), filtered.body["size"].clone()),
        (json!(3), json!(1), json!(2))
    );
    assert_eq!(usernames(&filtered), ["alice", "alfred"]);
    let second = server.get("/v1/users?filter_name=%5Eal&size=2&page=2", Some(&admin.access)).await;
    assert_eq!(usernames(&second), ["albert"]);
    let beyond = server.get("/v1/users?filter_name=%5Eal&size=2&page=9", Some(&admin.access)).await;
    assert_eq!((beyond.body["total_count"].clone(), usernames(&beyond).len()), (json!(3), 0));

    let by_email = server.get("/v1/users?filter_email=carol-", Some(&admin.access)).await;
    assert_eq!(usernames(&by_email), ["carol"]);
    for (query, field) in [
        ("filter_name=(", "filter_name"),
        ("filter_name=%5Cw%7B1000%7D%5Cw%7B1000%7D", "filter_name"),
        ("page=0", "page"),
        ("size=1000", "size"),
        ("size=0", "size"),
        ("page=two", "page"),
    ] {
        let reply = server.get(&format!("/v1/users?{query}"), Some(&admin.access)).await;
        reply.error(400, "INVALID_ARGUMENT");
        assert_eq!(reply.body["details"][0]["field"], field, "{query}: {}", reply.body);
    }
}

/// `/v1/users?filter_name=<pattern>`, the pattern encoded for a query string.
fn filtered_by_name(pattern: &str) -> String {
    let mut url = reqwest::Url::parse("http://localhost/v1/users").unwrap();
    url.query_pairs_mut().append_pair("filter_name", pattern);
    format!("{}?{}", url.path(), url.query().unwrap())
}

async fn members_filters_are_bounded_and_the_documented_unicode_filters_work(backend: Backend) {
    let server = TestServer::start(backend).await;
    let (_, ada) = user(&server, "ada").await;
    server.register(&unique_email("zoe"), Some("Zoe_M")).await;
    // The examples of the API document: case-insensitive, and Unicode classes.
    let insensitive = server.get(&filtered_by_name("(?i)^ADA_"), Some(&ada.access)).await;
    assert_eq!(insensitive.status, 200, "{}", insensitive.body);
    assert_eq!(insensitive.body["total_count"], 1);
    let letters = server.get(&filtered_by_name(r"^\p{Lu}\p{Ll}+_\p{Lu}$"), Some(&ada.access)).await;
    assert_eq!(usernames(&letters), ["Zoe_M"]);
    // Nested counted repetitions cost every entry dearly: members may not send them.
    let costly = server.get(&filtered_by_name("(?:(?:.{0,6}){0,6}){0,6}!"), Some(&ada.access)).await;
    let message = costly.error(400, "INVALID_ARGUMENT");
    assert_eq!(costly.body["details"][0]["field"], "filter_name");
    assert!(message.contains("too complex"), "{message}");
}

async fn non_admins_see_public_profiles_only_and_cannot_filter_by_email(backend: Backend) {
    let server = TestServer::start(backend).await;
    let (_, ada) = user(&server, "ada").await;
    let (_, deleted) = user(&server, "gone").await;
    let (_, admin) = admin(&server).await;
    server.delete_authorized(&format!("/v1/users/{}", deleted.user_id), &admin.access, None).await;
    let listed = server.get("/v1/users", Some(&ada.access)).await;
    assert_eq!(listed.status, 200, "{}", listed.body);
    assert_eq!(listed.body["total_count"], 2, "the deleted account is not listed: {}", listed.body);
    for user in listed.body["users"].as_array().unwrap() {
        let mut keys: Vec<&str> = user.as_object().unwrap().keys().map(String::as_str).collect();
        keys.sort();
        assert_eq!(keys, ["avatar", "id", "is_connected", "username"], "{user}");
    }
    server.get("/v1/users?filter_email=.", Some(&ada.access)).await.error(403, "PERMISSION_DENIED");
    server.get("/v1/users", None).await.error(401, "UNAUTHENTICATED");
    let admin_view = server.get("/v1/users", Some(&admin.access)).await;
    assert_eq!(admin_view.body["total_count"], 3, "admins see deleted accounts too");
}

async fn is_connected_follows_live_sessions(backend: Backend) {
    let server = TestServer::start(backend).await;
    let (_, ada) = user(&server, "ada").await;
    let (_, grace) = user(&server, "grace").await;
    let connected = |reply: &Reply, id: &str| {
        reply.body["users"].as_array().unwrap().iter().find(|u| u["id"] == id).expect("listed")["is_connected"].clone()
    };
    let listed = server.get("/v1/users", Some(&ada.access)).await;
    assert_eq!(connected(&listed, &grace.user_id), true);
    server.post_authorized("/v1/auth/logout-all", &grace.access, json!({})).await;
    let listed = server.get("/v1/users", Some(&ada.access)).await;
    assert_eq!(connected(&listed, &grace.user_id), false);
}

async fn admins_change_roles_and_statuses_and_the_last_admin_stays(backend: Backend) {
    let server = TestServer::start(backend).await;
    let (_, admin) = admin(&server).await;
    let (_, ada) = user(&server, "ada").await;
    let path = format!("/v1/users/{}", ada.user_id);
    server.patch_authorized(&path, &ada.access, json!({"role": "ADMIN"})).await.error(403, "PERMISSION_DENIED");
    let promoted = server.patch_authorized(&path, &admin.access, json!({"role": "ADMIN"})).await;
    assert_eq!(promoted.body["role"], "ADMIN", "{}", promoted.body);
    // At once, with her old token: admin routes read the role from the store.
    assert_eq!(server.get("/v1/users?filter_email=.", Some(&ada.access)).await.status, 200);
    let refreshed = server.post("/v1/auth/refresh", json!({"refresh_token": ada.refresh})).await;
    assert_eq!(refreshed.body["user"]["role"], "ADMIN");

    let admin_id = server.get("/v1/users/me", Some(&admin.access)).await.body["id"].as_str().unwrap().to_owned();
    let demoted = server.patch_authorized(&format!("/v1/users/{admin_id}"), &ada.access, json!({"role": "USER"})).await;
    assert_eq!(demoted.status, 200, "{}", demoted.body);
    // Ada is now the only admin: she can neither demote nor delete herself, nor withdraw.
    server.patch_authorized(&path, &ada.access, json!({"role": "USER"})).await.error(400, "FAILED_PRECONDITION");
    server.delete_authorized(&path, &ada.access, None).await.error(400, "FAILED_PRECONDITION");
    let withdraw = server.delete_authorized("/v1/users/me", &ada.access, Some(json!({"password": PASSWORD}))).await;
    withdraw.error(400, "FAILED_PRECONDITION");

    let bad = server.patch_authorized(&path, &ada.access, json!({"status": "WITHDRAWN"})).await;
    bad.error(400, "INVALID_ARGUMENT");
    server.patch_authorized(&path, &ada.access, json!({"role": "ROOT"})).await.error(400, "INVALID_ARGUMENT");

    // Suspending an account ends its sessions; restoring it lets it sign in again.
    let (grace_email, grace) = user(&server, "grace").await;
    let grace_path = format!("/v1/users/{}", grace.user_id);
    let suspended = server.patch_authorized(&grace_path, &ada.access, json!({"status": "DELETED"})).await;
    assert_eq!(suspended.body["status"], "DELETED", "{}", suspended.body);
    server.get("/v1/users/me", Some(&grace.access)).await.error(401, "UNAUTHENTICATED");
    assert_eq!(server.post("/v1/auth/login", json!({"email": grace_email, "password": PASSWORD})).await.status, 401);
    server.patch_authorized(&grace_path, &ada.access, json!({"status": "NORMAL"})).await;
    assert_eq!(server.post("/v1/auth/login", json!({"email": grace_email, "password": PASSWORD})).await.status, 200);
}

async fn ten_concurrent_changes_to_one_username_have_exactly_one_winner(backend: Backend) {
    let server = TestServer::start(backend).await;
    let mut users = Vec::new();
    for n in 0..10 {
        users.push(user(&server, &format!("racer{n}")).await.1);
    }
    let attempts =
        users.iter().map(|u| server.patch_authorized("/v1/users/me", &u.access, json!({"username": "the_one"})));
    let replies = futures::future::join_all(attempts).await;
    let statuses: Vec<u16> = replies.iter().map(|r| r.status).collect();
    assert_eq!(statuses.iter().filter(|s| **s == 200).count(), 1, "{statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == 409).count(), 9, "{statuses:?}");
    let winner = replies.iter().find(|r| r.status == 200).unwrap().body["id"].clone();
    let owners = server.get("/v1/users?filter_name=%5Ethe_one%24", Some(&users[0].access)).await;
    assert_eq!(owners.body["total_count"], 1);
    assert_eq!(owners.body["users"][0]["id"], winner);
}

async fn two_admins_demoting_each_other_at_once_leave_one_admin(backend: Backend) {
    let server = TestServer::start(backend).await;
    let (_, first) = admin(&server).await;
    let (_, second) = admin(&server).await;
    let (first_path, second_path) = (format!("/v1/users/{}", first.user_id), format!("/v1/users/{}", second.user_id));
    let a = server.patch_authorized(&second_path, &first.access, json!({"role": "USER"}));
    let b = server.patch_authorized(&first_path, &second.access, json!({"role": "USER"}));
    let (a, b) = tokio::join!(a, b);
    let statuses = [a.status, b.status];
    assert!(statuses.contains(&200), "{statuses:?}: {} {}", a.body, b.body);
    let mut roles = Vec::new();
    for tokens in [&first, &second] {
        roles.push(server.get("/v1/users/me", Some(&tokens.access)).await.body["role"].clone());
    }
    assert_eq!(roles.iter().filter(|role| **role == "ADMIN").count(), 1, "exactly one admin remains: {roles:?}");
}

async fn friendship_is_mutual_and_made_and_ended_by_one_call(backend: Backend) {
    let server = TestServer::start(backend).await;
    let ada = server.register(&unique_email("ada"), Some("ada_f")).await;
    let grace = server.register(&unique_email("grace"), Some("grace_f")).await;
    let (_, admin) = admin(&server).await;
    let added = server.put_authorized("/v1/users/me/friends/Grace_F", &ada.access, json!({})).await;
    assert_eq!(added.status, 200, "{}", added.body);
    assert_eq!(added.body["friend"]["username"], "grace_f");
    let names = |reply: &Reply| -> Vec<String> {
        reply.body["friends"].as_array().unwrap().iter().map(|f| f["username"].as_str().unwrap().to_owned()).collect()
    };
    assert_eq!(names(&server.get("/v1/users/me/friends", Some(&ada.access)).await), ["grace_f"]);
    let graces = server.get("/v1/users/me/friends", Some(&grace.access)).await;
    assert_eq!(names(&graces), ["ada_f"]);
    assert_eq!(graces.body["friends"][0]["is_connected"], true);
    assert!(graces.body["friends"][0].get("email").is_none());

    let removed = server.delete_authorized("/v1/users/me/friends/ada_f", &grace.access, None).await;
    assert_eq!(removed.status, 200, "{}", removed.body);
    assert!(names(&server.get("/v1/users/me/friends", Some(&ada.access)).await).is_empty());
    server.delete_authorized("/v1/users/me/friends/ada_f", &grace.access, None).await.error(404, "NOT_FOUND");

    // A deleted account disappears from its friends' lists.
    server.put_authorized("/v1/users/me/friends/grace_f", &ada.access, json!({})).await;
    server.delete_authorized(&format!("/v1/users/{}", grace.user_id), &admin.access, None).await;
    assert!(names(&server.get("/v1/users/me/friends", Some(&ada.access)).await).is_empty());
}

async fn friends_refuse_yourself_strangers_duplicates_and_the_cap(backend: Backend) {
    let config = Config { max_friends: 2, ..test_config() };
    let server = TestServer::start_with(backend, config).await;
    let ada = server.register(&unique_email("ada"), Some("ada_c")).await;
    for name in ["b_one", "b_two", "b_three"] {
        server.register(&unique_email(name), Some(name)).await;
    }
    server.put_authorized("/v1/users/me/friends/ada_c", &ada.access, json!({})).await.error(400, "FAILED_PRECONDITION");
    server.delete_authorized("/v1/users/me/friends/ada_c", &ada.access, None).await.error(404, "NOT_FOUND");
    server.put_authorized("/v1/users/me/friends/nobody_here", &ada.access, json!({})).await.error(404, "NOT_FOUND");
    server
        .put_authorized("/v1/users/me/friends/not%20a%20name", &ada.access, json!({}))
        .await
        .error(400, "INVALID_ARGUMENT");
    assert_eq!(server.put_authorized("/v1/users/me/friends/b_one", &ada.access, json!({})).await.status, 200);
    server.put_authorized("/v1/users/me/friends/b_one", &ada.access, json!({})).await.error(409, "ALREADY_EXISTS");
    assert_eq!(server.put_authorized("/v1/users/me/friends/b_two", &ada.access, json!({})).await.status, 200);
    let capped = server.put_authorized("/v1/users/me/friends/b_three", &ada.access, json!({})).await;
    capped.error(400, "FAILED_PRECONDITION");
    server.get("/v1/users/me/friends", None).await.error(401, "UNAUTHENTICATED");
}

/// Every bearer-protected route, with a body it accepts from a signed-in user.
fn protected_routes(user_id: &str) -> Vec<(&'static str, String, Value)> {
    let password = json!({"password": latchkey_tests::PASSWORD});
    vec![
        ("GET", "/v1/users/me".into(), json!(null)),
        ("PATCH", "/v1/users/me".into(), json!({"extra": {}})),
        ("DELETE", "/v1/users/me".into(), password.clone()),
        ("GET", "/v1/auth/status".into(), json!(null)),
        ("GET", "/v1/users".into(), json!(null)),
        ("GET", format!("/v1/users/{user_id}"), json!(null)),
        ("PATCH", format!("/v1/users/{user_id}"), json!({"role": "USER"})),
        ("DELETE", format!("/v1/users/{user_id}"), json!(null)),
        ("GET", "/v1/users/me/friends".into(), json!(null)),
        ("PUT", "/v1/users/me/friends/somebody".into(), json!(null)),
        ("DELETE", "/v1/users/me/friends/somebody".into(), json!(null)),
        ("POST", "/v1/auth/logout-all".into(), json!({})),
        ("POST", "/v1/auth/totp/enable".into(), password.clone()),
        ("POST", "/v1/auth/totp/verify".into(), json!({"totp_code": "123456"})),
        ("POST", "/v1/auth/totp/disable".into(), json!({"password": "x", "totp_code": "123456"})),
        ("POST", "/v1/auth/password/change".into(), json!({"current_password": "x", "new_password": "long enough"})),
        ("PUT", "/v1/users/me/mfa/email".into(), json!({"enabled": true, "password": "x"})),
        ("POST", "/v1/auth/email/verify/resend".into(), json!({})),
        ("POST", "/v1/avatar/upload-url".into(), json!({"filename": "a.png", "content_type": "image/png", "size": 10})),
        ("POST", "/v1/avatar/confirm".into(), json!({"token": "x"})),
        ("PUT", "/v1/avatar".into(), json!(null)),
        ("DELETE", "/v1/avatar".into(), json!(null)),
        ("GET", format!("/v1/users/{user_id}/avatar"), json!(null)),
    ]
}

#[tokio::test]
async fn every_protected_route_refuses_a_missing_or_expired_token() {
    let server = TestServer::start(Backend::Embedded).await;
    let ada = server.register(&unique_email("ada"), None).await;
    let expired = server.expired_access_token(&ada);
    for (method, path, body) in protected_routes(&ada.user_id) {
        let request = || {
            let request = server.client.request(method.parse().unwrap(), server.url(&path));
            if body.is_null() { request } else { request.json(&body) }
        };
        let missing = request().send().await.unwrap();
        assert_eq!(missing.status(), 401, "{method} {path} without a token");
        assert_eq!(missing.headers()["www-authenticate"], "Bearer", "{method} {path}");
        let refused = request().bearer_auth(&expired).send().await.unwrap();
        assert_eq!(refused.status(), 401, "{method} {path} with an expired token");
        assert_eq!(refused.headers()["www-authenticate"], "Bearer error=\"invalid_token\"", "{method} {path}");
    }
    // The same token, unexpired, is accepted: expiry was the reason.
    assert_eq!(server.get("/v1/users/me", Some(&ada.access)).await.status, 200);
}
